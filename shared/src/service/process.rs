//! In cloud (`POST /<key>?image_process`) and upon upload (`PUT /<key>` with `Pic-Operations`): every
//! rule is validated and converted — from one decode of the input — before anything is stored, then
//! the outputs are written and reported as COS's `UploadResult`.
//!
//! A request's writes are all or nothing: every output key is checked first (valid, writable, not
//! reserved, and not an object mogr did not write unless it is the input itself), every rule converted,
//! then the outputs are written and the upload last; when a write fails, the ones before it are put
//! back as they were.

use super::work::Held;
use super::Service;
use crate::codec::{self, Frames, Profile};
use crate::convert::{self, Output, Source};
use crate::cos::{resolve_fileid, OriginalInfo, PicOperations, ProcessResult};
use crate::info::{self, ImageInfo};
use crate::store::{self, output_metadata, Metadata, Object, Store};
use crate::{Code, Error, Limits, Result};
use std::borrow::Cow;
use std::sync::Arc;

/// `POST /<key>?image_process`: rules over an object already stored.
pub(super) struct Post {
    pub key: String,
    pub ops: PicOperations,
}

/// `PUT /<key>`: an upload, with rules when it carries `Pic-Operations`.
pub(super) struct Put<'a> {
    pub key: String,
    pub body: &'a [u8],
    pub content_type: String,
    /// User metadata, stored as given (`pic-operations` included: those rules are the upload hook's).
    pub metadata: Metadata,
    pub ops: Option<PicOperations>,
}

/// `PUT /<key>` with a copy source: the object at `from` (in the served bucket) copied to `key`, with
/// its type and metadata, or with `replace`'s (`x-*-metadata-directive: REPLACE`).
pub(super) struct Copy {
    pub key: String,
    pub from: String,
    pub replace: Option<(String, Metadata)>,
}

/// What `UploadResult` reports: the input (its `ImageInfo` with `is_pic_info`) and each stored output.
pub(super) type Report = (OriginalInfo, Vec<ProcessResult>);

/// Outputs converted and not yet stored, with the input's info when it was asked for. It holds the
/// memory taken for what the writes replace: keep it until the writes are done.
#[derive(Default)]
pub(super) struct Prepared {
    pub outputs: Vec<Target>,
    pub info: Option<ImageInfo>,
    /// For a PUT ([`Service::prepare`]'s `upload`): what the upload's own write replaces.
    pub upload_before: Option<Restore>,
    pub _held: Option<Held>,
}

/// One rule's output, where it goes, and what is there now (put back if the request fails).
pub(super) struct Target {
    bucket: Arc<dyn Store>,
    key: String,
    output: Output,
    before: Restore,
}

/// Where a rule's output goes, and the head of what is stored there now: its body is read only once
/// the work is done, within the memory held for it.
struct Place {
    bucket: Arc<dyn Store>,
    key: String,
    fileid: String,
    own_input: bool,
    existing: Option<store::Head>,
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

/// Whose rules these are: a client's request (PUT, POST) or the operator's default rules, trusted
/// with any fileid in the buckets the service may write, or an uploaded object's own metadata (the
/// upload hook), whose outputs stay beside it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Rules {
    Trusted,
    ObjectMetadata,
}

/// A write done, and how to undo it.
struct Undo {
    bucket: Arc<dyn Store>,
    key: String,
    before: Restore,
}

impl Service {
    pub(super) async fn post(&self, post: Post) -> Result<Report> {
        let limits = self.config.process_limits();
        // The input is refused from its head when it is over the limit, and held within the memory
        // budget while it waits for its work.
        let size = (self.default_bucket.head(&post.key).await?).map_or(0, |h| h.size);
        limits.check_bytes(usize::try_from(size).unwrap_or(usize::MAX))?;
        let _input = self.work.hold(size, "the input")?;
        let obj = self.default_bucket.get(&post.key).await?;
        let want_info = post.ops.is_pic_info == 1;
        let prepared = self
            .prepare(
                &post.key,
                Cow::Owned(obj.body),
                &post.ops,
                want_info,
                Rules::Trusted,
                limits,
                false,
            )
            .await?;
        let results = self
            .store_outputs(prepared.outputs, &obj.head.etag, None, limits)
            .await?;
        let original = self.original(&post.key, &obj.head.etag, prepared.info, &results);
        Ok((original, results))
    }

    /// Stores the upload and its rules' outputs; returns the report and the upload's own ETag (the
    /// MD5 of what the client sent, which the COS SDKs check).
    pub(super) async fn put(&self, put: Put<'_>) -> Result<(Report, String)> {
        let limits = self.config.process_limits();
        limits.check_bytes(put.body.len())?;
        self.check_writable(&put.key)?;
        self.default_bucket.check_put(&put.key)?;
        let ops = put.ops.unwrap_or(PicOperations {
            is_pic_info: 0,
            rules: Vec::new(),
        });
        // Every rule is converted before anything is stored: a failing rule stores nothing.
        let want_info = ops.is_pic_info == 1;
        let prepared = self
            .prepare(
                &put.key,
                Cow::Borrowed(put.body),
                &ops,
                want_info,
                Rules::Trusted,
                limits,
                true,
            )
            .await?;
        let etag = store::content_etag(put.body);
        let results = if prepared.outputs.is_empty() {
            // Alone, the upload is one whole write: nothing to put back.
            limits.check_deadline()?;
            let body = put.body.to_vec();
            self.default_bucket
                .put(&put.key, body, &put.content_type, &put.metadata)
                .await?;
            Vec::new()
        } else {
            let upload = Upload {
                key: &put.key,
                body: put.body,
                content_type: &put.content_type,
                metadata: &put.metadata,
                before: prepared.upload_before.unwrap_or(Restore::Delete),
            };
            self.store_outputs(prepared.outputs, &etag, Some(upload), limits)
                .await?
        };
        let original = self.original(&put.key, &etag, prepared.info, &results);
        Ok(((original, results), etag))
    }

    /// Deletes an object a client may delete (not under mogr's reserved prefixes); deleting one that
    /// does not exist succeeds, as in S3 and COS.
    pub(super) async fn delete(&self, key: &str) -> Result<()> {
        self.check_writable(key)?;
        self.default_bucket.delete(key).await
    }

    /// Copies an object within the served bucket; returns the copy's head. A missing source is
    /// `NoSuchKey` and writes nothing; a copy onto itself must replace the metadata, as in S3.
    pub(super) async fn copy(&self, copy: Copy) -> Result<store::Head> {
        self.check_writable(&copy.key)?;
        store::check_key(&copy.from)?;
        self.default_bucket.check_put(&copy.key)?;
        if copy.from == copy.key && copy.replace.is_none() {
            return Err(Error::invalid(format!(
                "copying {:?} onto itself changes nothing: send x-amz-metadata-directive: REPLACE \
                 (x-cos-metadata-directive: Replaced) with the new metadata",
                copy.key
            )));
        }
        let replace = copy.replace.as_ref().map(|(t, m)| (t.as_str(), m));
        self.default_bucket
            .copy(&copy.from, &copy.key, replace)
            .await
    }

    /// The input as it is now: when a rule wrote over it (its fileid is the input's own key), the
    /// ETag is the output's.
    fn original(
        &self,
        key: &str,
        etag: &str,
        info: Option<ImageInfo>,
        results: &[ProcessResult],
    ) -> OriginalInfo {
        let location = self.location(self.default_bucket.name(), key);
        let etag = results
            .iter()
            .rev()
            .find(|r| r.location == location)
            .map_or(etag, |r| r.etag.as_str());
        OriginalInfo {
            key: key.to_string(),
            location,
            etag: etag.to_string(),
            info,
        }
    }

    /// Refuses a client's write in mogr's own area (`_mogr/`: large results, uploads in progress), in
    /// any case (a planted object there would be served as a conversion or joined into an upload), and
    /// under the prefix for large results.
    pub(super) fn check_writable(&self, key: &str) -> Result<()> {
        store::check_key(key)?;
        let large = self.config.large_prefix.as_str();
        let under_large = !large.is_empty()
            && key
                .get(..large.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(large));
        if store::is_reserved(key) || under_large {
            return Err(Error::new(
                Code::AccessDenied,
                format!(
                    "object key {key:?} is under {}, which mogr reserves for the large results and \
                     the uploads in progress it stores itself; choose another key",
                    store::RESERVED
                ),
            ));
        }
        Ok(())
    }

    /// Where each rule's output goes: resolved and checked, with the head of what is stored there now
    /// (a rule may overwrite only its own input or one of mogr's outputs). Nothing is read or written.
    async fn places(&self, key: &str, ops: &PicOperations, whose: Rules) -> Result<Vec<Place>> {
        let mut places = Vec::with_capacity(ops.rules.len());
        for r in &ops.rules {
            let bucket = self.bucket_named(r.bucket.as_deref())?;
            let out_key = resolve_fileid(key, &r.fileid)?;
            self.check_writable(&out_key)?;
            let served = bucket.name() == self.default_bucket.name();
            if whose == Rules::ObjectMetadata {
                self.check_confined(key, &out_key, served)?;
            }
            bucket.check_put(&out_key)?;
            // rules that write one key share its head
            let earlier = places
                .iter()
                .find(|p: &&Place| p.bucket.name() == bucket.name() && p.key == out_key);
            let existing = match earlier {
                Some(p) => p.existing.clone(),
                None => bucket.head(&out_key).await?,
            };
            let place = Place {
                existing,
                own_input: served && out_key == key,
                bucket,
                key: out_key,
                fileid: r.fileid.clone(),
            };
            place.check_replaceable(place.existing.as_ref())?;
            places.push(place);
        }
        Ok(places)
    }

    /// What the request's writes replace, read once the work is done: each key's object the first
    /// time it is written (checked again: it may have changed since its head was read), `Earlier`
    /// after that. With `upload`, the last entry is for the upload's own key.
    async fn befores(&self, places: &[Place], upload: Option<&str>) -> Result<Vec<Restore>> {
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

    /// The upload hook's rules come from whoever uploaded the object: their outputs stay in the served
    /// bucket, in the input's folder (or below it) or under a prefix the operator allowed
    /// (`MOGR_HOOK_OUTPUT_PREFIXES`).
    fn check_confined(&self, input: &str, out_key: &str, served: bool) -> Result<()> {
        let folder = input.rfind('/').map_or("", |i| &input[..=i]);
        let allowed = self
            .config
            .hook_output_prefixes
            .iter()
            .any(|p| out_key.starts_with(p.as_str()));
        if served && (allowed || out_key.starts_with(folder)) {
            return Ok(());
        }
        let place = if folder.is_empty() {
            "the bucket's top level or below it".to_string()
        } else {
            folder.to_string()
        };
        Err(Error::new(
            Code::AccessDenied,
            format!(
                "the object's own Pic-Operations may write only beside it ({place}), not {out_key:?}{}: \
                 use a relative fileid, or have the operator allow the prefix in MOGR_HOOK_OUTPUT_PREFIXES",
                if served { "" } else { " in another bucket" }
            ),
        ))
    }

    /// Checks where every rule writes (see [`Service::places`]), then decodes `input` once and converts
    /// it by each rule (and reads its info with `want_info`); stores nothing. `input` is copied only
    /// when there is work for it (a plain PUT's body is not). `upload`: the request writes `key` itself
    /// after the outputs (a PUT), so what is there is kept to put back too.
    ///
    /// What the writes replace is kept in memory to put back: its size (from the heads) is taken from
    /// the service's memory budget before the work is queued, and the bodies are read after it.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn prepare(
        &self,
        key: &str,
        input: Cow<'_, [u8]>,
        ops: &PicOperations,
        want_info: bool,
        whose: Rules,
        limits: Limits,
        upload: bool,
    ) -> Result<Prepared> {
        let mut rules = Vec::new();
        for r in &ops.rules {
            rules.push(crate::parse(&r.rule)?);
        }
        let places = self.places(key, ops, whose).await?;
        if rules.is_empty() && !want_info {
            return Ok(Prepared::default());
        }
        // the upload's own write matters only after outputs (alone, a PUT is one whole write)
        let upload = (upload && !places.is_empty()).then_some(key);
        let mut replaced = std::collections::HashMap::new();
        for p in &places {
            let size = p.existing.as_ref().map_or(0, |h| h.size);
            replaced.insert((p.bucket.name(), p.key.as_str()), size);
        }
        let upload_place = (self.default_bucket.name(), key);
        if upload.is_some() && !replaced.contains_key(&upload_place) {
            let size = self.default_bucket.head(key).await?.map_or(0, |h| h.size);
            replaced.insert(upload_place, size);
        }
        let held = self.work.hold(
            replaced.values().sum(),
            "the objects these rules' outputs replace (kept to put back if a write fails)",
        )?;
        let input = input.into_owned();
        let (outputs, info) = self
            .work
            .run(limits.deadline, move || {
                let source = codec::probe(&input, &limits).and_then(|probe| {
                    // A rule that would fail on its sizes fails before the decode, not after it.
                    for rule in rules.iter().filter(|r| !r.ignore_error) {
                        convert::plan(rule, &probe, &limits)?;
                    }
                    let info_frames = if want_info {
                        info::frames_needed(&probe)
                    } else {
                        Frames::First
                    };
                    let frames = rules
                        .iter()
                        .map(|r| convert::frames_for(r, probe.format))
                        .fold(info_frames, Frames::or);
                    Source::decode(&input, probe, &limits, frames)
                });
                let outputs =
                    convert::convert_each(&source, &input, &rules, &limits, Profile::Persistent)?;
                let info = if want_info {
                    let s = source?;
                    Some(info::describe(&input, &s.probe, &s.picture))
                } else {
                    None
                };
                Ok((outputs, info))
            })
            .await?;
        let mut befores = self.befores(&places, upload).await?.into_iter();
        let outputs = places
            .into_iter()
            .zip(outputs)
            .zip(befores.by_ref())
            .map(|((place, output), before)| Target {
                bucket: place.bucket,
                key: place.key,
                output,
                before,
            })
            .collect();
        Ok(Prepared {
            outputs,
            info,
            upload_before: befores.next(),
            _held: Some(held),
        })
    }

    /// Writes the outputs, then the upload (unless an output took its key); when a write fails or the
    /// deadline passes, puts back what the writes so far replaced — the failed one's included, as its
    /// answer may have been lost after the store kept it — and answers the failure.
    pub(super) async fn store_outputs(
        &self,
        targets: Vec<Target>,
        source_etag: &str,
        upload: Option<Upload<'_>>,
        limits: Limits,
    ) -> Result<Vec<ProcessResult>> {
        let mut results = Vec::with_capacity(targets.len());
        let mut done = Vec::with_capacity(targets.len() + 1);
        let mut replaced = false;
        for Target {
            bucket,
            key,
            output,
            before,
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
            let meta = output_metadata(source_etag, output.stored_quality());
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

/// A PUT's own object, written after its outputs, and what it replaces.
pub(super) struct Upload<'a> {
    key: &'a str,
    body: &'a [u8],
    content_type: &'a str,
    metadata: &'a Metadata,
    before: Restore,
}

impl Place {
    /// A rule may overwrite its own input, nothing, or one of mogr's outputs (`existing` is what is
    /// stored there now).
    fn check_replaceable(&self, existing: Option<&store::Head>) -> Result<()> {
        let ours = existing.is_none_or(|h| store::is_output(&h.metadata));
        if self.own_input || ours {
            return Ok(());
        }
        let (fileid, key) = (&self.fileid, &self.key);
        Err(Error::new(
            Code::AccessDenied,
            format!(
                "fileid {fileid:?} would overwrite {key:?}, an object mogr did not write: a rule may \
                 overwrite only its own input or mogr's earlier outputs; choose another fileid, or \
                 delete {key:?} first"
            ),
        ))
    }
}
