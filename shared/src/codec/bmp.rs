//! BMP: read through `image`, written as 24-bit RGB (alpha composited onto white).

use super::{flatten, via_image, EncodeOptions, Format, Limits, Metadata, Picture};
use crate::{Error, Result};
use image::codecs::bmp::BmpEncoder;
use image::ImageEncoder;

pub(super) fn decode(bytes: &[u8], limits: &Limits) -> Result<Picture> {
    via_image::decode_still(bytes, Format::Bmp, limits)
}

/// The first frame; BMP carries no metadata.
pub(super) fn encode(pic: &Picture, _opts: &EncodeOptions, _meta: Metadata<'_>) -> Result<Vec<u8>> {
    let rgb = flatten(pic.first());
    let mut out = Vec::new();
    BmpEncoder::new(&mut out)
        .write_image(
            rgb.as_raw(),
            rgb.width(),
            rgb.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| Error::internal(format!("bmp encoding failed: {e}")))?;
    Ok(out)
}
