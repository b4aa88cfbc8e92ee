//! GIF: read through `image` (the first frame, or every frame composited onto the canvas), written with
//! every frame of an animation (a still becomes one frame), looping forever.

use super::{via_image, EncodeOptions, Format, Frames, Limits, Metadata, Picture};
use crate::{Error, Result};
use image::codecs::gif::{GifDecoder, GifEncoder, Repeat};
use image::{AnimationDecoder, DynamicImage, ImageDecoder};
use std::io::Cursor;

pub(super) fn decode(bytes: &[u8], limits: &Limits, frames: Frames) -> Result<Picture> {
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
