//! SSIMULACRA2 (the SIMD `fast-ssim2` crate, scores within 0.01 of the reference `ssimulacra2` crate at a
//! fifth of its time) between two images: 100 is identical, 90 visually lossless, 70 "high quality", 50
//! "medium". Alpha is composited onto white first, as a viewer would show it.

use crate::{codec, Error, Result};
use fast_ssim2::Ssimulacra2Reference;
use image::DynamicImage;
use imgref::ImgVec;

fn to_rgb(img: &DynamicImage) -> ImgVec<[u8; 3]> {
    let rgb = codec::flatten(img);
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let pixels = rgb.pixels().map(|p| p.0).collect();
    ImgVec::new(pixels, w, h)
}

fn sized(reference: &DynamicImage, distorted: &DynamicImage) -> Result<()> {
    if (reference.width(), reference.height()) != (distorted.width(), distorted.height()) {
        return Err(Error::internal(format!(
            "ssimulacra2: {}x{} scored against {}x{}",
            distorted.width(),
            distorted.height(),
            reference.width(),
            reference.height()
        )));
    }
    Ok(())
}

/// The SSIMULACRA2 score of `distorted` against `reference` (same size).
pub fn ssimulacra2(reference: &DynamicImage, distorted: &DynamicImage) -> Result<f64> {
    sized(reference, distorted)?;
    fast_ssim2::compute_ssimulacra2(to_rgb(reference).as_ref(), to_rgb(distorted).as_ref())
        .map_err(|e| Error::internal(format!("ssimulacra2: {e}")))
}

/// A reference prepared once for scoring several candidates against it (about half the work of each
/// [`ssimulacra2`] call is the reference's).
pub struct Reference<'a> {
    image: &'a DynamicImage,
    prepared: Ssimulacra2Reference,
}

impl<'a> Reference<'a> {
    pub fn new(image: &'a DynamicImage) -> Result<Self> {
        let prepared = Ssimulacra2Reference::new(to_rgb(image).as_ref())
            .map_err(|e| Error::internal(format!("ssimulacra2 reference: {e}")))?;
        Ok(Reference { image, prepared })
    }

    /// The score of `distorted` (the reference's size) against the reference.
    pub fn score(&self, distorted: &DynamicImage) -> Result<f64> {
        sized(self.image, distorted)?;
        self.prepared
            .compare(to_rgb(distorted).as_ref())
            .map_err(|e| Error::internal(format!("ssimulacra2: {e}")))
    }
}
