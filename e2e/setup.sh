#!/usr/bin/env bash
# Prepares a fresh machine for Sluice's demo and tests: Debian packages (git, openssh-server for
# the SSH git server, openssl), the Rust components, and the Go-built test binaries (etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, registry, kustomize, and
# Flux's source-controller, kustomize-controller and flux CLI for the interop suite, and sigstore's
# cosign for OCIRepository verification tests), the s3s-fs S3
# server (cargo install, through e2e/tools/build.sh), and cargo-fuzz,
# cached under ~/.cache/sluice. Safe to re-run: it only does what is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(git openssh-server openssh-client openssl ca-certificates gnupg)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || { echo "setup: Go >= 1.26 is required to build the test binaries (https://go.dev/dl)" >&2; exit 1; }
command -v cargo >/dev/null || { echo "setup: Rust (rustup, stable) is required" >&2; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# cargo-fuzz for the fuzz smoke run (fuzz/run.sh), installed once under the cache.
fuzz_root=${SLUICE_CACHE:-$HOME/.cache/sluice}/tools/cargo-fuzz-0.13.2
if [ ! -x "$fuzz_root/bin/cargo-fuzz" ]; then
  echo "setup: installing cargo-fuzz" >&2
  cargo install --quiet --locked --version 0.13.2 --root "$fuzz_root" cargo-fuzz
fi

# SLUICE_SETUP_SKIP_BUILD=1: packages and tools only; the caller runs e2e/tools/build.sh itself
# (.ci/run builds the test binaries while fmt and clippy run).
if [ "${SLUICE_SETUP_SKIP_BUILD:-0}" != 1 ]; then
  echo "setup: building or reusing the Go test binaries and s3s-fs (the first build of Kubernetes takes ~25 min on 2 cores)" >&2
  bash e2e/tools/build.sh >/dev/null
fi
echo "setup: done" >&2
