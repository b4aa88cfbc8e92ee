//! Reading through the `image` crate (JPEG via zune-jpeg, PNG, GIF, WebP via image-webp, BMP, TIFF): the
//! header, a still with its metadata, and animation frames, each within mogr's [`Limits`].

use super::picture::capped;
use super::{bad_input, png, Format, Frame, Limits, Picture};
use crate::{Error, Result};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use std::borrow::Cow;
use std::io::Cursor;

fn image_format(f: Format) -> ImageFormat {
    match f {
        Format::Jpeg => ImageFormat::Jpeg,
        Format::Png => ImageFormat::Png,
        Format::Gif => ImageFormat::Gif,
        Format::Webp => ImageFormat::WebP,
        Format::Bmp => ImageFormat::Bmp,
        Format::Tiff => ImageFormat::Tiff,
        Format::Heif | Format::Avif => ImageFormat::Avif,
    }
}

/// The bytes a decoder may be given: a PNG without a metadata bomb ([`png::without_metadata_bombs`]).
fn defused(bytes: &[u8], format: Format) -> Cow<'_, [u8]> {
    match format {
        Format::Png => png::without_metadata_bombs(bytes),
        _ => Cow::Borrowed(bytes),
    }
}

fn reader<'a>(bytes: &'a [u8], format: Format, limits: &Limits) -> ImageReader<Cursor<&'a [u8]>> {
    let mut r = ImageReader::with_format(Cursor::new(bytes), image_format(format));
    r.limits(limits.image_limits());
    r
}

/// Width and height from the header, and whether the EXIF orientation turns the picture a quarter.
pub(super) fn dimensions(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
) -> Result<((u32, u32), bool)> {
    use image::metadata::Orientation::*;
    let bytes = defused(bytes, format);
    let mut dec = reader(&bytes, format, limits)
        .into_decoder()
        .map_err(|e| header_error(format, limits, e))?;
    let quarter = matches!(
        dec.orientation(),
        Ok(Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH)
    );
    Ok((dec.dimensions(), quarter))
}

/// Decoder errors raised while reading a header: limits get their own wording, naming the limits set.
pub(super) fn header_error(format: Format, limits: &Limits, e: image::ImageError) -> Error {
    match e {
        image::ImageError::Limits(l) => Error::invalid(format!(
            "the {} input is larger than mogr's limits ({l}); the limits are {}",
            format.name().to_uppercase(),
            limits.describe()
        )),
        e => bad_input(format, e),
    }
}

/// Decodes one still image (the first frame of an animation), applying and clearing its EXIF orientation.
pub(super) fn decode_still(bytes: &[u8], format: Format, limits: &Limits) -> Result<Picture> {
    let bytes = defused(bytes, format);
    let mut dec = reader(&bytes, format, limits)
        .into_decoder()
        .map_err(|e| header_error(format, limits, e))?;
    let (w, h) = dec.dimensions();
    limits.check_dimensions(w, h)?;
    let icc = dec.icc_profile().ok().flatten();
    let exif = dec.exif_metadata().ok().flatten();
    still_with_metadata(dec, format, icc, exif)
}

/// Finishes decoding `dec` into an upright picture that carries its metadata (each block within the cap).
pub(super) fn still_with_metadata(
    dec: impl ImageDecoder,
    format: Format,
    icc: Option<Vec<u8>>,
    exif: Option<Vec<u8>>,
) -> Result<Picture> {
    let icc = capped(icc, "ICC profile");
    let mut exif = capped(exif, "EXIF");
    let orientation = exif
        .as_mut()
        .and_then(|e| image::metadata::Orientation::remove_from_exif_chunk(e))
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(dec).map_err(|e| bad_input(format, e))?;
    img.apply_orientation(orientation);
    Ok(Picture {
        frames: vec![Frame {
            image: img,
            delay_ms: 0,
        }],
        format,
        icc,
        exif,
        orientation: orientation.to_exif(),
        quality: None,
    })
}

/// Collects animation frames, refusing before the next frame is decoded once a limit would be passed.
pub(super) fn collect_frames(
    frames: impl IntoIterator<Item = image::ImageResult<image::Frame>>,
    format: Format,
    w: u32,
    h: u32,
    limits: &Limits,
) -> Result<Vec<Frame>> {
    let mut out = Vec::new();
    for frame in frames {
        limits.check_frames(out.len() as u32 + 1, w, h)?;
        limits.check_deadline()?;
        let frame = frame.map_err(|e| bad_input(format, e))?;
        let (num, den) = frame.delay().numer_denom_ms();
        let delay_ms = num.checked_div(den).unwrap_or(0);
        out.push(Frame {
            image: DynamicImage::ImageRgba8(frame.into_buffer()),
            delay_ms,
        });
    }
    if out.is_empty() {
        return Err(bad_input(format, "it has no frames"));
    }
    Ok(out)
}
