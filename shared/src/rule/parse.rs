//! imageMogr2 parser. Every input gives a [`Rule`] or a [`RuleError`] naming the token, its byte offset in
//! the rule string and what was expected there; it never panics (see the property tests below).

use super::{Flip, Gravity, Op, Profile, Quality, Rule, Scale, SizeLimit};
use crate::codec::Format;
use base64::Engine;
use std::fmt;

/// At most this many `|` segments (COS documents 10).
pub const MAX_SEGMENTS: usize = 10;
/// Longer rules are refused before they are parsed.
pub const MAX_RULE_LEN: usize = 4096;
/// The largest width or height a rule may ask for (COS's output limit).
const MAX_SIDE: u32 = 9_999;

/// Where a rule went wrong: `thumbnail "80xx" at offset 21: expected <W>x<H>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The operation the token belongs to (`thumbnail`), or `operation` for an unknown name.
    pub context: String,
    pub token: String,
    /// Byte offset of `token` in the rule string.
    pub offset: usize,
    pub expected: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Quote at most 40 characters of the token so that a hostile rule cannot flood a log line.
        let shown: String = self.token.chars().take(40).collect();
        let ellipsis = if shown.len() < self.token.len() {
            "..."
        } else {
            ""
        };
        write!(
            f,
            "{} \"{}{}\" at offset {}: expected {}",
            self.context, shown, ellipsis, self.offset, self.expected
        )
    }
}

impl std::error::Error for RuleError {}

impl From<RuleError> for crate::Error {
    fn from(e: RuleError) -> Self {
        crate::Error::invalid(e.to_string())
    }
}

/// A `/`-separated token and its byte offset in the whole rule.
#[derive(Clone, Copy)]
struct Tok<'a> {
    text: &'a str,
    offset: usize,
}

fn err(context: &str, tok: Tok<'_>, expected: impl Into<String>) -> RuleError {
    RuleError {
        context: context.to_string(),
        token: tok.text.to_string(),
        offset: tok.offset,
        expected: expected.into(),
    }
}

const OPERATIONS: &str = "one of thumbnail, pad, color, cut, crop, gravity, dx, dy, iradius, rradius, rotate, \
auto-orient, flip, format, quality, rquality, lquality, interlace, strip, blur, sharpen, size-limit, \
ignore-error, profile";

/// Parses a whole rule (`imageMogr2/...|imageMogr2/...`). The string must already be URL-decoded.
pub fn parse(rule: &str) -> Result<Rule, RuleError> {
    if rule.len() > MAX_RULE_LEN {
        let cut = rule.char_indices().nth(16).map_or(rule.len(), |(i, _)| i);
        let tok = Tok {
            text: &rule[..cut],
            offset: 0,
        };
        return Err(err(
            "rule",
            tok,
            format!("at most {MAX_RULE_LEN} bytes, got {}", rule.len()),
        ));
    }
    let mut out = Rule::default();
    let mut start = 0;
    for (i, segment) in rule.split('|').enumerate() {
        if i == MAX_SEGMENTS {
            let tok = Tok {
                text: segment,
                offset: start,
            };
            return Err(err(
                "pipeline",
                tok,
                format!("at most {MAX_SEGMENTS} segments joined by |"),
            ));
        }
        parse_segment(segment, start, &mut out)?;
        start += segment.len() + 1;
    }
    Ok(out)
}

/// Settings that apply to the other operations of their segment, resolved when the segment ends.
#[derive(Default)]
struct Pending<'a> {
    pad: Option<Tok<'a>>,
    color: Option<[u8; 3]>,
    gravity: Option<Gravity>,
    dx: Option<u32>,
    dy: Option<u32>,
}

fn parse_segment(segment: &str, base: usize, out: &mut Rule) -> Result<(), RuleError> {
    let mut toks = Vec::new();
    let mut offset = base;
    for text in segment.split('/') {
        toks.push(Tok { text, offset });
        offset += text.len() + 1;
    }
    // One trailing slash is tolerated (`imageMogr2/format/heif/`), as URLs often carry one.
    if toks.len() > 1 && toks.last().is_some_and(|t| t.text.is_empty()) {
        toks.pop();
    }
    let head = toks[0];
    if head.text != "imageMogr2" {
        let expected = if head.text.is_empty() {
            "imageMogr2 (an empty segment: check for a doubled or trailing |)"
        } else {
            "imageMogr2 (the only processor mogr implements)"
        };
        return Err(err("processor", head, expected));
    }
    if toks.len() == 1 {
        return Err(err(
            "imageMogr2",
            head,
            "at least one operation after imageMogr2/",
        ));
    }

    let first_op = out.ops.len();
    let mut pending = Pending::default();
    let mut it = toks[1..].iter().copied();
    while let Some(name) = it.next() {
        let mut arg = |what: &str| -> Result<Tok<'_>, RuleError> {
            it.next().ok_or_else(|| {
                let at = Tok {
                    text: "",
                    offset: name.offset + name.text.len(),
                };
                err(name.text, at, format!("{what} after /{}/", name.text))
            })
        };
        match name.text {
            "thumbnail" => {
                let a = arg("<scale>")?;
                out.ops.push(Op::Thumbnail(parse_scale(a)?));
            }
            "pad" => {
                let a = arg("0 or 1")?;
                if flag(a, "pad")? {
                    pending.pad = Some(name);
                }
            }
            "color" => pending.color = Some(parse_color(arg("<url-safe base64 of #RRGGBB>")?)?),
            "cut" => {
                let a = arg("<w>x<h>x<dx>x<dy>")?;
                let parts: Vec<&str> = a.text.split('x').collect();
                let bad = || err("cut", a, "<w>x<h>x<dx>x<dy> (four whole numbers)");
                if parts.len() != 4 {
                    return Err(bad());
                }
                let n = |s: &str, lo: u32, hi: u32| num(s, lo, hi).ok_or_else(bad);
                out.ops.push(Op::Cut {
                    width: n(parts[0], 1, MAX_SIDE * 4)?,
                    height: n(parts[1], 1, MAX_SIDE * 4)?,
                    x: n(parts[2], 0, 100_000)?,
                    y: n(parts[3], 0, 100_000)?,
                });
            }
            "crop" => {
                let a = arg("<W>x, x<H> or <W>x<H>")?;
                let (w, h) =
                    sides(a.text).ok_or_else(|| err("crop", a, "<W>x, x<H> or <W>x<H>"))?;
                if w.is_none() && h.is_none() {
                    return Err(err("crop", a, "<W>x, x<H> or <W>x<H>"));
                }
                out.ops.push(Op::Crop {
                    width: w,
                    height: h,
                    gravity: Gravity::default(),
                    dx: 0,
                    dy: 0,
                });
            }
            "gravity" => pending.gravity = Some(parse_gravity(arg("<gravity>")?)?),
            "dx" => pending.dx = Some(number(arg("<n>")?, "dx", 0, 100_000)?),
            "dy" => pending.dy = Some(number(arg("<n>")?, "dy", 0, 100_000)?),
            "iradius" => out.ops.push(Op::IRadius(number(
                arg("<radius>")?,
                "iradius",
                1,
                100_000,
            )?)),
            "rradius" => out.ops.push(Op::RRadius(number(
                arg("<radius>")?,
                "rradius",
                1,
                100_000,
            )?)),
            "rotate" => out.ops.push(Op::Rotate(
                number(arg("<degrees>")?, "rotate", 0, 360)? % 360,
            )),
            "auto-orient" => out.ops.push(Op::AutoOrient),
            "flip" => {
                let a = arg("vertical or horizontal")?;
                out.ops.push(Op::Flip(match a.text {
                    "vertical" => Flip::Vertical,
                    "horizontal" => Flip::Horizontal,
                    _ => return Err(err("flip", a, "vertical or horizontal")),
                }));
            }
            "format" => {
                let a = arg("<format>")?;
                // a later format in the pipeline replaces an earlier one, auto included
                (out.format, out.format_auto) = match a.text {
                    "auto" => (None, true),
                    _ => (Some(parse_format(a)?), false),
                };
            }
            "quality" => {
                let a = arg("<0-100> or <0-100>!")?;
                let (digits, forced) = match a.text.strip_suffix('!') {
                    Some(d) => (d, true),
                    None => (a.text, false),
                };
                let q =
                    num(digits, 0, 100).ok_or_else(|| err("quality", a, "<0-100> or <0-100>!"))?;
                out.quality = Some(Quality::Absolute { q: q as u8, forced });
            }
            "rquality" => {
                out.quality = Some(Quality::Relative(
                    number(arg("<0-100>")?, "rquality", 0, 100)? as u8,
                ))
            }
            "lquality" => {
                out.quality = Some(Quality::Floor(
                    number(arg("<0-100>")?, "lquality", 0, 100)? as u8
                ))
            }
            "interlace" => out.interlace = flag(arg("0 or 1")?, "interlace")?,
            "strip" => out.strip = true,
            "blur" => {
                let a = arg("<radius>x<sigma>")?;
                let bad = || err("blur", a, "<radius>x<sigma>, radius 1-50 and sigma 0-50");
                let (r, s) = a.text.split_once('x').ok_or_else(bad)?;
                let radius = num(r, 1, 50).ok_or_else(bad)?;
                let sigma = num(s, 0, 50).ok_or_else(bad)?;
                out.ops.push(Op::Blur { radius, sigma });
            }
            "sharpen" => out
                .ops
                .push(Op::Sharpen(number(arg("<10-300>")?, "sharpen", 10, 300)?)),
            "size-limit" => out.size_limit = Some(parse_size_limit(arg("<n>k or <n>k!")?)?),
            "ignore-error" => out.ignore_error = flag(arg("0 or 1")?, "ignore-error")?,
            "profile" => {
                let a = arg("download or persistent")?;
                out.profile = Some(match a.text {
                    "download" => Profile::Download,
                    "persistent" => Profile::Persistent,
                    _ => return Err(err("profile", a, "download or persistent")),
                });
            }
            "" => {
                return Err(err(
                    "operation",
                    name,
                    format!("{OPERATIONS} (found an empty token: check for //)"),
                ))
            }
            _ => return Err(err("operation", name, OPERATIONS)),
        }
    }
    finish_segment(&mut out.ops, first_op, pending)
}

fn finish_segment(ops: &mut Vec<Op>, first: usize, p: Pending<'_>) -> Result<(), RuleError> {
    for op in &mut ops[first..] {
        if let Op::Crop {
            gravity, dx, dy, ..
        } = op
        {
            *gravity = p.gravity.unwrap_or_default();
            *dx = p.dx.unwrap_or(0);
            *dy = p.dy.unwrap_or(0);
        }
    }
    if let Some(tok) = p.pad {
        let bounded = ops[first..]
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, op)| match *op {
                Op::Thumbnail(
                    Scale::Fit { width, height }
                    | Scale::Shrink { width, height }
                    | Scale::Enlarge { width, height },
                ) => Some((first + i, width, height)),
                _ => None,
            });
        let Some((i, width, height)) = bounded else {
            return Err(err(
                "pad",
                tok,
                "a /thumbnail/<W>x<H> in the same segment to pad to",
            ));
        };
        let color = p.color.unwrap_or([255, 255, 255]);
        ops.insert(
            i + 1,
            Op::Pad {
                width,
                height,
                color,
            },
        );
    }
    Ok(())
}

/// A whole number within `lo..=hi`, digits only (no sign, no spaces).
fn num(s: &str, lo: u32, hi: u32) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>()
        .ok()
        .filter(|n| (lo as u64..=hi as u64).contains(n))
        .map(|n| n as u32)
}

fn number(tok: Tok<'_>, context: &str, lo: u32, hi: u32) -> Result<u32, RuleError> {
    num(tok.text, lo, hi)
        .ok_or_else(|| err(context, tok, format!("a whole number from {lo} to {hi}")))
}

fn flag(tok: Tok<'_>, context: &str) -> Result<bool, RuleError> {
    match tok.text {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(err(context, tok, "0 or 1")),
    }
}

/// `<W>x<H>`, `<W>x`, `x<H>` -> sides within 1..=MAX_SIDE; `None` if the shape or a number is wrong.
fn sides(s: &str) -> Option<(Option<u32>, Option<u32>)> {
    let (w, h) = s.split_once('x')?;
    let side = |t: &str| {
        if t.is_empty() {
            Some(None)
        } else {
            num(t, 1, MAX_SIDE).map(Some)
        }
    };
    Some((side(w)?, side(h)?))
}

fn parse_scale(tok: Tok<'_>) -> Result<Scale, RuleError> {
    const EXPECTED: &str =
        "<W>x<H> (also <W>x, x<H>, <W>x<H>>, <W>x<H><, <W>x<H>!, !<W>x<H>r, !<s>p, !<s>px, \
!x<s>p or <Area>@; sides 1-9999, percentages 1-1000)";
    let bad = || err("thumbnail", tok, EXPECTED);
    let s = tok.text;
    let pct = |t: &str| num(t, 1, 1000).ok_or_else(bad);
    let both = |t: &str| match sides(t) {
        Some((Some(w), Some(h))) => Ok((w, h)),
        _ => Err(bad()),
    };
    if let Some(rest) = s.strip_prefix('!') {
        if let Some(r) = rest.strip_suffix('r') {
            let (width, height) = both(r)?;
            return Ok(Scale::Cover { width, height });
        }
        if let Some(p) = rest.strip_prefix('x').and_then(|r| r.strip_suffix('p')) {
            return Ok(Scale::HeightPercent(pct(p)?));
        }
        if let Some(p) = rest.strip_suffix("px") {
            return Ok(Scale::WidthPercent(pct(p)?));
        }
        if let Some(p) = rest.strip_suffix('p') {
            return Ok(Scale::Percent(pct(p)?));
        }
        return Err(bad());
    }
    if let Some(a) = s.strip_suffix('@') {
        let area = if a.is_empty() || a.len() > 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            a.parse::<u64>()
                .ok()
                .filter(|n| (1..=(MAX_SIDE as u64).pow(2)).contains(n))
        };
        return area.map(Scale::Area).ok_or_else(bad);
    }
    if let Some(r) = s.strip_suffix('!') {
        let (width, height) = both(r)?;
        return Ok(Scale::Exact { width, height });
    }
    if let Some(r) = s.strip_suffix('>') {
        let (width, height) = both(r)?;
        return Ok(Scale::Shrink { width, height });
    }
    if let Some(r) = s.strip_suffix('<') {
        let (width, height) = both(r)?;
        return Ok(Scale::Enlarge { width, height });
    }
    match sides(s) {
        Some((Some(width), Some(height))) => Ok(Scale::Fit { width, height }),
        Some((Some(w), None)) => Ok(Scale::Width(w)),
        Some((None, Some(h))) => Ok(Scale::Height(h)),
        _ => Err(bad()),
    }
}

fn parse_gravity(tok: Tok<'_>) -> Result<Gravity, RuleError> {
    Ok(match tok.text {
        "northwest" => Gravity::NorthWest,
        "north" => Gravity::North,
        "northeast" => Gravity::NorthEast,
        "west" => Gravity::West,
        "center" => Gravity::Center,
        "east" => Gravity::East,
        "southwest" => Gravity::SouthWest,
        "south" => Gravity::South,
        "southeast" => Gravity::SouthEast,
        _ => return Err(err(
            "gravity",
            tok,
            "one of northwest, north, northeast, west, center, east, southwest, south, southeast",
        )),
    })
}

fn parse_format(tok: Tok<'_>) -> Result<Format, RuleError> {
    match tok.text.to_ascii_lowercase().as_str() {
        "tpg" => Err(err(
            "format",
            tok,
            "an open format: TPG is Tencent's closed format with no public specification and no open \
encoder, so mogr cannot produce it; use format/avif or format/heif for the same compression",
        )),
        name => Format::from_name(name).ok_or_else(|| {
            err("format", tok, "one of jpg, jpeg, png, gif, webp, bmp, tiff, heif, heic, avif, auto")
        }),
    }
}

fn parse_color(tok: Tok<'_>) -> Result<[u8; 3], RuleError> {
    let bad = || {
        err(
            "color",
            tok,
            "url-safe base64 of #RRGGBB (e.g. I0ZGRkZGRg for #FFFFFF)",
        )
    };
    let raw = tok.text.trim_end_matches('=');
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| bad())?;
    let text = std::str::from_utf8(&decoded).map_err(|_| bad())?;
    let hex = text
        .strip_prefix('#')
        .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let hex = hex.ok_or_else(bad)?;
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
    Ok([byte(0)?, byte(2)?, byte(4)?])
}

fn parse_size_limit(tok: Tok<'_>) -> Result<SizeLimit, RuleError> {
    let bad = || {
        err(
            "size-limit",
            tok,
            "<n>k or <n>m, optionally followed by ! (n from 1 to 100000)",
        )
    };
    let (body, keep) = match tok.text.strip_suffix('!') {
        Some(b) => (b, true),
        None => (tok.text, false),
    };
    let (digits, unit) = if let Some(d) = body.strip_suffix('k') {
        (d, 1024u64)
    } else if let Some(d) = body.strip_suffix('m') {
        (d, 1024 * 1024)
    } else {
        return Err(bad());
    };
    let n = num(digits, 1, 100_000).ok_or_else(bad)?;
    Ok(SizeLimit {
        bytes: n as u64 * unit,
        keep_smaller_original: keep,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
            parse("imageView2/1/w/100").unwrap_err().context,
            "processor"
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
}
