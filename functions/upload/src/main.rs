//! Lambda on S3 `ObjectCreated` notifications -> service::on_upload, one record at a time. A failure is
//! returned as an error, so Lambda retries the event and then sends it to the dead-letter queue intact.

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mogr::bootstrap::init_tracing(true);
    let service = mogr::bootstrap::service_from_env().await?;
    let service = &service;
    run(service_fn(move |event: LambdaEvent<S3Event>| async move {
        let mut done = Vec::new();
        for record in event.payload.records {
            let bucket = record.s3.bucket.name.unwrap_or_default();
            let key = mogr::store::key_from_event(&record.s3.object.key.unwrap_or_default())?;
            if bucket != service.bucket().name() {
                tracing::warn!(
                    bucket,
                    key,
                    "event for a bucket this function does not serve: ignored"
                );
                continue;
            }
            let outcome = service.on_upload(&key).await?;
            tracing::info!(bucket, key, outcome = ?outcome, "upload processed");
            done.push(json!({ "key": key, "outcome": format!("{outcome:?}") }));
        }
        Ok::<Value, Error>(json!({ "records": done }))
    }))
    .await
}
