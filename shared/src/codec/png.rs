//! PNG: read through `image`, written by its PNG encoder (adaptive filters) with ICC and EXIF.

use super::gif::{dithered_palette, quant_err};
use super::picture::MAX_METADATA_BYTES;
use super::{via_image, EncodeOptions, Format, Limits, Metadata, Picture};
use crate::{Error, Result};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageEncoder};
use std::borrow::Cow;

pub(super) fn decode(bytes: &[u8], limits: &Limits) -> Result<Picture> {
    via_image::decode_still(bytes, Format::Png, limits)
}

/// `bytes` without an `iCCP` chunk whose profile inflates past [`MAX_METADATA_BYTES`], borrowed when
/// there is none. The png decoder bounds an `iCCP` profile only by the whole decode budget (hundreds of
/// MB), so a 1 MB file could make every request inflate a gigabyte of "profile"; this looks first, at a
/// bounded cost, and drops such a profile as libpng drops one past its chunk limit. Text chunks stay
/// compressed (mogr never inflates them) and every other chunk is bounded by the input's size.
pub(super) fn without_metadata_bombs(bytes: &[u8]) -> Cow<'_, [u8]> {
    let mut at = 8; // the PNG signature
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let end = at.saturating_add(12).saturating_add(len); // length, type, data, CRC
        match &head[4..8] {
            // The profile must come before the image data: nothing after it is looked at.
            b"IDAT" | b"IEND" => break,
            b"iCCP" => {
                let Some(data) = bytes.get(at + 8..end - 4) else {
                    break; // truncated: the decoder reports it
                };
                if inflates_past_cap(data) {
                    tracing::warn!(
                        cap = MAX_METADATA_BYTES,
                        "PNG ICC profile dropped: it inflates past the metadata cap"
                    );
                    return Cow::Owned([&bytes[..at], &bytes[end..]].concat());
                }
                break; // one iCCP at most: the decoder refuses a second
            }
            _ => {}
        }
        at = end;
    }
    Cow::Borrowed(bytes)
}

/// Whether an `iCCP` chunk's data (name, NUL, method, zlib stream) inflates past [`MAX_METADATA_BYTES`].
fn inflates_past_cap(data: &[u8]) -> bool {
    let Some(nul) = data.iter().take(80).position(|&b| b == 0) else {
        return false; // malformed: the decoder ignores the profile
    };
    let stream = data.get(nul + 2..).unwrap_or_default();
    matches!(
        fdeflate::decompress_to_vec_bounded(stream, MAX_METADATA_BYTES),
        Err(fdeflate::BoundedDecompressionError::OutputTooLarge { .. })
    )
}

/// The first frame, lossless; `opts` has nothing PNG uses (quality does not apply, interlace is not written).
pub(super) fn encode(pic: &Picture, _opts: &EncodeOptions, meta: Metadata<'_>) -> Result<Vec<u8>> {
    let img = pic.first();
    let mut out = Vec::new();
    let mut enc =
        PngEncoder::new_with_quality(&mut out, CompressionType::Default, FilterType::Adaptive);
    if let Some(icc) = meta.icc {
        let _ = enc.set_icc_profile(icc.to_vec());
    }
    if let Some(exif) = meta.exif {
        let _ = enc.set_exif_metadata(exif.to_vec());
    }
    enc.write_image(
        img.as_bytes(),
        img.width(),
        img.height(),
        img.color().into(),
    )
    .map_err(|e| Error::internal(format!("png encoding failed: {e}")))?;
    Ok(out)
}

/// A picture reduced to at most 256 colours, alpha included, dithered (libimagequant's method, through
/// `quantizr`, as GIF outputs are): what `imageSlim` writes as an indexed PNG when it scores as high as
/// its target — typically a third to a quarter of a true-colour PNG's bytes.
pub struct Indexed {
    width: u32,
    height: u32,
    /// RGBA entries.
    palette: Vec<[u8; 4]>,
    /// One palette index a pixel, row after row.
    indices: Vec<u8>,
}

impl Indexed {
    pub fn quantize(img: &DynamicImage) -> Result<Indexed> {
        let (width, height) = (img.width(), img.height());
        let rgba = img.to_rgba8();
        let image = quantizr::Image::new(rgba.as_raw(), width as usize, height as usize)
            .map_err(quant_err)?;
        let result = dithered_palette(std::slice::from_ref(&image), 256)?;
        let mut indices = vec![0u8; width as usize * height as usize];
        result
            .remap_image(&image, &mut indices)
            .map_err(quant_err)?;
        let palette = result.get_palette();
        let palette = palette.entries[..palette.count as usize]
            .iter()
            .map(|c| [c.r, c.g, c.b, c.a])
            .collect();
        Ok(Indexed {
            width,
            height,
            palette,
            indices,
        })
    }

    /// The pixels the indexed PNG will show (RGBA when the palette has any transparency).
    pub fn to_image(&self) -> DynamicImage {
        let entry = |i: &u8| self.palette.get(*i as usize).copied().unwrap_or([0; 4]);
        if self.palette.iter().all(|c| c[3] == 255) {
            let rgb = self.indices.iter().flat_map(|i| {
                let [r, g, b, _] = entry(i);
                [r, g, b]
            });
            DynamicImage::ImageRgb8(
                image::RgbImage::from_raw(self.width, self.height, rgb.collect())
                    .expect("one index a pixel"),
            )
        } else {
            let rgba = self.indices.iter().flat_map(entry);
            DynamicImage::ImageRgba8(
                image::RgbaImage::from_raw(self.width, self.height, rgba.collect())
                    .expect("one index a pixel"),
            )
        }
    }

    /// An indexed PNG (`PLTE`, `tRNS` when any entry is transparent), with `pic`'s ICC profile and EXIF
    /// unless `strip`.
    pub fn encode(&self, pic: &Picture, strip: bool) -> Result<Vec<u8>> {
        let meta = pic.metadata(strip);
        let mut info = ::png::Info::with_size(self.width, self.height);
        info.color_type = ::png::ColorType::Indexed;
        info.bit_depth = ::png::BitDepth::Eight;
        info.palette = Some(
            self.palette
                .iter()
                .flat_map(|c| [c[0], c[1], c[2]])
                .collect(),
        );
        if self.palette.iter().any(|c| c[3] != 255) {
            info.trns = Some(self.palette.iter().map(|c| c[3]).collect());
        }
        info.icc_profile = meta.icc.map(Into::into);
        info.exif_metadata = meta.exif.map(Into::into);
        let png_err =
            |e: ::png::EncodingError| Error::internal(format!("png encoding failed: {e}"));
        let mut out = Vec::new();
        {
            let mut enc = ::png::Encoder::with_info(&mut out, info).map_err(png_err)?;
            enc.set_compression(::png::Compression::High);
            let mut w = enc.write_header().map_err(png_err)?;
            w.write_image_data(&self.indices).map_err(png_err)?;
            w.finish().map_err(png_err)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        c.extend_from_slice(
            &crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32IsoHdlc, &c[4..]).to_be_bytes()[4..],
        );
        c
    }

    /// A 1x1 PNG whose ICC profile is `profile` (any bytes: only its size matters here).
    fn png_with_profile(profile: &[u8]) -> Vec<u8> {
        let ihdr = [0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0];
        let iccp = [&b"p\0\0"[..], &fdeflate::compress_to_vec(profile)].concat();
        [
            &b"\x89PNG\r\n\x1a\n"[..],
            &chunk(b"IHDR", &ihdr),
            &chunk(b"iCCP", &iccp),
            &chunk(b"IDAT", &fdeflate::compress_to_vec(&[0, 77])),
            &chunk(b"IEND", b""),
        ]
        .concat()
    }

    #[test]
    fn an_icc_profile_within_the_cap_is_kept_and_one_past_it_dropped() {
        let small = png_with_profile(&vec![7; 100_000]);
        assert!(matches!(without_metadata_bombs(&small), Cow::Borrowed(_)));
        let pic = decode(&small, &Limits::default()).unwrap();
        assert_eq!(pic.icc.map(|p| p.len()), Some(100_000));

        let bomb = png_with_profile(&vec![7; MAX_METADATA_BYTES + 1]);
        let defused = without_metadata_bombs(&bomb);
        assert!(defused.len() < bomb.len() && !defused.windows(4).any(|w| w == b"iCCP"));
        let pic = decode(&bomb, &Limits::default()).unwrap();
        assert_eq!((pic.width(), pic.height(), pic.icc), (1, 1, None));
    }
}
