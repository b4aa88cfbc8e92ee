#!/usr/bin/env bash
# Sets everything up, builds mogr and runs its main job on the embedded default: a copy of the shipped
# samples (made in ~/.cache/mogr/samples; writes land there, never in the checkout) served as the
# bucket on http://127.0.0.1:8080/ (GET ?imageMogr2/..., POST ?image_process, PUT). Arguments go to
# `mogr serve` (`--root DIR` serves your own folder); MOGR_ADDR sets the address.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mogr-target}"
if [ ! -x "$CARGO_TARGET_DIR/debug/mogr" ]; then
  echo "run.sh: the first build compiles C and C++ libraries (libheif, libwebp, mozjpeg," \
    "aws-lc) and about 460 crates: about 20 minutes on 2 cores, once; later runs start at once" \
    "(scripts/test.sh builds the same and shares it)."
fi
# What scripts/test.sh builds (the same profile, targets and features), so the two share every artefact.
cargo build --workspace --all-targets --locked
exec "$CARGO_TARGET_DIR/debug/mogr" serve --addr "${MOGR_ADDR:-127.0.0.1:8080}" "$@"
