#!/usr/bin/env bash
# Fetches the benchmark corpus from Debian's registry (never committed): mate-backgrounds' photos and
# renders, via `apt-get download` into a cache folder. Prints the folder holding the images.
#
# mate-backgrounds' only 15–18 MP photo (abstract/Elephants_5640x3172.jpg) is a 16 MB *progressive* JPEG
# saved at near-maximum quality, unlike what cameras and phones write. Beside it the script derives
# derived/Elephants_5640x3172_q92_baseline.jpg: the same pixels re-saved by libvips as a baseline JPEG at
# quality 92 (8 MB, like a camera's), so the benchmark shows both kinds of large JPEG.
set -euo pipefail
cache="${MOGR_CORPUS:-$HOME/.cache/mogr-corpus}"
mkdir -p "$cache"
cd "$cache"
if [ ! -d x/usr/share/backgrounds/mate ]; then
  ls mate-backgrounds_*.deb >/dev/null 2>&1 || apt-get download mate-backgrounds >/dev/null
  dpkg-deb -x mate-backgrounds_*.deb x
fi
mate="$cache/x/usr/share/backgrounds/mate"
if [ ! -f "$mate/derived/Elephants_5640x3172_q92_baseline.jpg" ]; then
  mkdir -p "$mate/derived"
  vips copy "$mate/abstract/Elephants_5640x3172.jpg" \
    "$mate/derived/Elephants_5640x3172_q92_baseline.jpg[Q=92,strip]"
fi
echo "$mate"
