//! Content types: what a stored type may be, what a browser shows without running it, and a body's
//! type by its magic bytes. Plain text in, plain answers out.

use crate::codec::Format;
use crate::{Error, Result};

/// Whether a browser shows `content_type` without running anything: exactly one raster image type,
/// `image/<subtype>` and its parameters (SVG and other `+xml` types hold scripts). A value that lists
/// several types (`image/png, text/html`: browsers take the last one) is not one.
pub(super) fn renders_inertly(content_type: &str) -> bool {
    media_type(content_type).is_some_and(|(kind, sub)| {
        kind == "image" && !sub.starts_with("svg") && !sub.ends_with("+xml")
    })
}

/// The type and subtype of a single media type (`type/subtype[; name=value]...`, RFC 9110 tokens), in
/// lower case; `None` for anything else (a list, a missing subtype, stray characters).
fn media_type(value: &str) -> Option<(String, String)> {
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
    };
    let mut parts = value.split(';');
    let (kind, sub) = parts.next()?.trim().split_once('/')?;
    let params_ok = parts.all(|p| {
        let p = p.trim();
        p.is_empty()
            || p.split_once('=').is_some_and(|(k, v)| {
                token(k.trim())
                    && (token(v)
                        || (v.len() >= 2
                            && v.starts_with('"')
                            && v.ends_with('"')
                            && !v[1..v.len() - 1].contains(['"', ','])))
            })
    });
    (token(kind) && token(sub) && params_ok)
        .then(|| (kind.to_ascii_lowercase(), sub.to_ascii_lowercase()))
}

/// A `Content-Type` given to store: one media type, or a 400 saying so (what is stored is served back).
pub(super) fn check_content_type(value: &str) -> Result<()> {
    match media_type(value) {
        Some(_) => Ok(()),
        None => Err(Error::invalid(format!(
            "Content-Type {:?} is not one media type (type/subtype[; name=value]); send one, e.g. image/jpeg",
            value.chars().take(100).collect::<String>()
        ))),
    }
}

/// The content type of a body by its magic bytes.
pub(super) fn guess_type(body: &[u8]) -> String {
    Format::sniff(body)
        .map(|f| f.mime().to_string())
        .unwrap_or_else(|_| "application/octet-stream".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_raster_image_type_renders_inertly() {
        for inert in [
            "image/png",
            "IMAGE/JPEG; charset=x",
            "image/webp;q=\"a b\"",
            "image/avif",
        ] {
            assert!(renders_inertly(inert), "{inert}");
            assert!(check_content_type(inert).is_ok(), "{inert}");
        }
        for active in [
            "image/png, text/html",
            "image/png;a=b, text/html",
            "image/png;a=\"b,\", text/html",
            "image/svg+xml",
            "image/foo+xml",
            "text/html",
            "image/",
            "image",
            "image/png html",
            "",
        ] {
            assert!(!renders_inertly(active), "{active}");
        }
        assert!(check_content_type("image/png, text/html").is_err());
        assert!(check_content_type("text/html; charset=utf-8").is_ok());
    }
}
