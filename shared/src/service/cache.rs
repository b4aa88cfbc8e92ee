//! Download results known before the work, and kept until their source changes.
//!
//! A result's *tag* (its ETag) is a digest of what decides its bytes: the source object's ETag, the
//! parsed rule (two spellings of one rule are one rule), for `format/auto` the formats the request's
//! `Accept` leads to, and [`OUTPUT_VERSION`]. It is known after a HEAD of the source, so a client's
//! `If-None-Match` is answered 304 without reading or decoding anything, and it names the result's
//! stored copy, `_mogr/cache/<tag>`: a source that changes has a new ETag, hence new tags, so a stale
//! result is never served and nothing needs invalidating; the bucket's lifecycle rule removes old
//! copies. Results too large to answer inline are stored there too, and redirected to.

use super::Service;
use crate::convert::Output;
use crate::store::{self, Metadata, Object};
use crate::Result;
use md5::{Digest, Md5};

/// Where results are kept: `<CACHE_PREFIX><tag>`.
pub const CACHE_PREFIX: &str = "_mogr/cache/";

/// Changes whenever mogr's output for the same source and rule would change (an encoder setting, a
/// codec upgrade, a pipeline fix): every tag depends on it, so results made before are neither
/// revalidated nor served from the cache.
pub const OUTPUT_VERSION: &str = concat!("mogr ", env!("CARGO_PKG_VERSION"), "; output 1");

/// Metadata key of a stored result's warning (`x-mogr-warning`: frames a conversion dropped).
const WARNING: &str = "mogr-warning";
/// Metadata key of a stored `imageSlim` result's `X-Slimflag`.
const SLIM_FLAG: &str = "mogr-slimflag";

/// The tag of what `what` (a rule's canonical form, `imageInfo`, `imageAve`) makes of the object
/// whose ETag is `source_etag`.
pub fn tag(source_etag: &str, what: &str) -> String {
    let text = format!(
        "{}\n{what}\n{OUTPUT_VERSION}",
        source_etag.trim_matches('"')
    );
    format!("{:x}", Md5::digest(text.as_bytes()))
}

/// Whether an `If-Match`/`If-None-Match` list names `etag` (`*` names any): weak and strong tags
/// compare by their opaque part, as S3 does for GETs.
pub(crate) fn listed(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| {
        t == "*" || t.strip_prefix("W/").unwrap_or(t).trim_matches('"') == etag.trim_matches('"')
    })
}

/// The key of the result tagged `tag`.
pub(super) fn key(tag: &str) -> String {
    format!("{CACHE_PREFIX}{tag}")
}

/// A cached result as read back: its bytes, type and warning.
pub(super) struct Hit {
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub warning: Option<String>,
    pub slim_flag: Option<u8>,
}

impl Service {
    /// The result stored under `tag`, if any. A cache that cannot be read is a miss (and logged):
    /// the answer is then made anew.
    pub(super) async fn cached(&self, tag: &str) -> Option<Hit> {
        let key = key(tag);
        match self.default_bucket.get(&key).await {
            Ok(Object { head, body }) if store::is_output(&head.metadata) => Some(Hit {
                content_type: head
                    .content_type
                    .unwrap_or_else(|| "application/octet-stream".into()),
                warning: head.metadata.get(WARNING).cloned(),
                slim_flag: head.metadata.get(SLIM_FLAG).and_then(|f| f.parse().ok()),
                bytes: body,
            }),
            Ok(_) => None,
            Err(e) if e.code == crate::Code::NoSuchKey => None,
            Err(e) => {
                tracing::warn!(key, error = %e, "the result cache could not be read; converting anew");
                None
            }
        }
    }

    /// Stores a result under its tag. A failed write is logged, never the answer's failure; with
    /// `Config::detached_cache_writes` the answer does not wait for it either: it runs in
    /// [`Service::background`](super::Service::background).
    pub(super) async fn remember(&self, tag: &str, source_etag: &str, out: &Output) {
        let (bucket, key) = (self.default_bucket.clone(), key(tag));
        let (bytes, mime, meta) = (
            out.bytes.clone(),
            out.format.mime(),
            metadata(source_etag, out),
        );
        let write = async move {
            if let Err(e) = bucket.put(&key, bytes, mime, &meta).await {
                tracing::warn!(key, error = %e, "a result was not cached");
            }
        };
        if self.config.detached_cache_writes {
            self.background.spawn(write);
        } else {
            write.await
        }
    }

    /// Stores a result too large to answer inline under its tag, before it is redirected to.
    pub(super) async fn keep(&self, tag: &str, source_etag: &str, out: Output) -> Result<()> {
        let meta = metadata(source_etag, &out);
        self.default_bucket
            .put(&key(tag), out.bytes, out.format.mime(), &meta)
            .await
            .map(drop)
    }
}

/// A stored result's metadata: mogr's output of the source, its quality and warning.
fn metadata(source_etag: &str, out: &Output) -> Metadata {
    let mut meta = store::output_metadata(source_etag, out.stored_quality());
    if let Some(w) = out.warning() {
        meta.insert(WARNING.into(), w);
    }
    if let Some(f) = out.slim_flag {
        meta.insert(SLIM_FLAG.into(), f.to_string());
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_changes_with_the_source_the_rule_and_the_version() {
        let t = tag("\"abc\"", "rule");
        assert_eq!(t, tag("abc", "rule"), "quotes do not count");
        assert_eq!(t.len(), 32);
        assert_ne!(t, tag("abd", "rule"));
        assert_ne!(t, tag("abc", "rule2"));
        assert!(key(&t).starts_with(crate::store::RESERVED));
    }

    #[test]
    fn etag_lists_match_as_s3_does() {
        assert!(listed("\"a\"", "a"));
        assert!(listed("W/\"a\", \"b\"", "\"b\""));
        assert!(listed("*", "x"));
        assert!(!listed("\"a\"", "b"));
    }
}
