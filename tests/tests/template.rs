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
    // Every role may list the bucket (else S3 answers a missing key with 403, and mogr cannot tell
    // "absent" from "forbidden"); the bucket keeps overwritten versions.
    assert_eq!(t.matches("Action: [s3:ListBucket]").count(), 3);
    assert!(t.contains("VersioningConfiguration:\n        Status: Enabled"));
    // kept download results expire; the download function may write them and nothing else
    assert!(t.contains(
        "Prefix: _mogr/cache/\n            Status: Enabled\n            ExpirationInDays: !Ref ResultCacheDays"
    ));
    assert!(param_default(&t, "ResultCacheDays") >= 1);
    assert!(t.contains("MOGR_RESULT_CACHE: !If [KeepResults, \"1\", \"0\"]"));
    assert!(t.contains("Action: [s3:PutObject]\n              Resource: !Sub\n                - \"arn:${AWS::Partition}:s3:::${Bucket}/_mogr/cache/*\""));
    // unfinished multipart uploads are aborted (mogr serve: --upload-expiry)
    assert!(param_default(&t, "IncompleteUploadDays") >= 1);
    assert!(t.contains(
        "AbortIncompleteMultipartUpload:\n              DaysAfterInitiation: !Ref IncompleteUploadDays"
    ));
    // mogr's own uploads (parts of any size) expire as S3's do; listings are on the signed root
    for prefix in ["_mogr/uploads/", "_mogr/parts/"] {
        assert!(
            t.contains(&format!(
                "Prefix: {prefix}\n            Status: Enabled\n            ExpirationInDays: !Ref IncompleteUploadDays"
            )),
            "{prefix} does not expire"
        );
    }
    // writes and listings: mogr's access keys from a secret (the default), or API Gateway's IAM
    for route in [
        "POST /{key+}",
        "PUT /{key+}",
        "DELETE /{key+}",
        "GET /",
        "POST /",
    ] {
        assert!(
            t.contains(&format!(
                "RouteKey: {route}\n      AuthorizationType: !If [IamWrites, AWS_IAM, NONE]\n      \
                 Target: !Sub \"integrations/${{ProcessIntegration}}\""
            )),
            "{route} is not a process route behind the chosen authorizer"
        );
    }
    assert!(t.contains(
        "RouteKey: GET /{key+}\n      AuthorizationType: NONE\n      Target: !Sub \"integrations/${DownloadIntegration}\""
    ));
    assert!(t.contains("IamWrites: !Equals [!Ref WriteAuth, IAM]"));
    assert!(t.contains("MOGR_ACCESS_KEYS_SECRET: !If [KeysInSecret, !Ref AccessKeysSecret, \"\"]"));
    assert!(t.contains("Action: [secretsmanager:GetSecretValue]"));
    assert!(t.contains("Roles: [!Ref DownloadFunctionRole, !Ref ProcessFunctionRole]"));
    assert!(t.contains("- Assert: !Not [!Equals [!Ref AccessKeysSecret, \"\"]]"));
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

/// The `Default:` of a parameter in the template's `Parameters` section.
fn param_default(t: &str, name: &str) -> u64 {
    let block = t
        .split_once(&format!("\n  {name}:\n"))
        .unwrap_or_else(|| panic!("parameter {name} missing"))
        .1;
    let line = block
        .lines()
        .take_while(|l| l.starts_with("    "))
        .find_map(|l| l.trim().strip_prefix("Default:"))
        .unwrap_or_else(|| panic!("parameter {name} has no default"));
    line.trim().trim_matches('"').parse().unwrap()
}

#[test]
fn template_bounds_work_on_lambda() {
    let t = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    // A download stops before the function's timeout and API Gateway's 30 s, so a client gets mogr's
    // 503 rather than the gateway's, and nothing is written after the client gave up.
    let deadline_s = param_default(&t, "DownloadDeadlineMs") as f64 / 1000.0;
    let timeout_s = param_default(&t, "Timeout") as f64;
    assert!(
        deadline_s > 0.0 && deadline_s + 5.0 <= timeout_s.min(30.0),
        "deadline {deadline_s} s"
    );
    assert!(t.contains("MOGR_DOWNLOAD_DEADLINE_MS: !Ref DownloadDeadlineMs"));
    // The functions stop before the gateway does; a POST or PUT stops before its last write could
    // outlast the function (its deadline, then one S3 call at most).
    assert!(timeout_s < 30.0, "Timeout {timeout_s} s");
    let process_s = param_default(&t, "ProcessDeadlineMs") as f64 / 1000.0;
    assert!(t.contains("MOGR_PROCESS_DEADLINE_MS: !Ref ProcessDeadlineMs"));
    assert!(t.contains("MOGR_S3_TIMEOUT_MS: \"5000\""));
    assert!(
        process_s > 0.0 && process_s + 5.0 <= timeout_s,
        "process deadline {process_s} s"
    );
    // Each function's concurrency may be reserved; the API throttles every route.
    for f in ["Download", "Process", "Upload"] {
        assert!(
            t.contains(&format!(
                "ReservedConcurrentExecutions: !If [Reserve{f}, !Ref {f}Concurrency, !Ref AWS::NoValue]"
            )),
            "{f}Function has no reserved-concurrency parameter"
        );
    }
    assert!(param_default(&t, "ApiRateLimit") > 0 && param_default(&t, "ApiBurstLimit") > 0);
    assert!(t.contains("ThrottlingRateLimit: !Ref ApiRateLimit"));
    assert!(t.contains("ThrottlingBurstLimit: !Ref ApiBurstLimit"));
}
