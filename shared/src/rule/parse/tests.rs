//! The parser: every form COS documents, its errors, and properties over arbitrary input.

use super::*;
use crate::codec::{Format, Profile};
use crate::rule::{Gravity, Quality, SizeLimit};
use proptest::prelude::*;

fn ok(s: &str) -> Rule {
    parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn error_names_token_offset_and_expectation() {
    let e = parse("imageMogr2/thumbnail/80xx").unwrap_err();
    assert_eq!(e.context, "thumbnail");
    assert_eq!(e.token, "80xx");
    assert_eq!(e.offset, 21);
    assert!(
        e.to_string()
            .starts_with("thumbnail \"80xx\" at offset 21: expected <W>x<H>"),
        "{e}"
    );
    let e = parse("imageMogr2/format/heif|imageMogr2/rotate/400").unwrap_err();
    assert_eq!(
        (e.context.as_str(), e.token.as_str(), e.offset),
        ("rotate", "400", 41)
    );
}

#[test]
fn every_thumbnail_form() {
    let cases = [
        ("!50p", Scale::Percent(50)),
        ("!50px", Scale::WidthPercent(50)),
        ("!x50p", Scale::HeightPercent(50)),
        ("800x", Scale::Width(800)),
        ("x600", Scale::Height(600)),
        (
            "800x600",
            Scale::Fit {
                width: 800,
                height: 600,
            },
        ),
        (
            "800x600>",
            Scale::Shrink {
                width: 800,
                height: 600,
            },
        ),
        (
            "800x600<",
            Scale::Enlarge {
                width: 800,
                height: 600,
            },
        ),
        (
            "!800x600r",
            Scale::Cover {
                width: 800,
                height: 600,
            },
        ),
        (
            "800x600!",
            Scale::Exact {
                width: 800,
                height: 600,
            },
        ),
        ("250000@", Scale::Area(250_000)),
    ];
    for (arg, want) in cases {
        assert_eq!(
            ok(&format!("imageMogr2/thumbnail/{arg}")).ops,
            vec![Op::Thumbnail(want)],
            "{arg}"
        );
    }
    for bad in [
        "", "x", "0x10", "10x0", "10000x", "!0p", "!1001p", "!50", "abc", "10x10x", "@", "-5x",
        "1e3x",
    ] {
        assert!(
            parse(&format!("imageMogr2/thumbnail/{bad}")).is_err(),
            "{bad:?} should fail"
        );
    }
}

#[test]
fn crop_takes_gravity_and_offsets_of_its_segment() {
    let r = ok("imageMogr2/gravity/southeast/crop/300x200/dx/10/dy/20");
    assert_eq!(
        r.ops,
        vec![Op::Crop {
            width: Some(300),
            height: Some(200),
            gravity: Gravity::SouthEast,
            dx: 10,
            dy: 20
        }]
    );
    let r = ok("imageMogr2/crop/x100");
    assert_eq!(
        r.ops,
        vec![Op::Crop {
            width: None,
            height: Some(100),
            gravity: Gravity::NorthWest,
            dx: 0,
            dy: 0
        }]
    );
    assert!(parse("imageMogr2/crop/x").is_err());
    assert!(parse("imageMogr2/crop/10x10/gravity/up").is_err());
}

#[test]
fn pad_follows_its_thumbnail_with_color() {
    let r = ok("imageMogr2/thumbnail/300x200/pad/1/color/I0ZGMDAwMA");
    assert_eq!(
        r.ops,
        vec![
            Op::Thumbnail(Scale::Fit {
                width: 300,
                height: 200
            }),
            Op::Pad {
                width: 300,
                height: 200,
                color: [0xff, 0, 0]
            }
        ]
    );
    // padding is allowed with '=' too, and pad/0 pads nothing
    assert_eq!(
        ok("imageMogr2/thumbnail/30x20/pad/1/color/I0ZGMDAwMA==")
            .ops
            .len(),
        2
    );
    assert_eq!(ok("imageMogr2/thumbnail/30x20/pad/0").ops.len(), 1);
    let e = parse("imageMogr2/pad/1").unwrap_err();
    assert_eq!(e.context, "pad");
    assert!(parse("imageMogr2/thumbnail/30x20/pad/1/color/notbase64!").is_err());
}

#[test]
fn every_other_operation() {
    let r = ok("imageMogr2/cut/10x20x30x40/iradius/5/rradius/6/rotate/90/auto-orient/flip/vertical\
/blur/3x2/sharpen/70/strip/interlace/1/format/webp/quality/80!/size-limit/15k!/ignore-error/1/profile/persistent");
    assert_eq!(
        r.ops,
        vec![
            Op::Cut {
                width: 10,
                height: 20,
                x: 30,
                y: 40
            },
            Op::IRadius(5),
            Op::RRadius(6),
            Op::Rotate(90),
            Op::AutoOrient,
            Op::Flip(Flip::Vertical),
            Op::Blur {
                radius: 3,
                sigma: 2
            },
            Op::Sharpen(70),
        ]
    );
    assert_eq!(r.format, Some(Format::Webp));
    assert_eq!(
        r.quality,
        Some(Quality::Absolute {
            q: 80,
            forced: true
        })
    );
    assert_eq!(
        r.size_limit,
        Some(SizeLimit {
            bytes: 15 * 1024,
            keep_smaller_original: true
        })
    );
    assert!(r.strip && r.interlace && r.ignore_error);
    assert_eq!(r.profile, Some(Profile::Persistent));
    assert_eq!(
        ok("imageMogr2/rquality/80").quality,
        Some(Quality::Relative(80))
    );
    assert_eq!(
        ok("imageMogr2/lquality/60").quality,
        Some(Quality::Floor(60))
    );
    assert_eq!(ok("imageMogr2/rotate/360").ops, vec![Op::Rotate(0)]);
}

#[test]
fn quality_auto_with_and_without_a_target_score() {
    assert_eq!(
        ok("imageMogr2/quality/auto").quality,
        Some(Quality::Auto(70))
    );
    let r = ok("imageMogr2/quality/auto/85/format/heif");
    assert_eq!(r.quality, Some(Quality::Auto(85)));
    assert_eq!(r.format, Some(Format::Heif));
    assert_eq!(
        ok("imageMogr2/format/avif/quality/auto").quality,
        Some(Quality::Auto(70))
    );
    // a later quality replaces it, as any setting
    assert_eq!(
        ok("imageMogr2/quality/auto/90/quality/50").quality,
        Some(Quality::Absolute {
            q: 50,
            forced: false
        })
    );
    for bad in [
        "imageMogr2/quality/auto/0",
        "imageMogr2/quality/auto/101",
        "imageMogr2/quality/auto/abc",
        "imageMogr2/quality/automatic",
        "imageMogr2/quality/auto!",
        // a number after another setting is no target
        "imageMogr2/quality/auto/interlace/1/80",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
    let e = parse("imageMogr2/quality/auto/101")
        .unwrap_err()
        .to_string();
    assert!(e.contains("auto/<score 1-100>"), "{e}");
}

#[test]
fn formats_and_tpg() {
    for (name, f) in [
        ("jpg", Format::Jpeg),
        ("jpeg", Format::Jpeg),
        ("png", Format::Png),
        ("gif", Format::Gif),
        ("webp", Format::Webp),
        ("bmp", Format::Bmp),
        ("tiff", Format::Tiff),
        ("heif", Format::Heif),
        ("heic", Format::Heif),
        ("avif", Format::Avif),
    ] {
        assert_eq!(ok(&format!("imageMogr2/format/{name}")).format, Some(f));
    }
    let e = parse("imageMogr2/format/tpg").unwrap_err().to_string();
    assert!(
        e.contains("no public specification")
            && e.contains("format/avif")
            && e.contains("format/heif"),
        "{e}"
    );
    assert!(parse("imageMogr2/format/svg").is_err());
    let auto = ok("imageMogr2/format/auto");
    assert!(auto.format_auto && auto.format.is_none());
    let later = ok("imageMogr2/format/auto|imageMogr2/format/png");
    assert!(!later.format_auto && later.format == Some(Format::Png));
}

#[test]
fn pipelines() {
    let r = ok("imageMogr2/thumbnail/800x|imageMogr2/format/heif/quality/60");
    assert_eq!(r.ops, vec![Op::Thumbnail(Scale::Width(800))]);
    assert_eq!(r.format, Some(Format::Heif));
    // later segments override settings
    assert_eq!(
        ok("imageMogr2/format/png|imageMogr2/format/avif").format,
        Some(Format::Avif)
    );
    let ten = ["imageMogr2/rotate/90"; 10].join("|");
    assert_eq!(ok(&ten).ops.len(), 10);
    let eleven = ["imageMogr2/rotate/90"; 11].join("|");
    assert_eq!(parse(&eleven).unwrap_err().context, "pipeline");
    assert_eq!(
        parse("imageMogr2/rotate/90|").unwrap_err().context,
        "processor"
    );
    assert_eq!(
        parse("watermark/1/image/aHR0cA").unwrap_err().context,
        "image"
    );
    assert_eq!(ok("imageMogr2/format/heif/").format, Some(Format::Heif));
}

#[test]
fn hostile_rules_are_errors() {
    assert!(parse(&"a".repeat(10_000)).is_err());
    assert!(parse("imageMogr2/thumbnail/99999999999999999999x1").is_err());
    assert!(parse("imageMogr2/rotate/-1").is_err());
    assert!(parse("imageMogr2/quality/101").is_err());
    assert!(parse("imageMogr2/thumbnail/１００x").is_err());
    assert!(parse("imageMogr2//format/png").is_err());
    assert!(parse("imageMogr2/format").is_err());
    assert!(parse("").is_err());
}

#[test]
fn image_view2_maps_onto_the_same_operations() {
    use crate::rule::{Op, Scale};
    let thumb = |s: &str| ok(s).ops;
    assert_eq!(
        thumb("imageView2/2/w/100/h/80"),
        [Op::Thumbnail(Scale::Fit {
            width: 100,
            height: 80
        })]
    );
    assert_eq!(
        thumb("imageView2/2/w/100"),
        [Op::Thumbnail(Scale::Width(100))]
    );
    assert_eq!(
        thumb("imageView2/2/h/80"),
        [Op::Thumbnail(Scale::Height(80))]
    );
    // 1: cover, then the centre; one side given means a square
    assert_eq!(
        thumb("imageView2/1/w/50"),
        [
            Op::Thumbnail(Scale::Cover {
                width: 50,
                height: 50
            }),
            Op::Crop {
                width: Some(50),
                height: Some(50),
                gravity: Gravity::Center,
                dx: 0,
                dy: 0
            }
        ]
    );
    assert_eq!(
        thumb("imageView2/3/h/60"),
        [Op::Thumbnail(Scale::Cover {
            width: 60,
            height: 60
        })]
    );
    assert_eq!(
        thumb("imageView2/0/w/300"),
        [Op::Thumbnail(Scale::Edges {
            long: Some(300),
            short: None,
            cover: false
        })]
    );
    assert_eq!(
        thumb("imageView2/5/w/300/h/200"),
        [
            Op::Thumbnail(Scale::Edges {
                long: Some(300),
                short: Some(200),
                cover: true
            }),
            Op::CropEdges {
                long: 300,
                short: 200
            }
        ]
    );
    // the SDKs' own example, and the output settings imageMogr2 has
    let r = ok("imageView2/format/png");
    assert_eq!((r.ops.len(), r.format), (0, Some(Format::Png)));
    let r = ok("imageView2/2/w/100/format/webp/q/75/interlace/1|imageMogr2/rotate/90");
    assert_eq!(r.format, Some(Format::Webp));
    assert_eq!(
        r.quality,
        Some(Quality::Absolute {
            q: 75,
            forced: false
        })
    );
    assert_eq!(r.ops.len(), 2);
    for (bad, context) in [
        ("imageView2", "imageView2"),
        ("imageView2/6/w/10", "imageView2 mode"),
        ("imageView2/2", "imageView2"),
        ("imageView2/2/w/0", "w"),
        ("imageView2/2/w/100/x/1", "operation"),
        ("imageView2/2/w", "imageView2"),
        ("imageView2/w/100", "imageView2"),
    ] {
        assert_eq!(parse(bad).unwrap_err().context, context, "{bad}");
    }
}

#[test]
fn ignore_error_turns_a_value_past_its_limits_into_the_original() {
    let r = ok("imageMogr2/thumbnail/20000x/ignore-error/1");
    assert!(r.ignore_error && r.ops.is_empty());
    assert!(
        r.refused
            .as_deref()
            .unwrap()
            .starts_with("thumbnail \"20000x\""),
        "{r:?}"
    );
    assert!(ok("imageMogr2/ignore-error/1|imageMogr2/rotate/400")
        .refused
        .is_some());
    // without it, or for an unknown operation or processor, it stays an error
    assert!(parse("imageMogr2/thumbnail/20000x").is_err());
    assert!(parse("imageMogr2/teleport/1/ignore-error/1").is_err());
    assert!(parse("watermark/1/ignore-error/1").is_err());
    assert!(ok("imageMogr2/thumbnail/200x/ignore-error/1")
        .refused
        .is_none());
}

proptest! {
    #[test]
    fn never_panics_on_any_string(s in "\\PC{0,200}") {
        let _ = parse(&s);
    }

    #[test]
    fn never_panics_on_rule_shaped_strings(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("imageMogr2".to_string()), Just("thumbnail".to_string()), Just("crop".to_string()),
                Just("pad".to_string()), Just("color".to_string()), Just("format".to_string()),
                Just("quality".to_string()), Just("gravity".to_string()), Just("|".to_string()),
                Just("1".to_string()), "[0-9x!@<>rp]{0,12}", "\\PC{0,6}",
            ],
            0..24,
        )
    ) {
        let s = parts.join("/");
        if let Err(e) = parse(&s) {
            // the offset always points inside (or at the end of) the rule
            prop_assert!(e.offset <= s.len());
        }
    }
}

#[test]
fn adjustments_parse_with_signs_and_zero_is_no_operation() {
    assert_eq!(
        ok("imageMogr2/bright/-30/contrast/45/grayscale/1").ops,
        vec![Op::Bright(-30), Op::Contrast(45), Op::Grayscale]
    );
    assert_eq!(
        ok("imageMogr2/bright/100/contrast/-100").ops,
        vec![Op::Bright(100), Op::Contrast(-100)]
    );
    assert!(ok("imageMogr2/bright/0/contrast/-0/grayscale/0/format/png")
        .ops
        .is_empty());
    for (rule, token, offset) in [
        ("imageMogr2/bright/101", "101", 18),
        ("imageMogr2/bright/-101", "-101", 18),
        ("imageMogr2/bright/+5", "+5", 18),
        ("imageMogr2/contrast/--5", "--5", 20),
        ("imageMogr2/contrast/-", "-", 20),
        ("imageMogr2/contrast/4294967296", "4294967296", 20),
        ("imageMogr2/grayscale/2", "2", 21),
    ] {
        let e = parse(rule).unwrap_err();
        assert_eq!((e.token.as_str(), e.offset), (token, offset), "{rule}: {e}");
    }
    assert!(parse("imageMogr2/bright/-200")
        .unwrap_err()
        .to_string()
        .ends_with("expected a whole number from -100 to 100"));
}

#[test]
fn image_view2_takes_relative_and_least_quality() {
    assert_eq!(
        ok("imageView2/2/w/100/rq/80").quality,
        Some(Quality::Relative(80))
    );
    assert_eq!(
        ok("imageView2/format/webp/lq/60").quality,
        Some(Quality::Floor(60))
    );
    let e = parse("imageView2/2/w/100/rq/101").unwrap_err();
    assert_eq!(
        (e.context.as_str(), e.token.as_str(), e.offset),
        ("rq", "101", 22)
    );
}

#[test]
fn scrop_takes_both_sides() {
    assert_eq!(
        ok("imageMogr2/scrop/300x200").ops,
        vec![Op::Scrop {
            width: 300,
            height: 200
        }]
    );
    for bad in ["300x", "x200", "0x10", "10000x10", "300"] {
        let e = parse(&format!("imageMogr2/scrop/{bad}")).unwrap_err();
        assert_eq!((e.context.as_str(), e.token.as_str()), ("scrop", bad));
    }
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn watermark(rule: &Rule) -> &crate::rule::Watermark {
    match rule.ops.last() {
        Some(Op::Watermark(w)) => w,
        other => panic!("not a watermark: {other:?}"),
    }
}

#[test]
fn watermarks_parse_as_cos_documents_them() {
    use crate::rule::Mark;
    // COS's example: an image of the bucket, at the southeast corner 20 px in, half transparent
    let url = b64("http://examplebucket-1250000000.cos.ap-shanghai.myqcloud.com/shuiyin_2.png");
    let r = ok(&format!(
        "watermark/1/image/{url}/gravity/southeast/dx/20/dy/10/dissolve/50"
    ));
    let w = watermark(&r);
    assert_eq!(
        (w.gravity, w.dx, w.dy, w.dissolve),
        (Gravity::SouthEast, 20, 10, 50)
    );
    let Mark::Image(m) = &w.mark else { panic!() };
    assert_eq!(
        m.url,
        "http://examplebucket-1250000000.cos.ap-shanghai.myqcloud.com/shuiyin_2.png"
    );
    assert!(m.ops.is_empty() && m.object.is_none());
    // defaults: southeast, fully opaque; a rule in the URL's query runs on the mark
    let scaled = b64("http://b.cos.r.myqcloud.com/logo.png?imageMogr2/thumbnail/!50p");
    let r = ok(&format!("watermark/1/image/{scaled}"));
    let w = watermark(&r);
    assert_eq!(
        (w.gravity, w.dissolve, w.batch),
        (Gravity::SouthEast, 100, false)
    );
    let Mark::Image(m) = &w.mark else { panic!() };
    assert_eq!(m.url, "http://b.cos.r.myqcloud.com/logo.png");
    assert_eq!(m.ops, vec![Op::Thumbnail(Scale::Percent(50))]);

    // text: COS's parameters, Chinese included; defaults 13 pt, #3D3D3D, dissolve 90, tahoma
    let r = ok(&format!(
        "watermark/2/text/{}/font/{}/fontsize/36/fill/{}/dissolve/80/gravity/north/dx/5/dy/6/batch/1/degree/45/shadow/50",
        b64("腾讯云·万象"),
        b64("simhei黑体.ttf"),
        b64("#FF0000")
    ));
    let w = watermark(&r);
    assert_eq!(
        (w.gravity, w.dx, w.dy, w.dissolve, w.batch, w.degree),
        (Gravity::North, 5, 6, 80, true, 45)
    );
    let Mark::Text(t) = &w.mark else { panic!() };
    assert_eq!(
        (t.text.as_str(), t.font.as_str(), t.size, t.fill, t.shadow),
        ("腾讯云·万象", "simhei黑体.ttf", 36, [255, 0, 0], 50)
    );
    let r = ok(&format!("watermark/2/text/{}", b64("mogr")));
    let Mark::Text(t) = &watermark(&r).mark else {
        panic!()
    };
    assert_eq!(
        (t.font.as_str(), t.size, t.fill),
        ("tahoma.ttf", 13, [0x3d; 3])
    );
    assert_eq!(watermark(&r).dissolve, 90);
    // padded base64 is accepted too, and a watermark joins a pipeline like any segment
    let r = ok(&format!(
        "imageMogr2/thumbnail/400x|watermark/2/text/{}==|imageMogr2/format/webp",
        b64("ab")
    ));
    assert_eq!(r.ops.len(), 2);
    assert_eq!(r.format, Some(Format::Webp));
}

#[test]
fn watermark_errors_name_the_token() {
    let text = b64("mogr");
    let cases = [
        ("watermark", "watermark"),
        ("watermark/4/text/bW9ncg", "watermark"),
        ("watermark/3/type/1", "watermark"),
        ("watermark/2/fontsize/20", "watermark"),
        ("watermark/1/gravity/north", "watermark"),
        (&*format!("watermark/2/text/{text}/fontsize/0"), "fontsize"),
        (
            &*format!("watermark/2/text/{text}/fontsize/1001"),
            "fontsize",
        ),
        (&*format!("watermark/2/text/{text}/dissolve/0"), "dissolve"),
        (&*format!("watermark/2/text/{text}/degree/361"), "degree"),
        (&*format!("watermark/2/text/{text}/shadow/101"), "shadow"),
        (
            &*format!("watermark/2/text/{text}/fill/{}", b64("red")),
            "color",
        ),
        (&*format!("watermark/2/text/{text}/gravity/up"), "gravity"),
        (
            &*format!("watermark/2/text/{text}/image/{text}"),
            "operation",
        ),
        (
            &*format!("watermark/1/image/{text}/font/{text}"),
            "operation",
        ),
        (&*format!("watermark/2/text/{text}/dx"), "watermark"),
        ("watermark/2/text/!!", "text"),
        (&*format!("watermark/2/text/{}", b64("a\nb")), "text"),
        (
            &*format!("watermark/2/text/{}", b64(&"x".repeat(101))),
            "text",
        ),
        (
            &*format!("watermark/1/image/{}", b64("http://b.cos.r.myqcloud.com/")),
            "image",
        ),
        (
            &*format!(
                "watermark/1/image/{}",
                b64("http://b.cos.r.myqcloud.com/a.png?imageMogr2/rotate/400")
            ),
            "image",
        ),
    ];
    for (rule, context) in cases {
        let e = parse(rule).unwrap_err();
        assert_eq!(e.context, context, "{rule}: {e}");
    }
    let e = parse("watermark/3/type/1").unwrap_err();
    assert!(e.to_string().contains("blind watermarks"), "{e}");
    // a mark does not carry a watermark of its own
    let nested = b64(&format!(
        "http://b.cos.r.myqcloud.com/a.png?watermark/2/text/{text}"
    ));
    assert_eq!(
        parse(&format!("watermark/1/image/{nested}"))
            .unwrap_err()
            .context,
        "image"
    );
    // an out-of-range value with ignore-error/1 elsewhere answers the original; a malformed
    // watermark stays an error
    let r = ok(&format!(
        "watermark/2/text/{text}/fontsize/5000|imageMogr2/ignore-error/1"
    ));
    assert!(r.refused.is_some());
    assert!(parse("watermark/5|imageMogr2/ignore-error/1").is_err());
}
