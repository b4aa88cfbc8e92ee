//! Any bytes as a `Pic-Operations` header: parsed, each rule parsed, each fileid resolved against an input
//! key; every resolved key must be a valid key.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mogr::cos::{resolve_fileid, PicOperations};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(ops) = PicOperations::parse(&text) else {
        return;
    };
    for r in &ops.rules {
        let _ = mogr::parse(&r.rule);
        for input in ["photo.jpg", "in/photo.png", "a/b/c/d.gif"] {
            if let Ok(key) = resolve_fileid(input, &r.fileid) {
                assert!(
                    mogr::store::check_key(&key).is_ok(),
                    "{input:?} + {:?} resolved to an invalid key {key:?}",
                    r.fileid
                );
            }
        }
    }
});
