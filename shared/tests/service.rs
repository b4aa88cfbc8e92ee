//! The service in process over a `DirStore` in a temporary folder — no S3 server, no HTTP server, the
//! same functions the Lambdas and `mogr serve` call: limits, deadlines, headers, errors. The three ways
//! themselves, over a folder and over S3 from one scenario, are `tests/tests/three_ways.rs`.

mod common;

use common::{example, post, request, setup, text};
use md5::Digest;
use mogr::service::Config;
use mogr::{Format, Limits};

/// `GET /photo.jpg?<query>`.
fn get(query: &str) -> http::Request<Vec<u8>> {
    request("GET", &format!("/photo.jpg?{query}"), &[], vec![])
}

/// The first frame of an image, as 8-bit RGB.
fn pixels(bytes: &[u8]) -> image::RgbImage {
    mogr::codec::probe_and_decode(bytes, &Limits::default(), mogr::codec::Frames::First)
        .unwrap()
        .first()
        .to_rgb8()
}

fn facts(bytes: &[u8]) -> (Format, u32, u32) {
    let p = mogr::codec::probe(bytes, &Limits::default()).expect("an image");
    (p.format, p.width, p.height)
}

#[tokio::test]
async fn public_gets_are_capped_unless_the_operator_allows_more() {
    let (_dir, service) = setup(Config::default()).await;
    // re-encoding options are refused before the object is read
    for costly in [
        "imageMogr2/format/avif/profile/persistent",
        "imageMogr2/format/jpg/size-limit/10k",
    ] {
        let resp = service.download(get(costly)).await;
        assert_eq!(resp.status(), 400, "{costly}");
        assert!(
            text(resp.body()).contains("MOGR_DOWNLOAD_ALLOW_COSTLY=1"),
            "{}",
            text(resp.body())
        );
    }
    // 640x427 to 9999x6671 passes the 40 MP cap; to 3000 wide, 4.7x the longer side; both refused from
    // the plan, and 3x is fine
    let resp = service
        .download(get("imageMogr2/thumbnail/9999x/format/png"))
        .await;
    assert_eq!(resp.status(), 400);
    assert!(text(resp.body()).contains("the limit is 40000000 pixels"));
    let resp = service
        .download(get("imageMogr2/thumbnail/3000x/format/png"))
        .await;
    assert_eq!(resp.status(), 400);
    assert!(
        text(resp.body()).contains("more than 4x"),
        "{}",
        text(resp.body())
    );
    let resp = service
        .download(get("imageMogr2/thumbnail/1920x/format/jpg"))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    // the operator may allow more
    let open = Config {
        download_allow_costly: true,
        download_max_upscale: 0,
        ..Config::default()
    };
    let (_dir, service) = setup(open).await;
    let resp = service
        .download(get("imageMogr2/format/jpg/size-limit/10k"))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    let resp = service
        .download(get("imageMogr2/thumbnail/6000x/format/jpg/quality/10"))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
}

#[tokio::test]
async fn a_download_past_its_deadline_answers_503_and_stores_nothing() {
    // Every result would be kept under _mogr/cache/, were it finished in time.
    let late = Config {
        download_deadline: Some(std::time::Duration::from_millis(1)),
        max_inline_bytes: Some(0),
        ..Config::default()
    };
    let (dir, service) = setup(late).await;
    let resp = service
        .download(get("imageMogr2/thumbnail/300x/format/avif"))
        .await;
    assert_eq!(resp.status(), 503, "{}", text(resp.body()));
    let body = text(resp.body());
    assert!(
        body.contains("<Code>ServiceUnavailable</Code>") && body.contains("within the 0.0 s"),
        "{body}"
    );
    assert!(!dir.path().join("_mogr").exists(), "nothing is stored");
    // The original is served as ever: only work has a deadline.
    assert_eq!(service.download(get("")).await.status(), 200);

    let (dir, service) = setup(Config {
        max_inline_bytes: Some(0),
        ..Config::default()
    })
    .await;
    // a folder has no URL of its own to redirect to: a large result is answered inline, and kept
    let resp = service
        .download(get("imageMogr2/thumbnail/300x/format/avif"))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    assert!(dir.path().join("_mogr/cache").exists());
}

#[tokio::test]
async fn format_auto_varies_on_accept_even_when_refused() {
    let (_dir, service) = setup(Config::default()).await;
    let avif = [("accept", "image/avif,image/webp,*/*")];
    let resp = service
        .download(request(
            "GET",
            "/photo.jpg?imageMogr2/thumbnail/64x/format/auto",
            &avif,
            vec![],
        ))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["vary"], "Accept, X-Mogr-Accept");
    assert_eq!(facts(resp.body()).0, Format::Avif);
    let none = [("accept", "text/html")];
    let resp = service
        .download(request(
            "GET",
            "/photo.jpg?imageMogr2/format/auto",
            &none,
            vec![],
        ))
        .await;
    assert_eq!(resp.status(), 406);
    assert_eq!(resp.headers()["vary"], "Accept, X-Mogr-Accept");
}

#[tokio::test]
async fn a_bad_rule_stores_nothing_and_ignore_error_answers_the_original() {
    let (dir, service) = setup(Config::default()).await;
    let ops = r#"{"rules":[{"fileid":"ok.webp","rule":"imageMogr2/format/webp"},{"fileid":"bad.webp","rule":"imageMogr2/rotate/400"}]}"#;
    let resp = service
        .process(request(
            "PUT",
            "/new.jpg",
            &[("pic-operations", ops)],
            example("photo.jpg"),
        ))
        .await;
    assert_eq!(resp.status(), 400);
    assert!(text(resp.body()).contains("rotate"));
    for key in ["new.jpg", "ok.webp", "bad.webp"] {
        assert!(!dir.path().join(key).exists(), "{key} was stored");
    }
    // A rule that fails on this input, with ignore-error, stores the original under its fileid.
    let tight = Config {
        limits: Limits {
            max_output_side: 1000,
            ..Limits::default()
        },
        ..Config::default()
    };
    let (_dir, service) = setup(tight).await;
    let ops =
        r#"{"rules":[{"fileid":"same.jpg","rule":"imageMogr2/thumbnail/!1000p/ignore-error/1"}]}"#;
    let resp = post(&service, "photo.jpg", ops).await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    assert_eq!(
        service.bucket().get("same.jpg").await.unwrap().body,
        example("photo.jpg")
    );
}

#[tokio::test]
async fn cos_clients_get_cos_headers_plain_puts_and_deletes() {
    let (dir, service) = setup(Config::default()).await;
    let photo = example("photo.jpg");
    let md5 = |b: &[u8]| format!("\"{:x}\"", md5::Md5::digest(b));
    // A plain PUT answers headers only: the body's MD5 as ETag, its CRC64, a request id; user metadata
    // comes with COS's prefix or S3's.
    let resp = service
        .process(request(
            "PUT",
            "/plain.jpg",
            &[("x-cos-meta-owner", "cos"), ("x-amz-meta-team", "s3")],
            photo.clone(),
        ))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.body().is_empty());
    assert_eq!(resp.headers()["etag"], md5(&photo).as_str());
    let crc = resp.headers()["x-cos-hash-crc64ecma"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(crc.parse::<u64>().is_ok(), "{crc}");
    assert!(resp.headers().contains_key("x-cos-request-id"));
    // GET and HEAD give the stored object's ETag, the same CRC64 and the metadata back
    for method in ["GET", "HEAD"] {
        let resp = service
            .download(request(method, "/plain.jpg", &[], vec![]))
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["etag"], md5(&photo).as_str());
        assert_eq!(resp.headers()["x-cos-hash-crc64ecma"], crc.as_str());
        assert_eq!(resp.headers()["x-cos-meta-owner"], "cos");
        assert_eq!(resp.headers()["x-cos-meta-team"], "s3");
    }
    // a conversion has its own ETag (named before the work: the same for the same source and
    // rule) and none of the object's metadata
    let convert = || {
        service.download(request(
            "GET",
            "/plain.jpg?imageMogr2/thumbnail/50x/format/png",
            &[],
            vec![],
        ))
    };
    let resp = convert().await;
    let tag = resp.headers()["etag"].clone();
    assert_ne!(tag, md5(&photo).as_str());
    assert_eq!(tag.len(), 34, "{tag:?}");
    assert_eq!(convert().await.headers()["etag"], tag);
    assert!(resp.headers().get("x-cos-meta-owner").is_none());
    // errors carry the request id too
    let resp = service
        .download(request("GET", "/nope.jpg", &[], vec![]))
        .await;
    assert_eq!(resp.status(), 404);
    let rid = resp.headers()["x-cos-request-id"].to_str().unwrap();
    assert!(text(resp.body()).contains(&format!("<RequestId>{rid}</RequestId>")));

    // DELETE: 204, the object and its metadata gone; deleting what is not there is no error
    for _ in 0..2 {
        let resp = service
            .process(request("DELETE", "/plain.jpg", &[], vec![]))
            .await;
        assert_eq!(resp.status(), 204, "{}", text(resp.body()));
    }
    assert!(!dir.path().join("plain.jpg").exists());
    assert!(!dir.path().join(".mogr/meta/plain.jpg.json").exists());
    let resp = service
        .process(request("DELETE", "/.mogr/meta/photo.jpg.json", &[], vec![]))
        .await;
    assert_eq!(resp.status(), 400, "reserved keys cannot be deleted");
}

#[tokio::test]
async fn original_info_always_names_the_input_and_its_current_etag() {
    let (_dir, service) = setup(Config::default()).await;
    // without is_pic_info: Key, Location and ETag, no ImageInfo
    let ops = r#"{"rules":[{"fileid":"t.png","rule":"imageMogr2/thumbnail/20x/format/png"}]}"#;
    let resp = post(&service, "photo.jpg", ops).await;
    let xml = text(resp.body());
    let etag = service
        .bucket()
        .head("photo.jpg")
        .await
        .unwrap()
        .unwrap()
        .etag;
    assert!(
        xml.starts_with(&format!(
            "<UploadResult><OriginalInfo><Key>photo.jpg</Key><Location>local.s3.amazonaws.com/photo.jpg\
             </Location><ETag>&quot;{etag}&quot;</ETag></OriginalInfo>"
        )),
        "{xml}"
    );
    // a rule that writes over its input: OriginalInfo's ETag is the object's new one
    let ops = r#"{"rules":[{"fileid":"photo.jpg","rule":"imageMogr2/thumbnail/100x"}]}"#;
    let resp = post(&service, "photo.jpg", ops).await;
    let xml = text(resp.body());
    let now = service
        .bucket()
        .head("photo.jpg")
        .await
        .unwrap()
        .unwrap()
        .etag;
    assert_ne!(now, etag);
    assert!(
        xml.contains(&format!(
            "<OriginalInfo><Key>photo.jpg</Key><Location>local.s3.amazonaws.com/photo.jpg</Location>\
             <ETag>&quot;{now}&quot;</ETag>"
        )),
        "{xml}"
    );
}

#[tokio::test]
async fn image_view2_unknown_processors_and_ignore_error_at_parse_time() {
    let (_dir, service) = setup(Config::default()).await;
    // mode 1: cover 100x100 and crop the centre
    let resp = service.download(get("imageView2/1/w/100/format/png")).await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    assert_eq!(facts(resp.body()), (Format::Png, 100, 100));
    // mode 0 on a landscape 640x427: the long edge at most 320
    let resp = service.download(get("imageView2/0/w/320")).await;
    assert_eq!(facts(resp.body()), (Format::Jpeg, 320, 214));
    // unknown processors are a 400 naming them, not the original
    let resp = service.download(get("faceEffect/type/1")).await;
    assert_eq!(resp.status(), 400);
    assert!(text(resp.body()).contains("&quot;faceEffect&quot; is not a processor"));
    // a value past its limits with ignore-error/1: the original, upon download and in Pic-Operations
    let resp = service
        .download(get("imageMogr2/thumbnail/20000x/ignore-error/1"))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    assert_eq!(resp.body(), &example("photo.jpg"));
    let ops =
        r#"{"rules":[{"fileid":"big.jpg","rule":"imageMogr2/thumbnail/20000x/ignore-error/1"}]}"#;
    let resp = post(&service, "photo.jpg", ops).await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    assert_eq!(
        service.bucket().get("big.jpg").await.unwrap().body,
        example("photo.jpg")
    );
}

#[tokio::test]
async fn a_raw_utf8_pic_operations_header_and_encoded_fileids() {
    let (dir, service) = setup(Config::default()).await;
    // the header as COS takes it: raw UTF-8, not only ASCII; one fileid raw, one URL-encoded
    let ops = r#"{"rules":[{"fileid":"缩略.webp","rule":"imageMogr2/thumbnail/40x/format/webp"},{"fileid":"%E5%9B%BE.png","rule":"imageView2/2/w/30/format/png"}]}"#;
    let resp = service
        .process(request(
            "PUT",
            "/照片/p.jpg",
            &[("pic-operations", ops)],
            example("photo.jpg"),
        ))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    assert_eq!(
        facts(&std::fs::read(dir.path().join("照片/缩略.webp")).unwrap()),
        (Format::Webp, 40, 27)
    );
    assert_eq!(
        facts(&std::fs::read(dir.path().join("照片/图.png")).unwrap()),
        (Format::Png, 30, 20)
    );
}

#[tokio::test]
async fn only_images_are_served_inline() {
    let (_dir, service) = setup(Config::default()).await;
    let page = b"<html><script>alert(document.cookie)</script></html>".to_vec();
    for (key, content_type) in [
        ("page.html", "text/html"),
        ("logo.svg", "image/svg+xml; charset=utf-8"),
        ("data.bin", "application/octet-stream"),
    ] {
        let put = service
            .process(request(
                "PUT",
                &format!("/{key}"),
                &[("content-type", content_type)],
                page.clone(),
            ))
            .await;
        assert_eq!(put.status(), 200, "{key}");
        let resp = service
            .download(request("GET", &format!("/{key}"), &[], vec![]))
            .await;
        assert_eq!(resp.status(), 200, "{key}");
        let h = resp.headers();
        assert_eq!(h["content-disposition"], "attachment", "{key}");
        assert_eq!(h["content-security-policy"], "sandbox", "{key}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{key}");
        assert_eq!(resp.body(), &page);
    }
    // images, stored or converted, are shown inline (never sniffed either)
    for query in ["", "imageMogr2/thumbnail/50x/format/webp"] {
        let resp = service.download(get(query)).await;
        assert_eq!(resp.status(), 200);
        let h = resp.headers();
        assert!(h.get("content-disposition").is_none(), "{query}");
        assert!(h.get("content-security-policy").is_none(), "{query}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{query}");
    }
}

#[tokio::test]
async fn image_info_of_an_output_reports_the_quality_it_was_written_with() {
    let (_dir, service) = setup(Config::default()).await;
    let ops = r#"{"rules":[
        {"fileid":"q/a.heic","rule":"imageMogr2/thumbnail/96x/format/heif/quality/auto"},
        {"fileid":"q/b.webp","rule":"imageMogr2/thumbnail/96x/format/webp/quality/61"},
        {"fileid":"q/c.png","rule":"imageMogr2/thumbnail/96x/format/png"}]}"#
        .replace('\n', "");
    let resp = post(&service, "photo.jpg", &ops).await;
    let xml = text(resp.body()).to_string();
    assert_eq!(resp.status(), 200, "{xml}");
    let info = |key: &'static str| {
        let service = &service;
        async move {
            let uri = format!("/{key}?imageInfo");
            let resp = service.download(request("GET", &uri, &[], vec![])).await;
            assert_eq!(resp.status(), 200, "{key}");
            serde_json::from_slice::<serde_json::Value>(resp.body()).unwrap()
        }
    };
    // the quality quality/auto chose is the one the UploadResult names
    let heif = info("q/a.heic").await;
    let chosen = heif["quality"].as_str().expect("a heif output's quality");
    let object = xml
        .split("</Object>")
        .find(|o| o.contains("<Key>q/a.heic</Key>"));
    assert!(
        object
            .unwrap()
            .contains(&format!("<Quality>{chosen}</Quality>")),
        "{chosen} in {xml}"
    );
    assert_eq!(info("q/b.webp").await["quality"], "61");
    assert!(info("q/c.png").await.get("quality").is_none(), "lossless");
    assert!(
        info("photo.jpg").await.get("quality").is_none(),
        "not an output of mogr"
    );
}

#[tokio::test]
async fn the_reserved_prefix_and_its_folders_are_not_keys_and_a_stored_type_is_one_type() {
    let (dir, service) = setup(Config::default()).await;
    // `_mogr` or `_mogr/cache` as an object would stand where kept results go, in any case
    for key in ["_mogr", "_MOGR", "_mogr/cache", "_Mogr/Cache/x.png"] {
        let resp = service
            .process(request("PUT", &format!("/{key}"), &[], b"x".to_vec()))
            .await;
        assert_eq!(resp.status(), 403, "{key}: {}", text(resp.body()));
        assert!(!dir.path().join(key).exists(), "{key}");
    }
    for key in ["_mogrx", "_mogr.png", "mogr/_mogr"] {
        let resp = service
            .process(request("PUT", &format!("/{key}"), &[], b"x".to_vec()))
            .await;
        assert_eq!(resp.status(), 200, "{key}: {}", text(resp.body()));
    }
    // a Content-Type listing several types is refused, nothing stored
    let resp = service
        .process(request(
            "PUT",
            "/page.png",
            &[("content-type", "image/png, text/html")],
            b"<script>alert(1)</script>".to_vec(),
        ))
        .await;
    assert_eq!(resp.status(), 400, "{}", text(resp.body()));
    assert!(text(resp.body()).contains("not one media type"));
    assert!(!dir.path().join("page.png").exists());
    // one stored so by another way (straight into the bucket) is served inert
    service
        .bucket()
        .put(
            "page.png",
            b"<script>alert(1)</script>".to_vec(),
            "image/png, text/html",
            &Default::default(),
        )
        .await
        .unwrap();
    let resp = service
        .download(request("GET", "/page.png", &[], vec![]))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-disposition"], "attachment");
    assert_eq!(resp.headers()["content-security-policy"], "sandbox");
}

/// Adjustments and frame picks are operations like any other: in a download, in a `|` pipeline and
/// in a Pic-Operations rule.
#[tokio::test]
async fn adjustments_and_frames_in_downloads_pipelines_and_pic_operations() {
    let (dir, service) = setup(Config::default()).await;
    let mean = |img: &image::RgbImage| {
        img.pixels().map(|p| p[0] as f64).sum::<f64>() / (img.width() * img.height()) as f64
    };
    let original = pixels(&example("photo.jpg"));

    let resp = service
        .download(get("imageMogr2/grayscale/1/format/png"))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    let grey = pixels(resp.body());
    assert!(grey.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));

    let resp = service
        .download(get(
            "imageMogr2/bright/30|imageMogr2/contrast/-20/format/png",
        ))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    assert!(mean(&pixels(resp.body())) > mean(&original) + 30.0);

    let resp = service
        .download(get("imageMogr2/scrop/120x100/format/png"))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    assert_eq!(facts(resp.body()), (Format::Png, 120, 100));

    let resp = service.download(get("imageMogr2/bright/300")).await;
    assert_eq!(resp.status(), 400);
    assert!(
        text(resp.body()).contains("at offset 18: expected a whole number from -100 to 100"),
        "{}",
        text(resp.body())
    );

    let resp = service
        .download(request(
            "GET",
            "/anim/animated.gif?imageMogr2/frame/2/format/png",
            &[],
            vec![],
        ))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    assert_eq!(facts(resp.body()).0, Format::Png);

    let ops = r#"{"rules":[{"fileid":"grey.jpg","rule":"imageMogr2/thumbnail/100x|imageMogr2/grayscale/1"}]}"#;
    let resp = service
        .process(request(
            "PUT",
            "/p.jpg",
            &[("pic-operations", ops)],
            example("photo.jpg"),
        ))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    let stored = pixels(&std::fs::read(dir.path().join("grey.jpg")).unwrap());
    assert_eq!(stored.width(), 100);
    // a JPEG's chroma rounds: grey within one level
    assert!(stored
        .pixels()
        .all(|p| p[0].abs_diff(p[1]) <= 2 && p[1].abs_diff(p[2]) <= 2));
}

#[tokio::test]
async fn exif_answers_the_tags_as_json_or_no_exif_data() {
    let (_dir, service) = setup(Config::default()).await;
    let resp = service
        .process(request(
            "PUT",
            "/turned.jpg",
            &[],
            common::fixture("orientation-6.jpg"),
        ))
        .await;
    assert_eq!(resp.status(), 200);
    let resp = service
        .download(request("GET", "/turned.jpg?exif", &[], vec![]))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    assert_eq!(resp.headers()["content-type"], "application/json");
    let json: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(json["Orientation"]["val"], "6", "{json}");

    let resp = service.download(get("exif")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(text(resp.body()), r#"{"error" : "no exif data"}"#);

    let resp = service
        .process(request("PUT", "/notes.txt", &[], b"plain text".to_vec()))
        .await;
    assert_eq!(resp.status(), 200);
    let resp = service
        .download(request("GET", "/notes.txt?exif", &[], vec![]))
        .await;
    assert_eq!(resp.status(), 400, "{}", text(resp.body()));
}

/// `?imageSlim` upon download answers the input's format with COS's `X-Slimflag`, from a kept copy
/// too; `imageSlim` is a Pic-Operations rule like any other.
#[tokio::test]
async fn image_slim_answers_the_same_format_with_x_slimflag() {
    let (dir, service) = setup(Config::default()).await;
    let original = example("photo.jpg");
    for _ in 0..2 {
        let resp = service.download(get("imageSlim")).await;
        assert_eq!(resp.status(), 200, "{}", text(resp.body()));
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        let flag = resp.headers()["x-slimflag"].to_str().unwrap().to_string();
        assert!(flag == "1" || flag == "2", "{flag}");
        assert!(resp.body().len() <= original.len());
        if flag == "2" {
            assert_eq!(resp.body(), &original[..]);
        }
    }
    let resp = service.download(get("imageSlim/x")).await;
    assert_eq!(resp.status(), 400);
    let resp = service.download(get("imageMogr2/thumbnail/300x")).await;
    assert!(resp.headers().get("x-slimflag").is_none());

    let ops = r#"{"rules":[{"fileid":"slim.png","rule":"imageSlim"}]}"#;
    let screenshot = example("screenshot.png");
    let resp = service
        .process(request(
            "PUT",
            "/shot.png",
            &[("pic-operations", ops)],
            screenshot.clone(),
        ))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    let stored = std::fs::read(dir.path().join("slim.png")).unwrap();
    assert_eq!(facts(&stored).0, Format::Png);
    assert!(stored.len() < screenshot.len());
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn solid_png(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb(rgb));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn watermarks_come_from_the_same_bucket_in_downloads_and_pic_operations() {
    let (dir, service) = setup(Config::default()).await;
    let put =
        |key: &str, body: Vec<u8>| request("PUT", key, &[("content-type", "image/png")], body);
    let resp = service
        .process(put("/marks/logo.png", solid_png(40, 20, [255, 0, 0])))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    let original = pixels(
        &service
            .download(get("imageMogr2/format/png"))
            .await
            .into_body(),
    );

    // the bucket's COS host, its S3 host, path-style S3: all this bucket
    for url in [
        "http://local.cos.ap-shanghai.myqcloud.com/marks/logo.png",
        "https://local.s3.eu-west-1.amazonaws.com/marks/logo.png",
        "http://s3.eu-west-1.amazonaws.com/local/marks/logo.png",
    ] {
        let rule = format!(
            "watermark/1/image/{}/gravity/northwest/dx/10/dy/10|imageMogr2/format/png",
            b64(url)
        );
        let resp = service.download(get(&rule)).await;
        assert_eq!(resp.status(), 200, "{url}: {}", text(resp.body()));
        let marked = pixels(resp.body());
        assert_eq!(marked.dimensions(), original.dimensions());
        for (x, y, p) in marked.enumerate_pixels() {
            let inside = (10..50).contains(&x) && (10..30).contains(&y);
            let want = if inside {
                [255, 0, 0]
            } else {
                original.get_pixel(x, y).0
            };
            assert_eq!(p.0, want, "{url}: pixel {x},{y}");
        }
    }

    // the result names the mark: a new mark gives a new result, not the kept one
    let rule = format!(
        "watermark/1/image/{}/gravity/northwest|imageMogr2/format/png",
        b64("http://local.cos.ap-shanghai.myqcloud.com/marks/logo.png")
    );
    let first = service.download(get(&rule)).await;
    assert_eq!(pixels(first.body()).get_pixel(0, 0).0, [255, 0, 0]);
    let resp = service
        .process(put("/marks/logo.png", solid_png(40, 20, [0, 0, 255])))
        .await;
    assert_eq!(resp.status(), 200);
    let second = service.download(get(&rule)).await;
    assert_ne!(first.headers()["etag"], second.headers()["etag"]);
    assert_eq!(pixels(second.body()).get_pixel(0, 0).0, [0, 0, 255]);

    // another host or bucket: refused, nothing read; a missing mark or one that is no image: 400
    for (url, status, says) in [
        (
            "http://example.com/marks/logo.png",
            403,
            "is not one of its hosts",
        ),
        (
            "http://other-125.cos.ap-shanghai.myqcloud.com/marks/logo.png",
            403,
            "only, not from",
        ),
        (
            "http://local.cos.ap-shanghai.myqcloud.com.evil.com/marks/logo.png",
            403,
            "is not one of its hosts",
        ),
        (
            "http://local.cos.ap-shanghai.myqcloud.com/_mogr/cache/x",
            403,
            "cannot be a watermark image",
        ),
        (
            "http://local.cos.ap-shanghai.myqcloud.com/marks/none.png",
            400,
            "not in the bucket",
        ),
        (
            "http://local.cos.ap-shanghai.myqcloud.com/anim",
            400,
            "not in the bucket",
        ),
    ] {
        let resp = service
            .download(get(&format!("watermark/1/image/{}", b64(url))))
            .await;
        assert_eq!(resp.status(), status, "{url}: {}", text(resp.body()));
        assert!(
            text(resp.body()).contains(says),
            "{url}: {}",
            text(resp.body())
        );
    }
    std::fs::write(dir.path().join("marks/notes.png"), b"not an image").unwrap();
    let url = b64("http://local.cos.ap-shanghai.myqcloud.com/marks/notes.png");
    let resp = service
        .download(get(&format!("watermark/1/image/{url}")))
        .await;
    assert_eq!(resp.status(), 400, "{}", text(resp.body()));
    assert!(
        text(resp.body()).contains("the watermark image &quot;marks/notes.png&quot;"),
        "{}",
        text(resp.body())
    );

    // text in Pic-Operations, after a thumbnail in the same pipeline: only the southeast corner changes
    let ops = format!(
        r#"{{"rules":[{{"fileid":"marked.png","rule":"imageMogr2/thumbnail/320x|watermark/2/text/{}/fontsize/24/fill/{}/dissolve/100/dx/8/dy/8|imageMogr2/format/png"}},{{"fileid":"plain.png","rule":"imageMogr2/thumbnail/320x/format/png"}}]}}"#,
        b64("水印 mogr"),
        b64("#FFFF00")
    );
    let resp = post(&service, "photo.jpg", &ops).await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    let marked = pixels(&std::fs::read(dir.path().join("marked.png")).unwrap());
    let plain = pixels(&std::fs::read(dir.path().join("plain.png")).unwrap());
    let (w, h) = marked.dimensions();
    let mut changed = 0;
    for (x, y, p) in marked.enumerate_pixels() {
        if p != plain.get_pixel(x, y) {
            changed += 1;
            assert!(
                x >= w / 2 && y >= h - 8 - 40 && x < w - 8 && y < h - 8,
                "pixel {x},{y}"
            );
        }
    }
    assert!(changed > 300, "{changed} pixels changed");
}

#[tokio::test]
async fn the_memory_plan_refuses_a_conversion_before_decoding_and_stores_nothing() {
    // 256 MiB a conversion: photo.jpg enlarged to 6000x4003 (24 MP) fits as a JPEG, not as an AVIF,
    // whose encoder holds ~18 bytes a pixel
    let config = Config {
        limits: Limits {
            max_memory: Some(256 << 20),
            ..Limits::default()
        },
        ..Config::default()
    };
    let (dir, service) = setup(config).await;
    let resp = post(
        &service,
        "photo.jpg",
        r#"{"rules":[{"fileid":"big.jpg","rule":"imageMogr2/thumbnail/6000x/format/jpg"}]}"#,
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    let resp = post(
        &service,
        "photo.jpg",
        r#"{"rules":[{"fileid":"big.avif","rule":"imageMogr2/thumbnail/6000x/format/avif"}]}"#,
    )
    .await;
    assert_eq!(resp.status(), 400, "{}", text(resp.body()));
    let body = text(resp.body());
    assert!(
        body.contains("would hold about 569 MiB; a conversion may hold 256 MiB here"),
        "{body}"
    );
    assert!(!dir.path().join("big.avif").exists());
}

/// `Server-Timing`'s stages as (name, ms).
fn server_timing(resp: &http::Response<Vec<u8>>) -> Vec<(String, f64)> {
    let value = resp.headers()["server-timing"].to_str().unwrap();
    value
        .split(", ")
        .map(|stage| {
            let (name, dur) = stage.split_once(";dur=").expect("name;dur=ms");
            (name.to_string(), dur.parse().expect("ms"))
        })
        .collect()
}

#[tokio::test]
async fn a_conversion_answers_where_its_time_and_bytes_went() {
    let (_dir, service) = setup(Config::default()).await;
    let started = std::time::Instant::now();
    let resp = service
        .download(get("imageMogr2/thumbnail/200x/format/webp"))
        .await;
    let took_ms = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    let stages = server_timing(&resp);
    let names: Vec<&str> = stages.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["fetch", "cache", "queue", "decode", "transform", "encode"]
    );
    // each stage is real work, and together they are no more than the whole request
    let sum: f64 = stages.iter().map(|(_, ms)| ms).sum();
    assert!(
        sum <= took_ms + 0.5,
        "stages {sum} ms, request {took_ms} ms"
    );
    let ms = |stage: &str| stages.iter().find(|(n, _)| n == stage).unwrap().1;
    assert!(ms("decode") > 0.0 && ms("encode") > 0.0, "{stages:?}");
    let input = example("photo.jpg").len();
    assert_eq!(
        resp.headers()["x-mogr-bytes"].to_str().unwrap(),
        format!("in={input}; out={}", resp.body().len())
    );
    // kept: answered from the cache, nothing decoded; the original itself has no stages
    let again = service
        .download(get("imageMogr2/thumbnail/200x/format/webp"))
        .await;
    let names: Vec<String> = server_timing(&again).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["fetch", "cache"]);
    let original = service
        .download(request("GET", "/photo.jpg", &[], vec![]))
        .await;
    assert!(original.headers().get("server-timing").is_none());
    assert!(original.headers().get("x-mogr-bytes").is_none());
}

#[tokio::test]
async fn a_write_with_rules_answers_where_its_time_and_bytes_went() {
    let (dir, service) = setup(Config::default()).await;
    let ops = r#"{"rules":[{"fileid":"/w/a.webp","rule":"imageMogr2/thumbnail/120x/format/webp"},{"fileid":"/w/a.png","rule":"imageMogr2/thumbnail/60x/format/png"}]}"#;
    let input = example("photo.jpg");
    let started = std::time::Instant::now();
    let resp = service
        .process(request(
            "PUT",
            "/w/in.jpg",
            &[("pic-operations", ops)],
            input.clone(),
        ))
        .await;
    let took_ms = started.elapsed().as_secs_f64() * 1e3;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    let stages = server_timing(&resp);
    let names: Vec<&str> = stages.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["queue", "decode", "transform", "encode", "store"]);
    let sum: f64 = stages.iter().map(|(_, ms)| ms).sum();
    assert!(
        sum <= took_ms + 0.5,
        "stages {sum} ms, request {took_ms} ms"
    );
    let stored = |k: &str| std::fs::read(dir.path().join(k)).unwrap();
    let (webp, png) = (stored("w/a.webp"), stored("w/a.png"));
    assert_eq!(
        resp.headers()["x-mogr-bytes"].to_str().unwrap(),
        format!("in={}; out={}", input.len(), webp.len() + png.len())
    );
    // the record the access log and the metrics read: what was read and made
    let record = resp
        .extensions()
        .get::<mogr::service::record::Record>()
        .expect("a write's record");
    let made: Vec<_> = (record.outputs.iter())
        .map(|o| (o.format, o.bytes, o.width))
        .collect();
    assert_eq!(
        made,
        [
            (Format::Webp, webp.len() as u64, 120),
            (Format::Png, png.len() as u64, 60)
        ]
    );
    let source = record.input.as_ref().unwrap();
    assert_eq!((source.format, source.width, source.height), facts(&input));
    assert_eq!(
        record.outputs[0].quality,
        facts_quality(&service, "w/a.webp").await
    );
    assert_eq!(record.outputs[1].quality, None, "PNG is lossless");
    // POST reads its source first: fetch leads
    let resp = service
        .process(request(
            "POST",
            "/w/in.jpg?image_process",
            &[("pic-operations", ops)],
            vec![],
        ))
        .await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    let names: Vec<String> = server_timing(&resp).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["fetch", "queue", "decode", "transform", "encode", "store"]
    );
}

/// The quality an output was stored with, as its `mogr-quality` metadata says.
async fn facts_quality(service: &mogr::service::Service, key: &str) -> Option<u8> {
    let resp = service
        .download(request("GET", &format!("/{key}?imageInfo"), &[], vec![]))
        .await;
    let info: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    info["quality"].as_str()?.parse().ok()
}
