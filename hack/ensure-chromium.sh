#!/usr/bin/env bash
# The dashboard's browser test drives Debian's chromium (a browser cannot be downloaded
# here, only installed from Debian's packages). `make test` calls this first: it does
# nothing when a chromium is on PATH, installs Debian's package when run as root, and
# otherwise stops with one line that says what is missing and how to get it.
set -euo pipefail

for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null; then
    exit 0
  fi
done

if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null; then
  echo "make test: the dashboard test needs Debian's chromium, which is not installed; run: sudo apt-get update && sudo apt-get install -y chromium" >&2
  exit 1
fi

echo "[ensure-chromium] installing Debian's chromium for the dashboard test" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; } >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "make test: installing chromium failed (apt-get output above)" >&2
  exit 1
fi
