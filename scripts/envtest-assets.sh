#!/usr/bin/env bash
# Builds the two binaries controller-runtime's envtest needs (etcd and kube-apiserver)
# from the Go module proxy into a cache directory outside the checkout, skipping what is
# already there, and prints that directory (for KUBEBUILDER_ASSETS) on stdout.
#
# Nothing here downloads a prebuilt binary: etcd builds from go.etcd.io/etcd/server/v3 and
# kube-apiserver from k8s.io/kubernetes in a throwaway module, with a replace line pinning
# each staging module (k8s.io/api, apimachinery, client-go, ...) to its published
# version, since the k8s.io/kubernetes module zip has no ./staging directory.
#
# Usage: scripts/envtest-assets.sh            # build if missing, print the directory
#        KUBEBUILDER_ASSETS=$(scripts/envtest-assets.sh)
# Settings (environment): ETCD_VERSION, KUBE_VERSION, SKILLBOX_ENVTEST_DIR (cache root).
# Progress goes to stderr; only the directory goes to stdout.
set -euo pipefail

ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
KUBE_VERSION="${KUBE_VERSION:-v1.37.2}"
# Staging modules carry the same minor and patch as Kubernetes, major 0.
STAGING_VERSION="v0.${KUBE_VERSION#v1.}"

root="${SKILLBOX_ENVTEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/skillbox/envtest}"
dir="$root/etcd-${ETCD_VERSION}_kube-${KUBE_VERSION}_$(go env GOOS)-$(go env GOARCH)"
mkdir -p "$dir"

export GOTOOLCHAIN=local
export CGO_ENABLED=0
log() { echo "envtest-assets: $*" >&2; }

# tmpmod: a fresh, empty temporary module (removed after a successful build).
tmpmod() {
  local t
  t=$(mktemp -d "${TMPDIR:-/tmp}/skillbox-envtest.XXXXXX")
  (cd "$t" && go mod init skillbox.invalid/envtest-build >/dev/null 2>&1)
  echo "$t"
}

build_etcd() {
  local t
  t=$(tmpmod)
  log "building etcd ${ETCD_VERSION} (go.etcd.io/etcd/server/v3) in $t"
  (
    cd "$t"
    export GOFLAGS=-mod=mod
    go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >&2
    go build -trimpath -ldflags=-s -o "$dir/etcd.tmp" go.etcd.io/etcd/server/v3
  )
  mv "$dir/etcd.tmp" "$dir/etcd"
  rm -rf "$t"
}

build_apiserver() {
  local t gomod
  t=$(tmpmod)
  log "building kube-apiserver ${KUBE_VERSION} (k8s.io/kubernetes, staging at ${STAGING_VERSION}) in $t"
  (
    cd "$t"
    export GOFLAGS=-mod=mod
    # The staging modules are exactly the replace lines pointing into ./staging.
    gomod=$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
    [ -n "$gomod" ] || { log "could not read k8s.io/kubernetes@${KUBE_VERSION} go.mod"; exit 1; }
    mods=$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$gomod")
    [ -n "$mods" ] || { log "no staging modules found in $gomod"; exit 1; }
    args=()
    for m in $mods; do args+=("-replace=$m=$m@${STAGING_VERSION}"); done
    go mod edit "${args[@]}" "-require=k8s.io/kubernetes@${KUBE_VERSION}"
    log "pinned $(echo "$mods" | wc -w) staging modules to ${STAGING_VERSION}"
    v=k8s.io/component-base/version
    minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
    go build -trimpath -o "$dir/kube-apiserver.tmp" \
      -ldflags="-s -X $v.gitVersion=${KUBE_VERSION} -X $v.gitMajor=1 -X $v.gitMinor=${minor} -X $v.gitTreeState=clean" \
      k8s.io/kubernetes/cmd/kube-apiserver
  )
  mv "$dir/kube-apiserver.tmp" "$dir/kube-apiserver"
  rm -rf "$t"
}

if [ -x "$dir/etcd" ]; then log "etcd present"; else build_etcd; fi
if [ -x "$dir/kube-apiserver" ]; then log "kube-apiserver present"; else build_apiserver; fi
"$dir/etcd" --version >&2
"$dir/kube-apiserver" --version >&2
echo "$dir"
