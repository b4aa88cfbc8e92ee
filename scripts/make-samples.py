#!/usr/bin/env python3
"""Regenerates examples/: two public-domain/CC0 photos from the scikit-image wheel, plus three images drawn
here (a PNG with alpha, an animated GIF, a screenshot-like PNG). Needs `pip install pillow scikit-image`'s
wheel only for the photos: `pip download --no-deps scikit-image -d /tmp/skw` first. Outputs are committed."""
import glob, io, math, sys, zipfile
from PIL import Image, ImageDraw, ImageFont

out = sys.argv[1] if len(sys.argv) > 1 else "examples"
wheel = glob.glob("/tmp/skw/scikit_image-*.whl")[0]
z = zipfile.ZipFile(wheel)
# rocket.jpg: SpaceX launch photo, released into the public domain. coffee.png: CC0 (Rachel Michetti).
open(f"{out}/photo.jpg", "wb").write(z.read("skimage/data/rocket.jpg"))
open(f"{out}/photo.png", "wb").write(z.read("skimage/data/coffee.png"))

# alpha.png: soft-edged coloured discs on a transparent background (alpha gradients exercise every encoder).
W, H = 480, 320
img = Image.new("RGBA", (W, H), (0, 0, 0, 0))
px = img.load()
for y in range(H):
    for x in range(W):
        r = math.hypot(x - W / 2, y - H / 2) / (H / 2)
        a = max(0.0, min(1.0, 1.2 - r))
        px[x, y] = (int(255 * x / W), int(255 * y / H), 160, int(255 * a))
img.save(f"{out}/alpha.png", optimize=True)

# animated.gif: 12 frames of a ball crossing a striped background.
frames = []
for i in range(12):
    f = Image.new("RGB", (160, 120), (250, 250, 245))
    d = ImageDraw.Draw(f)
    for s in range(0, 160, 20):
        d.rectangle([s, 0, s + 9, 119], fill=(220, 230, 250))
    cx = 15 + i * 12
    d.ellipse([cx - 14, 46, cx + 14, 74], fill=(220, 40, 40), outline=(90, 0, 0))
    frames.append(f)
frames[0].save(f"{out}/animated.gif", save_all=True, append_images=frames[1:], duration=80, loop=0)

# screenshot.png: flat UI colours, sharp edges and text, as a screen capture has.
s = Image.new("RGB", (800, 500), (255, 255, 255))
d = ImageDraw.Draw(s)
font = ImageFont.load_default(size=16)
d.rectangle([0, 0, 800, 48], fill=(36, 41, 47))
d.text((16, 14), "mogr - Image Advanced Compression", fill=(255, 255, 255), font=font)
d.rectangle([0, 48, 180, 500], fill=(246, 248, 250))
for i, item in enumerate(["Buckets", "Rules", "Formats", "Usage", "Settings"]):
    d.text((20, 70 + 36 * i), item, fill=(36, 41, 47), font=font)
for i in range(8):
    y = 70 + i * 50
    d.rectangle([200, y, 780, y + 40], outline=(208, 215, 222), fill=(255, 255, 255) if i % 2 else (250, 251, 252))
    d.text((212, y + 12), f"photo-{i:03d}.png  ->  photo-{i:03d}.heic   {96 - i}% smaller", fill=(9, 105, 218), font=font)
s.save(f"{out}/screenshot.png", optimize=True)
print("wrote", out)
