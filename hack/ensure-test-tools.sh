#!/usr/bin/env bash
# Debian packages the integration tests drive as real processes: `chromium` (the
# dashboard's browser test; a browser cannot be downloaded here, only installed) and
# `haproxy` (the load balancer in front of sidecar replicas, standing in for a Service).
# `make test` calls this first: it does nothing when both are there, installs what is
# missing when run as root, and otherwise stops with one line that says what to run.
set -euo pipefail

missing=()
have() { command -v "$1" >/dev/null || [[ -x "/usr/sbin/$1" ]]; }
have chromium || have chromium-browser || have google-chrome || missing+=(chromium)
have haproxy || missing+=(haproxy)
((${#missing[@]} == 0)) && exit 0

if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "make test: the integration tests need Debian's ${missing[*]}, not installed; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "[ensure-test-tools] installing Debian's ${missing[*]} for the integration tests" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "make test: installing ${missing[*]} failed (apt-get output above)" >&2
  exit 1
fi
