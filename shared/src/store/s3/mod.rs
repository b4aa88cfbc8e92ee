//! Amazon S3, or any S3-protocol server: `AWS_ENDPOINT_URL_S3` picks the endpoint and, when set,
//! path-style addressing is used (`MOGR_S3_PATH_STYLE=0` turns it off).
//!
//! Faults are answered as a client can act on them, with nothing of the SDK's text: a missing key is
//! `NoSuchKey` (also when S3 says 403 because the role may not list the bucket), throttling is 503
//! `SlowDown` (with `Retry-After`), S3's own 5xx and broken connections are 502 `BadGateway`, no answer
//! in time is 504 `GatewayTimeout`; the SDK error goes to the log. Each operation is retried with
//! backoff where that can help — throttling, 5xx, timeouts, broken connections; S3 writes are whole, so
//! a retried PUT is safe — within [`S3Policy`]'s attempts and timeouts.

mod faults;

pub use faults::S3Policy;

use super::{Entry, Head, Listed, Metadata, Object, Store};
use crate::{Code, Error, Result};
use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use faults::{forbidden_read, sdk_error, status_of};
use std::time::Duration;

#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    /// How long reading a body may take once S3 has answered.
    body_timeout: Duration,
    /// Attempts at a GetObject whose body breaks off (the client's own retries end at its answer).
    attempts: u32,
}

impl S3Store {
    /// A store over `client`, which should carry an [`S3Policy`] (as [`S3Store::client_from`]'s does).
    pub fn new(client: Client, bucket: impl Into<String>) -> S3Store {
        let body_timeout = client
            .config()
            .timeout_config()
            .and_then(|t| t.operation_timeout())
            .unwrap_or(S3Policy::default().timeout);
        let attempts = client
            .config()
            .retry_config()
            .map_or(S3Policy::default().attempts, |r| r.max_attempts());
        S3Store {
            client,
            bucket: bucket.into(),
            body_timeout,
            attempts,
        }
    }

    /// A client of the SDK's `shared` configuration (credentials, region, `AWS_ENDPOINT_URL_S3`),
    /// with the [`S3Policy`] of the `MOGR_S3_*` settings.
    pub fn client_from(shared: &aws_config::SdkConfig) -> Result<Client> {
        let custom_endpoint = std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let path_style = match std::env::var("MOGR_S3_PATH_STYLE") {
            Ok(v) => v == "1" || v == "true",
            Err(_) => custom_endpoint,
        };
        let conf = aws_sdk_s3::config::Builder::from(shared).force_path_style(path_style);
        Ok(Client::from_conf(S3Policy::from_env()?.apply(conf).build()))
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
            metadata: {
                let mut m: Metadata = $out
                    .metadata()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let standard = [
                    ("cache-control", $out.cache_control()),
                    ("content-disposition", $out.content_disposition()),
                    ("content-encoding", $out.content_encoding()),
                    ("content-language", $out.content_language()),
                    ("expires", $out.expires_string()),
                ];
                for (name, value) in standard {
                    if let Some(v) = value {
                        m.insert(super::stored_header_key(name), v.to_string());
                    }
                }
                m
            },
            size: $out.content_length().unwrap_or_default().max(0) as u64,
            last_modified: $out
                .last_modified()
                .and_then(|d| std::time::SystemTime::try_from(*d).ok()),
        }
    };
}

/// A PutObject or CopyObject builder with `meta`'s user metadata as S3 metadata and its standard
/// headers ([`super::STORED_HEADERS`]) as S3's own fields.
macro_rules! with_metadata {
    ($op:expr, $meta:expr) => {{
        let meta: &Metadata = $meta;
        let mut op = $op.set_metadata(Some(
            super::user_entries(meta)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ));
        for (name, value) in super::stored_headers(meta) {
            op = match name {
                "cache-control" => op.cache_control(value),
                "content-disposition" => op.content_disposition(value),
                "content-encoding" => op.content_encoding(value),
                "content-language" => op.content_language(value),
                "expires" => match aws_sdk_s3::primitives::DateTime::from_str(
                    value,
                    aws_sdk_s3::primitives::DateTimeFormat::HttpDate,
                ) {
                    Ok(t) => op.expires(t),
                    Err(_) => op, // S3 keeps only a date
                },
                _ => op,
            };
        }
        op
    }};
}

impl S3Store {
    /// One GetObject, its body read whole. A body that broke off is `Ok(Err(..))`: worth another try,
    /// which the SDK's retries (over by the time the body is read) do not make.
    async fn get_once(&self, key: &str) -> Result<Result<Object, Error>> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_no_such_key())
                    || forbidden_read("GetObject", key, &e) =>
            {
                return Err(super::no_such_key(key))
            }
            Err(e) => return Err(sdk_error("GetObject", key, e)),
        };
        let head = head_of!(out);
        let announced = out.content_length().and_then(|n| u64::try_from(n).ok());
        let body = match tokio::time::timeout(self.body_timeout, out.body.collect()).await {
            Ok(Ok(b)) => b.into_bytes().to_vec(),
            Ok(Err(e)) => {
                tracing::warn!(key, error = %e, "S3 GetObject: the body broke off");
                return Ok(Err(Error::new(
                    Code::BadGateway,
                    format!("the connection to the storage broke while reading {key:?}; try again"),
                )));
            }
            Err(_) => {
                return Err(Error::new(
                    Code::GatewayTimeout,
                    format!("reading {key:?} from the storage took too long; try again"),
                ))
            }
        };
        // A body cut short on a connection that closed cleanly: refused rather than decoded.
        if announced.is_some_and(|n| n != body.len() as u64) {
            tracing::warn!(
                key,
                expected = announced,
                got = body.len(),
                "S3 GetObject: short body"
            );
            return Ok(Err(Error::new(
                Code::BadGateway,
                format!("the storage sent {key:?} incomplete; try again"),
            )));
        }
        Ok(Ok(Object { head, body }))
    }
}

#[async_trait]
impl Store for S3Store {
    fn name(&self) -> &str {
        &self.bucket
    }

    async fn get(&self, key: &str) -> Result<Object> {
        super::check_key(key)?;
        // The SDK retries until S3 answers; a body that breaks off after that is retried here.
        let mut attempt = 1;
        loop {
            match self.get_once(key).await? {
                Err(_) if attempt < self.attempts => {
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
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
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_not_found())
                    || forbidden_read("HeadObject", key, &e) =>
            {
                Ok(None)
            }
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
        let op = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type);
        let out = with_metadata!(op, metadata)
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

    /// S3's CopyObject: the bytes never leave S3 (up to its 5 GB limit for one copy).
    async fn copy(&self, from: &str, to: &str, replace: Option<(&str, &Metadata)>) -> Result<Head> {
        super::check_key(from)?;
        super::check_key(to)?;
        // URL-encoded, as CopyObject wants it, slashes kept
        let source = format!("{}/{}", self.bucket, crate::auth::uri_encode(from, true));
        let mut op = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(source);
        if let Some((content_type, metadata)) = replace {
            op = op
                .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
                .content_type(content_type);
            op = with_metadata!(op, metadata);
        }
        match op.send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.meta().code() == Some("NoSuchKey"))
                    || status_of(&e) == Some(404) =>
            {
                return Err(super::no_such_key(from))
            }
            Err(e) => return Err(sdk_error("CopyObject", to, e)),
        }
        self.head(to).await?.ok_or_else(|| {
            Error::internal(format!(
                "the copy {to:?} was gone as soon as it was written"
            ))
        })
    }

    async fn list(&self, prefix: &str, after: Option<&str>, max: usize) -> Result<Listed> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(after.map(str::to_string))
            .max_keys(max.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| sdk_error("ListObjectsV2", prefix, e))?;
        let entries = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(Entry {
                    key: o.key()?.to_string(),
                    size: o.size().unwrap_or_default().max(0) as u64,
                    etag: o.e_tag().unwrap_or_default().trim_matches('"').to_string(),
                    last_modified: o
                        .last_modified()
                        .and_then(|d| std::time::SystemTime::try_from(*d).ok())
                        .unwrap_or(std::time::UNIX_EPOCH),
                })
            })
            .collect();
        Ok(Listed {
            entries,
            truncated: out.is_truncated().unwrap_or(false),
        })
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
