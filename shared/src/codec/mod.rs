//! Decode and encode, one module per format family, behind three functions: [`probe`] reads the header,
//! [`decode`] turns a probed input into a [`Picture`], [`encode`] writes one.
//!
//! Every family module has the same shape: `decode(bytes, limits[, frames])` and
//! `encode(picture, options, metadata)`. The dispatch below is an exhaustive `match` over [`Format`], so a
//! format added to the enum does not compile until it can be read and written. Limits are checked from
//! headers before any pixel buffer is allocated ([`Limits`]). No codec knows about storage or HTTP.

mod bmp;
mod format;
mod gif;
mod heif;
pub mod jpeg;
mod libheif;
mod limits;
mod picture;
mod png;
mod tiff;
mod via_image;
mod webp;

pub use format::Format;
pub use limits::{cores, Deadline, Limits, MemoryPlan};
pub(crate) use picture::{flatten, samples8, Metadata};
pub use picture::{Frame, Frames, Picture, RgbRows};
pub use png::Indexed;

use crate::{Error, Result};

/// Header facts, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: Format,
    /// The stored width and height, before any EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// Frames in the file (1 for a still), counted from its blocks.
    pub frames: u32,
    /// EXIF orientation 5-8: decoding turns the picture a quarter, swapping width and height.
    pub transposed: bool,
}

impl Probe {
    /// Width and height of the decoded, upright picture.
    pub fn upright(&self) -> (u32, u32) {
        if self.transposed {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// Reads format and dimensions from the header only, checking the byte and dimension limits.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe> {
    limits.check_bytes(bytes.len())?;
    let format = Format::sniff(bytes)?;
    let ((width, height), transposed) = match format {
        Format::Heif | Format::Avif => (heif::dimensions(bytes, format, limits)?, false),
        // Every other format is read through the `image` crate.
        _ => via_image::dimensions(bytes, format, limits)?,
    };
    limits.check_dimensions(width, height)?;
    let frames = match format {
        Format::Gif => gif::layout(bytes, limits)?.frames,
        Format::Webp => webp::frame_count(bytes),
        _ => 1,
    };
    Ok(Probe {
        format,
        width,
        height,
        frames,
        transposed,
    })
}

/// Decodes an input that [`probe`] accepted, checking every limit before pixels are allocated.
/// `frames` says whether later frames of an animation are needed (for an animated output).
///
/// A decoder that panics on malformed data (fuzzing found one in image-webp 0.2.4's animated frames) is
/// the input's fault, not the service's: the panic becomes the same 400 as any undecodable input.
pub fn decode(bytes: &[u8], probe: &Probe, limits: &Limits, frames: Frames) -> Result<Picture> {
    let _span = tracing::debug_span!(
        "decode",
        format = probe.format.name(),
        width = probe.width,
        height = probe.height
    )
    .entered();
    let run = || match probe.format {
        Format::Jpeg => jpeg::decode(bytes, limits),
        Format::Png => png::decode(bytes, limits),
        Format::Gif => gif::decode(bytes, limits, frames),
        Format::Webp => webp::decode(bytes, limits, frames),
        Format::Bmp => bmp::decode(bytes, limits),
        Format::Tiff => tiff::decode(bytes, limits),
        Format::Heif | Format::Avif => heif::decode(bytes, probe.format, limits),
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("the decoder failed");
        tracing::warn!(
            format = probe.format.name(),
            panic = why,
            "decoder panicked"
        );
        Err(bad_input(
            probe.format,
            "it is malformed (the decoder gave up on its data)",
        ))
    })
}

/// [`probe`] then [`decode`], for callers that have not probed.
pub fn probe_and_decode(bytes: &[u8], limits: &Limits, frames: Frames) -> Result<Picture> {
    decode(bytes, &probe(bytes, limits)?, limits, frames)
}

/// The first frame of `bytes` in 8-bit RGB, alpha composited onto white, lent to `f`: HEIF and AVIF
/// without alpha straight from libheif's buffer, others from a [`decode`] (8-bit RGB read in place).
/// What `quality/auto` scores each try with: a copy of a 17.9 MP picture is 54 MB.
/// (HEIF and AVIF are read once: libheif checks the dimensions as it decodes, so there is no probe.)
pub fn with_rgb8<R>(bytes: &[u8], limits: &Limits, f: impl FnOnce(RgbRows<'_>) -> R) -> Result<R> {
    limits.check_bytes(bytes.len())?;
    let format = Format::sniff(bytes)?;
    let f = match format {
        Format::Heif | Format::Avif => match heif::with_rgb8(bytes, format, limits, f)? {
            Ok(r) => return Ok(r),
            Err(f) => f,
        },
        _ => f,
    };
    let pic = probe_and_decode(bytes, limits, Frames::First)?;
    Ok(f(RgbRows::of(&flatten(pic.first()))))
}

/// Encoder settings chosen for the latency or the size a caller cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Latency-bound (download-time conversions): fast encoder presets.
    Download,
    /// Size-bound (upload and in-cloud): slower presets that give fewer bytes at the same quality.
    Persistent,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Download => "download",
            Profile::Persistent => "persistent",
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = String;

    /// `download` or `persistent`: the one parser behind `/profile/<name>` and the CLI's `--profile`.
    fn from_str(s: &str) -> std::result::Result<Profile, String> {
        match s {
            "download" => Ok(Profile::Download),
            "persistent" => Ok(Profile::Persistent),
            other => Err(format!(
                "unknown profile {other:?}: expected download or persistent"
            )),
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How to write a picture.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodeOptions {
    pub format: Format,
    /// 1-100; ignored by lossless formats.
    pub quality: u8,
    /// Progressive JPEG.
    pub interlace: bool,
    /// Drop EXIF and ICC.
    pub strip: bool,
    pub profile: Profile,
    /// Threads the encoder may use (x265, aom); at least 1.
    pub threads: u32,
    /// JPEG only: mozjpeg's smaller encoding (`format/yjpeg`).
    pub optimized: bool,
}

/// Encodes `pic` (all its frames where the format animates, otherwise the first).
pub fn encode(pic: &Picture, opts: &EncodeOptions) -> Result<Vec<u8>> {
    let _span = tracing::debug_span!(
        "encode",
        format = opts.format.name(),
        quality = opts.format.is_lossy().then_some(opts.quality),
        width = pic.width(),
        height = pic.height()
    )
    .entered();
    let meta = pic.metadata(opts.strip);
    match opts.format {
        Format::Jpeg => jpeg::encode(pic, opts, meta),
        Format::Png => png::encode(pic, opts, meta),
        Format::Gif => gif::encode(pic, opts, meta),
        Format::Webp => webp::encode(pic, opts, meta),
        Format::Bmp => bmp::encode(pic, opts, meta),
        Format::Tiff => tiff::encode(pic, opts, meta),
        Format::Heif | Format::Avif => heif::encode(pic, opts, meta),
    }
}

/// The encoder's quantiser step for `quality`, higher for lower qualities: qualities with the same step
/// write the same file (HEIF and AVIF, see [`heif::quality_step`]), so a search tries one quality per step.
/// Every quality is its own step for the other formats.
pub fn quality_step(format: Format, quality: u8) -> u32 {
    match format {
        Format::Heif | Format::Avif => heif::quality_step(format, quality),
        _ => 100 - u32::from(quality.min(100)),
    }
}

/// Maps a decoder error to a client error that says the input is broken.
pub(crate) fn bad_input(format: Format, e: impl std::fmt::Display) -> Error {
    Error::invalid(format!(
        "the {} input could not be decoded: {e}",
        format.name().to_uppercase()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_in_one_place() {
        for p in [Profile::Download, Profile::Persistent] {
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
        }
        assert!("fast".parse::<Profile>().unwrap_err().contains("download"));
    }
}
