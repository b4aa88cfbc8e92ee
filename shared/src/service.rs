//! The three ways to process (cos-api.md) as plain async functions over `http::Request` / `Response`:
//! [`Service::download`], [`Service::process`] (POST `?image_process`, PUT with `Pic-Operations`) and
//! [`Service::on_upload`] (an S3 `ObjectCreated` notification). The Lambda functions and the local server
//! call exactly these.

use crate::codec::{self, Format};
use crate::info::{self, ImageInfo};
use crate::pic_ops::{self, OriginalInfo, PicOperations, ProcessResult};
use crate::rule::Profile;
use crate::store::{self, Metadata, Store};
use crate::{convert, Code, Error, Limits, Result};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use md5::{Digest, Md5};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Service settings; [`Config::from_env`] reads them from `MOGR_*` variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub limits: Limits,
    /// `Cache-Control` of download-time results.
    pub cache_control: String,
    /// Host used in `Location` (`<host>/<key>`); default `<bucket>.s3.amazonaws.com`.
    pub public_host: Option<String>,
    /// Results larger than this are stored under `large_prefix` and answered with a 302 redirect
    /// (Lambda's buffered responses hold about 4.5 MB of binary). `None`: always inline.
    pub max_inline_bytes: Option<usize>,
    pub large_prefix: String,
    /// Default Pic-Operations per key prefix, applied on upload when the object carries none.
    pub default_rules: Vec<(String, PicOperations)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            cache_control: "public, max-age=86400".into(),
            public_host: None,
            max_inline_bytes: None,
            large_prefix: "_mogr/large/".into(),
            default_rules: Vec::new(),
        }
    }
}

impl Config {
    /// Reads `MOGR_CACHE_CONTROL`, `MOGR_PUBLIC_HOST`, `MOGR_MAX_INLINE_BYTES`, `MOGR_DEFAULT_RULES`
    /// (JSON object: key prefix -> Pic-Operations) and `MOGR_MAX_INPUT_BYTES`/`MOGR_MAX_PIXELS`.
    pub fn from_env() -> Result<Config> {
        let mut c = Config::default();
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(v) = var("MOGR_CACHE_CONTROL") {
            c.cache_control = v;
        }
        c.public_host = var("MOGR_PUBLIC_HOST");
        let num = |k: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| Error::internal(format!("{k}={v:?} is not a whole number")))
        };
        if let Some(v) = var("MOGR_MAX_INLINE_BYTES") {
            c.max_inline_bytes = Some(num("MOGR_MAX_INLINE_BYTES", v)? as usize);
        }
        if let Some(v) = var("MOGR_MAX_INPUT_BYTES") {
            c.limits.max_input_bytes = num("MOGR_MAX_INPUT_BYTES", v)? as usize;
        }
        if let Some(v) = var("MOGR_MAX_PIXELS") {
            c.limits.max_pixels = num("MOGR_MAX_PIXELS", v)?;
        }
        if let Some(v) = var("MOGR_DEFAULT_RULES") {
            let map: BTreeMap<String, serde_json::Value> =
                serde_json::from_str(&v).map_err(|e| {
                    Error::internal(format!("MOGR_DEFAULT_RULES is not a JSON object: {e}"))
                })?;
            for (prefix, ops) in map {
                c.default_rules
                    .push((prefix, PicOperations::parse(&ops.to_string())?));
            }
        }
        Ok(c)
    }
}

/// The buckets a service may touch: the one it serves, plus the allow-list that Pic-Operations'
/// `bucket` field may name.
#[derive(Clone)]
pub struct Service {
    pub config: Config,
    default_bucket: Arc<dyn Store>,
    others: BTreeMap<String, Arc<dyn Store>>,
}

/// Characters escaped in keys placed in URLs (`/` is kept).
const KEY_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// A key as it appears in a URL path.
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY_ESCAPE).to_string()
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);

fn request_id<B>(req: &Request<B>) -> String {
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

/// What the query string asks for.
#[derive(Debug, PartialEq, Eq)]
enum Query {
    Original,
    Rule(String),
    Info,
    Ave,
    ImageProcess,
}

fn parse_query(q: Option<&str>) -> Result<Query> {
    let Some(q) = q else {
        return Ok(Query::Original);
    };
    for part in q.split('&') {
        let decoded = percent_decode_str(part).decode_utf8().map_err(|_| {
            Error::invalid("the query string is not valid UTF-8 after percent-decoding")
        })?;
        let p = decoded.trim_end_matches('=');
        if p.starts_with("imageMogr2") {
            return Ok(Query::Rule(p.to_string()));
        }
        match p {
            "imageInfo" => return Ok(Query::Info),
            "imageAve" => return Ok(Query::Ave),
            "image_process" => return Ok(Query::ImageProcess),
            _ => {}
        }
    }
    Ok(Query::Original)
}

/// The object key of a request path (`/a%20b.jpg` -> `a b.jpg`).
pub fn key_of(path: &str) -> Result<String> {
    let raw = path.strip_prefix('/').unwrap_or(path);
    let key = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| Error::invalid("the object key is not valid UTF-8 after percent-decoding"))?
        .to_string();
    store::check_key(&key)?;
    Ok(key)
}

/// The object key of an S3 event record: URL-encoded, with `+` for spaces.
pub fn key_from_event(raw: &str) -> Result<String> {
    key_of(&raw.replace('+', " "))
}

/// Runs CPU-bound image work on the blocking pool, off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("image task failed: {e}")))?
}

/// A prepared output: converted, not yet stored.
struct Prepared {
    bucket: Arc<dyn Store>,
    key: String,
    output: convert::Output,
}

/// What `on_upload` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// The object is one of mogr's outputs: its notification is ignored.
    SkippedOutput,
    /// The object carries no rules and no default rule matches its key.
    NoRules,
    /// The object was deleted or replaced before it could be read.
    Gone,
    Processed(Vec<ProcessResult>),
}

impl Service {
    pub fn new(config: Config, bucket: Arc<dyn Store>) -> Service {
        Service {
            config,
            default_bucket: bucket,
            others: BTreeMap::new(),
        }
    }

    /// Allows Pic-Operations' `bucket` field to name this bucket.
    pub fn allow_bucket(mut self, store: Arc<dyn Store>) -> Service {
        self.others.insert(store.bucket().to_string(), store);
        self
    }

    pub fn bucket(&self) -> &Arc<dyn Store> {
        &self.default_bucket
    }

    fn bucket_named(&self, name: Option<&str>) -> Result<Arc<dyn Store>> {
        match name {
            None => Ok(self.default_bucket.clone()),
            Some(n) if n == self.default_bucket.bucket() => Ok(self.default_bucket.clone()),
            Some(n) => self.others.get(n).cloned().ok_or_else(|| {
                Error::new(
                    Code::AccessDenied,
                    format!(
                        "bucket {n:?} is not on this service's allow-list; outputs may go to {}",
                        self.allowed().join(", ")
                    ),
                )
            }),
        }
    }

    fn allowed(&self) -> Vec<String> {
        std::iter::once(self.default_bucket.bucket().to_string())
            .chain(self.others.keys().cloned())
            .collect()
    }

    fn location(&self, bucket: &str, key: &str) -> String {
        let host = match &self.config.public_host {
            Some(h) if bucket == self.default_bucket.bucket() => h.clone(),
            _ => format!("{bucket}.s3.amazonaws.com"),
        };
        format!("{host}/{}", encode_key(key))
    }

    /// `GET /<key>[?imageMogr2/...|?imageInfo|?imageAve]`.
    pub async fn download<B: AsRef<[u8]>>(&self, req: Request<B>) -> Response<Vec<u8>> {
        let rid = request_id(&req);
        let resource = req.uri().path().to_string();
        // Set once the rule is parsed: a format/auto answer, error or not, depends on Accept.
        let mut vary_accept = false;
        let mut resp = match self.download_inner(&req, &mut vary_accept).await {
            Ok(resp) => resp,
            Err(e) => error_response(&e, &resource, &rid),
        };
        if vary_accept {
            resp.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept"));
        }
        resp
    }

    async fn download_inner<B>(
        &self,
        req: &Request<B>,
        vary_accept: &mut bool,
    ) -> Result<Response<Vec<u8>>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Err(Error::invalid(format!(
                "{} is not supported here: use GET",
                req.method()
            )));
        }
        let key = key_of(req.uri().path())?;
        let query = parse_query(req.uri().query())?;
        // Parse the rule before touching storage: a bad rule costs no read.
        let rule = match &query {
            Query::Rule(r) => Some(crate::parse(r)?),
            _ => None,
        };
        *vary_accept = rule.as_ref().is_some_and(|r| r.format_auto);
        let obj = self.default_bucket.get(&key).await?;
        let (body, content_type) = match query {
            Query::Original | Query::ImageProcess => {
                let ct = obj
                    .head
                    .content_type
                    .clone()
                    .unwrap_or_else(|| guess_type(&obj.body));
                (obj.body, ct)
            }
            Query::Info => {
                let (input, limits) = (obj.body, self.config.limits);
                let info = blocking(move || info::image_info(&input, &limits)).await?;
                (
                    serde_json::to_vec(&info).map_err(|e| Error::internal(e.to_string()))?,
                    "application/json".into(),
                )
            }
            Query::Ave => {
                let (input, limits) = (obj.body, self.config.limits);
                let rgb = blocking(move || {
                    let pic = codec::decode(&input, &limits, codec::Frames::First)?;
                    Ok(info::average_rgb(&pic))
                })
                .await?;
                let body = serde_json::json!({ "RGB": rgb }).to_string().into_bytes();
                (body, "application/json".into())
            }
            Query::Rule(ref text) => {
                let Some(mut rule) = rule else {
                    return Err(Error::internal("the rule was not parsed"));
                };
                if rule.format_auto {
                    let accept = req
                        .headers()
                        .get(header::ACCEPT)
                        .and_then(|v| v.to_str().ok());
                    let input = codec::probe(&obj.body, &self.config.limits)?.format;
                    rule.format = Some(crate::accept::negotiate(accept, input)?);
                }
                let (input, limits) = (obj.body, self.config.limits);
                let out =
                    blocking(move || convert::convert(&input, &rule, &limits, Profile::Download))
                        .await?;
                let ct = out.format.mime().to_string();
                if let Some(max) = self.config.max_inline_bytes {
                    if out.bytes.len() > max {
                        return self.redirect_large(&key, &obj.head.etag, text, out).await;
                    }
                }
                (out.bytes, ct)
            }
        };
        let etag = format!("\"{:x}\"", Md5::digest(&body));
        let resp = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, body.len())
            .header(header::ETAG, etag)
            .header(header::CACHE_CONTROL, self.config.cache_control.as_str());
        let body = if req.method() == Method::HEAD {
            Vec::new()
        } else {
            body
        };
        resp.body(body).map_err(|e| Error::internal(e.to_string()))
    }

    /// Stores a result too large to answer inline and redirects to it. The key is derived from the
    /// source's ETag and the rule, so a repeated request reuses the stored copy.
    async fn redirect_large(
        &self,
        key: &str,
        etag: &str,
        rule: &str,
        out: convert::Output,
    ) -> Result<Response<Vec<u8>>> {
        let digest = format!(
            "{:x}",
            Md5::digest(format!("{key}\n{etag}\n{rule}").as_bytes())
        );
        let large_key = format!(
            "{}{digest}.{}",
            self.config.large_prefix,
            out.format.extension()
        );
        if self.default_bucket.head(&large_key).await?.is_none() {
            let mut meta = Metadata::new();
            meta.insert(store::OUTPUT_MARKER.into(), "1".into());
            meta.insert(store::SOURCE_ETAG.into(), etag.to_string());
            self.default_bucket
                .put(&large_key, out.bytes, out.format.mime(), &meta)
                .await?;
        }
        let url = self.default_bucket.url(&large_key).await?;
        Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, url)
            .header(header::CACHE_CONTROL, "no-store")
            .header(header::CONTENT_LENGTH, 0)
            .body(Vec::new())
            .map_err(|e| Error::internal(e.to_string()))
    }

    /// `POST /<key>?image_process` and `PUT /<key>` with a `Pic-Operations` header.
    pub async fn process<B: AsRef<[u8]>>(&self, req: Request<B>) -> Response<Vec<u8>> {
        let rid = request_id(&req);
        let resource = req.uri().path().to_string();
        match self.process_inner(&req).await {
            Ok(xml) => Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/xml")
                .header(header::CONTENT_LENGTH, xml.len())
                .body(xml.into_bytes())
                .unwrap_or_default(),
            Err(e) => error_response(&e, &resource, &rid),
        }
    }

    async fn process_inner<B: AsRef<[u8]>>(&self, req: &Request<B>) -> Result<String> {
        let key = key_of(req.uri().path())?;
        let header_ops = match req.headers().get("pic-operations") {
            Some(v) => Some(PicOperations::parse(v.to_str().map_err(|_| {
                Error::invalid("the Pic-Operations header is not valid UTF-8")
            })?)?),
            None => None,
        };
        match *req.method() {
            Method::POST => {
                if parse_query(req.uri().query())? != Query::ImageProcess {
                    return Err(Error::invalid(
                        "POST needs ?image_process in the query string",
                    ));
                }
                let ops = header_ops.ok_or_else(|| {
                    Error::invalid("POST ?image_process needs a Pic-Operations header")
                })?;
                let obj = self.default_bucket.get(&key).await?;
                let prepared = self
                    .prepare(&key, &obj.body, &ops, Profile::Persistent)
                    .await?;
                let info = self.pic_info(&ops, &obj.body).await?;
                let results = self.store_outputs(prepared, &obj.head.etag).await?;
                let original = self.original(&key, &obj.head.etag, info);
                Ok(pic_ops::upload_result_xml(original.as_ref(), &results))
            }
            Method::PUT => {
                let body = req.body().as_ref();
                self.config.limits.check_bytes(body.len())?;
                let content_type = req
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .unwrap_or_else(|| guess_type(body));
                let ops = header_ops.unwrap_or(PicOperations {
                    is_pic_info: 0,
                    rules: Vec::new(),
                });
                // Every rule is converted before anything is stored: a failing rule stores nothing.
                let prepared = self.prepare(&key, body, &ops, Profile::Persistent).await?;
                let info = self.pic_info(&ops, body).await?;
                // User metadata is stored as given, x-amz-meta-pic-operations included: those rules are
                // the upload hook's to run, as for an object put straight into the bucket.
                let meta = user_metadata(req.headers());
                let etag = self
                    .default_bucket
                    .put(&key, body.to_vec(), &content_type, &meta)
                    .await?;
                let results = self.store_outputs(prepared, &etag).await?;
                let original = self.original(&key, &etag, info);
                Ok(pic_ops::upload_result_xml(original.as_ref(), &results))
            }
            ref m => Err(Error::invalid(format!(
                "{m} is not supported here: use POST ?image_process or PUT"
            ))),
        }
    }

    /// The input's ImageInfo when `is_pic_info` is 1, read before anything is stored.
    async fn pic_info(&self, ops: &PicOperations, body: &[u8]) -> Result<Option<ImageInfo>> {
        if ops.is_pic_info != 1 {
            return Ok(None);
        }
        let (input, limits) = (body.to_vec(), self.config.limits);
        Ok(Some(
            blocking(move || info::image_info(&input, &limits)).await?,
        ))
    }

    fn original(&self, key: &str, etag: &str, info: Option<ImageInfo>) -> Option<OriginalInfo> {
        Some(OriginalInfo {
            key: key.to_string(),
            location: self.location(self.default_bucket.bucket(), key),
            etag: etag.to_string(),
            info: info?,
        })
    }

    /// Validates every rule (grammar, fileid, bucket) and converts; stores nothing.
    async fn prepare(
        &self,
        key: &str,
        input: &[u8],
        ops: &PicOperations,
        profile: Profile,
    ) -> Result<Vec<Prepared>> {
        let mut jobs = Vec::new();
        for r in &ops.rules {
            let rule = crate::parse(&r.rule)?;
            let out_key = pic_ops::resolve_fileid(key, &r.fileid)?;
            store::check_key(&out_key)?;
            jobs.push((self.bucket_named(r.bucket.as_deref())?, out_key, rule));
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let limits = self.config.limits;
        let input = input.to_vec();
        let rules: Vec<_> = jobs.iter().map(|(_, _, r)| r.clone()).collect();
        let outputs = blocking(move || {
            rules
                .iter()
                .map(|rule| convert::convert(&input, rule, &limits, profile))
                .collect::<Result<Vec<_>>>()
        })
        .await?;
        Ok(jobs
            .into_iter()
            .zip(outputs)
            .map(|((bucket, key, _), output)| Prepared {
                bucket,
                key,
                output,
            })
            .collect())
    }

    async fn store_outputs(
        &self,
        prepared: Vec<Prepared>,
        source_etag: &str,
    ) -> Result<Vec<ProcessResult>> {
        let mut results = Vec::with_capacity(prepared.len());
        for p in prepared {
            let mut meta = Metadata::new();
            meta.insert(store::OUTPUT_MARKER.into(), "1".into());
            meta.insert(
                store::SOURCE_ETAG.into(),
                source_etag.trim_matches('"').to_string(),
            );
            let size = p.output.bytes.len() as u64;
            let etag = p
                .bucket
                .put(&p.key, p.output.bytes, p.output.format.mime(), &meta)
                .await?;
            results.push(ProcessResult {
                location: self.location(p.bucket.bucket(), &p.key),
                key: p.key,
                format: p.output.format.name().to_string(),
                width: p.output.width,
                height: p.output.height,
                size,
                quality: p.output.quality,
                etag,
            });
        }
        Ok(results)
    }

    /// An S3 `ObjectCreated` notification for `key` in the served bucket. Rules come from the object's
    /// `x-amz-meta-pic-operations`, else from the longest matching default-rule prefix. mogr's own
    /// outputs are ignored, and redelivery rewrites the same outputs from the same source.
    pub async fn on_upload(&self, key: &str) -> Result<UploadOutcome> {
        store::check_key(key)?;
        let Some(head) = self.default_bucket.head(key).await? else {
            return Ok(UploadOutcome::Gone);
        };
        if head.metadata.contains_key(store::OUTPUT_MARKER) {
            return Ok(UploadOutcome::SkippedOutput);
        }
        let ops = match head.metadata.get(store::PIC_OPERATIONS) {
            Some(json) => PicOperations::parse(json)?,
            None => match self
                .config
                .default_rules
                .iter()
                .filter(|(prefix, _)| key.starts_with(prefix.as_str()))
                .max_by_key(|(prefix, _)| prefix.len())
            {
                Some((_, ops)) => ops.clone(),
                None => return Ok(UploadOutcome::NoRules),
            },
        };
        if ops.rules.is_empty() {
            return Ok(UploadOutcome::NoRules);
        }
        let obj = match self.default_bucket.get(key).await {
            Ok(o) => o,
            Err(e) if e.code == Code::NoSuchKey => return Ok(UploadOutcome::Gone),
            Err(e) => return Err(e),
        };
        let prepared = self
            .prepare(key, &obj.body, &ops, Profile::Persistent)
            .await?;
        // A rule whose fileid is the input key would overwrite it and trigger another notification for
        // an object marked as output: ignored, as intended.
        Ok(UploadOutcome::Processed(
            self.store_outputs(prepared, &obj.head.etag).await?,
        ))
    }
}

/// `x-amz-meta-*` headers as user metadata.
fn user_metadata(headers: &http::HeaderMap) -> Metadata {
    headers
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix("x-amz-meta-")?;
            Some((name.to_string(), v.to_str().ok()?.to_string()))
        })
        .collect()
}

fn guess_type(body: &[u8]) -> String {
    Format::sniff(body)
        .map(|f| f.mime().to_string())
        .unwrap_or_else(|_| "application/octet-stream".into())
}

/// A COS `<Error>` response with the code's status.
pub fn error_response(e: &Error, resource: &str, request_id: &str) -> Response<Vec<u8>> {
    if e.is_client_error() {
        tracing::info!(code = e.code.as_str(), error = %e.message, resource, request_id, "request refused");
    } else {
        tracing::error!(code = e.code.as_str(), error = %e.message, resource, request_id, "request failed");
    }
    let xml = pic_ops::error_xml(e, resource, request_id);
    let mut resp = Response::new(xml.into_bytes());
    *resp.status_mut() =
        StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_keys() {
        assert_eq!(parse_query(None).unwrap(), Query::Original);
        assert_eq!(parse_query(Some("imageInfo")).unwrap(), Query::Info);
        assert_eq!(
            parse_query(Some("image_process")).unwrap(),
            Query::ImageProcess
        );
        assert_eq!(
            parse_query(Some("imageMogr2/thumbnail/80x%7CimageMogr2/format/heif")).unwrap(),
            Query::Rule("imageMogr2/thumbnail/80x|imageMogr2/format/heif".into())
        );
        assert_eq!(parse_query(Some("x=1&imageAve")).unwrap(), Query::Ave);
        assert_eq!(key_of("/a%20b/c+d.jpg").unwrap(), "a b/c+d.jpg");
        assert_eq!(key_of("/%E7%85%A7%E7%89%87.png").unwrap(), "照片.png");
        assert!(key_of("/a/../b.jpg").is_err());
        assert!(key_of("/.mogr/meta/x.json").is_err());
        assert_eq!(encode_key("a b/照片.png"), "a%20b/%E7%85%A7%E7%89%87.png");
    }
}
