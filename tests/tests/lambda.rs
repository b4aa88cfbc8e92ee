//! The three Lambda binaries, each attached to a Lambda runtime emulator (`cargo lambda watch
//! --only-lambda-apis`), invoked through the Lambda Invoke API with the events/ files, against a real
//! S3-protocol server.

use base64::Engine;
use mogr::Format;
use mogr_e2e::faults::{Fault, FaultProxy, Plan};
use mogr_e2e::lambda::{
    event, free_port, http_body, http_event, invoke, start, start_at, wait_for, Function,
};
use mogr_e2e::{example, image_facts, repo, S3Server, BUCKET};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn lambda_functions_under_the_runtime_emulator() {
    let server = S3Server::start("lambda").await;
    server.create_bucket(BUCKET).await;
    server
        .put(BUCKET, "photo.png", example("photo.png"), &[])
        .await;
    server
        .put(BUCKET, "photo.jpg", example("photo.jpg"), &[])
        .await;
    let download = start("mogr-download", &server, &[]);
    let process = start("mogr-process", &server, &[]);
    let upload = start("mogr-upload", &server, &[]);
    const KEY: &str = "lambda-signing-key-0123456789";
    let signed = start("mogr-download", &server, &[("MOGR_SIGNING_KEYS", KEY)]);

    // download: GET /photo.png?imageMogr2/thumbnail/320x/format/heif
    let resp = invoke(&download, &event("apigw-get-heif.json")).await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    assert_eq!(resp["headers"]["content-type"], "image/heif");
    assert_eq!(image_facts(&http_body(&resp)), (Format::Heif, 320, 213));
    let resp = invoke(&download, &event("apigw-get-info.json")).await;
    let info: Value = serde_json::from_slice(&http_body(&resp)).unwrap();
    assert_eq!(info["width"], "640");
    // a bad rule is a COS error, not a crash
    let mut bad = event("apigw-get-heif.json");
    bad["rawQueryString"] = "imageMogr2/thumbnail/80xx".into();
    let resp = invoke(&download, &bad).await;
    assert_eq!(resp["statusCode"], 400);
    assert!(String::from_utf8_lossy(&http_body(&resp)).contains("<Code>InvalidArgument</Code>"));
    // one JSON access-log line per request
    let lines = download.logged("request");
    assert_eq!(lines.len(), 3, "{lines:?}");
    let (first, last) = (&lines[0], &lines[2]);
    assert_eq!(
        (&first["method"], &first["key"], &first["status"]),
        (&"GET".into(), &"photo.png".into(), &200.into()),
        "{first}"
    );
    assert_eq!(first["rule"], "imageMogr2/thumbnail/320x/format/heif");
    assert!(
        first["bytes"].as_u64() > Some(0) && first["ms"].is_number(),
        "{first}"
    );
    assert!(
        first["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "{first}"
    );
    assert_eq!(
        (&last["status"], &last["rule"]),
        (&400.into(), &"imageMogr2/thumbnail/80xx".into())
    );
    check_request_record(&download, first, last);

    // signed downloads: the same event unsigned is refused; signed (as `mogr sign` does), served
    let resp = invoke(&signed, &event("apigw-get-heif.json")).await;
    assert_eq!(resp["statusCode"], 403, "{resp}");
    assert!(String::from_utf8_lossy(&http_body(&resp)).contains("<Code>AccessDenied</Code>"));
    let signer = mogr::service::sign::Signer::parse(KEY).unwrap();
    let rule = "imageMogr2/thumbnail/320x/format/heif";
    let url = signer.url("photo.png", rule, 60).unwrap();
    let mut ok = event("apigw-get-heif.json");
    ok["rawQueryString"] = url.split_once('?').unwrap().1.into();
    let resp = invoke(&signed, &ok).await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    assert_eq!(image_facts(&http_body(&resp)), (Format::Heif, 320, 213));
    ok["rawQueryString"] = ok["rawQueryString"]
        .as_str()
        .unwrap()
        .replace("320x", "321x")
        .into();
    let resp = invoke(&signed, &ok).await;
    assert_eq!(resp["statusCode"], 403);
    assert!(String::from_utf8_lossy(&http_body(&resp)).contains("SignatureDoesNotMatch"));

    // process: POST /photo.jpg?image_process with two rules
    let resp = invoke(&process, &event("apigw-post-image-process.json")).await;
    let xml = String::from_utf8_lossy(&http_body(&resp)).to_string();
    assert_eq!(resp["statusCode"], 200, "{xml}");
    assert!(xml.contains("<OriginalInfo><Key>photo.jpg</Key>"), "{xml}");
    assert!(
        xml.contains("<Key>processed/photo.heic</Key>")
            && xml.contains("<Key>photo-small.avif</Key>"),
        "{xml}"
    );
    assert_eq!(
        image_facts(&server.get(BUCKET, "processed/photo.heic").await.unwrap().0).0,
        Format::Heif
    );
    assert_eq!(
        image_facts(&server.get(BUCKET, "photo-small.avif").await.unwrap().0),
        (Format::Avif, 200, 133)
    );

    // process: PUT /uploads/animated.gif with Pic-Operations (body base64 in the event)
    let resp = invoke(&process, &event("apigw-put-pic-operations.json")).await;
    let xml = String::from_utf8_lossy(&http_body(&resp)).to_string();
    assert_eq!(resp["statusCode"], 200, "{xml}");
    assert_eq!(
        server.get(BUCKET, "uploads/animated.gif").await.unwrap().0,
        example("animated.gif")
    );
    assert_eq!(
        image_facts(&server.get(BUCKET, "uploads/animated.webp").await.unwrap().0).0,
        Format::Webp
    );

    // upload hook: S3 put event for "uploads/new photo.jpg" (the event encodes the space as +)
    let ops =
        r#"{"rules":[{"fileid":"new photo.avif","rule":"imageMogr2/thumbnail/300x/format/avif"}]}"#;
    server
        .put(
            BUCKET,
            "uploads/new photo.jpg",
            example("photo.jpg"),
            &[("pic-operations", ops)],
        )
        .await;
    let out = invoke(&upload, &event("s3-put.json")).await;
    assert!(
        out["records"][0]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("Processed"),
        "{out}"
    );
    let (avif, meta) = server
        .get(BUCKET, "uploads/new photo.avif")
        .await
        .expect("hook output stored");
    assert_eq!(image_facts(&avif), (Format::Avif, 300, 200));
    assert_eq!(meta.get("mogr-output").map(String::as_str), Some("1"));
    // the event is one access-log line, as a request is, with its metrics
    let line = &upload.logged("request")[0];
    assert_eq!(
        (&line["entry"], &line["route"]),
        (&"upload".into(), &"event".into())
    );
    assert_eq!(
        (&line["key"], &line["status"]),
        (&"uploads/new photo.jpg".into(), &200.into())
    );
    assert_eq!(line["format_out"], "avif");
    assert_eq!(line["bytes_out"], avif.len() as u64);
    assert!(
        line["store_ms"].is_number() && line["fetch_ms"].is_number(),
        "{line}"
    );
    let emf = upload.metrics(line["request_id"].as_str().unwrap());
    assert_eq!(emf.len(), 2, "{emf:?}");
    assert_eq!(
        (&emf[1]["Function"], &emf[1]["Format"]),
        (&"upload".into(), &"avif".into())
    );
    // redelivered: same result; the output's own event: ignored
    let again = invoke(&upload, &event("s3-put.json")).await;
    assert!(again["records"][0]["outcome"]
        .as_str()
        .unwrap()
        .starts_with("Processed"));
    assert_eq!(
        server
            .get(BUCKET, "uploads/new photo.avif")
            .await
            .unwrap()
            .0,
        avif
    );
    let mut own = event("s3-put.json");
    own["Records"][0]["s3"]["object"]["key"] = "uploads/new+photo.avif".into();
    let skipped = invoke(&upload, &own).await;
    assert_eq!(
        skipped["records"][0]["outcome"], "SkippedOutput",
        "{skipped}"
    );

    // An uploader's own rules may not write outside the object's folder, nor over an object mogr did
    // not write: refused for good (the invocation succeeds, so Lambda neither retries the event nor
    // sends it to the dead-letter queue), nothing written. Likewise an image that cannot be decoded.
    server
        .put(BUCKET, "victim.jpg", example("photo.jpg"), &[])
        .await;
    let evil = r#"{"rules":[{"fileid":"/victim.jpg","rule":"imageMogr2/format/webp"}]}"#;
    for (body, rules, code) in [
        (example("photo.jpg"), evil, "AccessDenied"),
        (b"not an image".to_vec(), ops, "InvalidArgument"),
    ] {
        server
            .put(
                BUCKET,
                "uploads/new photo.jpg",
                body,
                &[("pic-operations", rules)],
            )
            .await;
        let refused = invoke(&upload, &event("s3-put.json")).await;
        let record = &refused["records"][0];
        assert_eq!(record["outcome"], "Refused", "{refused}");
        assert!(
            record["error"].as_str().unwrap().starts_with(code),
            "{refused}"
        );
    }
    assert_eq!(
        server.get(BUCKET, "victim.jpg").await.unwrap().0,
        example("photo.jpg")
    );
    assert_eq!(
        server
            .get(BUCKET, "uploads/new photo.avif")
            .await
            .unwrap()
            .0,
        avif,
        "the earlier output is untouched"
    );
}

/// The download function answers before its result's cache write ends, and its extension holds the
/// environment — Lambda freezes it only once every extension has asked for its next event — until
/// the write's answer is in. A proxy in front of S3 holds the cache write's answer back; one in front
/// of the emulator records when the runtime answered and when the extension asked again.
#[tokio::test(flavor = "multi_thread")]
async fn lambda_download_answers_before_its_cache_write_and_holds_until_it_ends() {
    const SLOW: Duration = Duration::from_secs(4);
    let server = S3Server::start("lambda-hold").await;
    server.create_bucket(BUCKET).await;
    server
        .put(BUCKET, "photo.png", example("photo.png"), &[])
        .await;
    let s3 = FaultProxy::start(server.addr).await;
    let cache_put = Plan::on(Fault::Slow(SLOW), "PUT", mogr::service::CACHE_PREFIX);
    s3.set(Some(cache_put));
    let port = free_port();
    let runtime = FaultProxy::start(([127, 0, 0, 1], port).into()).await;
    let api = format!("{}/.rt", runtime.endpoint());
    let download = start_at(
        None,
        port,
        "mogr-download",
        &server,
        &[
            ("AWS_ENDPOINT_URL_S3", &s3.endpoint()),
            ("AWS_LAMBDA_RUNTIME_API", &api),
        ],
    );
    // when the extension asked for its `n`-th event, waiting `limit` for it
    let asked = |n: usize, limit: Duration, what: &'static str| {
        let runtime = &runtime;
        async move {
            const NEXT_EVENT: &str = "GET /.rt/2020-01-01/extension/event/next";
            let deadline = Instant::now() + limit;
            loop {
                let seen = runtime.seen_at();
                let mut next = seen.iter().filter(|(_, r)| r == NEXT_EVENT);
                if let Some((at, _)) = next.nth(n - 1) {
                    return *at;
                }
                assert!(Instant::now() < deadline, "{what}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    asked(1, Duration::from_secs(60), "no extension registered").await;

    let started = Instant::now();
    let resp = invoke(&download, &event("apigw-get-heif.json")).await;
    let took = started.elapsed();
    assert_eq!(resp["statusCode"], 200, "{resp}");
    assert!(
        took < SLOW,
        "the answer waited for the cache write: {took:?}"
    );
    let held_until = asked(2, SLOW * 5, "the extension never let go").await;
    let cached = |method: &str| format!("{method} /{BUCKET}/{}", mogr::service::CACHE_PREFIX);
    let (seen_s3, seen_runtime) = (s3.seen_at(), runtime.seen_at());
    let put = seen_s3.iter().find(|(_, r)| r.starts_with(&cached("PUT")));
    let (put_at, _) = put.unwrap_or_else(|| panic!("no cache write: {seen_s3:?}"));
    let response = seen_runtime.iter().find(|(_, r)| r.ends_with("/response"));
    let (answered_at, _) = response.unwrap_or_else(|| panic!("no answer: {seen_runtime:?}"));
    assert!(
        *answered_at < *put_at + SLOW,
        "the runtime answered {:?} after the write began",
        *answered_at - *put_at
    );
    assert!(
        held_until >= *put_at + SLOW,
        "the environment was let go {:?} after the write began, before its answer ({SLOW:?})",
        held_until - *put_at
    );
    assert_eq!(download.logged("request").len(), 1);

    // the next request is answered from what was kept: one GET of it, nothing written
    s3.set(None);
    let resp = invoke(&download, &event("apigw-get-heif.json")).await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    let seen = s3.seen();
    assert!(
        seen.iter().any(|r| r.starts_with(&cached("GET")))
            && !seen.iter().any(|r| r.starts_with("PUT")),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lambda_objects_ranges_copies_and_large_originals() {
    let server = S3Server::start("lambda-objects").await;
    server.create_bucket(BUCKET).await;
    let photo = example("photo.jpg");
    server.put(BUCKET, "photo.jpg", photo.clone(), &[]).await;
    // photo.jpg (112 KB) is over this inline limit; its 320 px thumbnail is not
    let download = start(
        "mogr-download",
        &server,
        &[("MOGR_MAX_INLINE_BYTES", "100000")],
    );
    let process = start("mogr-process", &server, &[]);

    // a large original: 302 to a presigned URL of the object itself, which serves its bytes
    let resp = invoke(&download, &http_event("GET", "/photo.jpg", "", &[])).await;
    assert_eq!(resp["statusCode"], 302, "{resp}");
    let url = resp["headers"]["location"].as_str().unwrap().to_string();
    assert!(
        url.contains("/photo.jpg?") && url.contains("X-Amz-Signature"),
        "{url}"
    );
    let body = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert_eq!(body.as_ref(), photo.as_slice());

    // a conversion answered inline: Accept-Ranges, a range of its bytes
    let rule = "imageMogr2/thumbnail/320x/format/png";
    let whole = invoke(&download, &http_event("GET", "/photo.jpg", rule, &[])).await;
    assert_eq!(whole["statusCode"], 200, "{whole}");
    assert_eq!(whole["headers"]["accept-ranges"], "bytes");
    let whole = http_body(&whole);
    let part = invoke(
        &download,
        &http_event("GET", "/photo.jpg", rule, &[("range", "bytes=0-99")]),
    )
    .await;
    assert_eq!(part["statusCode"], 206, "{part}");
    assert_eq!(http_body(&part), whole[..100].to_vec());
    assert_eq!(
        part["headers"]["content-range"],
        format!("bytes 0-99/{}", whole.len()).as_str()
    );

    // copy through the process function: the copy's bytes, Last-Modified and a range of it
    let copy = http_event(
        "PUT",
        "/copied.jpg",
        "",
        &[("x-amz-copy-source", &format!("/{BUCKET}/photo.jpg"))],
    );
    let resp = invoke(&process, &copy).await;
    let xml = String::from_utf8_lossy(&http_body(&resp)).into_owned();
    assert_eq!(resp["statusCode"], 200, "{xml}");
    assert!(
        xml.contains("<CopyObjectResult>") && xml.contains("<LastModified>"),
        "{xml}"
    );
    assert_eq!(server.get(BUCKET, "copied.jpg").await.unwrap().0, photo);
    let resp = invoke(
        &download,
        &http_event("GET", "/copied.jpg", "", &[("range", "bytes=-10")]),
    )
    .await;
    // over the inline limit, a range of it is redirected too: S3 answers the range itself
    assert_eq!(resp["statusCode"], 302, "{resp}");
    let url = resp["headers"]["location"].as_str().unwrap().to_string();
    let tail = reqwest::Client::new()
        .get(&url)
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(
        tail.bytes().await.unwrap().as_ref(),
        &photo[photo.len() - 10..]
    );

    // Last-Modified and a conditional GET on a small object answered inline
    server
        .put(BUCKET, "small.bin", b"0123456789".to_vec(), &[])
        .await;
    let resp = invoke(&download, &http_event("GET", "/small.bin", "", &[])).await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    let modified = resp["headers"]["last-modified"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = invoke(
        &download,
        &http_event("GET", "/small.bin", "", &[("if-modified-since", &modified)]),
    )
    .await;
    assert_eq!(resp["statusCode"], 304, "{resp}");
    let resp = invoke(
        &download,
        &http_event("GET", "/small.bin", "", &[("range", "bytes=2-4")]),
    )
    .await;
    assert_eq!(resp["statusCode"], 206, "{resp}");
    assert_eq!(http_body(&resp), b"234".to_vec());
}

/// The Lambda functions as API Gateway routes to them: `GET /{key+}` to the download function,
/// the writes and the bucket's root (`GET /`, `POST /`) to the process function.
struct Api<'a> {
    download: &'a Function,
    process: &'a Function,
}

impl mogr_e2e::scenario::Front for Api<'_> {
    async fn send(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> mogr_e2e::scenario::Answer {
        let mut e = http_event(method, path, query, headers);
        if !body.is_empty() {
            e["body"] = base64::engine::general_purpose::STANDARD
                .encode(&body)
                .into();
            e["isBase64Encoded"] = true.into();
        }
        let read = matches!(method, "GET" | "HEAD") && path != "/";
        let f = if read { self.download } else { self.process };
        let resp = invoke(f, &e).await;
        let headers = resp["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        mogr_e2e::scenario::Answer {
            status: resp["statusCode"].as_u64().unwrap_or(0) as u16,
            headers,
            body: http_body(&resp),
        }
    }
}

/// The route scenario `mogr serve` passes too (tests/tests/serve_sdk.rs), through the functions:
/// multipart upload in 1 MiB parts with rules on complete, parts and uploads listed, an abort, a
/// listing paged through.
#[tokio::test(flavor = "multi_thread")]
async fn lambda_functions_answer_the_route_scenario() {
    let server = S3Server::start("lambda-routes").await;
    server.create_bucket(BUCKET).await;
    let download = start("mogr-download", &server, &[]);
    let process = start("mogr-process", &server, &[]);
    let api = Api {
        download: &download,
        process: &process,
    };
    mogr_e2e::scenario::multipart_and_listing(&api).await;
    // the download function answers downloads only: no write, no listing of the bucket
    let put = http_event("PUT", "/w.txt", "", &[]);
    let resp = invoke(&download, &put).await;
    assert_eq!(resp["statusCode"], 403, "{resp}");
    assert!(server.get(BUCKET, "w.txt").await.is_none());
    let list = http_event("GET", "/", "list-type=2", &[]);
    let resp = invoke(&download, &list).await;
    assert_eq!(resp["statusCode"], 403, "{resp}");
}

/// A moto server (`scripts/setup.sh` pins it): AWS's Secrets Manager API, locally.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn local_bin_path() -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    format!(
        "{home}/.local/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    )
}

fn start_moto() -> Moto {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("PATH", local_bin_path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server is installed by scripts/setup.sh (pip install moto[server])");
    wait_for(port, "moto_server", 30);
    Moto { child, port }
}

/// What `sign_writes.py` makes with boto3 and the COS SDK for `key_id:secret`.
fn client_signatures(host: &str, key_id: &str, secret: &str) -> Value {
    let out = Command::new("python3")
        .arg(repo().join("tests/tests/sign_writes.py"))
        .args([host, BUCKET, key_id, secret])
        .env("PATH", local_bin_path())
        .output()
        .expect("python3 is installed by scripts/setup.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A PUT of `body` to `path?query` with `headers`, as API Gateway hands it to the process function.
fn put_event(path: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> Value {
    let mut e = http_event("PUT", path, query, headers);
    e["body"] = base64::engine::general_purpose::STANDARD
        .encode(body)
        .into();
    e["isBase64Encoded"] = true.into();
    e
}

/// The process function with its access keys in a Secrets Manager secret, as the template provides
/// them (`MOGR_ACCESS_KEYS_SECRET`, the secret a JSON object of id and secret): a PUT signed by the
/// COS SDK and one presigned by boto3 are stored, an unsigned one and a wrong secret are refused
/// with nothing written, and a key added to the secret (a rotation) is taken at once; the secret is
/// read when first needed and then from the cache.
#[tokio::test(flavor = "multi_thread")]
async fn lambda_process_function_checks_signatures_with_keys_from_a_secret() {
    let server = S3Server::start("lambda-keys").await;
    server.create_bucket(BUCKET).await;
    let moto = start_moto();
    let endpoint = format!("http://127.0.0.1:{}", moto.port);
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .endpoint_url(&endpoint)
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "moto", "moto", None, None, "test",
            ))
            .build(),
    );
    (secrets.create_secret().name("mogr/access-keys"))
        .secret_string(r#"{"AKIDOLD": "old-secret-0123456789"}"#)
        .send()
        .await
        .unwrap();
    let process = start(
        "mogr-process",
        &server,
        &[
            ("MOGR_ACCESS_KEYS_SECRET", "mogr/access-keys"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &endpoint),
        ],
    );
    let host = "mograpi.execute-api.us-east-1.amazonaws.com";
    let body = b"a signed write".to_vec();

    // unsigned: refused, nothing written
    let resp = invoke(&process, &put_event("/keyed/plain.txt", "", &[], &body)).await;
    assert_eq!(resp["statusCode"], 403, "{resp}");
    assert!(String::from_utf8_lossy(&http_body(&resp)).contains("needs a signature"));
    assert!(server.get(BUCKET, "keyed/plain.txt").await.is_none());

    // boto3's presigned PUT (SigV4) and the COS SDK's Authorization header: stored
    let signed = client_signatures(host, "AKIDOLD", "old-secret-0123456789");
    let url = signed["sigv4_url"].as_str().unwrap();
    let (path, query) = url
        .strip_prefix(&format!("https://{host}"))
        .and_then(|rest| rest.split_once('?'))
        .unwrap();
    let resp = invoke(&process, &put_event(path, query, &[], &body)).await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    assert_eq!(server.get(BUCKET, "keyed/sigv4.txt").await.unwrap().0, body);
    let cos = signed["cos_authorization"].as_str().unwrap();
    let headers = [("authorization", cos)];
    let resp = invoke(&process, &put_event("/keyed/cos.txt", "", &headers, &body)).await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    assert_eq!(server.get(BUCKET, "keyed/cos.txt").await.unwrap().0, body);

    // the right id with a wrong secret: refused, nothing written
    let wrong = client_signatures(host, "AKIDOLD", "not-the-secret-0123");
    let headers = [(
        "authorization",
        wrong["cos_authorization"].as_str().unwrap(),
    )];
    let resp = invoke(
        &process,
        &put_event("/keyed/wrong.txt", "", &headers, &body),
    )
    .await;
    assert_eq!(resp["statusCode"], 403, "{resp}");
    assert!(String::from_utf8_lossy(&http_body(&resp)).contains("SignatureDoesNotMatch"));
    assert!(server.get(BUCKET, "keyed/wrong.txt").await.is_none());
    assert_eq!(
        process.logged("access keys read").len(),
        1,
        "read once, then cached"
    );

    // a rotation: a new key added to the secret works as soon as a client uses it
    (secrets.put_secret_value().secret_id("mogr/access-keys"))
        .secret_string(
            r#"{"AKIDOLD": "old-secret-0123456789", "AKIDNEW": "new-secret-0123456789"}"#,
        )
        .send()
        .await
        .unwrap();
    tokio::time::sleep(mogr::service::keys::KEYS_RETRY).await;
    let rotated = client_signatures(host, "AKIDNEW", "new-secret-0123456789");
    let headers = [(
        "authorization",
        rotated["cos_authorization"].as_str().unwrap(),
    )];
    let resp = invoke(&process, &put_event("/keyed/cos.txt", "", &headers, &body)).await;
    assert_eq!(resp["statusCode"], 200, "{resp}");
    assert_eq!(
        process.logged("access keys read").len(),
        2,
        "read again for the new key"
    );
}

/// The download's JSON log line and its CloudWatch EMF lines hold the figures of the request made:
/// `photo.png` to a 320x213 HEIF, then a bad rule.
fn check_request_record(download: &Function, first: &Value, refused: &Value) {
    let source = example("photo.png");
    assert_eq!(first["entry"], "download", "{first}");
    assert_eq!(first["route"], "download");
    assert_eq!(
        (&first["format_in"], &first["format_out"]),
        (&"png".into(), &"heif".into())
    );
    assert_eq!(first["bytes_in"], source.len() as u64);
    assert_eq!(
        first["bytes_out"], first["bytes"],
        "the answer is the output"
    );
    let (_, w, h) = image_facts(&source);
    assert_eq!(first["pixels_in"], w * h);
    assert_eq!(first["pixels_out"], 320 * 213);
    assert!(
        first["quality"]
            .as_str()
            .is_some_and(|q| q.parse::<u8>().is_ok()),
        "{first}"
    );
    let stages = [
        "fetch_ms",
        "queue_ms",
        "decode_ms",
        "transform_ms",
        "encode_ms",
    ];
    let sum: f64 = stages
        .iter()
        .map(|s| first[s].as_f64().unwrap_or_else(|| panic!("{s}: {first}")))
        .sum();
    assert!(sum <= first["ms"].as_f64().unwrap() + 0.5, "{first}");
    assert_eq!(refused["code"], "InvalidArgument", "{refused}");

    let rid = first["request_id"].as_str().unwrap();
    let emf = download.metrics(rid);
    assert_eq!(emf.len(), 2, "the request's line and its output's: {emf:?}");
    for line in &emf {
        // every metric a directive names has a value, every dimension too
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "mogr");
        assert!(
            line["_aws"]["Timestamp"].as_u64() > Some(1_700_000_000_000),
            "{line}"
        );
        for m in directive["Metrics"].as_array().unwrap() {
            assert!(line[m["Name"].as_str().unwrap()].is_number(), "{m}: {line}");
        }
        for set in directive["Dimensions"].as_array().unwrap() {
            for d in set.as_array().unwrap() {
                assert!(line[d.as_str().unwrap()].is_string(), "{d}: {line}");
            }
        }
        assert_eq!(line["Function"], "download");
    }
    let (request, output) = (&emf[0], &emf[1]);
    assert_eq!(
        (&request["Requests"], &request["Errors"]),
        (&1.into(), &0.into())
    );
    assert_eq!(request["DecodeTime"], first["decode_ms"]);
    assert_eq!(request["Duration"].as_f64(), first["ms"].as_f64());
    assert_eq!(output["Format"], "heif");
    assert_eq!(output["Conversions"], 1);
    assert_eq!(output["BytesIn"], first["bytes_in"]);
    assert_eq!(output["BytesOut"], first["bytes_out"]);
    let saved = source.len() as i64 - first["bytes_out"].as_i64().unwrap();
    assert_eq!(output["BytesSaved"], saved);
    let refused_emf = download.metrics(refused["request_id"].as_str().unwrap());
    assert_eq!(refused_emf.len(), 1, "no output: {refused_emf:?}");
    assert_eq!(refused_emf[0]["ErrorCode"], "InvalidArgument");
    assert_eq!(refused_emf[0]["Errors"], 1);
}

/// S3 Batch Operations invoking the upload function, both schemas as S3 sends them (events/): each
/// task answered `Succeeded` (converted, or skipped and why), `PermanentFailure` (a broken image, an
/// object of another bucket) or `TemporaryFailure` (S3 answering 503, so S3 retries the task).
#[tokio::test(flavor = "multi_thread")]
async fn lambda_upload_answers_s3_batch_operations_tasks() {
    let server = S3Server::start("lambda-batch").await;
    server.create_bucket(BUCKET).await;
    let jpg = example("photo.jpg");
    for (key, body) in [
        ("batch/a photo.jpg", jpg.clone()),
        ("batch/c.png", example("alpha.png")),
        ("batch/busy.jpg", jpg.clone()),
        ("batch/broken.jpg", jpg[..jpg.len() / 3].to_vec()),
        ("batch/notes.txt", b"not an image".to_vec()),
    ] {
        server.put(BUCKET, key, body, &[]).await;
    }
    let s3 = FaultProxy::start(server.addr).await;
    s3.set(Some(Plan::on(
        Fault::Status(503, "SlowDown"),
        "HEAD",
        "batch/busy.jpg",
    )));
    const RULES: &str = r#"{"rules":[{"fileid":"/heif/{dirname}/{barename}.heic","rule":"imageMogr2/thumbnail/100x/format/heif"}]}"#;
    let upload = start(
        "mogr-upload",
        &server,
        &[
            ("AWS_ENDPOINT_URL_S3", &s3.endpoint()),
            ("MOGR_BATCH_RULES", RULES),
        ],
    );

    // schema 1.0: the function's rules; one task per case
    let mut one = event("s3-batch-1.0.json");
    let task = one["tasks"][0].clone();
    let mut tasks = vec![task.clone()];
    for (id, key, bucket) in [
        ("busy", "batch/busy.jpg", "mogr-examples"),
        ("broken", "batch/broken.jpg", "mogr-examples"),
        ("notes", "batch/notes.txt", "mogr-examples"),
        ("elsewhere", "batch/c.png", "another-bucket"),
    ] {
        let mut t = task.clone();
        t["taskId"] = id.into();
        t["s3Key"] = key.into();
        t["s3BucketArn"] = format!("arn:aws:s3:::{bucket}").into();
        tasks.push(t);
    }
    one["tasks"] = tasks.into();
    let resp = invoke(&upload, &one).await;
    assert_eq!(resp["invocationSchemaVersion"], "1.0", "{resp}");
    assert_eq!(resp["invocationId"], one["invocationId"]);
    assert_eq!(resp["treatMissingKeysAs"], "PermanentFailure");
    let result = |id: &str| -> (String, String) {
        let r = (resp["results"].as_array().unwrap().iter())
            .find(|r| r["taskId"] == id)
            .unwrap_or_else(|| panic!("no result for {id}: {resp}"));
        (
            r["resultCode"].as_str().unwrap().to_string(),
            r["resultString"].as_str().unwrap().to_string(),
        )
    };
    let (code, text) = result("dGFza2lkZ29lc2hlcmUK");
    assert_eq!(code, "Succeeded", "{text}");
    assert!(text.contains("heif/batch/a photo.heic ("), "{text}");
    let (heic, meta) = server.get(BUCKET, "heif/batch/a photo.heic").await.unwrap();
    assert_eq!(image_facts(&heic), (Format::Heif, 100, 67));
    assert!(meta.contains_key("mogr-rule"), "{meta:?}");
    let (code, text) = result("busy");
    assert_eq!(code, "TemporaryFailure", "{text}");
    assert!(
        text.starts_with("ServiceUnavailable") || text.starts_with("SlowDown"),
        "{text}"
    );
    let (code, text) = result("broken");
    assert_eq!(code, "PermanentFailure", "{text}");
    assert!(text.starts_with("InvalidArgument"), "{text}");
    assert_eq!(result("notes").0, "Succeeded");
    assert!(result("notes").1.contains("not an image"));
    let (code, text) = result("elsewhere");
    assert_eq!(code, "PermanentFailure", "{text}");
    assert!(
        text.contains("\"another-bucket\" is not the one this function serves"),
        "{text}"
    );
    assert!(server.get(BUCKET, "heif/batch/busy.heic").await.is_none());
    // one access-log line per task
    let lines = upload.logged("request");
    let batch: Vec<&Value> = lines.iter().filter(|l| l["route"] == "batch").collect();
    assert_eq!(batch.len(), 5, "{lines:?}");
    assert!(batch
        .iter()
        .any(|l| l["key"] == "batch/broken.jpg" && l["code"] == "InvalidArgument"));

    // once S3 answers, the retried task succeeds; a task done already is skipped
    s3.set(None);
    let mut again = event("s3-batch-1.0.json");
    again["tasks"][0]["s3Key"] = "batch/busy.jpg".into();
    let resp = invoke(&upload, &again).await;
    assert_eq!(resp["results"][0]["resultCode"], "Succeeded", "{resp}");
    assert!(server.get(BUCKET, "heif/batch/busy.heic").await.is_some());
    let resp = invoke(&upload, &event("s3-batch-1.0.json")).await;
    assert_eq!(
        resp["results"][0]["resultString"], "skipped: every output is made already",
        "{resp}"
    );

    // schema 2.0: the job's own rules, in its user arguments
    let two = event("s3-batch-2.0.json");
    let resp = invoke(&upload, &two).await;
    assert_eq!(resp["invocationSchemaVersion"], "2.0", "{resp}");
    assert_eq!(resp["results"][0]["taskId"], "y5R3a2lkZ29lc2hlcmUK");
    assert_eq!(resp["results"][0]["resultCode"], "Succeeded", "{resp}");
    let webp = server.get(BUCKET, "small/batch/c.webp").await.unwrap().0;
    assert_eq!(image_facts(&webp).0, Format::Webp);
    assert!(server.get(BUCKET, "heif/batch/c.heic").await.is_none());
    // rules naming one output for every object fail every task for good
    let mut bad = two.clone();
    bad["job"]["userArguments"]["rules"] =
        r#"{"rules":[{"fileid":"/all.webp","rule":"imageMogr2/format/webp"}]}"#.into();
    let resp = invoke(&upload, &bad).await;
    assert_eq!(resp["results"][0]["resultCode"], "PermanentFailure");
    assert!(resp["results"][0]["resultString"]
        .as_str()
        .unwrap()
        .contains("names one output for every object"));
}
