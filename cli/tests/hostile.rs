//! A hostile corpus through `mogr serve` over HTTP: inputs an attacker (or a broken client) would send —
//! truncations, wrong magic, forged headers, bombs, metadata traps, odd but valid images — and hostile
//! rules. Every request is answered 200 or a 4xx COS `<Error>` naming the problem, as each case expects;
//! never a 5xx or a crash, and the server's peak memory stays bounded.
//!
//! The corpus is built here from the committed fixtures (`shared/tests/fixtures`) by byte surgery, so it
//! needs no generator script and no binary files of its own.

mod common;
use common::{client, examples, facts, start};
use mogr::codec::{self, EncodeOptions, Format, Picture};
use mogr::Profile;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// Converts: 200 with the asked format.
    Converts,
    /// Refused: a 4xx `<Error>`.
    Refused,
}

fn fixture(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let path = std::path::Path::new(&dir)
        .join("../shared/tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn encode(img: image::DynamicImage, format: Format) -> Vec<u8> {
    let opts = EncodeOptions {
        format,
        quality: 60,
        interlace: false,
        strip: false,
        profile: Profile::Download,
        threads: 1,
        optimized: false,
    };
    codec::encode(&Picture::still(img, Format::Png), &opts).unwrap()
}

/// A HEIF whose primary image is a `rows`×`cols` grid of `tile`×`tile` HEVC tiles (as phones write).
fn heic_grid(tile: u32, rows: u16, cols: u16) -> Vec<u8> {
    use libheif_rs::{
        Channel, ColorSpace, CompressionFormat, EncoderQuality, HeifContext, Image, LibHeif,
        RgbChroma,
    };
    let lib = LibHeif::new();
    let mut encoder = lib.encoder_for_format(CompressionFormat::Hevc).unwrap();
    encoder.set_quality(EncoderQuality::Lossy(50)).unwrap();
    let tiles: Vec<Image> = (0..rows as u32 * cols as u32)
        .map(|i| {
            let mut img = Image::new(tile, tile, ColorSpace::Rgb(RgbChroma::Rgb)).unwrap();
            img.create_plane(Channel::Interleaved, tile, tile, 8)
                .unwrap();
            let plane = img.planes_mut().interleaved.unwrap();
            for (j, b) in plane.data.iter_mut().enumerate() {
                *b = (j as u32 * 7 + i * 40) as u8;
            }
            img
        })
        .collect();
    let mut ctx = HeifContext::new().unwrap();
    let rows = std::num::NonZeroU16::new(rows).unwrap();
    ctx.encode_grid(&tiles, rows, &mut encoder, None).unwrap();
    ctx.write_to_bytes().unwrap()
}

/// `heic` (a 2×2 grid of 64×64 tiles, 128×128) with `from` replaced by `to`: the grid's description or
/// its size property rewritten.
fn patched(heic: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = heic
        .windows(from.len())
        .position(|w| w == from)
        .expect("the grid's boxes as libheif writes them");
    [&heic[..at], to, &heic[at + from.len()..]].concat()
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    c.extend_from_slice(&crc.finalize().to_be_bytes());
    c
}

/// A zlib stream that inflates to `mib` MiB of zeros, a thousandth of that in size: one MiB compressed
/// and sync-flushed (so it ends on a byte boundary; every match in it refers back to zeros), repeated.
fn zeros_zlib(mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::best(), false);
    let mut unit = Vec::with_capacity(64 << 10);
    c.compress_vec(&vec![0; 1 << 20], &mut unit, FlushCompress::Sync)
        .unwrap();
    assert_eq!(c.total_in(), 1 << 20, "one MiB compressed in one go");
    let mut z = vec![0x78, 0xDA];
    for _ in 0..mib {
        z.extend_from_slice(&unit);
    }
    z.extend_from_slice(&[0x03, 0x00]); // an empty final block
    let adler = (((mib << 20) % 65521) << 16 | 1) as u32; // Adler-32 of zeros: a = 1, b = n
    z.extend_from_slice(&adler.to_be_bytes());
    z
}

/// A 64x64 grey PNG whose `iCCP` profile inflates to `mib` MiB.
fn png_with_icc_bomb(mib: usize) -> Vec<u8> {
    let mut ihdr = 64u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&64u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let rows: Vec<u8> = (0..64)
        .flat_map(|_| [0].into_iter().chain([128; 64]))
        .collect();
    let mut idat = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut idat, &rows).unwrap();
    [
        &b"\x89PNG\r\n\x1a\n"[..],
        &png_chunk(b"IHDR", &ihdr),
        &png_chunk(b"iCCP", &[&b"bomb\0\0"[..], &zeros_zlib(mib)].concat()),
        &png_chunk(b"IDAT", &idat.finish().unwrap()),
        &png_chunk(b"IEND", b""),
    ]
    .concat()
}

/// A JPEG with `segments` (APPn, each `(marker, payload)`) inserted right after SOI.
fn jpeg_with(segments: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let base = fixture("baseline.jpg");
    let mut out = base[..2].to_vec();
    for (marker, payload) in segments {
        out.extend_from_slice(&[0xFF, *marker]);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(payload);
    }
    out.extend_from_slice(&base[2..]);
    out
}

/// Deterministic noise.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

/// A GIF with a `sw`×`sh` screen and `frames` copies of one `fw`×`fh` frame.
fn gif(sw: u16, sh: u16, fw: u16, fh: u16, frames: usize) -> Vec<u8> {
    let mut b = b"GIF89a".to_vec();
    b.extend_from_slice(&sw.to_le_bytes());
    b.extend_from_slice(&sh.to_le_bytes());
    b.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    b.extend_from_slice(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00");
    for _ in 0..frames {
        b.extend_from_slice(&[0x21, 0xF9, 4, 0, 1, 0, 0, 0, 0x2C, 0, 0, 0, 0]);
        b.extend_from_slice(&fw.to_le_bytes());
        b.extend_from_slice(&fh.to_le_bytes());
        b.extend_from_slice(&[0, 2, 2, 0x44, 0x01, 0]);
    }
    b.push(0x3B);
    b
}

fn corpus() -> Vec<(&'static str, Vec<u8>, Want)> {
    use Want::*;
    let jpg = fixture("baseline.jpg");
    let png = fixture("rgb.png");
    let webp = fixture("lossy.webp");
    let animated_gif = fixture("animated.gif");
    let rgba = image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(96, 64, |x, y| {
        image::Rgba([x as u8 * 2, y as u8 * 3, 120, (x + y) as u8])
    }));
    let heic = encode(rgba.clone(), Format::Heif);
    let avif = encode(rgba, Format::Avif);
    let grid = heic_grid(64, 2, 2);
    let grid_idat = b"idat\0\0\x01\x01\0\x80\0\x80".to_vec();
    let grid_ispe = b"ispe\0\0\0\0\0\0\0\x80\0\0\0\x80".to_vec();

    let mut cases = vec![
        ("zero-bytes.jpg", vec![], Refused),
        ("text.png", b"this is not an image\n".repeat(10), Refused),
        (
            "svg.png",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>".to_vec(),
            Refused,
        ),
        (
            "pdf.jpg",
            b"%PDF-1.4\n1 0 obj<<>>endobj\n".to_vec(),
            Refused,
        ),
        ("noise.jpg", noise(4096, 7), Refused),
        (
            "jpeg-magic-then-noise.jpg",
            [&jpg[..2], &noise(4096, 8)[..]].concat(),
            Refused,
        ),
        ("truncated-header.jpg", jpg[..40].to_vec(), Refused),
        ("truncated.jpg", jpg[..jpg.len() / 2].to_vec(), Refused),
        ("truncated.png", png[..png.len() / 2].to_vec(), Refused),
        ("truncated.webp", webp[..webp.len() / 3].to_vec(), Refused),
        (
            "truncated.gif",
            animated_gif[..animated_gif.len() / 2].to_vec(),
            Refused,
        ),
        ("truncated.heic", heic[..heic.len() / 2].to_vec(), Refused),
        ("truncated.avif", avif[..avif.len() / 2].to_vec(), Refused),
        ("jpeg-named.png", jpg.clone(), Converts), // the bytes decide, not the name
        (
            "png-100000x100000.png",
            fixture("bomb-100000x100000.png"),
            Refused,
        ),
        (
            "png-20000x20000.png",
            fixture("bomb-20000x20000.png"),
            Refused,
        ),
        ("gif-10000-frames.gif", gif(1, 1, 1, 1, 10_000), Refused),
        (
            "gif-frame-outside-screen.gif",
            gif(1, 1, 12_000, 12_000, 1),
            Refused,
        ),
        ("heif-alpha.heic", heic, Converts),
        ("heif-grid-2x2.heic", grid.clone(), Converts),
        // the grid's description (`idat`: version, flags, rows - 1, columns - 1, width, height) and its
        // `ispe` both claim 60000x60000 from four 64x64 tiles
        (
            "heif-grid-60000x60000.heic",
            patched(
                &patched(&grid, &grid_idat, b"idat\0\0\x01\x01\xea\x60\xea\x60"),
                &grid_ispe,
                b"ispe\0\0\0\0\0\0\xea\x60\0\0\xea\x60",
            ),
            Refused,
        ),
        // the same claim in the grid's description only: its size property says 128x128
        (
            "heif-grid-hidden-60000x60000.heic",
            patched(&grid, &grid_idat, b"idat\0\0\x01\x01\xea\x60\xea\x60"),
            Refused,
        ),
        // 256x256 tiles announced, four present
        (
            "heif-grid-missing-tiles.heic",
            patched(&grid, &grid_idat, b"idat\0\0\xff\xff\0\x80\0\x80"),
            Refused,
        ),
        ("avif-alpha.avif", avif, Converts),
    ];
    // a PNG whose header says 0x0
    let mut ihdr = 0u32.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&0u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let empty_png = [
        &b"\x89PNG\r\n\x1a\n"[..],
        &png_chunk(b"IHDR", &ihdr),
        &png_chunk(b"IEND", b""),
    ]
    .concat();
    cases.push(("png-0x0.png", empty_png, Refused));
    // a JPEG whose frame header is forged to 10000x10000 (100 MP: within the pixel limit, but the data
    // holds a 64-pixel picture), with and without its end marker, and one forged past the side limit
    let sof = jpg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    let mut forged = jpg.clone();
    forged[sof + 5..sof + 9].copy_from_slice(&[0x27, 0x10, 0x27, 0x10]);
    cases.push(("jpeg-claims-10000x10000.jpg", forged.clone(), Refused));
    cases.push((
        "jpeg-claims-10000x10000-cut.jpg",
        forged[..sof + 300].to_vec(),
        Refused,
    ));
    forged[sof + 5..sof + 9].copy_from_slice(&[0xFD, 0xE8, 0xFD, 0xE8]); // 65000x65000
    cases.push(("jpeg-65000x65000.jpg", forged, Refused));
    // a BMP whose header says 50000x50000
    let mut bmp = fixture("rgb.bmp");
    bmp[18..26].copy_from_slice(&[0x50, 0xC3, 0, 0, 0x50, 0xC3, 0, 0]);
    cases.push(("bmp-50000x50000.bmp", bmp, Refused));
    // a deflate bomb within the limits: 6000x6000 grey (36 MP) in a few tens of KB must convert, with
    // memory bounded
    let grey = image::DynamicImage::ImageLuma8(image::GrayImage::new(6000, 6000));
    cases.push((
        "deflate-bomb-6000x6000.png",
        encode(grey, Format::Png),
        Converts,
    ));
    // metadata traps: a 1 MB ICC profile, EXIF of noise, an EXIF IFD that points at itself
    let icc: Vec<(u8, Vec<u8>)> = noise(1 << 20, 9)
        .chunks(60_000)
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = b"ICC_PROFILE\0".to_vec();
            p.extend_from_slice(&[i as u8 + 1, 18]);
            p.extend_from_slice(chunk);
            (0xE2, p)
        })
        .collect();
    cases.push(("huge-icc.jpg", jpeg_with(&icc), Converts));
    let exif_noise = [&b"Exif\0\0"[..], &noise(300, 10)].concat();
    cases.push(("exif-noise.jpg", jpeg_with(&[(0xE1, exif_noise)]), Converts));
    let mut exif_loop = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    exif_loop.extend_from_slice(&[0x87, 0x69, 0, 4, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 8]);
    cases.push((
        "exif-ifd-loop.jpg",
        jpeg_with(&[(0xE1, exif_loop)]),
        Converts,
    ));
    // odd but valid
    for name in [
        "cmyk.jpg",
        "grey.jpg",
        "progressive.jpg",
        "rgb16.png",
        "grey-alpha.png",
        "palette.png",
        "interlaced.png",
        "alpha.webp",
        "lossless.webp",
        "animated.webp",
        "animated.gif",
        "still.gif",
        "rgb.tiff",
        "orientation-1.jpg",
        "orientation-2.jpg",
        "orientation-3.jpg",
        "orientation-4.jpg",
        "orientation-5.jpg",
        "orientation-6.jpg",
        "orientation-7.jpg",
        "orientation-8.jpg",
    ] {
        cases.push((name, fixture(name), Converts));
    }
    cases
}

/// Sends `GET /<key>?<query>`; checks the answer is 200 or a 4xx `<Error>` with a message.
fn get(base: &str, key: &str, query: &str) -> (u16, Vec<u8>) {
    let r = client()
        .get(format!("{base}/{key}?{query}"))
        .send()
        .unwrap_or_else(|e| panic!("{key}?{query}: no answer: {e}"));
    let status = r.status().as_u16();
    let body = r.bytes().unwrap().to_vec();
    assert!(
        status == 200 || (400..500).contains(&status),
        "{key}?{query}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    if status != 200 {
        let xml = String::from_utf8_lossy(&body);
        assert!(
            xml.contains("<Error>") && xml.contains("<Message>") && !xml.contains("panicked"),
            "{key}?{query}: {xml}"
        );
    }
    (status, body)
}

#[test]
fn hostile_inputs_and_rules_get_an_answer_or_a_clear_4xx() {
    let cases = corpus();
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    let mut s = start("hostile", &[]);
    for (name, bytes, _) in &cases {
        std::fs::write(s.root.join(name), bytes).unwrap();
    }
    for (name, _, want) in &cases {
        let (status, body) = get(&s.base, name, "imageMogr2/thumbnail/256x256/format/heif");
        match want {
            Want::Converts => {
                assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&body));
                let (format, w, h) = facts(&body);
                assert_eq!(format, Format::Heif, "{name}");
                assert!(
                    (1..=256).contains(&w) && (1..=256).contains(&h),
                    "{name}: {w}x{h}"
                );
            }
            Want::Refused => assert!((400..500).contains(&status), "{name}: {status}"),
        }
        // the other paths (animated output, info) answer cleanly as well
        get(&s.base, name, "imageMogr2/thumbnail/64x/format/gif");
        get(&s.base, name, "imageInfo");
    }

    // hostile rules on a good image: refused from the rule (or its plan) before any work
    let refused = [
        format!("imageMogr2/{}", "x".repeat(10_000)),
        "imageMogr2/thumbnail/99999999999999999999x".into(),
        "imageMogr2/thumbnail/%EF%BC%99%EF%BC%99x".into(), // full-width digits
        "imageMogr2/thumbnail/-5x".into(),
        "imageMogr2/thumbnail/10000x".into(),
        "imageMogr2/rotate/361".into(),
        "imageMogr2/quality/101".into(),
        "imageMogr2/format/exe".into(),
        "imageMogr2/cut/10x10x5000x5000".into(), // starts outside the image: found by the plan
        // each free rotation grows the canvas by about √2: the plan finds the step that passes the
        // output side before anything is decoded
        format!("imageMogr2/{}format/png", "rotate/45/".repeat(20)),
    ];
    for rule in &refused {
        let (status, body) = get(&s.base, "photo.jpg", rule);
        assert!(
            (400..500).contains(&status),
            "{rule:.80}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    // a deep pipeline of cheap steps is work, not an attack: it answers either way, cleanly
    let deep = format!("imageMogr2/{}format/png", "flip/vertical/".repeat(250));
    assert_eq!(get(&s.base, "photo.jpg", &deep).0, 200);

    // still serving, memory bounded: the largest accepted input is 6000x6000, and one conversion may
    // hold 2.5 × w × h × 4 bytes
    assert!(s.alive(), "the server died");
    let (status, _) = get(&s.base, "cmyk.jpg", "imageInfo");
    assert_eq!(status, 200);
    let (rss, peak) = s.memory_kib();
    eprintln!(
        "hostile corpus: {} inputs, {} rules; server RSS {rss} KiB, peak {peak} KiB",
        cases.len(),
        refused.len()
    );
    let bound_kib = 25 * 6000 * 6000 * 4 / 10 / 1024;
    assert!(peak < bound_kib, "peak RSS {peak} KiB over {bound_kib} KiB");
}

/// A 1 MB PNG whose ICC profile inflates to 1 GiB: the png decoder's own bound is the whole decode budget
/// (~864 MB), so every request inflated most of it (843 MB peak for one, 1.6 GB for 8 at once). The
/// profile is dropped past mogr's metadata cap (4 MiB) and the picture converts, in little memory.
#[test]
fn a_png_icc_profile_bomb_is_dropped_in_bounded_memory() {
    let bomb = png_with_icc_bomb(1024);
    assert!(bomb.len() < 2 << 20, "the bomb is {} bytes", bomb.len());
    let mut s = start("icc-bomb", &[]);
    std::fs::write(s.root.join("bomb.png"), &bomb).unwrap();
    let convert = |base: &str| get(base, "bomb.png", "imageMogr2/format/heif");
    let (status, body) = convert(&s.base);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(facts(&body), (Format::Heif, 64, 64));
    let url = format!("{}/bomb.png?imageMogr2/format/heif", s.base);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let eight: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| client().get(&url).send().unwrap().status().as_u16()))
            .collect();
        eight.into_iter().map(|t| t.join().unwrap()).collect()
    });
    // the work queue may shed some of the eight at once (503); those admitted convert
    assert!(
        statuses.iter().all(|&c| c == 200 || c == 503) && statuses.contains(&200),
        "{statuses:?}"
    );
    assert!(s.alive(), "the server died");
    assert_eq!(get(&s.base, "photo.jpg", "imageInfo").0, 200);
    let (rss, peak) = s.memory_kib();
    eprintln!("iCCP bomb, one then 8 at once: server RSS {rss} KiB, peak {peak} KiB");
    assert!(peak < 160 << 10, "peak RSS {peak} KiB");
}

/// 16 PUTs at once of a tiny PNG, each with 5 rules whose fileid is the PUT's own key, where a 30 MiB
/// object is stored: each rule read that object (to put back if a write failed) before the request
/// reached the work queue, 2.2 GB in all. Now their heads are read first, their size held within the
/// memory budget requests share ((workers + queue) × the input limit: 192 MiB here), and the bodies
/// read after the work, once per key.
#[test]
fn what_writes_replace_is_held_within_the_memory_budget() {
    let mut s = start("replaced", &[("MOGR_WORKERS", "2"), ("MOGR_QUEUE", "4")]);
    std::fs::write(s.root.join("big.png"), noise(30 << 20, 7)).unwrap();
    let tiny = encode(
        image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(16, 16, |x, y| {
            image::Luma([(x * 7 + y) as u8])
        })),
        Format::Png,
    );
    let rule = r#"{"fileid":"big.png","rule":"imageMogr2/format/png"}"#;
    let ops = format!(r#"{{"is_pic_info":0,"rules":[{}]}}"#, [rule; 5].join(","));
    let url = format!("{}/big.png", s.base);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let puts: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    let r = client()
                        .put(&url)
                        .header("pic-operations", &ops)
                        .header("content-type", "image/png")
                        .body(tiny.clone())
                        .send()
                        .unwrap();
                    r.status().as_u16()
                })
            })
            .collect();
        puts.into_iter().map(|t| t.join().unwrap()).collect()
    });
    // each is stored or shed (503 SlowDown, when the budget is held by the others)
    assert!(
        statuses.iter().all(|&c| c == 200 || c == 503) && statuses.contains(&200),
        "{statuses:?}"
    );
    let stored = std::fs::read(s.root.join("big.png")).unwrap();
    assert_eq!(facts(&stored), (Format::Png, 16, 16));
    assert!(s.alive(), "the server died");
    assert_eq!(get(&s.base, "photo.jpg", "imageInfo").0, 200);
    let (rss, peak) = s.memory_kib();
    eprintln!(
        "16 PUTs replacing a 30 MiB object 5 times each: server RSS {rss} KiB, peak {peak} KiB"
    );
    assert!(peak < 320 << 10, "peak RSS {peak} KiB");
}

/// Writes to different keys never fail each other: PUTs into a folder while DELETEs empty it (and
/// remove it) answered 500 one time in ten; a PUT of `a` racing one of `a/b.png` answered 500 about
/// 40 % of the time where one of them must be refused as the folder store refuses it alone (400).
#[test]
fn concurrent_writes_to_different_keys_do_not_fail_each_other() {
    let mut s = start("races", &[]);
    let photo = std::fs::read(examples().join("photo.png")).unwrap();
    let send = |method: reqwest::Method, key: String| {
        let r = client()
            .request(method, format!("{}/{key}", s.base))
            .body(photo.clone())
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().unwrap())
    };
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let send = &send;
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for i in 0..150 {
                        let key = format!("f/{t}-{i}.png");
                        for (method, want) in
                            [(reqwest::Method::PUT, 200), (reqwest::Method::DELETE, 204)]
                        {
                            let (status, body) = send(method.clone(), key.clone());
                            if status != want {
                                failures.push(format!("{method} {key}: {status} {body}"));
                            }
                        }
                        // `a` and `a/b.png` at once: stored, or refused with a 4xx
                        if t == 0 && i % 3 == 0 {
                            let (a, ab) = std::thread::scope(|race| {
                                let a = race.spawn(|| send(reqwest::Method::PUT, format!("a{i}")));
                                let ab = send(reqwest::Method::PUT, format!("a{i}/b.png"));
                                (a.join().unwrap(), ab)
                            });
                            for (status, body) in [a, ab] {
                                if status != 200 && !(400..500).contains(&status) {
                                    failures.push(format!("a{i} or a{i}/b.png: {status} {body}"));
                                }
                            }
                        }
                    }
                    failures
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failures: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(s.alive(), "the server died");
    assert_eq!(get(&s.base, "photo.jpg", "imageInfo").0, 200);
}
