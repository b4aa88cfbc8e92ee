//! Any bytes as an image under the default limits: probe, then decode every frame (JPEG, PNG, GIF,
//! WebP, BMP, TIFF, HEIF, AVIF). An error is fine; a panic, a hang or an allocation over the limits is
//! a finding (run with `-rss_limit_mb` and `-malloc_limit_mb`, see TESTING.md).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mogr::codec::{self, Frames};
use mogr::Limits;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(probe) = codec::probe(data, &limits) else {
        return;
    };
    if let Ok(picture) = codec::decode(data, &probe, &limits, Frames::All) {
        assert!(picture.width() <= 30_000 && picture.height() <= 30_000);
        assert!(picture.frames.len() as u32 <= probe.frames.max(1));
    }
});
