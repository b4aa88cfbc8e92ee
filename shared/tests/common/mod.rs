//! Helpers shared by the test files of this crate.
#![allow(dead_code)]

use mogr::codec::{self, Frames, Limits, Picture};

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
