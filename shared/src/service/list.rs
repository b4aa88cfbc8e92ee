//! Listing the served bucket (ListObjects, ListObjectsV2) over any store, a store's page at a time:
//! mogr's own area (`_mogr/`) is never listed.

use super::Service;
use crate::cos::list::{Page, Pager, Query, MAX_KEYS};
use crate::store::RESERVED;
use crate::Result;

impl Service {
    /// The page of the served bucket's listing `q` asks for.
    pub async fn list(&self, q: &Query) -> Result<Page> {
        let mut pager = Pager::new(q);
        // resuming after a folder: past all of it at once
        let mut after = q.after.clone().map(|a| match &q.delimiter {
            Some(d) if a.ends_with(d.as_str()) => format!("{a}{}", char::MAX),
            _ => a,
        });
        loop {
            let listed = (self.default_bucket)
                .list(&q.prefix, after.as_deref(), MAX_KEYS)
                .await?;
            let Some(last) = listed.entries.last().map(|e| e.key.clone()) else {
                break;
            };
            for e in listed.entries {
                if e.key.starts_with(RESERVED) {
                    continue;
                }
                if !pager.push(e) {
                    return Ok(pager.finish());
                }
            }
            if !listed.truncated {
                break;
            }
            after = Some(match last.starts_with(RESERVED) {
                true => format!("{RESERVED}{}", char::MAX),
                false => pager.resume_after(&last),
            });
        }
        Ok(pager.finish())
    }
}
