//! WebP: decoding (still, alpha, animated) with `image-webp` through `image`; encoding with libwebp (`webp`
//! crate): lossy at a quality, lossless at quality 100, animated when the picture has several frames.
//! ICC and EXIF are carried in a VP8X container.

use super::via_image::{collect_frames, still_with_metadata};
use super::{samples8, EncodeOptions, Format, Frames, Limits, Metadata, Picture, Profile};
use crate::{Error, Result};
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, DynamicImage, ImageDecoder};
use std::io::Cursor;

pub(super) fn decode(bytes: &[u8], limits: &Limits, frames: Frames) -> Result<Picture> {
    let header = |e| super::via_image::header_error(Format::Webp, limits, e);
    let mut dec = WebPDecoder::new(Cursor::new(bytes)).map_err(header)?;
    dec.set_limits(limits.image_limits()).map_err(header)?;
    let (w, h) = dec.dimensions();
    limits.check_dimensions(w, h)?;
    let icc = dec.icc_profile().ok().flatten();
    let exif = dec.exif_metadata().ok().flatten();
    if dec.has_animation() {
        // Only the frames asked for are decoded: a still output needs the first alone.
        let keep = frames.count(u32::MAX) as usize;
        let all = dec.into_frames().take(keep);
        let mut pic = Picture::still(DynamicImage::new_rgba8(1, 1), Format::Webp);
        pic.frames = collect_frames(all, Format::Webp, w, h, limits)?;
        pic.icc = super::picture::capped(icc, "ICC profile");
        return Ok(pic);
    }
    still_with_metadata(dec, Format::Webp, icc, exif)
}

/// The frames of an animated WebP (its `ANMF` chunks), or 1 for a still, from the RIFF chunk list.
pub(super) fn frame_count(b: &[u8]) -> u32 {
    let mut i = 12; // "RIFF", size, "WEBP"
    let mut frames = 0;
    while let Some(head) = b.get(i..i + 8) {
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if &head[..4] == b"ANMF" {
            frames += 1;
        }
        i = i.saturating_add(8).saturating_add(size + (size & 1));
    }
    frames.max(1)
}

fn config(opts: &EncodeOptions) -> Result<webp::WebPConfig> {
    let mut c =
        webp::WebPConfig::new().map_err(|_| Error::internal("libwebp: config init failed"))?;
    if opts.quality >= 100 {
        c.lossless = 1;
        c.quality = 75.0;
        c.method = 4;
    } else {
        c.quality = opts.quality as f32;
        // method: 0 fastest .. 6 smallest
        c.method = match opts.profile {
            Profile::Download => 4,
            Profile::Persistent => 6,
        };
        c.use_sharp_yuv = 1;
    }
    c.alpha_quality = 100;
    Ok(c)
}

pub(super) fn encode(pic: &Picture, opts: &EncodeOptions, meta: Metadata<'_>) -> Result<Vec<u8>> {
    let cfg = config(opts)?;
    let (w, h) = (pic.width(), pic.height());
    if w > 16383 || h > 16383 {
        return Err(Error::invalid(format!(
            "WebP cannot hold {w}x{h}: at most 16383 px a side"
        )));
    }
    if pic.frames.len() > 1 {
        let rgba: Vec<image::RgbaImage> = pic.frames.iter().map(|f| f.image.to_rgba8()).collect();
        let mut enc = webp::AnimEncoder::new(w, h, &cfg);
        enc.set_loop_count(0);
        let mut t = 0i32;
        for (img, f) in rgba.iter().zip(&pic.frames) {
            enc.add_frame(webp::AnimFrame::from_rgba(img.as_raw(), w, h, t));
            t = t.saturating_add(f.delay_ms.max(10) as i32);
        }
        let out = enc
            .try_encode()
            .map_err(|e| Error::internal(format!("animated WebP encoding failed: {e:?}")))?;
        return Ok(out.to_vec());
    }
    let mem = match samples8(pic.first()) {
        (rgba, 4) => webp::Encoder::from_rgba(&rgba, w, h).encode_advanced(&cfg),
        (rgb, _) => webp::Encoder::from_rgb(&rgb, w, h).encode_advanced(&cfg),
    }
    .map_err(|e| Error::internal(format!("WebP encoding failed: {e:?}")))?;
    Ok(with_metadata(&mem, w, h, meta))
}

/// Rewrites a simple WebP (`VP8 `/`VP8L`, or `VP8X`+`ALPH`+`VP8 `) into an extended one that carries
/// ICC and EXIF chunks. Returns the input unchanged when there is nothing to add or it is not understood.
fn with_metadata(webp: &[u8], w: u32, h: u32, meta: Metadata<'_>) -> Vec<u8> {
    if (meta.icc.is_none() && meta.exif.is_none()) || webp.len() < 12 || &webp[0..4] != b"RIFF" {
        return webp.to_vec();
    }
    let mut flags = 0u8;
    let mut body = Vec::new();
    let mut i = 12;
    while i + 8 <= webp.len() {
        let fourcc = &webp[i..i + 4];
        let size =
            u32::from_le_bytes([webp[i + 4], webp[i + 5], webp[i + 6], webp[i + 7]]) as usize;
        let end = (i + 8 + size + (size & 1)).min(webp.len());
        match fourcc {
            b"VP8X" => flags |= webp.get(i + 8).copied().unwrap_or(0) & 0x10, // keep the alpha flag
            b"ALPH" => {
                flags |= 0x10;
                body.extend_from_slice(&webp[i..end]);
            }
            b"VP8L" => {
                // VP8L signals alpha in its header: bit 28 of the 32 bits after the 0x2f signature.
                if webp.get(i + 12).is_some_and(|b| b & 0x10 != 0) {
                    flags |= 0x10;
                }
                body.extend_from_slice(&webp[i..end]);
            }
            _ => body.extend_from_slice(&webp[i..end]),
        }
        i = end;
    }
    let chunk = |fourcc: &[u8], data: &[u8]| {
        let mut c = fourcc.to_vec();
        c.extend_from_slice(&(data.len() as u32).to_le_bytes());
        c.extend_from_slice(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    };
    if meta.icc.is_some() {
        flags |= 0x20;
    }
    if meta.exif.is_some() {
        flags |= 0x08;
    }
    let mut vp8x = vec![flags, 0, 0, 0];
    vp8x.extend_from_slice(&(w - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(h - 1).to_le_bytes()[..3]);
    let mut chunks = chunk(b"VP8X", &vp8x);
    if let Some(icc) = meta.icc {
        chunks.extend(chunk(b"ICCP", icc));
    }
    chunks.extend(body);
    if let Some(exif) = meta.exif {
        chunks.extend(chunk(b"EXIF", exif));
    }
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&((chunks.len() + 4) as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend(chunks);
    out
}
