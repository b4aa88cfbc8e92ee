#!/usr/bin/env bash
# Installs every system package mogr needs to build, test and benchmark. Idempotent: safe to run again.
# Used by the README commands, by .ci/run and by the Dockerfile, so there is one list.
set -euo pipefail

PACKAGES=(
  # toolchain for the C/C++ parts (libheif is compiled from source by libheif-sys `embedded-libheif`)
  build-essential cmake pkg-config nasm git ca-certificates curl
  # HEIF/AVIF codecs libheif links against
  libde265-dev libx265-dev libaom-dev libdav1d-dev libnuma-dev
  # peers measured in the benchmark
  libvips-tools libheif-examples
  # local tools used by tests
  python3 python3-pip
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "system packages: ok (${#PACKAGES[@]} checked, ${#missing[@]} installed now)"
