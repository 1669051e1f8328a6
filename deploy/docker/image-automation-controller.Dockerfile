# syntax=docker/dockerfile:1
# Sluice image-automation-controller. Build from the repository root:
#   docker build -f deploy/docker/image-automation-controller.Dockerfile -t ghcr.io/sluice-dev/image-automation-controller:v0.1.0 .
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
 && cargo build --locked --release --target x86_64-unknown-linux-musl -p image-automation --bin image-automation \
 && install -D -m 0755 target/x86_64-unknown-linux-musl/release/image-automation /out/image-automation-controller

# Not distroless: the controller runs the `git` CLI to clone, commit and push, and `ssh` plus
# `ssh-keygen` for SSH remotes, and `gpg` to sign commits with spec.git.commit.signingKey.
# Debian slim with git, openssh-client, gnupg and CA certificates.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client gnupg ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /out/image-automation-controller /usr/local/bin/image-automation-controller
# 65534 is `nobody` in Debian's /etc/passwd (ssh refuses to run for a uid without an entry).
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/image-automation-controller"]
