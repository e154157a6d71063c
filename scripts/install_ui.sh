#!/usr/bin/env bash
# Installs what the browser test (tests/ui) needs: the npm packages of tests/ui from its
# committed lockfile, and Debian's Chromium; and tests/mcp's npm packages (the MCP
# inspector's CLI) from theirs. Idempotent and quick when all are present:
# `npm ci` runs only when node_modules is missing or older than package-lock.json, and
# apt-get only when /usr/bin/chromium is missing. Never downloads a browser from elsewhere.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ui="$root/tests/ui"
chromium="${AMPMESH_CHROMIUM:-/usr/bin/chromium}"

fail() {
  echo "install_ui: $*" >&2
  exit 1
}

# --- npm packages --------------------------------------------------------------------
command -v node >/dev/null 2>&1 || fail "Node.js is missing: install Node 20 or newer (e.g. apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || fail "npm is missing: install npm (e.g. apt-get install npm)"
stamp="$ui/node_modules/.package-lock.json"  # npm rewrites it on every install
if [[ ! -f "$stamp" || "$ui/package-lock.json" -nt "$stamp" ]]; then
  echo "install_ui: npm ci in tests/ui"
  (cd "$ui" && npm ci --no-audit --no-fund --loglevel=error) \
    || fail "npm ci failed in tests/ui (is the npm registry reachable?)"
  touch "$stamp"
fi
# The MCP inspector's CLI (tests/mcp lists mcpanda's tools with it), the same way.
mcp="$root/tests/mcp"
stamp="$mcp/node_modules/.package-lock.json"
if [[ ! -f "$stamp" || "$mcp/package-lock.json" -nt "$stamp" ]]; then
  echo "install_ui: npm ci in tests/mcp"
  (cd "$mcp" && npm ci --no-audit --no-fund --loglevel=error) \
    || fail "npm ci failed in tests/mcp (is the npm registry reachable?)"
  touch "$stamp"
fi

# --- Chromium --------------------------------------------------------------------------
if [[ ! -x "$chromium" ]]; then
  command -v apt-get >/dev/null 2>&1 \
    || fail "$chromium is missing and there is no apt-get: install Chromium from your distribution's packages (Debian: chromium)"
  sudo=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || fail "$chromium is missing: run 'apt-get install chromium' as root"
    sudo="sudo"
  fi
  echo "install_ui: apt-get install chromium"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
    || { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; } \
    || fail "apt-get could not install chromium"
  [[ -x "$chromium" ]] || fail "apt-get installed chromium but $chromium is not there"
fi
