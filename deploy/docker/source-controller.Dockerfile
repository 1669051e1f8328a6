# syntax=docker/dockerfile:1
# Sluice source-controller. Build from the repository root:
#   docker build -f deploy/docker/source-controller.Dockerfile -t ghcr.io/sluice-dev/source-controller:v0.1.0 .
# Untested here (no container engine on the development machines).

FROM rust:1.89-bookworm AS builder
# aws-lc-rs (rustls' crypto provider) compiles C code: cmake and clang, and musl-gcc for the
# static musl target.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake clang musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# rust-toolchain.toml selects the toolchain; add the musl target to that one.
RUN rustup target add x86_64-unknown-linux-musl \
 && cargo build --locked --release --target x86_64-unknown-linux-musl -p source-controller --bin source-controller \
 && install -D -m 0755 target/x86_64-unknown-linux-musl/release/source-controller /out/source-controller

# Not distroless: the source-controller runs the `git` CLI for clone/fetch (source-controller/src/git.rs,
# Command::new("git")), and `ssh` plus `ssh-keygen` for SSH remotes and passphrase-protected keys.
# `gpg` (gnupg) verifies PGP commit and tag signatures for spec.verify.
# So the final stage is Debian slim with git, openssh-client, gnupg and CA certificates; the binary
# itself stays static.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client gnupg ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /out/source-controller /usr/local/bin/source-controller
# 65534 is `nobody` in Debian's /etc/passwd (ssh refuses to run for a uid without an entry).
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/source-controller"]
