#!/usr/bin/env bash
# Builds the real test servers (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok,
# the distribution registry, kustomize) from the pinned Go modules beside this script.
# Each module builds once per content of its go.mod/go.sum into $SLUICE_CACHE/tools/<module>-<hash>/;
# later runs reuse it. Prints one `name=/abs/path` line per binary on stdout; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${SLUICE_CACHE:-$HOME/.cache/sluice}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
export GOMODCACHE=${GOMODCACHE_OVERRIDE:-$cache/go/mod} GOCACHE=${GOCACHE_OVERRIDE:-$cache/go/build}
mkdir -p "$cache/tools" "$GOMODCACHE" "$GOCACHE"

command -v go >/dev/null || { echo "build.sh: go is not installed; install Go >= 1.26" >&2; exit 1; }

# module -> "binary=package ..." (binary name differs from the package's last element for etcd).
declare -A packages=(
  [kubernetes]="kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler"
  [etcd]="etcd=go.etcd.io/etcd/server/v3"
  [kwok]="kwok=sigs.k8s.io/kwok/cmd/kwok"
  [registry]="registry=github.com/distribution/distribution/v3/cmd/registry"
  [kustomize]="kustomize=sigs.k8s.io/kustomize/kustomize/v5"
)

ldflags_for() {
  local module=$1 flags="-s -w"
  if [ "$module" = kubernetes ]; then
    local version minor
    version=$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$here/kubernetes/go.mod")
    minor=$(echo "$version" | cut -d. -f2)
    for kv in "gitVersion=$version" gitMajor=1 "gitMinor=$minor" gitTreeState=clean; do
      flags="$flags -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
    done
  fi
  echo "$flags"
}

build_module() {
  local module=$1 hash out tmp
  hash=$(cat "$here/$module/go.mod" "$here/$module/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)
  out="$cache/tools/$module-$hash"
  if [ ! -f "$out/.complete" ]; then
    echo "build.sh: building $module into $out (first time for this version; kubernetes takes ~15-25 min on 2 cores)" >&2
    tmp="$out.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    local pair bin pkg
    for pair in ${packages[$module]}; do
      bin=${pair%%=*}
      pkg=${pair#*=}
      (cd "$here/$module" && go build -buildvcs=false -trimpath -ldflags "$(ldflags_for "$module")" -o "$tmp/$bin" "$pkg") >&2
    done
    touch "$tmp/.complete"
    rm -rf "$out"
    mv "$tmp" "$out"
  fi
  for pair in ${packages[$module]}; do
    echo "${pair%%=*}=$out/${pair%%=*}"
  done
}

# One build at a time per cache: parallel test binaries may all ask at once.
exec 9>"$cache/tools/.lock"
flock 9
modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(etcd kubernetes kwok registry kustomize)
for module in "${modules[@]}"; do
  build_module "$module"
done
