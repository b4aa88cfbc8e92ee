//! Decode and encode, one module per format family, behind two functions: [`decode`] and [`encode`].
//!
//! Limits are checked from headers before any pixel buffer is allocated ([`Limits`]).

mod heif;
pub mod jpeg;
mod raster;
mod webp;

use crate::rule::Profile;
use crate::{Error, Result};
use image::DynamicImage;

/// Image formats mogr reads and writes. TPG is deliberately absent: it has no public specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Jpeg,
    Png,
    Gif,
    Webp,
    Bmp,
    Tiff,
    Heif,
    Avif,
}

impl Format {
    pub const ALL: [Format; 8] = [
        Format::Jpeg,
        Format::Png,
        Format::Gif,
        Format::Webp,
        Format::Bmp,
        Format::Tiff,
        Format::Heif,
        Format::Avif,
    ];

    /// A `format/<name>` value (lower case).
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "jpg" | "jpeg" => Format::Jpeg,
            "png" => Format::Png,
            "gif" => Format::Gif,
            "webp" => Format::Webp,
            "bmp" => Format::Bmp,
            "tif" | "tiff" => Format::Tiff,
            "heif" | "heic" => Format::Heif,
            "avif" => Format::Avif,
            _ => return None,
        })
    }

    /// Lower-case name as COS reports it (`<Format>heif</Format>`, `"format":"jpeg"`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::Webp => "webp",
            Format::Bmp => "bmp",
            Format::Tiff => "tiff",
            Format::Heif => "heif",
            Format::Avif => "avif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Heif => "heic",
            other => other.name(),
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Gif => "image/gif",
            Format::Webp => "image/webp",
            Format::Bmp => "image/bmp",
            Format::Tiff => "image/tiff",
            Format::Heif => "image/heif",
            Format::Avif => "image/avif",
        }
    }

    pub fn has_alpha(self) -> bool {
        !matches!(self, Format::Jpeg | Format::Bmp)
    }

    /// Formats whose output size depends on a quality setting.
    pub fn is_lossy(self) -> bool {
        matches!(
            self,
            Format::Jpeg | Format::Webp | Format::Heif | Format::Avif
        )
    }

    /// Formats that keep every frame of an animated input.
    pub fn is_animated(self) -> bool {
        matches!(self, Format::Gif | Format::Webp)
    }

    /// Identifies a format from its first bytes. TPG gets its own explanation.
    pub fn sniff(bytes: &[u8]) -> Result<Format> {
        let b = bytes;
        let f = if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Format::Jpeg
        } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
            Format::Png
        } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
            Format::Gif
        } else if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
            Format::Webp
        } else if b.starts_with(b"BM") {
            Format::Bmp
        } else if b.starts_with(b"II*\0") || b.starts_with(b"MM\0*") {
            Format::Tiff
        } else if b.len() >= 12 && &b[4..8] == b"ftyp" {
            heif::brand_format(b).ok_or_else(|| {
                Error::invalid("unsupported ISO-BMFF file: not a HEIF or AVIF image (its brands are not heic, mif1 or avif)")
            })?
        } else if b.starts_with(b"TPG") {
            return Err(Error::invalid(
                "TPG input cannot be decoded: TPG is Tencent's closed format with no public specification; \
                 store the original JPEG/PNG/WebP instead",
            ));
        } else if b.is_empty() {
            return Err(Error::invalid(
                "the input is empty (0 bytes): upload an image",
            ));
        } else {
            return Err(Error::invalid(
                "unsupported input format: not JPEG, PNG, GIF, WebP, BMP, TIFF, HEIF or AVIF (unrecognised magic bytes)",
            ));
        };
        Ok(f)
    }
}

/// Resource limits, checked from headers before pixels are allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_input_bytes: usize,
    pub max_pixels: u64,
    pub max_side: u32,
    pub max_frames: u32,
    pub max_output_side: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: 32 * 1024 * 1024,
            max_pixels: 100_000_000,
            max_side: 30_000,
            max_frames: 300,
            max_output_side: 9_999,
        }
    }
}

impl Limits {
    pub fn check_bytes(&self, n: usize) -> Result<()> {
        if n > self.max_input_bytes {
            return Err(Error::new(
                crate::Code::EntityTooLarge,
                format!(
                    "the input is {n} bytes; the limit is {} bytes",
                    self.max_input_bytes
                ),
            ));
        }
        Ok(())
    }

    pub fn check_dimensions(&self, width: u32, height: u32) -> Result<()> {
        if width == 0 || height == 0 {
            return Err(Error::invalid(format!(
                "the image claims a size of {width}x{height}: it has no pixels"
            )));
        }
        if width > self.max_side || height > self.max_side {
            return Err(Error::invalid(format!(
                "the image is {width}x{height}; width and height may be at most {} px",
                self.max_side
            )));
        }
        let pixels = width as u64 * height as u64;
        if pixels > self.max_pixels {
            return Err(Error::invalid(format!(
                "the image is {width}x{height} = {pixels} pixels; the limit is {} pixels",
                self.max_pixels
            )));
        }
        Ok(())
    }

    /// Checks that `frames` frames of `width`×`height` stay within the frame and total-pixel limits.
    pub fn check_frames(&self, frames: u32, width: u32, height: u32) -> Result<()> {
        if frames > self.max_frames {
            return Err(Error::invalid(format!(
                "the animation has more than {} frames, the limit",
                self.max_frames
            )));
        }
        let total = frames as u64 * width as u64 * height as u64;
        if total > self.max_pixels {
            return Err(Error::invalid(format!(
                "the animation's {frames} frames of {width}x{height} hold {total} pixels; the limit is {}",
                self.max_pixels
            )));
        }
        Ok(())
    }

    pub fn check_output(&self, width: u32, height: u32) -> Result<()> {
        if width > self.max_output_side || height > self.max_output_side {
            return Err(Error::invalid(format!(
                "the result would be {width}x{height}; output width and height may be at most {} px",
                self.max_output_side
            )));
        }
        Ok(())
    }

    pub(crate) fn image_limits(&self) -> image::Limits {
        let mut l = image::Limits::default();
        l.max_image_width = Some(self.max_side);
        l.max_image_height = Some(self.max_side);
        // 16-bit RGBA at the pixel limit, plus decoder working space.
        l.max_alloc = Some(self.max_pixels * 8 + (64 << 20));
        l
    }
}

/// One frame of a picture, with its display time (0 for stills).
#[derive(Debug, Clone)]
pub struct Frame {
    pub image: DynamicImage,
    pub delay_ms: u32,
}

/// A decoded image: one frame for stills, every frame for animations (all frames share the canvas size).
/// Pixels are upright: the EXIF orientation has been applied and reset to 1 in `exif`.
#[derive(Debug, Clone)]
pub struct Picture {
    pub frames: Vec<Frame>,
    /// The format it was decoded from.
    pub format: Format,
    pub icc: Option<Vec<u8>>,
    /// Raw EXIF (TIFF header onwards), orientation already reset to 1.
    pub exif: Option<Vec<u8>>,
    /// The EXIF orientation the input had (1-8), before it was applied.
    pub orientation: u8,
    /// Estimated quality of a lossy input (JPEG from its quantisation tables); `None` when unknown.
    pub quality: Option<u8>,
}

impl Picture {
    pub fn still(image: DynamicImage, format: Format) -> Picture {
        Picture {
            frames: vec![Frame { image, delay_ms: 0 }],
            format,
            icc: None,
            exif: None,
            orientation: 1,
            quality: None,
        }
    }
    pub fn width(&self) -> u32 {
        self.frames[0].image.width()
    }
    pub fn height(&self) -> u32 {
        self.frames[0].image.height()
    }
    pub fn first(&self) -> &DynamicImage {
        &self.frames[0].image
    }
    pub fn has_alpha(&self) -> bool {
        self.frames[0].image.color().has_alpha()
    }
}

/// What a decoder should keep of an animation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frames {
    /// The first frame only (for still outputs): later frames are never decoded.
    First,
    All,
}

/// Header facts, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: Format,
    pub width: u32,
    pub height: u32,
}

/// Reads format and dimensions from the header only, checking the byte and dimension limits.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe> {
    limits.check_bytes(bytes.len())?;
    let format = Format::sniff(bytes)?;
    let (width, height) = match format {
        Format::Heif | Format::Avif => heif::dimensions(bytes, limits)?,
        _ => raster::dimensions(bytes, format, limits)?,
    };
    limits.check_dimensions(width, height)?;
    Ok(Probe {
        format,
        width,
        height,
    })
}

/// Decodes `bytes`, checking every limit before pixels are allocated.
pub fn decode(bytes: &[u8], limits: &Limits, frames: Frames) -> Result<Picture> {
    let probe = probe(bytes, limits)?;
    let mut pic = match probe.format {
        Format::Heif | Format::Avif => heif::decode(bytes, probe.format, limits)?,
        Format::Webp => webp::decode(bytes, limits, frames)?,
        Format::Gif if frames == Frames::All => raster::decode_gif_frames(bytes, limits)?,
        f => raster::decode(bytes, f, limits)?,
    };
    if probe.format == Format::Jpeg {
        pic.quality = jpeg::estimate_quality(bytes);
    }
    Ok(pic)
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
}

/// Encodes `pic` (all its frames where the format animates, otherwise the first).
pub fn encode(pic: &Picture, opts: &EncodeOptions) -> Result<Vec<u8>> {
    let (icc, exif) = if opts.strip {
        (None, None)
    } else {
        (pic.icc.as_deref(), pic.exif.as_deref())
    };
    let meta = Metadata { icc, exif };
    match opts.format {
        Format::Heif | Format::Avif => heif::encode(pic.first(), opts, meta),
        Format::Jpeg => jpeg::encode(pic.first(), opts, meta),
        Format::Webp => webp::encode(pic, opts, meta),
        Format::Gif => raster::encode_gif(pic),
        f => raster::encode(pic.first(), f, meta),
    }
}

/// Metadata carried into an output.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Metadata<'a> {
    pub icc: Option<&'a [u8]>,
    pub exif: Option<&'a [u8]>,
}

/// Composites an image with alpha onto white, for formats without alpha.
pub(crate) fn flatten(img: &DynamicImage) -> image::RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba = img.to_rgba8();
    let mut out = image::RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = p[3] as u32;
        for c in 0..3 {
            o[c] = ((p[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    out
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
    fn sniff_rejects_empty_wrong_magic_and_tpg() {
        assert!(Format::sniff(b"").unwrap_err().message.contains("empty"));
        assert!(Format::sniff(b"hello world, not an image")
            .unwrap_err()
            .message
            .contains("unsupported"));
        assert!(Format::sniff(b"TPG\x01\x02")
            .unwrap_err()
            .message
            .contains("TPG"));
        assert_eq!(Format::sniff(b"\xFF\xD8\xFF\xE0").unwrap(), Format::Jpeg);
    }

    #[test]
    fn limits_name_the_problem() {
        let l = Limits::default();
        assert!(l
            .check_dimensions(30_001, 10)
            .unwrap_err()
            .message
            .contains("30000"));
        assert!(l
            .check_dimensions(20_000, 20_000)
            .unwrap_err()
            .message
            .contains("pixels"));
        assert!(l.check_frames(301, 10, 10).is_err());
        assert!(l.check_output(10_000, 5).is_err());
        assert_eq!(
            l.check_bytes(33 * 1024 * 1024).unwrap_err().code,
            crate::Code::EntityTooLarge
        );
    }
}
