//! `scrop/<W>x<H>`: the picture scaled to cover W×H, then cut to the W×H window that holds the most
//! "attention" — edges, saturated colour and skin tones, as libvips's `attention` crop and smartcrop.js
//! weigh them (no face model: none ships in the registries mogr builds from). The measure is taken on
//! a copy at most [`MEASURE_SIDE`] px a side; the window slides along each axis on the column and row
//! sums of that measure, ties going to the centre.

use crate::Result;
use image::{DynamicImage, GenericImageView};

/// The longer side of the copy attention is measured on.
const MEASURE_SIDE: u32 = 256;

/// The top-left corner of the `cw`×`ch` window of `img` that holds the most attention.
pub(super) fn window(img: &DynamicImage, cw: u32, ch: u32) -> Result<(u32, u32)> {
    let (w, h) = img.dimensions();
    if (cw, ch) == (w, h) {
        return Ok((0, 0));
    }
    let scale = (MEASURE_SIDE as f64 / w.max(h) as f64).min(1.0);
    let (sw, sh) = (
        ((w as f64 * scale).round() as u32).max(1),
        ((h as f64 * scale).round() as u32).max(1),
    );
    // downscaled first, then composited on white: no full-size copy of the picture
    let small = ((sw, sh) != (w, h))
        .then(|| super::resize(img, sw, sh))
        .transpose()?;
    let map = interest(&crate::codec::flatten(small.as_ref().unwrap_or(img)));
    let (mut cols, mut rows) = (vec![0f64; sw as usize], vec![0f64; sh as usize]);
    for (i, v) in map.iter().enumerate() {
        cols[i % sw as usize] += v;
        rows[i / sw as usize] += v;
    }
    let at = |profile: &[f64], full: u32, window: u32| -> u32 {
        let len = ((window as f64 * scale).round() as usize).clamp(1, profile.len());
        let start = best_start(profile, len);
        // back to full size, kept inside the picture
        ((start as f64 / scale).round() as u32).min(full - window)
    };
    Ok((at(&cols, w, cw), at(&rows, h, ch)))
}

/// Where a window of `len` along `profile` sums highest; among equal sums, the one nearest the centre.
fn best_start(profile: &[f64], len: usize) -> usize {
    let positions = profile.len() - len + 1;
    let centre = (positions - 1) as f64 / 2.0;
    let mut sum: f64 = profile[..len].iter().sum();
    let mut best = (sum, -centre.abs(), 0);
    for start in 1..positions {
        sum += profile[start + len - 1] - profile[start - 1];
        let candidate = (sum, -(start as f64 - centre).abs(), start);
        // sums within a hair are equal (float sums drift as the window slides)
        let better = candidate.0 > best.0 + 1e-6 * best.0.abs().max(1.0)
            || ((candidate.0 - best.0).abs() <= 1e-6 * best.0.abs().max(1.0)
                && candidate.1 > best.1);
        if better {
            best = candidate;
        }
    }
    best.2
}

/// Attention per pixel: the luma's Laplacian (detail, edges), saturation away from black and white,
/// and closeness to skin tones.
fn interest(img: &image::RgbImage) -> Vec<f64> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let raw = img.as_raw();
    let luma: Vec<f64> = raw
        .chunks_exact(3)
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .collect();
    let at = |x: usize, y: usize| luma[y * w + x];
    (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            let l = luma[i];
            let edge = (4.0 * l
                - at(x.saturating_sub(1), y)
                - at((x + 1).min(w - 1), y)
                - at(x, y.saturating_sub(1))
                - at(x, (y + 1).min(h - 1)))
            .abs();
            let p = &raw[3 * i..3 * i + 3];
            let (r, g, b) = (p[0] as f64, p[1] as f64, p[2] as f64);
            let (max, min) = (r.max(g).max(b), r.min(g).min(b));
            let saturation = if (40.0..=230.0).contains(&l) {
                max - min
            } else {
                0.0
            };
            edge + 0.5 * saturation + 120.0 * skin(r, g, b, l)
        })
        .collect()
}

/// 0..1: how close a colour's direction is to a skin tone's (smartcrop.js's measure), for pixels that
/// are neither dark nor blown out.
fn skin(r: f64, g: f64, b: f64, luma: f64) -> f64 {
    const SKIN: [f64; 3] = [0.78, 0.57, 0.44];
    let mag = (r * r + g * g + b * b).sqrt();
    if mag == 0.0 || !(50.0..=240.0).contains(&luma) {
        return 0.0;
    }
    let d =
        ((r / mag - SKIN[0]).powi(2) + (g / mag - SKIN[1]).powi(2) + (b / mag - SKIN[2]).powi(2))
            .sqrt();
    (1.0 - d / 0.1).max(0.0)
}
