//! A download's answer as HTTP: the request read into what it asks (the rule parsed before storage is
//! touched), the result written with the object's headers, preconditions, one range, COS's CRC64 and
//! the user metadata in the client's dialect.

use super::{
    check_implemented, conditional, error_response, header_text, is_s3_request, parse_query,
    request_id, with_record, with_request_id, Addressed,
};
use crate::service::content_type::renders_inertly;
use crate::service::download::{Answer, Body, Download};
use crate::service::Service;
use crate::store::{self, key_of, Metadata};
use crate::{accept, query};
use crate::{Code, Error, Result};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};

impl Service {
    /// `GET` or `HEAD /<key>[?imageMogr2/...|?imageInfo|?imageAve]`.
    pub async fn download<B: AsRef<[u8]>>(&self, mut req: Request<B>) -> Response<Vec<u8>> {
        let (rid, resource) = (request_id(&req), req.uri().path().to_string());
        let download = self
            .address(&mut req)
            .and_then(|()| check_implemented(&req, false))
            .and_then(|()| read_download(&req))
            .and_then(|d| {
                if self.config.signer.is_on() {
                    let params = query::form(req.uri().query());
                    (self.config.signer).verify(&d.key, d.query.processor(), &params)?;
                }
                Ok(d)
            });
        // A format/auto answer, error or not, depends on Accept.
        let vary = download.as_ref().is_ok_and(Download::varies_on_accept);
        let answer = match download {
            Ok(d) => self.answer(d).await,
            Err(e) => Err(e),
        };
        let mut resp = match answer.and_then(|a| answer_response(a, &req, self)) {
            Ok(resp) => resp,
            Err(e) => error_response(&e, &resource, &rid),
        };
        if vary {
            resp.headers_mut().insert(
                header::VARY,
                HeaderValue::from_static("Accept, X-Mogr-Accept"),
            );
        }
        with_request_id(resp, &rid)
    }
}

/// A GET or HEAD read into what it asks; the rule is parsed before storage is touched, so a bad rule
/// costs no read.
fn read_download<B>(req: &Request<B>) -> Result<Download> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(Error::invalid(format!(
            "{} is not supported here: use GET",
            req.method()
        )));
    }
    let text = |name| header_text(req.headers(), name).map(str::to_string);
    Ok(Download {
        key: key_of(req.uri().path())?,
        query: parse_query(req.uri().query())?,
        // a CDN in front sends the class of the client's Accept in a header of its own
        accept: text(accept::CLASS_HEADER)
            .map(|class| accept::from_class(&class))
            .or_else(|| text(header::ACCEPT.as_str())),
        if_none_match: text(header::IF_NONE_MATCH.as_str()),
    })
}

fn answer_response<B>(
    answer: Answer,
    req: &Request<B>,
    service: &Service,
) -> Result<Response<Vec<u8>>> {
    let answered = match answer {
        Answer::NotModified { tag } => {
            return Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header(header::ETAG, format!("\"{tag}\""))
                .header(header::CACHE_CONTROL, service.config.cache_control.as_str())
                .body(Vec::new())
                .map_err(|e| Error::internal(e.to_string()))
        }
        Answer::Redirect(url) => {
            return Response::builder()
                .status(StatusCode::FOUND)
                .header(header::LOCATION, url)
                .header(header::CACHE_CONTROL, "no-store")
                .header(header::CONTENT_LENGTH, 0)
                .body(Vec::new())
                .map_err(|e| Error::internal(e.to_string()))
        }
        Answer::Body(b) => b,
    };
    let Body {
        bytes: body,
        content_type,
        stored,
        tag,
        warning,
        slim_flag,
        record,
    } = answered;
    // The object itself carries its stored ETag, metadata and time; a conversion or a fact, its tag.
    let is_stored = stored.is_some();
    let (etag, metadata, modified) = match stored {
        Some(head) => (head.etag, head.metadata, head.last_modified),
        None => (
            tag.unwrap_or_else(|| store::content_etag(&body)),
            Metadata::new(),
            None,
        ),
    };
    let mut resp = Response::builder().header(header::ETAG, format!("\"{etag}\""));
    // The object's own headers from its upload, then the request's `response-*` overrides (S3's
    // GetObject), over the service's Cache-Control.
    let mut headers: Vec<(String, String)> = store::stored_headers(&metadata)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if is_stored {
        headers.extend(
            query::form(req.uri().query())
                .into_iter()
                .filter_map(|(k, v)| {
                    let name = k.strip_prefix("response-")?;
                    (name == "content-type" || store::STORED_HEADERS.contains(&name))
                        .then(|| (name.to_string(), v))
                }),
        );
    }
    let given = |name: &str| {
        headers
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let content_type = given("content-type").unwrap_or(content_type);
    // A stored object that is not an image (HTML, SVG, anything a browser would run) is served as a
    // download, in a sandbox, never sniffed: a bucket of user uploads must not become a web site.
    let inert = is_stored && !renders_inertly(&content_type);
    resp = resp.header(
        header::CACHE_CONTROL,
        given("cache-control").unwrap_or_else(|| service.config.cache_control.clone()),
    );
    for name in ["content-encoding", "content-language", "expires"] {
        if let Some(v) = given(name).and_then(|v| HeaderValue::from_str(&v).ok()) {
            resp = resp.header(name, v);
        }
    }
    if inert {
        resp = resp
            .header(header::CONTENT_DISPOSITION, "attachment")
            .header(header::CONTENT_SECURITY_POLICY, "sandbox");
    } else if let Some(v) =
        given("content-disposition").and_then(|v| HeaderValue::from_str(&v).ok())
    {
        resp = resp.header(header::CONTENT_DISPOSITION, v);
    }
    if let Some(m) = modified {
        resp = resp.header(header::LAST_MODIFIED, httpdate::fmt_http_date(m));
    }
    match conditional::preconditions(req.headers(), &etag, modified) {
        conditional::Verdict::Send => {}
        conditional::Verdict::NotModified => {
            return resp
                .status(StatusCode::NOT_MODIFIED)
                .body(Vec::new())
                .map_err(|e| Error::internal(e.to_string()));
        }
        conditional::Verdict::Failed(why) => {
            return Err(Error::new(Code::PreconditionFailed, why));
        }
    }
    let len = body.len() as u64;
    // The CRC64 is the whole object's, on a part too: what the COS SDKs compare a download with.
    resp = resp.header(CRC64, crc64(&body).to_string());
    let (status, body) = match conditional::range(req.headers(), len, &etag, modified) {
        conditional::Range::Whole => (StatusCode::OK, body),
        conditional::Range::Part(start, end) => {
            resp = resp.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
            let part = body[start as usize..=end as usize].to_vec();
            (StatusCode::PARTIAL_CONTENT, part)
        }
        conditional::Range::Unsatisfiable => {
            return Err(Error::new(
                Code::InvalidRange,
                format!(
                    "the Range {:?} starts past the end of the {len} bytes",
                    req.headers()
                        .get(header::RANGE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                ),
            ));
        }
    };
    resp = resp
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::ACCEPT_RANGES, "bytes");
    for prefix in meta_prefixes(req) {
        for (name, value) in store::user_entries(&metadata) {
            if let Ok(v) = HeaderValue::from_str(value) {
                resp = resp.header(format!("{prefix}{name}"), v);
            }
        }
    }
    if let Some(w) = warning.and_then(|w| HeaderValue::from_str(&w).ok()) {
        resp = resp.header(WARNING, w);
    }
    if let Some(flag) = slim_flag {
        resp = resp.header(SLIM_FLAG, u16::from(flag));
    }
    resp = resp.header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    let sent = body.len();
    let body = if req.method() == Method::HEAD {
        Vec::new()
    } else {
        body
    };
    let resp = resp
        .body(body)
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok(with_record(resp, record, sent))
}

/// The user-metadata prefixes an answer to `req` uses: the client's dialect — `x-amz-meta-` for an S3
/// client (SigV4 or `x-amz-*` headers: boto3, the AWS CLI), `x-cos-meta-` for a COS client (COS's
/// signature or `x-cos-*` headers) — and both when the request says neither (curl, a browser).
fn meta_prefixes<B>(req: &Request<B>) -> &'static [&'static str] {
    let headers = req.headers();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let query = req.uri().query().unwrap_or_default();
    let has = |prefix: &str| headers.keys().any(|k| k.as_str().starts_with(prefix));
    // what `address` found (the same rule without it); any `x-amz-*` header counts here too
    let s3 = req
        .extensions()
        .get::<Addressed>()
        .map_or_else(|| is_s3_request(req), |a| a.s3)
        || has("x-amz-");
    let cos =
        auth.contains("q-sign-algorithm") || query.contains("q-sign-algorithm") || has("x-cos-");
    match (s3, cos) {
        (true, false) => &["x-amz-meta-"],
        (false, true) => &["x-cos-meta-"],
        _ => &["x-cos-meta-", "x-amz-meta-"],
    }
}

/// COS's checksum header: CRC-64/XZ (ECMA-182 polynomial, reflected) of the object, in decimal.
pub(super) const CRC64: &str = "x-cos-hash-crc64ecma";

pub(super) fn crc64(body: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Xz, body)
}

/// Says what a conversion lost (e.g. the frames of an animation converted to a still format).
const WARNING: &str = "x-mogr-warning";
/// COS's answer header to `imageSlim`: 1 when the image was slimmed, 2 when the original came back.
const SLIM_FLAG: &str = "x-slimflag";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_is_cos_crc64ecma() {
        // CRC-64/XZ's check value (what COS's SDKs compute with crcmod / Go's crc64.ECMA table)
        assert_eq!(crc64(b"123456789"), 0x995D_C9BB_DF19_39FA);
        assert_eq!(crc64(b""), 0);
    }
}
