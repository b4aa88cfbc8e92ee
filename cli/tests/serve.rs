//! `mogr serve` over real HTTP: download, PUT with Pic-Operations (and its upload hook), POST
//! ?image_process, and errors.

mod common;
use common::{client, facts, raw_exchange, start, start_with};

#[test]
fn download_over_http() {
    let s = start("download", &[]);
    let r = client()
        .get(format!(
            "{}/photo.png?imageMogr2/thumbnail/300x/format/heif",
            s.base
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/heif");
    let len: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = r.bytes().unwrap();
    assert_eq!(body.len(), len);
    assert_eq!(facts(&body), (mogr::Format::Heif, 300, 200));
    let r = client()
        .get(format!("{}/photo.jpg?imageInfo", s.base))
        .send()
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(v["height"], "427");
}

#[test]
fn errors_over_http() {
    let s = start("errors", &[]);
    for (path, status, code) in [
        (
            "/photo.jpg?imageMogr2/thumbnail/80xx",
            400,
            "InvalidArgument",
        ),
        ("/nope.jpg?imageMogr2/format/heif", 404, "NoSuchKey"),
        ("/.mogr/meta/photo.jpg.json", 400, "InvalidArgument"),
    ] {
        let r = client().get(format!("{}{path}", s.base)).send().unwrap();
        assert_eq!(r.status(), status, "{path}");
        let body = r.text().unwrap();
        assert!(
            body.contains(&format!("<Code>{code}</Code>")),
            "{path}: {body}"
        );
    }
    let r = client()
        .patch(format!("{}/photo.jpg", s.base))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().contains_key("x-cos-request-id"));
    // the server keeps serving after errors
    assert_eq!(
        client()
            .get(format!("{}/photo.jpg", s.base))
            .send()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn put_and_post_over_http() {
    let defaults = r#"{"auto/":{"rules":[{"fileid":"auto-thumb.png","rule":"imageMogr2/thumbnail/32x/format/png"}]}}"#;
    let s = start("put-post", &[("MOGR_DEFAULT_RULES", defaults)]);
    let png = std::fs::read(s.root.join("photo.png")).unwrap();
    // PUT with Pic-Operations
    let ops =
        r#"{"is_pic_info":1,"rules":[{"fileid":"/out/p.avif","rule":"imageMogr2/format/avif"}]}"#;
    let r = client()
        .put(format!("{}/in/p.png", s.base))
        .header("Pic-Operations", ops)
        .body(png.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let xml = r.text().unwrap();
    assert!(
        xml.contains("<OriginalInfo><Key>in/p.png</Key>") && xml.contains("<Key>out/p.avif</Key>"),
        "{xml}"
    );
    assert_eq!(std::fs::read(s.root.join("in/p.png")).unwrap(), png);
    assert_eq!(
        facts(&std::fs::read(s.root.join("out/p.avif")).unwrap()).0,
        mogr::Format::Avif
    );
    // POST ?image_process on a stored object
    let ops =
        r#"{"rules":[{"fileid":"small.webp","rule":"imageMogr2/thumbnail/100x/format/webp"}]}"#;
    let r = client()
        .post(format!("{}/in/p.png?image_process", s.base))
        .header("Pic-Operations", ops)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        facts(&std::fs::read(s.root.join("in/small.webp")).unwrap()),
        (mogr::Format::Webp, 100, 67)
    );
    // a plain PUT fires the upload hook: default rules for auto/, and x-amz-meta-pic-operations
    let r = client()
        .put(format!("{}/auto/a.jpg", s.base))
        .body(std::fs::read(s.root.join("photo.jpg")).unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        facts(&std::fs::read(s.root.join("auto/auto-thumb.png")).unwrap()),
        (mogr::Format::Png, 32, 21)
    );
    let meta_ops = r#"{"rules":[{"fileid":"m.heic","rule":"imageMogr2/format/heif"}]}"#;
    let r = client()
        .put(format!("{}/meta/a.png", s.base))
        .header("x-amz-meta-pic-operations", meta_ops)
        .body(png)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        facts(&std::fs::read(s.root.join("meta/m.heic")).unwrap()).0,
        mogr::Format::Heif
    );
}

#[test]
fn bodies_over_the_input_limit_are_413() {
    let s = start("limit", &[("MOGR_MAX_INPUT_BYTES", "1000")]);
    let png = std::fs::read(s.root.join("photo.png")).unwrap();
    let r = client()
        .put(format!("{}/big.png", s.base))
        .body(png)
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().unwrap().contains("<Code>EntityTooLarge</Code>"));
    assert!(!s.root.join("big.png").exists());
    // a stored object over the limit is refused by the decoder's byte limit too
    let r = client()
        .get(format!("{}/photo.png?imageMogr2/format/heif", s.base))
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[test]
fn slow_or_oversized_requests_are_cut_off() {
    let s = start_with(
        "guard",
        &[],
        &["--header-timeout", "1", "--body-timeout", "1"],
    );
    let wait = std::time::Duration::from_secs(8);
    // headers that never end: the connection is closed after the header timeout
    let (_, took) = raw_exchange(&s.base, b"GET /photo.jpg HTTP/1.1\r\nHost: x\r\n", wait);
    assert!(
        took < std::time::Duration::from_secs(5),
        "open for {took:?}"
    );
    // a body that never arrives: 408
    let (answer, took) = raw_exchange(
        &s.base,
        b"PUT /slow.jpg HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
        wait,
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("<Code>RequestTimeout</Code>"), "{answer}");
    assert!(
        took < std::time::Duration::from_secs(5),
        "answered after {took:?}"
    );
    // 10 GiB announced: refused from the header, nothing read or stored
    let (answer, _) = raw_exchange(
        &s.base,
        b"PUT /huge.jpg HTTP/1.1\r\nHost: x\r\nContent-Length: 10737418240\r\n\r\n",
        wait,
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!s.root.join("huge.jpg").exists() && !s.root.join("slow.jpg").exists());
    // and the server keeps serving
    let r = client()
        .get(format!("{}/photo.jpg", s.base))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn a_full_work_queue_sheds_load_with_503_and_retry_after() {
    let s = start(
        "busy",
        &[
            ("MOGR_WORKERS", "1"),
            ("MOGR_QUEUE", "0"),
            ("MOGR_DOWNLOAD_ALLOW_COSTLY", "1"),
        ],
    );
    let url = format!(
        "{}/photo.png?imageMogr2/format/avif/profile/persistent",
        s.base
    );
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
    let answers: Vec<(u16, Option<String>, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (url, barrier) = (url.clone(), barrier.clone());
                scope.spawn(move || {
                    barrier.wait();
                    let r = client().get(url).send().unwrap();
                    let retry = r
                        .headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().to_string());
                    let status = r.status().as_u16();
                    let body = if status == 200 {
                        String::new()
                    } else {
                        r.text().unwrap()
                    };
                    (status, retry, body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = answers.iter().filter(|a| a.0 == 200).count();
    let shed: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    assert!(ok >= 1, "{answers:?}");
    assert_eq!(ok + shed.len(), 6, "only 200 or 503: {answers:?}");
    assert!(
        !shed.is_empty(),
        "six at once with one worker and no queue: {answers:?}"
    );
    for (_, retry, body) in shed {
        assert_eq!(retry.as_deref(), Some("1"));
        assert!(body.contains("<Code>SlowDown</Code>"), "{body}");
    }
    let r = client().get(&url).send().unwrap();
    assert_eq!(r.status(), 200, "serves again once the work is done");
}

#[test]
fn a_client_that_goes_away_leaves_the_queue() {
    let s = start(
        "gone",
        &[
            ("MOGR_WORKERS", "1"),
            ("MOGR_QUEUE", "1"),
            ("MOGR_DOWNLOAD_ALLOW_COSTLY", "1"),
        ],
    );
    // about 3 s of work on 2 cores
    let slow = format!(
        "{}/photo.png?imageMogr2/thumbnail/1600x/format/avif/profile/persistent",
        s.base
    );
    std::thread::scope(|scope| {
        let started = std::time::Instant::now();
        // the worker is busy for a while
        let slow = &slow;
        let busy = scope.spawn(move || {
            let status = client().get(slow).send().unwrap().status();
            (status, started.elapsed())
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        // this client takes the one place in the queue, then gives up
        let gone = client()
            .get(slow)
            .timeout(std::time::Duration::from_millis(300))
            .send();
        assert!(gone.unwrap_err().is_timeout());
        std::thread::sleep(std::time::Duration::from_millis(100));
        // its place is free again: the next request waits (and gets its answer) instead of a 503
        let sent = started.elapsed();
        let next = client()
            .get(format!("{}/photo.jpg?imageInfo", s.base))
            .send()
            .unwrap();
        assert_eq!(next.status(), 200, "{}", next.text().unwrap());
        let (status, busy_for) = busy.join().unwrap();
        assert_eq!(status, 200);
        // the next request came while the worker was still busy, so it did wait in the queue
        assert!(
            sent < busy_for,
            "busy {busy_for:?}, the next was sent at {sent:?}"
        );
    });
}

#[test]
fn multipart_uploads_refuse_what_does_not_add_up() {
    let s = start("multipart", &[("MOGR_MAX_INPUT_BYTES", "1000000")]);
    let url = |q: &str| format!("{}/big.bin?{q}", s.base);
    let xml = client()
        .post(url("uploads"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let id = xml
        .split("<UploadId>")
        .nth(1)
        .and_then(|r| r.split("</UploadId>").next())
        .unwrap()
        .to_string();
    let etags: Vec<String> = (1..=2)
        .map(|n| {
            let r = client()
                .put(url(&format!("partNumber={n}&uploadId={id}")))
                .body(vec![n as u8; 600_000])
                .send()
                .unwrap();
            assert_eq!(r.status(), 200);
            r.headers()["etag"]
                .to_str()
                .unwrap()
                .trim_matches('"')
                .to_string()
        })
        .collect();
    let complete = |parts: &str| {
        let r = client()
            .post(url(&format!("uploadId={id}")))
            .body(format!(
                "<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>"
            ))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let part = |n: u32, etag: &str| {
        format!("<Part><PartNumber>{n}</PartNumber><ETag>\"{etag}\"</ETag></Part>")
    };
    // an ETag that was not uploaded, parts out of order, the whole over the input limit
    let (status, body) = complete(&part(1, "00"));
    assert_eq!(status, 400);
    assert!(body.contains("InvalidPart"), "{body}");
    let (status, body) = complete(&(part(2, &etags[1]) + &part(1, &etags[0])));
    assert!(status == 400 && body.contains("InvalidPartOrder"), "{body}");
    let (status, body) = complete(&(part(1, &etags[0]) + &part(2, &etags[1])));
    assert_eq!(status, 413, "{body}");
    assert!(!s.root.join("big.bin").exists(), "nothing stored");
    // an id that is not one (or tries to leave the uploads folder) is NoSuchUpload
    for bad in ["nope", "..%2F..%2Fphoto.jpg", ""] {
        let r = client()
            .put(url(&format!("partNumber=1&uploadId={bad}")))
            .body("x")
            .send()
            .unwrap();
        assert_eq!(r.status(), 404, "{bad}");
        assert!(r.text().unwrap().contains("<Code>NoSuchUpload</Code>"));
    }
}

#[test]
fn root_must_exist_addr_takes_a_port_or_a_name_and_location_names_the_server() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mogr"))
        .args(["serve", "--root", "/no/such/folder", "--addr", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/folder is not a folder"), "{err}");
    assert!(!std::path::Path::new("/no/such/folder").exists());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mogr"))
        .args(["serve", "--addr", "no such host:x"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bare port"), "{err}");

    let root = std::env::temp_dir().join(format!("mogr-addr-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    for addr in ["0", "localhost:0"] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mogr"))
            .args(["serve", "--root", root.to_str().unwrap(), "--addr", addr])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let base = line
            .split(" at ")
            .nth(1)
            .unwrap()
            .trim()
            .trim_end_matches('/');
        assert!(base.starts_with("http://127.0.0.1:"), "{addr}: {line}");
        // Location in UploadResult is this server's address
        let photo = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/photo.jpg"
        ));
        let r = client()
            .put(format!("{base}/p.jpg"))
            .header(
                "Pic-Operations",
                r#"{"rules":[{"fileid":"p.webp","rule":"imageMogr2/format/webp"}]}"#,
            )
            .body(photo.unwrap())
            .send()
            .unwrap();
        let xml = r.text().unwrap();
        let host = base.trim_start_matches("http://");
        assert!(
            xml.contains(&format!("<Location>{host}/p.webp</Location>")),
            "{xml}"
        );
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&root);
}
