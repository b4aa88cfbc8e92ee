//! The `s3` store through aws-sdk-s3 against a real S3-protocol server, and the three service functions
//! over it.

use mogr::service::{Config, Service, UploadOutcome};
use mogr::store::{Metadata, S3Store, Store, OUTPUT_MARKER, PIC_OPERATIONS};
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
async fn download_converts_and_reports() {
    let (_server, service) = setup("download").await;
    let resp = service
        .download(request(
            "GET",
            "/photo.jpg?imageMogr2/thumbnail/320x/format/heif",
            &[],
            vec![],
        ))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/heif");
    assert_eq!(
        resp.headers()["content-length"],
        resp.body().len().to_string().as_str()
    );
    assert!(resp.headers()["etag"].to_str().unwrap().starts_with('"'));
    assert_eq!(resp.headers()["cache-control"], "public, max-age=86400");
    assert_eq!(image_facts(resp.body()), (Format::Heif, 320, 214));

    // URL-encoded key with a space and non-ASCII characters; `|` pipeline percent-encoded
    let uri = "/dir%20with%20space/%E7%85%A7%E7%89%87.png?imageMogr2/thumbnail/100x%7CimageMogr2/format/avif";
    let resp = service.download(request("GET", uri, &[], vec![])).await;
    assert_eq!(
        resp.status(),
        200,
        "{}",
        String::from_utf8_lossy(resp.body())
    );
    assert_eq!(image_facts(resp.body()).0, Format::Avif);

    let resp = service
        .download(request("GET", "/photo.jpg?imageInfo", &[], vec![]))
        .await;
    let info: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(
        (info["format"].as_str(), info["width"].as_str()),
        (Some("jpeg"), Some("640"))
    );
    let resp = service
        .download(request("GET", "/photo.jpg?imageAve", &[], vec![]))
        .await;
    let ave: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert!(ave["RGB"].as_str().unwrap().starts_with("0x"));
    let resp = service
        .download(request("GET", "/photo.jpg", &[], vec![]))
        .await;
    assert_eq!(resp.body(), &example("photo.jpg"));
}

#[tokio::test(flavor = "multi_thread")]
async fn download_errors_are_cos_xml() {
    let (_server, service) = setup("errors").await;
    for (uri, status, code, needle) in [
        (
            "/photo.jpg?imageMogr2/thumbnail/80xx",
            400,
            "InvalidArgument",
            "offset 21",
        ),
        (
            "/photo.jpg?imageMogr2/format/tpg",
            400,
            "InvalidArgument",
            "format/avif",
        ),
        (
            "/missing.jpg?imageMogr2/format/heif",
            404,
            "NoSuchKey",
            "does not exist",
        ),
        ("/a/../photo.jpg", 400, "InvalidArgument", "segment"),
    ] {
        let resp = service.download(request("GET", uri, &[], vec![])).await;
        assert_eq!(resp.status(), status, "{uri}");
        assert_eq!(resp.headers()["content-type"], "application/xml");
        let body = String::from_utf8(resp.body().clone()).unwrap();
        assert!(
            body.contains(&format!("<Code>{code}</Code>")),
            "{uri}: {body}"
        );
        assert!(body.contains(needle), "{uri}: {body}");
        assert!(
            body.contains("<RequestId>") && body.contains("<Resource>"),
            "{body}"
        );
    }
    // not an image: a 400 naming the problem
    let resp = service
        .process(request(
            "PUT",
            "/notes.txt",
            &[(
                "pic-operations",
                r#"{"rules":[{"fileid":"x.heic","rule":"imageMogr2/format/heif"}]}"#,
            )],
            b"plain text".to_vec(),
        ))
        .await;
    assert_eq!(resp.status(), 400);
    assert!(String::from_utf8_lossy(resp.body()).contains("unsupported input format"));
}

#[tokio::test(flavor = "multi_thread")]
async fn post_image_process_stores_outputs() {
    let (server, service) = setup("post").await;
    server
        .put(BUCKET, "p1/a.jpg", example("photo.jpg"), &[])
        .await;
    let ops = r#"{"is_pic_info":1,"rules":[{"fileid":"/p2/x.heic","rule":"imageMogr2/format/heif"}, {"fileid":"p3/y.avif","rule":"imageMogr2/thumbnail/200x/format/avif"}, {"fileid":"z.webp","rule":"imageMogr2/format/webp","bucket":"other-bucket"}]}"#;
    let resp = service
        .process(request(
            "POST",
            "/p1/a.jpg?image_process",
            &[("pic-operations", ops)],
            vec![],
        ))
        .await;
    let xml = String::from_utf8(resp.body().clone()).unwrap();
    assert_eq!(resp.status(), 200, "{xml}");
    assert_eq!(resp.headers()["content-type"], "application/xml");
    assert!(xml.starts_with("<UploadResult><OriginalInfo><Key>p1/a.jpg</Key><Location>mogr-examples.s3.amazonaws.com/p1/a.jpg</Location><ETag>&quot;"), "{xml}");
    assert!(
        xml.contains(
            "<ImageInfo><Format>JPEG</Format><Width>640</Width><Height>427</Height><Quality>"
        ),
        "{xml}"
    );
    assert!(xml.contains("<Object><Key>p2/x.heic</Key><Location>mogr-examples.s3.amazonaws.com/p2/x.heic</Location><Format>heif</Format><Width>640</Width><Height>427</Height><Size>"), "{xml}");
    assert!(
        xml.contains("<Key>p1/p3/y.avif</Key>") && xml.contains("<Width>200</Width>"),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<Key>p1/z.webp</Key><Location>other-bucket.s3.amazonaws.com/p1/z.webp</Location>"
        ),
        "{xml}"
    );
    assert_eq!(xml.matches("<Object>").count(), 3);

    let (heic, meta) = server
        .get(BUCKET, "p2/x.heic")
        .await
        .expect("p2/x.heic stored");
    assert_eq!(image_facts(&heic), (Format::Heif, 640, 427));
    assert_eq!(meta.get(OUTPUT_MARKER).map(String::as_str), Some("1"));
    assert!(xml.contains(&format!("<Size>{}</Size>", heic.len())));
    assert_eq!(
        image_facts(&server.get(BUCKET, "p1/p3/y.avif").await.unwrap().0),
        (Format::Avif, 200, 133)
    );
    assert_eq!(
        image_facts(&server.get("other-bucket", "p1/z.webp").await.unwrap().0).0,
        Format::Webp
    );
    // the original is untouched
    assert_eq!(
        server.get(BUCKET, "p1/a.jpg").await.unwrap().0,
        example("photo.jpg")
    );
    // without is_pic_info, OriginalInfo names the input but has no ImageInfo (as COS answers)
    let ops = r#"{"rules":[{"fileid":"q.png","rule":"imageMogr2/thumbnail/50x/format/png"}]}"#;
    let resp = service
        .process(request(
            "POST",
            "/p1/a.jpg?image_process",
            &[("pic-operations", ops)],
            vec![],
        ))
        .await;
    let xml = String::from_utf8_lossy(resp.body());
    assert!(
        xml.contains("<OriginalInfo><Key>p1/a.jpg</Key>") && !xml.contains("<ImageInfo>"),
        "{xml}"
    );
    // S3 answers a DELETE, and the object is gone
    assert!(server.get(BUCKET, "p1/q.png").await.is_some());
    let resp = service
        .process(request("DELETE", "/p1/q.png", &[], vec![]))
        .await;
    assert_eq!(resp.status(), 204);
    assert!(server.get(BUCKET, "p1/q.png").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_rules_store_nothing() {
    let (server, service) = setup("bad-rules").await;
    let cases = [
        (
            r#"{"rules":[{"fileid":"ok.heic","rule":"imageMogr2/format/heif"},{"fileid":"bad.heic","rule":"imageMogr2/rotate/999"}]}"#,
            400,
            "rotate",
        ),
        (
            r#"{"rules":[{"fileid":"ok.heic","rule":"imageMogr2/format/heif"},{"fileid":"dir/","rule":"imageMogr2/format/heif"}]}"#,
            400,
            "ends with /",
        ),
        (
            r#"{"rules":[{"fileid":"ok.heic","rule":"imageMogr2/format/heif"},{"fileid":"../../etc/x","rule":"imageMogr2/format/heif"}]}"#,
            400,
            "..",
        ),
        (
            r#"{"rules":[{"fileid":"ok.heic","rule":"imageMogr2/format/heif","bucket":"not-allowed"}]}"#,
            403,
            "allow-list",
        ),
        (r#"{"rules":"#, 400, "not valid JSON"),
    ];
    for (ops, status, needle) in cases {
        let resp = service
            .process(request(
                "PUT",
                "/new.jpg",
                &[("pic-operations", ops)],
                example("photo.jpg"),
            ))
            .await;
        let body = String::from_utf8_lossy(resp.body()).to_string();
        assert_eq!(resp.status(), status, "{ops}: {body}");
        assert!(body.contains(needle), "{ops}: {body}");
        // neither the original nor the valid rule's output was stored
        assert!(
            server.get(BUCKET, "new.jpg").await.is_none(),
            "{ops}: original stored"
        );
        assert!(
            server.get(BUCKET, "ok.heic").await.is_none(),
            "{ops}: partial output stored"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn put_with_pic_operations_stores_original_and_outputs() {
    let (server, service) = setup("put").await;
    let ops = r#"{"is_pic_info":1,"rules":[{"fileid":"a.webp","rule":"imageMogr2/format/webp"}]}"#;
    let gif = example("animated.gif");
    let resp = service
        .process(request(
            "PUT",
            "/up/anim.gif",
            &[
                ("pic-operations", ops),
                ("content-type", "image/gif"),
                ("x-amz-meta-owner", "me"),
            ],
            gif.clone(),
        ))
        .await;
    let xml = String::from_utf8_lossy(resp.body()).to_string();
    assert_eq!(resp.status(), 200, "{xml}");
    assert!(
        xml.contains("<OriginalInfo><Key>up/anim.gif</Key>")
            && xml.contains("<Key>up/a.webp</Key>"),
        "{xml}"
    );
    let (orig, meta) = server.get(BUCKET, "up/anim.gif").await.unwrap();
    assert_eq!(orig, gif);
    assert_eq!(meta.get("owner").map(String::as_str), Some("me"));
    let webp = server.get(BUCKET, "up/a.webp").await.unwrap().0;
    let pic =
        mogr::codec::probe_and_decode(&webp, &mogr::Limits::default(), mogr::codec::Frames::All)
            .unwrap();
    assert_eq!(pic.frames.len(), 12, "animation kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_upload_uses_metadata_or_prefix_rules_and_ignores_outputs() {
    let server = S3Server::start("hook").await;
    server.create_bucket(BUCKET).await;
    let mut config = Config::default();
    let default = mogr::cos::PicOperations::parse(
        r#"{"rules":[{"fileid":"/thumbs/t.png","rule":"imageMogr2/thumbnail/64x/format/png"}]}"#,
    )
    .unwrap();
    config.default_rules.push(("auto/".into(), default));
    let service = Service::new(config, Arc::new(S3Store::new(server.client(), BUCKET)));

    let ops = r#"{"rules":[{"fileid":"out.heic","rule":"imageMogr2/format/heif"}]}"#;
    server
        .put(
            BUCKET,
            "in/photo.jpg",
            example("photo.jpg"),
            &[(PIC_OPERATIONS, ops)],
        )
        .await;
    let UploadOutcome::Processed(results) = service.on_upload("in/photo.jpg").await.unwrap() else {
        panic!("not processed")
    };
    assert_eq!(results[0].key, "in/out.heic");
    let (first, meta) = server.get(BUCKET, "in/out.heic").await.unwrap();
    assert_eq!(meta.get(OUTPUT_MARKER).map(String::as_str), Some("1"));
    // redelivery: same outputs again, byte for byte
    assert!(matches!(
        service.on_upload("in/photo.jpg").await.unwrap(),
        UploadOutcome::Processed(_)
    ));
    assert_eq!(server.get(BUCKET, "in/out.heic").await.unwrap().0, first);
    // the output's own notification is ignored
    assert_eq!(
        service.on_upload("in/out.heic").await.unwrap(),
        UploadOutcome::SkippedOutput
    );
    // default rules by prefix, and no rules elsewhere
    server
        .put(BUCKET, "auto/x.png", example("photo.png"), &[])
        .await;
    assert!(matches!(
        service.on_upload("auto/x.png").await.unwrap(),
        UploadOutcome::Processed(_)
    ));
    assert_eq!(
        image_facts(&server.get(BUCKET, "thumbs/t.png").await.unwrap().0),
        (Format::Png, 64, 43)
    );
    server
        .put(BUCKET, "plain/x.png", example("photo.png"), &[])
        .await;
    assert_eq!(
        service.on_upload("plain/x.png").await.unwrap(),
        UploadOutcome::NoRules
    );
    assert_eq!(
        service.on_upload("gone.png").await.unwrap(),
        UploadOutcome::Gone
    );
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
            && url.contains("_mogr/large/")
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
        assert_eq!(resp.headers()["vary"], "Accept");
        assert_eq!(image_facts(resp.body()), (format, 200, 133));
    }
    let resp = service.download(get("text/html")).await;
    assert_eq!(resp.status(), 406);
    assert_eq!(resp.headers()["vary"], "Accept");
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
                 <Object><Key>_mogr/large/x.png</Key></Object></Delete>"
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
        text.contains("<Key>_mogr/large/x.png</Key><Code>AccessDenied</Code>"),
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
