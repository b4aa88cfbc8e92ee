//! `mogr batch --bucket s3://…` against a real S3-protocol server: ~50 mixed objects (images, text,
//! broken images, mogr's own outputs), converted once, counted right, skipped the second time; a
//! run killed midway, continued with nothing done twice; the S3 Batch Operations job it writes.

use mogr_e2e::{binary, example, image_facts, S3Server, BUCKET};
use serde_json::Value;
use std::collections::BTreeMap;

const RULES: &str = r#"{"rules":[{"fileid":"/heif/{dirname}/{barename}.heic","rule":"imageMogr2/thumbnail/64x/format/heif"},{"fileid":"/small/{dirname}/{barename}.webp","rule":"imageMogr2/thumbnail/32x/format/webp"}]}"#;

/// Every object in the bucket: key → (ETag, size, last modified).
async fn objects(server: &S3Server) -> BTreeMap<String, (String, i64, String)> {
    let mut all = BTreeMap::new();
    let mut pages = server
        .client()
        .list_objects_v2()
        .bucket(BUCKET)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for o in page.unwrap().contents() {
            all.insert(
                o.key().unwrap().to_string(),
                (
                    o.e_tag().unwrap_or_default().to_string(),
                    o.size().unwrap_or_default(),
                    format!("{:?}", o.last_modified()),
                ),
            );
        }
    }
    all
}

/// Runs `mogr batch` against `server` with `args`: (exit code, stdout, stderr).
async fn batch(server: &S3Server, args: &[&str]) -> (i32, String, String) {
    let cmd = batch_command(server, RULES, args);
    run(cmd).await
}

/// `mogr batch --rules <rules> <args>`, reaching `server`.
fn batch_command(server: &S3Server, rules: &str, args: &[&str]) -> std::process::Command {
    static FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = std::env::temp_dir().join(format!("mogr-batch-s3-{}-{n}.json", std::process::id()));
    std::fs::write(&file, rules).unwrap();
    let mut cmd = std::process::Command::new(binary("mogr"));
    cmd.args(["batch", "--rules"]).arg(&file).args(args);
    cmd.envs(server.env());
    cmd
}

/// Runs `cmd` to its end: (exit code, stdout, stderr).
async fn run(mut cmd: std::process::Command) -> (i32, String, String) {
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_is_converted_once_with_a_report_of_every_object() {
    let server = S3Server::start("batch").await;
    server.create_bucket(BUCKET).await;
    let (jpg, alpha, shot, gif) = (
        example("photo.jpg"),
        example("alpha.png"),
        example("screenshot.png"),
        example("animated.gif"),
    );
    let mut put = Vec::new();
    for i in 0..12 {
        put.push((format!("in/j/{i}.jpg"), jpg.clone(), false));
    }
    for i in 0..10 {
        put.push((format!("in/p/{i}.png"), alpha.clone(), false));
        put.push((format!("in/s/{i}.png"), shot.clone(), false));
    }
    for i in 0..8 {
        put.push((format!("in/g/{i}.gif"), gif.clone(), false));
    }
    for i in 0..2 {
        put.push((format!("in/skip/{i}.jpg"), jpg.clone(), false));
        put.push((
            format!("in/broken/{i}.jpg"),
            jpg[..jpg.len() / 3].to_vec(),
            false,
        ));
    }
    for i in 0..3 {
        put.push((format!("in/docs/{i}.txt"), b"not an image".to_vec(), false));
        put.push((format!("in/made/{i}.heic"), jpg.clone(), true));
    }
    put.push(("other/x.jpg".into(), jpg.clone(), false));
    assert_eq!(put.len(), 51, "50 under in/, one beside it");
    for (key, body, output) in put {
        let meta: &[(&str, &str)] = if output { &[("mogr-output", "1")] } else { &[] };
        server.put(BUCKET, &key, body, meta).await;
    }
    let before = objects(&server).await;
    let report = std::env::temp_dir().join(format!("mogr-batch-{}.json", std::process::id()));

    // the first run: every image under in/ but in/skip/ converted, the broken ones counted
    let url = format!("s3://{BUCKET}/in/");
    let (code, out, err) = batch(
        &server,
        &[
            "--bucket",
            &url,
            "--exclude",
            "in/skip/*",
            "--jobs",
            "2",
            "--report",
            report.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 1, "two objects failed: {out}{err}");
    assert!(
        out.starts_with("48 objects: 40 converted, 6 skipped, 2 failed;"),
        "{out}{err}"
    );
    assert!(
        out.contains("skipped 3: not an image (by its extension)"),
        "{out}"
    );
    assert!(out.contains("skipped 3: one of mogr's outputs"), "{out}");
    assert!(
        out.contains("failed 2: could not be converted: a broken image"),
        "{out}"
    );
    assert!(!out.contains("InvalidArgument"), "plain words: {out}");
    assert!(err.contains("in/broken/0.jpg") && err.contains("in/broken/1.jpg"));

    let after = objects(&server).await;
    let made: BTreeMap<&String, i64> = (after.iter())
        .filter(|(k, _)| !before.contains_key(*k))
        .map(|(k, v)| (k, v.1))
        .collect();
    assert_eq!(
        made.len(),
        80,
        "two outputs for each of 40 images: {made:?}"
    );
    assert!(made.contains_key(&"heif/in/j/11.heic".to_string()));
    assert!(made.contains_key(&"small/in/g/7.webp".to_string()));
    assert!(!made
        .keys()
        .any(|k| k.contains("skip/") || k.contains("other/")));
    for (key, was) in &before {
        assert_eq!(after.get(key), Some(was), "{key} untouched");
    }
    let stored: i64 = made.values().sum();
    let bytes_in = 12 * jpg.len() + 10 * (alpha.len() + shot.len()) + 8 * gif.len();
    assert!(
        out.contains(&format!("; {bytes_in} bytes in, {stored} bytes out (")),
        "{out}"
    );

    // the report: the same summary, and a row per object naming what was stored
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let rows = report["objects"].as_array().unwrap();
    assert_eq!(rows.len(), 48);
    assert_eq!(report["summary"]["converted"], 40);
    assert_eq!(report["summary"]["bytes_out"], stored);
    assert_eq!(report["summary"]["failed"]["InvalidArgument"], 2);
    let mut outputs = 0;
    for row in rows {
        let key = row["key"].as_str().unwrap();
        match row["result"].as_str().unwrap() {
            "converted" => {
                for o in row["outputs"].as_array().unwrap() {
                    let out_key = o["key"].as_str().unwrap().to_string();
                    assert_eq!(made.get(&out_key), o["bytes"].as_i64().as_ref(), "{row}");
                    outputs += 1;
                }
            }
            "failed" => {
                assert!(key.starts_with("in/broken/"), "{row}");
                assert_eq!(row["code"], "InvalidArgument");
                assert!(!row["message"].as_str().unwrap().is_empty());
            }
            "skipped" => assert!(
                key.starts_with("in/docs/") || key.starts_with("in/made/"),
                "{row}"
            ),
            other => panic!("{other} in {row}"),
        }
    }
    assert_eq!(outputs, 80);

    // again: nothing left, nothing written
    let (code, out, _) = batch(&server, &["--bucket", &url, "--exclude", "in/skip/*"]).await;
    assert_eq!(code, 1);
    assert!(
        out.starts_with("48 objects: 0 converted, 46 skipped, 2 failed;"),
        "{out}"
    );
    assert!(
        out.contains("skipped 40: every output is made already"),
        "{out}"
    );
    assert_eq!(objects(&server).await, after);

    // only what --include names; a dry run writes nothing
    let (code, out, _) = batch(
        &server,
        &["--bucket", &url, "--include", "*/skip/*", "--dry-run"],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\n2 objects: 0 converted, 2 skipped, 0 failed;"),
        "{out}"
    );
    assert!(out.contains("would convert in/skip/1.jpg (2 of 2 rules)"));
    assert_eq!(objects(&server).await, after);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_that_is_not_an_s3_url_or_cannot_be_listed_is_refused() {
    let server = S3Server::start("batch-refused").await;
    for (args, says) in [
        (&["--bucket", BUCKET][..], "is not an S3 URL"),
        (&["--bucket", "s3:///in/"][..], "is not an S3 URL"),
        (
            &["--bucket", "s3://no-such-bucket/"][..],
            "cannot list \"\"",
        ),
        (
            &["--bucket", "s3://b/", "--root", "/tmp"][..],
            "cannot be used with",
        ),
        (
            &["--bucket", "s3://b/", "--include", "[jpg"][..],
            "--include \"[jpg\" is not a pattern",
        ),
    ] {
        let (code, out, err) = batch(&server, args).await;
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_s3_batch_operations_job_is_written_for_the_upload_function() {
    let server = S3Server::start("batch-job").await;
    server.create_bucket(BUCKET).await;
    let jpg = example("photo.jpg");
    for key in [
        "in/a.jpg",
        "in/b c+d,e.png",
        "in/x/f.gif",
        "in/notes.txt",
        "out.jpg",
    ] {
        server.put(BUCKET, key, jpg.clone(), &[]).await;
    }
    let function = "arn:aws:lambda:us-east-1:123456789012:function:mogr-UploadFunction-x";
    let role = "arn:aws:iam::123456789012:role/mogr-BatchOperationsRole-x";
    let url = format!("s3://{BUCKET}/in/");
    let args = [
        "--bucket",
        &url,
        "--s3-batch",
        "--function-arn",
        function,
        "--role-arn",
        role,
    ];
    let (code, out, err) = batch(&server, &args).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("(3 images)"), "{err}");
    let job: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(job["AccountId"], "123456789012");
    assert_eq!(job["RoleArn"], role);
    let invoke = &job["Operation"]["LambdaInvoke"];
    assert_eq!(invoke["FunctionArn"], function);
    assert_eq!(invoke["InvocationSchemaVersion"], "2.0");
    let rules: Value =
        serde_json::from_str(invoke["UserArguments"]["rules"].as_str().unwrap()).unwrap();
    assert_eq!(rules, serde_json::from_str::<Value>(RULES).unwrap());

    // the manifest: the images under the prefix, keys URL-encoded, where the job says, its ETag
    let arn = job["Manifest"]["Location"]["ObjectArn"].as_str().unwrap();
    let key = arn
        .strip_prefix(&format!("arn:aws:s3:::{BUCKET}/"))
        .unwrap();
    assert!(
        key.starts_with("mogr-batch/") && key.ends_with("/manifest.csv"),
        "{key}"
    );
    let (manifest, _) = server.get(BUCKET, key).await.unwrap();
    assert_eq!(
        String::from_utf8(manifest).unwrap(),
        format!("{BUCKET},in/a.jpg\n{BUCKET},in/b%20c%2Bd%2Ce.png\n{BUCKET},in/x/f.gif\n")
    );
    let head = server
        .client()
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await;
    let etag = head.unwrap().e_tag().unwrap().to_string();
    assert_eq!(
        format!(
            "\"{}\"",
            job["Manifest"]["Location"]["ETag"].as_str().unwrap()
        ),
        etag
    );
    assert_eq!(
        job["Report"]["Prefix"],
        key.trim_end_matches("/manifest.csv")
    );

    // the request the AWS CLI would send: valid for S3 Control's CreateJob, as botocore checks it
    let check = r#"
import json, sys, botocore.session, botocore.validate
shape = botocore.session.get_session().get_service_model("s3control").operation_model("CreateJob").input_shape
botocore.validate.validate_parameters(json.load(sys.stdin), shape)
print("valid")
"#;
    let said = with_input(
        std::process::Command::new("python3").args(["-c", check]),
        &out,
    );
    assert_eq!(said.trim(), "valid", "botocore: {said}");

    // arguments it cannot run with
    for (args, says) in [
        (&["--bucket", &url, "--s3-batch"][..], "--function-arn"),
        (
            &[
                "--bucket",
                &url,
                "--s3-batch",
                "--function-arn",
                "mogr-upload",
                "--role-arn",
                role,
            ][..],
            "is not a Lambda function's ARN",
        ),
    ] {
        let (code, out, err) = batch(&server, args).await;
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// Runs `cmd` with `input` on its standard input: its standard output and error, as text.
fn with_input(cmd: &mut std::process::Command, input: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = (cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()))
    .spawn()
    .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_over_a_bucket_killed_midway_is_continued_with_nothing_done_twice() {
    let server = S3Server::start("batch-killed").await;
    server.create_bucket(BUCKET).await;
    let jpg = example("photo.jpg");
    for i in 0..20 {
        server
            .put(BUCKET, &format!("in/{i:02}.jpg"), jpg.clone(), &[])
            .await;
    }
    // a whole-size HEIF each: long enough to kill the run midway
    let rules = r#"{"rules":[{"fileid":"/heif/{dirname}/{barename}.heic","rule":"imageMogr2/format/heif"}]}"#;
    let url = format!("s3://{BUCKET}/in/");
    let args = ["--bucket", url.as_str(), "--jobs", "1"];
    let made = |all: &BTreeMap<String, (String, i64, String)>| {
        all.keys().filter(|k| k.starts_with("heif/")).count()
    };
    let mut child = batch_command(&server, rules, &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let waited = std::time::Instant::now();
    while made(&objects(&server).await) < 3 {
        assert!(waited.elapsed().as_secs() < 60, "no outputs after a minute");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL: no chance to finish anything
    child.wait().unwrap();

    // what the killed run stored is whole, and stays as it is
    let file = |key: &str| server.root.join(BUCKET).join(key);
    let kept: Vec<(String, std::time::SystemTime)> = (objects(&server).await.into_keys())
        .filter(|k| k.starts_with("heif/"))
        .map(|k| {
            let at = std::fs::metadata(file(&k)).unwrap().modified().unwrap();
            (k, at)
        })
        .collect();
    assert!((3..20).contains(&kept.len()), "{} made", kept.len());
    for (key, _) in &kept {
        let (body, _) = server.get(BUCKET, key).await.unwrap();
        assert_eq!(image_facts(&body).0, mogr::Format::Heif, "{key} is whole");
    }
    let (code, out, err) = run(batch_command(&server, rules, &args)).await;
    assert_eq!(code, 0, "{out}{err}");
    let (left, done) = (20 - kept.len(), kept.len());
    assert!(
        out.starts_with(&format!(
            "20 objects: {left} converted, {done} skipped, 0 failed;"
        )),
        "{out}"
    );
    assert_eq!(made(&objects(&server).await), 20);
    for (key, at) in &kept {
        let now = std::fs::metadata(file(key)).unwrap().modified().unwrap();
        assert_eq!(now, *at, "{key} was made again");
    }
}
