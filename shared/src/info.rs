//! `?imageInfo` and `?imageAve` (cos-api.md): facts about an image, values as strings like COS.

use crate::codec::{self, Frames, Limits, Picture, Probe};
use crate::Result;
use md5::{Digest, Md5};
use serde::Serialize;

/// The `?imageInfo` JSON. COS answers every value as a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    pub format: String,
    pub width: String,
    pub height: String,
    pub size: String,
    pub md5: String,
    pub photo_rgb: String,
    pub frame_count: String,
    /// Estimated quality (JPEG) or "100" for lossless inputs; not in COS's list, kept for UploadResult.
    #[serde(skip)]
    pub quality: u8,
    #[serde(skip)]
    pub orientation: u8,
    /// The quality setting mogr wrote an output with (`quality/auto` included), from the object's
    /// metadata: only for its own lossy outputs. Not in COS's list.
    #[serde(rename = "quality", skip_serializing_if = "Option::is_none")]
    pub stored_quality: Option<String>,
}

/// The average colour of a picture's first frame as `0xRRGGBB`.
pub fn average_rgb(pic: &Picture) -> String {
    let rgb = codec::flatten(pic.first());
    let n = (rgb.width() as u64 * rgb.height() as u64).max(1);
    let mut sum = [0u64; 3];
    for p in rgb.pixels() {
        for c in 0..3 {
            sum[c] += p[c] as u64;
        }
    }
    format!("0x{:02x}{:02x}{:02x}", sum[0] / n, sum[1] / n, sum[2] / n)
}

/// The frames `?imageInfo` needs: all of an animation's, to count them.
pub fn frames_needed(probe: &Probe) -> Frames {
    if probe.format.is_animated() {
        Frames::All
    } else {
        Frames::First
    }
}

/// Reads an image's info; animations are decoded in full to count their frames.
pub fn image_info(bytes: &[u8], limits: &Limits) -> Result<ImageInfo> {
    let probe = codec::probe(bytes, limits)?;
    let pic = codec::decode(bytes, &probe, limits, frames_needed(&probe))?;
    Ok(describe(bytes, &probe, &pic))
}

/// The info of an input already decoded with [`frames_needed`].
pub fn describe(bytes: &[u8], probe: &Probe, pic: &Picture) -> ImageInfo {
    ImageInfo {
        format: probe.format.name().to_string(),
        width: pic.width().to_string(),
        height: pic.height().to_string(),
        size: bytes.len().to_string(),
        md5: format!("{:x}", Md5::digest(bytes)),
        photo_rgb: average_rgb(pic),
        frame_count: pic.frames.len().to_string(),
        quality: if probe.format.is_lossy() {
            pic.quality.unwrap_or(100)
        } else {
            100
        },
        orientation: pic.orientation,
        stored_quality: None,
    }
}
