//! The service: typed operations over the served bucket, called by the Lambda functions and the local
//! server alike through one router ([`Service::handle`]) — downloads, the three ways to process
//! (cos-api.md: [`Service::on_upload`] for an S3 `ObjectCreated` notification), listings and
//! multipart uploads.
//!
//! - [`config`]: the `MOGR_*` settings;
//! - `http`: the only part that knows HTTP — the router, requests read into the operations below, and
//!   results or errors written as responses (query strings, request ids, `<Error>` bodies, the access log);
//! - `download`: what a GET asks for, answered from the bucket; `cache`: results named before the
//!   work (ETags, 304s) and kept until their source changes;
//! - `process`: Pic-Operations rules run over one decode (POST `?image_process`, PUT);
//!   `policy`: where they may write; `commit`: their outputs stored all or nothing;
//! - `hook`: the bucket-notification hook (an object put straight into the bucket);
//! - [`batch`]: a rule set over stored objects one at a time (`mogr batch`, S3 Batch Operations);
//! - `marks`: the watermark images a rule names, read from the served bucket only;
//! - `list`: ListObjects over any store; [`multipart`]: multipart uploads over any store;
//! - `content_type`: stored types, inert types, a body's type by its bytes;
//! - [`Background`]: work left running after its answer;
//! - [`sign`]: signed downloads (`MOGR_SIGNING_KEYS`); `work`: the work queue and the memory budget.

mod background;
pub mod batch;
mod cache;
mod commit;
pub mod config;
mod content_type;
mod download;
mod hook;
mod http;
pub mod keys;
mod list;
mod marks;
pub mod multipart;
mod policy;
mod process;
pub mod record;
pub mod sign;
mod work;

pub use self::http::{
    check_body_digests, check_implemented, error_response, is_s3_request, request_id,
    user_metadata, AccessLog, Addressed, RequestId, Route, Routes,
};
pub use background::Background;
pub use cache::{CACHE_PREFIX, OUTPUT_VERSION};
pub use config::Config;
pub use download::{Answer, Body, Download, Query};
pub use hook::HookOutcome;
pub use process::{Copy, Post, Put, Report};
pub use work::{Held, Work};

use crate::store::{encode_key, Store};
use crate::{Code, Error, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The buckets a service may touch: the one it serves, plus the allow-list that Pic-Operations'
/// `bucket` field may name.
#[derive(Clone)]
pub struct Service {
    pub config: Config,
    default_bucket: Arc<dyn Store>,
    others: BTreeMap<String, Arc<dyn Store>>,
    work: Arc<Work>,
    /// Whether any bucket name in a rule means the served bucket (see [`Service::answer_to_any_bucket_name`]).
    any_name: bool,
    /// Held while a multipart upload's parts change (see [`multipart`]).
    uploads: Arc<tokio::sync::Mutex<()>>,
    /// The access keys signatures are checked against: `config.access_keys` and a secret's (see
    /// [`keys`]).
    keys: Arc<keys::Keys>,
    /// Work left running after its answer (see [`Service::background`]).
    background: Background,
}

impl Service {
    pub fn new(config: Config, bucket: Arc<dyn Store>) -> Service {
        Service {
            keys: Arc::new(keys::Keys::new(config.access_keys.clone())),
            work: Arc::new(Work::new(
                config.workers,
                config.queue,
                config.held_memory(),
            )),
            config,
            default_bucket: bucket,
            others: BTreeMap::new(),
            any_name: false,
            uploads: Arc::default(),
            background: Background::default(),
        }
    }

    /// The service with the access keys held in the secret `name` too (on Lambda:
    /// `MOGR_ACCESS_KEYS_SECRET`), read by `read`.
    pub fn with_key_secret(mut self, name: String, read: keys::ReadSecret) -> Service {
        let fixed = self.config.access_keys.clone();
        self.keys = Arc::new(keys::Keys::new(fixed).with_secret(name, read));
        self
    }

    /// Whether writes and listings need a signature: the service holds keys, or a secret does.
    pub fn keys_required(&self) -> bool {
        self.keys.required()
    }

    /// Takes `bytes` of the memory budget requests share outside their work (see [`Work::hold`]): a
    /// server holds a request's body with it while the body is read and used.
    pub fn hold(&self, bytes: u64, what: &str) -> Result<Held> {
        self.work.hold(bytes, what)
    }

    /// Conversions running and waiting in the work queue now.
    pub fn queue_depth(&self) -> (usize, usize) {
        self.work.depth()
    }

    /// A rule's `bucket`, whatever name it gives, means the served bucket: for a local server with one
    /// bucket, where code written for COS names its real bucket (`examplebucket-1250000000`).
    pub fn answer_to_any_bucket_name(mut self) -> Service {
        self.any_name = true;
        self
    }

    /// Allows Pic-Operations' `bucket` field to name this bucket.
    pub fn allow_bucket(mut self, store: Arc<dyn Store>) -> Service {
        self.others.insert(store.name().to_string(), store);
        self
    }

    /// The work answers left running (with `Config::detached_cache_writes`: result-cache writes).
    pub fn background(&self) -> &Background {
        &self.background
    }

    /// The bucket this service serves.
    pub fn bucket(&self) -> &Arc<dyn Store> {
        &self.default_bucket
    }

    fn bucket_named(&self, name: Option<&str>) -> Result<Arc<dyn Store>> {
        match name {
            None => Ok(self.default_bucket.clone()),
            Some(n)
                if n == self.default_bucket.name()
                    || (self.any_name && !self.others.contains_key(n)) =>
            {
                Ok(self.default_bucket.clone())
            }
            Some(n) => self.others.get(n).cloned().ok_or_else(|| {
                Error::new(
                    Code::AccessDenied,
                    format!(
                        "bucket {n:?} is not on this service's allow-list; outputs may go to {}",
                        self.allowed().join(", ")
                    ),
                )
            }),
        }
    }

    fn allowed(&self) -> Vec<String> {
        std::iter::once(self.default_bucket.name().to_string())
            .chain(self.others.keys().cloned())
            .collect()
    }

    /// `Location` of an object in the served bucket, as `UploadResult` gives it.
    pub fn location_of(&self, key: &str) -> String {
        self.location(self.default_bucket.name(), key)
    }

    /// `Location` of an object: `<host>/<key>`.
    fn location(&self, bucket: &str, key: &str) -> String {
        let host = match &self.config.public_host {
            Some(h) if bucket == self.default_bucket.name() => h.clone(),
            _ => format!("{bucket}.s3.amazonaws.com"),
        };
        format!("{host}/{}", encode_key(key))
    }
}
