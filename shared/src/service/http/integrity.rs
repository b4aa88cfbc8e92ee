//! A request body is checked against the digests its client sent before anything is stored:
//! `Content-MD5` (S3, COS) and S3's `x-amz-checksum-<algorithm>` (CRC32, CRC32C, CRC64NVME, SHA1,
//! SHA256; boto3 and the AWS CLI send CRC32 with every upload). A mismatch is 400 `BadDigest`; an
//! algorithm mogr cannot compute is 501, never accepted unchecked.

use crate::{Code, Error, Result};
use base64::Engine;
use crc_fast::CrcAlgorithm;
use http::HeaderMap;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// `x-amz-checksum-*` headers that name no digest of the body.
const NOT_DIGESTS: [&str; 2] = ["type", "algorithm"];

fn crc(algorithm: CrcAlgorithm, body: &[u8], bytes: usize) -> Vec<u8> {
    let v = crc_fast::checksum(algorithm, body);
    v.to_be_bytes()[8 - bytes..].to_vec()
}

/// The digest of `body` by `algorithm` (lower case), or `None` when mogr cannot compute it.
fn digest(algorithm: &str, body: &[u8]) -> Option<Vec<u8>> {
    Some(match algorithm {
        "md5" => <Md5 as md5::Digest>::digest(body).to_vec(),
        "crc32" => crc(CrcAlgorithm::Crc32IsoHdlc, body, 4),
        "crc32c" => crc(CrcAlgorithm::Crc32Iscsi, body, 4),
        "crc64nvme" => crc(CrcAlgorithm::Crc64Nvme, body, 8),
        "sha1" => Sha1::digest(body).to_vec(),
        "sha256" => Sha256::digest(body).to_vec(),
        _ => return None,
    })
}

/// The algorithm of a header that carries a digest of the body (`md5`, `crc32`, …), if it is one.
fn digest_algorithm(name: &str) -> Option<&str> {
    match name {
        "content-md5" => Some("md5"),
        n => n
            .strip_prefix("x-amz-checksum-")
            .filter(|a| !NOT_DIGESTS.contains(a)),
    }
}

/// Whether the headers carry a digest of the body (what S3 requires of DeleteObjects).
pub(super) fn carries_digest(headers: &HeaderMap) -> bool {
    headers
        .keys()
        .any(|k| digest_algorithm(k.as_str()).is_some())
}

/// Checks `body` against every digest the headers carry (see the module).
pub fn check_body_digests(headers: &HeaderMap, body: &[u8]) -> Result<()> {
    for (name, value) in headers {
        let Some(algorithm) = digest_algorithm(name.as_str()) else {
            continue;
        };
        let Some(actual) = digest(algorithm, body) else {
            return Err(Error::new(
                Code::NotImplemented,
                format!(
                    "the {name} checksum is not implemented by mogr; nothing was written: send \
                     x-amz-checksum-crc32 (or crc32c, crc64nvme, sha1, sha256) or Content-MD5"
                ),
            ));
        };
        let given = base64::engine::general_purpose::STANDARD
            .decode(value.as_bytes())
            .map_err(|_| Error::invalid(format!("the {name} header is not base64")))?;
        if given != actual {
            return Err(Error::new(
                Code::BadDigest,
                format!(
                    "the body does not match its {name} header: it was changed or cut on the way; \
                     nothing was written, send it again"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        h
    }

    #[test]
    fn bodies_match_the_digests_sent_with_them() {
        // the digests of "hello", as S3's documentation and the AWS SDKs compute them
        for (name, value) in [
            ("content-md5", "XUFAKrxLKna5cZ2REBfFkg=="),
            ("x-amz-checksum-crc32", "NhCmhg=="),
            ("x-amz-checksum-crc32c", "mnG7TA=="),
            ("x-amz-checksum-sha1", "qvTGHdzF6KLavt4PO0gs2a6pQ00="),
            (
                "x-amz-checksum-sha256",
                "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
            ),
        ] {
            let h = with(name, value);
            assert!(check_body_digests(&h, b"hello").is_ok(), "{name}");
            let e = check_body_digests(&h, b"hellO").unwrap_err();
            assert_eq!(e.code, Code::BadDigest, "{name}");
        }
        let nvme = base64::engine::general_purpose::STANDARD.encode(crc(
            CrcAlgorithm::Crc64Nvme,
            b"hello",
            8,
        ));
        assert!(check_body_digests(&with("x-amz-checksum-crc64nvme", &nvme), b"hello").is_ok());
        assert!(check_body_digests(&with("x-amz-checksum-type", "FULL_OBJECT"), b"x").is_ok());
        let e = check_body_digests(&with("x-amz-checksum-xxhash64", "AAAA"), b"x").unwrap_err();
        assert_eq!(e.code, Code::NotImplemented);
        assert!(check_body_digests(&with("content-md5", "%%%"), b"x").is_err());
    }
}
