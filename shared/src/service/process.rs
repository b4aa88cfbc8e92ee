//! In cloud (`POST /<key>?image_process`) and upon upload (`PUT /<key>` with `Pic-Operations`): every
//! rule is validated and converted — from one decode of the input — before anything is stored, then
//! the outputs are written and reported as COS's `UploadResult`.

use super::Service;
use crate::codec::{self, Frames, Profile};
use crate::convert::{self, Output, Source};
use crate::cos::{resolve_fileid, OriginalInfo, PicOperations, ProcessResult};
use crate::info::{self, ImageInfo};
use crate::store::{output_metadata, Metadata, Store};
use crate::Result;
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

/// What `UploadResult` reports: the input (its `ImageInfo` with `is_pic_info`) and each stored output.
pub(super) type Report = (OriginalInfo, Vec<ProcessResult>);

/// Outputs converted and not yet stored, with the input's info when it was asked for.
#[derive(Default)]
pub(super) struct Prepared {
    pub outputs: Vec<Target>,
    pub info: Option<ImageInfo>,
}

/// One rule's output and where it goes.
pub(super) struct Target {
    bucket: Arc<dyn Store>,
    key: String,
    output: Output,
}

impl Service {
    pub(super) async fn post(&self, post: Post) -> Result<Report> {
        let obj = self.default_bucket.get(&post.key).await?;
        let want_info = post.ops.is_pic_info == 1;
        let prepared = self
            .prepare(&post.key, obj.body, &post.ops, want_info)
            .await?;
        let results = self.store_outputs(prepared.outputs, &obj.head.etag).await?;
        let original = self.original(&post.key, &obj.head.etag, prepared.info, &results);
        Ok((original, results))
    }

    /// Stores the upload and its rules' outputs; returns the report and the upload's own ETag.
    pub(super) async fn put(&self, put: Put<'_>) -> Result<(Report, String)> {
        self.config.limits.check_bytes(put.body.len())?;
        let ops = put.ops.unwrap_or(PicOperations {
            is_pic_info: 0,
            rules: Vec::new(),
        });
        // Every rule is converted before anything is stored: a failing rule stores nothing.
        let want_info = ops.is_pic_info == 1;
        let prepared = self
            .prepare(&put.key, put.body.to_vec(), &ops, want_info)
            .await?;
        let etag = self
            .default_bucket
            .put(
                &put.key,
                put.body.to_vec(),
                &put.content_type,
                &put.metadata,
            )
            .await?;
        let results = self.store_outputs(prepared.outputs, &etag).await?;
        let original = self.original(&put.key, &etag, prepared.info, &results);
        Ok(((original, results), etag))
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

    /// Validates every rule (grammar, fileid, bucket), then decodes `input` once and converts it by
    /// each rule (and reads its info with `want_info`); stores nothing.
    pub(super) async fn prepare(
        &self,
        key: &str,
        input: Vec<u8>,
        ops: &PicOperations,
        want_info: bool,
    ) -> Result<Prepared> {
        let mut places = Vec::new();
        let mut rules = Vec::new();
        for r in &ops.rules {
            rules.push(crate::parse(&r.rule)?);
            let out_key = resolve_fileid(key, &r.fileid)?;
            places.push((self.bucket_named(r.bucket.as_deref())?, out_key));
        }
        if rules.is_empty() && !want_info {
            return Ok(Prepared::default());
        }
        let limits = self.config.limits;
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
        let outputs = places
            .into_iter()
            .zip(outputs)
            .map(|((bucket, key), output)| Target {
                bucket,
                key,
                output,
            })
            .collect();
        Ok(Prepared { outputs, info })
    }

    pub(super) async fn store_outputs(
        &self,
        targets: Vec<Target>,
        source_etag: &str,
    ) -> Result<Vec<ProcessResult>> {
        let meta = output_metadata(source_etag);
        let mut results = Vec::with_capacity(targets.len());
        for t in targets {
            let size = t.output.bytes.len() as u64;
            let etag = t
                .bucket
                .put(&t.key, t.output.bytes, t.output.format.mime(), &meta)
                .await?;
            results.push(ProcessResult {
                location: self.location(t.bucket.name(), &t.key),
                key: t.key,
                format: t.output.format.name().to_string(),
                width: t.output.width,
                height: t.output.height,
                size,
                quality: t.output.quality,
                etag,
            });
        }
        Ok(results)
    }
}
