//! [`Format`]: the formats mogr reads and writes, and how each is recognised from its first bytes.

use crate::{Error, Result};

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

    /// The format a key's or a file's extension names, as `format/<name>` spells it, in any case
    /// (`a/photo.JPG`); `None` for an extension naming no format mogr reads.
    pub fn of_key(key: &str) -> Option<Format> {
        let (_, ext) = key.rsplit_once('.')?;
        Format::from_name(&ext.to_ascii_lowercase())
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
            brand_format(b).ok_or_else(|| {
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

/// Reads the major and compatible brands of an `ftyp` box.
fn brand_format(b: &[u8]) -> Option<Format> {
    let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let end = size.clamp(12, 256).min(b.len());
    let brands = std::iter::once(&b[8..12]).chain(b.get(16..end).unwrap_or(&[]).chunks_exact(4));
    let (mut heif, mut avif) = (false, false);
    for brand in brands {
        match brand {
            b"avif" | b"avis" => avif = true,
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" => {
                heif = true
            }
            _ => {}
        }
    }
    // `mif1` is shared by both; an explicit `avif` brand decides.
    match (avif, heif) {
        (true, _) => Some(Format::Avif),
        (false, true) => Some(Format::Heif),
        _ => None,
    }
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
}
