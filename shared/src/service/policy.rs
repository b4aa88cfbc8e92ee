//! Where a request's rules may write: outputs only to writable keys outside mogr's own area, over
//! nothing but their own input or mogr's earlier outputs, and — for an uploaded object's own rules —
//! beside it. Checked from heads before any work; nothing is read or written here.

use super::Service;
use crate::cos::{resolve_fileid, PicOperations};
use crate::store::{self, Store};
use crate::{Code, Error, Result};
use std::sync::Arc;

/// Where a rule's output goes, and the head of what is stored there now: its body is read only once
/// the work is done, within the memory held for it.
pub(super) struct Place {
    pub bucket: Arc<dyn Store>,
    pub key: String,
    pub fileid: String,
    pub own_input: bool,
    pub existing: Option<store::Head>,
}

/// Whose rules these are: a client's request (PUT, POST) or the operator's default rules, trusted
/// with any fileid in the buckets the service may write, or an uploaded object's own metadata (the
/// upload hook), whose outputs stay beside it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Rules {
    Trusted,
    ObjectMetadata,
}

impl Service {
    /// Refuses a client's write in mogr's own area (`_mogr/`: kept results, uploads in progress), in
    /// any case (a planted object there would be served as a conversion or joined into an upload).
    pub(super) fn check_writable(&self, key: &str) -> Result<()> {
        store::check_key(key)?;
        if store::is_reserved(key) {
            return Err(Error::new(
                Code::AccessDenied,
                format!(
                    "object key {key:?} is under {}, which mogr reserves for the results it keeps and \
                     the uploads in progress it stores itself; choose another key",
                    store::RESERVED
                ),
            ));
        }
        Ok(())
    }

    /// Where each rule's output goes: resolved and checked, with the head of what is stored there now
    /// (a rule may overwrite only its own input or one of mogr's outputs). Nothing is read or written.
    pub(super) async fn places(
        &self,
        key: &str,
        ops: &PicOperations,
        whose: Rules,
    ) -> Result<Vec<Place>> {
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
}

impl Place {
    /// A rule may overwrite its own input, nothing, or one of mogr's outputs (`existing` is what is
    /// stored there now).
    pub(super) fn check_replaceable(&self, existing: Option<&store::Head>) -> Result<()> {
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
