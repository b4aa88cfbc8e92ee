//! Helpers shared by the test files of this crate.
#![allow(dead_code)]

use mogr::codec::{self, Frames, Limits, Picture};
use mogr::service::{Config, Service};
use mogr::store::{DirStore, Store};
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
