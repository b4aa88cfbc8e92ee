#!/usr/bin/env bash
# Sets everything up, builds mogr and runs its main job on the embedded default: the shipped examples/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mogr-target}"
cargo build --release --locked -p mogr-cli
exec "$CARGO_TARGET_DIR/release/mogr" demo examples "$@"
