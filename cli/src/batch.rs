//! `mogr batch`: a Pic-Operations rule set applied to every image under a prefix of an S3 bucket
//! (`--bucket s3://BUCKET/PREFIX`, through the same store as the functions') or of a folder served
//! as a bucket (`--root`), each object stored exactly as `POST /<key>?image_process` stores it (the same
//! `Service::batch_one`, S3 Batch Operations' too: fileids with placeholders, the output marker,
//! outputs never processed again). Rules whose output is already made from the object's current ETag
//! by that rule are skipped, so a second run, or a run after an interrupted one, does only what is
//! left. A failure on one object never stops the others.

use anyhow::{Context, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};
use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};
use mogr::cos::PicOperations;
use mogr::service::batch::{self, Outcome};
use mogr::service::{Config, Service};
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

/// Why a dry run counts an object skipped.
const WOULD: &str = "would be converted (--dry-run)";

/// A failure in plain words, for the printed summary: COS's error codes are for HTTP answers (the
/// report keeps them). Each failure's own message is printed with its key as it happens.
fn failure_kind(code: mogr::Code) -> &'static str {
    use mogr::Code::*;
    match code {
        InvalidArgument | BadDigest | IncompleteBody => {
            "could not be converted: a broken image, or a rule it cannot take (each named above)"
        }
        EntityTooLarge => "larger than the input limit (MOGR_MAX_INPUT_BYTES)",
        AccessDenied => "an output would replace an object that is not mogr's (each named above)",
        NoSuchKey => "gone before it was read",
        BadGateway | GatewayTimeout | SlowDown | ServiceUnavailable | RequestTimeout => {
            "the storage failed or was too slow: run the same command again to retry them"
        }
        _ => "failed inside mogr (each named above)",
    }
}

/// The run's totals.
#[derive(Default)]
pub struct Summary {
    pub objects: u64,
    pub converted: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    /// Failures by COS error code (the report's; the printed summary says [`failure_kind`]).
    pub failed: BTreeMap<mogr::Code, u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Summary {
    fn add(&mut self, done: &Outcome) {
        self.objects += 1;
        match done {
            Outcome::Converted {
                bytes_in, outputs, ..
            } => {
                self.converted += 1;
                self.bytes_in += bytes_in;
                self.bytes_out += outputs.iter().map(|o| o.size).sum::<u64>();
            }
            Outcome::Skipped(why) => *self.skipped.entry(why).or_default() += 1,
            Outcome::Would { .. } => *self.skipped.entry(WOULD).or_default() += 1,
            Outcome::Failed(e) => *self.failed.entry(e.code).or_default() += 1,
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
        let mut kinds = BTreeMap::<&str, u64>::new();
        for (code, n) in &self.failed {
            *kinds.entry(failure_kind(*code)).or_default() += n;
        }
        for (why, n) in kinds {
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
            "failed": (self.failed.iter())
                .map(|(code, n)| (code.as_str(), n))
                .collect::<BTreeMap<_, _>>(),
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

    fn row(&mut self, key: &str, done: &Outcome) -> std::io::Result<()> {
        let row = match done {
            Outcome::Converted {
                bytes_in, outputs, ..
            } => json!({
                "key": key,
                "result": "converted",
                "bytes_in": bytes_in,
                "bytes_out": outputs.iter().map(|o| o.size).sum::<u64>(),
                "outputs": outputs.iter().map(|o| {
                    json!({"key": o.key, "format": o.format, "bytes": o.size})
                }).collect::<Vec<_>>(),
            }),
            Outcome::Skipped(why) => json!({"key": key, "result": "skipped", "reason": why}),
            Outcome::Would { left, .. } => {
                json!({"key": key, "result": "skipped", "reason": WOULD, "rules": left})
            }
            Outcome::Failed(e) => json!({
                "key": key,
                "result": "failed",
                "code": e.code.as_str(),
                "message": e.message,
            }),
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

/// The rule set in `path` as written, and parsed: refused when a fileid would name one output for
/// every object.
fn read_rules(path: &std::path::Path) -> Result<(String, PicOperations)> {
    let json = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the rules in {}", path.display()))?;
    let ops = batch::parse_rules(&json).with_context(|| path.display().to_string())?;
    Ok((json, ops))
}

/// The bucket `s3://BUCKET/…` names, through the functions' own S3 store.
async fn s3_bucket(bucket: &str) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(mogr::bootstrap::s3_store_from_env(bucket).await?))
}

/// Runs the batch; returns the exit code: 0 when every object is done, 1 when some failed, 130 when
/// a signal stopped it early. An error is a bad argument or a bucket that cannot be listed (exit 2).
pub async fn run(b: Batch) -> Result<i32> {
    let ops = Arc::new(read_rules(&b.rules)?.1);
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
            (s3_bucket(bucket).await?, prefix.to_string())
        }
    };
    let service = Arc::new(Service::new(Config::from_env()?, store.clone()));
    let pages = || Pages::new(store.clone(), &prefix, filter.clone());
    let mut tally = Tally {
        summary: Summary::default(),
        report: b.report.as_deref().map(Report::create).transpose()?,
        progress: Progress::new(),
        // the total, for the progress: a second listing that runs ahead of the work
        counter: Some(tokio::spawn(pages().count())),
    };
    let stop = stop_on_signal(tally.progress.bar.clone());
    let started = Instant::now();
    let mut running = JoinSet::new();
    let mut keys = pages();
    let listing = || format!("cannot list {prefix:?}");
    'listing: while let Some(entries) = keys.next().await.with_context(listing)? {
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
                let outcome = service.batch_one(&entry.key, &ops, dry_run).await;
                (entry.key, outcome)
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
    fn new(store: Arc<dyn Store>, prefix: &str, filter: Arc<Filter>) -> Pages {
        Pages {
            store,
            prefix: prefix.to_string(),
            filter,
            after: None,
            last: false,
        }
    }

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
    async fn took(
        &mut self,
        joined: Result<(String, Outcome), tokio::task::JoinError>,
    ) -> Result<()> {
        let (key, done) = joined.unwrap_or_else(|e| {
            let e = mogr::Error::internal(format!("panicked: {e}"));
            (String::new(), Outcome::Failed(e))
        });
        match &done {
            Outcome::Failed(e) => self.progress.say(|| eprintln!("{key}: {}", e.message)),
            Outcome::Would { left, of } => self
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

/// What `mogr batch --s3-batch` needs beyond the batch: the function a job invokes and the role it
/// takes (the stack's `UploadFunctionArn` and `BatchOperationsRoleArn` outputs), and optionally an S3
/// Inventory report's `manifest.json` to use instead of a listing.
pub struct S3Job {
    pub function_arn: String,
    pub role_arn: String,
    pub inventory: Option<String>,
}

/// The most a job's user argument holds.
const USER_ARGUMENT_MAX: usize = 1024;

/// Characters escaped in a CSV manifest's keys: all but letters, digits and `/-_.~` (a `+` would be
/// read back as a space, a `,` would split the line).
const MANIFEST_ESCAPE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `mogr batch --s3-batch`: writes the job's manifest (the images under the prefix, as the batch
/// would take them, unless an S3 Inventory report is given) to `mogr-batch/<token>/manifest.csv` in
/// the bucket, and prints the S3 Batch Operations job that runs the rule set over it with the upload
/// function — the JSON `aws s3control create-job --cli-input-json` takes. Its completion report goes
/// beside the manifest.
pub async fn s3_batch(b: Batch, job: S3Job) -> Result<i32> {
    let (json, _) = read_rules(&b.rules)?;
    // compact, for the job's argument
    let rules = serde_json::from_str::<serde_json::Value>(&json)?.to_string();
    let Source::Bucket(url) = &b.source else {
        anyhow::bail!("--s3-batch runs on a bucket: name it with --bucket s3://BUCKET/PREFIX");
    };
    let (bucket, prefix) = s3_url(url)?;
    let arn: Vec<&str> = job.function_arn.split(':').collect();
    let (partition, account) = match arn[..] {
        ["arn", partition, "lambda", _, account, "function", ..]
            if account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) =>
        {
            (partition, account)
        }
        _ => anyhow::bail!(
            "--function-arn {:?} is not a Lambda function's ARN: give the stack's \
             UploadFunctionArn output (arn:aws:lambda:REGION:ACCOUNT:function:NAME)",
            job.function_arn
        ),
    };
    let store = s3_bucket(bucket).await?;
    let token = format!(
        "{}-{:04x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
        std::process::id() & 0xffff
    );
    let folder = format!("mogr-batch/{token}");
    let (spec, location, objects) = match &job.inventory {
        Some(inventory) => {
            let (inv_bucket, inv_key) = s3_url(inventory)?;
            let head = (s3_bucket(inv_bucket).await?.head(inv_key).await)
                .with_context(|| format!("cannot read {inventory}"))?
                .ok_or_else(|| anyhow::anyhow!("{inventory} does not exist: give the manifest.json of an S3 Inventory report"))?;
            let spec = json!({"Format": "S3InventoryReport_CSV_20161130"});
            let location = json!({
                "ObjectArn": format!("arn:{partition}:s3:::{inv_bucket}/{inv_key}"),
                "ETag": head.etag,
            });
            (spec, location, None)
        }
        None => {
            let filter = Arc::new(Filter::new(&b.include, &b.exclude)?);
            let mut keys = Pages::new(store.clone(), prefix, filter);
            let (mut csv, mut n) = (String::new(), 0u64);
            let listing = || format!("cannot list {prefix:?}");
            while let Some(entries) = keys.next().await.with_context(listing)? {
                for e in entries
                    .iter()
                    .filter(|e| mogr::Format::of_key(&e.key).is_some())
                {
                    let key = percent_encoding::utf8_percent_encode(&e.key, MANIFEST_ESCAPE);
                    csv.push_str(&format!("{bucket},{key}\n"));
                    n += 1;
                }
            }
            if n == 0 {
                anyhow::bail!("no images under {url}: no job to run");
            }
            let key = format!("{folder}/manifest.csv");
            let etag = (store
                .put(&key, csv.into_bytes(), "text/csv", &Default::default())
                .await)
                .with_context(|| format!("cannot write the manifest s3://{bucket}/{key}"))?;
            let spec =
                json!({"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]});
            let location = json!({
                "ObjectArn": format!("arn:{partition}:s3:::{bucket}/{key}"),
                "ETag": etag,
            });
            (spec, location, Some(n))
        }
    };
    let mut invoke = json!({
        "FunctionArn": job.function_arn,
        "InvocationSchemaVersion": "2.0",
    });
    if rules.len() <= USER_ARGUMENT_MAX {
        invoke["UserArguments"] = json!({ "rules": rules });
    } else {
        eprintln!(
            "mogr: the rules are {} characters, more than the {USER_ARGUMENT_MAX} a job's argument \
             holds: the job carries none, and the function runs its BatchRules (set that stack \
             parameter to them)",
            rules.len()
        );
    }
    let spec_json = json!({
        "AccountId": account,
        "ConfirmationRequired": false,
        "Operation": { "LambdaInvoke": invoke },
        "Manifest": { "Spec": spec, "Location": location },
        "Report": {
            "Bucket": format!("arn:{partition}:s3:::{bucket}"),
            "Prefix": folder,
            "Format": "Report_CSV_20180820",
            "Enabled": true,
            "ReportScope": "AllTasks",
        },
        "Priority": 10,
        "RoleArn": job.role_arn,
        "ClientRequestToken": token,
        "Description": format!("mogr batch over {url}"),
    });
    println!("{}", serde_json::to_string_pretty(&spec_json)?);
    if let Some(n) = objects {
        eprintln!("mogr: wrote s3://{bucket}/{folder}/manifest.csv ({n} images)");
    }
    eprintln!(
        "mogr: save this as job.json and start the job with\n  \
         aws s3control create-job --region REGION --cli-input-json file://job.json\n\
         its completion report goes to s3://{bucket}/{folder}/"
    );
    Ok(0)
}
