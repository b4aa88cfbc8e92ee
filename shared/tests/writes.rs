//! Nothing lost, nothing let in: a request's writes are all or nothing, rules write only where they
//! may, and the folder store keeps each object's body and metadata together and refuses keys a folder
//! cannot hold with errors that name no path on the server.

mod common;

use common::{example, post, request, setup, text, Flaky};
use mogr::service::{Config, HookOutcome, Service};
use mogr::store::{DirStore, Metadata, Store, OUTPUT_MARKER, PIC_OPERATIONS};
use mogr::Code;
use std::sync::Arc;

fn rules(pairs: &[(&str, &str)]) -> String {
    let rules: Vec<_> = pairs
        .iter()
        .map(|(fileid, rule)| serde_json::json!({"fileid": fileid, "rule": rule}))
        .collect();
    serde_json::json!({ "rules": rules }).to_string()
}

async fn put_with(service: &Service, key: &str, ops: &str) -> http::Response<Vec<u8>> {
    service
        .process(request(
            "PUT",
            &format!("/{key}"),
            &[("pic-operations", ops)],
            example("photo.jpg"),
        ))
        .await
}

/// Every file under `dir` but mogr's bookkeeping, sorted.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            if rel == ".mogr" {
                continue;
            }
            if e.path().is_dir() {
                dirs.push(e.path());
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_failed_write_puts_back_what_the_request_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::new(Config::default(), Arc::new(Flaky::new(dir.path(), "fail")));
    let store = service.bucket().clone();
    // An earlier output, which a later request may overwrite.
    let first = put_with(
        &service,
        "a.jpg",
        &rules(&[("prev.webp", "imageMogr2/thumbnail/30x/format/webp")]),
    )
    .await;
    assert_eq!(first.status(), 200, "{}", text(first.body()));
    let prev = store.get("prev.webp").await.unwrap();
    let before = files(dir.path());
    // The second rule's write fails: the first output is put back, the upload is not stored.
    let resp = put_with(
        &service,
        "b.jpg",
        &rules(&[
            ("prev.webp", "imageMogr2/thumbnail/60x/format/webp"),
            ("new.avif", "imageMogr2/thumbnail/20x/format/avif"),
            ("fail.heic", "imageMogr2/thumbnail/20x/format/heif"),
        ]),
    )
    .await;
    assert_eq!(resp.status(), 500, "{}", text(resp.body()));
    assert!(text(resp.body()).contains("the disk is full"));
    assert_eq!(
        files(dir.path()),
        before,
        "new.avif removed, b.jpg never stored"
    );
    let back = store.get("prev.webp").await.unwrap();
    assert_eq!(back.body, prev.body);
    // content type and metadata back too; the time is the put-back's, as a rewrite's is in S3
    let untimed = |h: &mogr::store::Head| mogr::store::Head {
        last_modified: None,
        ..h.clone()
    };
    assert_eq!(untimed(&back.head), untimed(&prev.head));
    // The upload itself failing takes its outputs back with it.
    let resp = put_with(
        &service,
        "fail.jpg",
        &rules(&[("ok.webp", "imageMogr2/format/webp")]),
    )
    .await;
    assert_eq!(resp.status(), 500);
    assert_eq!(files(dir.path()), before);
}

#[tokio::test]
async fn outputs_are_checked_before_anything_is_written() {
    let (dir, service) = setup(Config::default()).await;
    let before = files(dir.path());
    let root = dir.path().display().to_string();
    // A second output that a folder cannot hold (below the object photo.jpg): 400, and the first
    // output and the upload are not stored.
    for (fileid, code, says) in [
        ("/photo.jpg/x.webp", 400, "is an object, and a folder store"),
        ("/anim", 400, "it is a folder here"),
        (&*format!("{}.webp", "n".repeat(251)), 400, "over 255 bytes"),
        (
            "/_MOGR/cache/planted.webp",
            403,
            "reserves for the results it keeps",
        ),
        ("/photo.jpg", 403, "an object mogr did not write"),
    ] {
        let ops = rules(&[
            ("first.webp", "imageMogr2/format/webp"),
            (fileid, "imageMogr2/format/webp"),
        ]);
        let resp = put_with(&service, "up.jpg", &ops).await;
        let body = text(resp.body());
        assert_eq!(resp.status(), code, "{fileid}: {body}");
        assert!(body.contains(says), "{fileid}: {body}");
        assert!(!body.contains(&root), "{fileid}: no server path in {body}");
        assert_eq!(files(dir.path()), before, "{fileid}: nothing written");
    }
    // A rule may overwrite its own input (in cloud: POST), and outputs mogr wrote.
    let ops = rules(&[("/photo.jpg", "imageMogr2/thumbnail/100x/format/jpg")]);
    let resp = post(&service, "photo.jpg", &ops).await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    let again = post(&service, "anim/animated.gif", &ops).await;
    assert_eq!(again.status(), 200, "photo.jpg is mogr's output now");
    // A PUT whose rule writes over the upload's own key stores the output in its place.
    let ops = rules(&[("self.jpg", "imageMogr2/thumbnail/80x/format/webp")]);
    let resp = put_with(&service, "self.jpg", &ops).await;
    assert_eq!(resp.status(), 200, "{}", text(resp.body()));
    let stored = service.bucket().get("self.jpg").await.unwrap();
    assert_eq!(stored.head.content_type.as_deref(), Some("image/webp"));
    assert!(stored.head.metadata.contains_key(OUTPUT_MARKER));
    // Clients cannot write or delete under the reserved prefix either.
    for method in ["PUT", "DELETE"] {
        let resp = service
            .process(request(
                method,
                "/_Mogr/Large/x.webp",
                &[],
                example("photo.jpg"),
            ))
            .await;
        assert_eq!(resp.status(), 403, "{method}");
        assert!(text(resp.body()).contains("<Code>AccessDenied</Code>"));
    }
}

#[tokio::test]
async fn an_uploaded_objects_own_rules_write_only_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        hook_output_prefixes: vec!["shared/".into()],
        ..Config::default()
    };
    let service = Service::new(config, Arc::new(DirStore::new("local", dir.path())));
    let store = service.bucket().clone();
    let plain = Metadata::new();
    store
        .put("victim.jpg", example("photo.jpg"), "image/jpeg", &plain)
        .await
        .unwrap();
    store
        .put("up/other.jpg", example("photo.jpg"), "image/jpeg", &plain)
        .await
        .unwrap();
    let upload = |ops: String| {
        let store = store.clone();
        async move {
            let meta = Metadata::from([(PIC_OPERATIONS.to_string(), ops)]);
            store
                .put("up/in.jpg", example("photo.jpg"), "image/jpeg", &meta)
                .await
                .unwrap();
        }
    };
    let webp = "imageMogr2/thumbnail/20x/format/webp";
    for (fileid, says) in [
        ("/victim.jpg", "may write only beside it (up/)"),
        ("/elsewhere/x.webp", "may write only beside it (up/)"),
        ("other.jpg", "an object mogr did not write"),
        ("/_mogr/cache/x.webp", "reserves for the results it keeps"),
    ] {
        upload(rules(&[(fileid, webp)])).await;
        let e = service.on_upload("up/in.jpg").await.unwrap_err();
        assert_eq!(e.code, Code::AccessDenied, "{fileid}");
        assert!(e.message.contains(says), "{fileid}: {}", e.message);
    }
    assert_eq!(
        store.get("victim.jpg").await.unwrap().body,
        example("photo.jpg")
    );
    assert!(store.head("elsewhere/x.webp").await.unwrap().is_none());
    // Beside it, below it, an allow-listed prefix, and the object itself are fine.
    upload(rules(&[
        ("x.webp", webp),
        ("small/x.webp", webp),
        ("/shared/x.webp", webp),
        ("/up/in.jpg", webp),
    ]))
    .await;
    let HookOutcome::Processed(done, _) = service.on_upload("up/in.jpg").await.unwrap() else {
        panic!("the rules ran")
    };
    let keys: Vec<_> = done.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        ["up/x.webp", "up/small/x.webp", "shared/x.webp", "up/in.jpg"]
    );
    // The operator's default rules are trusted with any key.
    let config = Config {
        default_rules: vec![(
            "raw/".into(),
            mogr::cos::PicOperations::parse(&rules(&[("/thumbs/t.webp", webp)])).unwrap(),
        )],
        ..Config::default()
    };
    let service = Service::new(config, store.clone());
    store
        .put("raw/p.jpg", example("photo.jpg"), "image/jpeg", &plain)
        .await
        .unwrap();
    assert!(matches!(
        service.on_upload("raw/p.jpg").await.unwrap(),
        HookOutcome::Processed(..)
    ));
    assert!(store.head("thumbs/t.webp").await.unwrap().is_some());
}

#[tokio::test]
async fn a_killed_writers_temporary_files_are_swept_when_the_folder_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join(".mogr/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // a process id above any the kernel hands out (pid_max is at most 2^22): its writer is gone
    std::fs::write(tmp.join("999999999-7"), b"half a body").unwrap();
    let live = tmp.join(format!("{}-1", std::process::id()));
    std::fs::write(&live, b"a body being written").unwrap();
    let store = DirStore::new("local", dir.path());
    assert!(!tmp.join("999999999-7").exists());
    assert!(live.exists(), "a live writer's file is its own");
    store
        .put("a", b"x".to_vec(), "text/plain", &Metadata::new())
        .await
        .unwrap();
    assert_eq!(store.get("a").await.unwrap().body, b"x");
}

#[tokio::test]
async fn the_folder_store_keeps_body_and_metadata_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(DirStore::new("local", dir.path()));
    let root = dir.path().display().to_string();
    let meta = |v: &str| Metadata::from([("n".to_string(), v.to_string())]);
    // 16 PUTs to one key at once, with readers: each read sees one PUT's body with that PUT's metadata.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let writer = store.clone();
        tasks.push(tokio::spawn(async move {
            let body = format!("body {i};").repeat(1000 + i).into_bytes();
            writer
                .put("k", body, "text/plain", &meta(&i.to_string()))
                .await
        }));
        let reader = store.clone();
        tasks.push(tokio::spawn(async move {
            if let Ok(o) = reader.get("k").await {
                let n = &o.head.metadata["n"];
                assert!(o.body.starts_with(format!("body {n};").as_bytes()), "{n}");
            }
            Ok(String::new())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let o = store.get("k").await.unwrap();
    let n = &o.head.metadata["n"];
    assert!(o.body.starts_with(format!("body {n};").as_bytes()));
    assert_eq!(o.head.content_type.as_deref(), Some("text/plain"));
    // A key and one below a name its sidecar once had are both objects with their own metadata.
    store
        .put("K", b"a".to_vec(), "text/a", &meta("a"))
        .await
        .unwrap();
    store
        .put("K.json/x", b"b".to_vec(), "text/b", &meta("b"))
        .await
        .unwrap();
    assert_eq!(store.get("K").await.unwrap().head.metadata, meta("a"));
    assert_eq!(
        store.get("K.json/x").await.unwrap().head.metadata,
        meta("b")
    );
    // Keys a folder cannot hold are refused with the key, not the server's path.
    store
        .put("a.png", b"x".to_vec(), "image/png", &meta("x"))
        .await
        .unwrap();
    for key in [
        "a.png/b.png",
        "a.png/c/d.png",
        &"s".repeat(256),
        ".MOGR/meta/x",
        ".Mogr",
    ] {
        let e = store
            .put(key, b"y".to_vec(), "image/png", &meta("y"))
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "{key}");
        assert!(!e.message.contains(&root), "{key}: {}", e.message);
    }
    // Deleting the last object of a folder leaves no folder behind: the name is free again.
    store.delete("K.json/x").await.unwrap();
    assert!(!dir.path().join("K.json").exists());
    store
        .put("K.json", b"c".to_vec(), "text/c", &meta("c"))
        .await
        .unwrap();
    // A file changed behind the store's back gets its new ETag (the cache is keyed by size and time).
    let first = store.head("K.json").await.unwrap().unwrap().etag;
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(dir.path().join("K.json"), b"changed").unwrap();
    let head = store.head("K.json").await.unwrap().unwrap();
    assert_ne!(head.etag, first);
    assert_eq!(head.etag, mogr::store::content_etag(b"changed"));
    let listed = store.list("", None, 1000).await.unwrap().entries;
    let entry = listed.iter().find(|e| e.key == "K.json").unwrap();
    assert_eq!(entry.etag, head.etag);
}

#[tokio::test]
async fn a_request_past_its_deadline_stops_before_its_next_write_and_puts_back_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        process_deadline: Some(std::time::Duration::from_millis(400)),
        ..Config::default()
    };
    let service = Service::new(config, Arc::new(Flaky::new(dir.path(), "fail")));
    // The first output's write outlasts the deadline: the second is not started, the first is removed.
    let resp = put_with(
        &service,
        "a.jpg",
        &rules(&[
            ("slow.webp", "imageMogr2/thumbnail/20x/format/webp"),
            ("b.webp", "imageMogr2/thumbnail/20x/format/webp"),
        ]),
    )
    .await;
    let body = text(resp.body());
    assert_eq!(resp.status(), 503, "{body}");
    assert!(body.contains("<Code>ServiceUnavailable</Code>"), "{body}");
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[tokio::test]
async fn outputs_record_the_rule_that_made_them_and_a_batch_can_tell_what_is_done() {
    let (dir, service) = setup(Config::default()).await;
    let json = r#"{"rules":[{"fileid":"/b/a.webp","rule":"imageMogr2/thumbnail/50x/format/webp"},{"fileid":"/b/a.png","rule":"imageMogr2/thumbnail/40x/format/png"}]}"#;
    let ops = mogr::cos::PicOperations::parse(json).unwrap();
    let store = DirStore::new("local", dir.path());
    let source = store.head("photo.jpg").await.unwrap().unwrap().etag;
    assert_eq!(
        service
            .rules_done("photo.jpg", &source, &ops)
            .await
            .unwrap(),
        [false, false],
        "nothing made yet"
    );
    assert_eq!(post(&service, "photo.jpg", json).await.status(), 200);
    let meta = store.head("b/a.webp").await.unwrap().unwrap().metadata;
    assert_eq!(
        meta.get(mogr::store::RULE),
        Some(&mogr::store::rule_tag(
            "imageMogr2/thumbnail/50x/format/webp"
        ))
    );
    assert_eq!(
        service
            .rules_done("photo.jpg", &source, &ops)
            .await
            .unwrap(),
        [true, true]
    );
    // another rule for the same output, or another source, is not done; nothing was written asking
    let changed = json.replace("thumbnail/40x", "thumbnail/30x");
    let changed = mogr::cos::PicOperations::parse(&changed).unwrap();
    assert_eq!(
        service
            .rules_done("photo.jpg", &source, &changed)
            .await
            .unwrap(),
        [true, false]
    );
    assert_eq!(
        service
            .rules_done("photo.jpg", "another-etag", &ops)
            .await
            .unwrap(),
        [false, false]
    );
    let png = store.head("b/a.png").await.unwrap().unwrap();
    assert!(mogr::store::made_by(
        &png.metadata,
        &source,
        "imageMogr2/thumbnail/40x/format/png"
    ));
    // a fileid onto an object mogr did not write is refused, as a POST would refuse it
    let onto_source =
        r#"{"rules":[{"fileid":"/anim/animated.gif","rule":"imageMogr2/format/png"}]}"#;
    let onto_source = mogr::cos::PicOperations::parse(onto_source).unwrap();
    assert!(service
        .rules_done("photo.jpg", &source, &onto_source)
        .await
        .is_err());
}

#[tokio::test]
async fn an_output_another_object_made_is_not_taken_for_done() {
    let (dir, service) = setup(Config::default()).await;
    let store = DirStore::new("local", dir.path());
    store
        .put(
            "photo.png",
            example("photo.png"),
            "image/png",
            &Metadata::new(),
        )
        .await
        .unwrap();
    let json = r#"{"rules":[{"fileid":"/same.webp","rule":"imageMogr2/format/webp"}]}"#;
    let ops = mogr::cos::PicOperations::parse(json).unwrap();
    assert_eq!(post(&service, "photo.jpg", json).await.status(), 200);
    let png = store.head("photo.png").await.unwrap().unwrap().etag;
    let e = service
        .rules_done("photo.png", &png, &ops)
        .await
        .unwrap_err();
    assert!(e.message.contains("the output of another object"), "{e}");
    let jpg = store.head("photo.jpg").await.unwrap().unwrap().etag;
    assert_eq!(
        service.rules_done("photo.jpg", &jpg, &ops).await.unwrap(),
        [true]
    );
}
