//! The imageMogr2 grammar (cos-api.md) as typed operations.
//!
//! A rule such as `imageMogr2/thumbnail/800x/rotate/90|imageMogr2/format/heif/quality/60` is parsed into one
//! [`Rule`]: the pixel operations of every `|` segment in order, and the output settings (format, quality,
//! ...) where a later segment overrides an earlier one. mogr decodes once and encodes once, so a pipeline
//! never pays for an intermediate encode.

mod parse;
mod token;

pub use parse::{parse, RuleError, MAX_RULE_LEN, MAX_SEGMENTS};

use crate::codec::{Format, Profile};

/// A parsed rule: what to do to the pixels, and how to write the result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rule {
    /// Pixel operations, in the order they appear.
    pub ops: Vec<Op>,
    /// Output format; `None` keeps the input's format.
    pub format: Option<Format>,
    /// `/format/auto` (a mogr extension): the download entry point picks AVIF, HEIF, WebP or a classic
    /// format from the request's `Accept` header and answers `Vary: Accept`.
    pub format_auto: bool,
    /// `/format/yjpeg` (COS's optimised JPEG): a JPEG written with mozjpeg's trellis quantisation and
    /// optimised progressive scans, smaller at the same quality (BENCHMARKS.md).
    pub yjpeg: bool,
    pub quality: Option<Quality>,
    /// `/interlace/1`: progressive JPEG (interlaced PNG/GIF are not written; the flag is ignored there).
    pub interlace: bool,
    /// `/strip`: drop EXIF and ICC metadata from the output.
    pub strip: bool,
    pub size_limit: Option<SizeLimit>,
    /// `/ignore-error/1`: answer the original instead of an error when a size or parameter limit is hit.
    pub ignore_error: bool,
    /// Encoder profile picked in the rule (`/profile/download|persistent`); `None` lets the entry point pick.
    pub profile: Option<Profile>,
    /// `imageSlim` (a processor of its own: `?imageSlim`, or a rule or `|` segment): the input's format
    /// at fewer bytes with no visible loss — lossy formats searched for [`SLIM_SCORE`], PNG as a palette
    /// when that scores as much — and never a larger file than the input (then the input itself).
    pub slim: bool,
    /// Why the rule cannot be honoured, found while parsing a rule with `ignore-error/1` (a value past
    /// its limits): such a rule answers the original.
    pub refused: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Thumbnail(Scale),
    /// `/pad/1` after a `<W>x<H>` thumbnail: the result is padded to exactly W×H with `color` (RGB).
    Pad {
        width: u32,
        height: u32,
        color: [u8; 3],
    },
    /// `/cut/<w>x<h>x<dx>x<dy>`: a rectangle at an absolute offset.
    Cut {
        width: u32,
        height: u32,
        x: u32,
        y: u32,
    },
    /// `/crop/...` with `/gravity/` and `/dx/ /dy/`; a missing side keeps the image's side.
    Crop {
        width: Option<u32>,
        height: Option<u32>,
        gravity: Gravity,
        dx: u32,
        dy: u32,
    },
    /// `/iradius/<r>`: the inscribed circle of radius r, outside transparent.
    IRadius(u32),
    /// `/rradius/<r>`: rounded corners of radius r, outside transparent.
    RRadius(u32),
    /// `/rotate/<deg>`: clockwise, the canvas grows to hold the rotated image.
    Rotate(u32),
    /// `/auto-orient`: apply the EXIF orientation (mogr always does; kept for COS compatibility).
    AutoOrient,
    Flip(Flip),
    /// `/blur/<radius>x<sigma>`
    Blur {
        radius: u32,
        sigma: u32,
    },
    /// `/sharpen/<10-300>`
    Sharpen(u32),
    /// `/bright/<-100..100>`: every colour channel moved by that % of full scale (ImageMagick's
    /// `-brightness-contrast B`); 0 is not an operation.
    Bright(i32),
    /// `/contrast/<-100..100>`: channels stretched (> 0) or flattened (< 0) around mid-grey, with
    /// ImageMagick's `-brightness-contrast 0xC` slope, tan(π/4 · (1 + C/100)); 0 is not an operation.
    Contrast(i32),
    /// `/grayscale/1`: each pixel's Rec. 709 luma in all three channels (R = G = B), alpha kept.
    Grayscale,
    /// `/scrop/<W>x<H>`: scaled to cover W×H, then cut to the W×H window holding the most attention
    /// (edges, saturation, skin tones; `pipeline::attention`).
    Scrop {
        width: u32,
        height: u32,
    },
    /// `/frame/<n>`: the n-th frame (1-based) of an animation, alone; frames after it are never decoded.
    Frame(u32),
    /// `/cgif/<n>`: an animation cut to n frames (2-100) picked evenly over its length, each kept frame
    /// shown for as long as the frames it stands for (the animation lasts as long); `cgif/1` keeps the
    /// first [`CGIF_FIRST`] frames as they are.
    Cgif(u32),
    /// imageView2 mode 5: the centre `long`×`short` along the image's long and short edges.
    CropEdges {
        long: u32,
        short: u32,
    },
    /// `watermark/1` (an image from the bucket) or `watermark/2` (text), a processor of its own: the
    /// mark composited onto every frame at its gravity, or tiled over the whole picture.
    Watermark(Box<Watermark>),
}

/// A watermark and where it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Watermark {
    pub mark: Mark,
    /// The corner or edge the mark sits at (default southeast); `dx`/`dy` move it in from there, in
    /// pixels (at `center` and the middles of edges: right and down).
    pub gravity: Gravity,
    pub dx: u32,
    pub dy: u32,
    /// The mark's opacity, 1-100 (default 100 for images, 90 for text).
    pub dissolve: u8,
    /// `/batch/1`: copies of the mark tiled over the whole picture instead of one at its gravity.
    pub batch: bool,
    /// `/degree/<0-360>`: the mark turned clockwise by that many degrees.
    pub degree: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    Image(ImageMark),
    Text(TextMark),
}

/// `watermark/1/image/<url-safe base64 of the image's URL>`: an image of the same bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageMark {
    /// The URL as given, without its query: `http://<bucket host>/<key>`; the service checks that the
    /// host is the bucket's own and reads the key.
    pub url: String,
    /// Operations of an `imageMogr2` rule given as the URL's query (`logo.png?imageMogr2/thumbnail/!50p`),
    /// run on the mark before it is composited.
    pub ops: Vec<Op>,
    /// The object the URL names, found by the service before the rule runs; `None` until then.
    pub object: Option<MarkObject>,
}

/// A watermark image of the bucket: named by its head first (its key and ETag, which name the
/// results it gives), its bytes read only when a result is made. Two are equal, and print, by key and
/// ETag: a rule's `Debug` text names its results (`cache::tag`), which change when the mark does.
#[derive(Clone)]
pub struct MarkObject {
    pub key: String,
    pub etag: String,
    pub bytes: Option<std::sync::Arc<[u8]>>,
}

impl PartialEq for MarkObject {
    fn eq(&self, other: &Self) -> bool {
        (&self.key, &self.etag) == (&other.key, &other.etag)
    }
}

impl std::fmt::Debug for MarkObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MarkObject({:?}, etag {:?})", self.key, self.etag)
    }
}

/// `watermark/2/text/<url-safe base64>`: a line of text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextMark {
    pub text: String,
    /// The font as COS names it (`tahoma.ttf`, `simhei黑体.ttf`, ...) or a font file's name on the
    /// system; [`DEFAULT_FONT`] when none is given. See `pipeline::text`.
    pub font: String,
    /// The font size in points, drawn at one pixel per point (COS: 1-1000, default 13).
    pub size: u32,
    /// The colour of the letters (default #3D3D3D).
    pub fill: [u8; 3],
    /// `/shadow/<0-100>`: a dark copy of the text behind it, offset down and right, at that opacity.
    pub shadow: u8,
}

/// COS's default watermark font; mogr draws it with DejaVu Sans (and CJK with WenQuanYi Micro Hei).
pub const DEFAULT_FONT: &str = "tahoma.ttf";

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// `!<s>p`: both sides to s %.
    Percent(u32),
    /// `!<s>px`: width to s %, height unchanged.
    WidthPercent(u32),
    /// `!x<s>p`: height to s %, width unchanged.
    HeightPercent(u32),
    /// `<W>x`: width W, height in proportion.
    Width(u32),
    /// `x<H>`: height H, width in proportion.
    Height(u32),
    /// `<W>x<H>`: the largest size that fits inside W×H, keeping the aspect ratio.
    Fit { width: u32, height: u32 },
    /// `<W>x<H>>`: like Fit, but only ever shrinks.
    Shrink { width: u32, height: u32 },
    /// `<W>x<H><`: like Fit, but only ever enlarges.
    Enlarge { width: u32, height: u32 },
    /// `!<W>x<H>r`: the smallest size that covers W×H, keeping the aspect ratio.
    Cover { width: u32, height: u32 },
    /// `<W>x<H>!`: exactly W×H, ignoring the aspect ratio.
    Exact { width: u32, height: u32 },
    /// `<Area>@`: at most Area pixels, keeping the aspect ratio.
    Area(u64),
    /// imageView2 modes 0, 4, 5: sizes for the long and the short edge, whichever way the image lies;
    /// the largest size within them, or with `cover` the smallest size reaching them.
    Edges {
        long: Option<u32>,
        short: Option<u32>,
        cover: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gravity {
    /// COS's default for `/crop/` is the top-left corner.
    #[default]
    NorthWest,
    North,
    NorthEast,
    West,
    Center,
    East,
    SouthWest,
    South,
    SouthEast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flip {
    Vertical,
    Horizontal,
}

/// COS quality semantics (cos-api.md): each is resolved against the input's estimated quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    /// `/quality/q`: min(input quality, q); `/quality/q!` (forced): exactly q.
    Absolute { q: u8, forced: bool },
    /// `/rquality/q`: input quality × q / 100.
    Relative(u8),
    /// `/lquality/q`: at least q (max(input quality, q)).
    Floor(u8),
    /// `/quality/auto[/<score>]`: the smallest output whose SSIMULACRA2 score against the picture it
    /// encodes is at least `score` (1-100, default [`AUTO_SCORE`]); see `convert`.
    Auto(u8),
}

/// The SSIMULACRA2 score `imageSlim` keeps: between "high quality" (70) and "visually lossless" (90),
/// where a re-encode is hard to tell from its source at 1:1.
pub const SLIM_SCORE: u8 = 80;

/// The frames `cgif/1` keeps (COS: "cuts to the first 30").
pub const CGIF_FIRST: u32 = 30;

/// The score `quality/auto` aims at when it names none: SSIMULACRA2 70, "high quality".
pub const AUTO_SCORE: u8 = 70;

impl Quality {
    /// The quality to encode with, given the input's quality (100 when unknown, e.g. a PNG).
    pub fn resolve(self, input: u8) -> u8 {
        let q = match self {
            Quality::Absolute { q, forced: true } => q,
            Quality::Absolute { q, forced: false } => q.min(input),
            Quality::Relative(r) => ((input as u32 * r as u32 + 50) / 100) as u8,
            Quality::Floor(l) => l.max(input),
            // searched for by the encoder's caller; the input's quality is where a search would start
            Quality::Auto(_) => input,
        };
        q.clamp(1, 100)
    }
}

/// `/size-limit/<n>k[!]`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimit {
    pub bytes: u64,
    /// `!`: when the result is still larger than the input, answer the input unchanged.
    pub keep_smaller_original: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_arithmetic_follows_cos() {
        // quality/q takes min(input, q); q! forces it.
        assert_eq!(
            Quality::Absolute {
                q: 90,
                forced: false
            }
            .resolve(75),
            75
        );
        assert_eq!(
            Quality::Absolute {
                q: 60,
                forced: false
            }
            .resolve(75),
            60
        );
        assert_eq!(
            Quality::Absolute {
                q: 90,
                forced: true
            }
            .resolve(75),
            90
        );
        // rquality: input 80, rquality 80 -> 64 (cos-api.md).
        assert_eq!(Quality::Relative(80).resolve(80), 64);
        // lquality: input 60, lquality 80 -> 80; input 90 stays 90.
        assert_eq!(Quality::Floor(80).resolve(60), 80);
        assert_eq!(Quality::Floor(80).resolve(90), 90);
        // never 0
        assert_eq!(Quality::Relative(0).resolve(80), 1);
    }
}
