//! SSIMULACRA2 (the `ssimulacra2` crate) between two images: 100 is identical, 90 visually lossless,
//! 70 "high quality", 50 "medium". Alpha is composited onto white first, as a viewer would show it.

use crate::{codec, Error, Result};
use image::DynamicImage;
use ssimulacra2::{compute_frame_ssimulacra2, ColorPrimaries, Rgb, TransferCharacteristic};

fn to_rgb(img: &DynamicImage) -> Result<Rgb> {
    let rgb = codec::flatten(img);
    let data: Vec<[f32; 3]> = rgb
        .pixels()
        .map(|p| {
            [
                p[0] as f32 / 255.0,
                p[1] as f32 / 255.0,
                p[2] as f32 / 255.0,
            ]
        })
        .collect();
    Rgb::new(
        data,
        rgb.width() as usize,
        rgb.height() as usize,
        TransferCharacteristic::SRGB,
        ColorPrimaries::BT709,
    )
    .map_err(|e| Error::internal(format!("ssimulacra2 input: {e:?}")))
}

/// The SSIMULACRA2 score of `distorted` against `reference` (same size, at least 8×8).
pub fn ssimulacra2(reference: &DynamicImage, distorted: &DynamicImage) -> Result<f64> {
    compute_frame_ssimulacra2(to_rgb(reference)?, to_rgb(distorted)?)
        .map_err(|e| Error::invalid(format!("ssimulacra2: {e}")))
}
