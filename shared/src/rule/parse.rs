//! imageMogr2 parser. Every input gives a [`Rule`] or a [`RuleError`] naming the token, its byte offset in
//! the rule string and what was expected there; it never panics (see the property tests in `tests.rs`).

use super::token::{
    err, flag, num, number, parse_color, parse_format, parse_gravity, parse_scale,
    parse_size_limit, sides, signed, Tok, MAX_SIDE,
};
use super::{Flip, Gravity, ImageMark, Mark, Op, Quality, Rule, Scale, TextMark, Watermark};
use crate::codec::Format;
use base64::Engine;

pub use super::token::RuleError;

/// At most this many `|` segments (COS documents 10).
pub const MAX_SEGMENTS: usize = 10;
/// Longer rules are refused before they are parsed.
pub const MAX_RULE_LEN: usize = 4096;
const OPERATIONS: &str = "one of thumbnail, pad, color, cut, crop, gravity, dx, dy, iradius, rradius, rotate, \
auto-orient, flip, bright, contrast, grayscale, scrop, frame, cgif, format, quality, rquality, lquality, interlace, strip, \
blur, sharpen, size-limit, ignore-error, profile";

/// Parses a whole rule (`imageMogr2/...|imageView2/...`). The string must already be URL-decoded.
///
/// With `ignore-error/1` anywhere in the rule, a value out of its limits (`thumbnail/20000x`) is not a
/// parse error: the rule parses to one that answers the original (COS: "returns the original when
/// processing fails for size or parameter limits"), its [`Rule::refused`] saying why. An unknown
/// operation or processor is still an error.
pub fn parse(rule: &str) -> Result<Rule, RuleError> {
    parse_all(rule).or_else(|e| {
        let structural = [
            "rule",
            "pipeline",
            "processor",
            "operation",
            "imageMogr2",
            "imageSlim",
            "watermark",
        ];
        if asks_ignore_error(rule) && !structural.contains(&e.context.as_str()) {
            Ok(Rule {
                ignore_error: true,
                refused: Some(e.to_string()),
                ..Rule::default()
            })
        } else {
            Err(e)
        }
    })
}

/// Whether some segment of `rule` holds `/ignore-error/1`.
fn asks_ignore_error(rule: &str) -> bool {
    rule.split('|').any(|segment| {
        let toks: Vec<&str> = segment.split('/').collect();
        toks.windows(2).any(|w| w == ["ignore-error", "1"])
    })
}

fn parse_all(rule: &str) -> Result<Rule, RuleError> {
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
    if head.text == "imageView2" {
        return parse_view2(&toks, out);
    }
    if head.text == "imageSlim" {
        if let Some(&extra) = toks.get(1) {
            return Err(err(
                "imageSlim",
                extra,
                "nothing after imageSlim (it takes no parameters)",
            ));
        }
        out.slim = true;
        return Ok(());
    }
    if head.text == "watermark" {
        return parse_watermark(&toks, out);
    }
    if head.text != "imageMogr2" {
        let expected = if head.text.is_empty() {
            "imageMogr2, imageView2, imageSlim or watermark (an empty segment: check for a doubled or \
             trailing |)"
        } else {
            "imageMogr2, imageView2, imageSlim or watermark (the processors mogr implements)"
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
            "bright" | "contrast" => {
                let v = signed(arg("<-100..100>")?, name.text, -100, 100)?;
                if v != 0 {
                    out.ops.push(if name.text == "bright" {
                        Op::Bright(v)
                    } else {
                        Op::Contrast(v)
                    });
                }
            }
            "grayscale" => {
                if flag(arg("0 or 1")?, "grayscale")? {
                    out.ops.push(Op::Grayscale);
                }
            }
            "scrop" => {
                let a = arg("<W>x<H>")?;
                let Some((Some(width), Some(height))) = sides(a.text) else {
                    return Err(err("scrop", a, "<W>x<H> (both sides, 1-9999)"));
                };
                out.ops.push(Op::Scrop { width, height });
            }
            "frame" => out
                .ops
                .push(Op::Frame(number(arg("<n>")?, "frame", 1, 100_000)?)),
            "cgif" => out
                .ops
                .push(Op::Cgif(number(arg("<1-100>")?, "cgif", 1, 100)?)),
            "format" | "quality" | "interlace" | "ignore-error" => {
                setting(name.text, arg(setting_arg(name.text))?, out)?;
                // `quality/auto/<score>`: a number after `auto` is its target score
                let next = it.clone().next();
                if let (Some(Quality::Auto(_)), Some(t)) = (out.quality, next) {
                    if name.text == "quality"
                        && !t.text.is_empty()
                        && t.text.bytes().all(|b| b.is_ascii_digit())
                    {
                        it.next();
                        let score = num(t.text, 1, 100)
                            .ok_or_else(|| err("quality", t, "auto/<score 1-100>"))?;
                        out.quality = Some(Quality::Auto(score as u8));
                    }
                }
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
            "profile" => {
                let a = arg("download or persistent")?;
                out.profile = Some(
                    a.text
                        .parse()
                        .map_err(|_| err("profile", a, "download or persistent"))?,
                );
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

/// What follows an output setting's name.
fn setting_arg(name: &str) -> &'static str {
    match name {
        "format" => "<format>",
        "quality" => "<0-100>, <0-100>! or auto[/<score 1-100>]",
        _ => "0 or 1",
    }
}

/// The output settings imageMogr2 and imageView2 share: `format`, `quality` (imageView2's `q`),
/// `interlace`, `ignore-error`.
fn setting(name: &str, a: Tok<'_>, out: &mut Rule) -> Result<(), RuleError> {
    match name {
        "format" => {
            // a later format in the pipeline replaces an earlier one, auto and yjpeg included
            (out.format, out.format_auto, out.yjpeg) = match a.text {
                "auto" => (None, true, false),
                "yjpeg" => (Some(Format::Jpeg), false, true),
                _ => (Some(parse_format(a)?), false, false),
            };
        }
        "quality" if a.text == "auto" => out.quality = Some(Quality::Auto(super::AUTO_SCORE)),
        "quality" => {
            let (digits, forced) = match a.text.strip_suffix('!') {
                Some(d) => (d, true),
                None => (a.text, false),
            };
            let q = num(digits, 0, 100).ok_or_else(|| err("quality", a, setting_arg(name)))?;
            out.quality = Some(Quality::Absolute { q: q as u8, forced });
        }
        "interlace" => out.interlace = flag(a, "interlace")?,
        _ => out.ignore_error = flag(a, "ignore-error")?,
    }
    Ok(())
}

/// `imageView2/<mode>/w/<W>/h/<H>[/format/<f>][/q/<q>|/rq/<q>|/lq/<q>][/interlace/<0|1>][/ignore-error/1]`, COS's
/// thumbnail templates, as the operations imageMogr2 has. Modes 0, 4 and 5 size the long and the short
/// edge (`w` and `h`), whichever way the image lies; 1–3 the width and the height:
///
/// - 0: long edge at most `w`, short edge at most `h` (one given: that edge alone);
/// - 1: cover `w`×`h`, then crop its centre to `w`×`h` (one given: a square);
/// - 2: fit inside `w`×`h` (one given: that side alone);
/// - 3: cover `w`×`h`, no crop (one given: the other the same);
/// - 4: long edge at least `w`, short edge at least `h` (one given: the other the same);
/// - 5: as 4, then crop the centre to `w`×`h` along the long and short edges (one given: a square).
fn parse_view2(toks: &[Tok<'_>], out: &mut Rule) -> Result<(), RuleError> {
    let head = toks[0];
    let Some(&first) = toks.get(1) else {
        let at = Tok {
            text: "",
            offset: head.offset + head.text.len(),
        };
        return Err(err(
            "imageView2",
            at,
            "a mode from 0 to 5, or format/q/interlace, after imageView2/",
        ));
    };
    // The mode comes first, and only sizes need one: `imageView2/format/png` converts alone.
    let (mode, rest) = if !first.text.is_empty() && first.text.bytes().all(|b| b.is_ascii_digit()) {
        (Some(number(first, "imageView2 mode", 0, 5)?), &toks[2..])
    } else {
        (None, &toks[1..])
    };
    let (mut w, mut h) = (None, None);
    let mut it = rest.iter().copied();
    while let Some(name) = it.next() {
        let a = it.next().ok_or_else(|| {
            let at = Tok {
                text: "",
                offset: name.offset + name.text.len(),
            };
            err("imageView2", at, format!("a value after /{}/", name.text))
        })?;
        match name.text {
            "w" => w = Some(number(a, "w", 1, MAX_SIDE)?),
            "h" => h = Some(number(a, "h", 1, MAX_SIDE)?),
            "q" => setting("quality", a, out)?,
            "rq" => out.quality = Some(Quality::Relative(number(a, "rq", 0, 100)? as u8)),
            "lq" => out.quality = Some(Quality::Floor(number(a, "lq", 0, 100)? as u8)),
            "format" | "interlace" | "ignore-error" => setting(name.text, a, out)?,
            _ => return Err(err(
                "operation",
                name,
                "one of w, h, format, q, rq, lq, interlace, ignore-error (imageView2's parameters)",
            )),
        }
    }
    let mode = match (mode, w, h) {
        (None, None, None) => return Ok(()),
        (None, _, _) => {
            return Err(err(
                "imageView2",
                first,
                "a mode from 0 to 5 before w and h (imageView2/<mode>/w/<W>/h/<H>)",
            ))
        }
        (Some(_), None, None) => {
            return Err(err("imageView2", first, "w, h or both after the mode"))
        }
        (Some(mode), _, _) => mode,
    };
    let both = |w: Option<u32>, h: Option<u32>| {
        let (w, h) = (w.or(h).unwrap_or(1), h.or(w).unwrap_or(1));
        (w, h)
    };
    let centre = |width, height| Op::Crop {
        width: Some(width),
        height: Some(height),
        gravity: Gravity::Center,
        dx: 0,
        dy: 0,
    };
    match mode {
        0 => out.ops.push(Op::Thumbnail(Scale::Edges {
            long: w,
            short: h,
            cover: false,
        })),
        1 => {
            let (width, height) = both(w, h);
            out.ops.push(Op::Thumbnail(Scale::Cover { width, height }));
            out.ops.push(centre(width, height));
        }
        2 => out.ops.push(Op::Thumbnail(match (w, h) {
            (Some(width), Some(height)) => Scale::Fit { width, height },
            (Some(width), None) => Scale::Width(width),
            _ => Scale::Height(h.unwrap_or(1)),
        })),
        3 => {
            let (width, height) = both(w, h);
            out.ops.push(Op::Thumbnail(Scale::Cover { width, height }));
        }
        _ => {
            let (long, short) = both(w, h);
            out.ops.push(Op::Thumbnail(Scale::Edges {
                long: Some(long),
                short: Some(short),
                cover: true,
            }));
            if mode == 5 {
                out.ops.push(Op::CropEdges { long, short });
            }
        }
    }
    Ok(())
}

/// The longest watermark text, in characters.
pub const MAX_WATERMARK_TEXT: usize = 100;

/// `watermark/1/image/<b64 URL>[/gravity/<g>][/dx/<n>][/dy/<n>][/dissolve/<1-100>][/batch/1][/degree/<0-360>]`
/// and `watermark/2/text/<b64>[/font/<b64>][/fontsize/<pt>][/fill/<b64 #RRGGBB>][/shadow/<0-100>]` with the
/// same placement parameters. The image's URL is checked and read by the service (`service::marks`).
fn parse_watermark(toks: &[Tok<'_>], out: &mut Rule) -> Result<(), RuleError> {
    let head = toks[0];
    let end = |t: Tok<'_>| Tok {
        text: "",
        offset: t.offset + t.text.len(),
    };
    let kind = toks.get(1).copied().ok_or_else(|| {
        err(
            "watermark",
            end(head),
            "1 (an image) or 2 (text) after watermark/",
        )
    })?;
    let image = match kind.text {
        "1" => true,
        "2" => false,
        "3" => return Err(err(
            "watermark",
            kind,
            "1 (an image) or 2 (text): blind watermarks (watermark/3) are not implemented by mogr",
        )),
        _ => return Err(err("watermark", kind, "1 (an image) or 2 (text)")),
    };
    let parameters = if image {
        "one of image, gravity, dx, dy, dissolve, batch, degree (watermark/1's parameters)"
    } else {
        "one of text, font, fontsize, fill, shadow, gravity, dx, dy, dissolve, batch, degree \
         (watermark/2's parameters)"
    };
    let (mut url, mut text) = (None, None);
    let mut font = None;
    let (mut size, mut fill, mut shadow) = (13, [0x3d, 0x3d, 0x3d], 0);
    let mut wm = Watermark {
        mark: Mark::Text(TextMark::default()), // replaced below, once the parameters are read
        gravity: Gravity::SouthEast,
        dx: 0,
        dy: 0,
        dissolve: if image { 100 } else { 90 },
        batch: false,
        degree: 0,
    };
    let mut it = toks[2..].iter().copied();
    while let Some(name) = it.next() {
        let a = it.next().ok_or_else(|| {
            err(
                "watermark",
                end(name),
                format!("a value after /{}/", name.text),
            )
        })?;
        match (image, name.text) {
            (true, "image") => url = Some((a, base64_text(a, "image", "the image's URL")?)),
            (false, "text") => text = Some((a, base64_text(a, "text", "the text")?)),
            (false, "font") => font = Some(base64_text(a, "font", "a font name")?),
            (false, "fontsize") => size = number(a, "fontsize", 1, 1000)?,
            (false, "fill") => fill = parse_color(a)?,
            (false, "shadow") => shadow = number(a, "shadow", 0, 100)? as u8,
            (_, "gravity") => wm.gravity = parse_gravity(a)?,
            (_, "dx") => wm.dx = number(a, "dx", 0, 100_000)?,
            (_, "dy") => wm.dy = number(a, "dy", 0, 100_000)?,
            (_, "dissolve") => wm.dissolve = number(a, "dissolve", 1, 100)? as u8,
            (_, "batch") => wm.batch = flag(a, "batch")?,
            (_, "degree") => wm.degree = number(a, "degree", 0, 360)? % 360,
            _ => return Err(err("operation", name, parameters)),
        }
    }
    wm.mark = if image {
        let (tok, url) = url.ok_or_else(|| {
            err(
                "watermark",
                kind,
                "/image/<url-safe base64 of the image's URL> after watermark/1",
            )
        })?;
        Mark::Image(image_mark(tok, url)?)
    } else {
        let (tok, text) = text.ok_or_else(|| {
            err(
                "watermark",
                kind,
                "/text/<url-safe base64 of the text> after watermark/2",
            )
        })?;
        let chars = text.chars().count();
        if chars == 0 || chars > MAX_WATERMARK_TEXT || text.chars().any(char::is_control) {
            return Err(err(
                "text",
                tok,
                format!("1 to {MAX_WATERMARK_TEXT} characters on one line, no control characters"),
            ));
        }
        Mark::Text(TextMark {
            text,
            font: font.unwrap_or_else(|| super::DEFAULT_FONT.to_string()),
            size,
            fill,
            shadow,
        })
    };
    out.ops.push(Op::Watermark(Box::new(wm)));
    Ok(())
}

/// The text a url-safe base64 token spells (padding optional).
fn base64_text(tok: Tok<'_>, context: &str, what: &str) -> Result<String, RuleError> {
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tok.text.trim_end_matches('='))
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    decoded.ok_or_else(|| {
        err(
            context,
            tok,
            format!("the url-safe base64 of {what} (UTF-8; - and _ for + and /)"),
        )
    })
}

/// A watermark image's URL, `http[s]://<host>/<key>[?imageMogr2/...]`: the rule in its query gives the
/// operations run on the mark (scaling it, most often); a mark is not watermarked itself.
fn image_mark(tok: Tok<'_>, url: String) -> Result<ImageMark, RuleError> {
    let bad = |why: &str| err("image", tok, why);
    let (location, query) = match url.split_once('?') {
        Some((l, q)) => (l, Some(q)),
        None => (url.as_str(), None),
    };
    let rest = location
        .strip_prefix("http://")
        .or_else(|| location.strip_prefix("https://"))
        .unwrap_or(location);
    if !rest.contains('/') || rest.ends_with('/') || rest.chars().any(char::is_control) {
        return Err(bad(
            "the url-safe base64 of an image's URL in this bucket: http://<bucket host>/<key>",
        ));
    }
    let ops = match query {
        None | Some("") => Vec::new(),
        Some(q) => {
            let q = percent_encoding::percent_decode_str(q).decode_utf8_lossy();
            let rule = parse(&q).map_err(|e| {
                bad(&format!(
                    "an image URL whose query is an imageMogr2 rule (there: {e})"
                ))
            })?;
            if rule.ops.iter().any(|o| matches!(o, Op::Watermark(_))) {
                return Err(bad("an image URL whose rule adds no watermark of its own"));
            }
            rule.ops
        }
    };
    Ok(ImageMark {
        url: location.to_string(),
        ops,
        object: None,
    })
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

#[cfg(test)]
mod tests;
