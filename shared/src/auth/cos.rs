//! COS's request signature: `q-sign-algorithm=sha1&q-ak=<id>&q-sign-time=<start;end>&q-key-time=…&
//! q-header-list=…&q-url-param-list=…&q-signature=…`, in the `Authorization` header or as query
//! parameters (a presigned URL). The signature is HMAC-SHA1, keyed by HMAC-SHA1(secret, key time), of
//! `sha1\n<sign time>\n<SHA1 of "method\npath\nparams\nheaders\n">\n`, where the path is the key
//! (decoded) and params and headers are the listed ones, `name=value` URL-encoded, in order.

use super::{hex, same, uri_encode, AccessKeys, Signed};
use crate::{Code, Error, Result};
use hmac::{Hmac, KeyInit, Mac};
use sha1::{Digest, Sha1};
use std::time::SystemTime;

/// The fields of a COS signature.
struct Claim {
    key_id: String,
    sign_time: String,
    key_time: String,
    header_list: Vec<String>,
    param_list: Vec<String>,
    signature: String,
}

fn malformed(what: &str) -> Error {
    Error::new(
        Code::AccessDenied,
        format!("the COS signature is malformed: {what}"),
    )
}

/// The claim of a COS-signed request, `None` when it is not one.
fn claim(req: &Signed) -> Result<Option<Claim>> {
    let fields: Vec<(String, String)> = match req.header("authorization") {
        // the header is written like a query string
        Some(auth) if auth.contains("q-sign-algorithm=") => (crate::query::params(Some(auth)))
            .map(|p| (p.raw_name.trim().to_string(), p.value().into_owned()))
            .collect(),
        _ => req
            .params()
            .into_iter()
            .filter(|(k, _)| k.starts_with("q-"))
            .collect(),
    };
    let get = |k: &str| {
        fields
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
    };
    let Some(algorithm) = get("q-sign-algorithm") else {
        return Ok(None);
    };
    if algorithm != "sha1" {
        return Err(malformed(&format!(
            "q-sign-algorithm {algorithm:?} is not sha1"
        )));
    }
    let need = |k: &str| get(k).ok_or_else(|| malformed(&format!("it has no {k}")));
    // each name as the signer wrote it: URL-encoded, in lower case (whether or not the list itself
    // arrived encoded once more, as in a presigned URL's query)
    let list = |v: &str| -> Vec<String> {
        v.split(';')
            .filter(|s| !s.is_empty())
            .map(|s| {
                let name = percent_encoding::percent_decode_str(s).decode_utf8_lossy();
                uri_encode(&name, false).to_ascii_lowercase()
            })
            .collect()
    };
    Ok(Some(Claim {
        key_id: need("q-ak")?.to_string(),
        sign_time: need("q-sign-time")?.to_string(),
        key_time: need("q-key-time")?.to_string(),
        header_list: list(get("q-header-list").unwrap_or_default()),
        param_list: list(get("q-url-param-list").unwrap_or_default()),
        signature: need("q-signature")?.to_ascii_lowercase(),
    }))
}

/// `name=value` of each listed name, both URL-encoded (the name in lower case), `&`-joined.
fn listed(names: &[String], values: &[(String, String)]) -> String {
    names
        .iter()
        .map(|name| {
            let value = (values.iter())
                .find(|(k, _)| uri_encode(k, false).eq_ignore_ascii_case(name))
                .map_or(String::new(), |(_, v)| uri_encode(v, false));
            format!("{name}={value}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

type HmacSha1 = Hmac<Sha1>;

fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    hex(&mac.finalize().into_bytes())
}

/// The string to sign of `req` with `headers`, and its signature with `secret`.
fn sign(
    secret: &str,
    claim: &Claim,
    req: &Signed,
    headers: &[(String, String)],
) -> (String, String) {
    let path = percent_encoding::percent_decode_str(req.path).decode_utf8_lossy();
    let params = req.params();
    let http_string = format!(
        "{}\n{path}\n{}\n{}\n",
        req.method.to_ascii_lowercase(),
        listed(&claim.param_list, &params),
        listed(&claim.header_list, headers)
    );
    let to_sign = format!(
        "sha1\n{}\n{}\n",
        claim.sign_time,
        hex(&Sha1::digest(http_string.as_bytes()))
    );
    let key = hmac_hex(secret.as_bytes(), claim.key_time.as_bytes());
    let signature = hmac_hex(key.as_bytes(), to_sign.as_bytes());
    (to_sign, signature)
}

/// `start;end` in Unix seconds.
fn window(sign_time: &str) -> Option<(u64, u64)> {
    let (start, end) = sign_time.split_once(';')?;
    Some((start.parse().ok()?, end.parse().ok()?))
}

/// Who signed `req` with COS's scheme; `Ok(None)` when it is not COS-signed.
pub(super) fn verify(keys: &AccessKeys, req: &Signed, now: SystemTime) -> Result<Option<String>> {
    let Some(claim) = claim(req)? else {
        return Ok(None);
    };
    let secret = keys.secret(&claim.key_id)?;
    let (start, end) = window(&claim.sign_time)
        .ok_or_else(|| malformed("q-sign-time is not <start>;<end> in Unix seconds"))?;
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if now > end {
        return Err(Error::new(
            Code::AccessDenied,
            format!("Request has expired: the signature was valid until {end} (q-sign-time)"),
        ));
    }
    if now + 60 < start {
        return Err(Error::new(
            Code::RequestTimeTooSkewed,
            format!(
                "the signature is valid only from {start} (q-sign-time): set the client's clock"
            ),
        ));
    }
    let mut headers: Vec<(String, String)> = (req.headers.iter())
        .map(|(k, v)| {
            let v = String::from_utf8_lossy(v.as_bytes());
            (k.as_str().to_string(), v.into_owned())
        })
        .collect();
    let (to_sign, expected) = sign(secret, &claim, req, &headers);
    if same(expected.as_bytes(), claim.signature.as_bytes()) {
        return Ok(Some(claim.key_id));
    }
    // The SDKs sign the host without its port (the URL's host name) while sending it with one.
    let host = headers.iter_mut().find(|(k, _)| k == "host");
    if let Some((_, value)) = host.filter(|(_, v)| v.rsplit_once(':').is_some()) {
        let name = value.rsplit_once(':').map(|(h, _)| h.to_string());
        *value = name.unwrap_or_default();
        let (_, expected) = sign(secret, &claim, req, &headers);
        if same(expected.as_bytes(), claim.signature.as_bytes()) {
            return Ok(Some(claim.key_id));
        }
    }
    Err(Error::new(
        Code::SignatureDoesNotMatch,
        format!(
            "The request signature we calculated does not match the signature you provided. Check \
             your SecretKey and signing method. StringToSign: {to_sign:?}"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};
    use std::time::Duration;

    /// Made by Tencent's Python SDK (cos-python-sdk-v5's `CosS3Auth`, with its clock at 1700000000)
    /// for a PUT of `/exampleobject(腾讯云)` to `127.0.0.1:8080` with two parameters and four headers;
    /// the SDK signs the host without its port.
    const AUTH: &str = "q-sign-algorithm=sha1&q-ak=AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q&q-sign-time=1699999940;1700003600&q-key-time=1699999940;1700003600&q-header-list=content-length;content-md5;content-type;host;x-cos-meta-a&q-url-param-list=response-content-type;x-id&q-signature=f009aade76ff354780475c225878269eaac5a875";

    fn headers(auth: Option<&str>, meta: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("host", "127.0.0.1:8080"),
            ("content-type", "image/jpeg"),
            ("x-cos-meta-a", meta),
            ("content-md5", "mQ/fVh815F3k6TAUm8m0eg=="),
            ("content-length", "7"),
        ] {
            h.insert(k, HeaderValue::from_str(v).unwrap());
        }
        if let Some(a) = auth {
            h.insert("authorization", HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn the_python_sdks_signature_verifies_in_its_window_only() {
        let keys = AccessKeys::parse(
            "AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q:BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz",
        )
        .unwrap();
        let h = headers(Some(AUTH), "b c");
        let req = Signed {
            method: "PUT",
            path: "/exampleobject(%E8%85%BE%E8%AE%AF%E4%BA%91)",
            query: "response-content-type=image%2Fjpeg&x-id=x%20y",
            headers: &h,
            body: b"ABCDEFG",
        };
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(
            verify(&keys, &req, at(1_700_000_000)).unwrap().as_deref(),
            Some("AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q")
        );
        let e = verify(&keys, &req, at(1_700_003_601)).unwrap_err();
        assert_eq!(e.code, Code::AccessDenied);
        assert!(e.message.contains("expired"), "{e}");
        // a signed header changed, another method, another parameter value, another secret
        let changed = headers(Some(AUTH), "b d");
        for (tampered, why) in [
            (
                Signed {
                    headers: &changed,
                    ..req
                },
                "header",
            ),
            (
                Signed {
                    method: "GET",
                    ..req
                },
                "method",
            ),
            (
                Signed {
                    query: "response-content-type=image%2Fpng&x-id=x%20y",
                    ..req
                },
                "parameter",
            ),
        ] {
            let e = verify(&keys, &tampered, at(1_700_000_000)).unwrap_err();
            assert_eq!(e.code, Code::SignatureDoesNotMatch, "{why}");
        }
        let wrong =
            AccessKeys::parse("AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q:another-secret").unwrap();
        assert_eq!(
            verify(&wrong, &req, at(1_700_000_000)).unwrap_err().code,
            Code::SignatureDoesNotMatch
        );
        // the same fields as a presigned URL's query
        let bare = headers(None, "b c");
        let query = format!("response-content-type=image%2Fjpeg&x-id=x%20y&{AUTH}");
        let presigned = Signed {
            query: &query,
            headers: &bare,
            ..req
        };
        assert!(verify(&keys, &presigned, at(1_700_000_000))
            .unwrap()
            .is_some());
        // no signature: not COS's
        let plain = Signed {
            headers: &bare,
            ..req
        };
        assert!(verify(&keys, &plain, at(1_700_000_000)).unwrap().is_none());
    }
}
