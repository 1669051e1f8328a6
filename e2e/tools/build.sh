#!/usr/bin/env bash
# Builds the real test servers (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
# kwok, the distribution registry, kustomize) from the pinned Go modules beside this script.
# Each module builds once per content of its go.mod/go.sum and build settings into
# $SLUICE_CACHE/tools/<module>-<hash>/; later runs reuse it.
# Prints one `name=/abs/path` line per binary (and `kwok-stages=<dir>`) on stdout; progress on stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${SLUICE_CACHE:-$HOME/.cache/sluice}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
export GOMODCACHE=$cache/go/mod GOCACHE=$cache/go/build
mkdir -p "$cache/tools" "$GOMODCACHE" "$GOCACHE"

command -v go >/dev/null || { echo "build.sh: go is not installed; install Go >= 1.26" >&2; exit 1; }

# module -> "binary=package ..."
declare -A packages=(
  [kubernetes]="kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler kubectl=k8s.io/kubernetes/cmd/kubectl"
  [etcd]="etcd=go.etcd.io/etcd/server/v3"
  [kwok]="kwok=sigs.k8s.io/kwok/cmd/kwok"
  [registry]="registry=github.com/distribution/distribution/v3/cmd/registry"
  [kustomize]="kustomize=sigs.k8s.io/kustomize/kustomize/v5"
)

# The version a module pins for its main dependency, read from its go.mod require line.
pinned_version() {
  sed -n "s#^\(require \)\{0,1\}[[:space:]]*$2 \(v[0-9.]*\).*#\2#p" "$here/$1/go.mod" | head -n1
}

ldflags_for() {
  local flags="-s -w"
  if [ "$1" = kubernetes ]; then
    local version minor kv
    version=$(pinned_version kubernetes k8s.io/kubernetes)
    minor=$(echo "$version" | cut -d. -f2)
    for kv in "gitVersion=$version" gitMajor=1 "gitMinor=$minor" gitTreeState=clean; do
      flags="$flags -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
    done
  fi
  echo "$flags"
}

build_module() {
  local module=$1 hash out tmp pair
  # One build per module at a time: parallel test binaries may all ask at once.
  exec 9>"$cache/tools/.lock-$module"
  flock 9
  hash=$( { cat "$here/$module/go.mod" "$here/$module/go.sum"; echo "${packages[$module]}"; ldflags_for "$module"; go env GOVERSION; } | sha256sum | cut -c1-12)
  out="$cache/tools/$module-$hash"
  if [ ! -f "$out/.complete" ]; then
    echo "build.sh: building $module into $out (kubernetes takes ~25 min cold on 2 cores)" >&2
    tmp="$out.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    for pair in ${packages[$module]}; do
      (cd "$here/$module" && go build -buildvcs=false -trimpath -ldflags "$(ldflags_for "$module")" -o "$tmp/${pair%%=*}" "${pair#*=}") >&2
    done
    touch "$tmp/.complete"
    rm -rf "$out"
    mv "$tmp" "$out"
  fi
  for pair in ${packages[$module]}; do
    echo "${pair%%=*}=$out/${pair%%=*}"
  done
  if [ "$module" = kwok ]; then
    echo "kwok-stages=$GOMODCACHE/sigs.k8s.io/kwok@$(pinned_version kwok sigs.k8s.io/kwok)/kustomize/stage"
  fi
  exec 9>&-
}

modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(etcd kubernetes kwok registry kustomize)
for module in "${modules[@]}"; do
  build_module "$module"
done
