//! GIF: read through `image` (the first frame, or every frame composited onto the canvas), written with
//! every frame of an animation (a still becomes one frame), looping forever.

use super::{bad_input, via_image, EncodeOptions, Format, Frames, Limits, Metadata, Picture};
use crate::{Error, Result};
use image::codecs::gif::GifDecoder;
use image::{AnimationDecoder, DynamicImage, ImageDecoder};
use std::io::Cursor;

pub(super) fn decode(bytes: &[u8], limits: &Limits, frames: Frames) -> Result<Picture> {
    layout(bytes, limits)?; // every frame inside the screen, before any is decoded
    if frames == Frames::First {
        return via_image::decode_still(bytes, Format::Gif, limits);
    }
    let header = |e| via_image::header_error(Format::Gif, limits, e);
    let mut dec = GifDecoder::new(Cursor::new(bytes)).map_err(header)?;
    dec.set_limits(limits.image_limits()).map_err(header)?;
    let (w, h) = dec.dimensions();
    limits.check_dimensions(w, h)?;
    let keep = frames.count(u32::MAX) as usize;
    let frames =
        via_image::collect_frames(dec.into_frames().take(keep), Format::Gif, w, h, limits)?;
    Ok(Picture {
        frames,
        ..Picture::still(DynamicImage::new_rgba8(1, 1), Format::Gif)
    })
}

/// What a GIF's blocks say before any pixel is decoded: its logical screen and how many frames it holds.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Layout {
    pub width: u32,
    pub height: u32,
    pub frames: u32,
}

/// Walks the GIF's blocks (no LZW decoding) to count its frames and check that every frame lies inside
/// the logical screen: the decoder sizes a frame's buffer by the frame's own header, so a 1×1 screen
/// could otherwise hide a 12000×12000 frame. Stops with an error as soon as a limit is passed.
pub(super) fn layout(b: &[u8], limits: &Limits) -> Result<Layout> {
    let bad = |why: String| bad_input(Format::Gif, why);
    let truncated = || bad("it ends in the middle of a block (truncated?)".into());
    let u16_at = |i: usize| -> Result<u32> {
        Ok(u16::from_le_bytes([
            *b.get(i).ok_or_else(truncated)?,
            *b.get(i + 1).ok_or_else(truncated)?,
        ]) as u32)
    };
    let (width, height) = (u16_at(6)?, u16_at(8)?);
    let flags = *b.get(10).ok_or_else(truncated)?;
    let mut i = 13 + color_table_len(flags);
    // Skips a chain of data sub-blocks starting at `i`; returns the index after its terminator.
    let skip_sub_blocks = |mut i: usize| -> Result<usize> {
        loop {
            let n = *b.get(i).ok_or_else(truncated)? as usize;
            i += 1 + n;
            if n == 0 {
                return Ok(i);
            }
        }
    };
    let mut frames = 0u32;
    loop {
        match b.get(i) {
            Some(0x21) => i = skip_sub_blocks(i + 2)?, // extension: label, then sub-blocks
            Some(0x2C) => {
                let (left, top) = (u16_at(i + 1)?, u16_at(i + 3)?);
                let (w, h) = (u16_at(i + 5)?, u16_at(i + 7)?);
                if left + w > width || top + h > height {
                    return Err(bad(format!(
                        "frame {} ({w}x{h} at {left},{top}) lies outside the {width}x{height} screen",
                        frames + 1
                    )));
                }
                frames += 1;
                limits.check_frame_count(frames)?;
                let local = *b.get(i + 9).ok_or_else(truncated)?;
                // descriptor (10 bytes), local colour table, LZW minimum code size, image data
                i = skip_sub_blocks(i + 10 + color_table_len(local) + 1)?;
            }
            Some(0x3B) => break, // trailer
            Some(other) => return Err(bad(format!("unexpected block 0x{other:02X} at byte {i}"))),
            // Many encoders omit the trailer; a file that ends between blocks is still whole.
            None => break,
        }
    }
    if frames == 0 {
        return Err(bad("it has no frames".into()));
    }
    Ok(Layout {
        width,
        height,
        frames,
    })
}

/// The size in bytes of the colour table a GIF flags byte announces (bit 7 present, bits 0-2 size).
fn color_table_len(flags: u8) -> usize {
    if flags & 0x80 != 0 {
        3 << ((flags & 0x07) + 1)
    } else {
        0
    }
}

/// Every frame; GIF has no quality setting and carries no ICC or EXIF.
///
/// One palette for the whole animation (quantizr's median cut over every frame's colours, MIT), each
/// frame remapped with Floyd-Steinberg dithering: gradients keep their shape instead of banding. Frames
/// are then optimised as gifsicle does: a pixel whose source colour did not change keeps last frame's
/// index (so dithering noise does not flicker), only the rectangle that changed is stored, unchanged
/// pixels inside it are transparent (long runs that LZW packs tightly), and a frame that changes nothing
/// adds its delay to the one before. Animations with transparent pixels of their own store whole frames
/// and clear each before the next (GIF cannot make a kept pixel transparent again).
/// A quantizr failure (it reports bad sizes and settings, not bad pixels).
pub(super) fn quant_err(e: quantizr::Error) -> Error {
    Error::internal(format!("palette quantisation failed: {e:?}"))
}

/// One palette of at most `max_colors` RGBA entries for all of `images`, dithered fully when remapped
/// (libimagequant's method): GIF outputs, and `imageSlim`'s indexed PNGs.
pub(super) fn dithered_palette(
    images: &[quantizr::Image<'_>],
    max_colors: i32,
) -> Result<quantizr::QuantizeResult> {
    let mut histogram = quantizr::Histogram::new();
    for image in images {
        histogram.add_image(image);
    }
    let mut options = quantizr::Options::default();
    options.set_max_colors(max_colors).map_err(quant_err)?;
    let mut result = quantizr::QuantizeResult::quantize_histogram(&histogram, &options);
    result.set_dithering_level(1.0).map_err(quant_err)?;
    Ok(result)
}

pub(super) fn encode(pic: &Picture, _opts: &EncodeOptions, _meta: Metadata<'_>) -> Result<Vec<u8>> {
    let (w, h) = (pic.width(), pic.height());
    let side = |v: u32| {
        u16::try_from(v).map_err(|_| {
            Error::invalid(format!("GIF cannot hold {w}x{h}: at most 65535 px a side"))
        })
    };
    let (w16, h16) = (side(w)?, side(h)?);
    let frames: Vec<image::RgbaImage> = pic.frames.iter().map(|f| on_or_off(&f.image)).collect();
    let transparent_pixels = frames.iter().any(|f| f.pixels().any(|p| p[3] == 0));
    let optimise = frames.len() > 1 && !transparent_pixels;

    let images = frames
        .iter()
        .map(|f| quantizr::Image::new(f.as_raw(), w as usize, h as usize).map_err(quant_err))
        .collect::<Result<Vec<_>>>()?;
    // an optimised animation keeps one entry for "unchanged" (transparent)
    let result = dithered_palette(&images, if optimise { 255 } else { 256 })?;
    let palette = result.get_palette();
    let count = palette.count as usize;
    let mut rgb: Vec<u8> = palette.entries[..count]
        .iter()
        .flat_map(|c| [c.r, c.g, c.b])
        .collect();
    let transparent = if optimise {
        rgb.extend_from_slice(&[0, 0, 0]);
        Some(count as u8)
    } else {
        palette.entries[..count]
            .iter()
            .position(|c| c.a == 0)
            .map(|i| i as u8)
    };

    // (indices of the whole canvas, delay in centiseconds)
    let mut canvases: Vec<(Vec<u8>, u16)> = Vec::with_capacity(frames.len());
    for (i, (image, frame)) in images.iter().zip(&pic.frames).enumerate() {
        let mut indices = vec![0u8; (w * h) as usize];
        result.remap_image(image, &mut indices).map_err(quant_err)?;
        if optimise && i > 0 {
            let (prev_pixels, prev_indices) = (frames[i - 1].as_raw(), &canvases[i - 1].0);
            for (p, index) in indices.iter_mut().enumerate() {
                if prev_pixels[4 * p..4 * p + 4] == frames[i].as_raw()[4 * p..4 * p + 4] {
                    *index = prev_indices[p];
                }
            }
        }
        let delay = (frame.delay_ms.div_ceil(10)).min(u16::MAX as u32) as u16;
        canvases.push((indices, delay));
    }

    let mut out = Vec::new();
    {
        let enc_err = |e: gif::EncodingError| Error::internal(format!("gif encoding failed: {e}"));
        let mut enc = gif::Encoder::new(&mut out, w16, h16, &rgb).map_err(enc_err)?;
        enc.set_repeat(gif::Repeat::Infinite).map_err(enc_err)?;
        let mut pending: Option<gif::Frame<'_>> = None;
        for (i, (indices, delay)) in canvases.iter().enumerate() {
            let frame = if optimise && i > 0 {
                match changed(&canvases[i - 1].0, indices, w as usize, h as usize) {
                    None => {
                        // nothing changed: the frame before simply stays up longer
                        if let Some(p) = pending.as_mut() {
                            p.delay = p.delay.saturating_add(*delay);
                        }
                        continue;
                    }
                    Some(rect) => {
                        sub_frame(&canvases[i - 1].0, indices, w as usize, rect, transparent)
                    }
                }
            } else {
                gif::Frame {
                    width: w16,
                    height: h16,
                    buffer: std::borrow::Cow::Borrowed(indices),
                    transparent,
                    ..gif::Frame::default()
                }
            };
            let frame = gif::Frame {
                delay: *delay,
                dispose: if optimise || frames.len() == 1 {
                    gif::DisposalMethod::Keep
                } else {
                    gif::DisposalMethod::Background
                },
                ..frame
            };
            if let Some(p) = pending.replace(frame) {
                enc.write_frame(&p).map_err(enc_err)?;
            }
        }
        if let Some(p) = pending {
            enc.write_frame(&p).map_err(enc_err)?;
        }
    }
    Ok(out)
}

/// RGBA with GIF's on-or-off transparency: below half opacity a pixel becomes transparent.
fn on_or_off(image: &DynamicImage) -> image::RgbaImage {
    let mut rgba = image.to_rgba8();
    for p in rgba.pixels_mut() {
        p.0 = if p[3] < 128 {
            [0, 0, 0, 0]
        } else {
            [p[0], p[1], p[2], 255]
        };
    }
    rgba
}

/// The rectangle (left, top, width, height) holding every index that differs, `None` when none does.
fn changed(prev: &[u8], next: &[u8], w: usize, h: usize) -> Option<(usize, usize, usize, usize)> {
    let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
    for y in 0..h {
        let (a, b) = (&prev[y * w..(y + 1) * w], &next[y * w..(y + 1) * w]);
        if a == b {
            continue;
        }
        let first = a.iter().zip(b).position(|(p, n)| p != n).unwrap_or(0);
        let last = w
            - 1
            - a.iter()
                .rev()
                .zip(b.iter().rev())
                .position(|(p, n)| p != n)
                .unwrap_or(0);
        (x0, x1, y0, y1) = (x0.min(first), x1.max(last), y0.min(y), y1.max(y));
    }
    (x0 <= x1 && y0 <= y1).then(|| (x0, y0, x1 - x0 + 1, y1 - y0 + 1))
}

/// The changed rectangle of `next` as a frame, its unchanged pixels transparent.
fn sub_frame(
    prev: &[u8],
    next: &[u8],
    w: usize,
    (left, top, width, height): (usize, usize, usize, usize),
    transparent: Option<u8>,
) -> gif::Frame<'static> {
    let mut buffer = Vec::with_capacity(width * height);
    for y in top..top + height {
        let row = y * w + left..y * w + left + width;
        for (p, n) in prev[row.clone()].iter().zip(&next[row]) {
            buffer.push(match transparent {
                Some(t) if p == n => t,
                _ => *n,
            });
        }
    }
    // the rectangle lies inside the canvas, whose sides were checked to fit in u16
    gif::Frame {
        left: left as u16,
        top: top as u16,
        width: width as u16,
        height: height as u16,
        buffer: buffer.into(),
        transparent,
        ..gif::Frame::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GIF with a `sw`×`sh` screen and one frame of `fw`×`fh` at `left`,`top` (empty image data).
    fn gif(sw: u16, sh: u16, frame: (u16, u16, u16, u16)) -> Vec<u8> {
        let (left, top, fw, fh) = frame;
        let mut b = b"GIF89a".to_vec();
        for v in [sw, sh] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&[0x80, 0, 0]); // 2-entry global colour table
        b.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
        b.extend_from_slice(&[0x21, 0xF9, 4, 0, 10, 0, 0, 0]); // graphic control extension
        b.push(0x2C);
        for v in [left, top, fw, fh] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&[0, 2, 2, 0x4C, 0x01, 0]); // no local table; LZW size 2; one sub-block
        b.push(0x3B);
        b
    }

    #[test]
    fn a_frame_outside_the_screen_is_refused_before_decoding() {
        let l = Limits::default();
        let e = layout(&gif(1, 1, (0, 0, 12000, 12000)), &l).unwrap_err();
        assert!(e.message.contains("outside the 1x1 screen"), "{e}");
        let e = decode(&gif(10, 10, (5, 5, 6, 5)), &l, Frames::All).unwrap_err();
        assert!(e.message.contains("outside"), "{e}");
        let ok = layout(&gif(10, 10, (5, 5, 5, 5)), &l).unwrap();
        assert_eq!((ok.width, ok.height, ok.frames), (10, 10, 1));
    }

    #[test]
    fn frames_are_counted_and_capped_from_the_blocks() {
        let one = gif(4, 4, (0, 0, 4, 4));
        let frame = &one[13 + 6..one.len() - 1]; // extension + descriptor + data
        let mut many = one[..13 + 6].to_vec();
        for _ in 0..5 {
            many.extend_from_slice(frame);
        }
        many.push(0x3B);
        assert_eq!(layout(&many, &Limits::default()).unwrap().frames, 5);
        let tight = Limits {
            max_frames: 4,
            ..Limits::default()
        };
        assert!(layout(&many, &tight)
            .unwrap_err()
            .message
            .contains("more than 4 frames"));
        // cut inside the image data
        assert!(layout(&many[..many.len() - 4], &Limits::default())
            .unwrap_err()
            .message
            .contains("truncated"));
    }
}
