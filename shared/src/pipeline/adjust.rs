//! Colour adjustments: `bright`, `contrast` (one tone curve over every colour channel, as ImageMagick's
//! `-brightness-contrast`) and `grayscale`. Alpha is never touched; every sample depth keeps its depth.

use image::DynamicImage;

/// ImageMagick's `-brightness-contrast BxC` as a curve over [0, 1]: `slope · v + intercept`, with
/// slope = tan(π/4 · (1 + C/100)) and intercept = B/100 + (100 − B)/200 · (1 − slope).
fn brightness_contrast(bright: i32, contrast: i32) -> impl Fn(f32) -> f32 {
    let (b, c) = (bright as f64 / 100.0, contrast as f64 / 100.0);
    let slope = (std::f64::consts::FRAC_PI_4 * (1.0 + c)).tan().max(0.0);
    let intercept = b + (1.0 - b) / 2.0 * (1.0 - slope);
    move |v| (slope * v as f64 + intercept) as f32
}

/// `/bright/<b>`: every colour channel moved by b % of full scale.
pub(super) fn bright(img: &DynamicImage, b: i32) -> DynamicImage {
    tone(img, &brightness_contrast(b, 0))
}

/// `/contrast/<c>`: channels stretched away from (c > 0) or pulled towards (c < 0) mid-grey.
pub(super) fn contrast(img: &DynamicImage, c: i32) -> DynamicImage {
    tone(img, &brightness_contrast(0, c))
}

/// Applies `curve` (over [0, 1], clamped after) to every colour sample: through a table for 8- and
/// 16-bit samples, directly for floating point.
fn tone(img: &DynamicImage, curve: &dyn Fn(f32) -> f32) -> DynamicImage {
    let n = img.color().channel_count() as usize;
    let colour = if img.color().has_alpha() { n - 1 } else { n };
    let table = |max: f32| -> Vec<f32> {
        (0..=max as usize)
            .map(|v| (curve(v as f32 / max).clamp(0.0, 1.0) * max).round())
            .collect()
    };
    let (t8, t16) = (|| table(255.0), || table(65535.0));
    let eight = |t: Vec<f32>| {
        move |px: &mut [u8]| {
            px[..colour]
                .iter_mut()
                .for_each(|s| *s = t[*s as usize] as u8)
        }
    };
    let sixteen = |t: Vec<f32>| {
        move |px: &mut [u16]| {
            px[..colour]
                .iter_mut()
                .for_each(|s| *s = t[*s as usize] as u16)
        }
    };
    let float = |px: &mut [f32]| {
        px[..colour]
            .iter_mut()
            .for_each(|s| *s = curve(*s).clamp(0.0, 1.0))
    };
    let mut out = img.clone();
    match &mut out {
        DynamicImage::ImageLuma8(b) => each_pixel(b, n, eight(t8())),
        DynamicImage::ImageLumaA8(b) => each_pixel(b, n, eight(t8())),
        DynamicImage::ImageRgb8(b) => each_pixel(b, n, eight(t8())),
        DynamicImage::ImageRgba8(b) => each_pixel(b, n, eight(t8())),
        DynamicImage::ImageLuma16(b) => each_pixel(b, n, sixteen(t16())),
        DynamicImage::ImageLumaA16(b) => each_pixel(b, n, sixteen(t16())),
        DynamicImage::ImageRgb16(b) => each_pixel(b, n, sixteen(t16())),
        DynamicImage::ImageRgba16(b) => each_pixel(b, n, sixteen(t16())),
        DynamicImage::ImageRgb32F(b) => each_pixel(b, n, float),
        DynamicImage::ImageRgba32F(b) => each_pixel(b, n, float),
        // a layout this code does not know yet: through 32-bit float RGBA
        _ => return tone(&DynamicImage::ImageRgba32F(img.to_rgba32f()), curve),
    }
    out
}

/// `/grayscale/1`: Rec. 709 luma (the weights `image` uses) in R, G and B; grey layouts are left as
/// they are. The layout stays RGB so that an ICC profile the output carries still fits it.
pub(super) fn grayscale(img: &DynamicImage) -> Option<DynamicImage> {
    const W: [f32; 3] = [0.2126, 0.7152, 0.0722];
    if !img.color().has_color() {
        return None;
    }
    let n = img.color().channel_count() as usize;
    let grey16 = |px: &mut [u16]| {
        let y = W.iter().zip(&*px).map(|(w, &s)| w * s as f32).sum::<f32>();
        px[..3].fill(y.round() as u16);
    };
    let float = |px: &mut [f32]| {
        let y = W.iter().zip(&*px).map(|(w, s)| w * s).sum::<f32>();
        px[..3].fill(y);
    };
    let mut out = img.clone();
    match &mut out {
        DynamicImage::ImageRgb8(b) => each_pixel(b, n, grey8),
        DynamicImage::ImageRgba8(b) => each_pixel(b, n, grey8),
        DynamicImage::ImageRgb16(b) => each_pixel(b, n, grey16),
        DynamicImage::ImageRgba16(b) => each_pixel(b, n, grey16),
        DynamicImage::ImageRgb32F(b) => each_pixel(b, n, float),
        DynamicImage::ImageRgba32F(b) => each_pixel(b, n, float),
        _ => return grayscale(&DynamicImage::ImageRgba32F(img.to_rgba32f())),
    }
    Some(out)
}

/// 8-bit luma in integers: the Rec. 709 weights in 256ths (54 + 183 + 19), rounded.
fn grey8(px: &mut [u8]) {
    let y = (54 * px[0] as u32 + 183 * px[1] as u32 + 19 * px[2] as u32 + 128) >> 8;
    px[..3].fill(y as u8);
}

fn each_pixel<S>(samples: &mut [S], channels: usize, f: impl FnMut(&mut [S])) {
    samples.chunks_exact_mut(channels).for_each(f);
}
