//! The `s3` store through aws-sdk-s3 against a real S3-protocol server, and what the service does over
//! S3 alone (kept and large results, presigned redirects, copies, ranges); the three ways over S3 and a folder
//! are `three_ways.rs`.

use mogr::service::{Config, Service};
use mogr::store::{Metadata, S3Store, Store};
use mogr::{Code, Format};
use mogr_e2e::{example, image_facts, request, S3Server, BUCKET};
use std::sync::Arc;

async fn setup(name: &str) -> (S3Server, Service) {
    let server = S3Server::start(name).await;
    server.create_bucket(BUCKET).await;
    server.create_bucket("other-bucket").await;
    server
        .put(BUCKET, "photo.jpg", example("photo.jpg"), &[])
        .await;
    server
        .put(BUCKET, "dir with space/照片.png", example("photo.png"), &[])
        .await;
    let client = server.client();
    let service = Service::new(
        Config::default(),
        Arc::new(S3Store::new(client.clone(), BUCKET)),
    )
    .allow_bucket(Arc::new(S3Store::new(client, "other-bucket")));
    (server, service)
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_store_round_trip() {
    let server = S3Server::start("store").await;
    server.create_bucket(BUCKET).await;
    let store = S3Store::new(server.client(), BUCKET);
    let mut meta = Metadata::new();
    meta.insert("mogr-output".into(), "1".into());
    let etag = store
        .put(
            "a/b.bin",
            b"hello".to_vec(),
            "application/octet-stream",
            &meta,
        )
        .await
        .unwrap();
    assert_eq!(etag, "5d41402abc4b2a76b9719d911017c592"); // md5("hello"), unquoted
    let obj = store.get("a/b.bin").await.unwrap();
    assert_eq!(obj.body, b"hello");
    assert_eq!(
        obj.head.metadata.get("mogr-output").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        obj.head.content_type.as_deref(),
        Some("application/octet-stream")
    );
    let head = store.head("a/b.bin").await.unwrap().unwrap();
    assert_eq!(head.etag, etag);
    assert!(store.head("missing").await.unwrap().is_none());
    assert_eq!(
        store.get("missing").await.unwrap_err().code,
        Code::NoSuchKey
    );
    assert!(store.get("../escape").await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn large_results_are_stored_and_redirected() {
    let (server, mut service) = setup("large").await;
    service.config.max_inline_bytes = Some(50_000);
    let resp = service
        .download(request(
            "GET",
            "/photo.jpg?imageMogr2/format/png",
            &[],
            vec![],
        ))
        .await;
    assert_eq!(
        resp.status(),
        302,
        "{}",
        String::from_utf8_lossy(resp.body())
    );
    let url = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        url.starts_with(&server.endpoint())
            && url.contains("_mogr/cache/")
            && url.contains("X-Amz-Signature"),
        "{url}"
    );
    // the presigned URL serves the full result to a plain HTTP client
    let body = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert_eq!(image_facts(&body), (Format::Png, 640, 427));
    assert!(body.len() > 50_000);
    // small results are still inline
    let resp = service
        .download(request(
            "GET",
            "/photo.jpg?imageMogr2/thumbnail/100x/format/heif",
            &[],
            vec![],
        ))
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn format_auto_follows_accept_and_varies() {
    let (_server, service) = setup("auto").await;
    let get = |accept: &'static str| {
        request(
            "GET",
            "/photo.jpg?imageMogr2/thumbnail/200x/format/auto",
            &[("accept", accept)],
            vec![],
        )
    };
    for (accept, mime, format) in [
        (
            "image/avif,image/webp,image/apng,image/*,*/*;q=0.8",
            "image/avif",
            Format::Avif,
        ),
        ("image/webp,*/*", "image/webp", Format::Webp),
        ("image/png,image/*;q=0.8", "image/jpeg", Format::Jpeg),
    ] {
        let resp = service.download(get(accept)).await;
        assert_eq!(resp.status(), 200, "{accept}");
        assert_eq!(resp.headers()["content-type"], mime, "{accept}");
        assert_eq!(resp.headers()["vary"], "Accept, X-Mogr-Accept");
        assert_eq!(image_facts(resp.body()), (format, 200, 133));
    }
    let resp = service.download(get("text/html")).await;
    assert_eq!(resp.status(), 406);
    assert_eq!(resp.headers()["vary"], "Accept, X-Mogr-Accept");
    assert!(String::from_utf8_lossy(resp.body()).contains("<Code>NotAcceptable</Code>"));
    // stored outputs have no Accept header to negotiate with
    let ops = r#"{"rules":[{"fileid":"x.img","rule":"imageMogr2/format/auto"}]}"#;
    let resp = service
        .process(request(
            "POST",
            "/photo.jpg?image_process",
            &[("pic-operations", ops)],
            vec![],
        ))
        .await;
    assert_eq!(resp.status(), 400);
    assert!(String::from_utf8_lossy(resp.body()).contains("upon download only"));
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_over_s3_copy_range_last_modified_and_delete_many() {
    let (server, service) = setup("objects").await;
    let photo = example("photo.jpg");
    // Last-Modified from S3, and a conditional GET on it
    let resp = service
        .download(request("GET", "/photo.jpg", &[], vec![]))
        .await;
    assert_eq!(resp.status(), 200);
    let modified = resp.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(httpdate::parse_http_date(&modified).is_ok(), "{modified}");
    assert_eq!(resp.headers()["accept-ranges"], "bytes");
    let resp = service
        .download(request(
            "GET",
            "/photo.jpg",
            &[("if-modified-since", &modified)],
            vec![],
        ))
        .await;
    assert_eq!(resp.status(), 304);
    // one range
    let resp = service
        .download(request(
            "GET",
            "/photo.jpg",
            &[("range", "bytes=10-19")],
            vec![],
        ))
        .await;
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.body().as_slice(), &photo[10..20]);
    assert_eq!(
        resp.headers()["content-range"],
        format!("bytes 10-19/{}", photo.len()).as_str()
    );
    // standard headers given at a PUT are S3's own fields, and come back
    let resp = service
        .process(request(
            "PUT",
            "/headers.bin",
            &[
                ("content-type", "image/png"),
                ("cache-control", "max-age=60"),
                ("content-disposition", "attachment; filename=\"h.bin\""),
                ("x-amz-meta-owner", "s3-test"),
            ],
            b"hello".to_vec(),
        ))
        .await;
    assert_eq!(resp.status(), 200);
    let resp = service
        .download(request("GET", "/headers.bin", &[], vec![]))
        .await;
    assert_eq!(resp.headers()["cache-control"], "max-age=60");
    assert_eq!(
        resp.headers()["content-disposition"],
        "attachment; filename=\"h.bin\""
    );
    assert_eq!(resp.headers()["x-amz-meta-owner"], "s3-test");
    assert_eq!(resp.headers()["x-cos-meta-owner"], "s3-test");
    assert!(!resp.headers().contains_key("x-amz-meta-:cache-control"));
    // CopyObject inside S3, metadata copied; a missing source writes nothing
    let resp = service
        .process(request(
            "PUT",
            "/copies/photo.jpg",
            &[("x-amz-copy-source", &format!("/{BUCKET}/photo.jpg"))],
            vec![],
        ))
        .await;
    let text = String::from_utf8_lossy(resp.body()).into_owned();
    assert_eq!(resp.status(), 200, "{text}");
    assert!(text.contains("<CopyObjectResult><ETag>"), "{text}");
    let copied = server.get(BUCKET, "copies/photo.jpg").await.unwrap();
    assert_eq!(copied.0, photo);
    let resp = service
        .process(request(
            "PUT",
            "/copies/none.jpg",
            &[("x-amz-copy-source", &format!("{BUCKET}/missing.jpg"))],
            vec![],
        ))
        .await;
    assert_eq!(resp.status(), 404);
    assert!(server.get(BUCKET, "copies/none.jpg").await.is_none());
    // DeleteObjects: each key on its own; a reserved one refused, the others gone
    let body = b"<Delete><Object><Key>copies/photo.jpg</Key></Object>\
                 <Object><Key>_mogr/cache/x.png</Key></Object></Delete>"
        .to_vec();
    let md5 = {
        use base64::Engine;
        use md5::Digest;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body))
    };
    let resp = service
        .process(request("POST", "/?delete", &[("content-md5", &md5)], body))
        .await;
    let text = String::from_utf8_lossy(resp.body()).into_owned();
    assert_eq!(resp.status(), 200, "{text}");
    assert!(
        text.contains("<Deleted><Key>copies/photo.jpg</Key></Deleted>"),
        "{text}"
    );
    assert!(
        text.contains("<Key>_mogr/cache/x.png</Key><Code>AccessDenied</Code>"),
        "{text}"
    );
    assert!(server.get(BUCKET, "copies/photo.jpg").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_original_is_redirected_to_a_presigned_url_of_itself() {
    let (_server, mut service) = setup("large-original").await;
    service.config.max_inline_bytes = Some(50_000);
    let resp = service
        .download(request("GET", "/photo.jpg", &[], vec![]))
        .await;
    assert_eq!(resp.status(), 302);
    let url = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        url.contains("/photo.jpg?") && url.contains("X-Amz-Signature"),
        "{url}"
    );
    let body = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert_eq!(body.as_ref(), example("photo.jpg").as_slice());
    // an object under the limit is answered inline
    service.config.max_inline_bytes = Some(200_000);
    let resp = service
        .download(request("GET", "/photo.jpg", &[], vec![]))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.body().len(), example("photo.jpg").len());
}
