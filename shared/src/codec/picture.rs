//! [`Picture`]: decoded pixels (every frame of an animation) with the metadata an output carries.

use super::Format;
use image::DynamicImage;
use std::borrow::Cow;

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

    /// A copy holding only the frames `frames` asks for: a still output from an animated input copies
    /// one frame, not all of them.
    pub fn copy(&self, frames: Frames) -> Picture {
        let n = frames.count(self.frames.len() as u32) as usize;
        Picture {
            frames: self.frames[..n].to_vec(),
            format: self.format,
            icc: self.icc.clone(),
            exif: self.exif.clone(),
            orientation: self.orientation,
            quality: self.quality,
        }
    }
}

/// What a decoder should keep of an animation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frames {
    /// The first frame only (for still outputs): later frames are never decoded.
    First,
    /// The first n frames (`frame/<n>`): decoding stops after the n-th.
    Upto(u32),
    All,
}

impl Frames {
    /// What two consumers of one decode need together: the more frames of the two.
    pub fn or(self, other: Frames) -> Frames {
        match (self, other) {
            (Frames::All, _) | (_, Frames::All) => Frames::All,
            (Frames::First, f) | (f, Frames::First) => f,
            (Frames::Upto(a), Frames::Upto(b)) => Frames::Upto(a.max(b)),
        }
    }

    /// How many frames of an animation of `total` this keeps.
    pub fn count(self, total: u32) -> u32 {
        match self {
            Frames::First => 1,
            Frames::Upto(n) => n.clamp(1, total.max(1)),
            Frames::All => total,
        }
    }
}

/// Most bytes an ICC profile or an EXIF block may have to be carried into outputs: 4 MiB, far above any
/// real profile or camera's EXIF. A larger block is dropped with a warning (libpng drops an `iCCP` chunk
/// past its 8 MB chunk limit the same way): it is not worth a request's memory, nor every output's bytes.
pub(crate) const MAX_METADATA_BYTES: usize = 4 << 20;

/// `block` if it is within [`MAX_METADATA_BYTES`].
pub(crate) fn capped(block: Option<Vec<u8>>, what: &'static str) -> Option<Vec<u8>> {
    match block {
        Some(b) if b.len() > MAX_METADATA_BYTES => {
            tracing::warn!(
                what,
                bytes = b.len(),
                cap = MAX_METADATA_BYTES,
                "metadata dropped: larger than the cap"
            );
            None
        }
        block => block,
    }
}

impl Picture {
    /// The metadata an output carries: none when `strip` is set.
    pub(crate) fn metadata(&self, strip: bool) -> Metadata<'_> {
        if strip {
            return Metadata::default();
        }
        Metadata {
            icc: self.icc.as_deref(),
            exif: self.exif.as_deref(),
        }
    }
}

/// Metadata carried into an output.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Metadata<'a> {
    pub icc: Option<&'a [u8]>,
    pub exif: Option<&'a [u8]>,
}

/// 8-bit RGB pixels lent by their owner (a decoded picture, or a decoder's own buffer): `height` rows
/// of `width` pixels, each row `stride` bytes after the one before.
#[derive(Debug, Clone, Copy)]
pub struct RgbRows<'a> {
    pub data: &'a [u8],
    pub stride: usize,
    pub width: u32,
    pub height: u32,
}

impl<'a> RgbRows<'a> {
    pub fn of(rgb: &'a image::RgbImage) -> Self {
        RgbRows {
            data: rgb.as_raw(),
            stride: 3 * rgb.width() as usize,
            width: rgb.width(),
            height: rgb.height(),
        }
    }

    /// Row `y`'s `3 · width` bytes.
    pub fn row(&self, y: usize) -> &'a [u8] {
        &self.data[y * self.stride..][..3 * self.width as usize]
    }
}

/// The picture's 8-bit RGB or RGBA samples and the bytes a pixel (3 or 4), for encoders that take
/// either: 8-bit pixels are read in place, other layouts converted once.
pub(crate) fn samples8(img: &DynamicImage) -> (Cow<'_, [u8]>, usize) {
    match img {
        DynamicImage::ImageRgb8(b) => (Cow::Borrowed(b.as_raw()), 3),
        DynamicImage::ImageRgba8(b) => (Cow::Borrowed(b.as_raw()), 4),
        _ if img.color().has_alpha() => (Cow::Owned(img.to_rgba8().into_raw()), 4),
        _ => (Cow::Owned(img.to_rgb8().into_raw()), 3),
    }
}

/// Composites an image with alpha onto white, for formats without alpha; 8-bit RGB is read in place
/// (a 17.9 MP photo's copy is 54 MB).
pub(crate) fn flatten(img: &DynamicImage) -> Cow<'_, image::RgbImage> {
    match img {
        DynamicImage::ImageRgb8(rgb) => return Cow::Borrowed(rgb),
        _ if !img.color().has_alpha() => return Cow::Owned(img.to_rgb8()),
        _ => {}
    }
    let rgba = img.to_rgba8();
    let mut out = image::RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = p[3] as u32;
        for c in 0..3 {
            o[c] = ((p[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    Cow::Owned(out)
}
