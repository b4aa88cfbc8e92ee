//! `mogr-bench cache IMAGE`: what a download-time conversion costs the first time, answered from its
//! kept copy, and revalidated (304) — issue 34 — over a folder as `mogr serve` keeps it and over S3 as
//! the Lambda functions do (the S3-protocol test server on localhost), results written after the
//! answer, and over S3 with the write awaited (a function without its extension): milliseconds in the
//! service, from request to response, and the storage calls each makes (`store::Counting`).

use anyhow::{ensure, Context, Result};
use mogr::service::{Config, Service, CACHE_PREFIX};
use mogr::store::{Counting, DirStore, S3Store, Store};
use mogr_e2e::{S3Server, BUCKET};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const JOBS: [(&str, &str); 2] = [
    (
        "thumbnail/800x avif",
        "imageMogr2/thumbnail/800x/format/avif",
    ),
    ("full size avif", "imageMogr2/format/avif"),
];

pub fn run(input: &Path, runs: u32) -> Result<()> {
    let body = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        println!(
            "{} ({} bytes), {runs} runs each, median ms\n",
            input.display(),
            body.len()
        );
        println!("| store | job | answer | ms | storage calls | bytes | ms ÷ cached |");
        println!("|---|---|---|---:|---|---:|---:|");
        let dir = tempfile::tempdir()?;
        let folder: Arc<dyn Store> = Arc::new(DirStore::new("local", dir.path()));
        let serve = Config {
            detached_cache_writes: true,
            ..Config::default()
        };
        measure("folder (mogr serve)", folder, serve, &body, runs).await?;
        let server = S3Server::start("bench-cache").await;
        server.create_bucket(BUCKET).await;
        let s3: Arc<dyn Store> = Arc::new(S3Store::new(server.client(), BUCKET));
        // on Lambda the extension (bootstrap::hold_for_background) lets the write follow the answer;
        // without it, the answer waits for the write
        for (name, detached) in [("S3 (as on Lambda)", true), ("S3, write awaited", false)] {
            let lambda = Config {
                max_inline_bytes: Some(4_000_000),
                detached_cache_writes: detached,
                ..Config::default()
            };
            measure(name, s3.clone(), lambda, &body, runs).await?;
        }
        Ok(())
    })
}

fn get(uri: &str, etag: Option<&str>) -> http::Request<Vec<u8>> {
    let mut req = http::Request::get(uri);
    if let Some(tag) = etag {
        req = req.header("if-none-match", tag);
    }
    req.body(Vec::new()).expect("a request")
}

fn median(mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

/// The calls as `head photo.jpg, get _mogr/cache/…`.
fn said(calls: &[(&'static str, String)]) -> String {
    let short = |key: &str| match key.strip_prefix(CACHE_PREFIX) {
        Some(tag) => format!("{CACHE_PREFIX}{}…", &tag[..tag.len().min(6)]),
        None => key.to_string(),
    };
    let list: Vec<String> = calls
        .iter()
        .map(|(op, k)| format!("{op} {}", short(k)))
        .collect();
    format!("{}: {}", calls.len(), list.join(", "))
}

async fn measure(
    name: &str,
    inner: Arc<dyn Store>,
    config: Config,
    body: &[u8],
    runs: u32,
) -> Result<()> {
    inner
        .put(
            "photo.jpg",
            body.to_vec(),
            "image/jpeg",
            &Default::default(),
        )
        .await?;
    // nothing kept by an earlier measurement on the same store
    for kept in mogr::store::list_all(&*inner, CACHE_PREFIX).await? {
        inner.delete(&kept.key).await?;
    }
    let store = Arc::new(Counting::new(inner.clone()));
    let service = Service::new(config, store.clone());
    for (job, rule) in JOBS {
        let uri = format!("/photo.jpg?{rule}");
        // first answers: the kept copy removed before each
        let (mut first, mut tag, mut first_calls, mut bytes) =
            (Vec::new(), String::new(), vec![], 0);
        for _ in 0..runs {
            if !tag.is_empty() {
                inner.delete(&format!("{CACHE_PREFIX}{tag}")).await?;
            }
            store.take();
            let t = Instant::now();
            let resp = service.download(get(&uri, None)).await;
            first.push(t.elapsed().as_secs_f64() * 1000.0);
            ensure!(resp.status() == 200, "{name} {job}: {}", resp.status());
            tag = resp.headers()["etag"]
                .to_str()?
                .trim_matches('"')
                .to_string();
            bytes = resp.body().len();
            // a copy written after the answer: its put counts all the same
            service.background().idle().await;
            first_calls = store.take();
        }
        let mut cached = (Vec::new(), vec![]);
        let mut revalidated = (Vec::new(), vec![]);
        for _ in 0..runs {
            for (held, into) in [(None, &mut cached), (Some(tag.as_str()), &mut revalidated)] {
                store.take();
                let t = Instant::now();
                let resp = service.download(get(&uri, held)).await;
                into.0.push(t.elapsed().as_secs_f64() * 1000.0);
                let want = if held.is_some() { 304 } else { 200 };
                ensure!(resp.status() == want, "{name} {job}: {}", resp.status());
                into.1 = store.take();
            }
        }
        let base = median(cached.0.clone());
        for (answer, ms, calls, size) in [
            ("first", first, first_calls, bytes),
            ("kept", cached.0, cached.1, bytes),
            ("304", revalidated.0, revalidated.1, 0),
        ] {
            let m = median(ms);
            println!(
                "| {name} | {job} | {answer} | {m:.1} | {} | {size} | {:.0} |",
                said(&calls),
                m / base
            );
        }
    }
    Ok(())
}
