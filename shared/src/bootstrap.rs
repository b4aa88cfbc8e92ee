//! What every entry point needs to start: JSON logs and a [`Service`] configured from the environment
//! (on Lambda, with [`hold_for_background`] where answers should not wait for their cache writes).
//!
//! - `MOGR_BUCKET` (required): the bucket served and watched;
//! - `MOGR_ALLOWED_BUCKETS`: comma-separated buckets Pic-Operations' `bucket` field may name;
//! - the `MOGR_*` settings of [`Config::from_env`];
//! - `MOGR_ACCESS_KEYS_SECRET`: a Secrets Manager secret (name or ARN) holding access keys
//!   (`ID:SECRET,…` or a JSON object of them), read when a signed request first needs them;
//! - the AWS SDK's own variables (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL_S3`).

mod hold;

pub use hold::{hold_for_background, Answering, Hold};

use crate::service::keys::ReadSecret;
use crate::service::{Config, Service};
use crate::store::S3Store;
use crate::{Code, Error, Result};
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use std::sync::Arc;

/// Structured logs on standard error: JSON lines (CloudWatch-friendly) with `json`, human-readable
/// otherwise (coloured only when standard error is a terminal, so a log file holds plain text).
/// The level comes from `RUST_LOG` (default `info`; `RUST_LOG=mogr=debug` adds per-step timings).
pub fn init_tracing(json: bool) {
    init_tracing_with(json, None);
}

/// A layer beside the logs (the CLI's progress display), with its own filter: it sees the spans and
/// events it asks for whatever `RUST_LOG` keeps in the logs.
pub type ExtraLayer =
    Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

/// [`init_tracing`], with `extra` beside the logs.
pub fn init_tracing_with(json: bool, extra: Option<ExtraLayer>) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(!json && std::io::stderr().is_terminal())
        .with_target(false);
    let logs = if json {
        logs.json().flatten_event(true).without_time().boxed()
    } else {
        logs.boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(extra)
        .with(logs.with_filter(filter))
        .try_init();
}

/// A Lambda function's logs and metrics: JSON log lines, and CloudWatch embedded-metric-format lines
/// under `MOGR_METRICS_NAMESPACE` (default `mogr`; the template sets `mogr/<stack name>`).
pub fn init_lambda() {
    init_tracing(true);
    let namespace = std::env::var("MOGR_METRICS_NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "mogr".into());
    crate::metrics::emf_on(namespace);
}

/// Caps glibc's malloc arenas at two. glibc gives each new thread its own arena (up to 8 per core),
/// and a conversion runs on blocking-pool threads and the encoders' own threads: under load the
/// freed buffers stay spread over many arenas and the resident set creeps up. Measured with the load
/// test (10,000 requests, 32 clients, 2 cores): default arenas, RSS 73 MB → 132 MB and 1,281 req/s;
/// two arenas, flat at 53–59 MB and 1,478 req/s.
///
/// And allocations of 256 KiB and more are mapped from the system and given back when freed (glibc's
/// threshold, 128 KiB at first, otherwise climbs to 32 MiB as large blocks are freed, after which
/// picture-sized buffers come from the heap and their freed space stays resident): storing a 17.9 MP
/// photo as HEIF peaked at 247 MiB with two arenas alone, 168 MiB with this, for 9 % fewer requests a
/// second on the load test's small pictures (BENCHMARKS.md "Peak memory"). `MALLOC_ARENA_MAX` and
/// `MALLOC_MMAP_THRESHOLD_` in the environment still win.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: mallopt only sets an allocator parameter; it is called before the work starts.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
            }
        }
    }
}

/// A store over S3 `bucket` configured from the environment, as the functions' is (credentials,
/// region, `AWS_ENDPOINT_URL_S3`, the `MOGR_S3_*` policy); for `mogr batch --bucket`.
pub async fn s3_store_from_env(bucket: &str) -> Result<S3Store> {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Ok(S3Store::new(S3Store::client_from(&shared)?, bucket))
}

/// A service over S3 built from the environment.
pub async fn service_from_env() -> Result<Service> {
    tune_malloc();
    let bucket = std::env::var("MOGR_BUCKET").map_err(|_| {
        Error::internal("MOGR_BUCKET is not set: name the bucket this function serves")
    })?;
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = S3Store::client_from(&shared)?;
    let mut service = Service::new(
        Config::from_env()?,
        Arc::new(S3Store::new(client.clone(), bucket)),
    );
    let others = crate::env::var("MOGR_ALLOWED_BUCKETS").unwrap_or_default();
    for other in crate::env::list(&others) {
        service = service.allow_bucket(Arc::new(S3Store::new(client.clone(), other)));
    }
    if let Some(secret) = crate::env::var("MOGR_ACCESS_KEYS_SECRET") {
        service = service.with_key_secret(secret.clone(), read_secret(&shared, secret));
    }
    Ok(service)
}

/// Reads the Secrets Manager secret `id` (a name or an ARN) holding access keys, each time it is
/// called (the SDK honours `AWS_ENDPOINT_URL_SECRETS_MANAGER`).
fn read_secret(shared: &aws_config::SdkConfig, id: String) -> ReadSecret {
    let client = aws_sdk_secretsmanager::Client::new(shared);
    Box::new(move || {
        let (client, id) = (client.clone(), id.clone());
        Box::pin(async move {
            let unreadable = |why: String| {
                Error::new(
                    Code::ServiceUnavailable,
                    format!(
                        "the access keys could not be read from the Secrets Manager secret \
                             {id:?} ({why}): signed requests are refused until it can be read; \
                             check that it exists and that the function may \
                             secretsmanager:GetSecretValue it"
                    ),
                )
            };
            let out = (client.get_secret_value().secret_id(&id).send().await)
                .map_err(|e| unreadable(DisplayErrorContext(&e).to_string()))?;
            (out.secret_string().map(str::to_string))
                .ok_or_else(|| unreadable("it holds binary, not text".into()))
        })
    })
}
