//! Any bytes as an image under the default limits: probe, then decode every frame (JPEG, PNG, GIF,
//! WebP, BMP, TIFF, HEIF, AVIF). An error is fine; a panic, a hang or an allocation over the limits is
//! a finding (run with `-rss_limit_mb` and `-malloc_limit_mb`, see TESTING.md).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mogr::codec::{self, Frames};
use mogr::Limits;

fuzz_target!(|data: &[u8]| {
    // libfuzzer-sys aborts in its panic hook, before `codec::decode` can turn a decoder's panic into an
    // error as it does in production. Report panics without aborting: one that escapes `decode` still
    // reaches libfuzzer-sys's own catch_unwind, which aborts, so it is still a finding.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("caught: {info}"))));
    let limits = Limits::default();
    let Ok(probe) = codec::probe(data, &limits) else {
        return;
    };
    if let Ok(picture) = codec::decode(data, &probe, &limits, Frames::All) {
        assert!(picture.width() <= 50_000 && picture.height() <= 50_000);
        assert!(picture.frames.len() as u32 <= probe.frames.max(1));
    }
});
