//! The one front door: every request of the Lambda functions and of `mogr serve` is routed here to the
//! operation it asks for — a download, a write (PUT, POST `?image_process`, DELETE, a copy,
//! DeleteObjects), a listing (ListObjects, ListBuckets) or a step of a multipart upload.

use super::body::{unchunk, Body};
use super::log::{RequestId, Route};
use super::{error_response, request_id, user_metadata, with_request_id, Addressed};
use crate::cos::list::{self, Query};
use crate::cos::{self, multipart as xml};
use crate::service::multipart::Initiate;
use crate::service::Service;
use crate::store::key_of;
use crate::{auth, query};
use crate::{Code, Error, Result};
use http::{header, Method, Request, Response, StatusCode};
use std::collections::BTreeMap;

/// What an entry point answers besides downloads (each Lambda function is sent some routes by API
/// Gateway, and answers those only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Routes {
    /// Writes: PUT, POST, DELETE, copies and multipart uploads (signed with the service's access
    /// keys, or behind API Gateway's IAM authorizer; `mogr serve`'s token).
    pub writes: bool,
    /// Listings of the bucket and of its uploads in progress, which hand out keys and upload ids.
    /// The parts of one upload are listed to whoever holds its id unless downloads must be signed.
    pub listings: bool,
    /// The server is its own bucket: a stored upload is followed by the notification a bucket sends
    /// (on AWS, S3 sends it to the upload function).
    pub notify: bool,
}

impl Routes {
    /// The download function: `GET /{key+}`, public.
    pub const DOWNLOAD: Routes = Routes {
        writes: false,
        listings: false,
        notify: false,
    };
    /// The process function: the writes and `GET /`, signed (see [`Routes::writes`]).
    pub const PROCESS: Routes = Routes {
        writes: true,
        listings: true,
        notify: false,
    };
}

/// What a GET or HEAD other than a download asks for.
enum Listing {
    Buckets,
    Objects(Query),
    Uploads { prefix: String },
    Parts { key: String, id: String },
}

fn xml_response(body: String) -> Response<Vec<u8>> {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/xml")
        .header(header::CONTENT_LENGTH, body.len())
        .body(body.into_bytes())
        .unwrap_or_default()
}

fn listing_off(signed_downloads: bool) -> Error {
    let how = match signed_downloads {
        true => "listing is off while downloads must be signed (MOGR_SIGNING_KEYS): ask for a signed URL of each object",
        false => "listings are answered on the bucket's root, signed as writes are: GET /?list-type=2 (ListObjectsV2), GET /?uploads",
    };
    Error::new(Code::AccessDenied, how)
}

/// The write a request asks for: `put`, `copy`, `post`, `delete`.
fn write_route<B>(req: &Request<B>) -> &'static str {
    match *req.method() {
        Method::PUT
            if req.headers().contains_key("x-amz-copy-source")
                || req.headers().contains_key("x-cos-copy-source") =>
        {
            "copy"
        }
        Method::PUT => "put",
        Method::POST if query::has(req.uri().query(), "delete") => "delete",
        Method::POST => "post",
        Method::DELETE => "delete",
        _ => "-",
    }
}

/// A write or a listing without a signature, while the service holds access keys.
fn unsigned(method: &Method) -> Error {
    let what = match *method {
        Method::GET | Method::HEAD => "a listing",
        _ => "a write",
    };
    Error::new(
        Code::AccessDenied,
        format!(
            "{what} needs a signature made with one of this service's access keys: sign the request \
             as S3 clients (AWS SigV4) or COS clients do, with the key id and secret you were given"
        ),
    )
}

impl Service {
    /// Answers any request, as the entry point's `routes` allow. The response carries the
    /// operation's [`Route`] (and, from the operation, its [`Record`](crate::service::record::Record))
    /// for the access log.
    pub async fn handle<B: AsRef<[u8]>>(
        &self,
        mut req: Request<B>,
        routes: Routes,
    ) -> Response<Vec<u8>> {
        let rid = request_id(&req);
        req.extensions_mut().insert(RequestId(rid.clone()));
        let (route, mut resp) = self.route(req, routes, &rid).await;
        resp.extensions_mut().insert(Route(route));
        resp
    }

    async fn route<B: AsRef<[u8]>>(
        &self,
        req: Request<B>,
        routes: Routes,
        rid: &str,
    ) -> (&'static str, Response<Vec<u8>>) {
        let resource = req.uri().path().to_string();
        // the signature covers the request as sent, before its path is read as a key, and an
        // aws-chunked body is decoded once its signature is known to hold
        let verified = self.authenticate(&req).await;
        let unchunked = match &verified {
            Ok(None) if self.keys_required() => Ok(req.map(Body::Sent)),
            Ok(v) => unchunk(req, v.as_ref().and_then(|v| v.chunks.as_ref())),
            Err(_) => Ok(req.map(Body::Sent)),
        };
        let mut req = match unchunked {
            Ok(req) => req,
            Err(e) => return ("-", error_response(&e, &resource, rid)),
        };
        let signed = verified.map(|v| v.is_some());
        let checked = signed.and_then(|signed| {
            self.address(&mut req)?;
            super::check_implemented(&req, true)?;
            Ok(signed)
        });
        let (route, answered) = match checked {
            Err(e) => ("-", Err(e)),
            Ok(signed) if matches!(*req.method(), Method::GET | Method::HEAD) => {
                match self.read_listing(&req).await {
                    Ok(Some(listing)) => {
                        ("list", self.answer_listing(listing, routes, signed).await)
                    }
                    Ok(None) => return ("download", self.download(req).await),
                    Err(e) => ("-", Err(e)),
                }
            }
            Ok(false) if self.keys_required() => ("-", Err(unsigned(req.method()))),
            Ok(_) if !routes.writes => (
                "-",
                Err(Error::new(
                    Code::AccessDenied,
                    format!(
                        "{} is not answered here: this entry point answers downloads (GET, HEAD)",
                        req.method()
                    ),
                )),
            ),
            Ok(_) => match self.multipart(&req, routes).await {
                Some(answer) => ("multipart", answer),
                None => {
                    let route = write_route(&req);
                    // a PUT (a copy included) stores an object: a bucket notifies of it
                    let put = (*req.method() == Method::PUT).then(|| key_of(req.uri().path()));
                    let resp = self.process(req).await;
                    if let (true, true, Some(Ok(key))) =
                        (routes.notify, resp.status().is_success(), put)
                    {
                        self.notify(&key).await;
                    }
                    return (route, resp);
                }
            },
        };
        let resp = answered.unwrap_or_else(|e| error_response(&e, &resource, rid));
        (route, with_request_id(resp, rid))
    }

    /// Who signed `req` with one of the service's access keys (`None` when it is not signed, or
    /// there are none); a signature that does not hold is an error, whatever the request. Keys held
    /// in a secret are read only for a signed request, and read again when they do not verify it
    /// (a rotation; see `keys.rs`).
    async fn authenticate<B: AsRef<[u8]>>(
        &self,
        req: &Request<B>,
    ) -> Result<Option<auth::Verified>> {
        if !self.keys_required() {
            return Ok(None);
        }
        // the path as sent, should a front have addressed the request already
        let sent = req.extensions().get::<super::address::SentPath>();
        let signed = auth::Signed {
            method: req.method().as_str(),
            path: sent.map_or(req.uri().path(), |s| s.0.as_str()),
            query: req.uri().query().unwrap_or_default(),
            headers: req.headers(),
            body: req.body().as_ref(),
        };
        if !auth::is_signed(&signed) {
            return Ok(None);
        }
        let now = std::time::SystemTime::now();
        let mut who = auth::verify(&*self.keys.current().await?, &signed, now);
        let stale = |e: &Error| {
            matches!(
                e.code,
                Code::InvalidAccessKeyId | Code::SignatureDoesNotMatch
            )
        };
        if who.as_ref().is_err_and(stale) {
            if let Some(newer) = self.keys.newer().await? {
                who = auth::verify(&newer, &signed, now);
            }
        }
        let who = who?;
        if let Some(who) = &who {
            tracing::debug!(access_key = %who.key_id, "signed request");
        }
        Ok(who)
    }

    /// The upload notification a bucket would send for `key`, for a server that is its own bucket.
    async fn notify(&self, key: &str) {
        match self.on_upload(key).await {
            Ok(outcome) => tracing::info!(key, outcome = ?outcome, "upload notification"),
            Err(e) => tracing::warn!(key, error = %e, "upload notification failed"),
        }
    }

    /// A GET or HEAD that lists rather than downloads: the account (ListBuckets), the bucket or a
    /// folder (`GET /photos/`), the uploads in progress or one upload's parts. `None`: a download.
    async fn read_listing<B>(&self, req: &Request<B>) -> Result<Option<Listing>> {
        let params = query::form(req.uri().query());
        let path = req.uri().path();
        if let Some(id) = params.get("uploadId") {
            let (key, id) = (key_of(path)?, id.clone());
            return Ok(Some(Listing::Parts { key, id }));
        }
        let addressed = req.extensions().get::<Addressed>();
        if path == "/" && params.contains_key("uploads") {
            let prefix = params.get("prefix").cloned().unwrap_or_default();
            return Ok(Some(Listing::Uploads { prefix }));
        }
        if path == "/" && addressed.is_some_and(|a| a.s3 && a.bucket.is_none()) {
            return Ok(Some(Listing::Buckets));
        }
        if !params.keys().all(|k| list::PARAMS.contains(&k.as_str())) {
            return Ok(None); // `GET /?imageMogr2/...` and the like: the download's answer (an error)
        }
        let Ok(rest) = crate::store::decode_path(path) else {
            return Ok(None); // the download words the error
        };
        // Path-style without an S3 client's marks (`/<bucket>?list-type=2`, `/<bucket>/?delimiter=/`):
        // one segment naming the bucket (or any, with list-type) that is no folder or object here.
        let segment = rest.strip_suffix('/').unwrap_or(&rest);
        let path_style = !segment.is_empty()
            && !segment.contains('/')
            && (segment == self.default_bucket.name() || params.contains_key("list-type"))
            && crate::store::check_key(segment).is_ok()
            && self.default_bucket.head(segment).await?.is_none()
            && (self
                .default_bucket
                .list(&format!("{segment}/"), None, 1)
                .await?)
                .entries
                .is_empty();
        let folder = if rest.is_empty() || path_style {
            None
        } else if rest.ends_with('/') {
            Some(rest.as_str())
        } else {
            return Ok(None); // an object's key
        };
        Ok(Some(Listing::Objects(Query::from_params(&params, folder)?)))
    }

    /// A listing, when the entry point answers it: with access keys, to signed requests only (on any
    /// entry point); without, as `routes` says.
    async fn answer_listing(
        &self,
        listing: Listing,
        routes: Routes,
        signed: bool,
    ) -> Result<Response<Vec<u8>>> {
        if self.keys_required() && !signed {
            return Err(unsigned(&Method::GET));
        }
        let signed_downloads = self.config.signer.is_on();
        let allowed = match &listing {
            _ if signed => true,
            Listing::Parts { .. } => routes.listings || !signed_downloads,
            _ => routes.listings,
        };
        if !allowed {
            return Err(listing_off(signed_downloads));
        }
        let bucket = self.default_bucket.name();
        let xml = match listing {
            Listing::Buckets => {
                let created = self.default_bucket.created();
                list::list_buckets_xml(bucket, &crate::store::iso8601(created))
            }
            Listing::Objects(q) => list::list_bucket_xml(bucket, &q, &self.list(&q).await?),
            Listing::Uploads { prefix } => {
                xml::list_uploads_xml(bucket, &prefix, &self.list_uploads(&prefix).await?)
            }
            Listing::Parts { key, id } => {
                let parts = self.list_parts(&key, &id).await?;
                xml::list_parts_xml(bucket, &xml::Upload { key, id }, &parts)
            }
        };
        Ok(xml_response(xml))
    }

    /// A step of a multipart upload, or `None` when `req` is not one.
    async fn multipart<B: AsRef<[u8]>>(
        &self,
        req: &Request<B>,
        routes: Routes,
    ) -> Option<Result<Response<Vec<u8>>>> {
        let params = query::form(req.uri().query());
        let id = params.get("uploadId").map(String::as_str);
        let method = req.method().clone();
        let uploads = params.contains_key("uploads");
        if id.is_none() && !(method == Method::POST && uploads) {
            return None;
        }
        Some(self.multipart_step(req, &method, id, &params, routes).await)
    }

    async fn multipart_step<B: AsRef<[u8]>>(
        &self,
        req: &Request<B>,
        method: &Method,
        id: Option<&str>,
        params: &BTreeMap<String, String>,
        routes: Routes,
    ) -> Result<Response<Vec<u8>>> {
        let key = key_of(req.uri().path())?;
        let body = req.body().as_ref();
        let bucket = self.default_bucket.name();
        match (method, id) {
            (&Method::POST, None) => {
                let init = Initiate {
                    key,
                    content_type: (req.headers().get(header::CONTENT_TYPE))
                        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_string()),
                    metadata: user_metadata(req.headers()),
                };
                let upload = self.initiate_upload(init).await?;
                Ok(xml_response(xml::initiate_xml(bucket, &upload)))
            }
            (&Method::PUT, Some(id)) => {
                let Some(number) = params.get("partNumber") else {
                    return Err(Error::new(
                        Code::NotImplemented,
                        "a PUT with ?uploadId but no ?partNumber (a part is ?partNumber=N&uploadId=ID) \
                         is not implemented by mogr; nothing was read or written",
                    ));
                };
                super::check_body_digests(req.headers(), body)?;
                let etag = self.upload_part(&key, id, number, body.to_vec()).await?;
                Ok(Response::builder()
                    .header(header::ETAG, format!("\"{etag}\""))
                    .header(header::CONTENT_LENGTH, 0)
                    .body(Vec::new())
                    .unwrap_or_default())
            }
            (&Method::POST, Some(id)) => {
                let listed = xml::parse_complete(body)?;
                let ops = super::write::pic_operations(req.headers())?;
                let done = self.complete_upload(&key, id, &listed, ops).await?;
                if routes.notify {
                    self.notify(&key).await;
                }
                let processed = (done.report.as_ref())
                    .map(|r| cos::report_xml(Some(&r.original), &r.results));
                let resp = xml_response(xml::complete_xml(
                    &self.location_of(&key),
                    bucket,
                    &key,
                    &done.etag,
                    processed.as_deref(),
                ));
                let record = done.report.map(|r| r.record).unwrap_or_default();
                Ok(super::with_record(resp, record, 0))
            }
            (&Method::DELETE, Some(id)) => {
                self.abort_upload(&key, id).await?;
                Ok(Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .body(Vec::new())
                    .unwrap_or_default())
            }
            (m, _) => Err(Error::new(
                Code::NotImplemented,
                format!(
                    "{m} with ?uploadId or ?uploads is not implemented by mogr (PUT a part, POST to \
                     complete, DELETE to abort, GET to list its parts); nothing was read or written"
                ),
            )),
        }
    }
}
