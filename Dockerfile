# The three Lambda functions in one container image (template.yaml picks the binary per function).
# Any Linux base works: each Rust binary is its own Lambda runtime client.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
RUN bash scripts/setup.sh --build
COPY . .
RUN cargo build --release --locked -p mogr-download -p mogr-upload -p mogr-process \
 && cp target/release/mogr-download target/release/mogr-upload target/release/mogr-process /usr/local/bin/

# The final stage: tests/tests/runtime_image.rs builds the same (scripts/runtime-rootfs.sh) without Docker
# and runs the functions inside it, so a missing shared library fails CI.
FROM debian:12-slim
COPY scripts/setup.sh /tmp/setup.sh
RUN bash /tmp/setup.sh --runtime && rm -rf /var/lib/apt/lists/* /tmp/setup.sh
COPY --from=build /usr/local/bin/mogr-download /usr/local/bin/mogr-upload /usr/local/bin/mogr-process /usr/local/bin/
ENTRYPOINT []
CMD ["/usr/local/bin/mogr-download"]
