//! GIF: read through `image` (the first frame, or every frame composited onto the canvas), written with
//! every frame of an animation (a still becomes one frame), looping forever.

use super::{bad_input, via_image, EncodeOptions, Format, Frames, Limits, Metadata, Picture};
use crate::{Error, Result};
use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
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
    let frames = via_image::collect_frames(dec.into_frames(), Format::Gif, w, h, limits)?;
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
pub(super) fn encode(pic: &Picture, _opts: &EncodeOptions, _meta: Metadata<'_>) -> Result<Vec<u8>> {
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
