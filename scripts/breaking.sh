#!/usr/bin/env bash
# buf breaking (FILE rules) against what last landed on main: the tag `landed` when the
# clone has it (a session moves it to the landed head when it starts, so every commit of
# a submission is checked, not only its last), else the previous commit. Skipped, with a
# line saying why, when there is no such commit or it had no contracts yet.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=${VENV:-.venv}/bin/buf
if git rev-parse --verify --quiet "landed^{commit}" >/dev/null; then
  default_against=landed
else
  default_against=HEAD~1
fi
against=${BREAKING_AGAINST:-$default_against}
if ! git rev-parse --verify --quiet "$against^{commit}" >/dev/null; then
  echo "buf breaking: skipped, no commit $against to compare with"; exit 0
fi
if ! git ls-tree -r --name-only "$against" -- proto/ampmesh | grep -q '\.proto$'; then
  echo "buf breaking: skipped, $against has no contracts yet"; exit 0
fi
"$BUF" breaking --against ".git#ref=$against"
echo "buf breaking: no breaking change against $against"
