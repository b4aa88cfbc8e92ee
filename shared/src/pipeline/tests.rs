//! The pipeline's steps: sizes, placement, pixels.

use super::*;
use crate::codec::Format;

fn pic(w: u32, h: u32) -> Picture {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
    Picture::still(DynamicImage::ImageRgb8(img), Format::Png)
}

/// The size after `ops`, which the plan must have predicted from the input's size alone.
fn dims_after(ops: &[Op], w: u32, h: u32) -> (u32, u32) {
    let mut p = pic(w, h);
    run(&mut p, ops, &Limits::default()).unwrap();
    let planned = plan(ops, (w, h), 1, &Limits::default()).unwrap();
    assert_eq!(planned, (p.width(), p.height()), "plan of {ops:?}");
    (p.width(), p.height())
}

#[test]
fn the_plan_refuses_before_any_pixel() {
    let l = Limits::default();
    let up = [Op::Thumbnail(Scale::Exact {
        width: 2000,
        height: 2000,
    })];
    // 63 frames of 2000x2000 = 252 MP: refused from the sizes, for an animated output only
    let e = plan(&up, (50, 50), 63, &l).unwrap_err();
    assert!(e.message.contains("63 frames of 2000x2000"), "{e}");
    assert_eq!(plan(&up, (50, 50), 1, &l).unwrap(), (2000, 2000));
    // pad and free rotation grow the image: the output side limit applies to them
    let pad = [Op::Pad {
        width: 12000,
        height: 10,
        color: [0, 0, 0],
    }];
    assert!(plan(&pad, (10, 10), 1, &l)
        .unwrap_err()
        .message
        .contains("9999"));
    let turn = [Op::Rotate(45)];
    assert!(plan(&turn, (9000, 9000), 1, &l).is_err());
    // a later step is checked on the size the earlier ones leave
    let tight = Limits {
        max_pixels: 1_000_000,
        ..l
    };
    let steps = [
        Op::Thumbnail(Scale::Width(500)),
        Op::Thumbnail(Scale::Percent(400)),
    ];
    let e = plan(&steps, (1000, 1000), 1, &tight).unwrap_err();
    assert!(
        e.message
            .starts_with("step 2 of the rule would make 2000x2000"),
        "{e}"
    );
    // download caps: pixels a step produces, and how far it enlarges
    let capped = Limits {
        max_output_pixels: 1_000_000,
        max_upscale: 4,
        ..l
    };
    let e = plan(&steps[1..], (500, 500), 1, &capped).unwrap_err();
    assert!(e.message.contains("the limit is 1000000 pixels"), "{e}");
    let e = plan(&[Op::Thumbnail(Scale::Width(900))], (200, 100), 1, &capped).unwrap_err();
    assert!(e.message.contains("more than 4x its longer side"), "{e}");
    assert_eq!(
        plan(&[Op::Thumbnail(Scale::Width(800))], (200, 100), 1, &capped).unwrap(),
        (800, 400)
    );
    // and the pipeline itself refuses the same step if it is ever run unplanned
    let mut p = pic(1000, 1000);
    let e = run(&mut p, &steps, &tight).unwrap_err();
    assert!(
        e.message
            .starts_with("step 2 of the rule would make 2000x2000"),
        "{e}"
    );
}

#[test]
fn every_scale_gives_the_documented_size() {
    let edges = |long, short, cover| Scale::Edges { long, short, cover };
    let cases = [
        // imageView2's long and short edges, of an 800x600 (landscape) image
        (edges(Some(400), None, false), (400, 300)),
        (edges(None, Some(150), false), (200, 150)),
        (edges(Some(400), Some(150), false), (200, 150)),
        (edges(Some(1000), Some(900), true), (1200, 900)),
        (Scale::Percent(50), (400, 300)),
        (Scale::WidthPercent(50), (400, 600)),
        (Scale::HeightPercent(50), (800, 300)),
        (Scale::Width(200), (200, 150)),
        (Scale::Height(150), (200, 150)),
        (
            Scale::Fit {
                width: 400,
                height: 400,
            },
            (400, 300),
        ),
        (
            Scale::Fit {
                width: 1600,
                height: 1600,
            },
            (1600, 1200),
        ),
        (
            Scale::Shrink {
                width: 1600,
                height: 1600,
            },
            (800, 600),
        ),
        (
            Scale::Shrink {
                width: 400,
                height: 400,
            },
            (400, 300),
        ),
        (
            Scale::Enlarge {
                width: 400,
                height: 400,
            },
            (800, 600),
        ),
        (
            Scale::Enlarge {
                width: 1600,
                height: 1600,
            },
            (1600, 1200),
        ),
        (
            Scale::Cover {
                width: 400,
                height: 400,
            },
            (533, 400),
        ),
        (
            Scale::Exact {
                width: 123,
                height: 45,
            },
            (123, 45),
        ),
        (Scale::Area(120_000), (400, 300)),
    ];
    for (scale, want) in cases {
        assert_eq!(scaled_size(scale, 800, 600), want, "{scale:?}");
    }
    // imageView2 mode 5 on a portrait image: the long edge runs down
    let mode5 = [
        Op::Thumbnail(edges(Some(300), Some(200), true)),
        Op::CropEdges {
            long: 300,
            short: 200,
        },
    ];
    assert_eq!(dims_after(&mode5, 600, 800), (200, 300));
    assert_eq!(dims_after(&mode5, 800, 600), (300, 200));
    assert_eq!(
        dims_after(&[Op::Thumbnail(Scale::Width(100))], 800, 600),
        (100, 75)
    );
}

#[test]
fn output_side_limit_fires_before_allocation() {
    let mut p = pic(100, 100);
    run(
        &mut p,
        &[Op::Thumbnail(Scale::Percent(1000))],
        &Limits::default(),
    )
    .unwrap();
    assert_eq!((p.width(), p.height()), (1000, 1000));
    let mut p = pic(2000, 10);
    let e = run(
        &mut p,
        &[Op::Thumbnail(Scale::Percent(1000))],
        &Limits::default(),
    )
    .unwrap_err();
    assert!(e.message.contains("at most 9999"), "{e}");
}

#[test]
fn gravity_places_the_crop_window() {
    use Gravity::*;
    let cases = [
        (NorthWest, (0, 0)),
        (North, (30, 0)),
        (NorthEast, (60, 0)),
        (West, (0, 20)),
        (Center, (30, 20)),
        (East, (60, 20)),
        (SouthWest, (0, 40)),
        (South, (30, 40)),
        (SouthEast, (60, 40)),
    ];
    for (g, want) in cases {
        assert_eq!(place(g, 100, 80, 40, 40, 0, 0), want, "{g:?}");
    }
    // offsets move the window inwards and never past the edge
    assert_eq!(place(SouthEast, 100, 80, 40, 40, 5, 7), (55, 33));
    assert_eq!(place(NorthWest, 100, 80, 40, 40, 500, 500), (60, 40));
    // crop reads the right pixels: the source pixel value encodes its position
    let mut p = pic(100, 80);
    let op = Op::Crop {
        width: Some(10),
        height: Some(10),
        gravity: SouthEast,
        dx: 0,
        dy: 0,
    };
    run(&mut p, &[op], &Limits::default()).unwrap();
    assert_eq!(p.first().to_rgb8().get_pixel(0, 0).0, [90, 70, 7]);
}

#[test]
fn cut_crop_pad_rotate_flip_sizes() {
    assert_eq!(
        dims_after(
            &[Op::Cut {
                width: 50,
                height: 40,
                x: 10,
                y: 20
            }],
            100,
            80
        ),
        (50, 40)
    );
    assert_eq!(
        dims_after(
            &[Op::Cut {
                width: 500,
                height: 400,
                x: 90,
                y: 70
            }],
            100,
            80
        ),
        (10, 10)
    );
    let crop = Op::Crop {
        width: None,
        height: Some(30),
        gravity: Gravity::Center,
        dx: 0,
        dy: 0,
    };
    assert_eq!(dims_after(&[crop], 100, 80), (100, 30));
    let pad = [
        Op::Thumbnail(Scale::Fit {
            width: 50,
            height: 50,
        }),
        Op::Pad {
            width: 50,
            height: 50,
            color: [0, 0, 0],
        },
    ];
    assert_eq!(dims_after(&pad, 100, 80), (50, 50));
    assert_eq!(dims_after(&[Op::Rotate(90)], 100, 80), (80, 100));
    assert_eq!(dims_after(&[Op::Rotate(180)], 100, 80), (100, 80));
    assert_eq!(dims_after(&[Op::Rotate(45)], 100, 100), (142, 142));
    assert_eq!(dims_after(&[Op::Flip(Flip::Vertical)], 100, 80), (100, 80));
    assert_eq!(dims_after(&[Op::IRadius(30)], 100, 80), (60, 60));
    assert_eq!(dims_after(&[Op::IRadius(300)], 100, 80), (80, 80));
    assert!(run(
        &mut pic(10, 10),
        &[Op::Cut {
            width: 5,
            height: 5,
            x: 10,
            y: 0
        }],
        &Limits::default()
    )
    .is_err());
}

#[test]
fn pixels_move_where_rotation_and_flips_say() {
    let mut p = pic(100, 80);
    run(&mut p, &[Op::Rotate(90)], &Limits::default()).unwrap();
    // clockwise: the top-left pixel (0,0) ends at the top-right corner
    assert_eq!(p.first().to_rgb8().get_pixel(79, 0).0, [0, 0, 7]);
    let mut p = pic(100, 80);
    run(&mut p, &[Op::Flip(Flip::Horizontal)], &Limits::default()).unwrap();
    assert_eq!(p.first().to_rgb8().get_pixel(0, 0).0, [99, 0, 7]);
}

#[test]
fn radii_make_transparent_corners() {
    let mut p = pic(100, 80);
    run(&mut p, &[Op::RRadius(20)], &Limits::default()).unwrap();
    let rgba = p.first().to_rgba8();
    assert_eq!(rgba.get_pixel(0, 0)[3], 0);
    assert_eq!(rgba.get_pixel(50, 40)[3], 255);
    let mut p = pic(100, 80);
    run(&mut p, &[Op::IRadius(40)], &Limits::default()).unwrap();
    let rgba = p.first().to_rgba8();
    assert_eq!(rgba.get_pixel(0, 0)[3], 0);
    assert_eq!(rgba.get_pixel(40, 40)[3], 255);
}

#[test]
fn work_past_its_deadline_stops_at_the_next_step() {
    let ops = [Op::Thumbnail(Scale::Width(20)), Op::Rotate(90)];
    let past = Limits {
        deadline: Some(crate::codec::Deadline::after(std::time::Duration::ZERO)),
        ..Limits::default()
    };
    let mut p = pic(40, 30);
    let e = run(&mut p, &ops, &past).unwrap_err();
    assert_eq!(e.code, crate::Code::ServiceUnavailable);
    assert_eq!((p.width(), p.height()), (40, 30), "no step ran");
    let ahead = Limits {
        deadline: Some(crate::codec::Deadline::after(
            std::time::Duration::from_secs(60),
        )),
        ..Limits::default()
    };
    run(&mut p, &ops, &ahead).unwrap();
    assert_eq!((p.width(), p.height()), (15, 20));
}

/// A horizontal ramp over the whole range, so that curves show at both ends.
fn ramp(alpha: bool) -> DynamicImage {
    let img = image::RgbaImage::from_fn(256, 4, |x, y| {
        image::Rgba([
            x as u8,
            255 - x as u8,
            (x as u8) / 2,
            if alpha { 64 * y as u8 } else { 255 },
        ])
    });
    if alpha {
        DynamicImage::ImageRgba8(img)
    } else {
        DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(img).to_rgb8())
    }
}

fn after(img: &DynamicImage, ops: &[Op]) -> DynamicImage {
    let mut p = Picture::still(img.clone(), Format::Png);
    run(&mut p, ops, &Limits::default()).unwrap();
    p.frames.remove(0).image
}

/// Mean and standard deviation of channel `c` (0-255) over an 8-bit RGBA view.
fn stats(img: &DynamicImage, c: usize) -> (f64, f64) {
    let v: Vec<f64> = img.to_rgba8().pixels().map(|p| p[c] as f64).collect();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
    (mean, var.sqrt())
}

#[test]
fn grayscale_makes_every_pixel_grey_of_its_luma_and_keeps_alpha_and_depth() {
    let img = ramp(true);
    let grey = after(&img, &[Op::Grayscale]);
    assert_eq!(grey.color(), img.color(), "the layout stays RGBA");
    for (p, q) in grey.to_rgba8().pixels().zip(img.to_rgba8().pixels()) {
        assert!(p[0] == p[1] && p[1] == p[2], "{p:?}");
        assert_eq!(p[3], q[3], "alpha kept");
        let luma = 0.2126 * q[0] as f64 + 0.7152 * q[1] as f64 + 0.0722 * q[2] as f64;
        assert!((p[0] as f64 - luma).abs() <= 1.0, "{p:?} from {q:?}");
    }
    let wide = DynamicImage::ImageRgb16(img.to_rgb16());
    let grey16 = after(&wide, &[Op::Grayscale]).into_rgb16();
    assert!(grey16.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
    assert_eq!(
        after(&wide, &[Op::Grayscale]).color(),
        image::ColorType::Rgb16
    );
}

#[test]
fn bright_moves_the_mean_by_its_share_of_full_scale_and_leaves_alpha() {
    let img = ramp(true);
    let (m0, _) = stats(&img, 0);
    let up = after(&img, &[Op::Bright(20)]);
    let down = after(&img, &[Op::Bright(-20)]);
    // +20 % of 255 = 51, less what clips at white (the top 51 values of the ramp)
    let (mu, _) = stats(&up, 0);
    let (md, _) = stats(&down, 0);
    assert!(mu > m0 + 40.0 && mu < m0 + 51.5, "{m0} -> {mu}");
    assert!(md < m0 - 40.0 && md > m0 - 51.5, "{m0} -> {md}");
    assert_eq!(up.to_rgba8().get_pixel(10, 0)[0], 61, "10 + 51");
    assert_eq!(down.to_rgba8().get_pixel(10, 0)[0], 0, "clipped at black");
    assert_eq!(up.to_rgba8().get_pixel(250, 0)[0], 255, "clipped at white");
    for (p, q) in up.to_rgba8().pixels().zip(img.to_rgba8().pixels()) {
        assert_eq!(p[3], q[3]);
    }
    assert_eq!(
        after(&img, &[Op::Bright(100)]).to_rgba8().get_pixel(0, 0)[0],
        255
    );
}

#[test]
fn contrast_spreads_or_gathers_values_around_mid_grey() {
    let img = ramp(false);
    let (m0, s0) = stats(&img, 0);
    let more = after(&img, &[Op::Contrast(50)]);
    let less = after(&img, &[Op::Contrast(-50)]);
    let (mm, sm) = stats(&more, 0);
    let (ml, sl) = stats(&less, 0);
    assert!(sm > s0 * 1.3, "{s0} -> {sm}");
    assert!(sl < s0 * 0.5, "{s0} -> {sl}");
    // the ramp is symmetric about mid-grey, so its mean stays there
    assert!(
        (mm - m0).abs() < 1.0 && (ml - m0).abs() < 1.0,
        "{m0}: {mm} {ml}"
    );
    let flat = after(&img, &[Op::Contrast(-100)]).to_rgb8();
    assert!(
        flat.pixels().all(|p| p[0] == 128),
        "contrast -100 is mid-grey"
    );
    let hard = after(&img, &[Op::Contrast(100)]).to_rgb8();
    assert!(
        hard.pixels().all(|p| p[0] == 0 || p[0] == 255),
        "contrast 100 thresholds"
    );
    let wide = DynamicImage::ImageRgb16(img.to_rgb16());
    let (_, s16) = stats(&after(&wide, &[Op::Contrast(50)]), 0);
    assert!(
        (s16 - sm).abs() < 1.0,
        "16-bit follows the same curve: {s16} vs {sm}"
    );
}

/// An animation of `n` 4×4 frames, frame i filled with grey level i and shown for 10·(i+1) ms.
fn animation(n: u32) -> Picture {
    let mut p = pic(4, 4);
    p.frames = (0..n)
        .map(|i| Frame {
            image: DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
                4,
                4,
                image::Rgba([i as u8, i as u8, i as u8, 255]),
            )),
            delay_ms: 10 * (i + 1),
        })
        .collect();
    p
}

fn levels(p: &Picture) -> Vec<u8> {
    p.frames
        .iter()
        .map(|f| f.image.to_rgba8().get_pixel(0, 0)[0])
        .collect()
}

#[test]
fn frame_picks_one_frame_and_cgif_keeps_evenly_spread_frames_for_as_long() {
    let mut p = animation(10);
    run(&mut p, &[Op::Frame(3)], &Limits::default()).unwrap();
    assert_eq!(levels(&p), [2]);
    assert_eq!(p.frames[0].delay_ms, 0, "a still");

    let total: u32 = (1..=10).map(|i| 10 * i).sum();
    let mut p = animation(10);
    run(&mut p, &[Op::Cgif(4)], &Limits::default()).unwrap();
    assert_eq!(levels(&p), [0, 2, 5, 7], "picks at k·10/4");
    let delays: Vec<u32> = p.frames.iter().map(|f| f.delay_ms).collect();
    assert_eq!(delays, [10 + 20, 30 + 40 + 50, 60 + 70, 80 + 90 + 100]);
    assert_eq!(
        delays.iter().sum::<u32>(),
        total,
        "the animation lasts as long"
    );

    let mut p = animation(40);
    run(&mut p, &[Op::Cgif(1)], &Limits::default()).unwrap();
    assert_eq!(
        levels(&p),
        (0..30).collect::<Vec<u8>>(),
        "cgif/1: the first 30 as they are"
    );
    let mut p = animation(3);
    run(&mut p, &[Op::Cgif(5)], &Limits::default()).unwrap();
    assert_eq!(levels(&p), [0, 1, 2], "fewer frames than asked: unchanged");

    // cgif first, then a frame of what it kept
    let mut p = animation(10);
    run(&mut p, &[Op::Cgif(4), Op::Frame(2)], &Limits::default()).unwrap();
    assert_eq!(levels(&p), [2]);
}

#[test]
fn the_plan_counts_frames_through_frame_and_cgif() {
    let l = Limits::default();
    let e = plan(&[Op::Frame(4)], (4, 4), 3, &l)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("asks for frame 4, but the picture is an animation of 3 frames"),
        "{e}"
    );
    let e = plan(&[Op::Frame(2)], (4, 4), 1, &l)
        .unwrap_err()
        .to_string();
    assert!(e.contains("a still image (1 frame)"), "{e}");
    assert!(plan(&[Op::Frame(3)], (4, 4), 3, &l).is_ok());
    assert!(
        plan(&[Op::Cgif(2), Op::Frame(3)], (4, 4), 10, &l).is_err(),
        "cgif/2 leaves 2"
    );
    assert!(plan(&[Op::Cgif(2), Op::Frame(2)], (4, 4), 10, &l).is_ok());
    // memory is counted for the frames that go on: 100 frames of 1000x1000 are over a 50 MP limit,
    // a frame of them is not
    let small = Limits {
        max_pixels: 50_000_000,
        ..Limits::default()
    };
    let big = [Op::Thumbnail(Scale::Exact {
        width: 1000,
        height: 1000,
    })];
    assert!(plan(&big, (500, 500), 100, &small).is_err());
    assert!(plan(&[Op::Frame(1), big[0].clone()], (500, 500), 100, &small).is_ok());
    assert!(plan(&[Op::Cgif(10), big[0].clone()], (500, 500), 100, &small).is_ok());
}

/// A grey 400×200 picture with one region drawing the eye at `x0..x0 + 80`, rows 60–140: fine noise
/// (`detail`) or a flat skin-toned patch.
fn with_subject(x0: u32, detail: bool) -> DynamicImage {
    let mut seed = 0x1234_5678_u32;
    DynamicImage::ImageRgb8(image::RgbImage::from_fn(400, 200, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        if (x0..x0 + 80).contains(&x) && (60..140).contains(&y) {
            if detail {
                let v = (seed % 200) as u8 + 20;
                image::Rgb([v, v, v])
            } else {
                image::Rgb([224, 172, 140])
            }
        } else {
            image::Rgb([128, 128, 128])
        }
    }))
}

#[test]
fn scrop_covers_then_keeps_the_window_with_the_subject() {
    let op = [Op::Scrop {
        width: 100,
        height: 100,
    }];
    assert_eq!(
        dims_after(&op, 400, 200),
        (100, 100),
        "cover 200x100, cut 100x100"
    );
    for (x0, detail) in [(300, true), (20, true), (300, false), (40, false)] {
        let img = with_subject(x0, detail);
        let out = after(&img, &op).to_rgb8();
        // the subject, at half size, is x0/2 .. x0/2 + 40 of the 200-wide cover: wholly inside
        let covered = resize(&img, 200, 100).unwrap().to_rgb8();
        let marked = |i: &image::RgbImage| i.pixels().filter(|p| p.0 != [128, 128, 128]).count();
        assert!(
            marked(&out) * 100 >= marked(&covered) * 95,
            "subject at {x0} (detail {detail}): {} of {} pixels kept",
            marked(&out),
            marked(&covered)
        );
    }
    // nothing stands out: the centre
    let flat = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(400, 200, image::Rgb([90; 3])));
    assert_eq!(
        attention::window(&resize(&flat, 200, 100).unwrap(), 100, 100).unwrap(),
        (50, 0)
    );
    // the picture scrop holds before it cuts is checked like a thumbnail's
    let e = plan(&op, (50_000, 10), 1, &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("500000x100") || e.contains("pixels"), "{e}");
}

fn flat(w: u32, h: u32, grey: u8) -> Picture {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([grey; 3]));
    Picture::still(DynamicImage::ImageRgb8(img), Format::Png)
}

fn png(img: &image::RgbaImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A watermark of `mark` at `gravity`, opaque, changed by `place`.
fn watermark_op(
    mark: crate::rule::Mark,
    gravity: Gravity,
    place: impl FnOnce(&mut crate::rule::Watermark),
) -> Op {
    let mut wm = crate::rule::Watermark {
        mark,
        gravity,
        dx: 0,
        dy: 0,
        dissolve: 100,
        batch: false,
        degree: 0,
    };
    place(&mut wm);
    Op::Watermark(Box::new(wm))
}

fn image_mark(bytes: Vec<u8>, place: impl FnOnce(&mut crate::rule::Watermark)) -> Op {
    use crate::rule::{ImageMark, Mark, MarkObject};
    let mark = Mark::Image(ImageMark {
        url: "http://b.cos.r.myqcloud.com/logo.png".into(),
        ops: Vec::new(),
        object: Some(MarkObject {
            key: "logo.png".into(),
            etag: "e".into(),
            bytes: Some(bytes.into()),
        }),
    });
    watermark_op(mark, Gravity::SouthEast, place)
}

fn text_mark(text: &str, place: impl FnOnce(&mut crate::rule::Watermark)) -> Op {
    use crate::rule::{Mark, TextMark};
    let mark = Mark::Text(TextMark {
        text: text.into(),
        font: crate::rule::DEFAULT_FONT.into(),
        size: 40,
        fill: [0, 0, 0],
        shadow: 0,
    });
    watermark_op(mark, Gravity::NorthWest, place)
}

/// The bounding box (x0, y0, x1, y1) of the pixels that differ from `grey`, and how many there are.
fn changed(p: &Picture, grey: u8) -> (Option<(u32, u32, u32, u32)>, usize) {
    let img = p.first().to_rgb8();
    let mut bounds: Option<(u32, u32, u32, u32)> = None;
    let mut n = 0;
    for (x, y, px) in img.enumerate_pixels() {
        if px.0 != [grey; 3] {
            n += 1;
            bounds = Some(match bounds {
                None => (x, y, x + 1, y + 1),
                Some((a, b, c, d)) => (a.min(x), b.min(y), c.max(x + 1), d.max(y + 1)),
            });
        }
    }
    (bounds, n)
}

#[test]
fn an_image_watermark_changes_pixels_only_at_its_gravity_and_offset() {
    let red = image::RgbaImage::from_pixel(20, 10, image::Rgba([255, 0, 0, 255]));
    let l = Limits::default();
    for (gravity, dx, dy, at) in [
        (Gravity::SouthEast, 5, 7, (175, 83)),
        (Gravity::NorthWest, 5, 7, (5, 7)),
        (Gravity::North, 0, 0, (90, 0)),
        (Gravity::Center, 10, 0, (100, 45)),
        (Gravity::West, 0, 0, (0, 45)),
    ] {
        let op = image_mark(png(&red), |w| (w.gravity, w.dx, w.dy) = (gravity, dx, dy));
        let mut p = flat(200, 100, 128);
        assert_eq!(
            plan(std::slice::from_ref(&op), (200, 100), 1, &l).unwrap(),
            (200, 100)
        );
        run(&mut p, &[op], &l).unwrap();
        let (bounds, n) = changed(&p, 128);
        assert_eq!(
            bounds,
            Some((at.0, at.1, at.0 + 20, at.1 + 10)),
            "{gravity:?}"
        );
        assert_eq!(n, 200, "{gravity:?}: every pixel of the mark, and no other");
        assert_eq!(p.first().to_rgb8().get_pixel(at.0, at.1).0, [255, 0, 0]);
    }
    // dissolve/50: half way between the picture and the mark
    let op = image_mark(png(&red), |w| w.dissolve = 50);
    let mut p = flat(200, 100, 128);
    run(&mut p, &[op], &l).unwrap();
    let px = p.first().to_rgb8().get_pixel(199, 99).0;
    assert!(
        px[0].abs_diff(192) <= 1 && px[1].abs_diff(64) <= 1,
        "{px:?}"
    );
    // a mark larger than the picture is clipped to it, a transparent mark changes nothing
    let big = image::RgbaImage::from_pixel(300, 300, image::Rgba([0, 0, 255, 255]));
    let mut p = flat(200, 100, 128);
    run(&mut p, &[image_mark(png(&big), |_| ())], &l).unwrap();
    assert_eq!(changed(&p, 128).1, 200 * 100);
    let clear = image::RgbaImage::from_pixel(30, 30, image::Rgba([0, 0, 255, 0]));
    let mut p = flat(200, 100, 128);
    run(&mut p, &[image_mark(png(&clear), |_| ())], &l).unwrap();
    assert_eq!(changed(&p, 128), (None, 0));
}

#[test]
fn a_watermark_image_is_limited_like_an_input_and_must_be_an_image() {
    let l = Limits {
        max_pixels: 30_000,
        ..Limits::default()
    };
    // 100x100 + 150x150 = 32,500 pixels held at once: over 30,000, refused before decoding
    let mark = image::RgbaImage::from_pixel(150, 150, image::Rgba([1, 2, 3, 255]));
    let op = image_mark(png(&mark), |_| ());
    let e = plan(std::slice::from_ref(&op), (100, 100), 1, &l).unwrap_err();
    assert!(e.message.contains("150x150 watermark"), "{e}");
    let op = image_mark(b"not an image".to_vec(), |_| ());
    let e = plan(std::slice::from_ref(&op), (100, 100), 1, &l).unwrap_err();
    assert!(
        e.message.contains("the watermark image \"logo.png\""),
        "{e}"
    );
    assert!(e.is_client_error());
    // a rule in its URL runs on the mark first: halved, it fits
    let mut op = image_mark(png(&mark), |_| ());
    if let Op::Watermark(w) = &mut op {
        if let crate::rule::Mark::Image(m) = &mut w.mark {
            m.ops = vec![Op::Thumbnail(Scale::Percent(50))];
        }
    }
    plan(std::slice::from_ref(&op), (100, 100), 1, &l).unwrap();
    let mut p = flat(100, 100, 128);
    run(&mut p, &[op], &l).unwrap();
    assert_eq!(changed(&p, 128).0, Some((25, 25, 100, 100)));
}

#[test]
fn chinese_text_renders_inside_its_box_only() {
    let l = Limits::default();
    let op = text_mark("腾讯云 mogr", |w| (w.dx, w.dy) = (10, 20));
    let Op::Watermark(wm) = &op else { panic!() };
    let crate::rule::Mark::Text(t) = &wm.mark else {
        panic!()
    };
    let t = t.clone();
    let (tw, th) = text::measure(&t).unwrap();
    assert!(tw > 150 && th >= 40, "{tw}x{th}");
    let mut p = flat(400, 120, 255);
    run(&mut p, &[op], &l).unwrap();
    let (bounds, n) = changed(&p, 255);
    let (x0, y0, x1, y1) = bounds.unwrap();
    assert!(
        x0 >= 10 && y0 >= 20 && x1 <= 10 + tw && y1 <= 20 + th,
        "{bounds:?} vs {tw}x{th}"
    );
    assert!(n > 1000, "{n} pixels drawn");
    // each character is its own glyph from the CJK font, not one "missing glyph" box for all
    let draw = |s: &str| {
        let mut p = flat(60, 60, 255);
        run(&mut p, &[text_mark(s, |_| ())], &l).unwrap();
        p.first().to_rgb8().into_raw()
    };
    let (a, b, c) = (draw("腾"), draw("讯"), draw("\u{10FFFD}"));
    assert_ne!(a, b);
    assert_ne!(a, c);
    // a font COS names, and a font file of the system; an unknown font is the client's mistake
    for font in [
        "simhei黑体.ttf",
        "SimHei.ttf",
        "arial.ttf",
        "DejaVuSerif.ttf",
    ] {
        let t = crate::rule::TextMark {
            font: font.into(),
            ..t.clone()
        };
        text::measure(&t).unwrap_or_else(|e| panic!("{font}: {e}"));
    }
    for font in ["comic.ttf", "../../etc/passwd", "DejaVuSans.txt"] {
        let t = crate::rule::TextMark {
            font: font.into(),
            ..t.clone()
        };
        let e = text::measure(&t).unwrap_err();
        assert!(
            e.is_client_error() && e.message.contains("tahoma.ttf"),
            "{e}"
        );
    }
    // the drawn size is bounded: 100 characters at 1000 pt is refused before drawing
    let huge = crate::rule::TextMark {
        text: "W".repeat(100),
        size: 1000,
        ..t.clone()
    };
    assert!(text::measure(&huge)
        .unwrap_err()
        .message
        .contains("smaller fontsize"));
}

#[test]
fn batch_tiles_the_mark_over_the_picture_and_degree_turns_it() {
    let l = Limits::default();
    let mut p = flat(400, 300, 255);
    run(&mut p, &[text_mark("mogr", |w| w.batch = true)], &l).unwrap();
    let img = p.first().to_rgb8();
    let quadrant = |qx: u32, qy: u32| {
        (qx * 200..qx * 200 + 200)
            .flat_map(|x| (qy * 150..qy * 150 + 150).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 != [255; 3])
            .count()
    };
    for (qx, qy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        assert!(quadrant(qx, qy) > 200, "quadrant {qx},{qy}");
    }
    // turned by 90 degrees, a line of text stands taller than it is wide
    let mut p = flat(400, 300, 255);
    run(&mut p, &[text_mark("mogr mogr", |w| w.degree = 90)], &l).unwrap();
    let (x0, y0, x1, y1) = changed(&p, 255).0.unwrap();
    assert!(y1 - y0 > 2 * (x1 - x0), "{:?}", (x0, y0, x1, y1));
    // shadow: darker pixels below and right of the letters, within the box
    let op = text_mark("mogr", |w| {
        if let crate::rule::Mark::Text(t) = &mut w.mark {
            (t.fill, t.shadow) = ([255, 255, 255], 100);
        }
    });
    let mut p = flat(200, 100, 255);
    run(&mut p, &[op], &l).unwrap();
    assert!(
        changed(&p, 255).1 > 100,
        "the shadow shows white text on white"
    );
}
