#!/usr/bin/env python3
"""Regenerates shared/tests/fixtures/: small decoder fixtures that mogr's own encoders cannot make
(CMYK and progressive JPEG, palette/grey/16-bit/interlaced PNG, animated and lossless WebP, EXIF
orientations 1-8). Needs Pillow (`pip install pillow`) and `vips` (libvips-tools). Outputs are committed."""
import subprocess, sys
from PIL import Image, ImageDraw

out = sys.argv[1] if len(sys.argv) > 1 else "shared/tests/fixtures"
W, H = 96, 64

def photo(mode="RGB"):
    """A smooth gradient with a red top-left quadrant, so orientation mistakes are visible."""
    im = Image.new("RGB", (W, H))
    px = im.load()
    for y in range(H):
        for x in range(W):
            px[x, y] = (40 + x, 60 + y * 2, 150 - x // 2)
    ImageDraw.Draw(im).rectangle([0, 0, W // 2 - 1, H // 2 - 1], fill=(230, 20, 20))
    return im.convert(mode) if mode != "RGB" else im

p = photo()
p.save(f"{out}/baseline.jpg", quality=90)
p.save(f"{out}/progressive.jpg", quality=90, progressive=True)
p.convert("CMYK").save(f"{out}/cmyk.jpg", quality=90)
p.convert("L").save(f"{out}/grey.jpg", quality=90)
p.save(f"{out}/rgb.png")
p.convert("L").save(f"{out}/grey.png")
la = p.convert("LA"); la.putalpha(Image.linear_gradient("L").resize((W, H))); la.save(f"{out}/grey-alpha.png")
p.convert("P", palette=Image.ADAPTIVE, colors=64).save(f"{out}/palette.png")
rgba = p.convert("RGBA"); rgba.putalpha(Image.linear_gradient("L").rotate(90).resize((W, H))); rgba.save(f"{out}/rgba.png")
subprocess.run(["vips", "colourspace", f"{out}/rgb.png", f"{out}/rgb16.png", "rgb16"], check=True)
subprocess.run(["vips", "pngsave", f"{out}/rgb.png", f"{out}/interlaced.png", "--interlace"], check=True)
p.save(f"{out}/lossy.webp", quality=80)
p.save(f"{out}/lossless.webp", lossless=True)
rgba.save(f"{out}/alpha.webp", quality=80)
frames = [photo().rotate(i * 30) for i in range(4)]
frames[0].save(f"{out}/animated.webp", save_all=True, append_images=frames[1:], duration=100, loop=0)
frames[0].save(f"{out}/animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
p.save(f"{out}/still.gif")
p.save(f"{out}/rgb.bmp")
p.save(f"{out}/rgb.tiff")

# EXIF orientation N: store the pixels transformed so that applying N gives back the upright photo.
inverse = {
    1: lambda im: im,
    2: lambda im: im.transpose(Image.FLIP_LEFT_RIGHT),
    3: lambda im: im.transpose(Image.ROTATE_180),
    4: lambda im: im.transpose(Image.FLIP_TOP_BOTTOM),
    5: lambda im: im.transpose(Image.TRANSPOSE),
    6: lambda im: im.transpose(Image.ROTATE_90),
    7: lambda im: im.transpose(Image.TRANSVERSE),
    8: lambda im: im.transpose(Image.ROTATE_270),
}
for n, f in inverse.items():
    exif = Image.Exif(); exif[0x0112] = n
    f(p).save(f"{out}/orientation-{n}.jpg", quality=92, exif=exif.tobytes())
print("wrote", out)
