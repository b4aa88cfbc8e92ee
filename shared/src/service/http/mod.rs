//! The only part of the service that knows HTTP: it reads a request into a plain request for
//! `download` or `process` (key, query, headers that matter), and writes their result or error as a
//! response with COS's headers and `<Error>` body.

mod address;
mod conditional;
mod integrity;
mod refuse;
mod route;

pub use address::{is_s3_request, Addressed};
pub use integrity::check_body_digests;
pub use refuse::check_implemented;
pub use route::Routes;

use super::download::{Answer, Download, Query};
use super::process::{Copy, Post, Put};
use super::Service;
use crate::codec::Format;
use crate::cos::{self, PicOperations};
use crate::store::{self, key_of, Metadata};
use crate::{Code, Error, Result};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use md5::{Digest, Md5};
use percent_encoding::percent_decode_str;
use std::sync::atomic::{AtomicU64, Ordering};

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
        let mut resp = match answer.and_then(|a| answer_response(a, &req, self)) {
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
    pub async fn process<B: AsRef<[u8]>>(&self, mut req: Request<B>) -> Response<Vec<u8>> {
        let (rid, resource) = (request_id(&req), req.uri().path().to_string());
        let written = match self.address(&mut req) {
            Ok(()) => self.write(&req).await,
            Err(e) => Err(e),
        };
        let resp = match written {
            Ok(written) => written.response(),
            Err(e) => error_response(&e, &resource, &rid),
        };
        with_request_id(resp, &rid)
    }

    async fn write<B: AsRef<[u8]>>(&self, req: &Request<B>) -> Result<Written> {
        check_implemented(req, false)?;
        check_body_digests(req.headers(), req.body().as_ref())?;
        if req.method() == Method::POST
            && refuse::params(req.uri().query()).any(|(n, _)| n == "delete")
        {
            return self.delete_objects(req).await;
        }
        let key = key_of(req.uri().path())?;
        if let Some(copy) = self.read_copy(req, &key)? {
            let head = self.copy(copy).await?;
            let modified = head
                .last_modified
                .unwrap_or_else(std::time::SystemTime::now);
            return Ok(Written {
                status: StatusCode::OK,
                xml: Some(cos::copy_result_xml(&head.etag, modified)),
                stored: None,
            });
        }
        if req.method() == Method::DELETE {
            self.delete(&key).await?;
            return Ok(Written::default());
        }
        let ops = pic_operations(req.headers())?;
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
                let content_type = match req.headers().get(header::CONTENT_TYPE) {
                    Some(v) => {
                        let v = v.to_str().unwrap_or("\u{fffd}");
                        check_content_type(v)?;
                        v.to_string()
                    }
                    None => guess_type(body),
                };
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

impl Service {
    /// DeleteObjects: `POST /?delete` with a `<Delete>` body (and `Content-MD5` or an
    /// `x-amz-checksum-*`, as S3 requires); each key is deleted or fails on its own (a reserved key is
    /// `AccessDenied`), and the answer lists them (only the failures when quiet).
    async fn delete_objects<B: AsRef<[u8]>>(&self, req: &Request<B>) -> Result<Written> {
        if req.uri().path() != "/" {
            return Err(Error::invalid(
                "DeleteObjects is POST /?delete on the bucket, not on a key",
            ));
        }
        if !integrity::carries_digest(req.headers()) {
            return Err(Error::invalid(
                "InvalidRequest: DeleteObjects needs a Content-MD5 (or x-amz-checksum-*) header of its body",
            ));
        }
        let delete = cos::delete::parse_delete(req.body().as_ref())?;
        let mut results = Vec::with_capacity(delete.objects.len());
        for (key, version) in delete.objects {
            let result = match version.as_deref() {
                Some(v) if v != "null" => Err(Error::new(
                    Code::NotImplemented,
                    "deleting an object version is not implemented by mogr",
                )),
                _ => self.delete(&key).await,
            };
            results.push((key, result));
        }
        Ok(Written {
            status: StatusCode::OK,
            xml: Some(cos::delete::delete_result_xml(delete.quiet, &results)),
            stored: None,
        })
    }

    /// A PUT's copy source, when it has one: `x-amz-copy-source` (S3: `[/]<bucket>/<key>`, URL-encoded,
    /// `?versionId=null` at most) or `x-cos-copy-source` (COS: `<bucket>-<appid>.cos.<region>.myqcloud.com/<key>`),
    /// naming the served bucket; `x-amz-metadata-directive: REPLACE` / `x-cos-metadata-directive:
    /// Replaced` takes the type and metadata from this request instead of the source.
    fn read_copy<B>(&self, req: &Request<B>, key: &str) -> Result<Option<Copy>> {
        let headers = req.headers();
        let Some(value) = refuse::COPY_SOURCES
            .iter()
            .find_map(|h| headers.get(*h))
            .map(|v| v.to_str().unwrap_or_default())
        else {
            return Ok(None);
        };
        if headers.contains_key("pic-operations") {
            return Err(Error::invalid(
                "a copy runs no Pic-Operations rules: copy first, then POST ?image_process",
            ));
        }
        let bad = || {
            Error::invalid(format!(
                "the copy source {value:?} is not <bucket>/<key> (S3) or \
                 <bucket>-<appid>.cos.<region>.myqcloud.com/<key> (COS)"
            ))
        };
        let (path, version) = match value.split_once('?') {
            Some((p, q)) => (p, q.strip_prefix("versionId=").ok_or_else(bad).map(Some)?),
            None => (value, None),
        };
        if version.is_some_and(|v| v != "null") {
            return Err(Error::new(
                Code::NotImplemented,
                "copying an object version is not implemented by mogr; nothing was read or written",
            ));
        }
        let path = path.strip_prefix('/').unwrap_or(path);
        let (bucket, from) = path.split_once('/').ok_or_else(bad)?;
        let bucket = percent_decode_str(bucket).decode_utf8_lossy();
        // COS names the bucket by its host
        let bucket = bucket.split(".cos.").next().unwrap_or_default();
        if self.bucket_named(Some(bucket))?.name() != self.default_bucket.name() {
            return Err(Error::new(
                Code::NotImplemented,
                format!(
                    "copying from another bucket ({bucket:?}) is not implemented by mogr; copy within \
                     {:?}",
                    self.default_bucket.name()
                ),
            ));
        }
        let from = percent_decode_str(from)
            .decode_utf8()
            .map_err(|_| bad())?
            .into_owned();
        let directive = ["x-amz-metadata-directive", "x-cos-metadata-directive"]
            .iter()
            .find_map(|h| headers.get(*h))
            .map(|v| v.to_str().unwrap_or_default().to_ascii_lowercase());
        let replace = match directive.as_deref() {
            None | Some("copy") => None,
            Some("replace" | "replaced") => {
                let content_type = match headers.get(header::CONTENT_TYPE) {
                    Some(v) => v.to_str().unwrap_or("\u{fffd}"),
                    None => "application/octet-stream",
                };
                check_content_type(content_type)?;
                Some((content_type.to_string(), user_metadata(headers)))
            }
            Some(other) => {
                return Err(Error::invalid(format!(
                    "metadata directive {other:?} is neither COPY nor REPLACE (COS: Copy, Replaced)"
                )))
            }
        };
        Ok(Some(Copy {
            key: key.to_string(),
            from,
            replace,
        }))
    }
}

/// The rules of a `Pic-Operations` header, when there is one.
fn pic_operations(headers: &HeaderMap) -> Result<Option<PicOperations>> {
    let Some(v) = headers.get("pic-operations") else {
        return Ok(None);
    };
    // COS takes the JSON as raw UTF-8 (file names in other scripts), not only ASCII
    let json = std::str::from_utf8(v.as_bytes())
        .map_err(|_| Error::invalid("the Pic-Operations header is not valid UTF-8"))?;
    PicOperations::parse(json).map(Some)
}

/// The query's parameters, percent-decoded (`+` a space); a parameter without a value maps to "".
pub fn params(query: Option<&str>) -> std::collections::BTreeMap<String, String> {
    refuse::params(query).collect()
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

fn answer_response<B>(
    answer: Answer,
    req: &Request<B>,
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
    // The object itself carries its stored ETag, metadata and time; a conversion, its own digest.
    let is_stored = stored.is_some();
    let (etag, metadata, modified) = match stored {
        Some(head) => (head.etag, head.metadata, head.last_modified),
        None => (format!("{:x}", Md5::digest(&body)), Metadata::new(), None),
    };
    let mut resp = Response::builder().header(header::ETAG, format!("\"{etag}\""));
    // The object's own headers from its upload, then the request's `response-*` overrides (S3's
    // GetObject), over the service's Cache-Control.
    let mut headers: Vec<(String, String)> = store::stored_headers(&metadata)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if is_stored {
        headers.extend(refuse::params(req.uri().query()).filter_map(|(k, v)| {
            let name = k.strip_prefix("response-")?;
            (name == "content-type" || store::STORED_HEADERS.contains(&name))
                .then(|| (name.to_string(), v))
        }));
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
    resp = resp.header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    let body = if req.method() == Method::HEAD {
        Vec::new()
    } else {
        body
    };
    resp.body(body).map_err(|e| Error::internal(e.to_string()))
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

/// What the query string asks for: the first `imageMogr2...`/`imageView2...`, `imageInfo`, `imageAve` or
/// `image_process` parameter, percent-decoded; the rule is parsed here. Any other parameter without a
/// value names a processor mogr does not implement (`?watermark/...`, `?imageSlim`): a 400 naming it,
/// never the untouched original, so a client can tell. Signatures and the SDKs' own parameters
/// ([`never_a_processor`]) and parameters with values (cache busters) leave the answer alone.
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
            _ if never_a_processor(p) => {}
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
    /// The key and the query are the client's text: decoded, with control characters escaped (a line
    /// of the log is one request, whatever the client sent) and signatures and tokens redacted.
    pub fn start<B>(req: &Request<B>) -> AccessLog {
        let decode = |s: &str| escape_controls(&percent_decode_str(s).decode_utf8_lossy());
        let path = req.uri().path();
        let query = req
            .uri()
            .query()
            .unwrap_or("")
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((name, _)) if is_secret(&percent_decode_str(name).decode_utf8_lossy()) => {
                    format!("{name}=REDACTED")
                }
                _ => p.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&");
        AccessLog {
            method: req.method().clone(),
            key: decode(path.strip_prefix('/').unwrap_or(path)),
            rule: decode(&query),
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

/// `s` with its control characters (CR, LF, ESC, …) written as `\u{..}` escapes.
fn escape_controls(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Query parameters whose values are credentials: signatures and session tokens.
fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with("signature") || name.ends_with("security-token")
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

/// Whether a browser shows `content_type` without running anything: exactly one raster image type,
/// `image/<subtype>` and its parameters (SVG and other `+xml` types hold scripts). A value that lists
/// several types (`image/png, text/html`: browsers take the last one) is not one.
fn renders_inertly(content_type: &str) -> bool {
    media_type(content_type).is_some_and(|(kind, sub)| {
        kind == "image" && !sub.starts_with("svg") && !sub.ends_with("+xml")
    })
}

/// The type and subtype of a single media type (`type/subtype[; name=value]...`, RFC 9110 tokens), in
/// lower case; `None` for anything else (a list, a missing subtype, stray characters).
fn media_type(value: &str) -> Option<(String, String)> {
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
    };
    let mut parts = value.split(';');
    let (kind, sub) = parts.next()?.trim().split_once('/')?;
    let params_ok = parts.all(|p| {
        let p = p.trim();
        p.is_empty()
            || p.split_once('=').is_some_and(|(k, v)| {
                token(k.trim())
                    && (token(v)
                        || (v.len() >= 2
                            && v.starts_with('"')
                            && v.ends_with('"')
                            && !v[1..v.len() - 1].contains(['"', ','])))
            })
    });
    (token(kind) && token(sub) && params_ok)
        .then(|| (kind.to_ascii_lowercase(), sub.to_ascii_lowercase()))
}

/// A `Content-Type` given to store: one media type, or a 400 saying so (what is stored is served back).
pub(super) fn check_content_type(value: &str) -> Result<()> {
    match media_type(value) {
        Some(_) => Ok(()),
        None => Err(Error::invalid(format!(
            "Content-Type {:?} is not one media type (type/subtype[; name=value]); send one, e.g. image/jpeg",
            value.chars().take(100).collect::<String>()
        ))),
    }
}

/// The content type of a body by its magic bytes.
pub(super) fn guess_type(body: &[u8]) -> String {
    Format::sniff(body)
        .map(|f| f.mime().to_string())
        .unwrap_or_else(|_| "application/octet-stream".into())
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
    fn only_one_raster_image_type_renders_inertly() {
        for inert in [
            "image/png",
            "IMAGE/JPEG; charset=x",
            "image/webp;q=\"a b\"",
            "image/avif",
        ] {
            assert!(renders_inertly(inert), "{inert}");
            assert!(check_content_type(inert).is_ok(), "{inert}");
        }
        for active in [
            "image/png, text/html",
            "image/png;a=b, text/html",
            "image/png;a=\"b,\", text/html",
            "image/svg+xml",
            "image/foo+xml",
            "text/html",
            "image/",
            "image",
            "image/png html",
            "",
        ] {
            assert!(!renders_inertly(active), "{active}");
        }
        assert!(check_content_type("image/png, text/html").is_err());
        assert!(check_content_type("text/html; charset=utf-8").is_ok());
    }

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
        for unknown in [
            "watermark/1/image/aHR0cA",
            "imageSlim",
            "x=1&exif",
            "imageSlim=",
        ] {
            let e = parse_query(Some(unknown)).unwrap_err();
            assert!(e.message.contains("not a processor mogr implements"), "{e}");
        }
    }
}
