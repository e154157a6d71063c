#!/usr/bin/env bash
# buf breaking (FILE rules) against the previous commit of main. Skipped, with a line
# saying why, when there is no previous commit or it had no contracts yet.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=${VENV:-.venv}/bin/buf
against=${BREAKING_AGAINST:-HEAD~1}
if ! git rev-parse --verify --quiet "$against^{commit}" >/dev/null; then
  echo "buf breaking: skipped, no commit $against to compare with"; exit 0
fi
if ! git ls-tree -r --name-only "$against" -- proto/ampmesh | grep -q '\.proto$'; then
  echo "buf breaking: skipped, $against has no contracts yet"; exit 0
fi
"$BUF" breaking --against ".git#ref=$against"
echo "buf breaking: no breaking change against $against"
