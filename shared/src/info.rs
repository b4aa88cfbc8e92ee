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

/// What `?exif` answers for an image without EXIF, byte for byte as COS writes it.
pub const NO_EXIF: &str = r#"{"error" : "no exif data"}"#;

/// Undefined or byte values longer than this (maker notes, embedded thumbnails) are left out of `?exif`:
/// as COS's decimal byte lists they would be kilobytes of digits no client reads.
const MAX_EXIF_BYTES: usize = 256;

/// Where the sub-IFDs are: offsets inside the block, not facts about the picture.
const POINTERS: [exif::Tag; 3] = [
    exif::Tag::ExifIFDPointer,
    exif::Tag::GPSInfoIFDPointer,
    exif::Tag::InteropIFDPointer,
];

/// `?exif`: the primary image's EXIF tags as COS's JSON, `{"<Tag>": {"val": "<value>"}, …}` in tag-name
/// order — text as it is, numbers in decimal, rationals as `n/d`, bytes as decimals (`"48 50 51 48"`),
/// several values joined by spaces, `ColorSpace` 1 as `sRGB` — or [`NO_EXIF`]. Read from the container
/// (JPEG, PNG, WebP, TIFF, HEIF, AVIF) without decoding a pixel; tags mogr does not know are left out.
pub fn exif_json(bytes: &[u8], limits: &Limits) -> Result<String> {
    limits.check_bytes(bytes.len())?;
    codec::Format::sniff(bytes)?; // not an image at all: the same 400 as any other processor's
    let read = exif::Reader::new()
        .continue_on_error(true)
        .read_from_container(&mut std::io::Cursor::new(bytes))
        .or_else(|e| e.distill_partial_result(|_| {}));
    let Ok(exif) = read else {
        return Ok(NO_EXIF.to_string());
    };
    let tags: std::collections::BTreeMap<String, serde_json::Value> = exif
        .fields()
        .filter(|f| f.ifd_num == exif::In::PRIMARY && f.tag.description().is_some())
        .filter(|f| !POINTERS.contains(&f.tag))
        .filter_map(|f| {
            Some((
                f.tag.to_string(),
                serde_json::json!({ "val": exif_value(f)? }),
            ))
        })
        .collect();
    if tags.is_empty() {
        return Ok(NO_EXIF.to_string());
    }
    serde_json::to_string(&tags).map_err(|e| crate::Error::internal(e.to_string()))
}

/// One field's value as COS writes it; `None` for what is left out (see [`exif_json`]).
fn exif_value(f: &exif::Field) -> Option<String> {
    use exif::Value;
    fn join<T: ToString>(v: &[T]) -> String {
        v.iter().map(T::to_string).collect::<Vec<_>>().join(" ")
    }
    Some(match &f.value {
        Value::Short(v) if f.tag == exif::Tag::ColorSpace && v.first() == Some(&1) => "sRGB".into(),
        Value::Short(v) if f.tag == exif::Tag::ColorSpace && v.first() == Some(&0xffff) => {
            "Uncalibrated".into()
        }
        Value::Ascii(v) => v
            .iter()
            .map(|s| {
                String::from_utf8_lossy(s)
                    .trim_end_matches('\0')
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(" "),
        Value::Byte(v) | Value::Undefined(v, _) if v.len() <= MAX_EXIF_BYTES => join(v),
        Value::Byte(_) | Value::Undefined(..) | Value::Unknown(..) => return None,
        Value::Short(v) => join(v),
        Value::Long(v) => join(v),
        Value::SByte(v) => join(v),
        Value::SShort(v) => join(v),
        Value::SLong(v) => join(v),
        // kamadak-exif writes a rational as `n/d`
        Value::Rational(v) => join(v),
        Value::SRational(v) => join(v),
        Value::Float(v) => join(v),
        Value::Double(v) => join(v),
    })
}
