//! `mogr serve` under load: 32 clients at once, a mix of conversions, repeats, uploads, bad requests and
//! clients that give up. Every answer is 200, a 4xx `<Error>`, or 503 `SlowDown` with `Retry-After`;
//! memory stays bounded and does not grow; the server serves normally afterwards.
//!
//! CI runs 2,000 requests; `MOGR_LOAD_REQUESTS=10000 cargo test -p mogr-cli --test load --
//! --nocapture` is the full run whose figures TESTING.md records.

mod common;

use common::{client, facts, start};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 32;

/// What the `i`th request is, and what a 200 must hold.
enum Kind {
    /// A conversion: the format a 200 must be in.
    Convert(mogr::Format),
    Original,
    Info,
    /// A PUT with Pic-Operations.
    Upload,
    /// A request that must be refused with this status.
    Bad(u16),
    /// The client gives up after a few milliseconds (its queued work must be dropped).
    Abandoned,
}

fn request(i: usize) -> (reqwest::Method, String, Kind) {
    use mogr::Format::*;
    use reqwest::Method;
    let get = |path: String, kind| (Method::GET, path, kind);
    match i % 20 {
        // conversions with many different sizes, so most are new work
        0 | 1 => get(
            format!(
                "/photo.jpg?imageMogr2/thumbnail/{}x/format/webp",
                32 + i % 300
            ),
            Kind::Convert(Webp),
        ),
        2 => get(
            format!(
                "/photo.png?imageMogr2/thumbnail/{}x/format/avif",
                32 + i % 200
            ),
            Kind::Convert(Avif),
        ),
        3 => get(
            format!(
                "/photo.jpg?imageMogr2/thumbnail/{}x/format/heif",
                64 + i % 200
            ),
            Kind::Convert(Heif),
        ),
        4 => get(
            "/photo.jpg?imageMogr2/thumbnail/120x/format/png".into(),
            Kind::Convert(Png),
        ),
        5 => get(
            "/photo.png?imageMogr2/crop/100x100/gravity/center/quality/70/format/jpg".into(),
            Kind::Convert(Jpeg),
        ),
        6..=9 => get("/photo.jpg".into(), Kind::Original),
        10 | 11 => get("/photo.png?imageInfo".into(), Kind::Info),
        12 => (Method::PUT, format!("/up/{i}.png"), Kind::Upload),
        13 => get(
            "/photo.jpg?imageMogr2/thumbnail/80xx".into(),
            Kind::Bad(400),
        ),
        14 => get("/missing.jpg?imageMogr2/format/heif".into(), Kind::Bad(404)),
        15 => get(
            "/photo.jpg?imageMogr2/thumbnail/9000x/format/png".into(),
            Kind::Bad(400),
        ),
        16 => get("/.mogr/photo.jpg".into(), Kind::Bad(400)),
        17 => get(
            "/photo.jpg?imageMogr2/format/avif/profile/persistent".into(),
            Kind::Bad(400),
        ),
        18 => get(
            format!(
                "/photo.png?imageMogr2/thumbnail/{}x/format/avif",
                300 + i % 97
            ),
            Kind::Abandoned,
        ),
        _ => get("/photo.png".into(), Kind::Original),
    }
}

/// The `q`-quantile of sorted `v`, in ms.
fn quantile(v: &[Duration], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i].as_secs_f64() * 1e3
}

#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, usize>,
    abandoned: usize,
    all: Vec<Duration>,
    converted: Vec<Duration>,
    /// (requests done, server RSS in KiB)
    rss: Vec<(usize, u64)>,
}

#[test]
fn thirty_two_clients_get_answers_not_failures_and_memory_stays_flat() {
    let requests: usize = std::env::var("MOGR_LOAD_REQUESTS")
        .ok()
        .map_or(2_000, |v| v.parse().expect("MOGR_LOAD_REQUESTS is a count"));
    // Two workers and four waiting, as on a 2-core machine; warnings for thousands of 503s are noise.
    let mut s = start(
        "load",
        &[
            ("MOGR_WORKERS", "2"),
            ("MOGR_QUEUE", "4"),
            ("RUST_LOG", "error"),
        ],
    );
    let png = std::fs::read(s.root.join("photo.png")).unwrap();
    let pid = s.child.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let tally = rt.block_on(async {
        let http = reqwest::Client::new();
        let next = Arc::new(AtomicUsize::new(0));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let (http, next, tally, base, png) = (
                http.clone(),
                next.clone(),
                tally.clone(),
                s.base.clone(),
                png.clone(),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= requests {
                        break;
                    }
                    let (method, path, kind) = request(i);
                    let mut req = http.request(method, format!("{base}{path}"));
                    if let Kind::Upload = kind {
                        let ops = format!(
                            r#"{{"rules":[{{"fileid":"{i}-small.webp","rule":"imageMogr2/thumbnail/64x/format/webp"}}]}}"#
                        );
                        req = req.body(png.clone()).header("Pic-Operations", ops);
                    }
                    if let Kind::Abandoned = kind {
                        req = req.timeout(Duration::from_millis(3));
                    }
                    let t = Instant::now();
                    let answer = async {
                        let resp = req.send().await?;
                        let status = resp.status().as_u16();
                        let retry = resp.headers().get("retry-after").cloned();
                        Ok::<_, reqwest::Error>((status, retry, resp.bytes().await?))
                    };
                    let (status, retry, body) = match answer.await {
                        Ok(answer) => answer,
                        Err(e) if matches!(kind, Kind::Abandoned) && e.is_timeout() => {
                            tally.lock().unwrap().abandoned += 1;
                            continue;
                        }
                        Err(e) => panic!("{path}: no answer: {e}"),
                    };
                    let took = t.elapsed();
                    let text = || String::from_utf8_lossy(&body).into_owned();
                    match status {
                        200 => match kind {
                            Kind::Convert(format) => {
                                assert_eq!(facts(&body).0, format, "{path}");
                                tally.lock().unwrap().converted.push(took);
                            }
                            Kind::Upload => assert!(text().contains("<UploadResult>"), "{path}"),
                            Kind::Bad(want) => panic!("{path}: 200, want {want}"),
                            _ => {}
                        },
                        503 => {
                            assert_eq!(retry.as_ref().map(|v| v.as_bytes()), Some(&b"1"[..]));
                            assert!(text().contains("<Code>SlowDown</Code>"), "{}", text());
                        }
                        _ => {
                            assert!(
                                matches!(kind, Kind::Bad(want) if want == status),
                                "{path}: {status} {}",
                                text()
                            );
                            assert!(text().contains("<Error>"), "{path}: {}", text());
                        }
                    }
                    let mut t = tally.lock().unwrap();
                    *t.statuses.entry(status).or_default() += 1;
                    t.all.push(took);
                    if i % 250 == 0 {
                        t.rss.push((i, common::status_kib(pid, "VmRSS:")));
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(tally).ok().unwrap().into_inner().unwrap()
    });
    let secs = started.elapsed().as_secs_f64();
    let Tally {
        statuses,
        abandoned,
        mut all,
        mut converted,
        mut rss,
    } = tally;
    all.sort();
    converted.sort();
    rss.sort();
    let (rss_now, peak) = s.memory_kib();
    eprintln!(
        "load: {requests} requests from {CLIENTS} clients in {secs:.1} s ({:.0}/s); statuses {statuses:?}, \
         {abandoned} abandoned by their client; latency p50 {:.1} ms, p99 {:.1} ms; conversions \
         answered 200: {}, p50 {:.1} ms, p99 {:.1} ms; server RSS {rss_now} KiB, peak {peak} KiB; \
         RSS by request {rss:?}",
        requests as f64 / secs,
        quantile(&all, 0.5),
        quantile(&all, 0.99),
        converted.len(),
        quantile(&converted, 0.5),
        quantile(&converted, 0.99),
    );

    assert_eq!(
        statuses.values().sum::<usize>() + abandoned,
        requests,
        "every request has an answer or was given up by its client"
    );
    assert!(
        statuses.keys().all(|s| [200, 400, 404, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        converted.len() >= requests / 40,
        "some conversions get through: {statuses:?}"
    );
    assert!(s.alive(), "the server died");
    // Memory: bounded, and flat once warm (the first quarter), not growing with the requests served.
    let warm = rss
        .iter()
        .find(|(i, _)| *i >= requests / 4)
        .map_or(rss_now, |r| r.1);
    assert!(
        rss_now < warm + 32 * 1024,
        "RSS grew from {warm} KiB to {rss_now} KiB"
    );
    assert!(peak < 256 * 1024, "peak RSS {peak} KiB");
    // and it serves normally afterwards
    let r = client()
        .get(format!(
            "{}/photo.jpg?imageMogr2/thumbnail/100x/format/avif",
            s.base
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}
