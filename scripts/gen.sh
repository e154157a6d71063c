#!/usr/bin/env bash
# Regenerates everything in gen/ from proto/: messages, .pyi typing, gRPC stubs, and the
# descriptor set Envoy's transcoder loads. Deterministic, so CI reruns it and fails on drift.
#
#   scripts/gen.sh            regenerate ./gen (gen/envoy/ holds what Envoy loads)
#   scripts/gen.sh /tmp/x     generate into /tmp/x/gen instead (a dry run; gen/ untouched)
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:-.}
VENV_BIN=$(cd "${VENV:-.venv}/bin" && pwd)
export PATH="$VENV_BIN:$PATH"   # buf.gen.yaml runs `python -m grpc_tools.protoc`
OUT="$BASE/gen"
IMAGE=$(mktemp --suffix=.binpb)
trap 'rm -f "$IMAGE"' EXIT

# 1. messages and .pyi (clean: true empties gen/ first)
buf generate --template buf.gen.yaml --output "$BASE"

# 2. gRPC stubs, from a buf image so protoc sees exactly what buf linted
buf build --path proto/ampmesh -o "$IMAGE"
mapfile -t FILES < <(cd proto && find ampmesh -name '*.proto' | LC_ALL=C sort)
python -m grpc_tools.protoc --descriptor_set_in="$IMAGE" --grpc_python_out="$OUT" "${FILES[@]}"
# protoc writes a _pb2_grpc.py for every file; keep only those that define a service.
for f in $(find "$OUT/ampmesh" -name '*_pb2_grpc.py'); do
  grep -q "^class .*Servicer\b" "$f" || rm -f "$f"
done

# 3. the descriptor set Envoy's grpc_json_transcoder loads (imports included, no source
#    info: comments must not change what Envoy loads).
buf build --path proto/ampmesh --as-file-descriptor-set --exclude-source-info -o "$OUT/ampmesh.binpb"
# 3b. the same with source info, for tools that show the contracts' comments (mcpanda's
#     tool descriptions); its own file, so Envoy's input stays comment-free.
buf build --path proto/ampmesh --as-file-descriptor-set -o "$OUT/ampmesh.docs.binpb"
# 4. Envoy's copy: response_body cleared (Envoy 1.40 refuses it), and the list of the
#    responses the edge unwraps instead (see scripts/envoy_descriptor.py).
python scripts/envoy_descriptor.py "$OUT/ampmesh.binpb" "$OUT/envoy"

# Packages, so that type checkers and importers see plain packages.
find "$OUT/ampmesh" -type d -exec touch {}/__init__.py \;
