//! The only part of the service that knows HTTP: it reads a request into a plain request for
//! `download` or `process` (key, query, headers that matter), and writes their result or error as a
//! response with COS's headers and `<Error>` body.

use super::download::{Answer, Download, Query};
use super::process::{Post, Put};
use super::Service;
use crate::codec::Format;
use crate::cos::{self, PicOperations};
use crate::store::{key_of, Metadata};
use crate::{Code, Error, Result};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use md5::{Digest, Md5};
use percent_encoding::percent_decode_str;
use std::sync::atomic::{AtomicU64, Ordering};

impl Service {
    /// `GET` or `HEAD /<key>[?imageMogr2/...|?imageInfo|?imageAve]`.
    pub async fn download<B: AsRef<[u8]>>(&self, req: Request<B>) -> Response<Vec<u8>> {
        let (rid, resource) = (request_id(&req), req.uri().path().to_string());
        let download = read_download(&req).and_then(|d| {
            if self.config.signer.is_on() {
                let query = req.uri().query();
                self.config
                    .signer
                    .verify(&d.key, d.query.processor(), query)?;
            }
            Ok(d)
        });
        // A format/auto answer, error or not, depends on Accept.
        let vary = download.as_ref().is_ok_and(Download::varies_on_accept);
        let answer = match download {
            Ok(d) => self.answer(d).await,
            Err(e) => Err(e),
        };
        let mut resp = match answer.and_then(|a| answer_response(a, req.method(), self)) {
            Ok(resp) => resp,
            Err(e) => error_response(&e, &resource, &rid),
        };
        if vary {
            resp.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept"));
        }
        with_request_id(resp, &rid)
    }

    /// The writes: `POST /<key>?image_process`, `PUT /<key>` (with or without a `Pic-Operations`
    /// header) and `DELETE /<key>`.
    pub async fn process<B: AsRef<[u8]>>(&self, req: Request<B>) -> Response<Vec<u8>> {
        let (rid, resource) = (request_id(&req), req.uri().path().to_string());
        let resp = match self.write(&req).await {
            Ok(written) => written.response(),
            Err(e) => error_response(&e, &resource, &rid),
        };
        with_request_id(resp, &rid)
    }

    async fn write<B: AsRef<[u8]>>(&self, req: &Request<B>) -> Result<Written> {
        let key = key_of(req.uri().path())?;
        if req.method() == Method::DELETE {
            self.check_writable(&key)?;
            self.default_bucket.delete(&key).await?;
            return Ok(Written::default());
        }
        let ops = match req.headers().get("pic-operations") {
            // COS takes the JSON as raw UTF-8 (file names in other scripts), not only ASCII
            Some(v) => Some(PicOperations::parse(
                std::str::from_utf8(v.as_bytes())
                    .map_err(|_| Error::invalid("the Pic-Operations header is not valid UTF-8"))?,
            )?),
            None => None,
        };
        let ((original, results), stored) = match *req.method() {
            Method::POST => {
                if !matches!(parse_query(req.uri().query())?, Query::ImageProcess) {
                    return Err(Error::invalid(
                        "POST needs ?image_process in the query string",
                    ));
                }
                let ops = ops.ok_or_else(|| {
                    Error::invalid("POST ?image_process needs a Pic-Operations header")
                })?;
                (self.post(Post { key, ops }).await?, None)
            }
            Method::PUT => {
                let body = req.body().as_ref();
                let content_type = req
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .unwrap_or_else(|| guess_type(body));
                let plain = ops.is_none();
                let put = Put {
                    key,
                    body,
                    content_type,
                    metadata: user_metadata(req.headers()),
                    ops,
                };
                let (report, etag) = self.put(put).await?;
                let stored = Some((etag, crc64(body)));
                if plain {
                    // COS answers a plain PUT with headers only.
                    return Ok(Written {
                        status: StatusCode::OK,
                        xml: None,
                        stored,
                    });
                }
                (report, stored)
            }
            ref m => {
                return Err(Error::invalid(format!(
                    "{m} is not supported here: use POST ?image_process, PUT or DELETE"
                )))
            }
        };
        Ok(Written {
            status: StatusCode::OK,
            xml: Some(cos::upload_result_xml(Some(&original), &results)),
            stored,
        })
    }
}

/// What a write answers: its status, an `UploadResult` when rules ran, and for a PUT the stored
/// object's ETag and CRC64 (the COS SDKs check them against what they sent).
struct Written {
    status: StatusCode,
    xml: Option<String>,
    stored: Option<(String, u64)>,
}

impl Default for Written {
    /// A DELETE's answer: 204, nothing more.
    fn default() -> Self {
        Written {
            status: StatusCode::NO_CONTENT,
            xml: None,
            stored: None,
        }
    }
}

impl Written {
    fn response(self) -> Response<Vec<u8>> {
        let mut b = Response::builder().status(self.status);
        if let Some((etag, crc)) = &self.stored {
            b = b
                .header(header::ETAG, format!("\"{etag}\""))
                .header(CRC64, crc.to_string());
        }
        let body = match self.xml {
            Some(xml) => {
                b = b.header(header::CONTENT_TYPE, "application/xml");
                xml.into_bytes()
            }
            None => Vec::new(),
        };
        b.header(header::CONTENT_LENGTH, body.len())
            .body(body)
            .unwrap_or_default()
    }
}

/// COS's checksum header: CRC-64/XZ (ECMA-182 polynomial, reflected) of the object, in decimal.
const CRC64: &str = "x-cos-hash-crc64ecma";

fn crc64(body: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Xz, body)
}

/// Every answer names its request (`x-cos-request-id`, as COS's do), errors included.
fn with_request_id(mut resp: Response<Vec<u8>>, rid: &str) -> Response<Vec<u8>> {
    if let Ok(v) = HeaderValue::from_str(rid) {
        resp.headers_mut().insert("x-cos-request-id", v);
    }
    resp
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
    Ok(Download {
        key: key_of(req.uri().path())?,
        query: parse_query(req.uri().query())?,
        accept: req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    })
}

fn answer_response(
    answer: Answer,
    method: &Method,
    service: &Service,
) -> Result<Response<Vec<u8>>> {
    let (body, content_type, stored, warning) = match answer {
        Answer::Redirect(url) => {
            return Response::builder()
                .status(StatusCode::FOUND)
                .header(header::LOCATION, url)
                .header(header::CACHE_CONTROL, "no-store")
                .header(header::CONTENT_LENGTH, 0)
                .body(Vec::new())
                .map_err(|e| Error::internal(e.to_string()))
        }
        Answer::Body {
            bytes,
            content_type,
            stored,
            warning,
        } => (bytes, content_type, stored, warning),
    };
    // A stored object that is not an image (HTML, SVG, anything a browser would run) is served as a
    // download, in a sandbox, never sniffed: a bucket of user uploads must not become a web site.
    let inert = stored.is_some() && !renders_inertly(&content_type);
    // The object itself carries its stored ETag and user metadata; a conversion, its own digest.
    let (etag, metadata) = match stored {
        Some((etag, metadata)) => (etag, metadata),
        None => (format!("{:x}", Md5::digest(&body)), Metadata::new()),
    };
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::ETAG, format!("\"{etag}\""))
        .header(CRC64, crc64(&body).to_string())
        .header(header::CACHE_CONTROL, service.config.cache_control.as_str());
    for (name, value) in &metadata {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp = resp.header(format!("x-cos-meta-{name}"), v);
        }
    }
    if let Some(w) = warning.and_then(|w| HeaderValue::from_str(&w).ok()) {
        resp = resp.header(WARNING, w);
    }
    resp = resp.header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if inert {
        resp = resp
            .header(header::CONTENT_DISPOSITION, "attachment")
            .header(header::CONTENT_SECURITY_POLICY, "sandbox");
    }
    let body = if method == Method::HEAD {
        Vec::new()
    } else {
        body
    };
    resp.body(body).map_err(|e| Error::internal(e.to_string()))
}

/// What the query string asks for: the first `imageMogr2...`/`imageView2...`, `imageInfo`, `imageAve` or
/// `image_process` parameter, percent-decoded; the rule is parsed here. Any other parameter without a
/// value names a processor mogr does not implement (`?watermark/...`, `?imageSlim`): a 400 naming it,
/// never the untouched original, so a client can tell. Parameters with values (`response-*`,
/// `versionId`, signatures, cache busters) are not processors and leave the answer alone.
pub(super) fn parse_query(q: Option<&str>) -> Result<Query> {
    let Some(q) = q else {
        return Ok(Query::Original);
    };
    for part in q.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let decoded = percent_decode_str(name).decode_utf8().map_err(|_| {
            Error::invalid("the query string is not valid UTF-8 after percent-decoding")
        })?;
        let p = decoded.as_ref();
        if p.starts_with("imageMogr2") || p.starts_with("imageView2") {
            return Ok(Query::Rule {
                rule: crate::parse(p)?,
                text: p.to_string(),
            });
        }
        match p {
            "imageInfo" => return Ok(Query::Info),
            "imageAve" => return Ok(Query::Ave),
            "image_process" => return Ok(Query::ImageProcess),
            _ if value.is_empty() => {
                let processor: String = p.split('/').next().unwrap_or(p).chars().take(40).collect();
                return Err(Error::invalid(format!(
                    "{processor:?} is not a processor mogr implements: use imageMogr2, imageView2, \
                     imageInfo or imageAve"
                )));
            }
            _ => {}
        }
    }
    Ok(Query::Original)
}

/// One access-log line per request: method, key, rule, status, bytes, milliseconds and request id,
/// as `tracing` fields (plain text locally, JSON on Lambda). Start it before the request is handed
/// on, finish it with the response.
pub struct AccessLog {
    method: Method,
    key: String,
    rule: String,
    started: std::time::Instant,
}

impl AccessLog {
    pub fn start<B>(req: &Request<B>) -> AccessLog {
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let path = req.uri().path();
        AccessLog {
            method: req.method().clone(),
            key: decode(path.strip_prefix('/').unwrap_or(path)),
            rule: decode(req.uri().query().unwrap_or("")),
            started: std::time::Instant::now(),
        }
    }

    /// Logs the line and hands the response back.
    pub fn finish<B: AsRef<[u8]>>(self, resp: Response<B>) -> Response<B> {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let rid = resp
            .headers()
            .get("x-cos-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info!(
            method = %self.method,
            key = %self.key,
            rule = %self.rule,
            status = resp.status().as_u16(),
            bytes = resp.body().as_ref().len(),
            ms = (ms * 10.0).round() / 10.0,
            request_id = %rid,
            "request"
        );
        resp
    }
}

/// Says what a conversion lost (e.g. the frames of an animation converted to a still format).
pub const WARNING: &str = "x-mogr-warning";

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);

/// The request's id: the one a proxy or Lambda gave it, or a new one.
pub fn request_id<B>(req: &Request<B>) -> String {
    for h in [
        "x-amz-request-id",
        "x-request-id",
        "lambda-runtime-aws-request-id",
    ] {
        if let Some(v) = req.headers().get(h).and_then(|v| v.to_str().ok()) {
            return v.to_string();
        }
    }
    format!(
        "mogr-{:x}-{}",
        std::process::id(),
        REQUEST_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// `x-cos-meta-*` (COS) and `x-amz-meta-*` (S3) headers as user metadata.
pub fn user_metadata(headers: &HeaderMap) -> Metadata {
    headers
        .iter()
        .filter_map(|(k, v)| {
            let k = k.as_str();
            let name = k
                .strip_prefix("x-cos-meta-")
                .or_else(|| k.strip_prefix("x-amz-meta-"))?;
            Some((name.to_string(), v.to_str().ok()?.to_string()))
        })
        .collect()
}

/// Whether a browser shows `content_type` without running anything: raster images only (SVG holds
/// scripts).
fn renders_inertly(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("image/") && !essence.starts_with("image/svg")
}

/// The content type of a body by its magic bytes.
pub(super) fn guess_type(body: &[u8]) -> String {
    Format::sniff(body)
        .map(|f| f.mime().to_string())
        .unwrap_or_else(|_| "application/octet-stream".into())
}

/// A COS `<Error>` response with the code's status.
pub fn error_response(e: &Error, resource: &str, request_id: &str) -> Response<Vec<u8>> {
    if e.is_client_error() {
        tracing::info!(code = e.code.as_str(), error = %e.message, resource, request_id, "request refused");
    } else if matches!(e.code, Code::SlowDown | Code::ServiceUnavailable) {
        tracing::warn!(code = e.code.as_str(), error = %e.message, resource, request_id, "request shed or stopped");
    } else {
        tracing::error!(code = e.code.as_str(), error = %e.message, resource, request_id, "request failed");
    }
    let xml = cos::error_xml(e, resource, request_id);
    let mut resp = with_request_id(Response::new(xml.into_bytes()), request_id);
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

    #[test]
    fn crc64_is_cos_crc64ecma() {
        // CRC-64/XZ's check value (what COS's SDKs compute with crcmod / Go's crc64.ECMA table)
        assert_eq!(crc64(b"123456789"), 0x995D_C9BB_DF19_39FA);
        assert_eq!(crc64(b""), 0);
    }

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
        for unknown in ["watermark/1/image/aHR0cA", "imageSlim", "x=1&exif"] {
            let e = parse_query(Some(unknown)).unwrap_err();
            assert!(e.message.contains("not a processor mogr implements"), "{e}");
        }
    }
}
