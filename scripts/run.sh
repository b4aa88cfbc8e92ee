#!/usr/bin/env bash
# Sets everything up, builds mogr and runs its main job on the embedded default: the shipped examples/
# folder served as the bucket on http://127.0.0.1:8080/ (GET ?imageMogr2/..., POST ?image_process, PUT).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mogr-target}"
cargo build --release --locked -p mogr-cli
exec "$CARGO_TARGET_DIR/release/mogr" serve --root examples --addr "${MOGR_ADDR:-127.0.0.1:8080}" "$@"
