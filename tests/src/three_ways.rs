//! The three ways (cos-api.md) — upon download, in cloud, upon upload — and the upload hook, written
//! once over any store: `tests/tests/three_ways.rs` runs each over S3 (the S3-protocol test server)
//! and over a folder, so that what the service does cannot depend on where the bucket is.

use crate::{example, image_facts, request};
use mogr::cos::PicOperations;
use mogr::service::{Config, HookOutcome, Service};
use mogr::store::{Metadata, Store, OUTPUT_MARKER, PIC_OPERATIONS};
use mogr::{Code, Format};
use std::sync::Arc;

/// The served bucket, the other one rules may name (`other-bucket`), and the service over them.
pub struct Bucket {
    pub service: Service,
    pub store: Arc<dyn Store>,
    pub other: Arc<dyn Store>,
}

/// The objects every scenario starts from.
const SEEDED: [(&str, &str, &str); 3] = [
    ("photo.jpg", "photo.jpg", "image/jpeg"),
    ("dir with space/照片.png", "photo.png", "image/png"),
    ("anim/animated.gif", "animated.gif", "image/gif"),
];

impl Bucket {
    /// A service over `store` (seeded with photo.jpg, a PNG under a key with a space and Chinese
    /// characters, and an animated GIF) that may also write to `other`; its default rules make a
    /// 64 px PNG at `thumbs/t.png` of any upload under `auto/`.
    pub async fn new(store: Arc<dyn Store>, other: Arc<dyn Store>) -> Bucket {
        for (key, name, content_type) in SEEDED {
            store
                .put(key, example(name), content_type, &Metadata::new())
                .await
                .unwrap();
        }
        let mut config = Config::default();
        let thumbs = r#"{"rules":[{"fileid":"/thumbs/t.png","rule":"imageMogr2/thumbnail/64x/format/png"}]}"#;
        config
            .default_rules
            .push(("auto/".into(), PicOperations::parse(thumbs).unwrap()));
        let service = Service::new(config, store.clone()).allow_bucket(other.clone());
        Bucket {
            service,
            store,
            other,
        }
    }

    /// An object's body and user metadata, `None` when it does not exist.
    pub async fn object(&self, key: &str) -> Option<(Vec<u8>, Metadata)> {
        object(&*self.store, key).await
    }

    async fn get(&self, uri: &str) -> http::Response<Vec<u8>> {
        self.service
            .download(request("GET", uri, &[], vec![]))
            .await
    }

    async fn write(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> http::Response<Vec<u8>> {
        self.service
            .process(request(method, uri, headers, body))
            .await
    }
}

async fn object(store: &dyn Store, key: &str) -> Option<(Vec<u8>, Metadata)> {
    match store.get(key).await {
        Ok(o) => Some((o.body, o.head.metadata)),
        Err(e) if e.code == Code::NoSuchKey => None,
        Err(e) => panic!("{key}: {e}"),
    }
}

fn text(resp: &http::Response<Vec<u8>>) -> String {
    String::from_utf8_lossy(resp.body()).into_owned()
}

fn marked(meta: &Metadata) -> bool {
    meta.get(OUTPUT_MARKER).map(String::as_str) == Some("1")
}

/// Upon download: conversions, `|` pipelines, keys with spaces and other scripts, `imageInfo`,
/// `imageAve`, HEAD, the original; and errors as COS `<Error>` XML.
pub async fn downloads(b: &Bucket) {
    let resp = b
        .get("/photo.jpg?imageMogr2/thumbnail/320x/format/heif")
        .await;
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    assert_eq!(resp.headers()["content-type"], "image/heif");
    assert_eq!(
        resp.headers()["content-length"],
        resp.body().len().to_string().as_str()
    );
    assert!(resp.headers()["etag"].to_str().unwrap().starts_with('"'));
    assert_eq!(resp.headers()["cache-control"], "public, max-age=86400");
    assert!(resp.headers().get("vary").is_none());
    assert_eq!(image_facts(resp.body()), (Format::Heif, 320, 214));
    let resp = b
        .get("/photo.jpg?imageMogr2/thumbnail/100x/format/webp")
        .await;
    assert_eq!(image_facts(resp.body()), (Format::Webp, 100, 67));

    // URL-encoded key with a space and non-ASCII characters; `|` pipeline percent-encoded
    let uri = "/dir%20with%20space/%E7%85%A7%E7%89%87.png?imageMogr2/thumbnail/100x%7CimageMogr2/format/avif";
    let resp = b.get(uri).await;
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    assert_eq!(image_facts(resp.body()).0, Format::Avif);

    let info: serde_json::Value =
        serde_json::from_slice(b.get("/photo.jpg?imageInfo").await.body()).unwrap();
    assert_eq!(
        (info["format"].as_str(), info["width"].as_str()),
        (Some("jpeg"), Some("640"))
    );
    let info: serde_json::Value =
        serde_json::from_slice(b.get("/anim/animated.gif?imageInfo").await.body()).unwrap();
    assert_eq!(info["frame_count"], "12");
    let ave: serde_json::Value =
        serde_json::from_slice(b.get("/photo.jpg?imageAve").await.body()).unwrap();
    assert!(ave["RGB"].as_str().unwrap().starts_with("0x"));
    assert_eq!(b.get("/photo.jpg").await.body(), &example("photo.jpg"));

    // HEAD answers the headers of the GET without a body
    let resp = b
        .service
        .download(request(
            "HEAD",
            "/photo.jpg?imageMogr2/format/png",
            &[],
            vec![],
        ))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.body().is_empty());
    assert_eq!(resp.headers()["content-type"], "image/png");

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
        ("/missing.jpg", 404, "NoSuchKey", "does not exist"),
        ("/a/../photo.jpg", 400, "InvalidArgument", "segment"),
    ] {
        let resp = b.get(uri).await;
        assert_eq!(resp.status(), status, "{uri}");
        assert_eq!(resp.headers()["content-type"], "application/xml");
        let body = text(&resp);
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
}

/// In cloud: `POST ?image_process` runs every rule over one decode, into this bucket and the other
/// one, and reports them; `is_pic_info` adds the input's `ImageInfo`; the input is untouched.
pub async fn in_cloud(b: &Bucket) {
    b.store
        .put(
            "p1/a.jpg",
            example("photo.jpg"),
            "image/jpeg",
            &Metadata::new(),
        )
        .await
        .unwrap();
    let ops = r#"{"is_pic_info":1,"rules":[{"fileid":"/p2/x.heic","rule":"imageMogr2/format/heif"}, {"fileid":"p3/y.avif","rule":"imageMogr2/thumbnail/200x/format/avif"}, {"fileid":"z.webp","rule":"imageMogr2/format/webp","bucket":"other-bucket"}, {"fileid":"c.png","rule":"imageMogr2/thumbnail/32x32!/format/png"}]}"#;
    let post = |ops: &'static str| async move {
        let headers = [("pic-operations", ops)];
        b.write("POST", "/p1/a.jpg?image_process", &headers, vec![])
            .await
    };
    let resp = post(ops).await;
    let xml = text(&resp);
    assert_eq!(resp.status(), 200, "{xml}");
    assert_eq!(resp.headers()["content-type"], "application/xml");
    let bucket = b.store.name();
    assert!(xml.starts_with(&format!("<UploadResult><OriginalInfo><Key>p1/a.jpg</Key><Location>{bucket}.s3.amazonaws.com/p1/a.jpg</Location><ETag>&quot;")), "{xml}");
    assert!(
        xml.contains(
            "<ImageInfo><Format>JPEG</Format><Width>640</Width><Height>427</Height><Quality>"
        ),
        "{xml}"
    );
    assert!(xml.contains(&format!("<Object><Key>p2/x.heic</Key><Location>{bucket}.s3.amazonaws.com/p2/x.heic</Location><Format>heif</Format><Width>640</Width><Height>427</Height><Size>")), "{xml}");
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
    assert_eq!(xml.matches("<Object>").count(), 4);
    let (heic, meta) = b.object("p2/x.heic").await.expect("p2/x.heic stored");
    assert_eq!(image_facts(&heic), (Format::Heif, 640, 427));
    assert!(marked(&meta));
    assert!(xml.contains(&format!("<Size>{}</Size>", heic.len())));
    for (key, want) in [
        ("p1/p3/y.avif", (Format::Avif, 200, 133)),
        ("p1/c.png", (Format::Png, 32, 32)),
    ] {
        let (body, meta) = b.object(key).await.expect(key);
        assert_eq!(image_facts(&body), want, "{key}");
        assert!(marked(&meta), "{key}");
    }
    let webp = object(&*b.other, "p1/z.webp").await.expect("other-bucket");
    assert_eq!(image_facts(&webp.0).0, Format::Webp);
    assert_eq!(b.object("p1/a.jpg").await.unwrap().0, example("photo.jpg"));

    // without is_pic_info, OriginalInfo names the input but has no ImageInfo (as COS answers)
    let resp =
        post(r#"{"rules":[{"fileid":"q.png","rule":"imageMogr2/thumbnail/50x/format/png"}]}"#)
            .await;
    let xml = text(&resp);
    assert!(
        xml.contains("<OriginalInfo><Key>p1/a.jpg</Key>") && !xml.contains("<ImageInfo>"),
        "{xml}"
    );
    // a DELETE answers 204, and the object is gone
    assert!(b.object("p1/q.png").await.is_some());
    let resp = b.write("DELETE", "/p1/q.png", &[], vec![]).await;
    assert_eq!(resp.status(), 204);
    assert!(b.object("p1/q.png").await.is_none());
    // an animation keeps its frames only where the output animates
    let ops = r#"{"rules":[{"fileid":"a.webp","rule":"imageMogr2/format/webp"},{"fileid":"a.png","rule":"imageMogr2/format/png"}]}"#;
    let resp = b
        .write(
            "POST",
            "/anim/animated.gif?image_process",
            &[("pic-operations", ops)],
            vec![],
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let webp = b.object("anim/a.webp").await.unwrap().0;
    let limits = mogr::Limits::default();
    let frames = mogr::codec::probe_and_decode(&webp, &limits, mogr::codec::Frames::All).unwrap();
    assert_eq!(frames.frames.len(), 12);
    assert_eq!(
        image_facts(&b.object("anim/a.png").await.unwrap().0).0,
        Format::Png
    );
}

/// A bad rule, fileid, bucket or JSON stores nothing: not the upload, not the other rules' outputs.
pub async fn bad_rules(b: &Bucket) {
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
        let resp = b
            .write(
                "PUT",
                "/new.jpg",
                &[("pic-operations", ops)],
                example("photo.jpg"),
            )
            .await;
        let body = text(&resp);
        assert_eq!(resp.status(), status, "{ops}: {body}");
        assert!(body.contains(needle), "{ops}: {body}");
        for key in ["new.jpg", "ok.heic", "bad.heic"] {
            assert!(b.object(key).await.is_none(), "{ops}: {key} stored");
        }
    }
    // not an image: a 400 naming the problem
    let ops = r#"{"rules":[{"fileid":"x.heic","rule":"imageMogr2/format/heif"}]}"#;
    let resp = b
        .write(
            "PUT",
            "/notes.txt",
            &[("pic-operations", ops)],
            b"plain text".to_vec(),
        )
        .await;
    assert_eq!(resp.status(), 400);
    assert!(text(&resp).contains("unsupported input format"));
    assert!(b.object("notes.txt").await.is_none());
}

/// Upon upload: a PUT with `Pic-Operations` stores the original (with its metadata) and each rule's
/// output, an animation kept where the output animates; `OriginalInfo` names the stored ETag.
pub async fn upon_upload(b: &Bucket) {
    let ops = r#"{"is_pic_info":1,"rules":[{"fileid":"a.webp","rule":"imageMogr2/format/webp"},{"fileid":"up.avif","rule":"imageMogr2/thumbnail/50x/format/avif"}]}"#;
    let gif = example("animated.gif");
    let headers = [
        ("pic-operations", ops),
        ("content-type", "image/gif"),
        ("x-amz-meta-owner", "me"),
    ];
    let resp = b.write("PUT", "/up/anim.gif", &headers, gif.clone()).await;
    let xml = text(&resp);
    assert_eq!(resp.status(), 200, "{xml}");
    assert!(
        xml.contains("<OriginalInfo><Key>up/anim.gif</Key>")
            && xml.contains("<Key>up/a.webp</Key>"),
        "{xml}"
    );
    let (orig, meta) = b.object("up/anim.gif").await.unwrap();
    assert_eq!(orig, gif);
    assert_eq!(meta.get("owner").map(String::as_str), Some("me"));
    let etag = b.store.head("up/anim.gif").await.unwrap().unwrap().etag;
    assert!(
        xml.contains(&format!("<ETag>&quot;{etag}&quot;</ETag>")),
        "{xml}"
    );
    let webp = b.object("up/a.webp").await.unwrap().0;
    let pic =
        mogr::codec::probe_and_decode(&webp, &mogr::Limits::default(), mogr::codec::Frames::All)
            .unwrap();
    assert_eq!(pic.frames.len(), 12, "animation kept");
    let avif = b.object("up/up.avif").await.unwrap().0;
    assert_eq!(image_facts(&avif), (Format::Avif, 50, 38));
}

/// The upload hook: an object's own rules (its metadata) or the default rules of its prefix; mogr's
/// outputs, keys without rules and keys gone meanwhile are left alone; redelivery writes the same.
pub async fn hook(b: &Bucket) {
    let ops = r#"{"rules":[{"fileid":"out.heic","rule":"imageMogr2/format/heif"}]}"#;
    let meta = Metadata::from([(PIC_OPERATIONS.to_string(), ops.to_string())]);
    b.store
        .put("in/photo.jpg", example("photo.jpg"), "image/jpeg", &meta)
        .await
        .unwrap();
    let service = &b.service;
    let HookOutcome::Processed(results, _) = service.on_upload("in/photo.jpg").await.unwrap()
    else {
        panic!("not processed")
    };
    assert_eq!(results[0].key, "in/out.heic");
    let (first, meta) = b.object("in/out.heic").await.unwrap();
    assert!(marked(&meta));
    assert_eq!(image_facts(&first).0, Format::Heif);
    // redelivery: same outputs again, byte for byte
    assert!(matches!(
        service.on_upload("in/photo.jpg").await.unwrap(),
        HookOutcome::Processed(..)
    ));
    assert_eq!(b.object("in/out.heic").await.unwrap().0, first);
    // the output's own notification is ignored
    assert_eq!(
        service.on_upload("in/out.heic").await.unwrap(),
        HookOutcome::SkippedOutput
    );
    // default rules by prefix, and no rules elsewhere
    b.store
        .put(
            "auto/x.png",
            example("photo.png"),
            "image/png",
            &Metadata::new(),
        )
        .await
        .unwrap();
    assert!(matches!(
        service.on_upload("auto/x.png").await.unwrap(),
        HookOutcome::Processed(..)
    ));
    assert_eq!(
        image_facts(&b.object("thumbs/t.png").await.unwrap().0),
        (Format::Png, 64, 43)
    );
    assert_eq!(
        service.on_upload("photo.jpg").await.unwrap(),
        HookOutcome::NoRules
    );
    assert_eq!(
        service.on_upload("in/gone.png").await.unwrap(),
        HookOutcome::Gone
    );
    // mogr's own objects (a part of an upload in progress) are never processed
    assert_eq!(
        service.on_upload("_mogr/parts/1/00001").await.unwrap(),
        HookOutcome::SkippedOutput
    );
    assert_eq!(
        service.on_upload(".mogr/x").await.unwrap_err().code,
        Code::InvalidArgument
    );
}
