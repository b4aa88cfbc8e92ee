//! Runs a rule's operations over a decoded picture, in order, one small function per step. Every frame of
//! an animation gets the same steps. Sizes are computed and checked against the output limit before any
//! new buffer is allocated.

mod adjust;
mod attention;
mod text;
mod watermark;

use crate::codec::{Frame, Limits, Picture};
use crate::rule::{Flip, Gravity, Op, Scale, CGIF_FIRST};
use crate::{Error, Result};
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{imageops, DynamicImage, GenericImageView, Rgba, RgbaImage};

pub fn run(pic: &mut Picture, ops: &[Op], limits: &Limits) -> Result<()> {
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Frame(n) => {
                check_frame(i, n, pic.frames.len() as u32)?;
                let mut one = pic.frames.swap_remove(n as usize - 1);
                one.delay_ms = 0;
                pic.frames = vec![one];
                continue;
            }
            Op::Cgif(n) => {
                pic.frames = fewer_frames(std::mem::take(&mut pic.frames), n);
                continue;
            }
            Op::Watermark(ref wm) => {
                let mark = watermark::prepare(wm, limits)?;
                for frame in &mut pic.frames {
                    limits.check_deadline()?;
                    let img = std::mem::replace(&mut frame.image, DynamicImage::new_rgb8(0, 0));
                    frame.image = watermark::apply(img, &mark, wm);
                }
                continue;
            }
            _ => {}
        }
        for frame in &mut pic.frames {
            limits.check_deadline()?;
            if let Some(next) = step(i, op, &frame.image, limits)? {
                frame.image = next;
            }
        }
    }
    Ok(())
}

/// Every step's result size from the input's size alone, checked as [`run`] would check it: with
/// `frames` frames going into the steps (`frame` and `cgif` steps change how many go on), no stage may
/// hold more than the pixel limit, and no step that makes an image larger may pass the output side
/// limit. Called before decoding, so that a rule is refused before any pixel is decoded rather than
/// after 100 MP of work. Returns the final size.
pub fn plan(ops: &[Op], size: (u32, u32), frames: u32, limits: &Limits) -> Result<(u32, u32)> {
    planned(ops, size, frames, limits).map(|p| p.size)
}

/// What [`plan`] finds: the result's size and frames, and the most pixels a step makes (all frames; a
/// watermark's mark and `scrop`'s cover included) — for the memory plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub size: (u32, u32),
    pub frames: u32,
    pub step_pixels: u64,
}

/// [`plan`], with the frames and the largest step.
pub fn planned(ops: &[Op], size: (u32, u32), frames: u32, limits: &Limits) -> Result<Planned> {
    let start = Planned {
        size,
        frames,
        step_pixels: 0,
    };
    ops.iter().enumerate().try_fold(start, |p, (i, op)| {
        let (w, h) = p.size;
        let frames = match *op {
            Op::Frame(n) => {
                check_frame(i, n, p.frames)?;
                1
            }
            Op::Cgif(n) => kept_frames(n, p.frames),
            _ => p.frames,
        };
        let next = size_after(op, w, h)?;
        let cover = check_cover(i, op, frames, (w, h), limits)?;
        let mark = check_mark(i, op, frames, (w, h), limits)?;
        check_step(i, op, frames, next, limits)?;
        check_upscale(i, size, next, limits)?;
        let made = frames as u64 * next.0 as u64 * next.1 as u64;
        Ok(Planned {
            size: next,
            frames,
            step_pixels: p.step_pixels.max(made + cover + mark),
        })
    })
}

/// `frame/<n>` of a picture with `frames` frames.
fn check_frame(i: usize, n: u32, frames: u32) -> Result<()> {
    if n > frames {
        let held = if frames == 1 {
            "a still image (1 frame)".to_string()
        } else {
            format!("an animation of {frames} frames")
        };
        return Err(Error::invalid(format!(
            "step {} of the rule asks for frame {n}, but the picture is {held}: frames count from 1",
            i + 1
        )));
    }
    Ok(())
}

/// How many of `frames` frames `cgif/<n>` keeps.
fn kept_frames(n: u32, frames: u32) -> u32 {
    frames.min(if n == 1 { CGIF_FIRST } else { n })
}

/// `cgif/<n>`: `n` frames picked evenly (the first always), each shown for the frames it replaces;
/// `cgif/1`: the first [`CGIF_FIRST`] as they are.
fn fewer_frames(mut frames: Vec<Frame>, n: u32) -> Vec<Frame> {
    let total = frames.len();
    let keep = kept_frames(n, total as u32) as usize;
    if n == 1 || keep == total {
        frames.truncate(keep);
        return frames;
    }
    // total > keep, so the picks are strictly increasing
    let picks: Vec<usize> = (0..keep).map(|k| k * total / keep).collect();
    let delays: Vec<u32> = frames.iter().map(|f| f.delay_ms).collect();
    frames
        .into_iter()
        .enumerate()
        .filter_map(|(i, mut f)| {
            let k = picks.binary_search(&i).ok()?;
            let end = picks.get(k + 1).copied().unwrap_or(total);
            f.delay_ms = delays[i..end]
                .iter()
                .fold(0u32, |a, d| a.saturating_add(*d));
            Some(f)
        })
        .collect()
}

/// `max_upscale`: no step may make the longer side more than that many times the input's.
fn check_upscale(i: usize, input: (u32, u32), (w, h): (u32, u32), limits: &Limits) -> Result<()> {
    let longest = input.0.max(input.1) as u64;
    if limits.max_upscale > 0 && w.max(h) as u64 > longest * limits.max_upscale as u64 {
        return Err(Error::invalid(format!(
            "step {} of the rule would enlarge the {}x{} image to {w}x{h}, more than {}x its longer side, \
             the limit here",
            i + 1,
            input.0,
            input.1,
            limits.max_upscale
        )));
    }
    Ok(())
}

/// `scrop` scales to cover its window before it cuts: that picture is held too, and checked as a
/// thumbnail's would be (a 50000×10 strip covering 100×100 would be 500000×100). Returns its pixels.
fn check_cover(i: usize, op: &Op, frames: u32, (w, h): (u32, u32), limits: &Limits) -> Result<u64> {
    if let Op::Scrop { width, height } = *op {
        let cover = Op::Thumbnail(Scale::Cover { width, height });
        let size = size_after(&cover, w, h)?;
        check_step(i, &cover, frames, size, limits)?;
        return Ok(frames as u64 * size.0 as u64 * size.1 as u64);
    }
    Ok(0)
}

/// A watermark's mark is held beside the picture while it is composited: it is counted with it.
/// Returns its pixels.
fn check_mark(i: usize, op: &Op, frames: u32, (w, h): (u32, u32), limits: &Limits) -> Result<u64> {
    if let Op::Watermark(wm) = op {
        let (mw, mh) = watermark::plan(wm, limits)?;
        let total = frames as u64 * w as u64 * h as u64 + mw as u64 * mh as u64;
        let max = limits.max_pixels.min(limits.max_output_pixels);
        if total > max {
            return Err(Error::invalid(format!(
                "step {} of the rule composites a {mw}x{mh} watermark onto {frames} frame(s) of {w}x{h}: \
                 {total} pixels, more than the {max} allowed here; use a smaller mark",
                i + 1
            )));
        }
        return Ok(mw as u64 * mh as u64);
    }
    Ok(0)
}

fn check_step(i: usize, op: &Op, frames: u32, (w, h): (u32, u32), limits: &Limits) -> Result<()> {
    let grows = matches!(op, Op::Thumbnail(_) | Op::Pad { .. } | Op::Scrop { .. })
        || matches!(op, Op::Rotate(deg) if deg % 90 != 0);
    if grows {
        limits.check_output(w, h)?;
    }
    let total = frames as u64 * w as u64 * h as u64;
    let max = limits.max_pixels.min(limits.max_output_pixels);
    if total > max {
        let what = if frames == 1 {
            format!("{w}x{h} = {total} pixels")
        } else {
            format!("{frames} frames of {w}x{h} = {total} pixels")
        };
        return Err(Error::invalid(format!(
            "step {} of the rule would make {what}; the limit is {max} pixels: ask for a smaller result",
            i + 1,
        )));
    }
    Ok(())
}

/// The size of an image after `op`, from a `w`×`h` image.
fn size_after(op: &Op, w: u32, h: u32) -> Result<(u32, u32)> {
    Ok(match *op {
        Op::Thumbnail(scale) => scaled_size(scale, w, h),
        Op::Pad { width, height, .. } => (width, height),
        Op::Scrop { width, height } => {
            let (cw, ch) = scaled_size(Scale::Cover { width, height }, w, h);
            (width.min(cw), height.min(ch))
        }
        Op::Cut {
            width,
            height,
            x,
            y,
        } => {
            if x >= w || y >= h {
                return Err(Error::invalid(format!(
                    "cut starts at {x},{y}, outside the {w}x{h} image: use an offset inside it"
                )));
            }
            (width.min(w - x), height.min(h - y))
        }
        Op::Crop { width, height, .. } => (width.unwrap_or(w).min(w), height.unwrap_or(h).min(h)),
        Op::CropEdges { long, short } if w >= h => (long.min(w), short.min(h)),
        Op::CropEdges { long, short } => (short.min(w), long.min(h)),
        Op::IRadius(r) => {
            let side = 2 * r.min(w / 2).min(h / 2).max(1);
            (side.min(w), side.min(h))
        }
        Op::Rotate(90) | Op::Rotate(270) => (h, w),
        Op::Rotate(deg) if deg % 90 != 0 => {
            let (s, c) = (deg as f64).to_radians().sin_cos();
            (
                (w as f64 * c.abs() + h as f64 * s.abs()).ceil() as u32,
                (w as f64 * s.abs() + h as f64 * c.abs()).ceil() as u32,
            )
        }
        Op::Rotate(_)
        | Op::AutoOrient
        | Op::RRadius(_)
        | Op::Flip(_)
        | Op::Blur { .. }
        | Op::Sharpen(_)
        | Op::Bright(_)
        | Op::Contrast(_)
        | Op::Grayscale
        | Op::Frame(_)
        | Op::Cgif(_)
        | Op::Watermark(_) => (w, h),
    })
}

/// Operation `i` of a rule on one image; `None` when it leaves the image as it is.
fn step(i: usize, op: &Op, img: &DynamicImage, limits: &Limits) -> Result<Option<DynamicImage>> {
    let (w, h) = img.dimensions();
    let (nw, nh) = size_after(op, w, h)?;
    check_cover(i, op, 1, (w, h), limits)?;
    check_step(i, op, 1, (nw, nh), limits)?;
    Ok(match *op {
        Op::Thumbnail(_) => ((nw, nh) != (w, h))
            .then(|| resize(img, nw, nh))
            .transpose()?,
        Op::Pad { color, .. } => Some(pad(img, nw, nh, color)),
        Op::Scrop { width, height } => {
            let (cw, ch) = scaled_size(Scale::Cover { width, height }, w, h);
            let covered = ((cw, ch) != (w, h))
                .then(|| resize(img, cw, ch))
                .transpose()?;
            let covered = covered.as_ref().unwrap_or(img);
            let (x, y) = attention::window(covered, nw, nh)?;
            Some(covered.crop_imm(x, y, nw, nh))
        }
        Op::Cut { x, y, .. } => Some(img.crop_imm(x, y, nw, nh)),
        Op::Crop {
            gravity, dx, dy, ..
        } => {
            let (x, y) = place(gravity, w, h, nw, nh, dx, dy);
            Some(img.crop_imm(x, y, nw, nh))
        }
        Op::CropEdges { .. } => {
            let (x, y) = place(Gravity::Center, w, h, nw, nh, 0, 0);
            Some(img.crop_imm(x, y, nw, nh))
        }
        Op::IRadius(_) => Some(inscribed_circle(img, nw)),
        Op::RRadius(r) => Some(rounded_corners(img, r)),
        Op::Rotate(0) | Op::AutoOrient => None, // decoding already applied the EXIF orientation
        Op::Rotate(90) => Some(img.rotate90()),
        Op::Rotate(180) => Some(img.rotate180()),
        Op::Rotate(270) => Some(img.rotate270()),
        Op::Rotate(deg) => Some(rotate_any(img, deg, nw, nh)),
        Op::Flip(Flip::Vertical) => Some(img.flipv()),
        Op::Flip(Flip::Horizontal) => Some(img.fliph()),
        Op::Blur { radius, sigma } => {
            let s = if sigma == 0 {
                radius as f32 / 2.0
            } else {
                sigma as f32
            };
            Some(img.fast_blur(s.max(0.5)))
        }
        Op::Sharpen(amount) => Some(img.unsharpen(amount as f32 / 50.0, 1)),
        Op::Bright(b) => Some(adjust::bright(img, b)),
        Op::Contrast(c) => Some(adjust::contrast(img, c)),
        Op::Grayscale => adjust::grayscale(img),
        Op::Frame(_) | Op::Cgif(_) | Op::Watermark(_) => None, // whole-picture steps: `run` does them
    })
}

/// The size a thumbnail scale gives a `w`×`h` image (each side at least 1).
pub fn scaled_size(scale: Scale, w: u32, h: u32) -> (u32, u32) {
    let (fw, fh) = (w as f64, h as f64);
    let by = |s: f64| {
        (
            (fw * s).round().max(1.0) as u32,
            (fh * s).round().max(1.0) as u32,
        )
    };
    let fit = |tw: u32, th: u32| (tw as f64 / fw).min(th as f64 / fh);
    match scale {
        Scale::Percent(p) => by(p as f64 / 100.0),
        Scale::WidthPercent(p) => (by(p as f64 / 100.0).0, h),
        Scale::HeightPercent(p) => (w, by(p as f64 / 100.0).1),
        Scale::Width(tw) => (tw, (fh * tw as f64 / fw).round().max(1.0) as u32),
        Scale::Height(th) => ((fw * th as f64 / fh).round().max(1.0) as u32, th),
        Scale::Fit { width, height } => by(fit(width, height)),
        Scale::Shrink { width, height } => {
            let s = fit(width, height);
            if s < 1.0 {
                by(s)
            } else {
                (w, h)
            }
        }
        Scale::Enlarge { width, height } => {
            let s = fit(width, height);
            if s > 1.0 {
                by(s)
            } else {
                (w, h)
            }
        }
        Scale::Cover { width, height } => by((width as f64 / fw).max(height as f64 / fh)),
        Scale::Exact { width, height } => (width, height),
        Scale::Edges { long, short, cover } => {
            let (l, s) = (fw.max(fh), fw.min(fh));
            let factors = [long.map(|t| t as f64 / l), short.map(|t| t as f64 / s)];
            let given = factors.into_iter().flatten();
            by(if cover {
                given.fold(0.0, f64::max)
            } else {
                given.fold(f64::INFINITY, f64::min)
            })
        }
        Scale::Area(a) => {
            let s = (a as f64 / (fw * fh)).sqrt();
            // floor, so that the result never exceeds the area
            (
                ((fw * s).floor().max(1.0)) as u32,
                ((fh * s).floor().max(1.0)) as u32,
            )
        }
    }
}

/// SIMD resampling (Lanczos3) with `fast_image_resize`; alpha is premultiplied while filtering.
pub fn resize(img: &DynamicImage, w: u32, h: u32) -> Result<DynamicImage> {
    let mut dst = DynamicImage::new(w, h, img.color());
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize(img, &mut dst, &opts)
        .map_err(|e| Error::internal(format!("resize to {w}x{h} failed: {e}")))?;
    Ok(dst)
}

/// Top-left corner of a `cw`×`ch` window in a `w`×`h` image at `gravity`, moved inwards by dx/dy.
fn place(gravity: Gravity, w: u32, h: u32, cw: u32, ch: u32, dx: u32, dy: u32) -> (u32, u32) {
    use Gravity::*;
    let (free_x, free_y) = (w - cw, h - ch);
    let x = match gravity {
        NorthWest | West | SouthWest => dx.min(free_x),
        North | Center | South => (free_x / 2).saturating_add(dx).min(free_x),
        NorthEast | East | SouthEast => free_x.saturating_sub(dx),
    };
    let y = match gravity {
        NorthWest | North | NorthEast => dy.min(free_y),
        West | Center | East => (free_y / 2).saturating_add(dy).min(free_y),
        SouthWest | South | SouthEast => free_y.saturating_sub(dy),
    };
    (x, y)
}

fn pad(img: &DynamicImage, w: u32, h: u32, color: [u8; 3]) -> DynamicImage {
    let (iw, ih) = img.dimensions();
    let (x, y) = (
        (w.saturating_sub(iw) / 2) as i64,
        (h.saturating_sub(ih) / 2) as i64,
    );
    if img.color().has_alpha() {
        let mut canvas = RgbaImage::from_pixel(w, h, Rgba([color[0], color[1], color[2], 255]));
        imageops::overlay(&mut canvas, &img.to_rgba8(), x, y);
        DynamicImage::ImageRgba8(canvas)
    } else {
        let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb(color));
        imageops::replace(&mut canvas, &img.to_rgb8(), x, y);
        DynamicImage::ImageRgb8(canvas)
    }
}

/// Coverage (0..=1) of the pixel at (px, py) by a disc of radius r centred at (cx, cy), antialiased
/// over one pixel.
fn disc_coverage(px: u32, py: u32, cx: f32, cy: f32, r: f32) -> f32 {
    let d = ((px as f32 + 0.5 - cx).powi(2) + (py as f32 + 0.5 - cy).powi(2)).sqrt();
    (r - d + 0.5).clamp(0.0, 1.0)
}

fn with_alpha_mask(mut rgba: RgbaImage, coverage: impl Fn(u32, u32) -> f32) -> DynamicImage {
    for (x, y, p) in rgba.enumerate_pixels_mut() {
        let c = coverage(x, y);
        if c < 1.0 {
            p[3] = (p[3] as f32 * c).round() as u8;
        }
    }
    DynamicImage::ImageRgba8(rgba)
}

/// The centred `side`×`side` square (clipped to the image) masked to its inscribed disc.
fn inscribed_circle(img: &DynamicImage, side: u32) -> DynamicImage {
    let (w, h) = img.dimensions();
    let sq = img.crop_imm(
        (w - side.min(w)) / 2,
        (h - side.min(h)) / 2,
        side.min(w),
        side.min(h),
    );
    let c = (side / 2) as f32;
    with_alpha_mask(sq.to_rgba8(), |x, y| disc_coverage(x, y, c, c, c))
}

fn rounded_corners(img: &DynamicImage, r: u32) -> DynamicImage {
    let (w, h) = img.dimensions();
    let r = r.min(w / 2).min(h / 2);
    if r == 0 {
        return img.clone();
    }
    let rf = r as f32;
    with_alpha_mask(img.to_rgba8(), |x, y| {
        let cx = if x < r {
            rf
        } else if x >= w - r {
            (w - r) as f32
        } else {
            return 1.0;
        };
        let cy = if y < r {
            rf
        } else if y >= h - r {
            (h - r) as f32
        } else {
            return 1.0;
        };
        disc_coverage(x, y, cx, cy, rf)
    })
}

/// Clockwise rotation by any angle onto an `nw`×`nh` canvas (from [`size_after`]) that holds the
/// result; the corners are transparent.
fn rotate_any(img: &DynamicImage, deg: u32, nw: u32, nh: u32) -> DynamicImage {
    let (w, h) = img.dimensions();
    let (s, c) = (deg as f64).to_radians().sin_cos();
    let src = img.to_rgba8();
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let (ncx, ncy) = (nw as f64 / 2.0, nh as f64 / 2.0);
    let out = RgbaImage::from_fn(nw, nh, |x, y| {
        // inverse mapping: destination pixel centre -> source coordinates
        let (dx, dy) = (x as f64 + 0.5 - ncx, y as f64 + 0.5 - ncy);
        let sx = dx * c + dy * s + cx - 0.5;
        let sy = -dx * s + dy * c + cy - 0.5;
        bilinear(&src, sx, sy)
    });
    DynamicImage::ImageRgba8(out)
}

fn bilinear(src: &RgbaImage, x: f64, y: f64) -> Rgba<u8> {
    let (w, h) = (src.width() as i64, src.height() as i64);
    let (x0, y0) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let mut acc = [0f64; 4];
    for (xx, yy, wgt) in [
        (x0, y0, (1.0 - fx) * (1.0 - fy)),
        (x0 + 1, y0, fx * (1.0 - fy)),
        (x0, y0 + 1, (1.0 - fx) * fy),
        (x0 + 1, y0 + 1, fx * fy),
    ] {
        if xx >= 0 && yy >= 0 && xx < w && yy < h {
            let p = src.get_pixel(xx as u32, yy as u32);
            let a = p[3] as f64 * wgt;
            for i in 0..3 {
                acc[i] += p[i] as f64 * a; // premultiplied, so transparent neighbours do not darken edges
            }
            acc[3] += a;
        }
    }
    if acc[3] <= 0.0 {
        return Rgba([0, 0, 0, 0]);
    }
    let px = |v: f64| (v / acc[3]).round().clamp(0.0, 255.0) as u8;
    Rgba([
        px(acc[0]),
        px(acc[1]),
        px(acc[2]),
        acc[3].round().clamp(0.0, 255.0) as u8,
    ])
}

#[cfg(test)]
mod tests;
