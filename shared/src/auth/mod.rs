//! Verifying the signatures clients already make, against access keys mogr holds (`MOGR_ACCESS_KEYS`):
//! AWS SigV4 (`sigv4.rs`: the `Authorization` header and presigned `X-Amz-*` URLs, as boto3, the AWS
//! CLI and the AWS SDKs sign) and COS's `q-sign-*` scheme (`cos.rs`: the `Authorization` header and
//! presigned query, as Tencent's SDKs sign), and bodies in `aws-chunked` framing, decoded with their
//! chunk signatures checked (`chunked.rs`). Pure: a request's method, path, query and headers in, the
//! key id that signed it (or the reason it is refused) out. Signatures are compared in constant time.

pub mod chunked;
mod cos;
mod sigv4;

use crate::{Code, Error, Result};
use http::HeaderMap;
use std::time::SystemTime;

/// The access keys requests may be signed with: id and secret pairs, several at once for rotation.
#[derive(Clone, Default)]
pub struct AccessKeys(Vec<(String, String)>);

impl std::fmt::Debug for AccessKeys {
    /// The ids only: a secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.0.iter().map(|(id, _)| id.as_str()).collect();
        write!(f, "AccessKeys({ids:?})")
    }
}

impl AccessKeys {
    /// `ID:SECRET` pairs, comma-separated (spaces around them ignored); empty: no keys.
    pub fn parse(text: &str) -> Result<AccessKeys> {
        let pairs = text.split(',').map(str::trim).filter(|p| !p.is_empty());
        let pairs = pairs.map(|pair| {
            let (id, secret) = pair.split_once(':').ok_or_else(|| {
                Error::invalid(format!(
                    "access key {pair:?} is not ID:SECRET: give each key as its id, a colon and its \
                     secret, comma-separated"
                ))
            })?;
            Ok((id.trim().to_string(), secret.trim().to_string()))
        });
        AccessKeys::from_pairs(pairs.collect::<Result<Vec<_>>>()?)
    }

    /// Id and secret pairs as given (a JSON object's, say: a secret may hold `,` or `:`); an empty
    /// id or secret is refused.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<AccessKeys> {
        let keys: Vec<(String, String)> = pairs.into_iter().collect();
        if let Some((id, _)) = keys.iter().find(|(id, s)| id.is_empty() || s.is_empty()) {
            return Err(Error::invalid(format!(
                "access key {id:?} has an empty id or secret: give each key its id and its secret"
            )));
        }
        Ok(AccessKeys(keys))
    }

    /// These keys and `more`.
    pub fn with(mut self, more: AccessKeys) -> AccessKeys {
        self.0.extend(more.0);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The secret of key `id`.
    fn secret(&self, id: &str) -> Result<&str> {
        (self.0.iter())
            .find(|(k, _)| k == id)
            .map(|(_, secret)| secret.as_str())
            .ok_or_else(|| {
                Error::new(
                    Code::InvalidAccessKeyId,
                    format!("the access key id {id:?} is not one of this service's keys"),
                )
            })
    }
}

/// A request as its signature covers it.
pub struct Signed<'a> {
    pub method: &'a str,
    /// The path as sent (percent-encoded).
    pub path: &'a str,
    /// The query string as sent.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl Signed<'_> {
    /// The query's parameters, percent-decoded (`+` kept: signers encode a space as `%20`), in
    /// the order sent, duplicates kept.
    fn params(&self) -> Vec<(String, String)> {
        (crate::query::params(Some(self.query)))
            .map(|p| (p.name().into_owned(), p.value().into_owned()))
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Who signed `req`: `Ok(None)` when it carries no signature, `Ok(Some(key id))` when one of `keys`
/// signed it as it is, at `now`; otherwise the error a client of that scheme expects.
pub fn verify(keys: &AccessKeys, req: &Signed, now: SystemTime) -> Result<Option<Verified>> {
    if let Some(found) = sigv4::verify(keys, req, now)? {
        return Ok(Some(found));
    }
    let key_id = cos::verify(keys, req, now)?;
    Ok(key_id.map(|key_id| Verified {
        key_id,
        chunks: None,
    }))
}

/// Whether `req` carries a signature of a scheme mogr reads, holding or not: only then are keys
/// needed to answer it.
pub fn is_signed(req: &Signed) -> bool {
    const PARAMS: [&str; 4] = [
        "X-Amz-Algorithm",
        "AWSAccessKeyId",
        "Signature",
        "q-sign-algorithm",
    ];
    req.header("authorization").is_some()
        || crate::query::params(Some(req.query)).any(|p| PARAMS.contains(&p.name().as_ref()))
}

/// Who signed a request; and for a SigV4 streaming upload, what checks its body's chunks.
#[derive(Debug)]
pub struct Verified {
    pub key_id: String,
    pub chunks: Option<chunked::ChunkSigning>,
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without stopping at the first difference, so timing tells nothing of a secret.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RFC 3986 encoding as both schemes use it (AWS's `UriEncode`; S3's `encoding-type=url` and copy
/// sources too): everything but `A-Z a-z 0-9 - _ . ~` percent-encoded in upper-case hex (and `/` too
/// unless `keep_slash`).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    const PATH: &percent_encoding::AsciiSet = &SET.remove(b'/');
    let set = if keep_slash { PATH } else { SET };
    percent_encoding::utf8_percent_encode(s, set).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_never_show_their_secrets() {
        let keys = AccessKeys::parse(" AKID1:secret-one , AKID2:secret:two").unwrap();
        assert_eq!(keys.secret("AKID1").unwrap(), "secret-one");
        assert_eq!(keys.secret("AKID2").unwrap(), "secret:two");
        assert_eq!(
            keys.secret("AKID3").unwrap_err().code,
            Code::InvalidAccessKeyId
        );
        assert!(!format!("{keys:?}").contains("secret"));
        assert!(AccessKeys::parse("").unwrap().is_empty());
        for bad in ["nocolon", ":secret", "id:"] {
            assert!(AccessKeys::parse(bad).is_err(), "{bad}");
        }
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
        assert_eq!(uri_encode("a b/c~d+é", true), "a%20b/c~d%2B%C3%A9");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }
}
