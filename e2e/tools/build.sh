#!/usr/bin/env bash
# Builds the real test servers (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
# kwok, the distribution registry, kustomize, the jsontoyaml oracle) from the pinned Go modules beside this script, the
# s3s-fs S3 server from crates.io (`crates` below), and Flux's
# source-controller, kustomize-controller and CLI and sigstore's cosign from their own pinned modules (see `flux` below).
# Each module builds once per content of its go.mod/go.sum (or pin) and build settings into
# $SLUICE_CACHE/tools/<module>-<hash>/; later runs reuse it.
# Prints one `name=/abs/path` line per binary (and `kwok-stages=<dir>`, `flux-*-controller-module=<dir>`) on
# stdout; progress on stderr.
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
  [jsontoyaml]="jsontoyaml=."
)

# Flux's binaries, each built from a copy of its own module (its go.mod, go.sum and replaces) as Flux
# builds it: binary -> "package module@version=go.sum-hash ...". The module zips lack what their go.mod
# replaces with a directory (the `api` submodule, copied in from its own pinned zip) and the CLI's embedded
# install manifests (a placeholder, so `flux install`/`bootstrap` are unusable and stay out of the tests).
# cosign (sigstore's CLI, for OCIRepository `spec.verify` tests) is built the same way from its own module.
declare -A flux=(
  [flux-source-controller]=". github.com/fluxcd/source-controller@v1.9.3=h1:Zj1gfvK/2MFIm/K3vh5fSHoJBoggLKMuLWf5ZEmaF0w= github.com/fluxcd/source-controller/api@v1.9.3=h1:Z5Id6iPV+n1OY/14dpC18PaHRATzAyZkjAzDNYxSl4E="
  [flux-kustomize-controller]=". github.com/fluxcd/kustomize-controller@v1.9.6=h1:XB+G3A0mky0j5uVHZWv4oSlS2RvZBoNIUhstIvY0JKE= github.com/fluxcd/kustomize-controller/api@v1.9.6=h1:7XiuW+l3YYXWeIwLJ8w34zHlJyMUEKosBIxLIki9J3I="
  [flux-helm-controller]=". github.com/fluxcd/helm-controller@v1.6.4=h1:u/Ew7LehrwDQaE/NqWdaB3XnNDCxRGDcp1FZl7RKj4g= github.com/fluxcd/helm-controller/api@v1.6.4=h1:jDgB87F6RRNF0QEZDAw+8+HPU13toF5IZpPsytA0Nuo="
  [flux]="./cmd/flux github.com/fluxcd/flux2/v2@v2.9.5=h1:jwCccxvkD+2QnsjN+pl5QqM8KnFUwA8pIoQ1Lf0avkA="
  [cosign]="./cmd/cosign github.com/sigstore/cosign/v2@v2.6.5=h1:D7kFSWS2HzfD+LpEuBO89D1KfOAODlkWuuhzXS8yzi0="
)

# Rust test servers installed from crates.io with their own lock file: name -> "crate version features".
declare -A crates=(
  [s3s-fs]="s3s-fs 0.14.1 binary"
)

# Flux modules read only for their CRDs, samples and spec docs (never built), at the versions Flux
# v2.9's CLI pins or the newest the module proxy serves: name -> module@version=go.sum-hash.
declare -A flux_sources=(
  [flux-image-reflector-controller]="github.com/fluxcd/image-reflector-controller@v1.2.4=h1:pBC8XOgLXt3VaTzp9k2fYpuR3FFEnZRZBkuSfnGxPhM="
  [flux-image-automation-controller]="github.com/fluxcd/image-automation-controller@v1.2.4=h1:uYtQq2kUb02q6fJE6zT/NdAPLTPLZUOIVp+JGFslW+M="
  [flux-notification-controller]="github.com/fluxcd/notification-controller@v1.9.3=h1:vBONN/Lx5aQ2nDnJxYp5Sb0Wsgh13UbuP5A1MK4dmkY="
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
  if [ "$1" = flux ]; then
    # A pre-release suffix: `flux check` then skips asking GitHub for the latest release.
    flags="$flags -X main.VERSION=$(echo "${flux[flux]}" | sed 's#.*@v\([^=]*\)=.*#\1#')-sluice.test"
  fi
  if [ "$1" = cosign ]; then
    flags="$flags -X sigs.k8s.io/release-utils/version.gitVersion=$(echo "${flux[cosign]}" | sed 's#.*@\(v[^=]*\)=.*#\1#')"
  fi
  echo "$flags"
}

# Downloads module@version into the module cache, checks its go.sum hash, prints its directory.
download_pinned() {
  local pin=$1 json sum dir
  json=$(cd "$cache" && go mod download -json "${pin%%=*}")
  sum=$(echo "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p')
  dir=$(echo "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ "$sum" != "${pin#*=}" ]; then
    echo "build.sh: ${pin%%=*} has hash '$sum', pinned ${pin#*=}" >&2
    return 1
  fi
  echo "$dir"
}

# Copies a Flux module (and its api submodule) out of the module cache and builds it there.
build_flux() {
  local binary=$1 hash out tmp src pin dir
  exec 9>"$cache/tools/.lock-$binary"
  flock 9
  hash=$( { echo "${flux[$binary]}"; ldflags_for "$binary"; go env GOVERSION; } | sha256sum | cut -c1-12)
  out="$cache/tools/$binary-$hash"
  if [ ! -f "$out/.complete" ]; then
    echo "build.sh: building $binary into $out (10-12 min cold on 2 cores for a controller, ~3 min for the CLI after them)" >&2
    tmp="$out.tmp.$$"
    src="$tmp/src"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    set -- ${flux[$binary]}
    local package=$1
    shift
    cp -r "$(download_pinned "$1")" "$src"
    chmod -R u+w "$src"
    shift
    for pin in "$@"; do
      dir=$(download_pinned "$pin")
      rm -rf "$src/api"
      cp -r "$dir" "$src/api"
      chmod -R u+w "$src/api"
    done
    if [ "$binary" = flux ]; then
      mkdir -p "$src/cmd/flux/manifests"
      echo "# Placeholder: Sluice's tests build the CLI without Flux's install manifests." >"$src/cmd/flux/manifests/placeholder.yaml"
    fi
    (cd "$src" && go build -buildvcs=false -trimpath -ldflags "$(ldflags_for "$binary")" -o "$tmp/$binary" "$package") >&2
    rm -rf "$src"
    touch "$tmp/.complete"
    rm -rf "$out"
    mv "$tmp" "$out"
  fi
  echo "$binary=$out/$binary"
  if [ "$binary" != flux ] && [ "$binary" != cosign ]; then
    set -- ${flux[$binary]}
    echo "$binary-module=$GOMODCACHE/${2%%=*}"
  fi
  exec 9>&-
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

# Installs a crate's binary once into $SLUICE_CACHE/tools/<crate>-<version>/bin.
install_crate() {
  local name=$1 out
  exec 9>"$cache/tools/.lock-$name"
  flock 9
  set -- ${crates[$name]}
  out="$cache/tools/$1-$2"
  if [ ! -x "$out/bin/$name" ]; then
    command -v cargo >/dev/null || { echo "build.sh: cargo is needed to install $1" >&2; exit 1; }
    echo "build.sh: installing $1 $2 into $out (~5 min cold on 2 cores)" >&2
    # Outside any workspace and target dir, so a `cargo test` that asks for it builds nothing of its own.
    (cd "$cache" && env -u CARGO_TARGET_DIR cargo install --quiet --locked --version "$2" --features "$3" --root "$out" "$1") >&2
  fi
  echo "$name=$out/bin/$name"
  exec 9>&-
}

modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(etcd kubernetes kwok registry kustomize jsontoyaml flux-source-controller flux-kustomize-controller flux-helm-controller flux cosign "${!flux_sources[@]}" "${!crates[@]}")
for module in "${modules[@]}"; do
  if [ -n "${crates[$module]:-}" ]; then
    install_crate "$module"
  elif [ -n "${flux[$module]:-}" ]; then
    build_flux "$module"
  elif [ -n "${flux_sources[$module]:-}" ]; then
    echo "$module-module=$(download_pinned "${flux_sources[$module]}")"
  else
    build_module "$module"
  fi
done
