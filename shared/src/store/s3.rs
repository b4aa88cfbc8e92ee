//! Amazon S3, or any S3-protocol server: `AWS_ENDPOINT_URL_S3` picks the endpoint and, when set,
//! path-style addressing is used (`MOGR_S3_PATH_STYLE=0` turns it off).

use super::{Head, Metadata, Object, Store};
use crate::{Code, Error, Result};
use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use std::time::Duration;

#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: Client, bucket: impl Into<String>) -> S3Store {
        S3Store {
            client,
            bucket: bucket.into(),
        }
    }

    /// A client from the environment (credentials, region, `AWS_ENDPOINT_URL_S3`).
    pub async fn client_from_env() -> Client {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let custom_endpoint = std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let path_style = match std::env::var("MOGR_S3_PATH_STYLE") {
            Ok(v) => v == "1" || v == "true",
            Err(_) => custom_endpoint,
        };
        let conf = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(path_style)
            .build();
        Client::from_conf(conf)
    }
}

/// A [`Head`] from a GetObject or HeadObject output (different types with the same accessors).
macro_rules! head_of {
    ($out:expr) => {
        Head {
            etag: $out
                .e_tag()
                .unwrap_or_default()
                .trim_matches('"')
                .to_string(),
            content_type: $out.content_type().map(str::to_string),
            metadata: $out
                .metadata()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            size: $out.content_length().unwrap_or_default().max(0) as u64,
        }
    };
}

fn sdk_error<E: std::error::Error + Send + Sync + 'static>(
    op: &str,
    key: &str,
    e: SdkError<E>,
) -> Error {
    Error::internal(format!(
        "S3 {op} {key:?} failed: {}",
        DisplayErrorContext(&e)
    ))
}

#[async_trait]
impl Store for S3Store {
    fn name(&self) -> &str {
        &self.bucket
    }

    async fn get(&self, key: &str) -> Result<Object> {
        super::check_key(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(Error::new(
                    Code::NoSuchKey,
                    format!("the object {key:?} does not exist"),
                ))
            }
            Err(e) => return Err(sdk_error("GetObject", key, e)),
        };
        let head = head_of!(out);
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| {
                Error::internal(format!(
                    "S3 GetObject {key:?}: reading the body failed: {e}"
                ))
            })?
            .into_bytes()
            .to_vec();
        Ok(Object { head, body })
    }

    async fn head(&self, key: &str) -> Result<Option<Head>> {
        super::check_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(head_of!(out))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(sdk_error("HeadObject", key, e)),
        }
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        metadata: &Metadata,
    ) -> Result<String> {
        super::check_key(key)?;
        let out = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .set_metadata(Some(metadata.clone().into_iter().collect()))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| sdk_error("PutObject", key, e))?;
        Ok(out
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        super::check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteObject", key, e))?;
        Ok(())
    }

    async fn url(&self, key: &str) -> Result<String> {
        let cfg = PresigningConfig::expires_in(Duration::from_secs(900))
            .map_err(|e| Error::internal(e.to_string()))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(cfg)
            .await
            .map_err(|e| sdk_error("presign GetObject", key, e))?;
        Ok(req.uri().to_string())
    }
}
