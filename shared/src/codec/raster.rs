//! JPEG/PNG/GIF/BMP/TIFF decoding and PNG/GIF/BMP/TIFF encoding through the `image` crate.

use super::{bad_input, flatten, Format, Frame, Limits, Metadata, Picture};
use crate::{Error, Result};
use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader};
use std::io::Cursor;

pub(super) fn image_format(f: Format) -> ImageFormat {
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

fn reader<'a>(bytes: &'a [u8], format: Format, limits: &Limits) -> ImageReader<Cursor<&'a [u8]>> {
    let mut r = ImageReader::with_format(Cursor::new(bytes), image_format(format));
    r.limits(limits.image_limits());
    r
}

pub(super) fn dimensions(bytes: &[u8], format: Format, limits: &Limits) -> Result<(u32, u32)> {
    let dec = reader(bytes, format, limits)
        .into_decoder()
        .map_err(|e| header_error(format, e))?;
    Ok(dec.dimensions())
}

/// Decoder errors raised while reading a header: limits get their own wording.
fn header_error(format: Format, e: image::ImageError) -> Error {
    match e {
        image::ImageError::Limits(l) => Error::invalid(format!(
            "the {} input is larger than mogr's limits ({l}); the limits are 30000 px a side and 100 megapixels",
            format.name().to_uppercase()
        )),
        e => bad_input(format, e),
    }
}

/// Decodes one still image (the first frame of a GIF), applying and clearing its EXIF orientation.
pub(super) fn decode(bytes: &[u8], format: Format, limits: &Limits) -> Result<Picture> {
    let mut dec = reader(bytes, format, limits)
        .into_decoder()
        .map_err(|e| header_error(format, e))?;
    let (w, h) = dec.dimensions();
    limits.check_dimensions(w, h)?;
    let icc = dec.icc_profile().ok().flatten();
    let exif = dec.exif_metadata().ok().flatten();
    still_with_metadata(dec, format, icc, exif)
}

/// Finishes decoding `dec` into an upright picture that carries its metadata.
pub(super) fn still_with_metadata(
    dec: impl ImageDecoder,
    format: Format,
    icc: Option<Vec<u8>>,
    mut exif: Option<Vec<u8>>,
) -> Result<Picture> {
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

/// Decodes every frame of a GIF, composited onto the full canvas, within the frame and pixel limits.
pub(super) fn decode_gif_frames(bytes: &[u8], limits: &Limits) -> Result<Picture> {
    let mut dec = GifDecoder::new(Cursor::new(bytes)).map_err(|e| header_error(Format::Gif, e))?;
    dec.set_limits(limits.image_limits())
        .map_err(|e| header_error(Format::Gif, e))?;
    let (w, h) = dec.dimensions();
    limits.check_dimensions(w, h)?;
    let frames = collect_frames(dec.into_frames(), Format::Gif, w, h, limits)?;
    Ok(Picture {
        frames,
        ..Picture::still(DynamicImage::new_rgba8(1, 1), Format::Gif)
    })
}

/// Collects animation frames, refusing before the next frame is decoded once a limit would be passed.
pub(super) fn collect_frames(
    frames: image::Frames<'_>,
    format: Format,
    w: u32,
    h: u32,
    limits: &Limits,
) -> Result<Vec<Frame>> {
    let mut out = Vec::new();
    for frame in frames {
        limits.check_frames(out.len() as u32 + 1, w, h)?;
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

/// PNG, BMP and TIFF.
pub(super) fn encode(img: &DynamicImage, format: Format, meta: Metadata<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let enc_err =
        |e: image::ImageError| Error::internal(format!("{} encoding failed: {e}", format.name()));
    match format {
        Format::Png => {
            let mut enc = PngEncoder::new_with_quality(
                &mut out,
                CompressionType::Default,
                FilterType::Adaptive,
            );
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
            .map_err(enc_err)?;
        }
        Format::Bmp => {
            let rgb = flatten(img);
            image::codecs::bmp::BmpEncoder::new(&mut out)
                .write_image(
                    rgb.as_raw(),
                    rgb.width(),
                    rgb.height(),
                    image::ExtendedColorType::Rgb8,
                )
                .map_err(enc_err)?;
        }
        Format::Tiff => {
            let img8 = if img.color().has_alpha() {
                DynamicImage::ImageRgba8(img.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(img.to_rgb8())
            };
            let mut enc = image::codecs::tiff::TiffEncoder::new(Cursor::new(&mut out));
            if let Some(icc) = meta.icc {
                let _ = enc.set_icc_profile(icc.to_vec());
            }
            enc.write_image(
                img8.as_bytes(),
                img8.width(),
                img8.height(),
                img8.color().into(),
            )
            .map_err(enc_err)?;
        }
        other => {
            return Err(Error::internal(format!(
                "raster::encode does not write {}",
                other.name()
            )))
        }
    }
    Ok(out)
}

/// GIF: every frame of an animation (a still becomes one frame), looping forever.
pub(super) fn encode_gif(pic: &Picture) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        // speed 10 is the encoder's balance between palette quality and time.
        let mut enc = GifEncoder::new_with_speed(&mut out, 10);
        let enc_err = |e: image::ImageError| Error::internal(format!("gif encoding failed: {e}"));
        enc.set_repeat(Repeat::Infinite).map_err(enc_err)?;
        let frames = pic.frames.iter().map(|f| {
            let delay = image::Delay::from_numer_denom_ms(f.delay_ms, 1);
            let mut rgba = f.image.to_rgba8();
            // GIF transparency is on or off: below half opacity a pixel becomes transparent.
            for p in rgba.pixels_mut() {
                p.0 = if p[3] < 128 {
                    [0, 0, 0, 0]
                } else {
                    [p[0], p[1], p[2], 255]
                };
            }
            image::Frame::from_parts(rgba, 0, 0, delay)
        });
        enc.encode_frames(frames).map_err(enc_err)?;
    }
    Ok(out)
}
