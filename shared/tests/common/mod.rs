//! Helpers shared by the test files of this crate.
#![allow(dead_code)]

use async_trait::async_trait;
use mogr::codec::{self, Frames, Limits, Picture};
use mogr::service::{Config, Service};
use mogr::store::{DirStore, Head, Listed, Metadata, Object, Store};
use mogr::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// A file from `tests/fixtures`.
pub fn fixture(name: &str) -> Vec<u8> {
    // At run time, not `env!`: a test binary reused from another checkout must read this one's files.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    std::fs::read(std::path::Path::new(&dir).join("tests/fixtures").join(name)).unwrap()
}

pub fn decode(bytes: &[u8], frames: Frames) -> Picture {
    codec::probe_and_decode(bytes, &Limits::default(), frames)
        .unwrap_or_else(|e| panic!("decode: {e}"))
}

/// A shipped sample from `examples/`.
pub fn example(name: &str) -> Vec<u8> {
    let path =
        Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn request(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> http::Request<Vec<u8>> {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body).unwrap()
}

/// A service over a fresh folder holding `photo.jpg` and `animated.gif`.
pub async fn setup(config: Config) -> (tempfile::TempDir, Service) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(DirStore::new("local", dir.path()));
    let meta = Default::default();
    for (key, name, ct) in [
        ("photo.jpg", "photo.jpg", "image/jpeg"),
        ("anim/animated.gif", "animated.gif", "image/gif"),
    ] {
        store.put(key, example(name), ct, &meta).await.unwrap();
    }
    (dir, Service::new(config, store))
}
/// `POST /<key>?image_process` with `ops` as Pic-Operations.
pub async fn post(service: &Service, key: &str, ops: &str) -> http::Response<Vec<u8>> {
    let uri = format!("/{key}?image_process");
    service
        .process(request("POST", &uri, &[("pic-operations", ops)], vec![]))
        .await
}

pub fn text(body: &[u8]) -> &str {
    std::str::from_utf8(body).unwrap()
}

/// A folder store whose writes to keys containing `fails` break, as a full disk, a lost connection or
/// a denied PutObject would, and whose writes to keys containing `slow` take 600 ms.
pub struct Flaky {
    store: DirStore,
    fails: &'static str,
}

impl Flaky {
    pub fn new(dir: &Path, fails: &'static str) -> Flaky {
        Flaky {
            store: DirStore::new("local", dir),
            fails,
        }
    }
}

#[async_trait]
impl Store for Flaky {
    fn name(&self) -> &str {
        self.store.name()
    }
    async fn get(&self, key: &str) -> Result<Object> {
        self.store.get(key).await
    }
    async fn head(&self, key: &str) -> Result<Option<Head>> {
        self.store.head(key).await
    }
    async fn put(&self, key: &str, body: Vec<u8>, ct: &str, meta: &Metadata) -> Result<String> {
        if key.contains(self.fails) {
            return Err(Error::internal("the disk is full"));
        }
        if key.contains("slow") {
            tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        }
        self.store.put(key, body, ct, meta).await
    }
    async fn list(&self, prefix: &str, after: Option<&str>, max: usize) -> Result<Listed> {
        self.store.list(prefix, after, max).await
    }
    async fn url(&self, key: &str) -> Result<String> {
        self.store.url(key).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.store.delete(key).await
    }
}
