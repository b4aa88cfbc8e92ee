#!/usr/bin/env bash
# Sets everything up and runs every check: format, lint, unit, property, integration and end-to-end tests
# (S3-protocol server, Lambda binaries under the runtime emulator, mogr serve over HTTP, cfn-lint).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.local/bin:$PATH"
# A target dir outside the clone lets CI runs on one machine share compiled dependencies.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mogr-target}"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Builds the Lambda binaries too (the emulator test runs them), with the same features as the tests.
cargo build --workspace --all-targets --locked
cargo test --workspace --locked
