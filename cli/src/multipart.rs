//! Multipart upload for `mogr serve`, as COS and S3 do it, so that the SDKs' `upload_file` works for
//! files above their part size: initiate (`POST /<key>?uploads`), upload part (`PUT
//! /<key>?partNumber=N&uploadId=ID`), list parts (`GET /<key>?uploadId=ID`), list uploads (`GET
//! /?uploads`), complete (`POST /<key>?uploadId=ID`, with `Pic-Operations` honoured as on a PUT) and
//! abort (`DELETE /<key>?uploadId=ID`).
//!
//! Parts wait in `<root>/.mogr/uploads/<id>/<number>.<etag>.part` (outside the keys a client can name;
//! the name carries the ETag, so listing and completing read no part twice). Complete joins them
//! and hands the whole object to the service as the PUT it stands for, so the object and its rules'
//! outputs are stored all or nothing, exactly as a PUT's.
//!
//! Housekeeping: a part is written aside (`.mogr/tmp`) and moved in under one lock with the check that
//! the upload's parts stay within the object limit, so an abort, a complete and parts running at once
//! see whole parts and never fail each other; a part that fails leaves nothing; an upload left
//! unfinished is removed with its parts after the expiry (`--upload-expiry`), as S3's lifecycle rule
//! `AbortIncompleteMultipartUpload` does.

use md5::{Digest, Md5};
use mogr::cos::multipart::{self, Part, Upload};
use mogr::service::{self, Service};
use mogr::store::{encode_key, key_of, Metadata};
use mogr::{Code, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Held while an upload's folder changes (a part moved in, an abort, a complete reading its parts).
static PARTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

type Req = http::Request<bytes::Bytes>;
type Resp = http::Response<Vec<u8>>;

/// What initiate was told, for complete.
#[derive(Serialize, Deserialize)]
struct Pending {
    key: String,
    content_type: Option<String>,
    metadata: Metadata,
}

/// Answers a multipart request, or `None` when `req` is not one. Listing uploads and their parts
/// hands out keys and upload ids: refused unless `listings` (off while downloads must be signed).
/// Uploads unfinished for `expiry` are removed as new ones start.
pub async fn route(
    service: &Service,
    root: &Path,
    req: &Req,
    listings: bool,
    expiry: Duration,
) -> Option<Resp> {
    let params = params(req.uri().query());
    let has = |name: &str| params.contains_key(name);
    let id = params.get("uploadId").map(String::as_str);
    let uploads = Uploads {
        dir: root.join(".mogr/uploads"),
        tmp: root.join(".mogr/tmp"),
        bucket: service.bucket().name().to_string(),
        limit: service.config.limits.max_input_bytes as u64,
    };
    let path = req.uri().path();
    let prefix = params.get("prefix").map_or("", String::as_str);
    let listing = req.method() == http::Method::GET && (id.is_some() || has("uploads"));
    let result = match (req.method().as_str(), id) {
        _ if listing && !listings => Err(crate::index::listing_off()),
        ("GET", None) if has("uploads") && path == "/" => Ok(xml(multipart::list_uploads_xml(
            &uploads.bucket,
            prefix,
            &uploads.list(prefix),
        ))),
        ("POST", None) if has("uploads") => {
            uploads.expire(expiry).await;
            uploads.initiate(req).await
        }
        ("PUT", Some(id)) if has("partNumber") => {
            uploads
                .put_part(req, id, params.get("partNumber").map_or("", String::as_str))
                .await
        }
        ("GET", Some(id)) => uploads.list_parts(req, id),
        ("POST", Some(id)) => uploads.complete(service, req, id).await,
        ("DELETE", Some(id)) => uploads.abort(req, id).await,
        _ => return None,
    };
    Some(result.unwrap_or_else(|e| service::error_response(&e, path, &service::request_id(req))))
}

/// The query's parameters, percent-decoded; a parameter without a value maps to "".
pub(crate) fn params(query: Option<&str>) -> BTreeMap<String, String> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn xml(body: String) -> Resp {
    http::Response::builder()
        .header(http::header::CONTENT_TYPE, "application/xml")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body.into_bytes())
        .unwrap_or_default()
}

fn io(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::internal(format!("{what}: {e}"))
}

struct Uploads {
    dir: PathBuf,
    /// Where parts are written before they are moved in (the folder store's own `.mogr/tmp`).
    tmp: PathBuf,
    bucket: String,
    /// The object limit: an upload's parts may not add up to more.
    limit: u64,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The error of an upload that is not there (never was, aborted, completed or expired).
fn no_such_upload(id: &str, key: &str) -> Error {
    Error::new(
        Code::NoSuchUpload,
        format!(
            "there is no upload {id:?} for {key:?} (it was completed, aborted or expired, or never \
             started): initiate one with POST ?uploads"
        ),
    )
}

impl Uploads {
    /// Removes the uploads started more than `expiry` ago, with their parts, and parts left aside
    /// by a server stopped mid-write (an hour old: no part takes that long to arrive).
    async fn expire(&self, expiry: Duration) {
        let _parts = PARTS.lock().await;
        let older = |path: &Path, age: Duration| {
            std::fs::metadata(path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t + age < SystemTime::now())
        };
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if older(&entry.path().join("upload.json"), expiry) {
                tracing::info!(upload = ?entry.file_name(), "unfinished upload expired");
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        for entry in std::fs::read_dir(&self.tmp).into_iter().flatten().flatten() {
            let part = entry.file_name().to_string_lossy().starts_with("part-");
            if part && older(&entry.path(), Duration::from_secs(3600)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// The folder of upload `id`, which must exist and belong to `key`.
    fn folder(&self, id: &str, key: &str) -> Result<(PathBuf, Pending)> {
        let missing = || no_such_upload(id, key);
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(missing());
        }
        let folder = self.dir.join(id);
        let pending: Pending = std::fs::read(folder.join("upload.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(missing)?;
        if pending.key != key {
            return Err(missing());
        }
        Ok((folder, pending))
    }

    fn list(&self, prefix: &str) -> Vec<Upload> {
        let mut found: Vec<(std::time::SystemTime, Upload)> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let id = entry.file_name().into_string().ok()?;
                let meta = entry.path().join("upload.json");
                let pending: Pending = serde_json::from_slice(&std::fs::read(&meta).ok()?).ok()?;
                let started = std::fs::metadata(&meta).ok()?.modified().ok()?;
                pending.key.starts_with(prefix).then_some((
                    started,
                    Upload {
                        key: pending.key,
                        id,
                    },
                ))
            })
            .collect();
        found.sort_by_key(|(started, _)| *started);
        found.into_iter().map(|(_, u)| u).collect()
    }

    async fn initiate(&self, req: &Req) -> Result<Resp> {
        let key = key_of(req.uri().path())?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = format!(
            "{nanos:x}{:x}{:x}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let pending = Pending {
            key: key.clone(),
            content_type: req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            metadata: service::user_metadata(req.headers()),
        };
        let folder = self.dir.join(&id);
        tokio::fs::create_dir_all(&folder)
            .await
            .map_err(io("creating the upload's folder"))?;
        let json = serde_json::to_vec(&pending).map_err(|e| Error::internal(e.to_string()))?;
        tokio::fs::write(folder.join("upload.json"), json)
            .await
            .map_err(io("writing the upload's description"))?;
        Ok(xml(multipart::initiate_xml(
            &self.bucket,
            &Upload { key, id },
        )))
    }

    async fn put_part(&self, req: &Req, id: &str, number: &str) -> Result<Resp> {
        let key = key_of(req.uri().path())?;
        self.folder(id, &key)?;
        let n: u32 = number
            .parse()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "partNumber {number:?} is not a whole number from 1 to 10000"
                ))
            })?;
        let body = req.body();
        service::check_body_digests(req.headers(), body)?;
        let too_large = |held: u64| {
            Error::new(
                Code::EntityTooLarge,
                format!(
                    "upload {id}'s parts would add up to {} bytes, over {} bytes, the object limit: \
                     send a smaller object",
                    held + body.len() as u64,
                    self.limit
                ),
            )
        };
        let etag = format!("{:x}", Md5::digest(body));
        // written aside, then moved in under the lock: the upload's folder holds whole parts only
        tokio::fs::create_dir_all(&self.tmp)
            .await
            .map_err(io("making the folder for parts"))?;
        let tmp = self.tmp.join(format!(
            "part-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let moved = async {
            tokio::fs::write(&tmp, body)
                .await
                .map_err(io("writing the part"))?;
            let _parts = PARTS.lock().await;
            // aborted, completed or expired while the part arrived
            let (folder, _) = self.folder(id, &key)?;
            let others = Self::parts(&folder);
            let held = others
                .iter()
                .filter(|(p, _)| p.number != n)
                .map(|(p, _)| p.size)
                .sum::<u64>();
            if held + body.len() as u64 > self.limit {
                return Err(too_large(held));
            }
            tokio::fs::rename(&tmp, folder.join(format!("{n}.{etag}.part")))
                .await
                .map_err(io("storing the part"))?;
            // a part sent again replaces the earlier one
            for (old, path) in others {
                if old.number == n && old.etag != etag {
                    let _ = tokio::fs::remove_file(path).await;
                }
            }
            Ok(())
        }
        .await;
        if moved.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        moved?;
        Ok(http::Response::builder()
            .header(http::header::ETAG, format!("\"{etag}\""))
            .header(http::header::CONTENT_LENGTH, 0)
            .body(Vec::new())
            .unwrap_or_default())
    }

    /// The stored parts, from their names (`<number>.<etag>.part`) and sizes: no part is read.
    fn parts(folder: &Path) -> Vec<(Part, PathBuf)> {
        let mut parts: Vec<(Part, PathBuf)> = std::fs::read_dir(folder)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let (number, etag) = name.strip_suffix(".part")?.split_once('.')?;
                let part = Part {
                    number: number.parse().ok()?,
                    etag: etag.to_string(),
                    size: entry.metadata().ok()?.len(),
                };
                Some((part, entry.path()))
            })
            .collect();
        parts.sort_by_key(|(p, _)| p.number);
        parts
    }

    fn list_parts(&self, req: &Req, id: &str) -> Result<Resp> {
        let key = key_of(req.uri().path())?;
        let (folder, _) = self.folder(id, &key)?;
        let parts: Vec<Part> = Self::parts(&folder).into_iter().map(|(p, _)| p).collect();
        Ok(xml(multipart::list_parts_xml(
            &self.bucket,
            &Upload {
                key,
                id: id.to_string(),
            },
            &parts,
        )))
    }

    /// Joins the listed parts and stores the object as a PUT of it would (rules included); the parts
    /// stay if that fails, so the client may try again or abort.
    async fn complete(&self, service: &Service, req: &Req, id: &str) -> Result<Resp> {
        let key = key_of(req.uri().path())?;
        let listed = multipart::parse_complete(req.body())?;
        let parts = PARTS.lock().await;
        let (folder, pending) = self.folder(id, &key)?;
        let stored: BTreeMap<u32, (Part, PathBuf)> = Self::parts(&folder)
            .into_iter()
            .map(|(p, path)| (p.number, (p, path)))
            .collect();
        let limit = service.config.limits.max_input_bytes;
        let mut body = Vec::new();
        let mut previous = 0;
        for (number, etag) in &listed {
            if *number <= previous {
                return Err(Error::invalid(format!(
                    "InvalidPartOrder: part {number} comes after part {previous}; list the parts in \
                     ascending order"
                )));
            }
            previous = *number;
            let (part, path) = stored
                .get(number)
                .filter(|(p, _)| &p.etag == etag)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "InvalidPart: part {number} with ETag {etag:?} was not uploaded to {id}; \
                         list the parts with GET ?uploadId={id}"
                    ))
                })?;
            if body.len() as u64 + part.size > limit as u64 {
                return Err(Error::new(
                    Code::EntityTooLarge,
                    format!("the object would be over {limit} bytes, the limit"),
                ));
            }
            body.extend(tokio::fs::read(path).await.map_err(io("reading a part"))?);
        }
        drop(parts);
        let mut put = http::Request::builder()
            .method(http::Method::PUT)
            .uri(format!("/{}", encode_key(&key)));
        if let Some(ct) = &pending.content_type {
            put = put.header(http::header::CONTENT_TYPE, ct);
        }
        for (name, value) in mogr::store::user_entries(&pending.metadata) {
            put = put.header(format!("x-cos-meta-{name}"), value);
        }
        for (name, value) in mogr::store::stored_headers(&pending.metadata) {
            put = put.header(name, value);
        }
        if let Some(ops) = req.headers().get("pic-operations") {
            put = put.header("pic-operations", ops);
        }
        let put = put
            .body(body)
            .map_err(|e| Error::invalid(format!("the upload's stored headers: {e}")))?;
        let resp = crate::serve::put_and_notify(service, put).await;
        if !resp.status().is_success() {
            return Ok(resp);
        }
        let etag = resp
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        let report = String::from_utf8_lossy(resp.body());
        let processed = report
            .strip_prefix("<UploadResult>")
            .and_then(|r| r.strip_suffix("</UploadResult>"));
        let parts = PARTS.lock().await;
        let _ = tokio::fs::remove_dir_all(&folder).await;
        drop(parts);
        Ok(xml(multipart::complete_xml(
            &service.location_of(&key),
            &self.bucket,
            &key,
            &etag,
            processed,
        )))
    }

    async fn abort(&self, req: &Req, id: &str) -> Result<Resp> {
        let key = key_of(req.uri().path())?;
        let _parts = PARTS.lock().await;
        let (folder, _) = self.folder(id, &key)?;
        tokio::fs::remove_dir_all(&folder)
            .await
            .map_err(io("removing the upload's parts"))?;
        Ok(http::Response::builder()
            .status(http::StatusCode::NO_CONTENT)
            .body(Vec::new())
            .unwrap_or_default())
    }
}
