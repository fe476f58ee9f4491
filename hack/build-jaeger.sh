#!/usr/bin/env bash
# Build the Jaeger all-in-one binary (github.com/jaegertracing/jaeger/cmd/jaeger,
# $JAEGER_VERSION; the module's v1.x tags carry Jaeger v2) from the Go module proxy into
# the per-user cache, next to the control plane. The trace tests run it with in-memory
# storage and an OTLP receiver. Does nothing when the binary is already there. Prints
# where it is. Versions are pinned by hack/jaeger/go.mod and go.sum (checked against the
# Go checksum database on download).
set -euo pipefail

JAEGER_VERSION="${JAEGER_VERSION:-v1.75.0}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${OPSCORE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opscore}"
bin_dir="$cache_root/jaeger-${JAEGER_VERSION}"

log() { printf '[jaeger-bin] %s\n' "$*" >&2; }
fail() { log "ERROR: $*"; exit 1; }

if [[ -x "$bin_dir/jaeger" ]]; then
  log "binary present in $bin_dir (nothing to build)"
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || fail "go is not installed (need Go >= 1.26 for Jaeger ${JAEGER_VERSION})"
pinned="$(awk '$1 == "github.com/jaegertracing/jaeger" {print $2}' "$here/jaeger/go.mod")"
[[ "$pinned" == "$JAEGER_VERSION" ]] \
  || fail "hack/jaeger/go.mod pins jaeger ${pinned:-nothing}, not ${JAEGER_VERSION}"
mkdir -p "$bin_dir"
tmp_out="$(mktemp -d "$bin_dir/.build.XXXXXX")"
trap 'rm -rf "$tmp_out"' EXIT

export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=readonly
start=$(date +%s)
log "building jaeger ${JAEGER_VERSION}: several minutes on 2 cores the first time (downloads modules)..."
(cd "$here/jaeger" && go build -trimpath -ldflags "-s -w" -o "$tmp_out/jaeger" \
    github.com/jaegertracing/jaeger/cmd/jaeger) \
  || fail "jaeger build failed (module github.com/jaegertracing/jaeger ${JAEGER_VERSION}; see the go output above)"
"$tmp_out/jaeger" version >/dev/null 2>&1 || fail "the built jaeger does not run"
mv "$tmp_out/jaeger" "$bin_dir/jaeger"
log "jaeger done after $(( $(date +%s) - start ))s"
echo "$bin_dir"
