//! A request's body as the operations read it: as sent, or decoded from S3's `aws-chunked` framing
//! (what boto3, the AWS CLI and the AWS SDKs send over HTTPS), its trailing checksum moved to the
//! headers where the integrity check finds it.

use super::header_text;
use crate::auth::chunked::{self, ChunkSigning, STREAMING};
use crate::{Code, Error, Result};
use http::{header, HeaderValue, Request};

/// A body as sent, or decoded.
#[derive(Debug)]
pub enum Body<B> {
    Sent(B),
    Decoded(Vec<u8>),
}

impl<B: AsRef<[u8]>> AsRef<[u8]> for Body<B> {
    fn as_ref(&self) -> &[u8] {
        match self {
            Body::Sent(b) => b.as_ref(),
            Body::Decoded(b) => b,
        }
    }
}

fn incomplete(what: String) -> Error {
    Error::new(Code::IncompleteBody, format!("{what}; nothing was written"))
}

/// `req` with its body decoded when `x-amz-content-sha256` says it is aws-chunked (each chunk
/// checked by `signing` when the request was signed in streaming mode with one of the service's
/// keys), then read as a plain body: its length the decoded one (checked against
/// `x-amz-decoded-content-length`), its declared trailers (`x-amz-trailer`) present and their
/// checksums among the headers. Any other body is left as sent.
pub fn unchunk<B: AsRef<[u8]>>(
    req: Request<B>,
    signing: Option<&ChunkSigning>,
) -> Result<Request<Body<B>>> {
    if !header_text(req.headers(), "x-amz-content-sha256").is_some_and(|v| STREAMING.contains(&v)) {
        return Ok(req.map(Body::Sent));
    }
    let decoded = chunked::decode(req.body().as_ref(), signing)?;
    if let Some(said) = header_text(req.headers(), "x-amz-decoded-content-length") {
        if said.trim().parse::<usize>().ok() != Some(decoded.body.len()) {
            return Err(incomplete(format!(
                "the aws-chunked body holds {} bytes, not the {said} of x-amz-decoded-content-length",
                decoded.body.len()
            )));
        }
    }
    let declared = header_text(req.headers(), "x-amz-trailer").unwrap_or_default();
    for name in declared.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !decoded
            .trailers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            return Err(incomplete(format!(
                "the aws-chunked body ends without its trailer {name:?}"
            )));
        }
    }
    let (mut parts, _) = req.into_parts();
    let headers = &mut parts.headers;
    for (name, value) in &decoded.trailers {
        // a trailing checksum is checked as a header one is; other trailers mean nothing here
        if let (true, Ok(name), Ok(value)) = (
            name.starts_with("x-amz-checksum-"),
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    let encodings: Vec<String> = (headers.get_all(header::CONTENT_ENCODING).iter())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
        .map(str::to_string)
        .collect();
    headers.remove(header::CONTENT_ENCODING);
    if let (false, Ok(v)) = (
        encodings.is_empty(),
        HeaderValue::from_str(&encodings.join(", ")),
    ) {
        headers.insert(header::CONTENT_ENCODING, v);
    }
    for name in [
        "x-amz-content-sha256",
        "x-amz-decoded-content-length",
        "x-amz-trailer",
    ] {
        headers.remove(name);
    }
    headers.insert(header::CONTENT_LENGTH, decoded.body.len().into());
    Ok(Request::from_parts(parts, Body::Decoded(decoded.body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(headers: &[(&str, &str)], body: &'static [u8]) -> Request<&'static [u8]> {
        let mut req = Request::put("/a.jpg");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(body).unwrap()
    }

    const FRAMED: &[u8] = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
    const STREAMING_TRAILER: (&str, &str) =
        ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER");

    #[test]
    fn a_chunked_body_becomes_a_plain_one_with_its_checksum() {
        let req = put(
            &[
                STREAMING_TRAILER,
                ("content-encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", "5"),
                ("x-amz-trailer", "x-amz-checksum-crc32"),
                ("content-length", "49"),
            ],
            FRAMED,
        );
        let req = unchunk(req, None).unwrap();
        assert_eq!(req.body().as_ref(), b"hello");
        let h = req.headers();
        assert_eq!(h["x-amz-checksum-crc32"], "NhCmhg==");
        assert_eq!(h["content-length"], "5");
        assert!(!h.contains_key("content-encoding") && !h.contains_key("x-amz-trailer"));
        // the checksum is of the decoded body
        super::super::check_body_digests(h, req.body().as_ref()).unwrap();
        // an encoding besides aws-chunked stays
        let req = put(
            &[STREAMING_TRAILER, ("content-encoding", "aws-chunked,gzip")],
            FRAMED,
        );
        assert_eq!(
            unchunk(req, None).unwrap().headers()["content-encoding"],
            "gzip"
        );
        // a plain body is left as sent
        let plain = unchunk(put(&[("content-encoding", "aws-chunked")], b"x"), None).unwrap();
        assert_eq!(plain.body().as_ref(), b"x");
    }

    #[test]
    fn a_length_or_trailer_not_as_declared_is_an_incomplete_body() {
        for headers in [
            [STREAMING_TRAILER, ("x-amz-decoded-content-length", "6")],
            [
                STREAMING_TRAILER,
                ("x-amz-trailer", "x-amz-checksum-sha256"),
            ],
        ] {
            let e = unchunk(put(&headers, FRAMED), None).unwrap_err();
            assert_eq!(e.code, Code::IncompleteBody);
        }
    }
}
