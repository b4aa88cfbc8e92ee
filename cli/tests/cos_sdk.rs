//! Tencent's own COS SDK (`cos-python-sdk-v5`, installed by `scripts/setup.sh`) against `mogr serve`:
//! `cos_sdk.py` makes the calls a COS user's code makes and checks what the SDK returns.

mod common;

use common::{examples, run_client_script, run_client_script_with, start};

#[test]
fn the_official_cos_python_sdk_works_against_mogr_serve() {
    let s = start("cos-sdk", &[]);
    let host = s.base.trim_start_matches("http://");
    let sample = examples().join("photo.jpg");
    let args = [host.as_ref(), s.root.as_os_str(), sample.as_os_str()];
    run_client_script("cos_sdk.py", &args, "qcloud_cos");
}

/// The same calls with `mogr serve` holding the SDK's key: every one is signature-checked, and wrong
/// keys, expired and missing signatures are refused (`MOGR_KEYED` turns on the script's last part).
#[test]
fn the_cos_sdks_signatures_are_checked_when_mogr_serve_holds_its_key() {
    let s = start(
        "cos-sdk-keyed",
        &[("MOGR_ACCESS_KEYS", "AKIDexample:secret")],
    );
    let host = s.base.trim_start_matches("http://");
    let sample = examples().join("photo.jpg");
    let args = [host.as_ref(), s.root.as_os_str(), sample.as_os_str()];
    run_client_script_with("cos_sdk.py", &args, "qcloud_cos", &[("MOGR_KEYED", "1")]);
}
