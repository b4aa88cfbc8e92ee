//! HEIF (HEVC: x265 to write, libde265 to read) and AVIF (AV1: aom to write, dav1d to read) through
//! libheif, compiled from source and linked statically (`libheif-rs`, feature `embedded-libheif`).

use super::libheif::{self, Context, Encoder, Image, Value};
use super::{
    bad_input, samples8, EncodeOptions, Format, Frame, Limits, Metadata, Picture, Profile, RgbRows,
};
use crate::{Error, Result};
use image::DynamicImage;
use libheif_rs::{
    color_profile_types, ColorProfile, ColorSpace, DecodingOptions, HeifContext, LibHeif, RgbChroma,
};
use std::time::{Duration, Instant};

fn heif_err(format: Format, e: libheif_rs::HeifError) -> Error {
    bad_input(format, e.message.trim())
}

/// Width and height of the primary image; `format` (from the brands) names the input in errors.
/// A context reading `bytes` within mogr's limits: libheif's own security limits (1 Gpx and 4 GB by
/// default) are lowered to the configured pixel limit and the memory that many pixels take, so a hostile
/// file (a huge grid, a giant ICC or EXIF block) is refused by libheif before it allocates.
fn read<'a>(bytes: &'a [u8], format: Format, limits: &Limits) -> Result<HeifContext<'a>> {
    let mut ctx =
        HeifContext::new().map_err(|e| Error::internal(format!("libheif: {}", e.message)))?;
    let mut security = ctx.security_limits();
    security.set_max_image_size_pixels(limits.max_pixels);
    security.set_max_total_memory(limits.max_alloc());
    ctx.set_security_limits(&security)
        .map_err(|e| Error::internal(format!("libheif security limits: {}", e.message)))?;
    ctx.read_bytes(bytes).map_err(|e| heif_err(format, e))?;
    Ok(ctx)
}

/// The context reading `bytes` and its primary image.
fn primary<'a>(
    bytes: &'a [u8],
    format: Format,
    limits: &Limits,
) -> Result<(HeifContext<'a>, libheif_rs::ImageHandle)> {
    let ctx = read(bytes, format, limits)?;
    let handle = ctx
        .primary_image_handle()
        .map_err(|e| heif_err(format, e))?;
    Ok((ctx, handle))
}

pub(super) fn dimensions(bytes: &[u8], format: Format, limits: &Limits) -> Result<(u32, u32)> {
    let (_ctx, handle) = primary(bytes, format, limits)?;
    Ok((handle.width(), handle.height()))
}

/// The primary image of `handle` decoded by libheif to interleaved 8-bit RGB, or RGBA when it has alpha.
fn decode_rgb(
    handle: &libheif_rs::ImageHandle,
    format: Format,
    limits: &Limits,
) -> Result<libheif_rs::Image> {
    limits.check_dimensions(handle.width(), handle.height())?;
    let mut opts =
        DecodingOptions::new().ok_or_else(|| Error::internal("libheif: decoding options"))?;
    opts.set_convert_hdr_to_8bit(true);
    let chroma = if handle.has_alpha_channel() {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    LibHeif::new()
        .decode(handle, ColorSpace::Rgb(chroma), Some(opts))
        .map_err(|e| heif_err(format, e))
}

/// The interleaved plane of an image [`decode_rgb`] made, checked to hold `channels` bytes for each
/// pixel of every row, so its rows can be sliced without a panic.
fn interleaved(
    img: &libheif_rs::Image,
    channels: usize,
    format: Format,
) -> Result<libheif_rs::Plane<&[u8]>> {
    let plane = img
        .planes()
        .interleaved
        .ok_or_else(|| bad_input(format, "no interleaved RGB plane after decoding"))?;
    let rows = plane.height as usize;
    let row = plane.width as usize * channels;
    if rows > 0 && (plane.stride < row || plane.data.len() < plane.stride * (rows - 1) + row) {
        return Err(bad_input(format, "decoded plane has an unexpected size"));
    }
    Ok(plane)
}

/// `f` on the primary image's RGB rows in libheif's own buffer, without a copy; `Err(f)` back when the
/// image has alpha (the caller composites it).
pub(super) fn with_rgb8<R, F: FnOnce(RgbRows<'_>) -> R>(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
    f: F,
) -> Result<std::result::Result<R, F>> {
    let (_ctx, handle) = primary(bytes, format, limits)?;
    if handle.has_alpha_channel() {
        return Ok(Err(f));
    }
    let img = decode_rgb(&handle, format, limits)?;
    let plane = interleaved(&img, 3, format)?;
    Ok(Ok(f(RgbRows {
        data: plane.data,
        stride: plane.stride,
        width: plane.width,
        height: plane.height,
    })))
}

pub(super) fn decode(bytes: &[u8], format: Format, limits: &Limits) -> Result<Picture> {
    let (_ctx, handle) = primary(bytes, format, limits)?;
    let alpha = handle.has_alpha_channel();
    let img = decode_rgb(&handle, format, limits)?;
    let channels = if alpha { 4 } else { 3 };
    let plane = interleaved(&img, channels, format)?;
    let row = plane.width as usize * channels;
    let mut px = Vec::with_capacity(row * plane.height as usize);
    for y in 0..plane.height as usize {
        px.extend_from_slice(&plane.data[y * plane.stride..][..row]);
    }
    let (pw, ph) = (plane.width, plane.height);
    let image = if alpha {
        image::RgbaImage::from_raw(pw, ph, px).map(DynamicImage::ImageRgba8)
    } else {
        image::RgbImage::from_raw(pw, ph, px).map(DynamicImage::ImageRgb8)
    }
    .ok_or_else(|| bad_input(format, "decoded plane has an unexpected size"))?;

    let icc = handle
        .color_profile_raw()
        .filter(|p| {
            [color_profile_types::PROF, color_profile_types::R_ICC].contains(&p.profile_type())
        })
        .map(|p| p.data);
    // HEIF stores EXIF behind a 4-byte offset to its TIFF header. libheif has already applied the
    // container's rotation and mirroring, so any EXIF orientation left in it is reset to 1.
    let exif = handle
        .all_metadata()
        .into_iter()
        .find(|m| &m.item_type.0 == b"Exif")
        .and_then(|m| {
            let off = u32::from_be_bytes(m.raw_data.get(..4)?.try_into().ok()?) as usize;
            let mut tiff = m.raw_data.get(4 + off..)?.to_vec();
            let _ = image::metadata::Orientation::remove_from_exif_chunk(&mut tiff);
            Some(tiff)
        });
    Ok(Picture {
        frames: vec![Frame { image, delay_ms: 0 }],
        format,
        icc: super::picture::capped(icc, "ICC profile"),
        exif: super::picture::capped(exif, "EXIF"),
        orientation: 1,
        quality: None,
    })
}

/// Pictures larger than this get aom's fastest speed in the download profile.
const AV1_FASTEST_ABOVE_PIXELS: u64 = 8_000_000;

/// Encoder settings per format and profile. Download favours latency, persistent favours bytes.
///
/// Download (measured on 2 cores, BENCHMARKS.md): x265 `ultrafast` writes a 4 MP photo in ~0.3 s where
/// `faster` took ~1.0 s, at scores 77–83 and fewer bytes at the same quality setting; aom speed 8 takes
/// ~0.2 s for 4 MP (speed 6: 0.4–1.0 s), and speed 9 keeps an 18 MP photo near 1.6 s (speed 6: 6.2 s).
///
/// Threads are fixed per request (`opts.threads`) instead of each encoder's default (x265: a pool per
/// NUMA node of every core; aom: every core), so workers × threads bounds the machine's load.
///
/// Persistent HEIF evaluates x265's transform skip (`tskip`: 4×4 blocks coded without the DCT) unless
/// the source is a JPEG: at SSIMULACRA2 70 it cut the bytes of the noisy Ubuntu MATE renders to
/// 0.58–0.63× and cost photos 0.8–1.8 % (BENCHMARKS.md); JPEG sources are photos.
fn tune(encoder: &mut Encoder, opts: &EncodeOptions, pic: &Picture) -> Result<()> {
    let pixels = u64::from(pic.width()) * u64::from(pic.height());
    let mut set = |name: &str, v: Value<'_>| {
        encoder
            .set(name, v)
            .map_err(|e| Error::internal(format!("libheif encoder {e}")))
    };
    use Value::{Int, Str};
    let threads = opts.threads.max(1);
    match opts.format {
        Format::Heif => {
            set("x265:pools", Str(&threads.to_string()))?;
            set("x265:frame-threads", Str("1"))?;
        }
        _ => {
            set("threads", Int(threads as i32))?;
            // libheif picks aom's `tune=iq` from aom 3.13 on, with its own quality-to-quantizer table;
            // `ssim` keeps the linear mapping the calibrated defaults were measured on, and at score 70
            // with aom 3.14 wrote 0.7–2.9 % fewer bytes than `iq` on five of six images (5.3 % more on
            // photo.png; BENCHMARKS.md).
            set("tune", Str("ssim"))?
        }
    }
    match (opts.format, opts.profile) {
        (Format::Heif, Profile::Download) => set("preset", Str("ultrafast")),
        (Format::Heif, Profile::Persistent) => {
            set("preset", Str("slow"))?;
            if pic.format != Format::Jpeg {
                set("x265:tskip", Str("1"))?;
            }
            Ok(())
        }
        (Format::Avif, Profile::Download) if pixels > AV1_FASTEST_ABOVE_PIXELS => {
            set("speed", Int(9))
        }
        (Format::Avif, Profile::Download) => set("speed", Int(8)),
        (Format::Avif, Profile::Persistent) => set("speed", Int(5)),
        _ => Ok(()),
    }
}

/// libheif hands x265 `crf = (100 − quality) / 2`, and x265 writes the same file for qualities 2k−1 and 2k;
/// aom gets `cq-level = ((100 − quality) · 63 + 50) / 100` (its linear table: [`tune`] sets `tune=ssim`),
/// so 36 and 37, for one, share a level. `tests/codecs.rs` encodes both sides of each boundary.
pub(super) fn quality_step(format: Format, quality: u8) -> u32 {
    let q = u32::from(quality.min(100));
    match format {
        Format::Avif => ((100 - q) * 63 + 50) / 100,
        _ => (100 - q) / 2,
    }
}

/// 8-bit YCbCr 4:2:0 (BT.601 full range, the sRGB default nclx libheif writes) plus alpha, the layout
/// the encoders take, so libheif does no colour conversion of its own. Scores are the same as with
/// libheif's conversion; peak memory is lower (no RGB copy for libheif). `src` is `w`×`h` pixels of
/// `n` bytes (3: RGB, 4: RGBA).
fn ycbcr420_image(
    src: &[u8],
    n: usize,
    (w, h): (u32, u32),
    icc: Option<&[u8]>,
) -> libheif::Result<Image> {
    let mut image = Image::ycbcr420(w, h, n == 4)?;
    if let Some(icc) = icc {
        image.set_icc(icc)?;
    }
    let (w, h) = (w as usize, h as usize);
    let planes = image.planes()?;
    // Luma on a second thread while this one does chroma (the encoder's threads are idle until the
    // planes are ready).
    std::thread::scope(|scope| {
        let (y, y_stride) = planes.y;
        scope.spawn(move || match n {
            3 => luma::<3>(y, y_stride, src, w),
            _ => luma::<4>(y, y_stride, src, w),
        });
        match n {
            3 => chroma420::<3>(planes.cb, planes.cr, src, w, h),
            _ => chroma420::<4>(planes.cb, planes.cr, src, w, h),
        }
    });
    if let Some((a, a_stride)) = planes.alpha {
        for (line, out) in src.chunks_exact(w * n).zip(a.chunks_mut(a_stride)) {
            for (o, p) in out[..w].iter_mut().zip(line.chunks_exact(n)) {
                *o = p[3];
            }
        }
    }
    Ok(image)
}

/// BT.601 full-range luma of every pixel; `N` bytes a pixel, so the loop is unrolled and vectorised.
fn luma<const N: usize>(out: &mut [u8], stride: usize, src: &[u8], w: usize) {
    for (line, out) in src.chunks_exact(w * N).zip(out.chunks_mut(stride)) {
        for (o, p) in out[..w].iter_mut().zip(line.chunks_exact(N)) {
            let (r, g, b) = (p[0] as u32, p[1] as u32, p[2] as u32);
            *o = ((19595 * r + 38470 * g + 7471 * b + 32768) >> 16) as u8;
        }
    }
}

/// Cb and Cr of each 2×2 block's mean colour. At an odd right or bottom edge the last column or row
/// stands in for its missing neighbour, which leaves the mean of the pixels that exist unchanged.
fn chroma420<const N: usize>(
    (cb, cb_stride): (&mut [u8], usize),
    (cr, cr_stride): (&mut [u8], usize),
    src: &[u8],
    w: usize,
    h: usize,
) {
    let row = w * N;
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    for cy in 0..ch {
        let top = &src[2 * cy * row..][..row];
        let bottom = if 2 * cy + 1 < h {
            &src[(2 * cy + 1) * row..][..row]
        } else {
            top
        };
        let cb_row = &mut cb[cy * cb_stride..][..cw];
        let cr_row = &mut cr[cy * cr_stride..][..cw];
        for (cx, (cb, cr)) in cb_row.iter_mut().zip(cr_row.iter_mut()).enumerate() {
            let left = 2 * cx * N;
            let right = if 2 * cx + 1 < w { left + N } else { left };
            let sum = |c: usize| {
                top[left + c] as i32
                    + top[right + c] as i32
                    + bottom[left + c] as i32
                    + bottom[right + c] as i32
            };
            let (r, g, b) = ((sum(0) + 2) >> 2, (sum(1) + 2) >> 2, (sum(2) + 2) >> 2);
            let b_ = (-11059 * r - 21709 * g + 32768 * b + (128 << 16) + 32768) >> 16;
            let r_ = (32768 * r - 27439 * g - 5329 * b + (128 << 16) + 32768) >> 16;
            *cb = b_.clamp(0, 255) as u8;
            *cr = r_.clamp(0, 255) as u8;
        }
    }
}

/// HEVC pictures wider or taller than this are written as a grid of tiles (as phones write their
/// photos), each tile at most this size and encoded on its own: x265's memory follows the pixels it
/// encodes at once (~13 bytes a pixel), so a 17.9 MP photo peaked at 320–332 MiB in one piece and at
/// 166–168 MiB in four, at the same bytes (±0.3 %) and score (±0.1) and 1–2 % more time
/// (BENCHMARKS.md). AVIF is not tiled: Firefox does not show grid AVIFs.
const GRID_TILE_MAX: u32 = 2048;

/// How a grid covers a picture: `columns`×`rows` tiles of `width`×`height`. Tiles are multiples of 64
/// (MIAF's recommendation; x265's coding blocks) where there is more than one a row or column, so
/// the last ones reach past the edge, which libheif's grid trims; one per row or column fits exactly.
#[derive(Debug, PartialEq)]
struct Tiling {
    columns: u32,
    rows: u32,
    width: u32,
    height: u32,
}

fn tiling(w: u32, h: u32) -> Tiling {
    let side = |n: u32| {
        let k = n.div_ceil(GRID_TILE_MAX).max(1);
        (
            k,
            if k == 1 {
                n
            } else {
                n.div_ceil(k).next_multiple_of(64)
            },
        )
    };
    let ((columns, width), (rows, height)) = (side(w), side(h));
    Tiling {
        columns,
        rows,
        width,
        height,
    }
}

/// The `tw`×`th` pixels at (`x0`, `y0`) of a `w`×`h` picture of `n`-byte pixels into `out`, the last
/// column and row repeated where the tile reaches past the edge.
fn copy_tile(
    src: &[u8],
    n: usize,
    (w, h): (usize, usize),
    (x0, y0): (usize, usize),
    (tw, th): (usize, usize),
    out: &mut Vec<u8>,
) {
    out.clear();
    let row = w * n;
    let x_end = (x0 + tw).min(w);
    for y in y0..y0 + th {
        let line = &src[y.min(h - 1) * row..][..row];
        out.extend_from_slice(&line[x0 * n..x_end * n]);
        let last = &line[row - n..];
        for _ in x_end..x0 + tw {
            out.extend_from_slice(last);
        }
    }
}

/// The first frame, converted to YCbCr 4:2:0 here and handed to libheif's encoder: whole, or as a
/// grid of tiles (HEVC without alpha, larger than [`GRID_TILE_MAX`] a side).
pub(super) fn encode(pic: &Picture, opts: &EncodeOptions, meta: Metadata<'_>) -> Result<Vec<u8>> {
    let img = pic.first();
    let fail = |what: &'static str| {
        move |e: String| {
            Error::internal(format!(
                "{} encoding ({what}) failed: {e}",
                opts.format.name()
            ))
        }
    };
    // Keeps libheif initialised (its encoders registered) while this encodes.
    let _lib = LibHeif::new();
    let mut ctx = Context::new().map_err(fail("context"))?;
    let mut encoder = ctx
        .encoder(if opts.format == Format::Avif {
            libheif_sys::heif_compression_format_heif_compression_AV1
        } else {
            libheif_sys::heif_compression_format_heif_compression_HEVC
        })
        .map_err(fail("no encoder"))?;
    encoder.set_quality(opts.quality).map_err(fail("quality"))?;
    tune(&mut encoder, opts, pic)?;

    let (w, h) = (img.width(), img.height());
    let (src, n) = samples8(img);
    let grid = tiling(w, h);
    let (mut converting, mut encoding) = (Duration::ZERO, Duration::ZERO);
    let timed = |total: &mut Duration, started: Instant| {
        *total += started.elapsed();
        Instant::now()
    };
    let tiles = if opts.format == Format::Heif && n == 3 {
        grid.columns * grid.rows
    } else {
        1
    };
    let started = Instant::now();
    let handle = if tiles > 1 {
        let handle = ctx
            .add_grid(w, h, grid.columns, grid.rows)
            .map_err(fail("grid"))?;
        let (mut tile, mut at) = (Vec::new(), started);
        for row in 0..grid.rows {
            for column in 0..grid.columns {
                let (tw, th) = (grid.width, grid.height);
                let origin = ((column * tw) as usize, (row * th) as usize);
                copy_tile(
                    &src,
                    n,
                    (w as usize, h as usize),
                    origin,
                    (tw as usize, th as usize),
                    &mut tile,
                );
                let image = ycbcr420_image(&tile, n, (tw, th), meta.icc).map_err(fail("image"))?;
                at = timed(&mut converting, at);
                ctx.add_tile(&handle, (column, row), &image, &mut encoder)
                    .map_err(fail("encode"))?;
                at = timed(&mut encoding, at);
            }
        }
        handle
    } else {
        let image = ycbcr420_image(&src, n, (w, h), meta.icc).map_err(fail("image"))?;
        let at = timed(&mut converting, started);
        let handle = ctx.encode(&image, &mut encoder).map_err(fail("encode"))?;
        timed(&mut encoding, at);
        handle
    };
    tracing::debug!(
        format = opts.format.name(),
        tiles,
        ycbcr_ms = converting.as_secs_f64() * 1e3,
        encoder_ms = encoding.as_secs_f64() * 1e3,
        "libheif encoded"
    );
    if let Some(exif) = meta.exif {
        ctx.add_exif(&handle, exif).map_err(fail("exif"))?;
    }
    ctx.write().map_err(fail("write"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mogr's AVIF bytes rely on libaom 3.13 or later (half the bytes of 3.6 on noisy renders at equal
    /// SSIMULACRA2, BENCHMARKS.md "AVIF with libaom 3.14"); `scripts/setup.sh` builds 3.14.1 for the
    /// libheif compiled into mogr. This fails when a build fell back to an older system libaom.
    #[test]
    fn av1_encoder_is_libaom_3_13_or_later() {
        let lib = LibHeif::new();
        let name = lib
            .encoder_for_format(libheif_rs::CompressionFormat::Av1)
            .unwrap()
            .name();
        let version: Vec<u32> = name
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .trim_start_matches('v')
            .split('.')
            .map_while(|n| n.parse().ok())
            .collect();
        assert!(
            name.starts_with("AOMedia") && version.as_slice() >= [3, 13].as_slice(),
            "AV1 encoder is {name:?}: run scripts/setup.sh (it builds libaom 3.14.1), then rebuild \
             libheif-sys (cargo clean -p libheif-sys)"
        );
    }

    /// The plain formulas, one output sample at a time, averaging only the pixels that exist.
    fn reference(src: &[u8], n: usize, w: usize, h: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let px = |x: usize, y: usize, c: usize| src[(y * w + x) * n + c] as i32;
        let mut luma = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let (r, g, b) = (px(x, y, 0), px(x, y, 1), px(x, y, 2));
                luma.push(((19595 * r + 38470 * g + 7471 * b + 32768) >> 16) as u8);
            }
        }
        let (mut cb, mut cr) = (Vec::new(), Vec::new());
        for cy in 0..h.div_ceil(2) {
            for cx in 0..w.div_ceil(2) {
                let mut sum = [0i32; 3];
                let mut k = 0;
                for y in (2 * cy..2 * cy + 2).filter(|&y| y < h) {
                    for x in (2 * cx..2 * cx + 2).filter(|&x| x < w) {
                        for (c, s) in sum.iter_mut().enumerate() {
                            *s += px(x, y, c);
                        }
                        k += 1;
                    }
                }
                let [r, g, b] = sum.map(|s| (s + k / 2) / k);
                let b_ = (-11059 * r - 21709 * g + 32768 * b + (128 << 16) + 32768) >> 16;
                let r_ = (32768 * r - 27439 * g - 5329 * b + (128 << 16) + 32768) >> 16;
                cb.push(b_.clamp(0, 255) as u8);
                cr.push(r_.clamp(0, 255) as u8);
            }
        }
        (luma, cb, cr)
    }

    #[test]
    fn grids_cover_the_picture_with_tiles_of_at_most_2048() {
        let t = |columns, width, rows, height| Tiling {
            columns,
            rows,
            width,
            height,
        };
        assert_eq!(tiling(2048, 2048), t(1, 2048, 1, 2048));
        assert_eq!(tiling(2560, 1600), t(2, 1280, 1, 1600));
        assert_eq!(tiling(5640, 3172), t(3, 1920, 2, 1600));
        assert_eq!(tiling(4032, 3024), t(2, 2048, 2, 1536));
        for n in (1..40_000).step_by(7) {
            let g = tiling(n, 1);
            let (k, side) = (g.columns, g.width);
            assert!(side <= GRID_TILE_MAX && k * side >= n, "{n}: {g:?}");
            assert!(
                k == 1 || ((k - 1) * side < n && side % 64 == 0),
                "{n}: {g:?}"
            );
        }
    }

    #[test]
    fn tiles_past_the_edge_repeat_the_last_column_and_row() {
        // 3×2 pixels of one byte each ("n" = 1 keeps the picture readable).
        let src = [1, 2, 3, 4, 5, 6];
        let mut out = Vec::new();
        copy_tile(&src, 1, (3, 2), (1, 0), (4, 3), &mut out);
        assert_eq!(out, [2, 3, 3, 3, 5, 6, 6, 6, 5, 6, 6, 6]);
        copy_tile(&src, 1, (3, 2), (0, 0), (3, 2), &mut out);
        assert_eq!(out, src);
    }

    #[test]
    fn planes_match_the_plain_formulas_at_odd_sizes() {
        for (n, w, h) in [(3usize, 7usize, 5usize), (4, 8, 3), (3, 1, 1), (4, 33, 17)] {
            let src: Vec<u8> = (0..w * h * n).map(|i| (i * 97 % 251) as u8).collect();
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            let (mut y, mut cb, mut cr) = (vec![0; w * h], vec![0; cw * ch], vec![0; cw * ch]);
            match n {
                3 => {
                    luma::<3>(&mut y, w, &src, w);
                    chroma420::<3>((&mut cb, cw), (&mut cr, cw), &src, w, h);
                }
                _ => {
                    luma::<4>(&mut y, w, &src, w);
                    chroma420::<4>((&mut cb, cw), (&mut cr, cw), &src, w, h);
                }
            }
            assert_eq!((y, cb, cr), reference(&src, n, w, h), "{n} bytes, {w}x{h}");
        }
    }
}
