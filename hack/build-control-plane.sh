#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager (Kubernetes $KUBE_VERSION) and etcd
# ($ETCD_VERSION) from the Go module proxy into a per-user cache keyed by version.
# Does nothing when the binaries are already there. Prints where they are.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_root="${OPSCORE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/opscore}"
bin_dir="$cache_root/controlplane/kube-${KUBE_VERSION}_etcd-${ETCD_VERSION}"

log() { printf '[control-plane-bin] %s\n' "$*" >&2; }
fail() { log "ERROR: $*"; exit 1; }

if [[ -x "$bin_dir/kube-apiserver" && -x "$bin_dir/kube-controller-manager" && -x "$bin_dir/etcd" ]]; then
  log "binaries present in $bin_dir (nothing to build)"
  echo "$bin_dir"
  exit 0
fi

command -v go >/dev/null || fail "go is not installed (need Go >= 1.26 for Kubernetes ${KUBE_VERSION})"
mkdir -p "$bin_dir"
tmp_out="$(mktemp -d "$bin_dir/.build.XXXXXX")"
trap 'rm -rf "$tmp_out"' EXIT

export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=readonly
minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION}"
ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor}"

start=$(date +%s)
if [[ ! -x "$bin_dir/etcd" ]]; then
  log "building etcd ${ETCD_VERSION} (downloads modules on first run)..."
  (cd "$here/controlplane/etcd" && go build -trimpath -ldflags "-s -w" -o "$tmp_out/etcd" .) \
    || fail "etcd build failed (module go.etcd.io/etcd/server/v3 ${ETCD_VERSION}; see the go output above)"
  mv "$tmp_out/etcd" "$bin_dir/etcd"
  log "etcd done after $(( $(date +%s) - start ))s"
fi

if [[ ! -x "$bin_dir/kube-apiserver" || ! -x "$bin_dir/kube-controller-manager" ]]; then
  log "building kube-apiserver and kube-controller-manager ${KUBE_VERSION}:"
  log "this takes 10-25 minutes on 2 cores the first time (about 150 MB of modules)..."
  (cd "$here/controlplane/kube" && go build -trimpath -ldflags "$ldflags" -o "$tmp_out/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager) \
    || fail "kube-apiserver/kube-controller-manager build failed (k8s.io/kubernetes ${KUBE_VERSION}; see the go output above)"
  mv "$tmp_out/kube-apiserver" "$tmp_out/kube-controller-manager" "$bin_dir/"
  log "kubernetes binaries done after $(( $(date +%s) - start ))s"
fi

"$bin_dir/kube-apiserver" --version >&2 || fail "the built kube-apiserver does not run"
echo "$bin_dir"
