//! HEIF (HEVC: x265 to write, libde265 to read) and AVIF (AV1: aom to write, dav1d to read) through
//! libheif, compiled from source and linked statically (`libheif-rs`, feature `embedded-libheif`).

use super::{bad_input, EncodeOptions, Format, Frame, Limits, Metadata, Picture, Profile};
use crate::{Error, Result};
use image::DynamicImage;
use libheif_rs::{
    color_profile_types, Channel, ColorProfile, ColorProfileRaw, ColorSpace, CompressionFormat,
    DecodingOptions, EncoderParameterValue, EncoderQuality, EncodingOptions, HeifContext, Image,
    LibHeif, RgbChroma,
};

fn heif_err(format: Format, e: libheif_rs::HeifError) -> Error {
    bad_input(format, e.message)
}

/// Width and height of the primary image; `format` (from the brands) names the input in errors.
pub(super) fn dimensions(bytes: &[u8], format: Format) -> Result<(u32, u32)> {
    let ctx = HeifContext::read_from_bytes(bytes).map_err(|e| heif_err(format, e))?;
    let handle = ctx
        .primary_image_handle()
        .map_err(|e| heif_err(format, e))?;
    Ok((handle.width(), handle.height()))
}

pub(super) fn decode(bytes: &[u8], format: Format, limits: &Limits) -> Result<Picture> {
    let lib = LibHeif::new();
    let ctx = HeifContext::read_from_bytes(bytes).map_err(|e| heif_err(format, e))?;
    let handle = ctx
        .primary_image_handle()
        .map_err(|e| heif_err(format, e))?;
    let (w, h) = (handle.width(), handle.height());
    limits.check_dimensions(w, h)?;
    let alpha = handle.has_alpha_channel();
    let mut opts =
        DecodingOptions::new().ok_or_else(|| Error::internal("libheif: decoding options"))?;
    opts.set_convert_hdr_to_8bit(true);
    let chroma = if alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    let img = lib
        .decode(&handle, ColorSpace::Rgb(chroma), Some(opts))
        .map_err(|e| heif_err(format, e))?;
    let planes = img.planes();
    let plane = planes
        .interleaved
        .ok_or_else(|| bad_input(format, "no interleaved RGB plane after decoding"))?;
    let channels = if alpha { 4 } else { 3 };
    let row = plane.width as usize * channels;
    let mut px = Vec::with_capacity(row * plane.height as usize);
    for y in 0..plane.height as usize {
        px.extend_from_slice(&plane.data[y * plane.stride..y * plane.stride + row]);
    }
    let (pw, ph) = (plane.width, plane.height);
    let image = if alpha {
        image::RgbaImage::from_raw(pw, ph, px).map(DynamicImage::ImageRgba8)
    } else {
        image::RgbImage::from_raw(pw, ph, px).map(DynamicImage::ImageRgb8)
    }
    .ok_or_else(|| bad_input(format, "decoded plane has an unexpected size"))?;

    let icc = handle
        .color_profile_raw()
        .filter(|p| {
            [color_profile_types::PROF, color_profile_types::R_ICC].contains(&p.profile_type())
        })
        .map(|p| p.data);
    // HEIF stores EXIF behind a 4-byte offset to its TIFF header. libheif has already applied the
    // container's rotation and mirroring, so any EXIF orientation left in it is reset to 1.
    let exif = handle
        .all_metadata()
        .into_iter()
        .find(|m| &m.item_type.0 == b"Exif")
        .and_then(|m| {
            let off = u32::from_be_bytes(m.raw_data.get(..4)?.try_into().ok()?) as usize;
            let mut tiff = m.raw_data.get(4 + off..)?.to_vec();
            let _ = image::metadata::Orientation::remove_from_exif_chunk(&mut tiff);
            Some(tiff)
        });
    Ok(Picture {
        frames: vec![Frame { image, delay_ms: 0 }],
        format,
        icc,
        exif,
        orientation: 1,
        quality: None,
    })
}

/// Encoder settings per format and profile. Download favours latency, persistent favours bytes.
fn tune(encoder: &libheif_rs::Encoder<'_>, format: Format, profile: Profile) -> Result<()> {
    let set = |name: &str, v: EncoderParameterValue| {
        encoder.set_parameter_value(name, v).map_err(|e| {
            Error::internal(format!("libheif encoder parameter {name}: {}", e.message))
        })
    };
    use EncoderParameterValue::{Int, String as Str};
    match (format, profile) {
        (Format::Heif, Profile::Download) => set("preset", Str("faster".into())),
        (Format::Heif, Profile::Persistent) => set("preset", Str("slow".into())),
        (Format::Avif, Profile::Download) => set("speed", Int(6)),
        (Format::Avif, Profile::Persistent) => set("speed", Int(5)),
        _ => Ok(()),
    }
}

/// The first frame, in 8-bit RGB(A) handed to libheif, which converts to YCbCr for the encoder.
pub(super) fn encode(pic: &Picture, opts: &EncodeOptions, meta: Metadata<'_>) -> Result<Vec<u8>> {
    let img = pic.first();
    let fail = |what: &str, e: libheif_rs::HeifError| {
        Error::internal(format!(
            "{} encoding ({what}) failed: {}",
            opts.format.name(),
            e.message
        ))
    };
    let lib = LibHeif::new();
    let compression = if opts.format == Format::Avif {
        CompressionFormat::Av1
    } else {
        CompressionFormat::Hevc
    };
    let mut encoder = lib
        .encoder_for_format(compression)
        .map_err(|e| fail("no encoder", e))?;
    encoder
        .set_quality(EncoderQuality::Lossy(opts.quality.min(100)))
        .map_err(|e| fail("quality", e))?;
    tune(&encoder, opts.format, opts.profile)?;

    let (w, h) = (img.width(), img.height());
    let alpha = img.color().has_alpha();
    let (chroma, channels) = if alpha {
        (RgbChroma::Rgba, 4)
    } else {
        (RgbChroma::Rgb, 3)
    };
    let src = if alpha {
        DynamicImage::ImageRgba8(img.to_rgba8())
    } else {
        DynamicImage::ImageRgb8(img.to_rgb8())
    };
    let mut himg = Image::new(w, h, ColorSpace::Rgb(chroma)).map_err(|e| fail("image", e))?;
    himg.create_plane(Channel::Interleaved, w, h, 8)
        .map_err(|e| fail("plane", e))?;
    {
        let planes = himg.planes_mut();
        let plane = planes
            .interleaved
            .ok_or_else(|| Error::internal("libheif: no interleaved plane"))?;
        let row = w as usize * channels;
        for (y, src_row) in src.as_bytes().chunks_exact(row).enumerate() {
            plane.data[y * plane.stride..y * plane.stride + row].copy_from_slice(src_row);
        }
    }
    if let Some(icc) = meta.icc {
        himg.set_color_profile_raw(&ColorProfileRaw::new(
            color_profile_types::PROF,
            icc.to_vec(),
        ))
        .map_err(|e| fail("icc", e))?;
    }
    let mut ctx = HeifContext::new().map_err(|e| fail("context", e))?;
    let mut enc_opts = EncodingOptions::new().map_err(|e| fail("options", e))?;
    enc_opts.set_save_alpha_channel(true);
    let handle = ctx
        .encode_image(&himg, &mut encoder, Some(enc_opts))
        .map_err(|e| fail("encode", e))?;
    if let Some(exif) = meta.exif {
        ctx.add_exif_metadata(&handle, exif)
            .map_err(|e| fail("exif", e))?;
    }
    ctx.write_to_bytes().map_err(|e| fail("write", e))
}
