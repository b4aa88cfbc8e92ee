//! imageMogr2 parser. Every input gives a [`Rule`] or a [`RuleError`] naming the token, its byte offset in
//! the rule string and what was expected there; it never panics (see the property tests in `tests.rs`).

use super::token::{
    err, flag, num, number, parse_color, parse_format, parse_gravity, parse_scale,
    parse_size_limit, sides, Tok, MAX_SIDE,
};
use super::{Flip, Gravity, Op, Quality, Rule, Scale};

pub use super::token::RuleError;

/// At most this many `|` segments (COS documents 10).
pub const MAX_SEGMENTS: usize = 10;
/// Longer rules are refused before they are parsed.
pub const MAX_RULE_LEN: usize = 4096;
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
