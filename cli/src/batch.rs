//! `mogr batch`: a Pic-Operations rule set applied to every image under a prefix of an S3 bucket
//! (`--bucket s3://BUCKET/PREFIX`, through the same store as the functions') or of a folder served
//! as a bucket (`--root`), each object stored exactly as `POST /<key>?image_process` stores it (the same
//! `Service::post`: fileids, the output marker, outputs never processed again). Rules whose output is
//! already made from the object's current ETag by that rule are skipped, so a second run, or a run
//! after an interrupted one, does only what is left. A failure on one object never stops the others.
//!
//! A fileid names each object's own output with placeholders, as OSS's batch jobs do: `{dirname}`
//! (the key's folder, `a/b`), `{barename}` (its name without the extension), `{basename}` (with it)
//! and `{ext}`; e.g. `/heif/{dirname}/{barename}.heic` (a fileid with `{dirname}` starts with `/`:
//! a relative one is resolved beside the object, as COS resolves it). A fileid without `{barename}`
//! or `{basename}` would name one output for every object, and is refused.

use anyhow::{Context, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};
use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};
use mogr::cos::PicOperations;
use mogr::service::{Config, Post, Service};
use mogr::store::{self, DirStore, Store};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// What `mogr batch` was asked.
pub struct Batch {
    pub rules: PathBuf,
    pub source: Source,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub report: Option<PathBuf>,
    pub jobs: usize,
    pub dry_run: bool,
}

/// Where the objects are.
pub enum Source {
    /// A folder served as the bucket, and a prefix in it.
    Root { root: PathBuf, prefix: String },
    /// `s3://BUCKET/PREFIX`.
    Bucket(String),
}

/// What became of one object.
enum Done {
    /// Rules run: the source's bytes, and each output's key, format and bytes.
    Converted {
        bytes_in: u64,
        outputs: Vec<(String, String, u64)>,
    },
    /// Every rule's output was current, or the object is not to be converted.
    Skipped(&'static str),
    /// With `--dry-run`: `left` of the `of` rules would run.
    Would {
        left: usize,
        of: usize,
    },
    Failed {
        code: String,
        message: String,
    },
}

/// Why a dry run counts an object skipped.
const WOULD: &str = "would be converted (--dry-run)";

/// The run's totals.
#[derive(Default)]
pub struct Summary {
    pub objects: u64,
    pub converted: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    pub failed: BTreeMap<String, u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Summary {
    fn add(&mut self, done: &Done) {
        self.objects += 1;
        match done {
            Done::Converted { bytes_in, outputs } => {
                self.converted += 1;
                self.bytes_in += bytes_in;
                self.bytes_out += outputs.iter().map(|o| o.2).sum::<u64>();
            }
            Done::Skipped(why) => *self.skipped.entry(why).or_default() += 1,
            Done::Would { .. } => *self.skipped.entry(WOULD).or_default() += 1,
            Done::Failed { code, .. } => *self.failed.entry(code.clone()).or_default() += 1,
        }
    }

    fn failures(&self) -> u64 {
        self.failed.values().sum()
    }

    /// The share of the converted sources' bytes their outputs saved, in per cent.
    fn saved(&self) -> f64 {
        match self.bytes_in {
            0 => 0.0,
            n => 100.0 * (n as f64 - self.bytes_out as f64) / n as f64,
        }
    }

    /// The summary as printed at the end.
    fn text(&self, took: Duration) -> String {
        let skipped: u64 = self.skipped.values().sum();
        let mut text = format!(
            "{} objects: {} converted, {skipped} skipped, {} failed; {} bytes in, {} bytes out ({:.1} % saved); {:.1} s",
            self.objects,
            self.converted,
            self.failures(),
            self.bytes_in,
            self.bytes_out,
            self.saved(),
            took.as_secs_f64()
        );
        for (why, n) in &self.skipped {
            text.push_str(&format!("\n  skipped {n}: {why}"));
        }
        for (why, n) in &self.failed {
            text.push_str(&format!("\n  failed {n}: {why}"));
        }
        text
    }

    /// The summary as `--report` writes it.
    fn json(&self, took: Duration) -> serde_json::Value {
        json!({
            "objects": self.objects,
            "converted": self.converted,
            "skipped": self.skipped,
            "failed": self.failed,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "saved_percent": (self.saved() * 10.0).round() / 10.0,
            "seconds": (took.as_secs_f64() * 10.0).round() / 10.0,
        })
    }
}

/// `--report FILE.json`, written as the run goes (a row per object as it is done, so a million rows
/// are never held): `{"objects": [rows…], "summary": {…}}`.
struct Report {
    out: std::io::BufWriter<std::fs::File>,
    rows: u64,
}

impl Report {
    fn create(path: &std::path::Path) -> Result<Report> {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write the report {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        out.write_all(b"{\"objects\": [")?;
        Ok(Report { out, rows: 0 })
    }

    fn row(&mut self, key: &str, done: &Done) -> std::io::Result<()> {
        let row = match done {
            Done::Converted { bytes_in, outputs } => json!({
                "key": key,
                "result": "converted",
                "bytes_in": bytes_in,
                "bytes_out": outputs.iter().map(|o| o.2).sum::<u64>(),
                "outputs": outputs.iter().map(|(key, format, bytes)| {
                    json!({"key": key, "format": format, "bytes": bytes})
                }).collect::<Vec<_>>(),
            }),
            Done::Skipped(why) => json!({"key": key, "result": "skipped", "reason": why}),
            Done::Would { left, .. } => {
                json!({"key": key, "result": "skipped", "reason": WOULD, "rules": left})
            }
            Done::Failed { code, message } => {
                json!({"key": key, "result": "failed", "code": code, "message": message})
            }
        };
        let sep: &[u8] = if self.rows == 0 { b"\n" } else { b",\n" };
        self.rows += 1;
        self.out.write_all(sep)?;
        serde_json::to_writer(&mut self.out, &row)?;
        Ok(())
    }

    fn finish(mut self, summary: &Summary, took: Duration) -> std::io::Result<()> {
        self.out.write_all(b"\n], \"summary\": ")?;
        serde_json::to_writer_pretty(&mut self.out, &summary.json(took))?;
        self.out.write_all(b"}\n")?;
        self.out.flush()
    }
}

/// Which keys the batch takes: those matching any `--include` (every key when there is none) and no
/// `--exclude`. A pattern is matched against the whole key; `*` matches any run of characters, `/`
/// included (as the AWS CLI's filters do), `?` one, `[abc]` one of a set, `{jpg,png}` either.
struct Filter {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl Filter {
    fn new(include: &[String], exclude: &[String]) -> Result<Filter> {
        let set = |patterns: &[String], flag: &str| -> Result<GlobSet> {
            let mut set = GlobSetBuilder::new();
            for p in patterns {
                set.add(Glob::new(p).map_err(|e| {
                    anyhow::anyhow!("{flag} {p:?} is not a pattern ({e}): e.g. '*.jpg', 'raw/*'")
                })?);
            }
            Ok(set.build()?)
        };
        Ok(Filter {
            include: (!include.is_empty())
                .then(|| set(include, "--include"))
                .transpose()?,
            exclude: set(exclude, "--exclude")?,
        })
    }

    fn takes(&self, key: &str) -> bool {
        self.include.as_ref().is_none_or(|s| s.is_match(key)) && !self.exclude.is_match(key)
    }
}

/// `s3://BUCKET/PREFIX` as (bucket, prefix).
fn s3_url(url: &str) -> Result<(&str, &str)> {
    let (bucket, prefix) = url
        .strip_prefix("s3://")
        .map(|rest| rest.split_once('/').unwrap_or((rest, "")))
        .filter(|(bucket, _)| !bucket.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--bucket {url:?} is not an S3 URL: write s3://BUCKET or s3://BUCKET/PREFIX"
            )
        })?;
    Ok((bucket, prefix))
}

/// The rule set in `path`, refused when a fileid would name one output for every object.
fn read_rules(path: &std::path::Path) -> Result<PicOperations> {
    let json = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the rules in {}", path.display()))?;
    let ops = PicOperations::parse(&json).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a Pic-Operations rule set ({}): write it as the header's JSON, \
             {{\"rules\":[{{\"fileid\":\"/heif/photo.heic\",\"rule\":\"imageMogr2/format/heif\"}}]}}",
            path.display(),
            e.message
        )
    })?;
    if ops.rules.is_empty() {
        anyhow::bail!("{} has no rules: nothing to do", path.display());
    }
    for r in &ops.rules {
        if !(r.fileid.contains("{barename}") || r.fileid.contains("{basename}")) {
            anyhow::bail!(
                "fileid {:?} names one output for every object: name each object's own with \
                 {{barename}} or {{basename}}, e.g. \"/heif/{{dirname}}/{{barename}}.heic\"",
                r.fileid
            );
        }
    }
    Ok(ops)
}

/// Runs the batch; returns the exit code: 0 when every object is done, 1 when some failed, 130 when
/// a signal stopped it early. An error is a bad argument or a bucket that cannot be listed (exit 2).
pub async fn run(b: Batch) -> Result<i32> {
    let ops = Arc::new(read_rules(&b.rules)?);
    let filter = Arc::new(Filter::new(&b.include, &b.exclude)?);
    let (store, prefix): (Arc<dyn Store>, String) = match &b.source {
        Source::Root { root, prefix } => {
            if !root.is_dir() {
                anyhow::bail!(
                    "{} is not a folder: name the folder with --root",
                    root.display()
                );
            }
            (
                Arc::new(DirStore::new("local", root.clone())),
                prefix.clone(),
            )
        }
        Source::Bucket(url) => {
            let (bucket, prefix) = s3_url(url)?;
            let store = mogr::bootstrap::s3_store_from_env(bucket)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            (Arc::new(store), prefix.to_string())
        }
    };
    let service = Arc::new(Service::new(Config::from_env()?, store.clone()));
    let pages = |store: &Arc<dyn Store>| Pages {
        store: store.clone(),
        prefix: prefix.clone(),
        filter: filter.clone(),
        after: None,
        last: false,
    };
    let mut tally = Tally {
        summary: Summary::default(),
        report: b.report.as_deref().map(Report::create).transpose()?,
        progress: Progress::new(),
        // the total, for the progress: a second listing that runs ahead of the work
        counter: Some(tokio::spawn(pages(&store).count())),
    };
    let stop = stop_on_signal(tally.progress.bar.clone());
    let started = Instant::now();
    let mut running = JoinSet::new();
    let mut keys = pages(&store);
    'listing: while let Some(entries) = keys
        .next()
        .await
        .map_err(|e| anyhow::anyhow!("cannot list {prefix:?}: {}", e.message))?
    {
        for entry in entries {
            while running.len() >= b.jobs.max(1) {
                if let Some(joined) = running.join_next().await {
                    tally.took(joined).await?;
                }
            }
            if stop.load(Ordering::SeqCst) {
                break 'listing;
            }
            tally.progress.listed();
            let (service, ops, dry_run) = (service.clone(), ops.clone(), b.dry_run);
            running.spawn(async move {
                let key = entry.key.clone();
                (key, one(&service, &ops, entry, dry_run).await)
            });
        }
    }
    while let Some(joined) = running.join_next().await {
        tally.took(joined).await?;
    }
    let took = started.elapsed();
    tally.progress.bar.finish_and_clear();
    let summary = tally.summary;
    if let Some(report) = tally.report {
        report
            .finish(&summary, took)
            .context("cannot write the report")?;
    }
    println!("{}", summary.text(took));
    if stop.load(Ordering::SeqCst) {
        eprintln!("mogr: stopped early: run the same command again to do what is left");
        return Ok(130);
    }
    Ok(if summary.failures() > 0 { 1 } else { 0 })
}

/// The keys to look at, a store page (1000 keys) at a time: mogr's own and those the filter leaves
/// out are dropped.
struct Pages {
    store: Arc<dyn Store>,
    prefix: String,
    filter: Arc<Filter>,
    after: Option<String>,
    last: bool,
}

impl Pages {
    async fn next(&mut self) -> mogr::Result<Option<Vec<store::Entry>>> {
        if self.last {
            return Ok(None);
        }
        let page = (self.store)
            .list(&self.prefix, self.after.as_deref(), 1000)
            .await?;
        self.after = page.entries.last().map(|e| e.key.clone());
        self.last = !page.truncated || self.after.is_none();
        let mut entries = page.entries;
        entries.retain(|e| !store::is_reserved(&e.key) && self.filter.takes(&e.key));
        Ok(Some(entries))
    }

    async fn count(mut self) -> mogr::Result<u64> {
        let mut n = 0;
        while let Some(entries) = self.next().await? {
            n += entries.len() as u64;
        }
        Ok(n)
    }
}

/// What the run has done so far: the summary, the report's rows, the progress.
struct Tally {
    summary: Summary,
    report: Option<Report>,
    progress: Progress,
    counter: Option<tokio::task::JoinHandle<mogr::Result<u64>>>,
}

impl Tally {
    async fn took(&mut self, joined: Result<(String, Done), tokio::task::JoinError>) -> Result<()> {
        let (key, done) = joined.unwrap_or_else(|e| {
            let message = format!("panicked: {e}");
            (
                String::new(),
                Done::Failed {
                    code: "Panicked".into(),
                    message,
                },
            )
        });
        match &done {
            Done::Failed { message, .. } => self.progress.say(|| eprintln!("{key}: {message}")),
            Done::Would { left, of } => self
                .progress
                .say(|| println!("would convert {key} ({left} of {of} rules)")),
            _ => {}
        }
        self.summary.add(&done);
        if let Some(report) = &mut self.report {
            report.row(&key, &done).context("cannot write the report")?;
        }
        if let Some(counter) = self.counter.take_if(|c| c.is_finished()) {
            if let Ok(Ok(total)) = counter.await {
                self.progress.counted(total);
            }
        }
        self.progress.done(&self.summary);
        Ok(())
    }
}

/// Progress on standard error: a bar on a terminal (objects done of all, rate, time left, bytes in
/// → out and % saved so far); otherwise a line at every 5 %, once the objects are counted.
struct Progress {
    /// Hidden when standard error is not a terminal.
    bar: ProgressBar,
    total: Option<u64>,
    listed: u64,
    /// The last 5 % step printed, off a terminal.
    step: u64,
    started: Instant,
}

impl Progress {
    fn new() -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            let style = ProgressStyle::with_template(
                "{spinner} [{wide_bar}] {pos}/{len} objects, {eta} left · {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> ");
            let bar = ProgressBar::no_length().with_style(style);
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            total: None,
            listed: 0,
            step: 0,
            started: Instant::now(),
        }
    }

    /// One more key listed: the bar's length until the objects are counted.
    fn listed(&mut self) {
        self.listed += 1;
        if self.total.is_none() {
            self.bar.set_length(self.listed);
        }
    }

    fn counted(&mut self, total: u64) {
        self.total = Some(total);
        self.bar.set_length(total.max(self.listed));
    }

    fn done(&mut self, summary: &Summary) {
        let rate = summary.objects as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let so_far = format!(
            "{rate:.1}/s · {} → {} ({:.1} % saved)",
            HumanBytes(summary.bytes_in),
            HumanBytes(summary.bytes_out),
            summary.saved()
        );
        if !self.bar.is_hidden() {
            self.bar.set_position(summary.objects);
            self.bar.set_message(so_far);
            return;
        }
        let Some(total) = self.total.filter(|t| *t > 0) else {
            return;
        };
        let step = (summary.objects.min(total) * 20 / total).min(20);
        if step > self.step {
            self.step = step;
            let left = total.saturating_sub(summary.objects) as f64 / rate.max(1e-9);
            eprintln!(
                "{} % ({} of {total} objects) · {so_far} · {} left",
                step * 5,
                summary.objects,
                HumanDuration(Duration::from_secs_f64(left.min(1e9)))
            );
        }
    }

    /// Runs `print` with the bar out of the way.
    fn say(&self, print: impl FnOnce()) {
        self.bar.suspend(print)
    }
}

/// A flag set on the first Ctrl-C (or SIGTERM): no new object starts, those being converted finish.
/// A second one ends the process at once; nothing is half-written either way (each output is stored
/// whole or not at all), and a run started again does what is left.
fn stop_on_signal(bar: ProgressBar) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        signal().await;
        flag.store(true, Ordering::SeqCst);
        bar.suspend(|| {
            eprintln!(
                "mogr: stopping: the objects being converted finish and no new one starts \
                 (again to quit at once; nothing is left half-written either way)"
            )
        });
        signal().await;
        bar.suspend(|| eprintln!("mogr: stopped: run the same command again to do what is left"));
        std::process::exit(130);
    });
    stop
}

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// One object: skipped when it is not an image or one of mogr's outputs, or when every rule's output
/// is current; otherwise its remaining rules run as a POST would run them.
async fn one(service: &Service, ops: &PicOperations, entry: store::Entry, dry_run: bool) -> Done {
    let key = entry.key;
    if !crate::index::is_image(&key) {
        return Done::Skipped("not an image (by its extension)");
    }
    let ops = &for_object(ops, &key);
    let head = match service.bucket().head(&key).await {
        Ok(Some(h)) => h,
        Ok(None) => return Done::Skipped("deleted while the batch ran"),
        Err(e) => return failed(e),
    };
    if store::is_output(&head.metadata) {
        return Done::Skipped("one of mogr's outputs");
    }
    let done = match service.rules_done(&key, &head.etag, ops).await {
        Ok(d) => d,
        Err(e) => return failed(e),
    };
    let left: Vec<_> = (ops.rules.iter().zip(&done))
        .filter(|(_, done)| !**done)
        .map(|(r, _)| r.clone())
        .collect();
    if left.is_empty() {
        return Done::Skipped("every output is made already");
    }
    if dry_run {
        return Done::Would {
            left: left.len(),
            of: done.len(),
        };
    }
    let post = Post {
        key: key.clone(),
        ops: PicOperations {
            is_pic_info: 0,
            rules: left,
        },
    };
    match service.post(post).await {
        Ok(report) => Done::Converted {
            bytes_in: head.size,
            outputs: (report.results.into_iter())
                .map(|r| (r.key, r.format, r.size))
                .collect(),
        },
        Err(e) => failed(e),
    }
}

/// A failure: its code for the summary (which stays short), its message for standard error.
fn failed(e: mogr::Error) -> Done {
    Done::Failed {
        code: e.code.as_str().to_string(),
        message: e.message,
    }
}

/// `ops` with each fileid's placeholders filled in for `key`.
fn for_object(ops: &PicOperations, key: &str) -> PicOperations {
    let (dirname, basename) = key.rsplit_once('/').unwrap_or(("", key));
    let (barename, ext) = basename.rsplit_once('.').unwrap_or((basename, ""));
    let mut ops = ops.clone();
    for r in &mut ops.rules {
        let filled = (r.fileid.replace("{dirname}", dirname))
            .replace("{barename}", barename)
            .replace("{basename}", basename)
            .replace("{ext}", ext);
        // a key at the top has no folder: `/heif/{dirname}/x` is `/heif/x`
        let mut fileid = String::with_capacity(filled.len());
        for c in filled.chars() {
            if !(c == '/' && fileid.ends_with('/')) {
                fileid.push(c);
            }
        }
        r.fileid = fileid;
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_name_each_objects_output() {
        let ops = PicOperations::parse(
            r#"{"rules":[{"fileid":"/heif/{dirname}/{barename}.heic","rule":"imageMogr2/format/heif"},{"fileid":"{basename}.{ext}.webp","rule":"imageMogr2/format/webp"}]}"#,
        )
        .unwrap();
        let at = |key: &str| -> Vec<String> {
            for_object(&ops, key)
                .rules
                .into_iter()
                .map(|r| r.fileid)
                .collect()
        };
        assert_eq!(at("a/b/c.jpg"), ["/heif/a/b/c.heic", "c.jpg.jpg.webp"]);
        assert_eq!(at("top.png"), ["/heif/top.heic", "top.png.png.webp"]);
    }
}
