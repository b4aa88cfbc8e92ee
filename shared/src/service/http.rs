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
        let download = read_download(&req);
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
        resp
    }

    /// `POST /<key>?image_process` and `PUT /<key>` with a `Pic-Operations` header.
    pub async fn process<B: AsRef<[u8]>>(&self, req: Request<B>) -> Response<Vec<u8>> {
        let (rid, resource) = (request_id(&req), req.uri().path().to_string());
        match self.process_request(&req).await {
            Ok(xml) => Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/xml")
                .header(header::CONTENT_LENGTH, xml.len())
                .body(xml.into_bytes())
                .unwrap_or_default(),
            Err(e) => error_response(&e, &resource, &rid),
        }
    }

    async fn process_request<B: AsRef<[u8]>>(&self, req: &Request<B>) -> Result<String> {
        let key = key_of(req.uri().path())?;
        let ops = match req.headers().get("pic-operations") {
            Some(v) => Some(PicOperations::parse(v.to_str().map_err(|_| {
                Error::invalid("the Pic-Operations header is not valid UTF-8")
            })?)?),
            None => None,
        };
        let (original, results) = match *req.method() {
            Method::POST => {
                if !matches!(parse_query(req.uri().query())?, Query::ImageProcess) {
                    return Err(Error::invalid(
                        "POST needs ?image_process in the query string",
                    ));
                }
                let ops = ops.ok_or_else(|| {
                    Error::invalid("POST ?image_process needs a Pic-Operations header")
                })?;
                self.post(Post { key, ops }).await
            }
            Method::PUT => {
                let body = req.body().as_ref();
                let content_type = req
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
                    .unwrap_or_else(|| guess_type(body));
                let put = Put {
                    key,
                    body,
                    content_type,
                    metadata: user_metadata(req.headers()),
                    ops,
                };
                self.put(put).await
            }
            ref m => {
                return Err(Error::invalid(format!(
                    "{m} is not supported here: use POST ?image_process or PUT"
                )))
            }
        }?;
        Ok(cos::upload_result_xml(original.as_ref(), &results))
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
    let (body, content_type) = match answer {
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
        } => (bytes, content_type),
    };
    let etag = format!("\"{:x}\"", Md5::digest(&body));
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, service.config.cache_control.as_str());
    let body = if method == Method::HEAD {
        Vec::new()
    } else {
        body
    };
    resp.body(body).map_err(|e| Error::internal(e.to_string()))
}

/// What the query string asks for: the first `imageMogr2...`, `imageInfo`, `imageAve` or
/// `image_process` parameter, percent-decoded; the rule is parsed here.
pub(super) fn parse_query(q: Option<&str>) -> Result<Query> {
    let Some(q) = q else {
        return Ok(Query::Original);
    };
    for part in q.split('&') {
        let decoded = percent_decode_str(part).decode_utf8().map_err(|_| {
            Error::invalid("the query string is not valid UTF-8 after percent-decoding")
        })?;
        let p = decoded.trim_end_matches('=');
        if p.starts_with("imageMogr2") {
            return Ok(Query::Rule {
                rule: crate::parse(p)?,
                text: p.to_string(),
            });
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

/// `x-amz-meta-*` headers as user metadata.
fn user_metadata(headers: &HeaderMap) -> Metadata {
    headers
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix("x-amz-meta-")?;
            Some((name.to_string(), v.to_str().ok()?.to_string()))
        })
        .collect()
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
    let mut resp = Response::new(xml.into_bytes());
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
    }
}
