//! Bodies in S3's `aws-chunked` framing, decoded: what boto3, the AWS CLI and the AWS SDKs send over
//! HTTPS (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`: chunks, then the checksum as a trailer) and what
//! SigV4 streaming signers send (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`: each chunk signed,
//! chained from the request's own signature, and the trailer signed last). Each chunk is
//! `<hex size>[;chunk-signature=<sig>]\r\n<bytes>\r\n`; the last has size 0 and is followed by the
//! trailing headers (`name:value\r\n`…) and an empty line.

use super::{hex, same};
use crate::{Code, Error, Result};
use sha2::{Digest, Sha256};

/// The `x-amz-content-sha256` values of an aws-chunked body mogr decodes.
pub const STREAMING: [&str; 3] = [
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
];

/// The longest chunk header or trailer line read: sizes and signatures are short.
const MAX_LINE: usize = 4096;
/// SHA-256 of nothing, part of each chunk's string to sign.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What checks the chunks of a body whose request was SigV4-signed in streaming mode: the signing
/// key and scope of the request's signature, which seeds the chain.
#[derive(Clone)]
pub struct ChunkSigning {
    pub(super) key: Vec<u8>,
    pub(super) amz_date: String,
    pub(super) scope: String,
    pub(super) seed: String,
}

impl std::fmt::Debug for ChunkSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkSigning { .. }") // the key stays out of any log
    }
}

impl ChunkSigning {
    fn sign(&self, kind: &str, previous: &str, lines: &[&str]) -> String {
        let mut to_sign = format!("{kind}\n{}\n{}\n{previous}", self.amz_date, self.scope);
        for line in lines {
            to_sign.push('\n');
            to_sign.push_str(line);
        }
        hex(&super::sigv4::hmac(&self.key, to_sign.as_bytes()))
    }
}

/// A decoded body: the object's bytes and the trailing headers (a checksum, usually), in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unchunked {
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
}

fn broken(what: &str) -> Error {
    Error::new(
        Code::IncompleteBody,
        format!("the aws-chunked body is malformed: {what}; nothing was written"),
    )
}

fn mismatch(what: &str) -> Error {
    Error::new(
        Code::SignatureDoesNotMatch,
        format!(
            "the {what} of the aws-chunked body does not match: the body is not the one that was \
             signed; nothing was written"
        ),
    )
}

/// The line at `at` (without its CRLF) and where the next one starts.
fn line(sent: &[u8], at: usize) -> Result<(&str, usize)> {
    let rest = &sent[at.min(sent.len())..];
    let end = (rest.windows(2).take(MAX_LINE))
        .position(|w| w == b"\r\n")
        .ok_or_else(|| broken("a chunk header or trailer line does not end in CRLF"))?;
    let text = std::str::from_utf8(&rest[..end])
        .map_err(|_| broken("a chunk header or trailer line is not text"))?;
    Ok((text, at + end + 2))
}

/// Decodes `sent`; with `signing`, every chunk's signature (and the trailer's, if any) must be the
/// one the chain gives.
pub fn decode(sent: &[u8], signing: Option<&ChunkSigning>) -> Result<Unchunked> {
    let mut out = Unchunked::default();
    let mut previous = signing.map(|s| s.seed.clone()).unwrap_or_default();
    let mut at = 0;
    loop {
        let (header, next) = line(sent, at)?;
        let (size, signature) = match header.split_once(';') {
            Some((size, ext)) => (size, ext.trim().strip_prefix("chunk-signature=")),
            None => (header, None),
        };
        let size = usize::from_str_radix(size.trim(), 16)
            .map_err(|_| broken(&format!("{:?} is not a chunk size", size.trim())))?;
        let data = (sent.get(next..))
            .and_then(|rest| rest.get(..size))
            .ok_or_else(|| broken("a chunk is shorter than its size"))?;
        if let Some(signing) = signing {
            let given = signature.ok_or_else(|| mismatch("chunk without a chunk-signature"))?;
            let digest = hex(&Sha256::digest(data));
            let expected = signing.sign(
                "AWS4-HMAC-SHA256-PAYLOAD",
                &previous,
                &[EMPTY_SHA256, &digest],
            );
            if !same(expected.as_bytes(), given.as_bytes()) {
                return Err(mismatch("chunk-signature"));
            }
            previous = expected;
        }
        at = next + size;
        if size == 0 {
            break;
        }
        out.body.extend_from_slice(data);
        if sent.get(at..at + 2) != Some(b"\r\n".as_slice()) {
            return Err(broken("a chunk is longer than its size"));
        }
        at += 2;
    }
    // the trailing headers, up to an empty line or the end
    let mut trailer_signature = None;
    let mut canonical = String::new();
    while at < sent.len() {
        let (text, next) = line(sent, at)?;
        at = next;
        if text.is_empty() {
            break;
        }
        let (name, value) = (text.split_once(':'))
            .ok_or_else(|| broken(&format!("the trailer line {text:?} is not name:value")))?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
        if name == "x-amz-trailer-signature" {
            trailer_signature = Some(value);
            continue;
        }
        canonical += &format!("{name}:{value}\n");
        out.trailers.push((name, value));
    }
    if at != sent.len() {
        return Err(broken("bytes follow the last chunk's trailer"));
    }
    if let (Some(signing), Some(given)) = (signing, &trailer_signature) {
        let digest = hex(&Sha256::digest(canonical.as_bytes()));
        let expected = signing.sign("AWS4-HMAC-SHA256-TRAILER", &previous, &[&digest]);
        if !same(expected.as_bytes(), given.as_bytes()) {
            return Err(mismatch("trailer signature"));
        }
    } else if signing.is_some() && !out.trailers.is_empty() {
        return Err(mismatch("trailer without an x-amz-trailer-signature"));
    }
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// AWS's published streaming upload ("Signature Calculations … Transferring Payload in Multiple
    /// Chunks"): 66560 bytes of `a` in a 64 KiB chunk, a 1 KiB chunk and the final one, chained
    /// from the request's signature.
    pub(crate) const SEED: &str =
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    const CHUNKS: [(usize, &str); 3] = [
        (
            65536,
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        ),
        (
            1024,
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        ),
        (
            0,
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ),
    ];

    pub(crate) fn published_body() -> Vec<u8> {
        let mut body = Vec::new();
        for (size, signature) in CHUNKS {
            body.extend(format!("{size:x};chunk-signature={signature}\r\n").bytes());
            body.extend(std::iter::repeat_n(b'a', size));
            body.extend(b"\r\n");
        }
        body
    }

    fn published_signing() -> ChunkSigning {
        let mut key = format!("AWS4{}", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").into_bytes();
        for part in ["20130524", "us-east-1", "s3", "aws4_request"] {
            key = super::super::sigv4::hmac(&key, part.as_bytes());
        }
        ChunkSigning {
            key,
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed: SEED.into(),
        }
    }

    #[test]
    fn the_published_signed_chunks_decode_and_a_changed_byte_does_not() {
        let body = published_body();
        let signing = published_signing();
        let decoded = decode(&body, Some(&signing)).unwrap();
        assert_eq!(decoded.body, vec![b'a'; 66560]);
        assert!(decoded.trailers.is_empty());
        // the same framing read without keys: chunk signatures are ignored
        assert_eq!(decode(&body, None).unwrap().body.len(), 66560);

        let mut changed = body.clone();
        let at = changed.len() - 200;
        changed[at] = b'b';
        let e = decode(&changed, Some(&signing)).unwrap_err();
        assert_eq!(e.code, Code::SignatureDoesNotMatch);
        let other = ChunkSigning {
            seed: "0".repeat(64),
            ..signing.clone()
        };
        assert_eq!(
            decode(&body, Some(&other)).unwrap_err().code,
            Code::SignatureDoesNotMatch
        );
    }

    #[test]
    fn unsigned_chunks_with_a_trailing_checksum() {
        // as botocore's AwsChunkedWrapper frames a body over HTTPS
        let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        let decoded = decode(body, None).unwrap();
        assert_eq!(decoded.body, b"hello world");
        let trailer = ("x-amz-checksum-crc32".to_string(), "DUoRhQ==".to_string());
        assert_eq!(decoded.trailers, vec![trailer]);
        // without a trailer, and without the final empty line
        assert_eq!(decode(b"3\r\nabc\r\n0\r\n", None).unwrap().body, b"abc");
    }

    #[test]
    fn signed_trailer_checked() {
        let signing = published_signing();
        let data = b"hello";
        let chunk = signing.sign(
            "AWS4-HMAC-SHA256-PAYLOAD",
            SEED,
            &[EMPTY_SHA256, &hex(&Sha256::digest(data))],
        );
        let last = signing.sign(
            "AWS4-HMAC-SHA256-PAYLOAD",
            &chunk,
            &[EMPTY_SHA256, EMPTY_SHA256],
        );
        let trailer = "x-amz-checksum-crc32:NhCmhg==\n";
        let trailer_sig = signing.sign(
            "AWS4-HMAC-SHA256-TRAILER",
            &last,
            &[&hex(&Sha256::digest(trailer.as_bytes()))],
        );
        let body = |sig: &str| {
            format!(
                "5;chunk-signature={chunk}\r\nhello\r\n0;chunk-signature={last}\r\n\
                 x-amz-checksum-crc32:NhCmhg==\r\nx-amz-trailer-signature:{sig}\r\n\r\n"
            )
        };
        let decoded = decode(body(&trailer_sig).as_bytes(), Some(&signing)).unwrap();
        assert_eq!(decoded.body, b"hello");
        assert_eq!(decoded.trailers.len(), 1);
        let wrong = decode(body(&"0".repeat(64)).as_bytes(), Some(&signing)).unwrap_err();
        assert_eq!(wrong.code, Code::SignatureDoesNotMatch);
    }

    #[test]
    fn broken_framing_is_an_incomplete_body() {
        for body in [
            &b"5\r\nhel"[..],
            b"5\r\nhello world\r\n0\r\n\r\n",
            b"zz\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\r\n",
            b"5 hello",
            b"0\r\nnot a header\r\n\r\n",
            b"0\r\n\r\nmore",
        ] {
            let e = decode(body, None).unwrap_err();
            assert_eq!(
                e.code,
                Code::IncompleteBody,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
