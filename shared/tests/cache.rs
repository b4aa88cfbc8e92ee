//! Download results named before the work and kept until their source changes (issue 34), over a
//! folder with every storage call counted: a 304 costs one HEAD, a kept result one HEAD and one GET,
//! a changed source is never answered from the cache, and clients cannot reach `_mogr/cache/`.

mod common;

use common::{example, request, text, Flaky};
use mogr::service::{Config, Routes, Service, CACHE_PREFIX};
use mogr::store::{Call, Counting, DirStore, Metadata, Store};
use mogr::{Format, Limits};
use std::sync::Arc;

const THUMB: &str = "/photo.jpg?imageMogr2/thumbnail/64x/format/avif";

/// A service over a folder holding `photo.jpg`, its storage calls counted.
async fn counted(config: Config) -> (tempfile::TempDir, Arc<Counting>, Service) {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new("local", dir.path());
    let meta = Metadata::new();
    let put = store.put("photo.jpg", example("photo.jpg"), "image/jpeg", &meta);
    put.await.unwrap();
    let counting = Arc::new(Counting::new(Arc::new(store)));
    let service = Service::new(config, counting.clone());
    (dir, counting, service)
}

fn get(uri: &str, headers: &[(&str, &str)]) -> http::Request<Vec<u8>> {
    request("GET", uri, headers, vec![])
}

fn etag(resp: &http::Response<Vec<u8>>) -> String {
    resp.headers()["etag"].to_str().unwrap().to_string()
}

fn calls(list: &[(&'static str, &str)]) -> Vec<Call> {
    list.iter()
        .map(|(op, key)| (*op, key.to_string()))
        .collect()
}

fn kept(tag: &str) -> String {
    format!("{CACHE_PREFIX}{}", tag.trim_matches('"'))
}

fn facts(bytes: &[u8]) -> (Format, u32, u32) {
    let p = mogr::codec::probe(bytes, &Limits::default()).expect("an image");
    (p.format, p.width, p.height)
}

#[tokio::test]
async fn a_conversion_is_kept_answered_from_its_copy_and_revalidated_with_one_head() {
    let (dir, store, service) = counted(Config::default()).await;
    let first = service.download(get(THUMB, &[])).await;
    assert_eq!(first.status(), 200, "{}", text(first.body()));
    assert_eq!(facts(first.body()), (Format::Avif, 64, 43));
    let tag = etag(&first);
    assert_eq!(
        store.take(),
        calls(&[
            ("head", "photo.jpg"),
            ("get", &kept(&tag)),
            ("get", "photo.jpg"),
            ("put", &kept(&tag)),
        ]),
        "the first answer converts and keeps its result"
    );
    assert!(dir.path().join(kept(&tag)).exists());

    // the same rule again, however spelled: the kept copy, no read of the source, no decode
    for uri in [THUMB, "/photo.jpg?imageMogr2/format/avif/thumbnail/64x"] {
        let again = service.download(get(uri, &[])).await;
        assert_eq!(again.status(), 200);
        assert_eq!(etag(&again), tag, "{uri}");
        assert_eq!(again.body(), first.body());
        assert_eq!(again.headers()["content-type"], "image/avif");
        assert_eq!(
            store.take(),
            calls(&[("head", "photo.jpg"), ("get", &kept(&tag))])
        );
    }

    // a client holding the result: 304 after one HEAD, nothing read
    for list in [tag.clone(), format!("\"other\", W/{tag}")] {
        let resp = service
            .download(get(THUMB, &[("if-none-match", &list)]))
            .await;
        assert_eq!(resp.status(), 304, "{list}");
        assert!(resp.body().is_empty());
        assert_eq!(etag(&resp), tag);
        assert_eq!(store.take(), calls(&[("head", "photo.jpg")]));
    }
    // another ETag is no reason for a 304
    let resp = service
        .download(get(THUMB, &[("if-none-match", "\"0123\"")]))
        .await;
    assert_eq!(resp.status(), 200);
    store.take();

    // HEAD is answered from the copy too, with its length
    let resp = service.download(request("HEAD", THUMB, &[], vec![])).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.body().is_empty());
    assert_eq!(
        resp.headers()["content-length"],
        first.body().len().to_string()
    );
    assert_eq!(
        store.take(),
        calls(&[("head", "photo.jpg"), ("get", &kept(&tag))])
    );
}

#[tokio::test]
async fn a_changed_source_is_never_answered_from_the_cache() {
    let (_dir, store, service) = counted(Config::default()).await;
    let first = service.download(get(THUMB, &[])).await;
    let tag = etag(&first);
    // the object is replaced by a picture of another size
    let put = request("PUT", "/photo.jpg", &[], example("photo.png"));
    assert_eq!(service.process(put).await.status(), 200);
    store.take();
    let resp = service
        .download(get(THUMB, &[("if-none-match", &tag)]))
        .await;
    assert_eq!(resp.status(), 200, "the client's copy is stale");
    let new = etag(&resp);
    assert_ne!(new, tag);
    assert_ne!(resp.body(), first.body());
    assert_eq!(
        store.take(),
        calls(&[
            ("head", "photo.jpg"),
            ("get", &kept(&new)),
            ("get", "photo.jpg"),
            ("put", &kept(&new)),
        ])
    );
}

#[tokio::test]
async fn image_info_and_ave_are_named_before_the_work() {
    let (_dir, store, service) = counted(Config::default()).await;
    for query in ["imageInfo", "imageAve"] {
        let uri = format!("/photo.jpg?{query}");
        let resp = service.download(get(&uri, &[])).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(store.take(), calls(&[("get", "photo.jpg")]), "{query}");
        let tag = etag(&resp);
        let resp = service
            .download(get(&uri, &[("if-none-match", &tag)]))
            .await;
        assert_eq!(resp.status(), 304, "{query}");
        assert_eq!(store.take(), calls(&[("head", "photo.jpg")]), "{query}");
    }
    let info = service.download(get("/photo.jpg?imageInfo", &[])).await;
    let ave = service.download(get("/photo.jpg?imageAve", &[])).await;
    assert_ne!(etag(&info), etag(&ave));
}

#[tokio::test]
async fn format_auto_is_kept_per_class_of_accept_header() {
    let (_dir, store, service) = counted(Config::default()).await;
    let auto = "/photo.jpg?imageMogr2/thumbnail/64x/format/auto";
    let tag_for = |headers: &'static [(&'static str, &'static str)]| {
        let service = service.clone();
        async move {
            let resp = service.download(get(auto, headers)).await;
            assert_eq!(resp.status(), 200, "{headers:?}");
            assert_eq!(resp.headers()["vary"], "Accept, X-Mogr-Accept");
            (etag(&resp), facts(resp.body()).0)
        }
    };
    let chrome = tag_for(&[(
        "accept",
        "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    )])
    .await;
    assert_eq!(chrome.1, Format::Avif);
    store.take();
    // Firefox's header means the same: its answer is the kept one
    let firefox = tag_for(&[("accept", "image/avif,image/webp,*/*")]).await;
    assert_eq!(firefox, chrome);
    assert_eq!(store.take().len(), 2, "a HEAD and the kept copy");
    // so does the class a CDN sends in place of Accept
    let cdn = tag_for(&[("x-mogr-accept", "avif,webp"), ("accept", "*/*")]).await;
    assert_eq!(cdn, chrome);
    let webp = tag_for(&[("x-mogr-accept", "webp")]).await;
    assert_eq!(webp.1, Format::Webp);
    let old = tag_for(&[("accept", "image/png,image/*;q=0.8,*/*;q=0.5")]).await;
    assert_eq!(old.1, Format::Jpeg);
    assert!(chrome.0 != webp.0 && webp.0 != old.0 && old.0 != chrome.0);
}

#[tokio::test]
async fn with_the_cache_off_every_answer_is_made_anew_and_nothing_is_kept() {
    let config = Config {
        result_cache: false,
        ..Config::default()
    };
    let (dir, store, service) = counted(config).await;
    let first = service.download(get(THUMB, &[])).await;
    let second = service.download(get(THUMB, &[])).await;
    assert_eq!(second.status(), 200);
    assert_eq!(
        etag(&first),
        etag(&second),
        "the tag does not need the cache"
    );
    assert_eq!(
        store.take(),
        calls(&[("get", "photo.jpg"), ("get", "photo.jpg")])
    );
    assert!(!dir.path().join("_mogr").exists());
    // revalidation still costs one HEAD
    let held = etag(&first);
    let resp = service
        .download(get(THUMB, &[("if-none-match", &held)]))
        .await;
    assert_eq!(resp.status(), 304);
    assert_eq!(store.take(), calls(&[("head", "photo.jpg")]));
}

#[tokio::test]
async fn clients_cannot_read_or_write_kept_results() {
    let (_dir, _store, service) = counted(Config::default()).await;
    let first = service.download(get(THUMB, &[])).await;
    let key = kept(&etag(&first));
    let routes = Routes {
        writes: true,
        listings: true,
        notify: false,
    };
    for method in ["GET", "HEAD", "PUT", "DELETE"] {
        let resp = service
            .handle(
                request(method, &format!("/{key}"), &[], b"planted".to_vec()),
                routes,
            )
            .await;
        assert_eq!(resp.status(), 403, "{method} /{key}");
    }
    let resp = service.download(get(THUMB, &[])).await;
    assert_eq!(resp.body(), first.body(), "the kept copy is untouched");
    let listing = service.handle(get("/?prefix=_mogr", &[]), routes).await;
    assert!(!text(listing.body()).contains("_mogr/"));
}

#[tokio::test]
async fn a_failed_cache_write_never_fails_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    // writes under _mogr/cache/ fail, as a full disk or a denied PutObject would
    let store = Flaky::new(dir.path(), CACHE_PREFIX);
    let meta = Metadata::new();
    let put = store.put("photo.jpg", example("photo.jpg"), "image/jpeg", &meta);
    put.await.unwrap();
    for detached in [false, true] {
        let config = Config {
            detached_cache_writes: detached,
            ..Config::default()
        };
        let service = Service::new(config, Arc::new(Flaky::new(dir.path(), CACHE_PREFIX)));
        for _ in 0..2 {
            let resp = service.download(get(THUMB, &[])).await;
            assert_eq!(resp.status(), 200, "{}", text(resp.body()));
            assert_eq!(facts(resp.body()), (Format::Avif, 64, 43));
        }
    }
}

#[tokio::test]
async fn a_server_keeps_results_after_it_answers() {
    let config = Config {
        detached_cache_writes: true,
        ..Config::default()
    };
    let (dir, _store, service) = counted(config).await;
    let resp = service.download(get(THUMB, &[])).await;
    assert_eq!(resp.status(), 200);
    let path = dir.path().join(kept(&etag(&resp)));
    // the write runs on after the answer, counted in the service's background work
    service.background().idle().await;
    assert!(path.exists(), "{} was never written", path.display());
}
