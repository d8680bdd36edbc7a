# syntax=docker/dockerfile:1
# The peapod image: /usr/local/bin/peapod and runc, nothing else. The chart runs it as the node agent
# (`peapod agent ...`); `peapod run -f DIR` works from it too. Build from the repository root:
#   docker build -t <registry>/peapod:<version> .
# Base images are build arguments so nothing here names a registry; point them at your mirror if needed.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The same release build as `make` (`cargo build --release --locked`). The registry and target caches
# persist between builds; the binary is copied out of the cache mount before the step ends.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/peapod /peapod

FROM ${BASE_IMAGE}
# runc: the OCI runtime the agent drives (PEAPOD_OCI_RUNTIME=/usr/sbin/runc). ca-certificates: image
# pulls over HTTPS verify registries against the system roots. Nothing else: CNI plugins are the node's
# (mounted from the host), and the agent makes its mounts and namespaces itself.
# Versions follow the base image's release, which carries its security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends runc ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /peapod /usr/local/bin/peapod
ENV PEAPOD_OCI_RUNTIME=/usr/sbin/runc
# No USER: the agent runs as root, as it must to create namespaces, mount overlays and volumes, manage
# cgroups and run runc (the chart also makes the container privileged).
ENTRYPOINT ["peapod"]
CMD ["agent"]
