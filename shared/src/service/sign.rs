//! Signed downloads: with `MOGR_SIGNING_KEYS` set, a GET or HEAD is served only with a valid signature
//! of what it asks for, so that only URLs the operator handed out cost conversions.
//!
//! A signed URL is `/<key>?<processor>&mogr-expires=<unix seconds>&mogr-signature=<hex>`, where the
//! signature is HMAC-SHA256, in lower-case hex, over `<key>\n<processor>\n<expires>`: the key decoded
//! (`a b.jpg`, not `a%20b.jpg`), the processor as written (`imageMogr2/format/heif`, `imageInfo`, or
//! nothing for the object itself). Several keys may be set, comma-separated: the first signs, any
//! verifies — add the new key first, hand out new URLs, then drop the old one.

use crate::store::encode_key;
use crate::{Code, Error, Result};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// The query parameters of a signed URL.
pub const EXPIRES: &str = "mogr-expires";
pub const SIGNATURE: &str = "mogr-signature";

/// The signing keys (never printed: `Debug` shows how many there are).
#[derive(Clone, Default)]
pub struct Signer {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} keys)", self.keys.len())
    }
}

type HmacSha256 = Hmac<Sha256>;

impl Signer {
    /// Keys from `MOGR_SIGNING_KEYS`' form: comma-separated, each at least 16 bytes.
    pub fn parse(keys: &str) -> Result<Signer> {
        let keys: Vec<Vec<u8>> = crate::env::list(keys)
            .map(|k| k.as_bytes().to_vec())
            .collect();
        if keys.iter().any(|k| k.len() < 16) {
            return Err(Error::internal(
                "MOGR_SIGNING_KEYS: every key must be at least 16 bytes (e.g. `openssl rand -hex 32`)",
            ));
        }
        Ok(Signer { keys })
    }

    /// Whether downloads must be signed.
    pub fn is_on(&self) -> bool {
        !self.keys.is_empty()
    }

    fn mac(key: &[u8], object: &str, processor: &str, expires: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
        mac.update(format!("{object}\n{processor}\n{expires}").as_bytes());
        mac
    }

    /// The signature of a download of `object` by `processor` until `expires`, with the first key.
    pub fn signature(&self, object: &str, processor: &str, expires: u64) -> Option<String> {
        let key = self.keys.first()?;
        let bytes = Self::mac(key, object, processor, expires)
            .finalize()
            .into_bytes();
        Some(crate::auth::hex(&bytes))
    }

    /// The path and query of a signed download, valid for `seconds` from now.
    pub fn url(&self, object: &str, processor: &str, seconds: u64) -> Option<String> {
        let expires = now() + seconds;
        let signature = self.signature(object, processor, expires)?;
        let processor = if processor.is_empty() {
            String::new()
        } else {
            format!("{processor}&")
        };
        Some(format!(
            "/{}?{processor}{EXPIRES}={expires}&{SIGNATURE}={signature}",
            encode_key(object)
        ))
    }

    /// Checks a download's signature: `AccessDenied` when it is missing or expired,
    /// `SignatureDoesNotMatch` when no key made it.
    /// `params` are the request's query parameters, decoded.
    pub fn verify(
        &self,
        object: &str,
        processor: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<()> {
        let (Some(expires), Some(signature)) = (params.get(EXPIRES), params.get(SIGNATURE)) else {
            return Err(Error::new(
                Code::AccessDenied,
                format!(
                    "this service serves signed URLs only: add {EXPIRES} and {SIGNATURE} (`mogr sign` \
                     makes them), or ask whoever runs it for a signed URL"
                ),
            ));
        };
        let expires: u64 = expires.parse().map_err(|_| {
            Error::new(
                Code::AccessDenied,
                format!("{EXPIRES}={expires:?} is not a time in Unix seconds"),
            )
        })?;
        if expires < now() {
            return Err(Error::new(
                Code::AccessDenied,
                format!("the signed URL expired ({EXPIRES}={expires}); ask for a new one"),
            ));
        }
        let Some(given) = hex(signature) else {
            return Err(mismatch());
        };
        let valid = self.keys.iter().any(|k| {
            Self::mac(k, object, processor, expires)
                .verify_slice(&given)
                .is_ok()
        });
        if valid {
            Ok(())
        } else {
            Err(mismatch())
        }
    }
}

fn mismatch() -> Error {
    Error::new(
        Code::SignatureDoesNotMatch,
        "the signature does not match the key, processor and expiry of this URL: sign exactly what \
         the URL asks for, with a current key",
    )
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query string's parameters, as the service reads them.
    fn params(query: Option<&str>) -> BTreeMap<String, String> {
        crate::query::form(query)
    }

    #[test]
    fn signs_verifies_rotates_and_refuses() {
        let old = Signer::parse("old-key-0123456789abcdef").unwrap();
        let both = Signer::parse("new-key-0123456789abcdef, old-key-0123456789abcdef").unwrap();
        let url = old.url("a b.jpg", "imageMogr2/format/heif", 60).unwrap();
        assert!(url.starts_with("/a%20b.jpg?imageMogr2/format/heif&mogr-expires="));
        let query = url.split_once('?').unwrap().1;
        // Old URLs stay valid while the old key is still listed.
        both.verify("a b.jpg", "imageMogr2/format/heif", &params(Some(query)))
            .unwrap();
        // Another key, another rule, another object: no match.
        let code = |r: Result<()>| r.unwrap_err().code;
        let other = Signer::parse("other-0123456789abcdef").unwrap();
        assert_eq!(
            code(other.verify("a b.jpg", "imageMogr2/format/heif", &params(Some(query)))),
            Code::SignatureDoesNotMatch
        );
        assert_eq!(
            code(old.verify("a b.jpg", "imageMogr2/format/avif", &params(Some(query)))),
            Code::SignatureDoesNotMatch
        );
        assert_eq!(
            code(old.verify("c.jpg", "imageMogr2/format/heif", &params(Some(query)))),
            Code::SignatureDoesNotMatch
        );
        // Missing, expired, malformed.
        assert_eq!(
            code(old.verify("a.jpg", "", &params(None))),
            Code::AccessDenied
        );
        let sig = old.signature("a.jpg", "", 1).unwrap();
        let expired = format!("mogr-expires=1&mogr-signature={sig}");
        assert_eq!(
            code(old.verify("a.jpg", "", &params(Some(&expired)))),
            Code::AccessDenied
        );
        let far = now() + 60;
        let short = format!("mogr-expires={far}&mogr-signature=abc");
        assert_eq!(
            code(old.verify("a.jpg", "", &params(Some(&short)))),
            Code::SignatureDoesNotMatch
        );
        assert!(Signer::parse("short").is_err());
        assert!(!Signer::parse("").unwrap().is_on());
        assert_eq!(format!("{old:?}"), "Signer(1 keys)");
    }
}
