//! Upon upload straight into the bucket: an S3 `ObjectCreated` notification runs the object's rules.

use super::policy::Rules;
use super::record::Record;
use super::Service;
use crate::cos::{PicOperations, ProcessResult};
use crate::store::{self, check_key};
use crate::{Code, Result};
use std::borrow::Cow;
use std::time::Instant;

/// What `on_upload` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    /// The object is one of mogr's outputs or its own objects (`_mogr/`): its notification is ignored.
    SkippedOutput,
    /// The object carries no rules and no default rule matches its key.
    NoRules,
    /// The object was deleted or replaced before it could be read.
    Gone,
    /// The outputs stored, and what the work read, made and took.
    Processed(Vec<ProcessResult>, Record),
}

impl Service {
    /// An S3 `ObjectCreated` notification for `key` in the served bucket. Rules come from the object's
    /// `x-amz-meta-pic-operations` (whoever uploaded it wrote them: their outputs stay beside it and
    /// overwrite nothing but mogr's outputs and the object itself), else from the longest matching
    /// default-rule prefix. mogr's own outputs are ignored, and redelivery rewrites the same outputs
    /// from the same source.
    pub async fn on_upload(&self, key: &str) -> Result<HookOutcome> {
        check_key(key)?;
        if store::is_reserved(key) {
            return Ok(HookOutcome::SkippedOutput); // mogr's own: a kept result, an upload's part
        }
        let fetching = Instant::now();
        let Some(head) = self.default_bucket.head(key).await? else {
            return Ok(HookOutcome::Gone);
        };
        if store::is_output(&head.metadata) {
            return Ok(HookOutcome::SkippedOutput);
        }
        let (ops, whose) = match head.metadata.get(store::PIC_OPERATIONS) {
            Some(json) => (PicOperations::parse(json)?, Rules::ObjectMetadata),
            None => match self.default_rules_for(key) {
                Some(ops) => (ops.clone(), Rules::Trusted),
                None => return Ok(HookOutcome::NoRules),
            },
        };
        if ops.rules.is_empty() {
            return Ok(HookOutcome::NoRules);
        }
        let obj = match self.default_bucket.get(key).await {
            Ok(o) => o,
            Err(e) if e.code == Code::NoSuchKey => return Ok(HookOutcome::Gone),
            Err(e) => return Err(e),
        };
        let fetched = fetching.elapsed();
        let limits = self.config.limits;
        let prepared = self
            .prepare(key, Cow::Owned(obj.body), &ops, false, whose, limits, false)
            .await?;
        // A rule whose fileid is the input key would overwrite it and trigger another notification for
        // an object marked as output: ignored, as intended.
        let storing = Instant::now();
        let results =
            (self.store_outputs(prepared.outputs, key, &obj.head.etag, None, limits)).await?;
        let record = (prepared.record).stored(Some(fetched), storing.elapsed());
        Ok(HookOutcome::Processed(results, record))
    }

    /// The default rules of the longest configured prefix of `key`.
    fn default_rules_for(&self, key: &str) -> Option<&PicOperations> {
        self.config
            .default_rules
            .iter()
            .filter(|(prefix, _)| key.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, ops)| ops)
    }
}
