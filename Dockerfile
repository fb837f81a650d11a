# gaffer in a container: a multi-stage build (the Rust toolchain stays in the first stage),
# then a small Debian image with git and bubblewrap, running as a non-root user, with its
# database and clones on the /data volume. See docs/deploy.md.
#
#   docker build -t gaffer .
#   docker run -d -p 127.0.0.1:8000:8000 -v gaffer-data:/data \
#     -e GAFFER_API_TOKEN=... -e GH_TOKEN=... --security-opt seccomp=unconfined gaffer

FROM rust:1-bookworm AS build
WORKDIR /src
# The manifest and lock file first, so the dependency layer is cached across source edits.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin gaffer \
    && rm -rf src
COPY src ./src
# Embedded in the binary: the demo's example repo and the documented defaults.
COPY sample-target ./sample-target
COPY config ./config
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin gaffer

FROM debian:bookworm-slim
# git: clones and pushes; bubblewrap: the sandbox for checks of model-written code;
# python3: the checks of Python target repos; curl: the health check. Versions are not
# pinned: bookworm's point releases carry the security fixes these need.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git bubblewrap python3 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin gaffer \
    && mkdir -p /data /etc/gaffer \
    && chown gaffer:gaffer /data
COPY --from=build /src/target/release/gaffer /usr/local/bin/gaffer
# Found on the config search path; environment variables override it.
COPY config/gaffer.yaml /etc/gaffer/gaffer.yaml
ENV GAFFER_DATA_DIR=/data \
    GAFFER_BIND=0.0.0.0:8000 \
    GAFFER_LOG_FORMAT=json \
    NO_COLOR=1
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/health"]
ENTRYPOINT ["/usr/local/bin/gaffer"]
CMD ["serve"]
