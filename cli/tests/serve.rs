//! `mogr serve` over real HTTP: download, PUT with Pic-Operations (and its upload hook), POST
//! ?image_process, and errors.

mod common;
use common::{client, examples, facts, raw_exchange, start, start_with};

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
    assert_eq!(r.status(), 501);
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

/// Every file under `root` with its bytes, `.mogr/` (bookkeeping) included.
fn snapshot(root: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn requests_mogr_does_not_implement_are_501_and_change_nothing() {
    let s = start("unimplemented", &[]);
    let c = client();
    let url = |path: &str| format!("{}{path}", s.base);
    // a PUT that stores something first, so that the sidecars are part of the snapshot
    let put = c
        .put(url("/kept.jpg"))
        .body(vec![1u8, 2, 3])
        .send()
        .unwrap();
    assert_eq!(put.status(), 200);
    let before = snapshot(&s.root);
    let body = b"would overwrite".to_vec();
    let requests = [
        c.put(url("/photo.jpg?acl")).body(body.clone()),
        c.put(url("/photo.jpg?acl=")).body(body.clone()),
        c.put(url("/photo.jpg?tagging")).body(body.clone()),
        c.delete(url("/photo.jpg?tagging")),
        c.put(url("/photo.jpg?partNumber=1&uploadId=123"))
            .header("x-amz-copy-source", "/local/kept.jpg"),
        c.put(url("/photo.jpg?uploadId=123")).body(body.clone()),
        c.put(url("/photo.jpg"))
            .header("if-none-match", "*")
            .body(body.clone()),
        c.put(url("/photo.jpg"))
            .header("content-encoding", "aws-chunked")
            .body(body.clone()),
        c.delete(url("/photo.jpg?versionId=abc")),
        c.post(url("/photo.jpg?restore")).body(body.clone()),
        c.post(url("/photo.jpg?append&position=0"))
            .body(body.clone()),
        c.get(url("/photo.jpg?versionId=abc")),
        c.request(reqwest::Method::OPTIONS, url("/photo.jpg")),
    ];
    for r in requests {
        let r = r.send().unwrap();
        let url = r.url().to_string();
        assert_eq!(r.status(), 501, "{url}");
        let text = r.text().unwrap();
        assert!(
            text.contains("<Code>NotImplemented</Code>"),
            "{url}: {text}"
        );
        assert!(
            text.contains("nothing was read or written"),
            "{url}: {text}"
        );
    }
    assert!(
        before == snapshot(&s.root),
        "a refused request changed the folder"
    );
    // a COS signed URL (empty-valued q-header-list/q-url-param-list before the rule) is a download
    let signed = "/photo.jpg?q-sign-algorithm=sha1&q-ak=AKID&q-sign-time=1%3B2&q-key-time=1%3B2\
                  &q-header-list=&q-url-param-list=&q-signature=ab&imageMogr2/format/png";
    let r = c.get(url(signed)).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
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
    // a POST stores no object of the client's: no notification, so the object's own rules do not
    // run again
    std::fs::remove_file(s.root.join("meta/m.heic")).unwrap();
    let r = client()
        .post(format!("{}/meta/a.png?image_process", s.base))
        .header("Pic-Operations", ops)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(s.root.join("meta/small.webp").exists());
    assert!(
        !s.root.join("meta/m.heic").exists(),
        "the hook ran on a POST"
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
    let host = s.base.trim_start_matches("http://");
    // headers that never end: the connection is closed after the header timeout
    let (_, took) = raw_exchange(
        &s.base,
        format!("GET /photo.jpg HTTP/1.1\r\nHost: {host}\r\n").as_bytes(),
        wait,
    );
    assert!(
        took < std::time::Duration::from_secs(5),
        "open for {took:?}"
    );
    // a body that never arrives: 408
    let (answer, took) = raw_exchange(
        &s.base,
        format!("PUT /slow.jpg HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\n0123456789")
            .as_bytes(),
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
        format!("PUT /huge.jpg HTTP/1.1\r\nHost: {host}\r\nContent-Length: 10737418240\r\n\r\n")
            .as_bytes(),
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

/// A connection from 127.0.0.1 that asks for `key` and reads none of the answer.
fn stalled_reader(base: &str, key: &str) -> std::net::TcpStream {
    use std::io::Write;
    let host = base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    write!(conn, "GET /{key} HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    conn
}

/// A client from another loopback address (Linux answers all of 127/8), so another client to the server.
fn other_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

#[test]
fn a_client_that_stops_reading_lets_its_connection_go() {
    let s = start_with(
        "stall",
        &[],
        &[
            "--max-connections",
            "2",
            "--client-connections",
            "2",
            "--send-timeout",
            "1",
        ],
    );
    let big = vec![7u8; 64 << 20]; // far more than the sockets' buffers hold (up to 32 + 4 MiB)
    std::fs::write(s.root.join("big.bin"), &big).unwrap();
    // both connections taken by clients that never read their 64 MiB
    let stalled = [
        stalled_reader(&s.base, "big.bin"),
        stalled_reader(&s.base, "big.bin"),
    ];
    std::thread::sleep(std::time::Duration::from_millis(300));
    // a plain GET gets a connection once the stalled answers time out (it waited forever before)
    let started = std::time::Instant::now();
    let r = client()
        .get(format!("{}/photo.jpg", s.base))
        .timeout(std::time::Duration::from_secs(20))
        .send()
        .expect("a plain GET is answered while two clients stall");
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // the stalled connections were closed (each 1 s after it stalled, a few ms apart: reading one
    // before its time is up would be progress): what they read ends short of the answer
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for mut conn in stalled {
        use std::io::Read;
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        let _ = conn.read_to_end(&mut got);
        assert!(got.len() < big.len(), "read {} bytes", got.len());
    }
}

#[test]
fn one_client_cannot_take_every_connection() {
    let s = start_with("share", &[], &["--max-connections", "4"]);
    std::fs::write(s.root.join("big.bin"), vec![7u8; 64 << 20]).unwrap();
    // 127.0.0.1 holds its share (half of 4) with answers it does not read
    let _held = [
        stalled_reader(&s.base, "big.bin"),
        stalled_reader(&s.base, "big.bin"),
    ];
    std::thread::sleep(std::time::Duration::from_millis(300));
    // its next connection is answered 503 at once, and closed
    let wait = std::time::Duration::from_secs(10);
    let host = s.base.trim_start_matches("http://");
    let (answer, _) = raw_exchange(
        &s.base,
        format!("GET /photo.jpg HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
        wait,
    );
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:.300}");
    assert!(
        answer.contains("<Code>SlowDown</Code>") && answer.contains("connections"),
        "{answer}"
    );
    // another client is served
    let r = other_client()
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
    let id = initiate(&url(""));
    let put_part = |n: u32, size: usize| {
        client()
            .put(url(&format!("partNumber={n}&uploadId={id}")))
            .body(vec![n as u8; size])
            .send()
            .unwrap()
    };
    let etags: Vec<String> = (1..=2)
        .map(|n| {
            let r = put_part(n, 400_000);
            assert_eq!(r.status(), 200);
            r.headers()["etag"]
                .to_str()
                .unwrap()
                .trim_matches('"')
                .to_string()
        })
        .collect();
    // a third part would take the upload over the object limit: refused as it arrives, not held
    let r = put_part(3, 400_000);
    assert_eq!(r.status(), 413);
    let body = r.text().unwrap();
    assert!(body.contains("1200000 bytes, over 1000000 bytes"), "{body}");
    // a part sent again counts once
    let r = put_part(2, 500_000);
    assert_eq!(r.status(), 200);
    let new_etag = r.headers()["etag"]
        .to_str()
        .unwrap()
        .trim_matches('"')
        .to_string();
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
    // an ETag that was not uploaded (part 2's first one was replaced), parts out of order
    let (status, body) = complete(&part(1, "00"));
    assert_eq!(status, 400);
    assert!(body.contains("InvalidPart"), "{body}");
    let (status, body) = complete(&(part(1, &etags[0]) + &part(2, &etags[1])));
    assert!(status == 400 && body.contains("InvalidPart"), "{body}");
    let (status, body) = complete(&(part(2, &new_etag) + &part(1, &etags[0])));
    assert!(status == 400 && body.contains("InvalidPartOrder"), "{body}");
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
    // and the server keeps serving
    let r = client()
        .get(format!("{}/photo.jpg", s.base))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// `POST <url>uploads`: a new multipart upload's id.
fn initiate(url: &str) -> String {
    let xml = client()
        .post(format!("{url}uploads"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    xml.split("<UploadId>")
        .nth(1)
        .and_then(|r| r.split("</UploadId>").next())
        .unwrap_or_else(|| panic!("no UploadId in {xml}"))
        .to_string()
}

/// The files in `dir` (none when it does not exist).
fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn multipart_aborts_race_parts_cleanly_and_unfinished_uploads_expire() {
    let s = start_with("multipart-housekeeping", &[], &["--upload-expiry", "2"]);
    let url = |q: &str| format!("{}/race.bin?{q}", s.base);
    // an upload is described at _mogr/uploads/<id>, its parts wait in _mogr/parts/<id>/
    let uploads = s.root.join("_mogr/uploads");
    let parts = s.root.join("_mogr/parts");
    // parts arriving while the upload is aborted: each stored or NoSuchUpload, never a 500, and
    // nothing left behind
    for round in 0..5 {
        let id = initiate(&url(""));
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let parts: Vec<_> = (1..=6)
                .map(|n| {
                    let url = url(&format!("partNumber={n}&uploadId={id}"));
                    scope.spawn(move || {
                        let r = client()
                            .put(url)
                            .body(vec![n as u8; 1 << 20])
                            .send()
                            .unwrap();
                        r.status().as_u16()
                    })
                })
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(round * 5));
            let abort = client()
                .delete(url(&format!("uploadId={id}")))
                .send()
                .unwrap();
            assert_eq!(abort.status(), 204, "round {round}");
            parts.into_iter().map(|p| p.join().unwrap()).collect()
        });
        assert!(
            statuses.iter().all(|&c| c == 200 || c == 404),
            "round {round}: {statuses:?}"
        );
        assert!(
            !uploads.join(&id).exists() && !parts.join(&id).exists(),
            "round {round}: the upload or its parts are left"
        );
    }
    let aside = files_in(&s.root.join(".mogr/tmp"));
    assert!(aside.is_empty(), "writes left aside: {aside:?}");
    // an upload left unfinished is gone after the expiry (removed as the next one starts)
    let old = initiate(&url(""));
    let r = client()
        .put(url(&format!("partNumber=1&uploadId={old}")))
        .body("x")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let new = initiate(&url(""));
    assert_eq!(files_in(&uploads), vec![new.clone()]);
    assert!(
        !parts.join(&old).exists(),
        "the expired upload's parts are left"
    );
    let r = client()
        .get(url(&format!("uploadId={old}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().unwrap().contains("<Code>NoSuchUpload</Code>"));
    // and the server keeps serving
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
        let photo = std::fs::read(examples().join("photo.jpg"));
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

/// `GET <base><path>`: status, content type and body as text.
fn get_text(base: &str, path: &str, accept: &str) -> (u16, String, String) {
    let r = client()
        .get(format!("{base}{path}"))
        .header("Accept", accept)
        .send()
        .unwrap();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    (r.status().as_u16(), ct, r.text().unwrap())
}

/// The text of every `<tag>` in `xml`, in order.
fn all_of(xml: &str, tag: &str) -> Vec<String> {
    xml.split(&format!("<{tag}>"))
        .skip(1)
        .map(|s| s.split(&format!("</{tag}>")).next().unwrap().to_string())
        .collect()
}

#[test]
fn the_bucket_lists_as_s3_and_cos_list_it() {
    let s = start("list", &[]);
    std::fs::create_dir_all(s.root.join("sub/deeper")).unwrap();
    std::fs::copy(s.root.join("photo.png"), s.root.join("sub/a.png")).unwrap();
    std::fs::copy(s.root.join("photo.png"), s.root.join("sub/deeper/b.png")).unwrap();
    // a PUT leaves bookkeeping under .mogr/, which is not an object
    let r = client()
        .put(format!("{}/sub/c.jpg", s.base))
        .header("x-cos-meta-owner", "me")
        .body(std::fs::read(s.root.join("photo.jpg")).unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(s.root.join(".mogr").exists());

    let xml_type = "application/xml";
    let (status, ct, xml) = get_text(&s.base, "/", "*/*");
    assert_eq!((status, ct.as_str()), (200, xml_type), "{xml}");
    assert!(xml.contains("<ListBucketResult"), "{xml}");
    assert_eq!(
        all_of(&xml, "Key"),
        [
            "photo.jpg",
            "photo.png",
            "sub/a.png",
            "sub/c.jpg",
            "sub/deeper/b.png"
        ]
    );
    let md5 = format!(
        "&quot;{:x}&quot;",
        <md5::Md5 as md5::Digest>::digest(std::fs::read(s.root.join("photo.png")).unwrap())
    );
    assert_eq!(all_of(&xml, "ETag")[1], md5);
    let size = std::fs::metadata(s.root.join("photo.png")).unwrap().len();
    assert_eq!(all_of(&xml, "Size")[1], size.to_string());

    let (_, _, xml) = get_text(&s.base, "/?delimiter=/", "*/*");
    assert_eq!(all_of(&xml, "Key"), ["photo.jpg", "photo.png"]);
    assert_eq!(all_of(&xml, "Prefix")[1..], ["sub/"]);
    // a folder path lists that folder, one level deep
    for path in ["/sub/", "/?prefix=sub/&delimiter=/"] {
        let (_, _, xml) = get_text(&s.base, path, "*/*");
        assert_eq!(all_of(&xml, "Key"), ["sub/a.png", "sub/c.jpg"], "{path}");
        assert!(
            xml.contains("<CommonPrefixes><Prefix>sub/deeper/</Prefix></CommonPrefixes>"),
            "{path}: {xml}"
        );
    }
    // V2 page by page, also path-style (`/<bucket>?list-type=2`, as the S3 SDKs send it)
    for start in ["/?list-type=2&max-keys=2", "/local?list-type=2&max-keys=2"] {
        let (mut keys, mut path) = (Vec::new(), start.to_string());
        loop {
            let (status, _, xml) = get_text(&s.base, &path, "*/*");
            assert_eq!(status, 200, "{xml}");
            assert!(all_of(&xml, "KeyCount")[0].parse::<usize>().unwrap() <= 2);
            keys.extend(all_of(&xml, "Key"));
            match all_of(&xml, "NextContinuationToken").first() {
                Some(t) => path = format!("{start}&continuation-token={t}"),
                None => break,
            }
        }
        assert_eq!(keys.len(), 5, "{start}: {keys:?}");
    }
    // what a listing cannot take is a COS error naming the parameter
    for (path, needle) in [
        ("/?max-keys=lots", "max-keys"),
        (
            "/?list-type=2&continuation-token=nonsense",
            "continuation-token",
        ),
    ] {
        let (status, _, xml) = get_text(&s.base, path, "*/*");
        assert_eq!(status, 400, "{path}: {xml}");
        assert!(
            xml.contains("<Code>InvalidArgument</Code>") && xml.contains(needle),
            "{path}: {xml}"
        );
    }
    // objects are still objects
    let (status, ct, _) = get_text(&s.base, "/sub/a.png", "*/*");
    assert_eq!((status, ct.as_str()), (200, "image/png"));
}

#[test]
fn a_browser_gets_an_html_index_with_thumbnails_and_links() {
    let s = start("index", &[]);
    std::fs::create_dir_all(s.root.join("sub")).unwrap();
    std::fs::copy(s.root.join("photo.png"), s.root.join("sub/a b.png")).unwrap();
    std::fs::write(s.root.join("notes.txt"), "not an image").unwrap();
    let html_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let (status, ct, html) = get_text(&s.base, "/", html_accept);
    assert_eq!((status, ct.as_str()), (200, "text/html; charset=utf-8"));
    assert!(html.contains("<a href=\"/sub/\">sub/</a>"), "{html}");
    assert!(
        html.contains("href=\"/photo.jpg?imageMogr2/format/avif\""),
        "{html}"
    );
    assert!(html.contains("href=\"/photo.png?imageInfo\""), "{html}");
    assert!(html.contains("href=\"/notes.txt\""), "{html}");
    // each thumbnail is a real conversion
    let thumb = html
        .split("<img loading=\"lazy\" alt=\"\" src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let r = client().get(format!("{}{thumb}", s.base)).send().unwrap();
    assert_eq!(r.status(), 200, "{thumb}");
    let (format, w, h) = facts(&r.bytes().unwrap());
    assert_eq!(format, mogr::Format::Webp);
    assert!(w <= 320 && h <= 240, "{w}x{h}");
    // a folder page links up and percent-encodes names
    let (_, _, html) = get_text(&s.base, "/sub/", html_accept);
    assert!(html.contains("href=\"/\">\u{2191} up"), "{html}");
    assert!(html.contains("href=\"/sub/a%20b.png\""), "{html}");
    // a listing request from a browser is still XML
    let (_, ct, _) = get_text(&s.base, "/?list-type=2", html_accept);
    assert_eq!(ct, "application/xml");
}

#[test]
fn the_index_weighs_every_image_in_each_format_and_explains_itself() {
    let s = start("weigh", &[]);
    std::fs::create_dir_all(s.root.join("sub")).unwrap();
    std::fs::copy(s.root.join("photo.png"), s.root.join("sub/a.png")).unwrap();
    std::fs::write(s.root.join("notes.txt"), "not an image").unwrap();
    let (_, _, html) = get_text(&s.base, "/", "text/html");
    // a folder is drawn, not an emoji many systems have no font for; the heading is explained
    assert!(!html.contains('\u{1F4C1}'), "{html}");
    assert!(html.contains("aria-label=\"folder\""), "{html}");
    assert!(html.contains("served as the bucket <b>local</b>"), "{html}");
    assert!(html.contains("HEIF shows in Safari 17 and later"), "{html}");
    // the samples are 640 px wide at most: the size link never enlarges them
    let (_, w, _) = facts(&std::fs::read(s.root.join("photo.jpg")).unwrap());
    assert!(w < 800);
    let small = client()
        .get(format!(
            "{}/photo.jpg?imageMogr2/thumbnail/800x800>",
            s.base
        ))
        .send()
        .unwrap();
    assert_eq!(facts(&small.bytes().unwrap()).1, w);
    assert!(
        html.contains("thumbnail/800x800&gt;\">\u{2264} 800 px"),
        "{html}"
    );
    // one cell per image and format, naming the conversion and the original's size
    let cells: Vec<(String, u64)> = html
        .split("data-conv=\"")
        .skip(1)
        .map(|c| {
            let conv = c.split('"').next().unwrap().to_string();
            let size = c
                .split("data-size=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            (conv, size.parse().unwrap())
        })
        .collect();
    let images: Vec<String> = std::fs::read_dir(&s.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| mogr::Format::of_key(n).is_some())
        .collect();
    assert!(images.len() >= 2, "{images:?}");
    assert_eq!(cells.len(), 3 * images.len(), "{cells:?}");
    for image in &images {
        let size = std::fs::metadata(s.root.join(image)).unwrap().len();
        for format in ["avif", "heif", "webp"] {
            let conv = format!("/{image}?imageMogr2/format/{format}");
            assert!(cells.contains(&(conv.clone(), size)), "{conv} in {cells:?}");
        }
    }
    // the page's own script, run by node against the server: each cell says what the format
    // weighs and saves, two conversions at a time
    let script = html
        .split("<script>")
        .nth(1)
        .and_then(|s| s.split("</script>").next())
        .unwrap();
    let script_path = s.root.with_extension("index.js");
    std::fs::write(&script_path, script).unwrap();
    let out = std::process::Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/index_page.js"))
        .arg(&script_path)
        .arg(&s.base)
        .arg(serde_json::to_string(&cells).unwrap())
        .output()
        .expect("node runs (scripts/setup.sh installs it)");
    assert!(out.status.success(), "{out:?}");
    let filled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(filled["most"].as_u64().unwrap() <= 2, "{filled}");
    let filled = filled["cells"].as_array().unwrap();
    assert_eq!(filled.len(), cells.len());
    for (cell, (conv, size)) in filled.iter().zip(&cells) {
        let r = client().get(format!("{}{conv}", s.base)).send().unwrap();
        assert_eq!(r.status(), 200, "{conv}");
        let n = r.bytes().unwrap().len() as f64;
        let change = 100.0 * (n / *size as f64 - 1.0);
        let decimals = usize::from(change.abs() >= 99.5);
        let expect = format!(
            "{} {}{:.*} %",
            if n < 1e3 {
                format!("{n} B")
            } else if n < 1e6 {
                format!("{:.1} KB", n / 1e3)
            } else {
                format!("{:.1} MB", n / 1e6)
            },
            if change < 0.0 { '\u{2212}' } else { '+' },
            decimals,
            change.abs()
        );
        assert_eq!(cell["text"], expect.as_str(), "{conv}: {cell}");
    }
    // each conversion was made once and kept: the result cache holds one per cell (and the 800-px
    // thumbnail's)
    let cached = std::fs::read_dir(s.root.join("_mogr/cache"))
        .unwrap()
        .count();
    assert_eq!(cached, cells.len() + 1);
}

#[test]
fn every_request_is_one_plain_access_log_line() {
    let log_path = std::env::temp_dir().join(format!("mogr-access-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    let s = common::start_logging("access", &[], &[], log.into());
    let rule = "imageMogr2/thumbnail/100x/format/webp";
    // a client's own request id is not taken for ours
    let r = client()
        .get(format!("{}/photo.jpg?{rule}", s.base))
        .header("x-request-id", "client-chosen")
        .header("x-amz-request-id", "client-chosen")
        .send()
        .unwrap();
    let rid = r.headers()["x-cos-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(rid.starts_with("mogr-"), "{rid}");
    let (status, bytes) = (r.status(), r.bytes().unwrap().len());
    assert_eq!(status, 200);
    let (_, w, h) = facts(&std::fs::read(s.root.join("photo.jpg")).unwrap());
    let size = std::fs::metadata(s.root.join("photo.jpg")).unwrap().len();
    let missing = client()
        .get(format!("{}/missing.png", s.base))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
    let listed = client().get(format!("{}/", s.base)).send().unwrap();
    assert_eq!(listed.status(), 200);
    // client text cannot start a line of its own, and a signature is not logged
    let forged = client()
        .get(format!(
            "{}/a%0Ab.jpg?imageMogr2/format/png%0D%0AINFO%20request%20method=FORGED&mogr-signature=deadbeef",
            s.base
        ))
        .send()
        .unwrap();
    assert_eq!(forged.status(), 400); // a key with a control character
                                      // the line is written after the response: wait for all four
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&log_path).unwrap();
        if text.matches(" request request_id=").count() >= 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(&log_path);
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in a file: {text:?}"
    );
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" request request_id="))
        .collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(!text.contains("deadbeef"), "{text}");
    assert!(!text.contains("client-chosen"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("INFO request")),
        "{text}"
    );
    assert!(lines[3].contains("key=a\\u{a}b.jpg"), "{}", lines[3]);
    assert!(lines[3].contains("mogr-signature=REDACTED"), "{}", lines[3]);
    assert!(lines[3].contains("status=400 bytes="), "{}", lines[3]);
    assert!(lines[3].contains("code=InvalidArgument"), "{}", lines[3]);
    for (line, want) in lines.iter().zip([
        format!(
            "request_id={rid} entry=serve route=download method=GET key=photo.jpg rule={rule} \
             status=200 bytes={bytes} format_in=jpeg format_out=webp bytes_in={size} \
             bytes_out={bytes} pixels_in={} pixels_out=",
            w * h
        ),
        "route=download method=GET key=missing.png rule= status=404 bytes=".to_string(),
        "route=list method=GET key= rule= status=200 bytes=".to_string(),
    ]) {
        assert!(line.contains(&want), "{want:?} in {line:?}");
        assert!(line.contains("request_id=mogr-"), "{line}");
    }
    // the conversion's stages, each a number, and the whole request's time
    for field in [
        "fetch_ms=",
        "decode_ms=",
        "transform_ms=",
        "encode_ms=",
        "quality=",
        " ms=",
    ] {
        assert!(lines[0].contains(field), "{field} in {}", lines[0]);
    }
}

#[test]
fn a_conversion_that_drops_frames_says_so_in_a_header() {
    let s = start("frames", &[]);
    std::fs::copy(examples().join("animated.gif"), s.root.join("animated.gif")).unwrap();
    let r = client()
        .get(format!("{}/animated.gif?imageMogr2/format/png", s.base))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let warning = r.headers()["x-mogr-warning"].to_str().unwrap();
    assert!(warning.starts_with("kept the first of "), "{warning}");
    let r = client()
        .get(format!("{}/animated.gif?imageMogr2/format/webp", s.base))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-mogr-warning").is_none());
}

#[test]
fn signed_downloads_a_write_token_and_the_host_allow_list() {
    let key = "test-signing-key-0123456789";
    let s = start_with(
        "auth",
        &[("MOGR_SIGNING_KEYS", key)],
        &["--token", "s3cret-token"],
    );
    let c = client();
    let answer = |r: reqwest::blocking::RequestBuilder| {
        let r = r.send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    // Unsigned: refused, saying how to get in.
    let (status, body) = answer(c.get(format!("{}/photo.jpg?imageMogr2/format/webp", s.base)));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<Code>AccessDenied</Code>") && body.contains("signed URLs only"));
    // `mogr sign` makes a URL that works, for a rule and for the object itself.
    let sign = |processor: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mogr"))
            .args([
                "sign",
                "photo.jpg",
                "--processor",
                processor,
                "--base",
                &s.base,
            ])
            .env("MOGR_SIGNING_KEYS", key)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let url = sign("imageMogr2/format/webp");
    let r = c.get(&url).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(facts(&r.bytes().unwrap()).0, mogr::Format::Webp);
    assert_eq!(c.get(sign("")).send().unwrap().status(), 200);
    // Another rule under the same signature, or another key: no match.
    let (status, body) = answer(c.get(url.replace("format/webp", "format/avif")));
    assert_eq!(status, 403);
    assert!(
        body.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{body}"
    );
    let (status, _) = answer(c.get(url.replace("photo.jpg", "photo.png")));
    assert_eq!(status, 403);
    // Listings would hand out every key: off in this mode.
    let (status, body) = answer(c.get(format!("{}/?list-type=2", s.base)));
    assert_eq!(status, 403, "{body}");
    // and so would pending uploads: their keys and ids (an id lets its holder complete the upload)
    let initiated = c
        .post(format!("{}/pending.jpg?uploads", s.base))
        .header("authorization", "Bearer s3cret-token")
        .send()
        .unwrap()
        .text()
        .unwrap();
    let id = initiated
        .split("<UploadId>")
        .nth(1)
        .and_then(|r| r.split("</UploadId>").next())
        .expect("an upload id")
        .to_string();
    for path in [
        "/?uploads".to_string(),
        format!("/pending.jpg?uploadId={id}"),
    ] {
        let (status, body) = answer(c.get(format!("{}{path}", s.base)));
        assert_eq!(status, 403, "{path}: {body}");
        assert!(!body.contains(&id), "{path}: {body}");
    }
    // Writes need the token; nothing is stored without it.
    let photo = std::fs::read(examples().join("photo.jpg")).unwrap();
    for auth in [None, Some("Bearer wrong"), Some("s3cret-token")] {
        let mut put = c.put(format!("{}/w.jpg", s.base)).body(photo.clone());
        if let Some(a) = auth {
            put = put.header("authorization", a);
        }
        let (status, body) = answer(put);
        assert_eq!(status, 403, "{auth:?}: {body}");
        assert!(body.contains("Authorization: Bearer"), "{body}");
    }
    assert!(!s.root.join("w.jpg").exists());
    let put = c
        .put(format!("{}/w.jpg", s.base))
        .header("authorization", "Bearer s3cret-token")
        .body(photo);
    assert_eq!(answer(put).0, 200);
    assert!(s.root.join("w.jpg").exists());
    // A Host the server does not answer to (DNS rebinding) is refused, even with a valid signature;
    // localhost with the port is answered.
    let port = s.base.rsplit(':').next().unwrap();
    let (status, body) = answer(c.get(&url).header("host", "evil.example"));
    assert_eq!(status, 403);
    assert!(body.contains("--allow-host evil.example"), "{body}");
    let local = c.get(&url).header("host", format!("localhost:{port}"));
    assert_eq!(answer(local).0, 200);
}

/// `/_mogr/metrics` scraped and parsed by Prometheus's own parsers (cli/tests/metrics.py).
fn scrape(base: &str) -> serde_json::Value {
    let out = std::process::Command::new("python3")
        .arg(common::here().join("tests/metrics.py"))
        .arg(base)
        .output()
        .expect("python3 is installed by scripts/setup.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'prometheus_client'"),
        "prometheus_client is missing: run scripts/setup.sh"
    );
    assert!(out.status.success(), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn metrics_count_what_was_served() {
    let s = start("metrics", &[]);
    let rule = "imageMogr2/thumbnail/64x/format/webp";
    let r = client()
        .get(format!("{}/photo.png?{rule}", s.base))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let webp = r.bytes().unwrap().len() as f64;
    let bad = client()
        .get(format!("{}/photo.png?imageMogr2/thumbnail/64xx", s.base))
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    let ops = r#"{"rules":[{"fileid":"m/a.heif","rule":"imageMogr2/thumbnail/80x/format/heif"},{"fileid":"m/a.png","rule":"imageMogr2/thumbnail/40x"}]}"#;
    let posted = client()
        .post(format!("{}/photo.png?image_process", s.base))
        .header("Pic-Operations", ops)
        .send()
        .unwrap();
    assert_eq!(posted.status(), 200);
    let size = |k: &str| std::fs::metadata(s.root.join(k)).unwrap().len() as f64;
    let m = scrape(&s.base);
    let n = |name: &str| m[name].as_f64().unwrap_or_else(|| panic!("{name} in {m}"));
    assert_eq!(n("mogr_requests_total{route=download,status=200}"), 1.0);
    assert_eq!(n("mogr_requests_total{route=download,status=400}"), 1.0);
    assert_eq!(n("mogr_requests_total{route=post,status=200}"), 1.0);
    assert_eq!(n("mogr_errors_total{code=InvalidArgument}"), 1.0);
    assert_eq!(n("mogr_shed_total{}"), 0.0);
    for format in ["webp", "heif", "png"] {
        assert_eq!(
            n(&format!("mogr_conversions_total{{format={format}}}")),
            1.0
        );
    }
    assert_eq!(n("mogr_input_bytes_total{}"), 3.0 * size("photo.png"));
    let out = webp + size("m/a.heif") + size("m/a.png");
    assert_eq!(n("mogr_output_bytes_total{}"), out);
    assert_eq!(
        n("mogr_request_duration_seconds_count{route=download}"),
        2.0
    );
    for stage in ["fetch", "queue", "decode", "transform", "encode", "store"] {
        let count = format!("mogr_stage_duration_seconds_count{{route=post,stage={stage}}}");
        assert_eq!(n(&count), 1.0, "{stage}");
    }
    assert_eq!(n("mogr_queue_running{}"), 0.0);
    assert!(n("mogr_resident_memory_bytes{}") > 1e6);
    // the scrape itself is counted by the next one
    let again = scrape(&s.base);
    assert_eq!(again["mogr_requests_total{route=metrics,status=200}"], 1.0);

    // switched off, the path is one of mogr's own keys: refused
    let off = start_with("metrics-off", &[], &["--no-metrics"]);
    let r = client()
        .get(format!("{}/_mogr/metrics", off.base))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().unwrap().contains("<Code>AccessDenied</Code>"));
}

#[test]
fn without_a_root_a_copy_of_the_samples_is_served_and_the_checkout_stays_clean() {
    let home = std::env::temp_dir().join(format!("mogr-home-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    let copy = home.join(".cache/mogr/samples");
    let start = |addr: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mogr"))
            .args(["serve", "--addr", addr])
            .env("HOME", &home)
            .env_remove("XDG_CACHE_HOME")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut server = start("127.0.0.1:0");
    let mut said = std::io::BufReader::new(server.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    std::io::BufRead::read_line(&mut said, &mut first).unwrap();
    std::io::BufRead::read_line(&mut said, &mut second).unwrap();
    let base = first
        .split(" at ")
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches('/');
    assert!(first.contains(&format!("{}", copy.display())), "{first}");
    assert!(second.contains("a copy of the shipped samples"), "{second}");
    // every shipped sample, and only them
    let names = |dir: &std::path::Path| -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&copy), names(&examples()));
    let r = client()
        .get(format!("{base}/photo.png?imageInfo"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // the README's PUT: it lands in the copy, not in the checkout
    let r = client()
        .put(format!("{base}/in/photo.png"))
        .header(
            "Pic-Operations",
            r#"{"rules":[{"fileid":"photo.webp","rule":"imageMogr2/thumbnail/64x/format/webp"}]}"#,
        )
        .body(std::fs::read(examples().join("photo.png")).unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(copy.join("in/photo.png").is_file() && copy.join("in/photo.webp").is_file());
    assert!(!examples().join("in").exists() && !examples().join(".mogr").exists());

    // the port taken: said so, with what to do
    let port = base.rsplit(':').next().unwrap();
    let out = start(&format!("127.0.0.1:{port}"))
        .wait_with_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("another mogr serve?") && err.contains("--addr 8081"),
        "{err}"
    );
    let _ = server.kill();
    let _ = server.wait();

    // started again: what was written stays, a deleted sample comes back
    std::fs::remove_file(copy.join("photo.jpg")).unwrap();
    let mut server = start("127.0.0.1:0");
    common::base_url(&mut server);
    assert!(copy.join("in/photo.webp").is_file() && copy.join("photo.jpg").is_file());
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&home);
}
