//! The only part of the service that knows HTTP: one router for every entry point (`route.rs`), which
//! reads a request into the service's typed operations — a download (`answer.rs`), a write
//! (`write.rs`), a listing or a multipart step — and writes their result or error as a response with
//! COS's headers and `<Error>` body; the access log (`log.rs`).

mod address;
mod answer;
mod body;
mod conditional;
mod integrity;
mod log;
mod refuse;
mod route;
mod write;

pub use address::{is_s3_request, Addressed};
pub use integrity::check_body_digests;
pub use log::{request_id, AccessLog, RequestId, Route};
pub use refuse::check_implemented;
pub use route::Routes;

use super::download::Query;
use super::record::Record;
use crate::store::{self, Metadata};
use crate::{cos, Code, Error, Result};
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use log::escape_controls;

/// Every answer names its request (`x-cos-request-id`, as COS's do), errors included.
fn with_request_id(mut resp: Response<Vec<u8>>, rid: &str) -> Response<Vec<u8>> {
    if let Ok(v) = HeaderValue::from_str(rid) {
        resp.headers_mut().insert("x-cos-request-id", v);
    }
    resp
}

/// What the request did, as the answer's headers — `Server-Timing` (where a conversion's time went;
/// the object itself has no stages) and `X-Mogr-Bytes: in=<source>; out=<outputs>` (or, without
/// outputs, the `sent` body: a fact) — and as the response's extension, which the access log and the
/// metrics read.
fn with_record(mut resp: Response<Vec<u8>>, record: Record, sent: usize) -> Response<Vec<u8>> {
    let headers = resp.headers_mut();
    if !record.timings.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&record.timings.server_timing()) {
            headers.insert("server-timing", v);
        }
    }
    if let Some(n) = record.bytes_in {
        let out = match record.outputs.is_empty() {
            true => sent as u64,
            false => record.bytes_out(),
        };
        if let Ok(v) = HeaderValue::from_str(&format!("in={n}; out={out}")) {
            headers.insert("x-mogr-bytes", v);
        }
    }
    resp.extensions_mut().insert(record);
    resp
}

/// Parameters that are never processors, whatever their value (COS's signatures send
/// `q-url-param-list=&q-header-list=` before the rule): signatures of COS, S3 and mogr, the SDKs'
/// `x-id`, `versionId` and `response-*` overrides.
fn never_a_processor(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "q-sign-algorithm",
        "q-ak",
        "q-sign-time",
        "q-key-time",
        "q-header-list",
        "q-url-param-list",
        "q-signature",
        "x-cos-security-token",
        "x-id",
        "versionId",
        "AWSAccessKeyId",
        "Signature",
        "Expires",
        super::sign::EXPIRES,
        super::sign::SIGNATURE,
    ];
    NAMES.contains(&name) || name.starts_with("X-Amz-") || name.starts_with("response-")
}

/// A header's value as text (`None` when absent or not visible ASCII).
pub(super) fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What the query string asks for: the first `imageMogr2...`/`imageView2...`/`watermark/...`, `imageInfo`, `imageAve` or
/// `image_process` parameter, percent-decoded; the rule is parsed here. Any other parameter without a
/// value names a processor mogr does not implement (`?faceEffect/...`, `?imageSlimmer`): a 400 naming it,
/// never the untouched original, so a client can tell. Signatures and the SDKs' own parameters
/// ([`never_a_processor`]) and parameters with values (cache busters) leave the answer alone.
pub(super) fn parse_query(q: Option<&str>) -> Result<Query> {
    let Some(q) = q else {
        return Ok(Query::Original);
    };
    for param in crate::query::params(Some(q)) {
        let decoded = param.name_utf8()?;
        let p = decoded.as_ref();
        if p.starts_with("imageMogr2")
            || p.starts_with("imageView2")
            || p == "imageSlim"
            || p.starts_with("watermark/")
        {
            return Ok(Query::Rule {
                rule: crate::parse(p)?,
                text: p.to_string(),
            });
        }
        match p {
            "imageInfo" => return Ok(Query::Info),
            "imageAve" => return Ok(Query::Ave),
            "exif" => return Ok(Query::Exif),
            "image_process" => return Ok(Query::ImageProcess),
            _ if never_a_processor(p) => {}
            _ if param.raw_value.is_empty() => {
                let processor: String = p.split('/').next().unwrap_or(p).chars().take(40).collect();
                return Err(Error::invalid(format!(
                    "{processor:?} is not a processor mogr implements: use imageMogr2, imageView2, \
                     imageSlim, watermark, imageInfo, imageAve or exif"
                )));
            }
            _ => {}
        }
    }
    Ok(Query::Original)
}

/// `x-cos-meta-*` (COS) and `x-amz-meta-*` (S3) headers as user metadata, with the standard headers an
/// object keeps (`Cache-Control`, `Content-Disposition`, … : [`store::STORED_HEADERS`]).
pub fn user_metadata(headers: &HeaderMap) -> Metadata {
    headers
        .iter()
        .filter_map(|(k, v)| {
            let k = k.as_str();
            let value = v.to_str().ok()?.to_string();
            if store::STORED_HEADERS.contains(&k) {
                return Some((store::stored_header_key(k), value));
            }
            let name = k
                .strip_prefix("x-cos-meta-")
                .or_else(|| k.strip_prefix("x-amz-meta-"))?;
            Some((name.to_string(), value))
        })
        .collect()
}

/// A COS `<Error>` response with the code's status.
pub fn error_response(e: &Error, resource: &str, request_id: &str) -> Response<Vec<u8>> {
    // a message may quote the client's text: one line in the log whatever it holds
    let message = escape_controls(&e.message);
    if e.is_client_error() || e.code == Code::NotImplemented {
        tracing::info!(code = e.code.as_str(), error = %message, resource, request_id, "request refused");
    } else if matches!(e.code, Code::SlowDown | Code::ServiceUnavailable) {
        tracing::warn!(code = e.code.as_str(), error = %message, resource, request_id, "request shed or stopped");
    } else {
        tracing::error!(code = e.code.as_str(), error = %message, resource, request_id, "request failed");
    }
    let xml = cos::error_xml(e, resource, request_id);
    let mut resp = with_request_id(Response::new(xml.into_bytes()), request_id);
    resp.extensions_mut().insert(e.code);
    *resp.status_mut() =
        StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    if e.code == Code::SlowDown {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;

    #[test]
    fn queries_carry_their_parsed_rule() {
        assert!(matches!(parse_query(None).unwrap(), Query::Original));
        assert!(matches!(
            parse_query(Some("imageInfo")).unwrap(),
            Query::Info
        ));
        assert!(matches!(
            parse_query(Some("image_process")).unwrap(),
            Query::ImageProcess
        ));
        let Query::Rule { rule, text } =
            parse_query(Some("imageMogr2/thumbnail/80x%7CimageMogr2/format/heif")).unwrap()
        else {
            panic!("a rule query");
        };
        assert_eq!(text, "imageMogr2/thumbnail/80x|imageMogr2/format/heif");
        assert_eq!(rule.format, Some(Format::Heif));
        assert!(parse_query(Some("imageMogr2/thumbnail/80xx")).is_err());
        assert!(matches!(
            parse_query(Some("x=1&imageAve")).unwrap(),
            Query::Ave
        ));
        // the COS SDK sends a rule as a parameter without a value, percent-encoded
        let Query::Rule { rule, .. } =
            parse_query(Some("imageView2%2F2%2Fw%2F100%2Fformat%2Fpng=")).unwrap()
        else {
            panic!("a rule query");
        };
        assert_eq!(rule.format, Some(Format::Png));
        // parameters with values are not processors; ones without are, and unknown ones are refused
        assert!(matches!(
            parse_query(Some("response-content-type=image%2Fpng&v=3")).unwrap(),
            Query::Original
        ));
        // COS's query-string signature, empty lists included, before the rule
        let signed = "q-sign-algorithm=sha1&q-ak=AKID&q-sign-time=1%3B2&q-key-time=1%3B2&\
                      q-header-list=&q-url-param-list=&q-signature=ab&imageMogr2/format/png";
        let Query::Rule { rule, .. } = parse_query(Some(signed)).unwrap() else {
            panic!("a rule query");
        };
        assert_eq!(rule.format, Some(Format::Png));
        assert!(matches!(
            parse_query(Some("q-header-list=&x-id=GetObject")).unwrap(),
            Query::Original
        ));
        let Query::Rule { rule, .. } = parse_query(Some("x=1&imageSlim")).unwrap() else {
            panic!("imageSlim is a rule");
        };
        assert!(rule.slim);
        assert!(matches!(
            parse_query(Some("x=1&exif")).unwrap(),
            Query::Exif
        ));
        for unknown in [
            "faceEffect/type/1",
            "imageSlimmer",
            "x=1&faces",
            "watermark=",
        ] {
            let e = parse_query(Some(unknown)).unwrap_err();
            assert!(e.message.contains("not a processor mogr implements"), "{e}");
        }
    }
}
