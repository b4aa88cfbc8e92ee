//! S3 faults, injected by a proxy in front of the real S3-protocol server: down, slow, 500, 503, 403, a
//! body cut off mid-transfer. For each, the status mogr answers (an `<Error>` that names no internals),
//! and proof — read straight from the server, past the proxy — that nothing partial was stored and no
//! original changed.

use mogr::service::{Config, Service};
use mogr::store::{content_etag as md5, S3Policy, S3Store};
use mogr_e2e::faults::{Fault, FaultProxy, Plan};
use mogr_e2e::{example, request, S3Server, BUCKET};
use std::sync::Arc;
use std::time::Duration;

const SLOW: Fault = Fault::Slow(Duration::from_millis(1500));

struct Rig {
    server: S3Server,
    proxy: FaultProxy,
    service: Service,
}

/// The server with `photo.jpg`, a proxy before it, and a service whose S3 client goes through the
/// proxy: two attempts of at most 500 ms each, 1.2 s in all.
async fn rig(name: &str) -> Rig {
    let server = S3Server::start(name).await;
    server.create_bucket(BUCKET).await;
    server
        .put(BUCKET, "photo.jpg", example("photo.jpg"), &[])
        .await;
    let proxy = FaultProxy::start(server.addr).await;
    let policy = S3Policy {
        attempts: 2,
        attempt_timeout: Duration::from_millis(500),
        timeout: Duration::from_millis(1200),
    };
    let store = S3Store::new(proxy.client(policy), BUCKET);
    let service = Service::new(Config::default(), Arc::new(store));
    Rig {
        server,
        proxy,
        service,
    }
}

/// Status, `<Code>` and the whole body of a response.
fn answer(resp: &http::Response<Vec<u8>>) -> (u16, String, String) {
    let body = String::from_utf8_lossy(resp.body()).to_string();
    let code = body
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map_or(String::new(), |(c, _)| c.to_string());
    (resp.status().as_u16(), code, body)
}

/// What no error body may show: the SDK's words, addresses, the proxy's own message.
fn assert_no_internals(body: &str, proxy: &FaultProxy) {
    for leak in [
        "127.0.0.1",
        &proxy.addr.port().to_string(),
        "dispatch",
        "DispatchFailure",
        "hyper",
        "injected by the test proxy",
        "service error",
    ] {
        assert!(!body.contains(leak), "{leak:?} in {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn downloads_answer_each_s3_fault_as_a_client_can_act_on_it() {
    let r = rig("faults-get").await;
    let get = || {
        request(
            "GET",
            "/photo.jpg?imageMogr2/thumbnail/50x/format/webp",
            &[],
            vec![],
        )
    };
    for (fault, status, code) in [
        (Fault::Down, 502, "BadGateway"),
        (SLOW, 504, "GatewayTimeout"),
        (Fault::Status(500, "InternalError"), 502, "BadGateway"),
        (Fault::Status(503, "SlowDown"), 503, "SlowDown"),
        (Fault::CutBody, 502, "BadGateway"),
    ] {
        r.proxy
            .set(Some(Plan::on(fault.clone(), "GET", "/photo.jpg")));
        let resp = r.service.download(get()).await;
        let (got, got_code, body) = answer(&resp);
        assert_eq!(
            (got, got_code.as_str()),
            (status, code),
            "{fault:?}: {body}"
        );
        assert_no_internals(&body, &r.proxy);
        if code == "SlowDown" {
            assert_eq!(resp.headers()["retry-after"], "1");
        }
        // Retried within the policy: two attempts.
        assert_eq!(r.proxy.injected(), 2, "{fault:?}: {:?}", r.proxy.seen());
    }
    // One failure then success: the retry answers the client, who never sees the fault.
    r.proxy.set(Some(
        Plan::on(Fault::Status(500, "InternalError"), "GET", "/photo.jpg").times(1),
    ));
    let resp = r.service.download(get()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(r.proxy.injected(), 1);
    // A missing key is 404 even where S3 says 403 (a role without s3:ListBucket).
    r.proxy.set(Some(Plan::on(
        Fault::Status(403, "AccessDenied"),
        "GET",
        "/missing.jpg",
    )));
    let resp = r
        .service
        .download(request(
            "GET",
            "/missing.jpg?imageMogr2/format/webp",
            &[],
            vec![],
        ))
        .await;
    let (status, code, body) = answer(&resp);
    assert_eq!((status, code.as_str()), (404, "NoSuchKey"), "{body}");
    // The service keeps serving once the storage is back.
    r.proxy.set(None);
    assert_eq!(r.service.download(get()).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_that_fails_leaves_the_bucket_as_it_was() {
    let r = rig("faults-put").await;
    // An earlier output, and an original about to be replaced by a PUT.
    r.server
        .put(BUCKET, "in/p.jpg", example("photo.png"), &[])
        .await;
    let ops = concat!(
        r#"{"rules":[{"fileid":"a.webp","rule":"imageMogr2/thumbnail/40x/format/webp"},"#,
        r#"{"fileid":"b.avif","rule":"imageMogr2/thumbnail/40x/format/avif"}]}"#
    );
    let first = r
        .service
        .process(request(
            "PUT",
            "/in/p.jpg",
            &[("pic-operations", ops)],
            example("photo.jpg"),
        ))
        .await;
    assert_eq!(first.status(), 200, "{}", answer(&first).2);
    // What is stored at a key, read past the proxy: its MD5 (short failure messages).
    let stored = |key: &'static str| {
        let server = &r.server;
        async move { server.get(BUCKET, key).await.map(|(body, _)| md5(&body)) }
    };
    let a_before = stored("in/a.webp").await.expect("a.webp");
    let b_before = stored("in/b.avif").await.expect("b.avif");
    // Replace in/p.jpg (now photo.jpg) with photo.png; the second output's write fails each way.
    for (fault, status) in [
        (Fault::Down, 502),
        (SLOW, 504),
        (Fault::Status(500, "InternalError"), 502),
        (Fault::Status(503, "SlowDown"), 503),
        (Fault::CutBody, 502),
    ] {
        r.proxy
            .set(Some(Plan::on(fault.clone(), "PUT", "/in/b.avif")));
        let ops = concat!(
            r#"{"rules":[{"fileid":"a.webp","rule":"imageMogr2/thumbnail/30x/format/webp"},"#,
            r#"{"fileid":"b.avif","rule":"imageMogr2/thumbnail/30x/format/avif"},"#,
            r#"{"fileid":"c.heic","rule":"imageMogr2/thumbnail/30x/format/heif"}]}"#
        );
        let resp = r
            .service
            .process(request(
                "PUT",
                "/in/p.jpg",
                &[("pic-operations", ops)],
                example("photo.png"),
            ))
            .await;
        let (got, _, body) = answer(&resp);
        assert_eq!(got, status, "{fault:?}: {body}");
        assert_no_internals(&body, &r.proxy);
        r.proxy.set(None);
        assert_eq!(
            stored("in/a.webp").await.unwrap(),
            a_before,
            "{fault:?}: a.webp put back"
        );
        // b.avif's own write may have landed before its answer was lost: put back too.
        assert_eq!(
            stored("in/b.avif").await.unwrap(),
            b_before,
            "{fault:?}: b.avif put back"
        );
        assert!(
            stored("in/c.heic").await.is_none(),
            "{fault:?}: never written"
        );
        assert_eq!(
            stored("in/p.jpg").await.unwrap(),
            md5(&example("photo.jpg")),
            "{fault:?}: the original unchanged"
        );
    }
    // The input cut off mid-transfer is never decoded as a truncated image: 502, nothing stored.
    r.proxy
        .set(Some(Plan::on(Fault::CutBody, "GET", "/in/p.jpg")));
    let resp = r
        .service
        .process(request(
            "POST",
            "/in/p.jpg?image_process",
            &[(
                "pic-operations",
                r#"{"rules":[{"fileid":"d.webp","rule":"imageMogr2/format/webp"}]}"#,
            )],
            vec![],
        ))
        .await;
    let (status, code, body) = answer(&resp);
    assert_eq!((status, code.as_str()), (502, "BadGateway"), "{body}");
    r.proxy.set(None);
    assert!(stored("in/d.webp").await.is_none());
    // A plain PUT that fails leaves the object it would have replaced.
    r.proxy.set(Some(Plan::on(
        Fault::Status(500, "InternalError"),
        "PUT",
        "/in/p.jpg",
    )));
    let resp = r
        .service
        .process(request("PUT", "/in/p.jpg", &[], example("photo.png")))
        .await;
    assert_eq!(resp.status(), 502, "{}", answer(&resp).2);
    r.proxy.set(None);
    assert_eq!(
        stored("in/p.jpg").await.unwrap(),
        md5(&example("photo.jpg"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upload_hook_fails_for_retry_only_when_the_storage_does() {
    let r = rig("faults-hook").await;
    let ops = r#"{"rules":[{"fileid":"t.webp","rule":"imageMogr2/thumbnail/20x/format/webp"}]}"#;
    r.server
        .put(
            BUCKET,
            "up/x.jpg",
            example("photo.jpg"),
            &[("pic-operations", ops)],
        )
        .await;
    r.proxy.set(Some(Plan::always(Fault::Down)));
    let e = r.service.on_upload("up/x.jpg").await.unwrap_err();
    assert!(
        !e.is_client_error(),
        "{e}: Lambda retries, then the dead-letter queue"
    );
    r.proxy.set(None);
    assert!(r.service.on_upload("up/x.jpg").await.is_ok());
    assert!(r.server.get(BUCKET, "up/t.webp").await.is_some());
}
