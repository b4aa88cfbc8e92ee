//! Multipart upload over any store, as COS and S3 do it, so that the SDKs' `upload_file` works for
//! files above their part size — and, on AWS, for any photo above API Gateway's body limit: initiate,
//! upload part, list parts, list uploads, complete (its `Pic-Operations` run as on a PUT) and abort.
//!
//! An upload is an object of mogr's own area: `_mogr/uploads/<id>` holds what initiate was told
//! (key, type, metadata), and each part is `_mogr/parts/<id>/<number>` — a store object of any size, so
//! the 1 MB parts the COS SDKs send work over S3, whose own multipart wants 5 MiB. A part's ETag is
//! the one its store gave it (the MD5 of its bytes), and listing parts reads none of them. Complete
//! joins the listed parts and stores the object through the same all-or-nothing PUT as any upload,
//! then removes the upload.
//!
//! Housekeeping: within one process, parts, aborts and completes of uploads take one lock, so that a
//! part never lands in an upload an abort is removing; an upload left unfinished is removed after
//! [`Config::upload_expiry`](super::Config::upload_expiry) as the next one starts (a server), or by the
//! bucket's lifecycle rule (the template's, on AWS).

use super::process::{Put, Report};
use super::Service;
use crate::cos::multipart::{Part, Upload};
use crate::cos::PicOperations;
use crate::store::{self, Metadata};
use crate::{Code, Error, Result};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// Where uploads in progress are described, one object per upload id.
pub const UPLOADS: &str = "_mogr/uploads/";
/// Where their parts wait, under `<id>/`.
pub const PARTS: &str = "_mogr/parts/";

/// The most parts an upload has, as in S3 and COS.
pub const MAX_PARTS: u32 = 10_000;

/// What initiate was told, kept for complete.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Initiate {
    pub key: String,
    pub content_type: Option<String>,
    pub metadata: Metadata,
}

/// What complete stored: the object's ETag and, when rules ran, their report.
pub struct Completed {
    pub etag: String,
    pub report: Option<Report>,
}

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

fn part_key(id: &str, number: u32) -> String {
    format!("{PARTS}{id}/{number:05}")
}

/// A new upload id: when it started (so that ids sort as uploads began) and 64 random bits (so that
/// no one guesses another's).
fn new_id() -> Result<String> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Ok(format!("{nanos:016x}{:016x}", u64::from_be_bytes(random)))
}

impl Service {
    /// InitiateMultipartUpload (`POST /<key>?uploads`): a new upload of `init.key`. Uploads left
    /// unfinished past the expiry are removed first.
    pub async fn initiate_upload(&self, init: Initiate) -> Result<Upload> {
        self.check_writable(&init.key)?;
        self.default_bucket.check_put(&init.key)?;
        if let Some(ct) = &init.content_type {
            super::content_type::check_content_type(ct)?;
        }
        self.expire_uploads().await?;
        let id = new_id()?;
        let json = serde_json::to_vec(&init).map_err(|e| Error::internal(e.to_string()))?;
        self.default_bucket
            .put(
                &format!("{UPLOADS}{id}"),
                json,
                "application/json",
                &store::output_metadata("", None),
            )
            .await?;
        Ok(Upload { key: init.key, id })
    }

    /// What initiate was told about upload `id`, which must exist and be `key`'s.
    async fn pending(&self, key: &str, id: &str) -> Result<Initiate> {
        let missing = || no_such_upload(id, key);
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(missing());
        }
        let found = match self.default_bucket.get(&format!("{UPLOADS}{id}")).await {
            Ok(o) => o,
            Err(e) if e.code == Code::NoSuchKey => return Err(missing()),
            Err(e) => return Err(e),
        };
        let init: Initiate = serde_json::from_slice(&found.body).map_err(|_| missing())?;
        if init.key != key {
            return Err(missing());
        }
        Ok(init)
    }

    /// The parts stored for upload `id`, in order (from the store's listing: no part is read).
    async fn parts(&self, id: &str) -> Result<Vec<Part>> {
        let prefix = format!("{PARTS}{id}/");
        let mut parts = Vec::new();
        for e in store::list_all(&*self.default_bucket, &prefix).await? {
            let Ok(number) = e.key[prefix.len()..].parse() else {
                continue;
            };
            // a store whose listing leaves ETags out (some S3-protocol servers) is asked per part
            let etag = match e.etag.is_empty() {
                false => e.etag,
                true => match self.default_bucket.head(&e.key).await? {
                    Some(head) => head.etag,
                    None => continue, // removed meanwhile
                },
            };
            parts.push(Part {
                number,
                etag,
                size: e.size,
            });
        }
        Ok(parts)
    }

    /// UploadPart (`PUT /<key>?partNumber=N&uploadId=ID`): stores part `number`, replacing one sent
    /// before under that number; returns its ETag. The upload's parts may not add up past the input
    /// limit.
    pub async fn upload_part(
        &self,
        key: &str,
        id: &str,
        number: &str,
        body: Vec<u8>,
    ) -> Result<String> {
        let n: u32 = number
            .parse()
            .ok()
            .filter(|n| (1..=MAX_PARTS).contains(n))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "partNumber {number:?} is not a whole number from 1 to {MAX_PARTS}"
                ))
            })?;
        let limit = self.config.limits.max_input_bytes as u64;
        let _uploads = self.uploads.lock().await;
        self.pending(key, id).await?;
        let held: u64 = (self.parts(id).await?.iter())
            .filter(|p| p.number != n)
            .map(|p| p.size)
            .sum();
        if held + body.len() as u64 > limit {
            return Err(Error::new(
                Code::EntityTooLarge,
                format!(
                    "upload {id}'s parts would add up to {} bytes, over {limit} bytes, the object \
                     limit: send a smaller object",
                    held + body.len() as u64
                ),
            ));
        }
        self.default_bucket
            .put(
                &part_key(id, n),
                body,
                "application/octet-stream",
                &Metadata::new(),
            )
            .await
    }

    /// ListParts (`GET /<key>?uploadId=ID`).
    pub async fn list_parts(&self, key: &str, id: &str) -> Result<Vec<Part>> {
        self.pending(key, id).await?;
        self.parts(id).await
    }

    /// ListMultipartUploads (`GET /?uploads`): the uploads of keys under `prefix`, oldest first.
    pub async fn list_uploads(&self, prefix: &str) -> Result<Vec<Upload>> {
        let mut uploads = Vec::new();
        for (id, _) in self.upload_ids().await? {
            let found = match self.default_bucket.get(&format!("{UPLOADS}{id}")).await {
                Ok(o) => o,
                Err(e) if e.code == Code::NoSuchKey => continue, // completed meanwhile
                Err(e) => return Err(e),
            };
            if let Ok(init) = serde_json::from_slice::<Initiate>(&found.body) {
                if init.key.starts_with(prefix) {
                    uploads.push(Upload { key: init.key, id });
                }
            }
        }
        Ok(uploads)
    }

    /// Every upload id with when it started, oldest first.
    async fn upload_ids(&self) -> Result<Vec<(String, SystemTime)>> {
        let listed = store::list_all(&*self.default_bucket, UPLOADS).await?;
        Ok((listed.into_iter())
            .map(|e| (e.key[UPLOADS.len()..].to_string(), e.last_modified))
            .collect())
    }

    /// CompleteMultipartUpload (`POST /<key>?uploadId=ID`): joins the `listed` parts (number and ETag,
    /// in ascending order) and stores the object as a PUT of it with `ops` would; the parts stay if
    /// that fails, so the client may try again or abort.
    pub async fn complete_upload(
        &self,
        key: &str,
        id: &str,
        listed: &[(u32, String)],
        ops: Option<PicOperations>,
    ) -> Result<Completed> {
        let limit = self.config.limits.max_input_bytes as u64;
        let uploads = self.uploads.lock().await;
        let init = self.pending(key, id).await?;
        let stored = self.parts(id).await?;
        let mut previous = 0;
        let mut size = 0;
        for (number, etag) in listed {
            if *number <= previous {
                return Err(Error::invalid(format!(
                    "InvalidPartOrder: part {number} comes after part {previous}; list the parts in \
                     ascending order"
                )));
            }
            previous = *number;
            let part = stored
                .iter()
                .find(|p| p.number == *number && &p.etag == etag)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "InvalidPart: part {number} with ETag {etag:?} was not uploaded to {id}; \
                         list the parts with GET ?uploadId={id}"
                    ))
                })?;
            size += part.size;
        }
        if size > limit {
            return Err(Error::new(
                Code::EntityTooLarge,
                format!("the object would be {size} bytes, over {limit} bytes, the limit"),
            ));
        }
        // the joined object is held within the memory budget while it is read and stored
        let _held = self.work.hold(size, "the parts of a multipart upload")?;
        let mut body = Vec::with_capacity(size as usize);
        for (number, _) in listed {
            body.extend(self.default_bucket.get(&part_key(id, *number)).await?.body);
        }
        drop(uploads);
        let content_type = match init.content_type {
            Some(ct) => ct,
            None => super::content_type::guess_type(&body),
        };
        let plain = ops.is_none();
        let (report, etag) = self
            .put(Put {
                key: key.to_string(),
                body: &body,
                content_type,
                metadata: init.metadata,
                ops,
            })
            .await?;
        let _uploads = self.uploads.lock().await;
        self.remove_upload(id).await?;
        Ok(Completed {
            etag,
            report: (!plain).then_some(report),
        })
    }

    /// AbortMultipartUpload (`DELETE /<key>?uploadId=ID`): the upload and its parts removed.
    pub async fn abort_upload(&self, key: &str, id: &str) -> Result<()> {
        let _uploads = self.uploads.lock().await;
        self.pending(key, id).await?;
        self.remove_upload(id).await
    }

    /// Removes upload `id`'s description, then its parts.
    async fn remove_upload(&self, id: &str) -> Result<()> {
        self.default_bucket
            .delete(&format!("{UPLOADS}{id}"))
            .await?;
        for part in self.parts(id).await? {
            self.default_bucket
                .delete(&part_key(id, part.number))
                .await?;
        }
        Ok(())
    }

    /// Removes the uploads started more than [`Config::upload_expiry`](super::Config::upload_expiry)
    /// ago, with their parts, as S3's lifecycle rule `AbortIncompleteMultipartUpload` does.
    async fn expire_uploads(&self) -> Result<()> {
        let Some(expiry) = self.config.upload_expiry else {
            return Ok(());
        };
        let _uploads = self.uploads.lock().await;
        for (id, started) in self.upload_ids().await? {
            if started + expiry < SystemTime::now() {
                tracing::info!(upload = id, "unfinished upload expired");
                self.remove_upload(&id).await?;
            }
        }
        Ok(())
    }
}
