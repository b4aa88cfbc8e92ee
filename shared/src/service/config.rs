//! Service settings, read from `MOGR_*` environment variables.

use super::sign::Signer;
use crate::auth::AccessKeys;
use crate::codec::{cores, Deadline};
use crate::cos::PicOperations;
use crate::env::{list, number, var};
use crate::{Error, Limits, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// Service settings; [`Config::from_env`] reads them from `MOGR_*` variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub limits: Limits,
    /// `Cache-Control` of download-time results.
    pub cache_control: String,
    /// Host used in `Location` (`<host>/<key>`); default `<bucket>.s3.amazonaws.com`.
    pub public_host: Option<String>,
    /// Results larger than this are kept under `_mogr/cache/` and answered with a 302 redirect to the
    /// store's URL (Lambda's buffered responses hold about 4.5 MB of binary). `None`: always inline.
    pub max_inline_bytes: Option<usize>,
    /// Whether download-time conversions are kept under `_mogr/cache/` and answered from there until
    /// their source changes (`MOGR_RESULT_CACHE`, default on; `0` turns it off).
    pub result_cache: bool,
    /// Whether a result is written to the cache after the answer instead of before: for a server that
    /// keeps running after it answers (`mogr serve`), and a Lambda function whose environment is held
    /// until the writes end (`bootstrap::hold_for_background`; Lambda freezes it once it answers).
    pub detached_cache_writes: bool,
    /// Default Pic-Operations per key prefix, applied on upload when the object carries none.
    pub default_rules: Vec<(String, PicOperations)>,
    /// Where an uploaded object's own rules (`x-amz-meta-pic-operations`) may write besides its own
    /// folder: key prefixes, from `MOGR_HOOK_OUTPUT_PREFIXES` (comma-separated; default none).
    pub hook_output_prefixes: Vec<String>,
    /// The rule set S3 Batch Operations jobs run when they give none (`MOGR_BATCH_RULES`,
    /// Pic-Operations' JSON with `{dirname}`/`{barename}`/`{basename}`/`{ext}` fileids).
    pub batch_rules: Option<PicOperations>,
    /// Conversions run at once (default: one per core) and how many more may wait before requests are
    /// refused with 503 `SlowDown` (default: twice the workers).
    pub workers: usize,
    pub queue: usize,
    /// What a download (a public GET) may ask for beyond `limits`: the most pixels a step may produce
    /// (`MOGR_DOWNLOAD_MAX_PIXELS`, default 40,000,000), how far a step may enlarge the longer side
    /// (`MOGR_DOWNLOAD_MAX_UPSCALE`, default 4×), and whether it may pick `profile` or `size-limit`,
    /// which cost more encoding on every request (`MOGR_DOWNLOAD_ALLOW_COSTLY=1`; default no).
    pub download_max_pixels: u64,
    pub download_max_upscale: u32,
    pub download_allow_costly: bool,
    /// How long a download's work may take, queue included (`MOGR_DOWNLOAD_DEADLINE_MS`, default
    /// 20,000: well under API Gateway's 29 s); past it the request answers 503 and writes nothing.
    /// `None` (`0`): no deadline.
    pub download_deadline: Option<Duration>,
    /// How long a POST or PUT with rules may take (`MOGR_PROCESS_DEADLINE_MS`; default none, the
    /// template sets 15,000 under API Gateway's 30 s). Checked between steps and before each write: past
    /// it the request answers 503, and what it had written is put back.
    pub process_deadline: Option<Duration>,
    /// How long a multipart upload may stay unfinished before the next one to start removes it with
    /// its parts (`mogr serve --upload-expiry`); `None`: the bucket's lifecycle rule does (on AWS).
    pub upload_expiry: Option<Duration>,
    /// With keys (`MOGR_SIGNING_KEYS`, comma-separated; the first signs), downloads need a signed URL.
    pub signer: Signer,
    /// With keys (`MOGR_ACCESS_KEYS`: `ID:SECRET` pairs, comma-separated), every write and listing needs
    /// a signature one of them made — AWS SigV4 or COS's, as the clients sign; downloads stay public.
    pub access_keys: AccessKeys,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            cache_control: "public, max-age=86400".into(),
            public_host: None,
            max_inline_bytes: None,
            result_cache: true,
            detached_cache_writes: false,
            default_rules: Vec::new(),
            hook_output_prefixes: Vec::new(),
            batch_rules: None,
            workers: cores() as usize,
            queue: 2 * cores() as usize,
            download_max_pixels: 40_000_000,
            download_max_upscale: 4,
            download_allow_costly: false,
            download_deadline: Some(Duration::from_secs(20)),
            process_deadline: None,
            upload_expiry: None,
            signer: Signer::default(),
            access_keys: AccessKeys::default(),
        }
    }
}

impl Config {
    /// The memory requests may hold outside their work, at once (see `Work::hold`): an input's worth
    /// for every conversion running or waiting.
    pub fn held_memory(&self) -> u64 {
        let places = (self.workers + self.queue).max(1) as u64;
        places * self.limits.max_input_bytes as u64
    }

    /// Reads `MOGR_MEMORY_MB` (or Lambda's `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`: the memory plan),
    /// `MOGR_CACHE_CONTROL`, `MOGR_PUBLIC_HOST`, `MOGR_MAX_INLINE_BYTES`, `MOGR_RESULT_CACHE`, `MOGR_DEFAULT_RULES`
    /// (JSON object: key prefix -> Pic-Operations), `MOGR_HOOK_OUTPUT_PREFIXES`, `MOGR_MAX_INPUT_BYTES`/`MOGR_MAX_PIXELS` and
    /// `MOGR_WORKERS`/`MOGR_QUEUE`, `MOGR_ENCODER_THREADS`, `MOGR_PROCESS_DEADLINE_MS`, `MOGR_SIGNING_KEYS` and `MOGR_DOWNLOAD_*`.
    pub fn from_env() -> Result<Config> {
        let mut c = Config::default();
        if let Some(v) = var("MOGR_CACHE_CONTROL") {
            c.cache_control = v;
        }
        c.public_host = var("MOGR_PUBLIC_HOST");
        if let Some(n) = number("MOGR_MAX_INLINE_BYTES")? {
            c.max_inline_bytes = Some(n as usize);
        }
        if let Some(v) = var("MOGR_RESULT_CACHE") {
            c.result_cache = !matches!(v.as_str(), "0" | "false" | "no" | "off");
        }
        if let Some(n) = number("MOGR_MAX_INPUT_BYTES")? {
            c.limits.max_input_bytes = n as usize;
        }
        if let Some(n) = number("MOGR_MAX_PIXELS")? {
            c.limits.max_pixels = n;
        }
        if let Some(n) = number("MOGR_WORKERS")? {
            c.workers = (n as usize).max(1);
            c.queue = 2 * c.workers;
        }
        if let Some(n) = number("MOGR_QUEUE")? {
            c.queue = n as usize;
        }
        // The memory plan: a function's own memory on Lambda (one request at a time), or
        // MOGR_MEMORY_MB shared by the workers; less what requests hold outside their conversions
        let local = number("MOGR_MEMORY_MB")?;
        if let Some(mb) = local.or(number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")?) {
            let at_once = if local.is_some() { c.workers } else { 1 } as u64;
            let free = (mb << 20).saturating_sub(c.held_memory());
            c.limits.max_memory = Some(free / at_once);
        }
        if let Some(n) = number("MOGR_ENCODER_THREADS")? {
            c.limits.encoder_threads = (n as u32).max(1);
        }
        // deadlines in milliseconds; 0: none
        if let Some(ms) = number("MOGR_DOWNLOAD_DEADLINE_MS")? {
            c.download_deadline = (ms > 0).then(|| Duration::from_millis(ms));
        }
        if let Some(ms) = number("MOGR_PROCESS_DEADLINE_MS")? {
            c.process_deadline = (ms > 0).then(|| Duration::from_millis(ms));
        }
        if let Some(v) = var("MOGR_SIGNING_KEYS") {
            c.signer = Signer::parse(&v)?;
        }
        if let Some(v) = var("MOGR_ACCESS_KEYS") {
            c.access_keys = AccessKeys::parse(&v)?;
        }
        if let Some(n) = number("MOGR_DOWNLOAD_MAX_PIXELS")? {
            c.download_max_pixels = n;
        }
        if let Some(n) = number("MOGR_DOWNLOAD_MAX_UPSCALE")? {
            c.download_max_upscale = n as u32;
        }
        if let Some(v) = var("MOGR_DOWNLOAD_ALLOW_COSTLY") {
            c.download_allow_costly = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = var("MOGR_HOOK_OUTPUT_PREFIXES") {
            c.hook_output_prefixes = list(&v).map(str::to_string).collect();
        }
        if let Some(v) = var("MOGR_DEFAULT_RULES") {
            let map: BTreeMap<String, serde_json::Value> =
                serde_json::from_str(&v).map_err(|e| {
                    Error::internal(format!("MOGR_DEFAULT_RULES is not a JSON object: {e}"))
                })?;
            for (prefix, ops) in map {
                c.default_rules
                    .push((prefix, PicOperations::parse(&ops.to_string())?));
            }
        }
        if let Some(v) = var("MOGR_BATCH_RULES") {
            let ops = super::batch::parse_rules(&v)
                .map_err(|e| Error::internal(format!("MOGR_BATCH_RULES: {}", e.message)))?;
            c.batch_rules = Some(ops);
        }
        Ok(c)
    }

    /// The limits of a POST or PUT starting now: `limits` with the process deadline.
    pub fn process_limits(&self) -> Limits {
        Limits {
            deadline: self.process_deadline.map(Deadline::after),
            ..self.limits
        }
    }

    /// The limits of a download starting now: `limits` with the download caps on what steps produce
    /// and the download deadline.
    pub fn download_limits(&self) -> Limits {
        Limits {
            max_output_pixels: self.download_max_pixels,
            max_upscale: self.download_max_upscale,
            deadline: self.download_deadline.map(Deadline::after),
            ..self.limits
        }
    }
}
