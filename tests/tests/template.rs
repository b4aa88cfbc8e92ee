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

/// The CloudFront Function's code as `template.yaml` holds it (its `FunctionCode: |` block).
fn cloudfront_function(t: &str) -> String {
    let head = "      FunctionCode: |\n";
    let start = t
        .find(head)
        .expect("a CloudFront Function in template.yaml")
        + head.len();
    t[start..]
        .lines()
        .take_while(|l| l.starts_with("        ") || l.is_empty())
        .map(|l| l.get(8..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn template_puts_cloudfront_in_front_of_downloads() {
    let t = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    // on unless turned off; everything CloudFront is under the condition
    assert!(t.contains("  Cdn:\n    Type: String\n    Default: \"on\""));
    assert!(t.contains("WithCdn: !Equals [!Ref Cdn, \"on\"]"));
    for resource in ["AcceptClassFunction", "ResultCachePolicy", "Distribution"] {
        let block = t
            .split_once(&format!("\n  {resource}:\n"))
            .unwrap_or_else(|| panic!("{resource} missing"))
            .1;
        assert!(
            block.lines().nth(1) == Some("    Condition: WithCdn"),
            "{resource} is not under WithCdn"
        );
    }
    // the API as origin, downloads only, the whole query and the Accept class in the cache key
    assert!(t.contains("DomainName: !Sub \"${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}\""));
    assert!(t.contains("AllowedMethods: [GET, HEAD]"));
    assert!(t.contains("QueryStringBehavior: all"));
    assert!(t.contains("HeaderBehavior: whitelist\n            Headers: [x-mogr-accept]"));
    assert_eq!(mogr::accept::CLASS_HEADER, "x-mogr-accept");
    assert!(t.contains("CachePolicyId: !Ref ResultCachePolicy"));
    assert!(t.contains(
        "EventType: viewer-request\n              FunctionARN: !GetAtt AcceptClassFunction.FunctionMetadata.FunctionARN"
    ));
    assert!(t.contains("PriceClass: !Ref CdnPriceClass"));
    assert!(t.contains("OriginShieldRegion: !Ref CdnOriginShieldRegion"));
    assert!(t.contains("Value: !Sub \"https://${Distribution.DomainName}\""));
}

#[test]
fn the_cloudfront_function_reduces_accept_to_what_mogr_negotiates() {
    let t = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("accept-class.js");
    std::fs::write(&code, cloudfront_function(&t)).unwrap();
    const AUTO: &str = "imageMogr2/thumbnail/64x/format/auto";
    // Accept headers browsers send for images, and what the function makes of them
    let browsers: [(&str, Option<&str>, &str); 10] = [
        ("Chrome 131", Some("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"), "avif,webp"),
        ("Firefox 133", Some("image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"), "avif,webp"),
        ("Safari 17", Some("image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"), "avif,heif,webp"),
        ("Safari 14", Some("image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"), "webp"),
        ("Firefox 65", Some("image/webp,*/*"), "webp"),
        ("Edge 18", Some("image/png,image/svg+xml,image/jxr,image/*;q=0.8,*/*;q=0.5"), "other"),
        ("curl", Some("*/*"), "other"),
        ("no header", None, "other"),
        ("AVIF refused", Some("image/avif;q=0,image/webp,*/*"), "webp"),
        ("upper case", Some("Image/AVIF, */*"), "avif"),
    ];
    let mut samples: Vec<serde_json::Value> = browsers
        .iter()
        .map(|(_, accept, _)| serde_json::json!({ "accept": accept, "query": AUTO }))
        .collect();
    // a rule that names its format: no class (one cache entry), a client's own header dropped
    samples.push(serde_json::json!({
        "accept": "image/avif,*/*", "query": "imageMogr2/format/avif",
        "headers": { "x-mogr-accept": "webp" }
    }));
    samples.push(
        serde_json::json!({ "accept": "image/webp,*/*", "query": "imageMogr2%2Fformat%2Fauto" }),
    );
    let mut node = std::process::Command::new("node")
        .arg(repo().join("tests/js/run_function.js"))
        .arg(&code)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node is installed by scripts/setup.sh");
    let input = serde_json::to_vec(&samples).unwrap();
    std::io::Write::write_all(&mut node.stdin.take().unwrap(), &input).unwrap();
    let out = node.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let classes: Vec<Option<String>> = serde_json::from_slice(&out.stdout).unwrap();
    for ((browser, accept, expected), class) in browsers.iter().zip(&classes) {
        assert_eq!(class.as_deref(), Some(*expected), "{browser}");
        // mogr answers the class exactly as it answers the browser's own header
        let from_class = mogr::accept::from_class(expected);
        assert_eq!(
            mogr::accept::class(Some(&from_class)),
            mogr::accept::class(*accept),
            "{browser}"
        );
    }
    assert_eq!(classes[browsers.len()], None, "not format/auto");
    assert_eq!(classes[browsers.len() + 1].as_deref(), Some("webp"));
}

#[test]
fn template_watches_the_functions_with_a_dashboard_and_alarms() {
    let t = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    // the functions' EMF lines go to the stack's own namespace, which the alarms read
    assert!(t.contains("MOGR_METRICS_NAMESPACE: !Sub \"mogr/${AWS::StackName}\""));
    for alarm in [
        "DownloadErrorAlarm",
        "ProcessErrorAlarm",
        "DownloadNearTimeoutAlarm",
        "ProcessNearTimeoutAlarm",
        "UploadNearTimeoutAlarm",
        "ThrottleAlarm",
        "DeadLetterAlarm",
    ] {
        assert!(
            t.contains(&format!("  {alarm}:\n    Type: AWS::CloudWatch::Alarm\n")),
            "{alarm}"
        );
        // on the dashboard's alarm widget too
        assert!(
            t.contains(&format!("\"${{{alarm}.Arn}}\"")),
            "{alarm} on the dashboard"
        );
    }
    assert_eq!(t.matches("AlarmActions: [!Ref AlarmTopic]").count(), 7);
    // the metrics the alarms and the dashboard name are ones the functions write (shared/src/metrics.rs)
    let emf = std::fs::read_to_string(repo().join("shared/src/metrics.rs")).unwrap();
    for metric in ["Requests", "ServerErrors", "Conversions", "BytesSaved"] {
        let named = [
            format!("\"{metric}\""),
            format!("MetricName: {metric}"),
            format!("MetricName=\\\"{metric}\\\""),
        ];
        assert!(named.iter().any(|n| t.contains(n.as_str())), "{metric}");
        assert!(
            emf.contains(&format!("\"{metric}\"")),
            "{metric} is written"
        );
    }
    // the dashboard's body is JSON once CloudFormation substitutes its ${...}
    let start = t
        .find("      DashboardBody: !Sub\n        - |\n")
        .expect("a dashboard");
    let body = &t[start..].split_once("        - |\n").unwrap().1;
    let body = body.split_once("\n        - Ns:").unwrap().0;
    let mut substituted = String::new();
    let mut rest = body;
    while let Some((before, after)) = rest.split_once("${") {
        substituted.push_str(before);
        substituted.push('x');
        rest = after.split_once('}').unwrap().1;
    }
    substituted.push_str(rest);
    let dashboard: serde_json::Value = serde_json::from_str(&substituted)
        .unwrap_or_else(|e| panic!("the dashboard is not JSON: {e}\n{substituted}"));
    assert_eq!(dashboard["widgets"].as_array().unwrap().len(), 7);
}

#[test]
fn template_lets_s3_batch_operations_run_the_upload_function() {
    let t = std::fs::read_to_string(repo().join("template.yaml")).unwrap();
    let role = &t[t
        .find("  BatchOperationsRole:")
        .expect("a role for S3 Batch Operations")..];
    let role = &role[..role.find("\n\n").unwrap()];
    for needed in [
        "Principal: {Service: batchoperations.s3.amazonaws.com}",
        "Action: [lambda:InvokeFunction]\n                Resource: [!GetAtt UploadFunction.Arn",
        "Action: [s3:GetObject, s3:GetObjectVersion, s3:PutObject]",
        "s3:::${Bucket}/mogr-batch/*",
    ] {
        assert!(role.contains(needed), "{needed} not in\n{role}");
    }
    // the function's own rule set, and what `mogr batch --s3-batch` is given
    assert!(t.contains("MOGR_BATCH_RULES: !Ref BatchRules"));
    for output in ["UploadFunctionArn:", "BatchOperationsRoleArn:"] {
        assert!(t.contains(output), "{output}");
    }
}
