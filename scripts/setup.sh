#!/usr/bin/env bash
# Installs every system package mogr needs. Idempotent: safe to run again.
# One list for everything: the README commands, .ci/run and the Dockerfile use this script.
#   bash scripts/setup.sh            build + test + benchmark machine (default)
#   bash scripts/setup.sh --build    system packages to build mogr, no test tools (container build stage)
#   bash scripts/setup.sh --runtime  only the shared libraries the compiled binaries load (container image)
set -euo pipefail

# Shared libraries the binaries link (libheif itself is compiled in, its codecs are not).
RUNTIME=(libde265-0 libx265-199 libaom3 libdav1d6 libnuma1 ca-certificates)
BUILD=(
  # toolchain for the C/C++ parts (libheif is compiled from source by libheif-sys `embedded-libheif`,
  # aws-lc by the AWS SDK)
  build-essential cmake pkg-config nasm git curl
  # HEIF/AVIF codecs libheif links against
  libde265-dev libx265-dev libaom-dev libdav1d-dev libnuma-dev
  # peers measured in the benchmark, and GNU time for each converter's own peak memory
  libvips-tools libheif-examples time
  # Python for the test tools below
  python3 python3-pip python3-venv
)
# Test tools from PyPI, pinned: the Lambda runtime emulator and the CloudFormation linter.
# cos-python-sdk-v5: Tencent's own COS SDK, driven against `mogr serve` by cli/tests/cos_sdk.rs
PY_TOOLS=(cargo-lambda==1.9.2 cfn-lint==1.51.0 cos-python-sdk-v5==1.9.44)

if [ "${1:-}" = "--runtime" ]; then
  PACKAGES=("${RUNTIME[@]}")
else
  PACKAGES=("${RUNTIME[@]}" "${BUILD[@]}")
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "system packages: ok (${#PACKAGES[@]} checked, ${#missing[@]} installed now)"

if [ -z "${1:-}" ]; then
  # A user-level install keeps Debian's Python untouched; pip skips what is already there.
  need_py=0
  command -v cargo-lambda >/dev/null && cargo lambda --version 2>/dev/null | grep -q "1.9.2" || need_py=1
  command -v cfn-lint >/dev/null && cfn-lint --version | grep -q "1.51.0" || need_py=1
  python3 -m pip show cos-python-sdk-v5 2>/dev/null | grep -q "^Version: 1.9.44$" || need_py=1
  if [ $need_py -eq 1 ]; then
    python3 -m pip install --quiet --user --break-system-packages "${PY_TOOLS[@]}" 2>/dev/null \
      || python3 -m pip install --quiet --user "${PY_TOOLS[@]}"
  fi
  echo "python tools: ok (${PY_TOOLS[*]})"
fi
