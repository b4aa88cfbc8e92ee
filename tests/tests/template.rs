//! template.yaml passes cfn-lint (with the SAM transform), and names what the functions need.

use mogr_e2e::repo;
use std::process::Command;

#[test]
fn template_passes_cfn_lint() {
    let out = Command::new("cfn-lint")
        .arg(repo().join("template.yaml"))
        .output()
        .expect("cfn-lint is installed by scripts/setup.sh (pip install cfn-lint)");
    assert!(
        out.status.success(),
        "cfn-lint failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn template_wires_three_functions_from_one_image() {
    let t = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    for bin in ["mogr-download", "mogr-process", "mogr-upload"] {
        assert!(
            t.contains(&format!("/usr/local/bin/{bin}")),
            "{bin} not in template.yaml"
        );
        assert!(repo()
            .join("functions")
            .join(bin.trim_start_matches("mogr-"))
            .join("src/main.rs")
            .exists());
    }
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("scripts/setup.sh"),
        "the Dockerfile must install from scripts/setup.sh"
    );
    for needle in [
        "DeadLetterQueue",
        "AWS_IAM",
        "s3:ObjectCreated",
        "MemorySize",
        "UploadTimeout",
    ] {
        assert!(t.contains(needle), "{needle} missing from template.yaml");
    }
}
