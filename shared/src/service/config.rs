//! Service settings, read from `MOGR_*` environment variables.

use crate::cos::PicOperations;
use crate::{Error, Limits, Result};
use std::collections::BTreeMap;

/// Service settings; [`Config::from_env`] reads them from `MOGR_*` variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub limits: Limits,
    /// `Cache-Control` of download-time results.
    pub cache_control: String,
    /// Host used in `Location` (`<host>/<key>`); default `<bucket>.s3.amazonaws.com`.
    pub public_host: Option<String>,
    /// Results larger than this are stored under `large_prefix` and answered with a 302 redirect
    /// (Lambda's buffered responses hold about 4.5 MB of binary). `None`: always inline.
    pub max_inline_bytes: Option<usize>,
    pub large_prefix: String,
    /// Default Pic-Operations per key prefix, applied on upload when the object carries none.
    pub default_rules: Vec<(String, PicOperations)>,
    /// Conversions run at once (default: one per core) and how many more may wait before requests are
    /// refused with 503 `SlowDown` (default: twice the workers).
    pub workers: usize,
    pub queue: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            cache_control: "public, max-age=86400".into(),
            public_host: None,
            max_inline_bytes: None,
            large_prefix: "_mogr/large/".into(),
            default_rules: Vec::new(),
            workers: cores(),
            queue: 2 * cores(),
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Config {
    /// Reads `MOGR_CACHE_CONTROL`, `MOGR_PUBLIC_HOST`, `MOGR_MAX_INLINE_BYTES`, `MOGR_DEFAULT_RULES`
    /// (JSON object: key prefix -> Pic-Operations), `MOGR_MAX_INPUT_BYTES`/`MOGR_MAX_PIXELS` and
    /// `MOGR_WORKERS`/`MOGR_QUEUE`.
    pub fn from_env() -> Result<Config> {
        let mut c = Config::default();
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(v) = var("MOGR_CACHE_CONTROL") {
            c.cache_control = v;
        }
        c.public_host = var("MOGR_PUBLIC_HOST");
        let num = |k: &str, v: String| {
            v.parse::<u64>()
                .map_err(|_| Error::internal(format!("{k}={v:?} is not a whole number")))
        };
        if let Some(v) = var("MOGR_MAX_INLINE_BYTES") {
            c.max_inline_bytes = Some(num("MOGR_MAX_INLINE_BYTES", v)? as usize);
        }
        if let Some(v) = var("MOGR_MAX_INPUT_BYTES") {
            c.limits.max_input_bytes = num("MOGR_MAX_INPUT_BYTES", v)? as usize;
        }
        if let Some(v) = var("MOGR_MAX_PIXELS") {
            c.limits.max_pixels = num("MOGR_MAX_PIXELS", v)?;
        }
        if let Some(v) = var("MOGR_WORKERS") {
            c.workers = (num("MOGR_WORKERS", v)? as usize).max(1);
            c.queue = 2 * c.workers;
        }
        if let Some(v) = var("MOGR_QUEUE") {
            c.queue = num("MOGR_QUEUE", v)? as usize;
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
        Ok(c)
    }
}
