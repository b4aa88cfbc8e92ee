//! Lambda on S3 `ObjectCreated` notifications -> service::on_upload, one record at a time; and on S3
//! Batch Operations invocations (schema 1.0 or 2.0) -> service::s3_batch, a rule set over each object
//! of a job's manifest, answered per task `Succeeded`, `TemporaryFailure` (S3 retries it) or
//! `PermanentFailure`. A notification's refusal
//! (a 4xx: bad rules in the object's metadata, an undecodable image, a fileid it may not write) is
//! permanent: it is logged and reported, and the event is done. Any other failure (S3 down, a timeout)
//! is returned as an error, so Lambda retries the event and then sends it to the dead-letter queue
//! intact. Each record is one access-log line (and its metrics), as a request is.

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use mogr::service::batch::BatchInvocation;
use mogr::service::record::log_event;
use mogr::service::{HookOutcome, Service};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mogr::bootstrap::init_lambda();
    let service = mogr::bootstrap::service_from_env().await?;
    let service = &service;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let id = event.context.request_id;
        if event.payload.get("invocationSchemaVersion").is_some() {
            let invocation: BatchInvocation = serde_json::from_value(event.payload)?;
            return Ok(serde_json::to_value(
                service.s3_batch(&invocation, &id).await,
            )?);
        }
        notifications(service, &id, serde_json::from_value(event.payload)?).await
    }))
    .await
}

/// An S3 notification's records, one at a time.
async fn notifications(service: &Service, id: &str, event: S3Event) -> Result<Value, Error> {
    let mut done = Vec::new();
    for record in event.records {
        let started = std::time::Instant::now();
        let bucket = record.s3.bucket.name.unwrap_or_default();
        let raw_key = record.s3.object.key.unwrap_or_default();
        if bucket != service.bucket().name() {
            tracing::warn!(
                bucket,
                key = raw_key,
                "event for a bucket this function does not serve: ignored"
            );
            continue;
        }
        let result = match mogr::store::key_from_event(&raw_key) {
            Ok(key) => service.on_upload(&key).await.map(|o| (key, o)),
            Err(e) => Err(e),
        };
        let method = record.event_name.as_deref().unwrap_or("ObjectCreated");
        let log = |key: &str, done| log_event(id, "event", method, key, started, done);
        match result {
            Ok((key, outcome)) => {
                let record = match &outcome {
                    HookOutcome::Processed(_, record) => Some(record),
                    _ => None,
                };
                log(&key, Ok(record));
                done.push(json!({ "key": key, "outcome": format!("{outcome:?}") }));
            }
            Err(e) if e.is_client_error() => {
                log(&raw_key, Err(&e));
                tracing::warn!(bucket, key = raw_key, code = e.code.as_str(), error = %e.message, "upload refused: not retried");
                done.push(json!({ "key": raw_key, "outcome": "Refused", "error": e.to_string() }));
            }
            Err(e) => {
                log(&raw_key, Err(&e));
                return Err(e.into());
            }
        }
    }
    Ok(json!({ "records": done }))
}
