#!/usr/bin/env bash
# Installs what `ampmesh up --observability` and tests/observability need: Debian's
# prometheus package (it ships `prometheus` and `promtool`). Idempotent and quick when both
# are on PATH: apt-get runs only when one is missing.
#
# The package's maintainer scripts would start a system-wide Prometheus (bound to :9090,
# scraping nothing of ours) and keep it running; the mesh starts its own, so the install
# runs under a policy-rc.d that forbids service starts, and a unit that systemd started
# anyway is stopped and disabled. Recommends are skipped: they pull in node-exporter,
# another daemon on :9100.
set -euo pipefail

fail() {
  echo "install_observability: $*" >&2
  exit 1
}

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi

command -v apt-get >/dev/null 2>&1 \
  || fail "prometheus/promtool are missing and there is no apt-get: install Prometheus 2.x (both binaries) on PATH, or set AMPMESH_PROMETHEUS"
sudo=""
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || fail "prometheus is missing: run 'apt-get install prometheus' as root"
  sudo="sudo"
fi

policy=/usr/sbin/policy-rc.d
added_policy=""
if [[ ! -e "$policy" ]]; then
  # invoke-rc.d asks this script before starting any service; 101 = not allowed.
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  added_policy=1
fi
cleanup() {
  if [[ -n "$added_policy" ]]; then $sudo rm -f "$policy"; fi
}
trap cleanup EXIT

echo "install_observability: apt-get install prometheus"
apt_install() {
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus
}
apt_install || { $sudo apt-get update -qq && apt_install; } || fail "apt-get could not install prometheus"

# systemd may still have started it (policy-rc.d is not consulted by every path).
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
  $sudo systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi

command -v prometheus >/dev/null 2>&1 || fail "apt-get installed prometheus but 'prometheus' is not on PATH"
command -v promtool >/dev/null 2>&1 || fail "apt-get installed prometheus but 'promtool' is not on PATH"
