//! How hard mogr tries S3 ([`S3Policy`]: attempts and timeouts) and how its faults are answered: as
//! COS errors a client can act on, with the SDK's text in the log only.

use crate::{Code, Error, Result};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use std::time::Duration;

/// How hard mogr tries S3 before answering a fault.
#[derive(Debug, Clone, Copy)]
pub struct S3Policy {
    /// Attempts per operation, the first included (`MOGR_S3_ATTEMPTS`, default 3), with exponential
    /// backoff from 100 ms between them.
    pub attempts: u32,
    /// How long one attempt may wait for S3's answer, connecting included (`MOGR_S3_ATTEMPT_TIMEOUT_MS`,
    /// default 5,000).
    pub attempt_timeout: Duration,
    /// How long an operation may take, its retries and reading its body included
    /// (`MOGR_S3_TIMEOUT_MS`, default 15,000: a request that cannot reach S3 ends well within the
    /// function's timeout).
    pub timeout: Duration,
}

impl Default for S3Policy {
    fn default() -> Self {
        S3Policy {
            attempts: 3,
            attempt_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
        }
    }
}

impl S3Policy {
    /// The defaults, with the `MOGR_S3_*` settings that are set.
    pub fn from_env() -> Result<S3Policy> {
        let mut p = S3Policy::default();
        if let Some(n) = crate::env::number("MOGR_S3_ATTEMPTS")? {
            p.attempts = (n as u32).max(1);
        }
        if let Some(ms) = crate::env::number("MOGR_S3_ATTEMPT_TIMEOUT_MS")? {
            p.attempt_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = crate::env::number("MOGR_S3_TIMEOUT_MS")? {
            p.timeout = Duration::from_millis(ms);
        }
        Ok(p)
    }

    /// An S3 client configuration with these retries and timeouts.
    pub fn apply(&self, conf: aws_sdk_s3::config::Builder) -> aws_sdk_s3::config::Builder {
        conf.retry_config(
            RetryConfig::standard()
                .with_max_attempts(self.attempts)
                .with_initial_backoff(Duration::from_millis(100)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(self.attempt_timeout.min(Duration::from_secs(3)))
                .operation_attempt_timeout(self.attempt_timeout)
                .operation_timeout(self.timeout)
                .build(),
        )
    }
}

/// What a failed S3 call means for the client; the SDK's own words go to the log only.
pub(super) fn sdk_error<E>(op: &str, key: &str, e: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    tracing::warn!(op, key, error = %DisplayErrorContext(&e), "S3 call failed");
    let again = "nothing was written; try again";
    let timed_out = match &e {
        SdkError::TimeoutError(_) => true,
        SdkError::DispatchFailure(d) => d.is_timeout(),
        _ => false,
    };
    if timed_out {
        return Error::new(
            Code::GatewayTimeout,
            format!("the storage did not answer {op} for {key:?} in time; {again}"),
        );
    }
    match &e {
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Error::new(
            Code::BadGateway,
            format!("the connection to the storage failed during {op} for {key:?}; {again}"),
        ),
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or_default();
            if matches!(
                code,
                "SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded"
            ) || status_of(&e) == Some(503)
            {
                Error::new(
                    Code::SlowDown,
                    format!(
                        "the storage is throttling requests ({op} for {key:?}); retry in a moment"
                    ),
                )
            } else if status_of(&e).is_some_and(|s| s >= 500) {
                Error::new(
                    Code::BadGateway,
                    format!(
                        "the storage failed {op} for {key:?} (its status {}); {again}",
                        status_of(&e).unwrap_or_default()
                    ),
                )
            } else if code == "AccessDenied" || status_of(&e) == Some(403) {
                Error::new(
                    Code::AccessDenied,
                    format!("the storage refused {op} for {key:?}: mogr's role lacks a permission on this bucket"),
                )
            } else {
                Error::internal(format!(
                    "the storage refused {op} for {key:?} ({})",
                    if code.is_empty() {
                        "no error code"
                    } else {
                        code
                    }
                ))
            }
        }
        _ => Error::internal(format!("{op} for {key:?} could not be sent to the storage")),
    }
}

/// The HTTP status of a failed call, when S3 answered.
pub(super) fn status_of<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    match e {
        SdkError::ServiceError(s) => Some(s.raw().status().as_u16()),
        _ => None,
    }
}

/// A 403 on a read of a key: without `s3:ListBucket`, S3 answers a missing key so. Read as absent, as
/// a client should see it, with a hint in the log.
pub(super) fn forbidden_read<E>(op: &str, key: &str, e: &SdkError<E, HttpResponse>) -> bool {
    let forbidden = status_of(e) == Some(403);
    if forbidden {
        tracing::warn!(
            op,
            key,
            "S3 answered 403: read as a missing key (grant s3:ListBucket so that S3 answers 404)"
        );
    }
    forbidden
}
