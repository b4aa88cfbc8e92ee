#!/usr/bin/env bash
# Installs every system package mogr needs. Idempotent: safe to run again.
# One list for everything: the README commands, .ci/run and the Dockerfile use this script.
#   bash scripts/setup.sh            build + test + benchmark machine (default)
#   bash scripts/setup.sh --build    system packages to build mogr, no test tools (container build stage)
#   bash scripts/setup.sh --runtime  only the shared libraries the compiled binaries load (container image)
set -euo pipefail

# Shared libraries the binaries link (libheif and libaom 3.14 are compiled in, the other codecs are not;
# libaom3 is for a build that fell back to Debian's libaom, see install_aom below), and the fonts text
# watermarks are drawn with: DejaVu Sans for COS's Latin fonts, WenQuanYi Micro Hei for Chinese.
RUNTIME=(libde265-0 libx265-199 libaom3 libdav1d6 libnuma1 ca-certificates fonts-dejavu-core fonts-wqy-microhei)
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
# Test tools from Debian: node runs template.yaml's CloudFront Function on sample requests
# (tests/tests/template.rs); debootstrap builds the container image's root file system without Docker
# (scripts/runtime-rootfs.sh, tests/tests/runtime_image.rs).
TEST=(nodejs debootstrap)
# Test tools from PyPI, pinned: the Lambda runtime emulator and the CloudFormation linter.
# cos-python-sdk-v5: Tencent's own COS SDK, driven against `mogr serve` by cli/tests/cos_sdk.rs;
# boto3 and the AWS CLI (v1, the one on PyPI; boto3 at the botocore it pins), by cli/tests/s3_clients.rs
# moto: AWS's Secrets Manager API locally, where tests/tests/lambda.rs keeps the functions' access keys
# prometheus-client: Prometheus's own parser of the text format, for `mogr serve`'s /_mogr/metrics
PY_TOOLS=(cargo-lambda==1.9.2 cfn-lint==1.51.0 cos-python-sdk-v5==1.9.44 awscli==1.46.3 boto3==1.43.11
  "moto[server]==5.2.6" prometheus-client==0.26.0)

if [ "${1:-}" = "--runtime" ]; then
  PACKAGES=("${RUNTIME[@]}")
elif [ "${1:-}" = "--build" ]; then
  PACKAGES=("${RUNTIME[@]}" "${BUILD[@]}")
else
  PACKAGES=("${RUNTIME[@]}" "${BUILD[@]}" "${TEST[@]}")
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

# libaom, the AV1 encoder behind mogr's AVIF. Debian 12's 3.6 spends 1.5–1.7× the bytes of 3.14 on
# noisy renders at equal SSIMULACRA2 (photos: the same; BENCHMARKS.md), so mogr links 3.14.1, built
# once from Debian's own source package into ~/.cache and installed static into /usr/local's multiarch
# libdir, which pkg-config and the linker search before /usr/lib: the libheif compiled into mogr picks it
# up, while the peers (vips) keep Debian's shared 3.6. Without the download, mogr builds against 3.6.
AOM_VERSION=3.14.1
AOM_SHA256=4ef9882eda023582499511b845f4d4368a34c9886f545a7eea4ca20799d3c161
# The source tarball comes from the pool of the Debian archive this machine's apt is configured with
# (the pool holds every suite's files: 3.14.1 is forky's and sid's).
debian_archive() {
  apt-get indextargets --format '$(REPO_URI) $(SUITE) $(COMPONENT)' 2>/dev/null \
    | awk '$2 !~ /security|updates|backports/ && $3 == "main" { print $1; exit }'
}
# Falling back to Debian 12's libaom 3.6 is said loudly: AVIF outputs then take 1.5-1.7x the bytes on
# noisy renders (BENCHMARKS.md). MOGR_REQUIRE_AOM=1 makes it an error instead (release builds).
aom_fallback() {
  {
    echo "=================================================================================="
    echo "WARNING: libaom $AOM_VERSION will not be used: $1."
    echo "  mogr builds against the system's libaom instead; its AVIF outputs are larger (1.5-1.7x"
    echo "  the bytes on noisy images at equal quality). To fix: configure an apt source whose pool"
    echo "  holds aom_${AOM_VERSION}.orig.tar.xz (sha256 $AOM_SHA256),"
    echo "  then run scripts/setup.sh again."
    echo "=================================================================================="
  } >&2
  if [ "${MOGR_REQUIRE_AOM:-0}" = "1" ]; then
    echo "MOGR_REQUIRE_AOM=1: stopping" >&2
    exit 1
  fi
}
install_aom() {
  local libdir
  libdir="lib/$(gcc -print-multiarch)"
  if grep -qs "^Version: ${AOM_VERSION}$" "/usr/local/$libdir/pkgconfig/aom.pc"; then
    echo "libaom $AOM_VERSION: ok (/usr/local/$libdir)"
    return 0
  fi
  local cache="$HOME/.cache/mogr-aom-$AOM_VERSION"
  if [ ! -f "$cache/build/built" ]; then
    mkdir -p "$cache/src"
    local archive
    archive="$(debian_archive)"
    AOM_URL="${archive%/}/pool/main/a/aom/aom_${AOM_VERSION}.orig.tar.xz"
    if ! curl -fsSL --retry 3 -o "$cache/src.tar.xz" "$AOM_URL" \
      || ! echo "$AOM_SHA256  $cache/src.tar.xz" | sha256sum -c --quiet; then
      aom_fallback "its source is not available (or not the pinned one) at $AOM_URL"
      return 0
    fi
    tar xJf "$cache/src.tar.xz" -C "$cache/src"  # this tarball has no top directory
    echo "libaom $AOM_VERSION: building (a few minutes, once)"
    if ! { cmake -S "$cache/src" -B "$cache/build" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX=/usr/local -DCMAKE_INSTALL_LIBDIR="$libdir" \
      -DBUILD_SHARED_LIBS=0 -DCMAKE_POSITION_INDEPENDENT_CODE=1 -DENABLE_DOCS=0 -DENABLE_EXAMPLES=0 \
      -DENABLE_TESTDATA=0 -DENABLE_TESTS=0 -DENABLE_TOOLS=0 \
      && cmake --build "$cache/build" -j "$(nproc)"; } > "$cache/build.log" 2>&1; then
      tail -20 "$cache/build.log" >&2
      echo "libaom $AOM_VERSION: build failed (log: $cache/build.log)" >&2
      exit 1
    fi
    touch "$cache/build/built"
  fi
  $SUDO cmake --install "$cache/build" > /dev/null
  echo "libaom $AOM_VERSION: installed in /usr/local/$libdir"
}
if [ "${1:-}" != "--runtime" ]; then
  install_aom
fi

if [ -z "${1:-}" ]; then
  # A user-level install keeps Debian's Python untouched; pip skips what is already there.
  need_py=0
  command -v cargo-lambda >/dev/null && cargo lambda --version 2>/dev/null | grep -q "1.9.2" || need_py=1
  command -v cfn-lint >/dev/null && cfn-lint --version | grep -q "1.51.0" || need_py=1
  python3 -m pip show cos-python-sdk-v5 2>/dev/null | grep -q "^Version: 1.9.44$" || need_py=1
  python3 -m pip show awscli 2>/dev/null | grep -q "^Version: 1.46.3$" || need_py=1
  python3 -m pip show boto3 2>/dev/null | grep -q "^Version: 1.43.11$" || need_py=1
  python3 -m pip show moto 2>/dev/null | grep -q "^Version: 5.2.6$" || need_py=1
  python3 -m pip show prometheus-client 2>/dev/null | grep -q "^Version: 0.26.0$" || need_py=1
  if [ $need_py -eq 1 ]; then
    python3 -m pip install --quiet --user --break-system-packages "${PY_TOOLS[@]}" 2>/dev/null \
      || python3 -m pip install --quiet --user "${PY_TOOLS[@]}"
  fi
  echo "python tools: ok (${PY_TOOLS[*]})"
fi
