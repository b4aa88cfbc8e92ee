//! `mogr serve` listed through `aws-sdk-s3`, as S3 code lists a bucket: ListObjectsV2 page by page and
//! ListObjects with a delimiter, path-style against a custom endpoint (`GET /<bucket>?list-type=2`).

use mogr_e2e::{binary, repo};
use std::io::BufRead;
use std::process::{Command, Stdio};

struct Serve(std::process::Child, std::path::PathBuf);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

/// `mogr serve` over HTTP.
struct Http {
    base: String,
    client: reqwest::Client,
}

impl mogr_e2e::scenario::Front for Http {
    async fn send(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> mogr_e2e::scenario::Answer {
        let url = match query {
            "" => format!("{}{path}", self.base),
            q => format!("{}{path}?{q}", self.base),
        };
        let mut req = self
            .client
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        mogr_e2e::scenario::Answer {
            status: resp.status().as_u16(),
            headers,
            body: resp.bytes().await.unwrap().to_vec(),
        }
    }
}

/// `mogr serve --root <root>`, and its base URL.
fn serve(root: &std::path::Path, args: &[&str]) -> (Serve, String) {
    let mut child = Command::new(binary("mogr"))
        .args([
            "serve",
            "--root",
            root.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .split(" at ")
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches('/');
    let base = base.to_string();
    (Serve(child, root.to_path_buf()), base)
}

/// The route scenario the Lambda functions pass too (tests/tests/lambda.rs).
#[tokio::test(flavor = "multi_thread")]
async fn mogr_serve_answers_the_route_scenario() {
    let root = std::env::temp_dir().join(format!("mogr-serve-routes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let (_serve, base) = serve(&root, &[]);
    let http = Http {
        base,
        client: reqwest::Client::new(),
    };
    mogr_e2e::scenario::multipart_and_listing(&http).await;
}

#[tokio::test]
async fn the_s3_sdk_lists_a_served_folder() {
    let root = std::env::temp_dir().join(format!("mogr-serve-sdk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("b")).unwrap();
    let photo = repo().join("examples/photo.jpg");
    for key in ["a.jpg", "b/c.jpg", "b/d.jpg", "e.jpg"] {
        std::fs::copy(&photo, root.join(key)).unwrap();
    }
    let (_serve, endpoint) = serve(&root, &["--bucket", "photos"]);
    let endpoint = endpoint.as_str();

    let s3 = s3_client(endpoint, "any", "any");

    // V2, two keys a page, through the SDK's own paginator (continuation tokens)
    let mut pages = s3
        .list_objects_v2()
        .bucket("photos")
        .max_keys(2)
        .into_paginator()
        .send();
    let (mut keys, mut count) = (Vec::new(), 0);
    while let Some(page) = pages.next().await {
        let page = page.expect("a ListObjectsV2 page");
        count += 1;
        for o in page.contents() {
            assert_eq!(o.size(), Some(112_525));
            assert!(o.e_tag().is_some_and(|e| e.starts_with('"')));
            assert!(o.last_modified().is_some());
            keys.push(o.key().unwrap().to_string());
        }
    }
    assert_eq!(keys, ["a.jpg", "b/c.jpg", "b/d.jpg", "e.jpg"]);
    assert_eq!(count, 2);

    // V1 with a delimiter: the folder rolls up
    let listed = s3
        .list_objects()
        .bucket("photos")
        .delimiter("/")
        .send()
        .await
        .expect("ListObjects");
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["a.jpg", "e.jpg"]);
    let folders: Vec<_> = listed
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(folders, ["b/"]);
    assert_eq!(listed.name(), Some("photos"));

    // a prefix
    let listed = s3
        .list_objects_v2()
        .bucket("photos")
        .prefix("b/")
        .send()
        .await
        .expect("ListObjectsV2 with a prefix");
    assert_eq!(listed.key_count(), Some(2));
}

/// aws-sdk-s3 for `endpoint` with the key `id`, `secret` (path-style; checksums only where an
/// operation requires them, so that a PUT's body is sent plainly).
fn s3_client(endpoint: &str, id: &str, secret: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation};
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(id, secret, None, None, "test"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// With `--access-key`, writes and listings need a SigV4 signature made with it (presigned URLs
/// too); a wrong secret, an unknown key and no signature are refused with S3's codes and write
/// nothing; downloads stay public.
#[tokio::test(flavor = "multi_thread")]
async fn with_access_keys_writes_and_listings_need_a_signature() {
    use aws_sdk_s3::presigning::PresigningConfig;
    use std::time::{Duration, SystemTime};
    let root = std::env::temp_dir().join(format!("mogr-serve-keys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let photo = std::fs::read(repo().join("examples/photo.jpg")).unwrap();
    std::fs::write(root.join("photo.jpg"), &photo).unwrap();
    let (_serve, endpoint) = serve(
        &root,
        &[
            "--bucket",
            "photos",
            "--access-key",
            "AKIDMOGRTEST:mogr-test-secret",
        ],
    );
    let ok = s3_client(&endpoint, "AKIDMOGRTEST", "mogr-test-secret");
    ok.put_object()
        .bucket("photos")
        .key("signed.jpg")
        .body(photo.clone().into())
        .send()
        .await
        .expect("a signed PUT");
    assert_eq!(std::fs::read(root.join("signed.jpg")).unwrap(), photo);
    let listed = ok.list_objects_v2().bucket("photos").send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["photo.jpg", "signed.jpg"]);
    ok.copy_object()
        .bucket("photos")
        .key("copied.jpg")
        .copy_source("photos/signed.jpg")
        .send()
        .await
        .expect("a signed copy");
    ok.delete_object()
        .bucket("photos")
        .key("copied.jpg")
        .send()
        .await
        .expect("a signed DELETE");
    assert!(!root.join("copied.jpg").exists());

    // a wrong secret, an unknown key: S3's codes, nothing written
    for (id, secret, code) in [
        ("AKIDMOGRTEST", "not-the-secret", "SignatureDoesNotMatch"),
        ("AKIDUNKNOWN", "mogr-test-secret", "InvalidAccessKeyId"),
    ] {
        let e = s3_client(&endpoint, id, secret)
            .put_object()
            .bucket("photos")
            .key("refused.jpg")
            .body(photo.clone().into())
            .send()
            .await
            .unwrap_err();
        let e = e.into_service_error();
        assert_eq!(
            aws_sdk_s3::error::ProvideErrorMetadata::code(&e),
            Some(code)
        );
        assert!(!root.join("refused.jpg").exists());
    }
    // unsigned: a PUT and a listing are refused, a download is public
    let http = reqwest::Client::new();
    let r = http
        .put(format!("{endpoint}/unsigned.jpg"))
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("needs a signature"));
    assert!(!root.join("unsigned.jpg").exists());
    let r = http
        .get(format!("{endpoint}/?list-type=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .get(format!("{endpoint}/photo.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // presigned PUT and GET work; an expired one does not
    let minute = PresigningConfig::expires_in(Duration::from_secs(60)).unwrap();
    let put = ok
        .put_object()
        .bucket("photos")
        .key("presigned.jpg")
        .presigned(minute.clone())
        .await
        .unwrap();
    let r = http
        .put(put.uri())
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(std::fs::read(root.join("presigned.jpg")).unwrap(), photo);
    let get = ok
        .get_object()
        .bucket("photos")
        .key("presigned.jpg")
        .presigned(minute)
        .await
        .unwrap();
    let r = http.get(get.uri()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let past = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(7200))
        .expires_in(Duration::from_secs(60))
        .build()
        .unwrap();
    let stale = ok
        .put_object()
        .bucket("photos")
        .key("stale.jpg")
        .presigned(past)
        .await
        .unwrap();
    let r = http
        .put(stale.uri())
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("expired"));
    assert!(!root.join("stale.jpg").exists());
}
