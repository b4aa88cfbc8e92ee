#!/usr/bin/env bash
# Fetches the benchmark corpus from Debian's registry (never committed): mate-backgrounds' photos and
# renders, via `apt-get download` into a cache folder. Prints the folder holding the images.
# With the argument `graphics`: flat graphics instead — screenshots and an illustration from
# gnome-user-docs, renders and a logo with alpha from desktop-base — copied into one folder, which it prints.
#
# mate-backgrounds' only 15–18 MP photo (abstract/Elephants_5640x3172.jpg) is a 16 MB *progressive* JPEG
# saved at near-maximum quality, unlike what cameras and phones write. Beside it the script derives
# derived/Elephants_5640x3172_q92_baseline.jpg: the same pixels re-saved by libvips as a baseline JPEG at
# quality 92 (8 MB, like a camera's), so the benchmark shows both kinds of large JPEG.
set -euo pipefail
cache="${MOGR_CORPUS:-$HOME/.cache/mogr-corpus}"
mkdir -p "$cache"
cd "$cache"
if [ "${1:-}" = graphics ]; then
  mkdir -p gfx
  cd gfx
  if [ ! -d x/usr/share/help/C/gnome-help ] || [ ! -d x/usr/share/desktop-base ]; then
    ls gnome-user-docs_*.deb desktop-base_*.deb >/dev/null 2>&1 ||
      apt-get download gnome-user-docs desktop-base >/dev/null
    for deb in gnome-user-docs_*.deb desktop-base_*.deb; do dpkg-deb -x "$deb" x; done
  fi
  mkdir -p graphics
  figures=x/usr/share/help/C/gnome-help/figures
  for f in screenshot-tool shell-appts shell-exit-expanded shell-workspaces color-camera; do
    cp -u "$figures/$f.png" graphics/
  done
  cp -u x/usr/share/desktop-base/emerald-theme/grub/grub-16x9.png graphics/emerald-grub.png
  cp -u x/usr/share/desktop-base/spacefun-theme/grub/grub-16x9.png graphics/spacefun-grub.png
  cp -u x/usr/share/plymouth/themes/lines/logo.png graphics/lines-logo.png
  echo "$cache/gfx/graphics"
  exit 0
fi
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
