//! PNG: read through `image`, written by its PNG encoder (adaptive filters) with ICC and EXIF.

use super::{via_image, EncodeOptions, Format, Limits, Metadata, Picture};
use crate::{Error, Result};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::ImageEncoder;

pub(super) fn decode(bytes: &[u8], limits: &Limits) -> Result<Picture> {
    via_image::decode_still(bytes, Format::Png, limits)
}

/// The first frame, lossless; `opts` has nothing PNG uses (quality does not apply, interlace is not written).
pub(super) fn encode(pic: &Picture, _opts: &EncodeOptions, meta: Metadata<'_>) -> Result<Vec<u8>> {
    let img = pic.first();
    let mut out = Vec::new();
    let mut enc =
        PngEncoder::new_with_quality(&mut out, CompressionType::Default, FilterType::Adaptive);
    if let Some(icc) = meta.icc {
        let _ = enc.set_icc_profile(icc.to_vec());
    }
    if let Some(exif) = meta.exif {
        let _ = enc.set_exif_metadata(exif.to_vec());
    }
    enc.write_image(
        img.as_bytes(),
        img.width(),
        img.height(),
        img.color().into(),
    )
    .map_err(|e| Error::internal(format!("png encoding failed: {e}")))?;
    Ok(out)
}
