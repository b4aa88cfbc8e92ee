//! A request's writes, all or nothing: the outputs, then the upload's own object; when one fails or
//! the deadline passes, what the writes so far replaced is put back (read once the work is done,
//! within the memory held for it).

use super::policy::Place;
use super::Service;
use crate::convert::Output;
use crate::cos::ProcessResult;
use crate::store::{self, output_metadata, Metadata, Object, Store};
use crate::{Code, Limits, Result};
use std::sync::Arc;

/// One rule's output, where it goes, and what is there now (put back if the request fails).
pub(super) struct Target {
    pub bucket: Arc<dyn Store>,
    pub key: String,
    pub output: Output,
    pub before: Restore,
    /// The rule the output was made by, as written (its tag recorded as [`store::RULE`]).
    pub rule: String,
}

/// How to undo one write.
pub(super) enum Restore {
    /// Nothing was there: delete what the write stored.
    Delete,
    /// Put this object back.
    Put(Object),
    /// An earlier write of the same request replaced this key: undoing that one puts it back.
    Earlier,
}

/// A write done, and how to undo it.
struct Undo {
    bucket: Arc<dyn Store>,
    key: String,
    before: Restore,
}

/// A PUT's own object, written after its outputs, and what it replaces.
pub(super) struct OwnObject<'a> {
    pub key: &'a str,
    pub body: &'a [u8],
    pub content_type: &'a str,
    pub metadata: &'a Metadata,
    pub before: Restore,
}

impl Service {
    /// What the request's writes replace, read once the work is done: each key's object the first
    /// time it is written (checked again: it may have changed since its head was read), `Earlier`
    /// after that. With `upload`, the last entry is for the upload's own key.
    pub(super) async fn befores(
        &self,
        places: &[Place],
        upload: Option<&str>,
    ) -> Result<Vec<Restore>> {
        let mut seen = std::collections::HashSet::new();
        let mut befores = Vec::with_capacity(places.len() + 1);
        let upload = upload.map(|key| (&self.default_bucket, key, None));
        let all = places
            .iter()
            .map(|p| (&p.bucket, p.key.as_str(), Some(p)))
            .chain(upload);
        for (bucket, key, place) in all {
            let restore = if !seen.insert((bucket.name().to_string(), key.to_string())) {
                Restore::Earlier
            } else {
                match self.before(bucket, key).await? {
                    Some(obj) => {
                        if let Some(place) = place {
                            place.check_replaceable(Some(&obj.head))?;
                        }
                        Restore::Put(obj)
                    }
                    None => Restore::Delete,
                }
            };
            befores.push(restore);
        }
        Ok(befores)
    }

    /// What is stored at `key` now, to put back if the request fails.
    async fn before(&self, bucket: &Arc<dyn Store>, key: &str) -> Result<Option<Object>> {
        match bucket.get(key).await {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.code == Code::NoSuchKey => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the outputs of the object `source_key` whose ETag is `source_etag`, then the upload
    /// (unless an output took its key); when a write fails or the deadline passes, puts back what the
    /// writes so far replaced — the failed one's included, as its answer may have been lost after the
    /// store kept it — and answers the failure.
    pub(super) async fn store_outputs(
        &self,
        targets: Vec<Target>,
        source_key: &str,
        source_etag: &str,
        upload: Option<OwnObject<'_>>,
        limits: Limits,
    ) -> Result<Vec<ProcessResult>> {
        let mut results = Vec::with_capacity(targets.len());
        let mut done = Vec::with_capacity(targets.len() + 1);
        let mut replaced = false;
        let source_tag = store::key_tag(source_key);
        for Target {
            bucket,
            key,
            output,
            before,
            rule,
        } in targets
        {
            let served = bucket.name() == self.default_bucket.name();
            replaced |= served && upload.as_ref().is_some_and(|u| u.key == key);
            let location = self.location(bucket.name(), &key);
            let size = output.bytes.len() as u64;
            let undo = Undo {
                bucket,
                key: key.clone(),
                before,
            };
            let mime = output.format.mime();
            let mut meta = output_metadata(source_etag, output.stored_quality());
            meta.insert(store::RULE.to_string(), store::rule_tag(&rule));
            meta.insert(store::SOURCE_KEY.to_string(), source_tag.clone());
            let etag = self
                .write_one(undo, &mut done, output.bytes, mime, &meta, limits)
                .await?;
            results.push(ProcessResult {
                location,
                key,
                format: output.format.name().to_string(),
                width: output.width,
                height: output.height,
                size,
                quality: output.quality,
                etag,
            });
        }
        if let Some(u) = upload.filter(|_| !replaced) {
            let undo = Undo {
                bucket: self.default_bucket.clone(),
                key: u.key.to_string(),
                before: u.before,
            };
            let body = u.body.to_vec();
            self.write_one(undo, &mut done, body, u.content_type, u.metadata, limits)
                .await?;
        }
        Ok(results)
    }

    /// One write of a request, added to `done`; on failure (or past the deadline) everything in
    /// `done` is put back.
    async fn write_one(
        &self,
        undo: Undo,
        done: &mut Vec<Undo>,
        body: Vec<u8>,
        content_type: &str,
        metadata: &Metadata,
        limits: Limits,
    ) -> Result<String> {
        if let Err(e) = limits.check_deadline() {
            self.undo(std::mem::take(done)).await;
            return Err(e);
        }
        let written = undo
            .bucket
            .put(&undo.key, body, content_type, metadata)
            .await;
        done.push(undo);
        if written.is_err() {
            self.undo(std::mem::take(done)).await;
        }
        written
    }

    /// Puts back what `done` replaced, newest first. A failure here is logged: the request's own
    /// error is what the client needs.
    async fn undo(&self, done: Vec<Undo>) {
        for u in done.into_iter().rev() {
            let result = match u.before {
                Restore::Earlier => continue,
                Restore::Put(o) => {
                    let content_type = (o.head.content_type.as_deref())
                        .filter(|t| !t.is_empty())
                        .unwrap_or("application/octet-stream");
                    u.bucket
                        .put(&u.key, o.body, content_type, &o.head.metadata)
                        .await
                        .map(drop)
                }
                Restore::Delete => u.bucket.delete(&u.key).await,
            };
            match result {
                Ok(()) => tracing::info!(key = u.key, "rolled back"),
                Err(e) => tracing::error!(key = u.key, error = %e, "rolling back failed"),
            }
        }
    }
}
