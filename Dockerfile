# syntax=docker/dockerfile:1
# Switchboard's image: the `switchboard` binary alone, run as a non-root user.
#
#   docker build -t switchboard .
#   docker run --rm -p 8080:8080 -v "$PWD/switchboard.toml:/etc/switchboard/switchboard.toml:ro" switchboard
#
# The same image runs the vendor simulators: `docker run --rm switchboard sim --bind 0.0.0.0:9100`.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
# make: the allocator (jemalloc) is built from its C sources.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The registry and target/ are cache mounts: a rebuild after a code change recompiles only the
# workspace's own crates.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin switchboard \
 && install -D -m 0755 target/release/switchboard /out/usr/local/bin/switchboard \
 && install -d -m 0750 /out/var/lib/switchboard

# Distroless: glibc, CA certificates (for the vendors' HTTPS), no shell, no package manager; the
# `nonroot` tag runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/switchboard /usr/local/bin/switchboard
# The working directory holds the embedded store's default file (switchboard.db) for a single
# replica; mount a volume here to keep it across containers.
COPY --from=build --chown=65532:65532 /out/var/lib/switchboard /var/lib/switchboard
WORKDIR /var/lib/switchboard
USER 65532:65532
EXPOSE 8080
# The binary checks itself: `healthcheck` GETs /readyz (sending $SWITCHBOARD_OPS_TOKEN when set)
# and exits 0 on a 2xx answer.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/switchboard", "healthcheck", "--url", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["serve", "--config", "/etc/switchboard/switchboard.toml"]
