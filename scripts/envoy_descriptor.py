"""Derive the descriptor set Envoy's transcoder loads from the contracts' descriptor set.

Our contracts declare `response_body` on lists the reference returns as a bare JSON array
(that is the REST shape we promise), but Envoy 1.40's grpc_json_transcoder refuses
`response_body` on anything but a google.api.HttpBody field and will not start. So Envoy
loads a copy with `response_body` cleared, and the edge unwraps those responses itself,
driven by the list written beside it: for each transcoded gRPC path, the JSON name of the
field whose value is the whole REST response.

    python scripts/envoy_descriptor.py gen/ampmesh.binpb gen/envoy
        writes gen/envoy/ampmesh.binpb and gen/envoy/response_body.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2


def _clear_response_body(rule: http_pb2.HttpRule) -> str:
    field = rule.response_body
    rule.response_body = ""
    for extra in rule.additional_bindings:
        _clear_response_body(extra)
    return field


def _json_name(message: descriptor_pb2.DescriptorProto, field_name: str) -> str:
    for field in message.field:
        if field.name == field_name:
            return field.json_name
    raise SystemExit(f"{message.name} has no field {field_name!r} named by response_body")


def derive(files: descriptor_pb2.FileDescriptorSet) -> dict[str, str]:
    """Clear response_body in place; return {"/pkg.Service/Method": json field name}."""
    messages = {
        f".{file.package}.{message.name}": message
        for file in files.file
        for message in file.message_type
    }
    unwrap: dict[str, str] = {}
    for file in files.file:
        for service in file.service:
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                field = _clear_response_body(rule)
                if field:
                    path = f"/{file.package}.{service.name}/{method.name}"
                    unwrap[path] = _json_name(messages[method.output_type], field)
    return unwrap


def main(source: str, out_dir: str) -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString(Path(source).read_bytes())
    unwrap = derive(files)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # deterministic=True: the bytes depend on the contracts only, so CI can check drift.
    (out / "ampmesh.binpb").write_bytes(files.SerializeToString(deterministic=True))
    (out / "response_body.json").write_text(json.dumps(unwrap, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
