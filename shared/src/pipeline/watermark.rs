//! `watermark/1` and `watermark/2`: the mark (an image of the bucket, read by the service, or text drawn
//! by `text`) made once per picture — its own operations run, turned by `degree`, faded by `dissolve` —
//! then composited onto every frame at its gravity, or tiled over the whole frame (`batch/1`).

use super::text;
use crate::codec::{self, Frames, Limits};
use crate::rule::{Gravity, ImageMark, Mark, Op, Watermark};
use crate::{Error, Result};
use image::{DynamicImage, GenericImageView, RgbaImage};

/// The mark's size as it will be composited, from headers and font metrics alone: for [`super::plan`].
pub(super) fn plan(wm: &Watermark, limits: &Limits) -> Result<(u32, u32)> {
    let (w, h) = match &wm.mark {
        Mark::Image(m) => {
            let probe = codec::probe(object(m)?, limits).map_err(|e| about(m, e))?;
            super::plan(&m.ops, probe.upright(), 1, limits).map_err(|e| about(m, e))?
        }
        Mark::Text(t) => text::measure(t)?,
    };
    super::size_after(&Op::Rotate(wm.degree), w, h)
}

/// The mark, ready to composite: straight-alpha RGBA with `dissolve` applied.
pub(super) fn prepare(wm: &Watermark, limits: &Limits) -> Result<RgbaImage> {
    let mark = match &wm.mark {
        Mark::Image(m) => {
            let mut pic = codec::probe_and_decode(object(m)?, limits, Frames::First)
                .map_err(|e| about(m, e))?;
            super::run(&mut pic, &m.ops, limits).map_err(|e| about(m, e))?;
            pic.frames.swap_remove(0).image
        }
        Mark::Text(t) => DynamicImage::ImageRgba8(text::render(t)?),
    };
    let mark = match wm.degree {
        0 => mark,
        deg => {
            let (w, h) = mark.dimensions();
            let (nw, nh) = super::size_after(&Op::Rotate(deg), w, h)?;
            match deg {
                90 => mark.rotate90(),
                180 => mark.rotate180(),
                270 => mark.rotate270(),
                _ => super::rotate_any(&mark, deg, nw, nh),
            }
        }
    };
    let mut mark = mark.into_rgba8();
    if wm.dissolve < 100 {
        for p in mark.pixels_mut() {
            p[3] = ((p[3] as u32 * wm.dissolve as u32 + 50) / 100) as u8;
        }
    }
    Ok(mark)
}

/// `mark` composited onto `img`: once at the watermark's gravity, or tiled over it.
pub(super) fn apply(img: DynamicImage, mark: &RgbaImage, wm: &Watermark) -> DynamicImage {
    let (w, h) = img.dimensions();
    let (mw, mh) = mark.dimensions();
    let places = if wm.batch {
        tiles(w, h, mw, mh)
    } else {
        vec![place(wm.gravity, (w, h), (mw, mh), wm.dx, wm.dy)]
    };
    // 8-bit RGB(A) in place; other layouts (grey, 16-bit, float) become 8-bit RGB(A): the mark has colour
    if img.color().has_alpha() {
        let mut canvas = img.into_rgba8();
        for &(x, y) in &places {
            over(&mut canvas, mark, x, y, |dst, src, a| {
                let da = dst[3] as f32 / 255.0;
                let out = a + da * (1.0 - a);
                for c in 0..3 {
                    let v = (src[c] as f32 * a + dst[c] as f32 * da * (1.0 - a)) / out;
                    dst[c] = v.round() as u8;
                }
                dst[3] = (out * 255.0).round() as u8;
            });
        }
        DynamicImage::ImageRgba8(canvas)
    } else {
        let mut canvas = img.into_rgb8();
        for &(x, y) in &places {
            over(&mut canvas, mark, x, y, |dst, src, a| {
                for c in 0..3 {
                    dst[c] = (src[c] as f32 * a + dst[c] as f32 * (1.0 - a)).round() as u8;
                }
            });
        }
        DynamicImage::ImageRgb8(canvas)
    }
}

/// Blends `mark` onto `canvas` with its top-left corner at (x, y), clipped to the canvas: `blend`
/// gets each covered canvas pixel, the mark's pixel and its alpha (0..=1).
fn over<P: image::Pixel<Subpixel = u8>>(
    canvas: &mut image::ImageBuffer<P, Vec<u8>>,
    mark: &RgbaImage,
    x: i64,
    y: i64,
    blend: impl Fn(&mut [u8], &[u8], f32),
) {
    let (w, h) = (canvas.width() as i64, canvas.height() as i64);
    let (mw, mh) = (mark.width() as i64, mark.height() as i64);
    let (x0, x1) = (x.max(0), (x + mw).min(w));
    let (y0, y1) = (y.max(0), (y + mh).min(h));
    for cy in y0..y1 {
        for cx in x0..x1 {
            let src = mark.get_pixel((cx - x) as u32, (cy - y) as u32);
            if src[3] == 0 {
                continue;
            }
            let dst = canvas.get_pixel_mut(cx as u32, cy as u32);
            blend(dst.channels_mut(), &src.0, src[3] as f32 / 255.0);
        }
    }
}

/// The top-left corner of a `mw`×`mh` mark on a `w`×`h` picture at `gravity`, `dx`/`dy` in from the
/// edge it sits at (right and down from the middle); a mark larger than the picture is clipped.
fn place(
    gravity: Gravity,
    (w, h): (u32, u32),
    (mw, mh): (u32, u32),
    dx: u32,
    dy: u32,
) -> (i64, i64) {
    use Gravity::*;
    let (w, h, mw, mh, dx, dy) = (
        w as i64, h as i64, mw as i64, mh as i64, dx as i64, dy as i64,
    );
    let x = match gravity {
        NorthWest | West | SouthWest => dx,
        North | Center | South => (w - mw) / 2 + dx,
        NorthEast | East | SouthEast => w - mw - dx,
    };
    let y = match gravity {
        NorthWest | North | NorthEast => dy,
        West | Center | East => (h - mh) / 2 + dy,
        SouthWest | South | SouthEast => h - mh - dy,
    };
    (x, y)
}

/// `batch/1`: copies of a `mw`×`mh` mark over a `w`×`h` picture, from its top-left corner, half a
/// mark apart across and one mark's height apart down, every other row shifted by half a step.
fn tiles(w: u32, h: u32, mw: u32, mh: u32) -> Vec<(i64, i64)> {
    let step_x = (mw as i64 + (mw as i64 / 2).max(8)).max(1);
    let step_y = (mh as i64 * 2).max(mh as i64 + 8);
    let mut places = Vec::new();
    let mut y = 0;
    let mut row = 0;
    while y < h as i64 {
        let mut x = if row % 2 == 1 { -step_x / 2 } else { 0 };
        while x < w as i64 {
            places.push((x, y));
            x += step_x;
        }
        y += step_y;
        row += 1;
    }
    places
}

/// The watermark image as the service read it.
fn object(m: &ImageMark) -> Result<&[u8]> {
    m.object.as_ref().and_then(|o| o.bytes.as_deref()).ok_or_else(|| {
        Error::invalid(format!(
            "watermark/1 reads its image ({}) from the bucket the request is served from: use it in a \
             download, a Pic-Operations rule or POST ?image_process (mogr convert has no bucket)",
            m.url
        ))
    })
}

/// An error of the watermark image, said to be its.
fn about(m: &ImageMark, e: Error) -> Error {
    let key = m.object.as_ref().map_or(m.url.as_str(), |o| o.key.as_str());
    Error::new(
        e.code,
        format!("the watermark image {key:?}: {}", e.message),
    )
}
