//! TIFF: read through `image`, written as 8-bit RGB or RGBA with ICC.

use super::{via_image, EncodeOptions, Format, Limits, Metadata, Picture};
use crate::{Error, Result};
use image::codecs::tiff::TiffEncoder;
use image::{DynamicImage, ImageEncoder};
use std::io::Cursor;

pub(super) fn decode(bytes: &[u8], limits: &Limits) -> Result<Picture> {
    via_image::decode_still(bytes, Format::Tiff, limits)
}

/// The first frame; EXIF is not written.
pub(super) fn encode(pic: &Picture, _opts: &EncodeOptions, meta: Metadata<'_>) -> Result<Vec<u8>> {
    let img = pic.first();
    let img8 = if img.color().has_alpha() {
        DynamicImage::ImageRgba8(img.to_rgba8())
    } else {
        DynamicImage::ImageRgb8(img.to_rgb8())
    };
    let mut out = Vec::new();
    let mut enc = TiffEncoder::new(Cursor::new(&mut out));
    if let Some(icc) = meta.icc {
        let _ = enc.set_icc_profile(icc.to_vec());
    }
    enc.write_image(
        img8.as_bytes(),
        img8.width(),
        img8.height(),
        img8.color().into(),
    )
    .map_err(|e| Error::internal(format!("tiff encoding failed: {e}")))?;
    Ok(out)
}
