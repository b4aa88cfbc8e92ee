//! `format/auto`: choosing an output format from a request's `Accept` header.
//!
//! Modern formats are chosen only when the client names them (`image/avif`, `image/heif`/`image/heic`,
//! `image/webp`): `image/*` and `*/*` are sent by clients that cannot decode them too. Otherwise the input's
//! own format is kept if acceptable, then JPEG, then PNG. A format the client did not accept is never
//! chosen: when nothing fits, the answer is 406.

use crate::{Code, Error, Format, Result};

/// One media range of an Accept header with its q-value.
struct Range<'a> {
    mime: &'a str,
    q: f32,
}

fn ranges(accept: &str) -> Vec<Range<'_>> {
    accept
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';');
            let mime = it.next()?.trim();
            if mime.is_empty() {
                return None;
            }
            let q = it
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            Some(Range { mime, q })
        })
        .collect()
}

/// The q-value the most specific matching range gives `mime` (0 when none matches).
fn quality(ranges: &[Range<'_>], mime: &str, wildcards: bool) -> f32 {
    let exact = ranges.iter().find(|r| r.mime.eq_ignore_ascii_case(mime));
    let star = || {
        let family = mime.split('/').next().unwrap_or("");
        ranges
            .iter()
            .find(|r| {
                r.mime
                    .strip_suffix("/*")
                    .is_some_and(|f| f.eq_ignore_ascii_case(family))
            })
            .or_else(|| ranges.iter().find(|r| r.mime == "*/*"))
    };
    match exact {
        Some(r) => r.q,
        None if wildcards => star().map_or(0.0, |r| r.q),
        None => 0.0,
    }
}

/// The format `format/auto` answers for an input of `input` format, given the request's Accept header
/// (`None`: no header, which accepts anything).
pub fn negotiate(accept: Option<&str>, input: Format) -> Result<Format> {
    let ranges = ranges(accept.unwrap_or("*/*"));
    let named = |f: Format| match f {
        Format::Heif => {
            quality(&ranges, "image/heif", false).max(quality(&ranges, "image/heic", false)) > 0.0
        }
        f => quality(&ranges, f.mime(), false) > 0.0,
    };
    let admitted = |f: Format| quality(&ranges, f.mime(), true) > 0.0;
    // Animated inputs keep their frames only in WebP or GIF.
    let modern: &[Format] = if input.is_animated() {
        &[Format::Webp]
    } else {
        &[Format::Avif, Format::Heif, Format::Webp]
    };
    if let Some(f) = modern.iter().copied().find(|&f| named(f)) {
        return Ok(f);
    }
    [input, Format::Jpeg, Format::Png].into_iter().find(|&f| admitted(f)).ok_or_else(|| {
        Error::new(
            Code::NotAcceptable,
            format!(
                "format/auto found no format the Accept header {:?} admits among avif, heif, webp, {}, jpeg and png",
                accept.unwrap_or(""),
                input.name()
            ),
        )
    })
}

/// What [`negotiate`] answers for `accept`, for every input format: two headers of one class get the
/// same format for any input, so a result's tag holds the class, not the header (browsers send dozens
/// of Accept strings that mean the same few things).
pub fn class(accept: Option<&str>) -> String {
    Format::ALL
        .iter()
        .map(|&input| negotiate(accept, input).map_or("none", Format::name))
        .collect::<Vec<_>>()
        .join(",")
}

/// The header a CDN in front of mogr sets in place of `Accept` (`template.yaml`'s CloudFront
/// Function): the modern formats the client named, comma-separated (`avif`, `heif`, `webp`), or
/// `other`. Keyed on it, the CDN keeps a few variants of a `format/auto` answer instead of one per
/// browser's Accept string.
pub const CLASS_HEADER: &str = "x-mogr-accept";

/// The Accept header a [`CLASS_HEADER`] value stands for: the named modern formats, then anything
/// (what every browser's image requests accept). Unknown names are ignored.
pub fn from_class(value: &str) -> String {
    let mut accept: Vec<&str> = ["avif", "heif", "webp"]
        .into_iter()
        .filter(|f| value.split(',').any(|v| v.trim().eq_ignore_ascii_case(f)))
        .map(|f| match f {
            "avif" => "image/avif",
            "heif" => "image/heif",
            _ => "image/webp",
        })
        .collect();
    accept.push("*/*");
    accept.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    const SAFARI: &str = "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5";
    const OLD: &str = "image/png,image/*;q=0.8,*/*;q=0.5";

    #[test]
    fn browsers_get_what_they_name() {
        assert_eq!(negotiate(Some(CHROME), Format::Jpeg).unwrap(), Format::Avif);
        assert_eq!(negotiate(Some(SAFARI), Format::Png).unwrap(), Format::Avif);
        assert_eq!(
            negotiate(Some("image/heic,image/jpeg"), Format::Png).unwrap(),
            Format::Heif
        );
        assert_eq!(
            negotiate(Some("image/webp,*/*"), Format::Jpeg).unwrap(),
            Format::Webp
        );
        // wildcards alone never select a modern format
        assert_eq!(negotiate(Some(OLD), Format::Jpeg).unwrap(), Format::Jpeg);
        assert_eq!(negotiate(None, Format::Png).unwrap(), Format::Png);
        assert_eq!(negotiate(Some("*/*"), Format::Bmp).unwrap(), Format::Bmp);
    }

    #[test]
    fn animations_stay_animated() {
        assert_eq!(negotiate(Some(CHROME), Format::Gif).unwrap(), Format::Webp);
        assert_eq!(
            negotiate(Some("image/avif,image/gif"), Format::Gif).unwrap(),
            Format::Gif
        );
    }

    #[test]
    fn never_a_format_the_client_refused() {
        assert_eq!(
            negotiate(Some("image/avif;q=0,image/png"), Format::Jpeg).unwrap(),
            Format::Png
        );
        assert_eq!(
            negotiate(Some("image/*,image/jpeg;q=0"), Format::Jpeg).unwrap(),
            Format::Png
        );
        let e = negotiate(Some("text/html"), Format::Jpeg).unwrap_err();
        assert_eq!(e.code, Code::NotAcceptable);
        assert_eq!(
            negotiate(Some(""), Format::Jpeg).unwrap_err().code,
            Code::NotAcceptable
        );
    }

    #[test]
    fn classes_group_headers_that_choose_alike() {
        let chrome = class(Some(CHROME));
        assert_eq!(chrome, class(Some("image/avif,image/webp,*/*")));
        assert_eq!(chrome, class(Some(&from_class("avif,webp"))));
        // Safari names HEIC too, but AVIF comes first: one class with Chrome
        assert_eq!(chrome, class(Some(SAFARI)));
        assert_ne!(class(Some("image/heic,*/*")), class(Some("*/*")));
        assert_eq!(
            class(Some(SAFARI)),
            class(Some(&from_class("webp,heif,avif")))
        );
        assert_eq!(class(Some(OLD)), class(Some(&from_class("other"))));
        assert_eq!(class(None), class(Some("*/*")));
        assert_ne!(class(Some("image/png")), class(None));
        assert_eq!(from_class("AVIF, bogus"), "image/avif,*/*");
    }
}
