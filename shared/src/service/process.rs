//! In cloud (`POST /<key>?image_process`) and upon upload (`PUT /<key>` with `Pic-Operations`): every
//! rule is validated and converted — from one decode of the input — before anything is stored, then
//! the outputs are written and reported as COS's `UploadResult`.
//!
//! A request's writes are all or nothing: every output key is checked first (valid, writable, not
//! reserved, and not an object mogr did not write unless it is the input itself), every rule converted,
//! then the outputs are written and the upload last; when a write fails, the ones before it are put
//! back as they were. Here: the steps; where rules may write is `policy.rs`, the all-or-nothing write
//! `commit.rs`.

use super::commit::{OwnObject, Restore, Target};
use super::policy::Rules;
use super::record::{Image, Record};
use super::work::Held;
use super::Service;
use crate::codec::{self, Frames, Profile};
use crate::convert::{self, Source};
use crate::cos::{OriginalInfo, PicOperations, ProcessResult};
use crate::info::{self, ImageInfo};
use crate::store::{self, Metadata};
use crate::{Error, Limits, Result};
use std::borrow::Cow;
use std::time::Instant;

/// `POST /<key>?image_process`: rules over an object already stored.
pub struct Post {
    pub key: String,
    pub ops: PicOperations,
}

/// `PUT /<key>`: an upload, with rules when it carries `Pic-Operations`.
pub struct Put<'a> {
    pub key: String,
    pub body: &'a [u8],
    pub content_type: String,
    /// User metadata, stored as given (`pic-operations` included: those rules are the upload hook's).
    pub metadata: Metadata,
    pub ops: Option<PicOperations>,
}

/// `PUT /<key>` with a copy source: the object at `from` (in the served bucket) copied to `key`, with
/// its type and metadata, or with `replace`'s (`x-*-metadata-directive: REPLACE`).
pub struct Copy {
    pub key: String,
    pub from: String,
    pub replace: Option<(String, Metadata)>,
}

/// What `UploadResult` reports — the input (its `ImageInfo` with `is_pic_info`) and each stored
/// output — with what the request read, made and spent its time on.
#[derive(Debug)]
pub struct Report {
    pub original: OriginalInfo,
    pub results: Vec<ProcessResult>,
    pub record: Record,
}

/// Outputs converted and not yet stored, with the input's info when it was asked for. It holds the
/// memory taken for what the writes replace: keep it until the writes are done.
#[derive(Default)]
pub(super) struct Prepared {
    pub outputs: Vec<Target>,
    pub info: Option<ImageInfo>,
    /// For a PUT ([`Service::prepare`]'s `upload`): what the upload's own write replaces.
    pub upload_before: Option<Restore>,
    pub _held: Option<Held>,
    /// The source read, the outputs made, and the time their work took.
    pub record: Record,
}

impl Service {
    pub async fn post(&self, post: Post) -> Result<Report> {
        let limits = self.config.process_limits();
        // The input is refused from its head when it is over the limit, and held within the memory
        // budget while it waits for its work.
        let fetching = Instant::now();
        let size = (self.default_bucket.head(&post.key).await?).map_or(0, |h| h.size);
        limits.check_bytes(usize::try_from(size).unwrap_or(usize::MAX))?;
        let _input = self.work.hold(size, "the input")?;
        let obj = self.default_bucket.get(&post.key).await?;
        let fetched = fetching.elapsed();
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
        let storing = Instant::now();
        let results = self
            .store_outputs(prepared.outputs, &post.key, &obj.head.etag, None, limits)
            .await?;
        let record = (prepared.record).stored(Some(fetched), storing.elapsed());
        let original = self.original(&post.key, &obj.head.etag, prepared.info, &results);
        Ok(Report {
            original,
            results,
            record,
        })
    }

    /// Stores the upload and its rules' outputs; returns the report and the upload's own ETag (the
    /// MD5 of what the client sent, which the COS SDKs check).
    pub async fn put(&self, put: Put<'_>) -> Result<(Report, String)> {
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
        let storing = Instant::now();
        let results = if prepared.outputs.is_empty() {
            // Alone, the upload is one whole write: nothing to put back.
            limits.check_deadline()?;
            let body = put.body.to_vec();
            self.default_bucket
                .put(&put.key, body, &put.content_type, &put.metadata)
                .await?;
            Vec::new()
        } else {
            let upload = OwnObject {
                key: &put.key,
                body: put.body,
                content_type: &put.content_type,
                metadata: &put.metadata,
                before: prepared.upload_before.unwrap_or(Restore::Delete),
            };
            self.store_outputs(prepared.outputs, &put.key, &etag, Some(upload), limits)
                .await?
        };
        let record = (prepared.record).stored(None, storing.elapsed());
        let original = self.original(&put.key, &etag, prepared.info, &results);
        let report = Report {
            original,
            results,
            record,
        };
        Ok((report, etag))
    }

    /// Which of `ops`' rules already have their output, made from the source whose ETag is
    /// `source_etag` by that very rule (the output's [`store::SOURCE_ETAG`] and [`store::RULE`]): what
    /// a batch over a bucket skips. Checks the rules' outputs as a POST would, and writes nothing; an
    /// output another object made is an error (two objects would take turns writing it).
    pub async fn rules_done(
        &self,
        key: &str,
        source_etag: &str,
        ops: &PicOperations,
    ) -> Result<Vec<bool>> {
        let places = self.places(key, ops, Rules::Trusted).await?;
        let mine = store::key_tag(key);
        let mut done = Vec::with_capacity(places.len());
        for (p, r) in places.iter().zip(&ops.rules) {
            let meta = p.existing.as_ref().map(|h| &h.metadata);
            // two objects naming one output would write over each other's on every run
            if let Some(other) = meta.and_then(|m| m.get(store::SOURCE_KEY)) {
                if *other != mine {
                    return Err(Error::invalid(format!(
                        "fileid {:?} names {:?}, the output of another object: give each object \
                         its own (in mogr batch, with {{basename}} where objects differ only in \
                         their extension)",
                        r.fileid, p.key
                    )));
                }
            }
            done.push(meta.is_some_and(|m| store::made_by(m, source_etag, &r.rule)));
        }
        Ok(done)
    }

    /// Deletes an object a client may delete (not under mogr's reserved prefixes); deleting one that
    /// does not exist succeeds, as in S3 and COS.
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.check_writable(key)?;
        self.default_bucket.delete(key).await
    }

    /// Copies an object within the served bucket; returns the copy's head. A missing source is
    /// `NoSuchKey` and writes nothing; a copy onto itself must replace the metadata, as in S3.
    pub async fn copy(&self, copy: Copy) -> Result<store::Head> {
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
            let mut rule = crate::parse(&r.rule)?;
            self.head_marks(&mut rule).await?;
            self.read_marks(&mut rule).await?;
            rules.push(rule);
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
        let started = Instant::now();
        let (outputs, info, mut record) = self
            .work
            .run(limits.deadline, move || {
                let mut record = Record {
                    bytes_in: Some(input.len() as u64),
                    ..Record::default()
                };
                let source = codec::probe(&input, &limits).and_then(|probe| {
                    // A rule that would fail on its sizes fails before the decode, not after it.
                    for rule in rules.iter().filter(|r| !r.ignore_error) {
                        convert::plan(rule, &probe, &limits)?;
                    }
                    record.input = Some(Image::source(&probe, input.len()));
                    let info_frames = if want_info {
                        info::frames_needed(&probe)
                    } else {
                        Frames::First
                    };
                    let frames = rules
                        .iter()
                        .map(|r| convert::frames_for(r, probe.format))
                        .fold(info_frames, Frames::or);
                    (record.timings)
                        .time("decode", || Source::decode(&input, probe, &limits, frames))
                });
                let outputs =
                    convert::convert_each(&source, &input, &rules, &limits, Profile::Persistent)?;
                for out in &outputs {
                    record.outputs.push(Image::made(out));
                    record.timings.extend(&out.timings);
                }
                let info = if want_info {
                    let s = source?;
                    Some(info::describe(&input, &s.probe, &s.picture))
                } else {
                    None
                };
                Ok((outputs, info, record))
            })
            .await?;
        // the time in the work queue not spent converting: the wait for a worker, the probe
        let queued = started.elapsed().saturating_sub(record.timings.total());
        record.timings.before("queue", queued);
        let mut befores = self.befores(&places, upload).await?.into_iter();
        let outputs = places
            .into_iter()
            .zip(outputs)
            .zip(befores.by_ref())
            .zip(&ops.rules)
            .map(|(((place, output), before), r)| Target {
                bucket: place.bucket,
                key: place.key,
                output,
                before,
                rule: r.rule.clone(),
            })
            .collect();
        Ok(Prepared {
            outputs,
            info,
            upload_before: befores.next(),
            _held: Some(held),
            record,
        })
    }
}
