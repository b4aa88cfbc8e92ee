//! AWS Signature Version 4 as S3 checks it: the `Authorization: AWS4-HMAC-SHA256 Credential=…,
//! SignedHeaders=…, Signature=…` header (with `x-amz-date` within 15 minutes, and the body's
//! `x-amz-content-sha256` checked unless it is `UNSIGNED-PAYLOAD`), and presigned URLs
//! (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`,
//! `X-Amz-Signature`; the payload unsigned). Any region; the service must be `s3`.

use super::chunked::{ChunkSigning, STREAMING};
use super::{hex, same, uri_encode, AccessKeys, Signed, Verified};
use crate::{Code, Error, Result};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a signed request's time may be from ours, as S3 allows.
const SKEW: Duration = Duration::from_secs(15 * 60);
/// The longest a presigned URL may be valid: 7 days.
const MAX_EXPIRES: u64 = 604_800;
const UNSIGNED: &str = "UNSIGNED-PAYLOAD";

/// What a signature names: key id, date, region, service; the signed headers; the signature; the
/// request's time; and, for a presigned URL, how long it is valid.
struct Claim {
    key_id: String,
    scope: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    expires: Option<u64>,
}

fn malformed(what: &str) -> Error {
    Error::new(
        Code::AccessDenied,
        format!("the AWS SigV4 signature is malformed: {what}"),
    )
}

/// The claim of a SigV4-signed request, `None` when it is not one.
fn claim(req: &Signed) -> Result<Option<Claim>> {
    let params = req.params();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let v2 = req
        .header("authorization")
        .is_some_and(|a| a.starts_with("AWS "))
        || (param("AWSAccessKeyId").is_some() && param("Signature").is_some());
    // a download is public: its version-2 signature is left unchecked, as none at all would be
    if v2 && matches!(req.method, "GET" | "HEAD") {
        return Ok(None);
    }
    if v2 {
        return Err(Error::new(
            Code::AccessDenied,
            "AWS signature version 2 is not accepted here: sign with SigV4 (boto3: \
             Config(signature_version=\"s3v4\"); the AWS CLI: `aws configure set \
             default.s3.signature_version s3v4`)",
        ));
    }
    let (credential, signed, signature, amz_date, expires) = match req.header("authorization") {
        Some(auth) if auth.starts_with(ALGORITHM) => {
            let mut fields = std::collections::HashMap::new();
            for part in auth[ALGORITHM.len()..].split(',') {
                if let Some((k, v)) = part.trim().split_once('=') {
                    fields.insert(k.trim(), v.trim());
                }
            }
            let get = |k: &str| {
                fields
                    .get(k)
                    .copied()
                    .ok_or_else(|| malformed(&format!("the Authorization header has no {k}")))
            };
            let date = req
                .header("x-amz-date")
                .ok_or_else(|| malformed("the request has no x-amz-date header"))?;
            (
                get("Credential")?,
                get("SignedHeaders")?,
                get("Signature")?,
                date,
                None,
            )
        }
        _ => match param("X-Amz-Algorithm") {
            None => return Ok(None),
            Some(ALGORITHM) => {
                let get = |k: &str| {
                    param(k).ok_or_else(|| malformed(&format!("the presigned URL has no {k}")))
                };
                let expires: u64 = get("X-Amz-Expires")?
                    .parse()
                    .map_err(|_| malformed("X-Amz-Expires is not a number of seconds"))?;
                if expires > MAX_EXPIRES {
                    return Err(malformed("X-Amz-Expires is over 604800 seconds (7 days)"));
                }
                (
                    get("X-Amz-Credential")?,
                    get("X-Amz-SignedHeaders")?,
                    get("X-Amz-Signature")?,
                    get("X-Amz-Date")?,
                    Some(expires),
                )
            }
            Some(other) => {
                return Err(malformed(&format!(
                    "the algorithm {other:?} is not {ALGORITHM}"
                )))
            }
        },
    };
    let parts: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, "aws4_request"] = parts[..] else {
        return Err(malformed(
            "the Credential is not <key id>/<date>/<region>/<service>/aws4_request",
        ));
    };
    Ok(Some(Claim {
        key_id: key_id.to_string(),
        scope: format!("{date}/{region}/{service}/aws4_request"),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed.split(';').map(str::to_string).collect(),
        signature: signature.to_ascii_lowercase(),
        amz_date: amz_date.to_string(),
        expires,
    }))
}

/// `20130524T000000Z` as a time.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let d = |r: std::ops::Range<usize>| s.get(r)?.parse::<u64>().ok();
    if s.len() != 16 || s.as_bytes()[8] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let (year, month, day) = (d(0..4)?, d(4..6)?, d(6..8)?);
    let (hour, minute, second) = (d(9..11)?, d(11..13)?, d(13..15)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // days from the civil date (Howard Hinnant's algorithm)
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The canonical request of `req` for `claim`, with the payload hash it names.
fn canonical_request(req: &Signed, claim: &Claim, payload: &str) -> String {
    let path = percent_encoding::percent_decode_str(req.path).decode_utf8_lossy();
    let uri = uri_encode(&path, true);
    let mut query: Vec<(String, String)> = (req.params().into_iter())
        .filter(|(k, _)| claim.expires.is_none() || k != "X-Amz-Signature")
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    query.sort();
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut headers = String::new();
    for name in &claim.signed_headers {
        let values: Vec<String> = (req.headers.get_all(name.as_str()).iter())
            .map(|v| {
                let v = String::from_utf8_lossy(v.as_bytes());
                v.split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect();
        headers += &format!("{name}:{}\n", values.join(","));
    }
    format!(
        "{}\n{uri}\n{}\n{headers}\n{}\n{payload}",
        req.method,
        query.join("&"),
        claim.signed_headers.join(";")
    )
}

type HmacSha256 = Hmac<Sha256>;

pub(super) fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The key `secret` signs with for `claim`'s date, region and service.
fn signing_key(secret: &str, claim: &Claim) -> Vec<u8> {
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), claim.date.as_bytes());
    for part in [
        claim.region.as_str(),
        claim.service.as_str(),
        "aws4_request",
    ] {
        key = hmac(&key, part.as_bytes());
    }
    key
}

/// The string to sign and its signature with `key`.
fn sign(key: &[u8], claim: &Claim, canonical: &str) -> (String, String) {
    let to_sign = format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        claim.amz_date,
        claim.scope,
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let signature = hex(&hmac(key, to_sign.as_bytes()));
    (to_sign, signature)
}

/// Who signed `req` with SigV4; `Ok(None)` when it is not SigV4-signed.
pub(super) fn verify(keys: &AccessKeys, req: &Signed, now: SystemTime) -> Result<Option<Verified>> {
    let Some(claim) = claim(req)? else {
        return Ok(None);
    };
    let secret = keys.secret(&claim.key_id)?;
    if claim.service != "s3" {
        return Err(malformed(&format!(
            "the Credential names the service {:?}, not s3",
            claim.service
        )));
    }
    if !claim.signed_headers.iter().any(|h| h == "host") {
        return Err(malformed("SignedHeaders does not include host"));
    }
    let when = parse_amz_date(&claim.amz_date)
        .ok_or_else(|| malformed("X-Amz-Date is not a time like 20130524T000000Z"))?;
    if !claim.amz_date.starts_with(&claim.date) {
        return Err(malformed("the Credential's date is not the request's"));
    }
    match claim.expires {
        Some(expires) => {
            if now > when + Duration::from_secs(expires) {
                return Err(Error::new(
                    Code::AccessDenied,
                    format!(
                        "Request has expired: the presigned URL was valid {expires} s from {}",
                        claim.amz_date
                    ),
                ));
            }
            if when > now + SKEW {
                return Err(Error::new(
                    Code::AccessDenied,
                    "the presigned URL is not valid yet (X-Amz-Date is in the future)",
                ));
            }
        }
        None => {
            let skew = now
                .duration_since(when)
                .or_else(|e| Ok::<_, ()>(e.duration()));
            if skew.is_ok_and(|s| s > SKEW) {
                return Err(Error::new(
                    Code::RequestTimeTooSkewed,
                    format!(
                        "the request's time {} is more than 15 minutes from the server's: set \
                         the client's clock",
                        claim.amz_date
                    ),
                ));
            }
        }
    }
    let payload = match (claim.expires, req.header("x-amz-content-sha256")) {
        (Some(_), None) => UNSIGNED.to_string(),
        (None, None) => {
            return Err(malformed("the request has no x-amz-content-sha256 header"));
        }
        (_, Some(UNSIGNED)) => UNSIGNED.to_string(),
        // an aws-chunked body: its chunks are checked as they are decoded (chunked.rs)
        (None, Some(streaming)) if STREAMING.contains(&streaming) => streaming.to_string(),
        (_, Some(other)) if other.starts_with("STREAMING-") => {
            return Err(Error::new(
                Code::NotImplemented,
                format!(
                    "the payload signing {other:?} is not implemented by mogr: sign with SigV4 \
                     (AWS4-HMAC-SHA256), the payload unsigned or signed in full; nothing was written"
                ),
            ));
        }
        (_, Some(hash)) => {
            let actual = hex(&Sha256::digest(req.body));
            if !hash.eq_ignore_ascii_case(&actual) {
                return Err(Error::new(
                    Code::XAmzContentSHA256Mismatch,
                    "the body's SHA-256 is not the x-amz-content-sha256 it was sent with",
                ));
            }
            hash.to_ascii_lowercase()
        }
    };
    let canonical = canonical_request(req, &claim, &payload);
    let key = signing_key(secret, &claim);
    let (to_sign, expected) = sign(&key, &claim, &canonical);
    if !same(expected.as_bytes(), claim.signature.as_bytes()) {
        return Err(Error::new(
            Code::SignatureDoesNotMatch,
            format!(
                "The request signature we calculated does not match the signature you provided. \
                 Check your key and signing method. StringToSign: {to_sign:?}; CanonicalRequest: \
                 {:?}",
                redacted(&canonical)
            ),
        ));
    }
    let chunks = payload.starts_with("STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    Ok(Some(Verified {
        chunks: chunks.then(|| ChunkSigning {
            key,
            amz_date: claim.amz_date.clone(),
            scope: claim.scope.clone(),
            seed: claim.signature.clone(),
        }),
        key_id: claim.key_id,
    }))
}

/// `canonical` with session tokens (a header's or a parameter's value) left out: it is shown to the
/// client and logged.
fn redacted(canonical: &str) -> String {
    let lines = canonical.split('\n').map(|line| {
        if line.starts_with("x-amz-security-token:") {
            return "x-amz-security-token:REDACTED".to_string();
        }
        (crate::query::params(Some(line)))
            .map(
                |p| match p.raw_name.eq_ignore_ascii_case("X-Amz-Security-Token") {
                    true => format!("{}=REDACTED", p.raw_name),
                    false => p.raw.to_string(),
                },
            )
            .collect::<Vec<_>>()
            .join("&")
    });
    lines.collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    const KEYS: &str = "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// AWS's published example: GET /test.txt with a Range, signed with the example keys on
    /// 2013-05-24 (the S3 API reference, "Signature calculations: header-based authentication").
    #[test]
    fn the_published_get_object_example_verifies() {
        let keys = AccessKeys::parse(KEYS).unwrap();
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
        let h = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", empty),
            ("x-amz-date", "20130524T000000Z"),
            ("authorization", auth),
        ]);
        let req = Signed {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &h,
            body: b"",
        };
        let then = parse_amz_date("20130524T000000Z").unwrap();
        assert_eq!(
            then,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
        );
        assert_eq!(
            verify(&keys, &req, then)
                .unwrap()
                .map(|v| v.key_id)
                .as_deref(),
            Some("AKIAIOSFODNN7EXAMPLE")
        );
        // a minute later still; an hour later, too skewed
        assert!(verify(&keys, &req, then + Duration::from_secs(60)).is_ok());
        let late = verify(&keys, &req, then + Duration::from_secs(3600)).unwrap_err();
        assert_eq!(late.code, Code::RequestTimeTooSkewed);
        // another range, another secret, another key id
        let other = headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-10"),
            ("x-amz-content-sha256", empty),
            ("x-amz-date", "20130524T000000Z"),
            ("authorization", auth),
        ]);
        let tampered = Signed {
            headers: &other,
            ..req
        };
        let e = verify(&keys, &tampered, then).unwrap_err();
        assert_eq!(e.code, Code::SignatureDoesNotMatch);
        assert!(e.message.contains("bytes=0-10"), "{e}");
        let wrong = AccessKeys::parse("AKIAIOSFODNN7EXAMPLE:not-the-secret").unwrap();
        assert_eq!(
            verify(&wrong, &req, then).unwrap_err().code,
            Code::SignatureDoesNotMatch
        );
        let unknown = AccessKeys::parse("AKIDOTHER:x").unwrap();
        assert_eq!(
            verify(&unknown, &req, then).unwrap_err().code,
            Code::InvalidAccessKeyId
        );
        // a body that is not the one hashed
        let body = Signed { body: b"x", ..req };
        assert_eq!(
            verify(&keys, &body, then).unwrap_err().code,
            Code::XAmzContentSHA256Mismatch
        );
        // unsigned requests are not SigV4's
        let none = HeaderMap::new();
        let plain = Signed {
            headers: &none,
            ..req
        };
        assert!(verify(&keys, &plain, then).unwrap().is_none());
    }

    /// AWS's published presigned example: GET /test.txt valid for 86400 s from 2013-05-24.
    #[test]
    fn the_published_presigned_example_verifies_until_it_expires() {
        let keys = AccessKeys::parse(KEYS).unwrap();
        let h = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
        let req = Signed {
            method: "GET",
            path: "/test.txt",
            query,
            headers: &h,
            body: b"",
        };
        let then = parse_amz_date("20130524T000000Z").unwrap();
        assert!(verify(&keys, &req, then + Duration::from_secs(3600))
            .unwrap()
            .is_some());
        let e = verify(&keys, &req, then + Duration::from_secs(86_401)).unwrap_err();
        assert_eq!(e.code, Code::AccessDenied);
        assert!(e.message.contains("expired"), "{e}");
        let put = Signed {
            method: "PUT",
            ..req
        };
        assert_eq!(
            verify(&keys, &put, then).unwrap_err().code,
            Code::SignatureDoesNotMatch
        );
        // signature version 2 (boto3's default for presigned URLs): refused, saying how to sign
        let v2 = Signed {
            query: "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=abc&Expires=1369440000",
            ..req
        };
        assert!(
            verify(&keys, &v2, then).unwrap().is_none(),
            "a GET is public"
        );
        let v2 = Signed {
            method: "PUT",
            ..v2
        };
        let e = verify(&keys, &v2, then).unwrap_err();
        assert!(
            e.code == Code::AccessDenied && e.message.contains("s3v4"),
            "{e}"
        );
        // a session token never reaches the message (shown to the client, and logged)
        let shown =
            redacted("PUT\n/a\nX-Amz-Security-Token=s3cret&x=1\nx-amz-security-token:s3cret\n");
        assert!(
            !shown.contains("s3cret") && shown.contains("x=1"),
            "{shown}"
        );
    }

    /// AWS's published streaming upload: the request's signature verifies and seeds the chain that
    /// checks its body's chunks ("Signature calculations … in multiple chunks").
    #[test]
    fn the_published_streaming_upload_verifies_chunk_by_chunk() {
        let keys = AccessKeys::parse(KEYS).unwrap();
        let seed = super::super::chunked::tests::SEED;
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;\
             x-amz-decoded-content-length;x-amz-storage-class,Signature={seed}"
        );
        let h = headers(&[
            ("host", "s3.amazonaws.com"),
            ("content-encoding", "aws-chunked"),
            ("content-length", "66824"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-decoded-content-length", "66560"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("authorization", &auth),
        ]);
        let body = super::super::chunked::tests::published_body();
        assert_eq!(body.len(), 66824);
        let req = Signed {
            method: "PUT",
            path: "/examplebucket/chunkObject.txt",
            query: "",
            headers: &h,
            body: &body,
        };
        let then = parse_amz_date("20130524T000000Z").unwrap();
        let verified = verify(&keys, &req, then).unwrap().unwrap();
        let chunks = verified
            .chunks
            .expect("a streaming signature checks the chunks");
        let decoded = super::super::chunked::decode(&body, Some(&chunks)).unwrap();
        assert_eq!(decoded.body.len(), 66560);
        // a signing mogr does not implement is refused, not read as unsigned
        let h = headers(&[
            ("host", "s3.amazonaws.com"),
            (
                "x-amz-content-sha256",
                "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
            ),
            ("x-amz-date", "20130524T000000Z"),
            ("authorization", &auth),
        ]);
        let e = verify(&keys, &Signed { headers: &h, ..req }, then).unwrap_err();
        assert_eq!(e.code, Code::NotImplemented);
    }
}
