//! The writes as HTTP: `PUT /<key>` (with or without `Pic-Operations`, or a copy source), `POST
//! /<key>?image_process`, `DELETE /<key>` and DeleteObjects, read into the service's typed operations
//! and answered with COS's XML.

use super::answer::{crc64, CRC64};
use super::{
    check_body_digests, check_implemented, error_response, integrity, parse_query, refuse,
    request_id, user_metadata, with_record, with_request_id,
};
use crate::cos::{self, PicOperations};
use crate::query;
use crate::service::content_type::{check_content_type, guess_type};
use crate::service::download::Query;
use crate::service::process::{Copy, Post, Put};
use crate::service::record::Record;
use crate::service::Service;
use crate::store::key_of;
use crate::{Code, Error, Result};
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;

impl Service {
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
        if req.method() == Method::POST && query::has(req.uri().query(), "delete") {
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
                ..Written::default()
            });
        }
        if req.method() == Method::DELETE {
            self.delete(&key).await?;
            return Ok(Written::default());
        }
        let ops = pic_operations(req.headers())?;
        let (report, stored) = match *req.method() {
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
                        stored,
                        ..Written::default()
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
            xml: Some(cos::upload_result_xml(
                Some(&report.original),
                &report.results,
            )),
            stored,
            record: report.record,
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
            ..Written::default()
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
pub(super) fn pic_operations(headers: &HeaderMap) -> Result<Option<PicOperations>> {
    let Some(v) = headers.get("pic-operations") else {
        return Ok(None);
    };
    // COS takes the JSON as raw UTF-8 (file names in other scripts), not only ASCII
    let json = std::str::from_utf8(v.as_bytes())
        .map_err(|_| Error::invalid("the Pic-Operations header is not valid UTF-8"))?;
    PicOperations::parse(json).map(Some)
}

/// What a write answers: its status, an `UploadResult` when rules ran, and for a PUT the stored
/// object's ETag and CRC64 (the COS SDKs check them against what they sent).
struct Written {
    status: StatusCode,
    xml: Option<String>,
    stored: Option<(String, u64)>,
    record: Record,
}

impl Default for Written {
    /// A DELETE's answer: 204, nothing more.
    fn default() -> Self {
        Written {
            status: StatusCode::NO_CONTENT,
            xml: None,
            stored: None,
            record: Record::default(),
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
        let resp = (b.header(header::CONTENT_LENGTH, body.len()))
            .body(body)
            .unwrap_or_default();
        with_record(resp, self.record, 0)
    }
}
