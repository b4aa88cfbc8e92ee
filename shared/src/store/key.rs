//! Object keys: which keys are valid, and how a key is written in a URL path, decoded from one, and
//! decoded from an S3 event.

use crate::{Error, Result};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// What is wrong with `key`, if anything: empty, over 1024 bytes, control characters or a backslash,
/// an empty, `.` or `..` segment, or under mogr's reserved `.mogr` prefix.
pub fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("it is empty");
    }
    if key.len() > 1024 {
        return Some("it is longer than 1024 bytes");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return Some("it contains control characters or a backslash");
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Some("it has an empty, . or .. path segment");
    }
    if key
        .split('/')
        .next()
        .is_some_and(|first| first.eq_ignore_ascii_case(".mogr"))
    {
        // any case: on a case-insensitive file system `.MOGR/` is `.mogr/`
        return Some("keys under .mogr/ are reserved for mogr's own bookkeeping");
    }
    None
}

/// Checks a key before it reaches a store ([`key_problem`]).
pub fn check_key(key: &str) -> Result<()> {
    match key_problem(key) {
        Some(why) => Err(Error::invalid(format!(
            "object key {key:?} is invalid: {why}"
        ))),
        None => Ok(()),
    }
}

/// Characters escaped in keys placed in URLs (`/` is kept).
const KEY_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// A key as it appears in a URL path.
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_ESCAPE).to_string()
}

/// A request path without its leading `/`, percent-decoded (`/a%20b/` -> `a b/`), not checked as a key
/// (a folder path ends with `/`).
pub fn decode_path(path: &str) -> Result<String> {
    let raw = path.strip_prefix('/').unwrap_or(path);
    Ok(percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| Error::invalid("the object key is not valid UTF-8 after percent-decoding"))?
        .into_owned())
}

/// The object key of a request path (`/a%20b.jpg` -> `a b.jpg`), checked.
pub fn key_of(path: &str) -> Result<String> {
    let key = decode_path(path)?;
    check_key(&key)?;
    Ok(key)
}

/// The object key of an S3 event record: URL-encoded, with `+` for spaces.
pub fn key_from_event(raw: &str) -> Result<String> {
    key_of(&raw.replace('+', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_encode_and_check() {
        assert_eq!(key_of("/a%20b/c+d.jpg").unwrap(), "a b/c+d.jpg");
        assert_eq!(key_of("/%E7%85%A7%E7%89%87.png").unwrap(), "照片.png");
        assert!(key_of("/a/../b.jpg").is_err());
        assert!(key_of("/.mogr/meta/x.json").is_err());
        assert!(key_of("/.MOGR/meta/x.json").is_err());
        assert!(key_of("/.Mogr").is_err());
        assert!(check_key(".mogrify/x.png").is_ok());
        assert_eq!(encode_key("a b/照片.png"), "a%20b/%E7%85%A7%E7%89%87.png");
        assert_eq!(key_from_event("a+b/c%2Bd.jpg").unwrap(), "a b/c+d.jpg");
        assert!(check_key("").is_err());
        assert!(check_key(&"k".repeat(1025)).is_err());
        assert!(check_key("a\u{1}b").is_err());
        assert!(check_key("a//b").is_err());
        assert!(check_key("ok/key.png").is_ok());
    }
}
