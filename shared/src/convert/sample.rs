//! A small picture standing in for a large one in `quality/auto`'s search: tiles at the picture's own
//! scale, taken on an even grid across it and laid side by side in the same order. Tiles rather than a
//! downscale: the encoder and the score see the photo's own detail per pixel. Measured at the same
//! quality (BENCHMARKS.md), a sample of tiles scores 1.4–5.3 points above its picture — an optimism
//! `quality/auto` allows for — where a downscale scored anywhere from 4.3 below to 8.7 above.

use crate::codec::Picture;
use image::{DynamicImage, ImageBuffer, Pixel};

/// The side of a tile: two 64-pixel coding units of x265 and of aom.
const TILE: u32 = 128;
/// The sample takes about one pixel in this many.
const ONE_IN: u64 = 16;
/// Fewest and most tiles: below 16 a sample misses too much of a picture; 64 (1 MP) is plenty.
const TILES: (u64, u64) = (16, 64);

/// The sample of `pic` (its first frame) — `None` for a picture the fewest tiles would cover a quarter
/// of (under 1 MP), or under four tiles a side.
pub(super) fn sample(pic: &Picture) -> Option<Picture> {
    let image = pic.first();
    let (w, h) = (image.width(), image.height());
    let pixels = u64::from(w) * u64::from(h);
    let tile_px = u64::from(TILE * TILE);
    if pixels < 4 * TILES.0 * tile_px || w < 4 * TILE || h < 4 * TILE {
        return None;
    }
    let tiles = (pixels / ONE_IN / tile_px).clamp(TILES.0, TILES.1) as f64;
    // columns and rows in the picture's proportions, each at least 4 and fitting without overlap
    let across = ((tiles * f64::from(w) / f64::from(h)).sqrt().round() as u32).clamp(4, w / TILE);
    let down = ((tiles / f64::from(across)).round() as u32).clamp(4, h / TILE);
    // tile i of n is centred in the picture's i-th of n equal parts
    let origins = |n: u32, len: u32| -> Vec<u32> {
        (0..n)
            .map(|i| {
                let centre = (2 * u64::from(i) + 1) * u64::from(len) / (2 * u64::from(n));
                (centre as u32).saturating_sub(TILE / 2).min(len - TILE)
            })
            .collect()
    };
    let mosaic = tile(image, &origins(across, w), &origins(down, h));
    let mut out = Picture::still(mosaic, pic.format);
    out.icc = pic.icc.clone();
    out.quality = pic.quality;
    Some(out)
}

/// A picture of `image`'s pixel type made of [`TILE`]-sided squares of it, side by side: the square
/// in column `i` and row `j` is the one at `(xs[i], ys[j])` in `image`.
fn tile(image: &DynamicImage, xs: &[u32], ys: &[u32]) -> DynamicImage {
    fn copy<P: Pixel>(
        from: &ImageBuffer<P, Vec<P::Subpixel>>,
        xs: &[u32],
        ys: &[u32],
    ) -> ImageBuffer<P, Vec<P::Subpixel>> {
        let (w, h) = (xs.len() as u32 * TILE, ys.len() as u32 * TILE);
        ImageBuffer::from_fn(w, h, |x, y| {
            let sx = xs[(x / TILE) as usize] + x % TILE;
            let sy = ys[(y / TILE) as usize] + y % TILE;
            *from.get_pixel(sx, sy)
        })
    }
    match image {
        DynamicImage::ImageLuma8(b) => copy(b, xs, ys).into(),
        DynamicImage::ImageLumaA8(b) => copy(b, xs, ys).into(),
        DynamicImage::ImageRgb8(b) => copy(b, xs, ys).into(),
        DynamicImage::ImageRgba8(b) => copy(b, xs, ys).into(),
        DynamicImage::ImageLuma16(b) => copy(b, xs, ys).into(),
        DynamicImage::ImageLumaA16(b) => copy(b, xs, ys).into(),
        DynamicImage::ImageRgb16(b) => copy(b, xs, ys).into(),
        DynamicImage::ImageRgba16(b) => copy(b, xs, ys).into(),
        DynamicImage::ImageRgb32F(b) => copy(b, xs, ys).into(),
        DynamicImage::ImageRgba32F(b) => copy(b, xs, ys).into(),
        other => copy(&other.to_rgba8(), xs, ys).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Format;

    /// A picture whose every pixel says where it is: (x, y, 0), 16 bits a channel.
    fn addressed(w: u32, h: u32) -> Picture {
        let img = image::ImageBuffer::from_fn(w, h, |x, y| image::Rgb([x as u16, y as u16, 0]));
        Picture::still(DynamicImage::ImageRgb16(img), Format::Png)
    }

    #[test]
    fn a_sample_is_whole_tiles_spread_over_the_picture() {
        for (w, h) in [(1024, 1024), (5640, 3172), (1200, 4000), (2560, 1600)] {
            let pic = addressed(w, h);
            let sample = sample(&pic).expect("a sample");
            let DynamicImage::ImageRgb16(s) = sample.first() else {
                panic!("{w}×{h}: the sample keeps the pixel type");
            };
            let (across, down) = (s.width() / TILE, s.height() / TILE);
            assert_eq!((across * TILE, down * TILE), s.dimensions());
            let tiles = u64::from(across * down);
            let pixels = u64::from(w) * u64::from(h);
            // 16 to 64, give or take the rounding of rows and columns to the picture's proportions
            assert!((16..=72).contains(&tiles), "{w}×{h}: {tiles} tiles");
            assert!(tiles * u64::from(TILE * TILE) <= pixels / 4, "{w}×{h}");
            // in the picture's proportions (at least four tiles a side)
            let ratio = f64::from(across) / f64::from(down);
            let aspect = f64::from(w) / f64::from(h);
            let off = (ratio / aspect).max(aspect / ratio);
            assert!(
                off < 1.5 || across.min(down) == 4,
                "{w}×{h}: {across}×{down}"
            );
            let mut firsts = Vec::new();
            for j in 0..down {
                for i in 0..across {
                    let [x0, y0, _] = s.get_pixel(i * TILE, j * TILE).0;
                    // each tile is a whole square of the picture, in place
                    for (dx, dy) in [(1, 0), (0, 1), (TILE - 1, TILE - 1)] {
                        let p = s.get_pixel(i * TILE + dx, j * TILE + dy).0;
                        assert_eq!(p, [x0 + dx as u16, y0 + dy as u16, 0], "{w}×{h}");
                    }
                    firsts.push((x0, y0));
                }
            }
            // left to right and top to bottom as in the picture, the outer ones near its edges
            assert!(firsts
                .windows(2)
                .all(|p| p[0].1 < p[1].1 || p[0].0 < p[1].0));
            let (last_x, last_y) = firsts[firsts.len() - 1];
            assert!(u32::from(firsts[0].0) < w / across && u32::from(firsts[0].1) < h / down);
            assert!(u32::from(last_x) + TILE > w - w / across, "{w}×{h}");
            assert!(u32::from(last_y) + TILE > h - h / down, "{w}×{h}");
        }
    }

    #[test]
    fn small_pictures_are_searched_whole() {
        assert!(sample(&addressed(1000, 1000)).is_none(), "under 1 MP");
        assert!(
            sample(&addressed(8000, 500)).is_none(),
            "under four tiles high"
        );
        assert!(sample(&addressed(1024, 1024)).is_some());
    }
}
