//! Object storage: one trait, two implementations — `s3` (aws-sdk-s3, any S3-protocol server) and `dir`
//! (a local folder as the bucket) — and `Counting`, which records the calls made to either.

mod counting;
mod dir;
mod key;
mod s3;

pub use counting::{Call, Counting};
pub use dir::DirStore;
pub use key::{check_key, decode_path, encode_key, key_from_event, key_of, key_problem};
pub use s3::{S3Policy, S3Store};

use crate::Result;
use async_trait::async_trait;
use std::collections::BTreeMap;

/// User metadata (`x-amz-meta-*` without the prefix, lower-case keys).
pub type Metadata = BTreeMap<String, String>;

/// The prefix of mogr's own objects in a bucket (kept results, multipart uploads in progress): no
/// client reads, writes or lists them as objects.
pub const RESERVED: &str = "_mogr/";

/// Whether `key` is in mogr's own area ([`RESERVED`]) or is its folder, in any case (a folder store on
/// a case-insensitive file system would mix them).
pub fn is_reserved(key: &str) -> bool {
    let top = RESERVED.trim_end_matches('/');
    key.get(..top.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(top))
        && matches!(key.as_bytes().get(top.len()), None | Some(b'/'))
}

/// Metadata key that marks an object mogr wrote, so that its own upload notification is ignored.
pub const OUTPUT_MARKER: &str = "mogr-output";
/// Metadata key naming the ETag of the source an output was made from.
pub const SOURCE_ETAG: &str = "mogr-source-etag";
/// Metadata key naming the key of the object an output was made from ([`key_tag`]).
pub const SOURCE_KEY: &str = "mogr-source-key";
/// Metadata key naming the rule an output was made by ([`rule_tag`]): with [`SOURCE_ETAG`], what tells
/// that an output is current (`mogr batch` skips it).
pub const RULE: &str = "mogr-rule";
/// User-metadata key of an output's quality setting (lossy formats): what its UploadResult said, and what
/// `?imageInfo` of the output reports as `quality` (HEIF, AVIF and WebP files do not hold it).
pub const QUALITY: &str = "mogr-quality";
/// Metadata key whose value is a Pic-Operations JSON applied when the object is uploaded.
pub const PIC_OPERATIONS: &str = "pic-operations";

/// The standard headers an object keeps from its upload besides its type, as S3 does. They ride in its
/// [`Metadata`] under their names with a leading `:` (which no user-metadata name can have); the S3
/// store keeps them as S3's own fields.
pub const STORED_HEADERS: [&str; 5] = [
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

/// The key under which `meta` holds the standard header `name` ([`STORED_HEADERS`]).
pub fn stored_header_key(name: &str) -> String {
    format!(":{name}")
}

/// A time as S3's XML gives it (ISO 8601 in UTC, e.g. `2026-11-26T10:00:00Z`).
pub fn iso8601(time: std::time::SystemTime) -> String {
    use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
    DateTime::from(time)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_default()
}

/// The standard headers in `meta` ([`STORED_HEADERS`]): name and value.
pub fn stored_headers(meta: &Metadata) -> impl Iterator<Item = (&str, &str)> {
    meta.iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(':')?, v.as_str())))
}

/// The user metadata in `meta`, without the standard headers.
pub fn user_entries(meta: &Metadata) -> impl Iterator<Item = (&str, &str)> {
    meta.iter()
        .filter(|(k, _)| !k.starts_with(':'))
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// An object's facts without its body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head {
    /// Without quotes.
    pub etag: String,
    pub content_type: Option<String>,
    pub metadata: Metadata,
    pub size: u64,
    /// When the object was last written, when the store knows it.
    pub last_modified: Option<std::time::SystemTime>,
}

/// One object in a listing (`cos::list` pages through them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    pub last_modified: std::time::SystemTime,
}

/// One page of a store's listing ([`Store::list`]).
#[derive(Debug, Clone, Default)]
pub struct Listed {
    pub entries: Vec<Entry>,
    /// Whether more keys under the prefix follow the last entry.
    pub truncated: bool,
}

#[derive(Debug, Clone)]
pub struct Object {
    pub head: Head,
    pub body: Vec<u8>,
}

/// One bucket.
#[async_trait]
pub trait Store: Send + Sync {
    /// The bucket's name, as used in `Location` and in Pic-Operations' `bucket`.
    fn name(&self) -> &str;
    /// Reads an object; `NoSuchKey` when it does not exist.
    async fn get(&self, key: &str) -> Result<Object>;
    /// Reads an object's head; `None` when it does not exist.
    async fn head(&self, key: &str) -> Result<Option<Head>>;
    /// Whether `key` can be written, checked before a request writes anything (a folder store cannot
    /// hold `a.png` and `a.png/b.png` at once).
    fn check_put(&self, key: &str) -> Result<()> {
        check_key(key)
    }
    /// Writes an object whole (readers see the old or the new object, never a part); returns its ETag.
    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        metadata: &Metadata,
    ) -> Result<String>;
    /// Copies the object at `from` to `to` in this bucket, with `from`'s type and metadata or with
    /// `replace`'s; returns the copy's head. `NoSuchKey` (nothing written) when `from` does not exist.
    async fn copy(&self, from: &str, to: &str, replace: Option<(&str, &Metadata)>) -> Result<Head> {
        let Object { head, body } = self.get(from).await?;
        let (content_type, metadata) = match replace {
            Some((t, m)) => (t.to_string(), m.clone()),
            None => (
                head.content_type
                    .unwrap_or_else(|| "application/octet-stream".into()),
                head.metadata,
            ),
        };
        self.put(to, body, &content_type, &metadata).await?;
        self.head(to).await?.ok_or_else(|| {
            crate::Error::internal(format!(
                "the copy {to:?} was gone as soon as it was written"
            ))
        })
    }
    /// Up to `max` objects whose keys start with `prefix` and come after `after` (byte order), in
    /// that order: one page of S3's ListObjectsV2 (`start-after`).
    async fn list(&self, prefix: &str, after: Option<&str>, max: usize) -> Result<Listed>;
    /// When the bucket was created, as ListBuckets reports it (the epoch when the store cannot say).
    fn created(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH
    }
    /// A URL a client can GET the object from (a presigned URL on S3, a path locally).
    async fn url(&self, key: &str) -> Result<String>;
    /// Deletes an object; deleting one that does not exist succeeds, as in S3 and COS.
    async fn delete(&self, key: &str) -> Result<()>;
}

/// Every object whose key starts with `prefix`, in key order, a page of the store's listing at a time
/// (for mogr's own small sets: an upload's parts, the uploads in progress).
pub async fn list_all(store: &dyn Store, prefix: &str) -> Result<Vec<Entry>> {
    let mut all: Vec<Entry> = Vec::new();
    loop {
        let after = all.last().map(|e| e.key.clone());
        let listed = store.list(prefix, after.as_deref(), 1000).await?;
        let more = listed.truncated && !listed.entries.is_empty();
        all.extend(listed.entries);
        if !more {
            return Ok(all);
        }
    }
}

/// The error for reading `key` where no object is: `NoSuchKey`, as S3 and COS answer.
pub fn no_such_key(key: &str) -> crate::Error {
    crate::Error::new(
        crate::Code::NoSuchKey,
        format!("the object {key:?} does not exist"),
    )
}

/// The ETag S3 and the folder store give a body written in one piece: its MD5, in hex.
pub fn content_etag(body: &[u8]) -> String {
    use md5::{Digest, Md5};
    format!("{:x}", Md5::digest(body))
}

/// The metadata that marks an object as one of mogr's outputs, made from the source with `source_etag`
/// at `quality` (lossy formats).
pub fn output_metadata(source_etag: &str, quality: Option<u8>) -> Metadata {
    let mut meta = Metadata::from([
        (OUTPUT_MARKER.to_string(), "1".to_string()),
        (
            SOURCE_ETAG.to_string(),
            source_etag.trim_matches('"').to_string(),
        ),
    ]);
    if let Some(q) = quality {
        meta.insert(QUALITY.to_string(), q.to_string());
    }
    meta
}

/// The tag of a Pic-Operations rule as written (MD5, hex), recorded in its output's [`RULE`].
pub fn rule_tag(rule: &str) -> String {
    content_etag(rule.trim().as_bytes())
}

/// The tag of an object's key (MD5, hex: any key, in ASCII), recorded in its outputs' [`SOURCE_KEY`].
pub fn key_tag(key: &str) -> String {
    content_etag(key.as_bytes())
}

/// Whether `meta` is an output's made from the source with `source_etag` by `rule`.
pub fn made_by(meta: &Metadata, source_etag: &str, rule: &str) -> bool {
    is_output(meta)
        && meta.get(SOURCE_ETAG).map(String::as_str) == Some(source_etag.trim_matches('"'))
        && meta.get(RULE) == Some(&rule_tag(rule))
}

/// Whether `meta` marks one of mogr's outputs ([`output_metadata`]).
pub fn is_output(meta: &Metadata) -> bool {
    meta.contains_key(OUTPUT_MARKER)
}

/// The quality an output was written with, as [`output_metadata`] recorded it; `None` for objects that
/// are not mogr's outputs and for lossless ones.
pub fn output_quality(meta: &Metadata) -> Option<&str> {
    meta.get(QUALITY)
        .filter(|_| is_output(meta))
        .map(String::as_str)
}
