//! JPEG: decoding through `image` (zune-jpeg: CMYK and progressive included) with the writer's quality
//! estimated from the quantisation tables, and encoding (baseline or progressive) with `jpeg-encoder`.

use super::{flatten, via_image, EncodeOptions, Format, Limits, Metadata, Picture};
use crate::{Error, Result};

/// Decodes the image and estimates the quality it was written with (for COS's relative qualities).
pub(super) fn decode(bytes: &[u8], limits: &Limits) -> Result<Picture> {
    let scan = first_scan(bytes);
    if !scan.as_ref().is_some_and(|s| s.is_whole(bytes)) {
        return Err(super::bad_input(
            Format::Jpeg,
            "it ends before its end-of-image marker (truncated?): upload the whole file",
        ));
    }
    if let Some((w, h)) = scan.and_then(|s| s.claims_more_than_it_holds(bytes)) {
        return Err(super::bad_input(
            Format::Jpeg,
            format!(
                "its header claims {w}x{h}, far more than its {} bytes can hold",
                bytes.len()
            ),
        ));
    }
    let mut pic = via_image::decode_still(bytes, Format::Jpeg, limits)?;
    pic.quality = estimate_quality(bytes);
    Ok(pic)
}

/// The IJG luminance table at quality 50 (natural order; only its sum is compared, so order is moot).
const STD_LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// The sum of the IJG luminance table scaled for quality `q`, as libjpeg computes it.
fn scaled_sum(q: u32) -> u32 {
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    STD_LUMA
        .iter()
        .map(|&v| ((v as u32 * scale + 50) / 100).clamp(1, 255))
        .sum()
}

/// Estimates the IJG quality (1-100) a JPEG was written with, from its first (luminance) quantisation
/// table: the quality whose scaled standard table has the closest sum. `None` if there is no table.
pub fn estimate_quality(bytes: &[u8]) -> Option<u8> {
    let table_sum = luma_table_sum(bytes)?;
    (1..=100u32)
        .min_by_key(|&q| scaled_sum(q).abs_diff(table_sum))
        .map(|q| q as u8)
}

/// The marker segments before the first scan: `(marker, payload, offset after the segment)`. Ends at the
/// start of scan (yielded, with the scan's header as payload), at EOI or at anything that is not a marker.
fn segments(b: &[u8]) -> impl Iterator<Item = (u8, &[u8], usize)> {
    let mut i = 2; // after SOI
    let mut done = false;
    std::iter::from_fn(move || {
        while !done && i + 4 <= b.len() {
            if b[i] != 0xFF {
                break;
            }
            let marker = b[i + 1];
            if marker == 0xFF {
                i += 1; // fill byte
                continue;
            }
            let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
            let seg = b.get(i + 4..i + 2 + len)?;
            i += 2 + len;
            done = matches!(marker, 0xDA | 0xD9);
            return Some((marker, seg, i));
        }
        None
    })
}

/// Sums quantisation table 0 from the segments before the first scan.
fn luma_table_sum(b: &[u8]) -> Option<u32> {
    segments(b).find_map(|(marker, seg, _)| {
        if marker != 0xDB {
            return None;
        }
        // DQT: one or more tables of (Pq<<4 | Tq) then 64 entries of 8 or 16 bits.
        let mut j = 0;
        while j < seg.len() {
            let (precision, id) = (seg[j] >> 4, seg[j] & 0x0F);
            let n = if precision == 0 { 64 } else { 128 };
            let table = seg.get(j + 1..j + 1 + n)?;
            if id == 0 {
                return Some(if precision == 0 {
                    table.iter().map(|&v| v as u32).sum()
                } else {
                    table
                        .chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
                        .sum()
                });
            }
            j += 1 + n;
        }
        None
    })
}

/// The first scan: where its entropy-coded data starts, and the frame size declared before it.
struct Scan {
    size: Option<(u32, u32)>,
    data: usize,
}

/// One walk over the segments up to the first scan.
fn first_scan(b: &[u8]) -> Option<Scan> {
    let mut size = None;
    for (marker, seg, after) in segments(b) {
        match marker {
            0xC0..=0xC2 => {
                let at =
                    |i: usize| Some(u16::from_be_bytes([*seg.get(i)?, *seg.get(i + 1)?]) as u32);
                size = at(3).zip(at(1)); // width at 3, height at 1
            }
            0xDA => return Some(Scan { size, data: after }),
            _ => {}
        }
    }
    None
}

impl Scan {
    /// Whether the file holds its end-of-image marker after the scan. zune-jpeg fills whatever a
    /// truncated file lacks with grey, so a JPEG cut short (a broken upload, or a 500-byte header
    /// claiming 10000x10000) would otherwise "decode". Inside entropy-coded data 0xFF is always followed
    /// by 0x00 or a restart marker, so FF D9 there is the real end; an EXIF thumbnail's own EOI comes
    /// before the scan. Searched from the end, where it is, not through megabytes of scan data.
    fn is_whole(&self, b: &[u8]) -> bool {
        b[self.data..].windows(2).rev().any(|w| w == [0xFF, 0xD9])
    }

    /// The size the header claims when the entropy-coded data is too short to hold it: every 8×8 block
    /// of the first component costs at least one bit (its DC code), so fewer than one byte per eight
    /// blocks means a forged header (a 552-byte file claiming 10000x10000 would otherwise decode into
    /// 100 MP of grey).
    fn claims_more_than_it_holds(&self, b: &[u8]) -> Option<(u32, u32)> {
        let (w, h) = self.size?;
        let blocks = w.div_ceil(8) as u64 * h.div_ceil(8) as u64;
        (8 * ((b.len() - self.data) as u64) < blocks).then_some((w, h))
    }
}

/// Width and height as a JPEG frame header holds them.
fn sides(rgb: &image::RgbImage) -> Result<(u16, u16)> {
    let (w, h) = (rgb.width(), rgb.height());
    match (u16::try_from(w), u16::try_from(h)) {
        (Ok(w), Ok(h)) => Ok((w, h)),
        _ => Err(Error::invalid(format!(
            "JPEG cannot hold {w}x{h}: at most 65535 px a side"
        ))),
    }
}

/// 4:2:0 is the web's norm; from quality 90 the chroma detail is worth keeping (4:4:4).
fn full_chroma(quality: u8) -> bool {
    quality >= 90
}

/// The APP1 segment carrying `exif`. A segment holds at most 65533 bytes: a larger EXIF block is
/// dropped rather than corrupted.
fn exif_app1(exif: &[u8]) -> Option<Vec<u8>> {
    let app1 = [&b"Exif\0\0"[..], exif].concat();
    (app1.len() <= 65533).then_some(app1)
}

/// The first frame, alpha composited onto white.
pub(super) fn encode(pic: &Picture, opts: &EncodeOptions, meta: Metadata<'_>) -> Result<Vec<u8>> {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
    let rgb = flatten(pic.first());
    if opts.optimized {
        return encode_mozjpeg(&rgb, opts, meta);
    }
    let (w16, h16) = sides(&rgb)?;
    let (w, h) = (rgb.width(), rgb.height());
    let mut out = Vec::with_capacity((w as usize * h as usize) / 4);
    let mut enc = Encoder::new(&mut out, opts.quality.clamp(1, 100));
    enc.set_progressive(opts.interlace);
    // Baseline 4:2:0 with optimised Huffman tables is misdecoded by zune-jpeg 0.5 (the decoder behind
    // `image`, and so behind mogr's own reads), though libjpeg reads it: keep the standard tables there.
    // The round-trip tests catch a regression.
    enc.set_optimized_huffman_tables(opts.interlace);
    enc.set_sampling_factor(if full_chroma(opts.quality) {
        SamplingFactor::F_1_1
    } else {
        SamplingFactor::F_2_2
    });
    let meta_err = |e: jpeg_encoder::EncodingError| Error::internal(format!("JPEG metadata: {e}"));
    if let Some(icc) = meta.icc {
        enc.add_icc_profile(icc).map_err(meta_err)?;
    }
    if let Some(app1) = meta.exif.and_then(exif_app1) {
        enc.add_app_segment(1, &app1).map_err(meta_err)?;
    }
    enc.encode(rgb.as_raw(), w16, h16, ColorType::Rgb)
        .map_err(|e| Error::internal(format!("JPEG encoding failed: {e}")))?;
    Ok(out)
}

/// `format/yjpeg`: mozjpeg with its defaults — trellis quantisation, progressive scans chosen for size,
/// optimised Huffman tables — and the same quant tables and chroma subsampling as plain JPEG at the
/// same quality, so the same quality number means the same quality, in fewer bytes.
fn encode_mozjpeg(
    rgb: &image::RgbImage,
    opts: &EncodeOptions,
    meta: Metadata<'_>,
) -> Result<Vec<u8>> {
    let fail = |e: std::io::Error| Error::internal(format!("yjpeg (mozjpeg) encoding failed: {e}"));
    let (w, h) = sides(rgb)?;
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(w as usize, h as usize);
    // libjpeg's tables scaled by libjpeg's formula, as plain JPEG's encoder does (mozjpeg's own
    // default tables would make the quality number mean something else)
    let q = opts.quality.clamp(1, 100) as f32;
    c.set_luma_qtable(&mozjpeg::qtable::AnnexK_Luma.scaled(q, q));
    c.set_chroma_qtable(&mozjpeg::qtable::AnnexK_Chroma.scaled(q, q));
    let sub = if full_chroma(opts.quality) {
        (1, 1)
    } else {
        (2, 2)
    };
    c.set_chroma_sampling_pixel_sizes(sub, sub);
    let mut c = c
        .start_compress(Vec::with_capacity((w as usize * h as usize) / 5))
        .map_err(fail)?;
    if let Some(icc) = meta.icc {
        c.write_icc_profile(icc);
    }
    if let Some(app1) = meta.exif.and_then(exif_app1) {
        c.write_marker(mozjpeg::Marker::APP(1), &app1);
    }
    c.write_scanlines(rgb.as_raw()).map_err(fail)?;
    c.finish().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Profile;
    use image::DynamicImage;

    fn is_whole(b: &[u8]) -> bool {
        first_scan(b).is_some_and(|s| s.is_whole(b))
    }

    fn claims_more_than_it_holds(b: &[u8]) -> Option<(u32, u32)> {
        first_scan(b)?.claims_more_than_it_holds(b)
    }

    fn jpeg_at(q: u8) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([x as u8 * 4, y as u8 * 4, 90])
        }));
        let opts = EncodeOptions {
            format: Format::Jpeg,
            quality: q,
            interlace: false,
            strip: true,
            profile: Profile::Download,
            threads: 1,
            optimized: false,
        };
        encode(
            &Picture::still(img, Format::Jpeg),
            &opts,
            Metadata::default(),
        )
        .unwrap()
    }

    #[test]
    fn estimates_the_quality_a_jpeg_was_written_with() {
        for q in [30u8, 50, 75, 85, 90, 95] {
            let est = estimate_quality(&jpeg_at(q)).unwrap();
            assert!(est.abs_diff(q) <= 1, "wrote {q}, estimated {est}");
        }
    }

    #[test]
    fn a_jpeg_cut_short_is_not_whole() {
        let whole = jpeg_at(80);
        assert!(is_whole(&whole));
        assert!(!is_whole(&whole[..whole.len() - 2]));
        assert!(!is_whole(&whole[..whole.len() / 2]));
        assert!(!is_whole(&whole[..200]));
        let mut trailing = whole.clone();
        trailing.extend_from_slice(b"trailing bytes some cameras add");
        assert!(is_whole(&trailing));
    }

    #[test]
    fn a_header_claiming_more_than_the_data_holds_is_refused() {
        let real = jpeg_at(80);
        assert_eq!(claims_more_than_it_holds(&real), None);
        let sof = real.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let mut forged = real.clone();
        forged[sof + 5..sof + 9].copy_from_slice(&[0x27, 0x10, 0x27, 0x10]); // 10000x10000
        assert_eq!(claims_more_than_it_holds(&forged), Some((10000, 10000)));
        let e = decode(&forged, &Limits::default()).unwrap_err();
        assert!(e.message.contains("claims 10000x10000"), "{e}");
    }

    #[test]
    fn no_table_no_estimate() {
        assert_eq!(estimate_quality(b"\xFF\xD8\xFF\xD9"), None);
        assert_eq!(estimate_quality(b"\xFF\xD8\xFF\xDB\x00"), None);
        assert_eq!(estimate_quality(b""), None);
    }
}
