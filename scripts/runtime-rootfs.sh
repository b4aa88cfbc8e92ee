#!/usr/bin/env bash
# The container image's final stage as a root file system, built the way the Dockerfile builds it but
# without Docker: Debian 12 minbase by debootstrap, then `scripts/setup.sh --runtime`. Prints its path.
# Cached under ~/.cache/mogr-rootfs, keyed on the runtime package list, so it is built once (about a
# minute) and reused until setup.sh's RUNTIME line changes. tests/tests/runtime_image.rs copies the
# function binaries in and runs conversions inside it. Needs root (or sudo) and debootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
runtime=$(grep -m1 '^RUNTIME=' scripts/setup.sh)
key=$(printf 'bookworm minbase\n%s\n' "$runtime" | sha256sum | cut -c1-16)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/mogr-rootfs"
root="$cache/$key"
if [ -x "$root/usr/bin/env" ] && [ -f "$root/.mogr-runtime-ready" ]; then
  echo "$root"
  exit 0
fi
# The machine's own configured Debian archive (as setup.sh finds it): no mirror is written here.
mirror=$(apt-get indextargets --format '$(REPO_URI) $(SUITE) $(COMPONENT)' 2>/dev/null \
  | awk '$2 !~ /security|updates|backports/ && $3 == "main" { print $1; exit }')
[ -n "$mirror" ] || { echo "runtime-rootfs: no Debian archive configured for apt" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "runtime-rootfs: debootstrap is missing (scripts/setup.sh installs it)" >&2; exit 1; }
mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap '$SUDO rm -rf "$work"' EXIT
echo "runtime-rootfs: debootstrap bookworm (minbase) from $mirror into $root" >&2
$SUDO debootstrap --variant=minbase bookworm "$work/root" "$mirror" >&2
$SUDO cp scripts/setup.sh "$work/root/tmp/setup.sh"
$SUDO cp /etc/resolv.conf "$work/root/etc/resolv.conf"
# what the Dockerfile's final stage runs
$SUDO chroot "$work/root" bash -c 'bash /tmp/setup.sh --runtime && rm -rf /var/lib/apt/lists/* /tmp/setup.sh' >&2
$SUDO touch "$work/root/.mogr-runtime-ready"
# older rootfs (another package list) go; the new one appears whole
for old in "$cache"/*; do
  [ "$old" = "$work" ] || $SUDO rm -rf "$old"
done
$SUDO mv "$work/root" "$root"
echo "$root"
