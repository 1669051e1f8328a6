# syntax=docker/dockerfile:1
# Sluice notification-controller. Build from the repository root:
#   docker build -f deploy/docker/notification-controller.Dockerfile -t ghcr.io/sluice-dev/notification-controller:v0.1.0 .
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
 && cargo build --locked --release --target x86_64-unknown-linux-musl -p notification-controller --bin notification-controller \
 && install -D -m 0755 target/x86_64-unknown-linux-musl/release/notification-controller /out/notification-controller

# A static binary needs no libc: distroless static has CA certificates and a nonroot user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /out/notification-controller /usr/local/bin/notification-controller
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/notification-controller"]
