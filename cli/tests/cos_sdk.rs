//! Tencent's own COS SDK (`cos-python-sdk-v5`, installed by `scripts/setup.sh`) against `mogr serve`:
//! `cos_sdk.py` makes the calls a COS user's code makes and checks what the SDK returns.

mod common;

use common::{examples, run_client_script, start};

#[test]
fn the_official_cos_python_sdk_works_against_mogr_serve() {
    let s = start("cos-sdk", &[]);
    let host = s.base.trim_start_matches("http://");
    let sample = examples().join("photo.jpg");
    let args = [host.as_ref(), s.root.as_os_str(), sample.as_os_str()];
    run_client_script("cos_sdk.py", &args, "qcloud_cos");
}
