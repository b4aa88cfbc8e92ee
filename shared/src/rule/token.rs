//! Tokens of a rule and the values they spell (numbers, sizes, gravities, formats, colours, byte sizes),
//! each with a [`RuleError`] that names the token, its offset and what was expected.

use super::{Gravity, Scale, SizeLimit};
use crate::codec::Format;
use base64::Engine;
use std::fmt;

/// The largest width or height a rule may ask for (COS's output limit).
pub(super) const MAX_SIDE: u32 = 9_999;

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
pub(super) struct Tok<'a> {
    pub text: &'a str,
    pub offset: usize,
}

pub(super) fn err(context: &str, tok: Tok<'_>, expected: impl Into<String>) -> RuleError {
    RuleError {
        context: context.to_string(),
        token: tok.text.to_string(),
        offset: tok.offset,
        expected: expected.into(),
    }
}

/// A whole number within `lo..=hi`, digits only (no sign, no spaces).
pub(super) fn num(s: &str, lo: u32, hi: u32) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>()
        .ok()
        .filter(|n| (lo as u64..=hi as u64).contains(n))
        .map(|n| n as u32)
}

pub(super) fn number(tok: Tok<'_>, context: &str, lo: u32, hi: u32) -> Result<u32, RuleError> {
    num(tok.text, lo, hi)
        .ok_or_else(|| err(context, tok, format!("a whole number from {lo} to {hi}")))
}

/// A whole number within `lo..=hi`, with an optional leading `-` (`bright/-30`).
pub(super) fn signed(tok: Tok<'_>, context: &str, lo: i32, hi: i32) -> Result<i32, RuleError> {
    let (negative, digits) = match tok.text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, tok.text),
    };
    num(digits, 0, lo.unsigned_abs().max(hi.unsigned_abs()))
        .map(|n| if negative { -(n as i32) } else { n as i32 })
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| err(context, tok, format!("a whole number from {lo} to {hi}")))
}

pub(super) fn flag(tok: Tok<'_>, context: &str) -> Result<bool, RuleError> {
    match tok.text {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(err(context, tok, "0 or 1")),
    }
}

/// `<W>x<H>`, `<W>x`, `x<H>` -> sides within 1..=MAX_SIDE; `None` if the shape or a number is wrong.
pub(super) fn sides(s: &str) -> Option<(Option<u32>, Option<u32>)> {
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

pub(super) fn parse_scale(tok: Tok<'_>) -> Result<Scale, RuleError> {
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

pub(super) fn parse_gravity(tok: Tok<'_>) -> Result<Gravity, RuleError> {
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

pub(super) fn parse_format(tok: Tok<'_>) -> Result<Format, RuleError> {
    match tok.text.to_ascii_lowercase().as_str() {
        "tpg" => Err(err(
            "format",
            tok,
            "an open format: TPG is Tencent's closed format with no public specification and no open \
encoder, so mogr cannot produce it; use format/avif or format/heif for the same compression",
        )),
        name => Format::from_name(name).ok_or_else(|| {
            err("format", tok, "one of jpg, jpeg, yjpeg, png, gif, webp, bmp, tiff, heif, heic, avif, auto")
        }),
    }
}

pub(super) fn parse_color(tok: Tok<'_>) -> Result<[u8; 3], RuleError> {
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

pub(super) fn parse_size_limit(tok: Tok<'_>) -> Result<SizeLimit, RuleError> {
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
