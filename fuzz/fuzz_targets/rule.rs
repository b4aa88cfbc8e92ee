//! Any bytes as a rule: a `Rule` or a `RuleError` naming a token inside the input, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match mogr::parse(&text) {
        Ok(rule) => {
            // a parsed rule plans against any probe without panicking
            let _ = rule.ops.len();
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty());
        }
    }
});
