//! Conditional and ranged GETs as S3 answers them (RFC 9110 §13 and §14): `If-Match`,
//! `If-Unmodified-Since` (412), `If-None-Match`, `If-Modified-Since` (304), and one byte range
//! (`bytes=a-b`, `a-`, `-n`; 206, or 416 when it starts past the end) honoured unless `If-Range`
//! names another version. Several ranges, or a header that does not parse, are answered whole (200),
//! as S3 does.

use super::header_text as text;
use crate::service::cache::listed;
use http::{header, HeaderMap};
use std::time::SystemTime;

/// What a GET's preconditions decide before its body is sent.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Go on.
    Send,
    /// 304 Not Modified (GET, HEAD).
    NotModified,
    /// 412 Precondition Failed.
    Failed(&'static str),
}

/// Whether the object changed after the date in a header (HTTP dates have whole seconds).
fn modified_since(modified: SystemTime, date: &str) -> Option<bool> {
    let since = httpdate::parse_http_date(date).ok()?;
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    Some(secs(modified) > secs(since))
}

/// The preconditions of a GET or HEAD, in RFC 9110's order.
pub(super) fn preconditions(
    headers: &HeaderMap,
    etag: &str,
    modified: Option<SystemTime>,
) -> Verdict {
    if let Some(list) = text(headers, header::IF_MATCH) {
        if !listed(list, etag) {
            return Verdict::Failed("If-Match names another ETag than the object's");
        }
    } else if let (Some(date), Some(m)) = (text(headers, header::IF_UNMODIFIED_SINCE), modified) {
        if modified_since(m, date) == Some(true) {
            return Verdict::Failed("the object was modified after If-Unmodified-Since");
        }
    }
    if let Some(list) = text(headers, header::IF_NONE_MATCH) {
        if listed(list, etag) {
            return Verdict::NotModified;
        }
    } else if let (Some(date), Some(m)) = (text(headers, header::IF_MODIFIED_SINCE), modified) {
        if modified_since(m, date) == Some(false) {
            return Verdict::NotModified;
        }
    }
    Verdict::Send
}

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Range {
    /// The whole body (no range, several, one that does not parse, or `If-Range` naming another
    /// version).
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// 416: the range starts past the end.
    Unsatisfiable,
}

pub(super) fn range(
    headers: &HeaderMap,
    len: u64,
    etag: &str,
    modified: Option<SystemTime>,
) -> Range {
    let Some(spec) = text(headers, header::RANGE) else {
        return Range::Whole;
    };
    if let Some(cond) = text(headers, header::IF_RANGE) {
        let current = if cond.starts_with('"') {
            cond.trim_matches('"') == etag
        } else {
            modified.and_then(|m| modified_since(m, cond)) == Some(false)
        };
        if !current {
            return Range::Whole;
        }
    }
    let Some(one) = spec.trim().strip_prefix("bytes=") else {
        return Range::Whole;
    };
    if one.contains(',') {
        return Range::Whole;
    }
    let Some((a, b)) = one.trim().split_once('-') else {
        return Range::Whole;
    };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    match (a.trim().is_empty(), number(a), number(b)) {
        // `-n`: the last n bytes
        (true, _, Some(n)) => match n.min(len) {
            0 => Range::Unsatisfiable,
            n => Range::Part(len - n, len - 1),
        },
        (false, Some(start), _) if start >= len => Range::Unsatisfiable,
        (false, Some(start), None) if b.trim().is_empty() => Range::Part(start, len - 1),
        (false, Some(start), Some(end)) if end >= start => Range::Part(start, end.min(len - 1)),
        _ => Range::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    #[test]
    fn preconditions_answer_as_s3() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = httpdate::fmt_http_date(t);
        let later = httpdate::fmt_http_date(t + Duration::from_secs(60));
        let earlier = httpdate::fmt_http_date(t - Duration::from_secs(60));
        let m = Some(t);
        let check = |pairs: &[(&str, &str)]| preconditions(&h(pairs), "abc", m);
        assert_eq!(check(&[]), Verdict::Send);
        assert_eq!(check(&[("if-none-match", "\"abc\"")]), Verdict::NotModified);
        assert_eq!(
            check(&[("if-none-match", "\"x\", W/\"abc\"")]),
            Verdict::NotModified
        );
        assert_eq!(check(&[("if-none-match", "\"x\"")]), Verdict::Send);
        assert_eq!(check(&[("if-none-match", "*")]), Verdict::NotModified);
        assert!(matches!(
            check(&[("if-match", "\"x\"")]),
            Verdict::Failed(_)
        ));
        assert_eq!(check(&[("if-match", "\"abc\"")]), Verdict::Send);
        assert_eq!(check(&[("if-modified-since", &at)]), Verdict::NotModified);
        assert_eq!(check(&[("if-modified-since", &earlier)]), Verdict::Send);
        assert_eq!(
            check(&[("if-modified-since", &later)]),
            Verdict::NotModified
        );
        assert!(matches!(
            check(&[("if-unmodified-since", &earlier)]),
            Verdict::Failed(_)
        ));
        assert_eq!(check(&[("if-unmodified-since", &at)]), Verdict::Send);
        // If-None-Match decides alone when both are sent
        let both = [("if-none-match", "\"x\""), ("if-modified-since", &later)];
        assert_eq!(check(&both), Verdict::Send);
        // a date that does not parse is no condition
        assert_eq!(check(&[("if-modified-since", "yesterday")]), Verdict::Send);
    }

    #[test]
    fn one_byte_range_or_the_whole_body() {
        let r = |spec: &str| range(&h(&[("range", spec)]), 100, "abc", None);
        assert_eq!(range(&h(&[]), 100, "abc", None), Range::Whole);
        assert_eq!(r("bytes=0-9"), Range::Part(0, 9));
        assert_eq!(r("bytes=90-"), Range::Part(90, 99));
        assert_eq!(r("bytes=90-1000"), Range::Part(90, 99));
        assert_eq!(r("bytes=-10"), Range::Part(90, 99));
        assert_eq!(r("bytes=-1000"), Range::Part(0, 99));
        assert_eq!(r("bytes=100-"), Range::Unsatisfiable);
        assert_eq!(r("bytes=-0"), Range::Unsatisfiable);
        assert_eq!(r("bytes=5-2"), Range::Whole);
        assert_eq!(r("bytes=0-1,5-6"), Range::Whole);
        assert_eq!(r("items=0-1"), Range::Whole);
        assert_eq!(r("bytes=x-"), Range::Whole);
        let cond = |tag: &str| {
            range(
                &h(&[("range", "bytes=0-0"), ("if-range", tag)]),
                100,
                "abc",
                None,
            )
        };
        assert_eq!(cond("\"abc\""), Range::Part(0, 0));
        assert_eq!(cond("\"old\""), Range::Whole);
        assert_eq!(
            range(&h(&[("range", "bytes=0-0")]), 0, "abc", None),
            Range::Unsatisfiable
        );
    }
}
