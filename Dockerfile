# syntax=docker/dockerfile:1
#
# crowsnest's container image: built in a Rust image, run on distroless
# (no shell, no package manager) as the non-root user 65532.
#
#   docker build -t crowsnest:0.1.0 .
#   docker run --rm crowsnest:0.1.0 --version
#
# The Helm chart (charts/crowsnest) runs it as
# `crowsnest run --config /etc/crowsnest/config/crowsnest.yaml`.

# The build stage's Debian must be the runtime's (distroless debian12 is
# bookworm): the binary needs that glibc and OpenSSL 3.
ARG RUST_VERSION=1.95
ARG DEBIAN=bookworm

FROM docker.io/library/rust:${RUST_VERSION}-${DEBIAN} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin crowsnest \
 && install -D -m 0755 target/release/crowsnest /out/usr/local/bin/crowsnest
# The binary links OpenSSL, zlib and glibc dynamically (git2, libssh2).
# distroless/cc has glibc, libgcc and OpenSSL; zlib is copied from this
# stage (same Debian release). Anything else would fail at start, so the
# build fails here instead.
RUN set -eu; \
    triplet=$(gcc -dumpmachine); \
    mkdir -p "/out/lib/$triplet"; \
    cp -L "/lib/$triplet/libz.so.1" "/out/lib/$triplet/"; \
    ldd /out/usr/local/bin/crowsnest | awk '{print $1}' | sort -u > /tmp/libs; \
    unexpected=$(grep -v -E '^(linux-vdso\.so\.1|/lib.*/ld-linux.*\.so\.[0-9]|libc\.so\.6|libm\.so\.6|libgcc_s\.so\.1|libssl\.so\.3|libcrypto\.so\.3|libz\.so\.1)$' /tmp/libs || true); \
    if [ -n "$unexpected" ]; then echo "unexpected shared libraries: $unexpected" >&2; exit 1; fi

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/crowsnest"]
CMD ["run", "--config", "/etc/crowsnest/config/crowsnest.yaml"]
