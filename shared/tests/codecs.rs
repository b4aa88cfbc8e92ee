//! Decoders on real fixture files, the input×output round-trip matrix, and broken inputs.

use image::{DynamicImage, Rgba, RgbaImage};
use mogr::codec::{self, EncodeOptions, Format, Frames, Limits, Picture};
use mogr::score::ssimulacra2;
use mogr::{Code, Profile};

mod common;
use common::{decode, fixture};

/// A photo-like test image: gradients, texture and edges, with an optional alpha ramp.
fn generated(alpha: bool) -> DynamicImage {
    let (w, h) = (160u32, 120u32);
    let img = RgbaImage::from_fn(w, h, |x, y| {
        let t = ((x as f32 * 0.3).sin() * (y as f32 * 0.2).cos() * 40.0) as i32;
        let r = (60 + x as i32 + t).clamp(0, 255) as u8;
        let g = (40 + y as i32 * 2 - t).clamp(0, 255) as u8;
        let b = if (x / 20 + y / 20) % 2 == 0 { 200 } else { 90 };
        let a = if alpha {
            (255 * x / (w - 1)) as u8
        } else {
            255
        };
        Rgba([r, g, b, a])
    });
    if alpha {
        DynamicImage::ImageRgba8(img)
    } else {
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(img).to_rgb8())
    }
}

fn encode(pic: &Picture, format: Format, quality: u8) -> Vec<u8> {
    encode_in(pic, format, quality, Profile::Download)
}

fn encode_in(pic: &Picture, format: Format, quality: u8, profile: Profile) -> Vec<u8> {
    let opts = EncodeOptions {
        format,
        quality,
        interlace: false,
        strip: false,
        profile,
        threads: codec::cores(),
        optimized: false,
    };
    codec::encode(pic, &opts).unwrap_or_else(|e| panic!("encode {format:?}: {e}"))
}

#[test]
fn every_fixture_decodes_to_its_size() {
    for name in [
        "baseline.jpg",
        "progressive.jpg",
        "cmyk.jpg",
        "grey.jpg",
        "rgb.png",
        "rgb16.png",
        "grey.png",
        "grey-alpha.png",
        "palette.png",
        "rgba.png",
        "interlaced.png",
        "lossy.webp",
        "lossless.webp",
        "alpha.webp",
        "animated.webp",
        "animated.gif",
        "still.gif",
        "rgb.bmp",
        "rgb.tiff",
    ] {
        let pic = decode(&fixture(name), Frames::All);
        assert_eq!((pic.width(), pic.height()), (96, 64), "{name}");
        let red = pic.first().to_rgb8().get_pixel(10, 10).0;
        let grey = name.starts_with("grey");
        assert!(
            grey || (red[0] > 180 && red[1] < 90 && red[2] < 90),
            "{name}: top-left should be red, got {red:?}"
        );
        let want_alpha = matches!(name, "grey-alpha.png" | "rgba.png" | "alpha.webp");
        if want_alpha {
            assert!(pic.has_alpha(), "{name} lost its alpha");
        }
    }
    assert_eq!(
        decode(&fixture("animated.gif"), Frames::All).frames.len(),
        4
    );
    assert_eq!(
        decode(&fixture("animated.webp"), Frames::All).frames.len(),
        4
    );
    assert_eq!(
        decode(&fixture("animated.gif"), Frames::First).frames.len(),
        1
    );
}

#[test]
fn exif_orientations_1_to_8_come_out_upright() {
    for n in 1..=8u8 {
        let bytes = fixture(&format!("orientation-{n}.jpg"));
        let pic = decode(&bytes, Frames::First);
        assert_eq!((pic.width(), pic.height()), (96, 64), "orientation {n}");
        // the header alone predicts the upright size, for planning before decoding
        let probe = codec::probe(&bytes, &Limits::default()).unwrap();
        assert_eq!(probe.upright(), (96, 64), "orientation {n}");
        assert_eq!(probe.transposed, n >= 5, "orientation {n}");
        assert_eq!(pic.orientation, n);
        let rgb = pic.first().to_rgb8();
        let tl = rgb.get_pixel(8, 8).0;
        let br = rgb.get_pixel(88, 56).0;
        assert!(
            tl[0] > 180 && tl[1] < 90,
            "orientation {n}: top-left is {tl:?}, want red"
        );
        assert!(
            br[0] < 180,
            "orientation {n}: bottom-right is {br:?}, want not red"
        );
        // the carried EXIF now says 1, so no viewer rotates the upright pixels again
        let exif = pic.exif.as_deref().expect("exif kept");
        assert_eq!(
            image::metadata::Orientation::from_exif_chunk(exif).map(|o| o.to_exif()),
            Some(1)
        );
    }
}

#[test]
fn round_trip_every_input_through_every_output() {
    let inputs = Format::ALL;
    let outputs = [
        Format::Heif,
        Format::Avif,
        Format::Webp,
        Format::Jpeg,
        Format::Png,
        Format::Gif,
        Format::Bmp,
        Format::Tiff,
    ];
    let mut report = Vec::new();
    for alpha in [false, true] {
        let source = Picture::still(generated(alpha), Format::Png);
        for input in inputs {
            let in_bytes = encode(&source, input, 95);
            let reference = decode(&in_bytes, Frames::First);
            assert_eq!(
                (reference.width(), reference.height()),
                (160, 120),
                "{input:?}"
            );
            for output in outputs {
                let q = if output.is_lossy() {
                    mogr::convert::default_quality(output, Profile::Download, &reference)
                } else {
                    100
                };
                let out_bytes = encode(&reference, output, q);
                assert_eq!(Format::sniff(&out_bytes).unwrap(), output);
                let got = decode(&out_bytes, Frames::First);
                assert_eq!(
                    (got.width(), got.height()),
                    (160, 120),
                    "{input:?}->{output:?}"
                );
                if alpha && output == Format::Gif && input.has_alpha() {
                    // GIF transparency is on/off: the alpha ramp becomes a hard edge, so no score.
                    let rgba = got.first().to_rgba8();
                    assert_eq!(
                        (rgba.get_pixel(2, 60)[3], rgba.get_pixel(157, 60)[3]),
                        (0, 255)
                    );
                    continue;
                }
                if alpha && input.has_alpha() && output.has_alpha() {
                    let a = got.first().to_rgba8().get_pixel(2, 60)[3];
                    assert!(
                        a < 40,
                        "{input:?}->{output:?}: alpha lost (left edge alpha {a})"
                    );
                }
                if !output.has_alpha() {
                    assert!(!got.has_alpha(), "{output:?} cannot hold alpha");
                }
                let score = ssimulacra2(reference.first(), got.first()).unwrap();
                let floor = match output {
                    Format::Png | Format::Bmp | Format::Tiff => 99.0,
                    Format::Gif => 50.0, // a dithered 256-colour palette on a textured gradient
                    _ => 60.0,
                };
                let verdict = if score >= floor { "ok" } else { "TOO LOW" };
                report.push(format!(
                    "{input:?}->{output:?} alpha={alpha}: {score:.1} (floor {floor}) {verdict}"
                ));
            }
        }
    }
    println!("{}", report.join("\n"));
    let low: Vec<_> = report.iter().filter(|r| r.ends_with("TOO LOW")).collect();
    assert!(low.is_empty(), "SSIMULACRA2 below the floor: {low:#?}");
}

#[test]
fn icc_and_exif_are_carried_unless_strip() {
    let icc = b"fake-but-well-formed-enough-icc-profile-bytes".repeat(4);
    let exif_in = decode(&fixture("orientation-6.jpg"), Frames::First)
        .exif
        .unwrap();
    let mut pic = Picture::still(generated(false), Format::Png);
    pic.exif = Some(exif_in.clone());
    pic.icc = Some(icc.clone());
    for format in [
        Format::Jpeg,
        Format::Png,
        Format::Webp,
        Format::Heif,
        Format::Avif,
    ] {
        let kept = decode(&encode(&pic, format, 80), Frames::First);
        assert!(kept.exif.is_some(), "{format:?} dropped EXIF");
        assert_eq!(
            kept.icc.as_deref(),
            Some(&icc[..]),
            "{format:?} dropped ICC"
        );
        let opts = EncodeOptions {
            format,
            quality: 80,
            interlace: false,
            strip: true,
            profile: Profile::Download,
            threads: 1,
            optimized: false,
        };
        let stripped = decode(&codec::encode(&pic, &opts).unwrap(), Frames::First);
        assert!(
            stripped.exif.is_none() && stripped.icc.is_none(),
            "{format:?} kept metadata under strip"
        );
    }
}

#[test]
fn broken_inputs_are_errors_not_panics() {
    let limits = Limits::default();
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("zero bytes".into(), vec![]),
        (
            "wrong magic".into(),
            b"this is not an image at all".to_vec(),
        ),
        ("tpg".into(), b"TPG\x01\x00\x00".to_vec()),
    ];
    for name in [
        "baseline.jpg",
        "rgb.png",
        "animated.gif",
        "lossy.webp",
        "rgb.bmp",
        "rgb.tiff",
    ] {
        let b = fixture(name);
        for cut in [8, b.len() / 3, b.len() / 2] {
            cases.push((format!("{name} cut at {cut}"), b[..cut].to_vec()));
        }
    }
    let heif = encode(
        &Picture::still(generated(false), Format::Png),
        Format::Heif,
        60,
    );
    cases.push(("heif cut".into(), heif[..heif.len() / 2].to_vec()));
    for (what, bytes) in cases {
        for frames in [Frames::First, Frames::All] {
            // A file cut short is a clear error, never a picture with its missing rows filled in.
            match codec::probe_and_decode(&bytes, &limits, frames) {
                Err(e) => {
                    assert_eq!(e.code, Code::InvalidArgument, "{what}: {e}");
                    assert!(!e.message.is_empty());
                }
                Ok(p) => panic!("{what} decoded to {}x{}", p.width(), p.height()),
            }
        }
    }
    assert!(codec::probe_and_decode(b"", &limits, Frames::First)
        .unwrap_err()
        .message
        .contains("empty"));
    assert!(codec::probe_and_decode(b"TPG\x01", &limits, Frames::First)
        .unwrap_err()
        .message
        .contains("TPG"));
}

#[test]
fn limits_fire_from_the_header() {
    let limits = Limits::default();
    let e = codec::probe_and_decode(&fixture("bomb-100000x100000.png"), &limits, Frames::First)
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.message.contains("50000"), "{e}");
    let e = codec::probe_and_decode(&fixture("bomb-20000x20000.png"), &limits, Frames::First)
        .unwrap_err();
    assert!(e.message.contains("pixels"), "{e}");
    // a smaller configured limit applies as configured
    let tight = Limits {
        max_pixels: 1000,
        ..Limits::default()
    };
    assert!(
        codec::probe_and_decode(&fixture("rgb.png"), &tight, Frames::First)
            .unwrap_err()
            .message
            .contains("1000")
    );
    let few_frames = Limits {
        max_frames: 2,
        ..Limits::default()
    };
    let e =
        codec::probe_and_decode(&fixture("animated.gif"), &few_frames, Frames::All).unwrap_err();
    assert!(e.message.contains("frames"), "{e}");
    let small = Limits {
        max_input_bytes: 100,
        ..Limits::default()
    };
    assert_eq!(
        codec::probe_and_decode(&fixture("rgb.png"), &small, Frames::First)
            .unwrap_err()
            .code,
        Code::EntityTooLarge
    );
}

#[test]
fn heif_and_avif_take_odd_sizes_and_alpha_through_ycbcr() {
    // 4:2:0 chroma of an odd-sized picture covers the last row and column from one or two pixels.
    let img = RgbaImage::from_fn(33, 17, |x, y| {
        Rgba([
            (x * 7) as u8,
            (y * 15) as u8,
            200,
            if x < 16 { 255 } else { 64 },
        ])
    });
    let pic = Picture::still(DynamicImage::ImageRgba8(img.clone()), Format::Png);
    for format in [Format::Heif, Format::Avif] {
        let got = decode(&encode(&pic, format, 90), Frames::First);
        assert_eq!((got.width(), got.height()), (33, 17), "{format:?}");
        let rgba = got.first().to_rgba8();
        let (opaque, faint) = (rgba.get_pixel(3, 8), rgba.get_pixel(30, 8));
        assert!(
            opaque[3] > 240 && faint[3].abs_diff(64) < 12,
            "{format:?} alpha {opaque:?} {faint:?}"
        );
        // colour survives: the bottom-right pixel (its own chroma sample) stays near its value
        let want = img.get_pixel(32, 16);
        let px = rgba.get_pixel(32, 16);
        for c in 0..3 {
            assert!(
                px[c].abs_diff(want[c]) < 40,
                "{format:?} {px:?} vs {want:?}"
            );
        }
    }
}

/// Whether a HEIF file holds a grid item (its `infe` names the item type `grid`).
fn has_grid(heif: &[u8]) -> bool {
    heif.windows(4).any(|w| w == b"grid")
}

/// A HEIF picture wider or taller than 2048 is written as a grid of tiles that libheif trims to the
/// picture's size: the decoded picture has the input's size, colour at the far edge, its ICC and
/// EXIF, and scores as the one-piece encode does. Pictures with alpha and AVIF stay in one piece.
#[test]
fn large_heif_is_a_grid_trimmed_to_the_picture() {
    let (w, h) = (4200u32, 96u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let t = ((x as f32 * 0.05).sin() * (y as f32 * 0.2).cos() * 40.0) as i32;
        let edge = if x >= w - 8 { 255 } else { 0 };
        image::Rgb([
            (60 + (x / 20) as i32 + t).clamp(0, 255) as u8,
            (40 + y as i32 * 2 - t).clamp(0, 255) as u8,
            edge,
        ])
    });
    let mut pic = Picture::still(DynamicImage::ImageRgb8(img.clone()), Format::Png);
    let icc = b"fake-but-well-formed-enough-icc-profile-bytes".repeat(4);
    pic.icc = Some(icc.clone());
    pic.exif = decode(&fixture("orientation-6.jpg"), Frames::First).exif;
    let heif = encode(&pic, Format::Heif, 80);
    assert!(has_grid(&heif), "a 4200-px HEIF is a grid");
    let got = decode(&heif, Frames::First);
    assert_eq!((got.width(), got.height()), (w, h));
    assert_eq!(got.icc.as_deref(), Some(&icc[..]), "grid dropped ICC");
    assert!(got.exif.is_some(), "grid dropped EXIF");
    let px = got.first().to_rgb8();
    assert!(
        px.get_pixel(w - 1, h / 2)[2] > 200 && px.get_pixel(w - 12, h / 2)[2] < 60,
        "the last tile's pixels are where they were: {:?} {:?}",
        px.get_pixel(w - 1, h / 2),
        px.get_pixel(w - 12, h / 2)
    );
    let score = ssimulacra2(pic.first(), got.first()).unwrap();
    assert!(score > 75.0, "grid scores {score:.1}");

    let rgba = DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(img).to_rgba8());
    let with_alpha = Picture::still(rgba, Format::Png);
    assert!(
        !has_grid(&encode(&with_alpha, Format::Heif, 80)),
        "alpha: one piece"
    );
    assert!(
        !has_grid(&encode(&pic, Format::Avif, 80)),
        "AVIF: one piece"
    );
}

/// `codec::with_rgb8` lends the pixels a decode gives, alpha composited onto white: from libheif's
/// own buffer for HEIF/AVIF without alpha, from a decode otherwise.
#[test]
fn lent_rgb_rows_are_the_decoded_pixels() {
    let limits = Limits::default();
    let opaque = Picture::still(generated(false), Format::Png);
    let alpha = Picture::still(generated(true), Format::Png);
    for (pic, format) in [
        (&opaque, Format::Heif),
        (&opaque, Format::Avif),
        (&alpha, Format::Heif),
        (&opaque, Format::Jpeg),
        (&alpha, Format::Png),
    ] {
        let bytes = encode(pic, format, 80);
        let decoded = decode(&bytes, Frames::First);
        // composited onto white as mogr flattens: (c·a + 255·(255 − a) + 127) / 255
        let rgba = decoded.first().to_rgba8();
        let want = image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
            let p = rgba.get_pixel(x, y);
            let a = u32::from(p[3]);
            image::Rgb(
                [0, 1, 2].map(|c| ((u32::from(p[c]) * a + 255 * (255 - a) + 127) / 255) as u8),
            )
        });
        let lent = codec::with_rgb8(&bytes, &limits, |rows| {
            let (w, h) = (rows.width as usize, rows.height as usize);
            let mut px = Vec::with_capacity(3 * w * h);
            for y in 0..h {
                px.extend_from_slice(rows.row(y));
            }
            (rows.width, rows.height, px)
        })
        .unwrap();
        assert_eq!(
            lent,
            (want.width(), want.height(), want.into_raw()),
            "{format:?}, alpha {}",
            pic.first().color().has_alpha()
        );
    }
}

#[test]
fn gif_dithers_smooth_gradients() {
    // a smooth two-axis gradient has far more than 256 colours: without dithering it bands (12-23)
    let img = RgbaImage::from_fn(256, 192, |x, y| {
        Rgba([x as u8, (y * 4 / 3) as u8, (255 - x / 2 - y / 3) as u8, 255])
    });
    let reference = DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(img).to_rgb8());
    let gif = encode(
        &Picture::still(reference.clone(), Format::Png),
        Format::Gif,
        100,
    );
    let got = decode(&gif, Frames::First);
    let score = ssimulacra2(&reference, got.first()).unwrap();
    println!(
        "gradient as GIF: SSIMULACRA2 {score:.1}, {} bytes",
        gif.len()
    );
    assert!(score >= 50.0, "gradient as GIF scores {score:.1}");
}

#[test]
fn animated_gif_frames_are_optimised_and_still_right() {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let sample =
        std::fs::read(std::path::Path::new(&dir).join("../examples/animated.gif")).unwrap();
    let convert = |input: &[u8], rule: &str| {
        mogr::convert(
            input,
            &mogr::parse(rule).unwrap(),
            &Limits::default(),
            Profile::Persistent,
        )
        .unwrap()
        .bytes
    };
    let small = convert(&sample, "imageMogr2/thumbnail/50x");
    println!("thumbnail/50x: {} bytes from {}", small.len(), sample.len());
    assert!(
        small.len() < sample.len(),
        "an animated thumbnail ({} bytes) is smaller than its input ({} bytes)",
        small.len(),
        sample.len()
    );
    // every frame, composited from the optimised sub-frames (or, with transparency, whole frames),
    // looks like the same frame made without GIF
    for (input, rule) in [
        (&sample, "imageMogr2/thumbnail/50x"),
        (&sample, "imageMogr2/format/gif"),
        (&fixture("animated.gif"), "imageMogr2/format/gif"),
        (&fixture("animated.webp"), "imageMogr2/format/gif"),
    ] {
        let got = decode(&convert(input, rule), Frames::All);
        let lossless = rule.replace("format/gif", "format/png") + "/format/webp/quality/100";
        let reference = decode(&convert(input, &lossless), Frames::All);
        let delays = |p: &Picture| p.frames.iter().map(|f| f.delay_ms / 10).sum::<u32>();
        assert_eq!(delays(&got), delays(&reference), "{rule}: as long");
        assert!(got.frames.len() <= reference.frames.len());
        // frames that changed nothing were merged into the one before: compare at each frame's start
        let mut at = 0;
        let starts: Vec<u32> = reference
            .frames
            .iter()
            .map(|f| {
                at += f.delay_ms / 10;
                at - f.delay_ms / 10
            })
            .collect();
        let mut shown = 0;
        for (g, start) in got.frames.iter().map(|g| {
            let start = shown;
            shown += g.delay_ms / 10;
            (g, start)
        }) {
            let i = starts.iter().position(|&s| s == start).unwrap();
            let score = ssimulacra2(&reference.frames[i].image, &g.image).unwrap();
            assert!(score >= 50.0, "{rule}: frame {i} scores {score:.1}");
        }
    }
}

#[test]
fn fuzzing_findings_are_errors() {
    // `cargo fuzz run decode` (TESTING.md): an animated WebP whose second frame image-webp 0.2.4 panics
    // on (yuv.rs: "range end index 7776 out of range for slice of length 0"). Its first frame is whole.
    let limits = Limits::default();
    let name = "fuzz-webp-animated-frame.webp";
    let bytes = fixture(name);
    assert!(codec::probe_and_decode(&bytes, &limits, Frames::First).is_ok());
    match codec::probe_and_decode(&bytes, &limits, Frames::All) {
        Ok(_) => panic!("{name}: every frame decoded"),
        Err(e) => {
            assert_eq!(e.code, Code::InvalidArgument, "{name}: {e:?}");
            assert!(
                e.message.contains("WEBP input could not be decoded"),
                "{name}: {}",
                e.message
            );
        }
    }
}

/// Smooth gradients under fine per-channel noise, 384×256.
fn noisy_gradient() -> DynamicImage {
    let mut seed = 0x9e37_79b9_u32;
    DynamicImage::ImageRgb8(image::RgbImage::from_fn(384, 256, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let c =
            |v: u32, k: u32| (v as i32 + ((seed >> (k * 8)) % 9) as i32 - 4).clamp(0, 255) as u8;
        image::Rgb([c(20 + x / 8, 0), c(30 + y / 6, 1), c(60 + (x + y) / 16, 2)])
    }))
}

/// Persistent HEIF lets x265 try transform skip unless the source is a JPEG (what it saves on noisy
/// renders is measured by `mogr-bench --at-score`, BENCHMARKS.md): the same pixels decoded from a PNG
/// and from a JPEG encode differently in the persistent profile, and alike upon download.
#[test]
fn persistent_heif_tries_transform_skip_unless_the_source_is_a_jpeg() {
    let img = noisy_gradient();
    let heif = |source, profile| {
        encode_in(
            &Picture::still(img.clone(), source),
            Format::Heif,
            60,
            profile,
        )
    };
    assert_ne!(
        heif(Format::Png, Profile::Persistent),
        heif(Format::Jpeg, Profile::Persistent),
        "transform skip for the PNG source only"
    );
    assert_eq!(
        heif(Format::Png, Profile::Download),
        heif(Format::Jpeg, Profile::Download)
    );
}

/// `quality/auto` tries one quality per encoder step (`codec::quality_step`): neighbouring qualities
/// write the same file exactly when their step is the same — HEIF and AVIF, both profiles.
#[test]
fn qualities_of_one_encoder_step_write_the_same_file() {
    let pic = Picture::still(generated(false), Format::Png);
    for format in [Format::Heif, Format::Avif] {
        for profile in [Profile::Download, Profile::Persistent] {
            let at = |quality| encode_in(&pic, format, quality, profile);
            let mut shared = 0;
            let mut last = at(29);
            for q in 30..=70 {
                let file = at(q);
                let same_step =
                    codec::quality_step(format, q - 1) == codec::quality_step(format, q);
                assert_eq!(
                    file == last,
                    same_step,
                    "{format:?} {profile:?}: qualities {} and {q}",
                    q - 1
                );
                shared += usize::from(same_step);
                last = file;
            }
            assert!(shared >= 15, "{format:?}: {shared} pairs share a step");
        }
    }
}
