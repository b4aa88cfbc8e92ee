#!/usr/bin/env bash
# Fetches the benchmark corpus from Debian's registry (never committed): mate-backgrounds' photos and
# renders, via `apt-get download` into a cache folder. Prints the folder holding the images.
set -euo pipefail
cache="${MOGR_CORPUS:-$HOME/.cache/mogr-corpus}"
mkdir -p "$cache"
cd "$cache"
if [ ! -d x/usr/share/backgrounds/mate ]; then
  ls mate-backgrounds_*.deb >/dev/null 2>&1 || apt-get download mate-backgrounds >/dev/null
  dpkg-deb -x mate-backgrounds_*.deb x
fi
echo "$cache/x/usr/share/backgrounds/mate"
