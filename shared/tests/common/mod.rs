//! Helpers shared by the test files of this crate.
#![allow(dead_code)]

use mogr::codec::{self, Frames, Limits, Picture};

/// A file from `tests/fixtures`.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

pub fn decode(bytes: &[u8], frames: Frames) -> Picture {
    codec::probe_and_decode(bytes, &Limits::default(), frames)
        .unwrap_or_else(|e| panic!("decode: {e}"))
}
