//! The three ways and the upload hook (`mogr_e2e::three_ways`), each run over S3 — the S3-protocol
//! test server through aws-sdk-s3 — and over a folder, from one scenario.

use mogr::store::{DirStore, S3Store};
use mogr_e2e::three_ways::{self, Bucket};
use mogr_e2e::{S3Server, BUCKET};
use std::sync::Arc;

/// The served bucket and `other-bucket` on a fresh S3-protocol server.
async fn over_s3(name: &str) -> (S3Server, Bucket) {
    let server = S3Server::start(name).await;
    server.create_bucket(BUCKET).await;
    server.create_bucket("other-bucket").await;
    let client = server.client();
    let bucket = Bucket::new(
        Arc::new(S3Store::new(client.clone(), BUCKET)),
        Arc::new(S3Store::new(client, "other-bucket")),
    )
    .await;
    (server, bucket)
}

/// The served bucket and `other-bucket` as two fresh folders.
async fn over_folders() -> (tempfile::TempDir, Bucket) {
    let dir = tempfile::tempdir().unwrap();
    let (main, other) = (dir.path().join(BUCKET), dir.path().join("other-bucket"));
    for d in [&main, &other] {
        std::fs::create_dir_all(d).unwrap();
    }
    let bucket = Bucket::new(
        Arc::new(DirStore::new(BUCKET, main)),
        Arc::new(DirStore::new("other-bucket", other)),
    )
    .await;
    (dir, bucket)
}

macro_rules! on_both {
    ($($scenario:ident),*) => {
        mod s3 {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $scenario() {
                    let (_server, bucket) = over_s3(stringify!($scenario)).await;
                    three_ways::$scenario(&bucket).await;
                }
            )*
        }
        mod folder {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $scenario() {
                    let (_dir, bucket) = over_folders().await;
                    three_ways::$scenario(&bucket).await;
                }
            )*
        }
    };
}

on_both!(downloads, in_cloud, bad_rules, upon_upload, hook);
