//! Tencent's own COS SDK (`cos-python-sdk-v5`, installed by `scripts/setup.sh`) against `mogr serve`:
//! `cos_sdk.py` makes the calls a COS user's code makes and checks what the SDK returns.

mod common;

use common::{here, start};
use std::process::Command;

#[test]
fn the_official_cos_python_sdk_works_against_mogr_serve() {
    let s = start("cos-sdk", &[]);
    let here = here();
    let out = Command::new("python3")
        .arg(here.join("tests/cos_sdk.py"))
        .arg(s.base.trim_start_matches("http://"))
        .arg(&s.root)
        .arg(here.join("../examples/photo.jpg"))
        .output()
        .expect("python3 is installed by scripts/setup.sh");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        !stderr.contains("No module named 'qcloud_cos'"),
        "cos-python-sdk-v5 is missing: run scripts/setup.sh"
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    eprint!("{stdout}");
    assert!(stdout.contains("checks passed"), "{stdout}");
}
