//! Any bytes as an S3 event's object key and as a request path: decoded keys are valid keys or errors.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mogr::store::{check_key, encode_key, key_from_event, key_of};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for key in [key_from_event(&text), key_of(&text)].into_iter().flatten() {
        assert!(
            check_key(&key).is_ok(),
            "{text:?} decoded to an invalid key {key:?}"
        );
        // a valid key survives the trip through a URL path
        assert_eq!(
            key_of(&format!("/{}", encode_key(&key))).ok().as_deref(),
            Some(key.as_str())
        );
    }
});
