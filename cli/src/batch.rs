//! `mogr batch`: a Pic-Operations rule set applied to every image under a prefix of a folder served
//! as a bucket, each object stored exactly as `POST /<key>?image_process` stores it (the same
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
use mogr::cos::PicOperations;
use mogr::service::{Config, Post, Service};
use mogr::store::{self, DirStore, Store};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;

/// What `mogr batch` was asked.
pub struct Batch {
    pub rules: PathBuf,
    pub root: PathBuf,
    pub prefix: String,
    pub jobs: usize,
    pub dry_run: bool,
}

/// What became of one object.
enum Done {
    /// Rules run: the source's bytes and the outputs'.
    Converted {
        bytes_in: u64,
        bytes_out: u64,
    },
    /// Every rule's output was current (or, with `--dry-run`, would have been made: `would`).
    Skipped(&'static str),
    Failed(String),
}

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
    fn add(&mut self, done: Done) {
        self.objects += 1;
        match done {
            Done::Converted {
                bytes_in,
                bytes_out,
            } => {
                self.converted += 1;
                self.bytes_in += bytes_in;
                self.bytes_out += bytes_out;
            }
            Done::Skipped(why) => *self.skipped.entry(why).or_default() += 1,
            Done::Failed(why) => *self.failed.entry(why).or_default() += 1,
        }
    }

    fn failures(&self) -> u64 {
        self.failed.values().sum()
    }

    /// The summary as printed at the end.
    fn text(&self, took: std::time::Duration) -> String {
        let skipped: u64 = self.skipped.values().sum();
        let saved = match self.bytes_in {
            0 => 0.0,
            n => 100.0 * (n as f64 - self.bytes_out as f64) / n as f64,
        };
        let mut text = format!(
            "{} objects: {} converted, {skipped} skipped, {} failed; {} bytes in, {} bytes out ({saved:.1} % saved); {:.1} s",
            self.objects,
            self.converted,
            self.failures(),
            self.bytes_in,
            self.bytes_out,
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
}

/// Runs the batch; returns the exit code: 0 when every object is done, 1 when some failed.
pub async fn run(b: Batch) -> Result<i32> {
    let json = std::fs::read_to_string(&b.rules)
        .with_context(|| format!("cannot read the rules in {}", b.rules.display()))?;
    let ops = PicOperations::parse(&json).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a Pic-Operations rule set ({}): write it as the header's JSON, \
             {{\"rules\":[{{\"fileid\":\"/heif/photo.heic\",\"rule\":\"imageMogr2/format/heif\"}}]}}",
            b.rules.display(),
            e.message
        )
    })?;
    if ops.rules.is_empty() {
        anyhow::bail!("{} has no rules: nothing to do", b.rules.display());
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
    if !b.root.is_dir() {
        anyhow::bail!(
            "{} is not a folder: name the folder with --root",
            b.root.display()
        );
    }
    let store: Arc<dyn Store> = Arc::new(DirStore::new("local", b.root.clone()));
    let service = Arc::new(Service::new(Config::from_env()?, store.clone()));
    let ops = Arc::new(ops);
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut running = JoinSet::new();
    let mut after: Option<String> = None;
    // one page of keys at a time: a bucket of a million keys is never held at once
    loop {
        let page = store
            .list(&b.prefix, after.as_deref(), 1000)
            .await
            .map_err(|e| anyhow::anyhow!("cannot list {:?}: {}", b.prefix, e.message))?;
        let next = (page.truncated)
            .then(|| page.entries.last().map(|e| e.key.clone()))
            .flatten();
        for entry in page.entries {
            if store::is_reserved(&entry.key) {
                continue;
            }
            while running.len() >= b.jobs.max(1) {
                if let Some(done) = running.join_next().await {
                    summary.add(done.unwrap_or_else(|e| Done::Failed(format!("panicked: {e}"))));
                }
            }
            let (service, ops, dry_run) = (service.clone(), ops.clone(), b.dry_run);
            running.spawn(async move { one(&service, &ops, entry, dry_run).await });
        }
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    while let Some(done) = running.join_next().await {
        summary.add(done.unwrap_or_else(|e| Done::Failed(format!("panicked: {e}"))));
    }
    println!("{}", summary.text(started.elapsed()));
    Ok(if summary.failures() > 0 { 1 } else { 0 })
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
        Err(e) => return failed(&key, e),
    };
    if store::is_output(&head.metadata) {
        return Done::Skipped("one of mogr's outputs");
    }
    let done = match service.rules_done(&key, &head.etag, ops).await {
        Ok(d) => d,
        Err(e) => return failed(&key, e),
    };
    let left: Vec<_> = (ops.rules.iter().zip(&done))
        .filter(|(_, done)| !**done)
        .map(|(r, _)| r.clone())
        .collect();
    if left.is_empty() {
        return Done::Skipped("every output is made already");
    }
    if dry_run {
        println!(
            "would convert {key} ({} of {} rules)",
            left.len(),
            done.len()
        );
        return Done::Skipped("would be converted (--dry-run)");
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
            bytes_out: report.results.iter().map(|r| r.size).sum(),
        },
        Err(e) => failed(&key, e),
    }
}

/// A failure on `key`: its message on standard error, its code for the summary (which stays short).
fn failed(key: &str, e: mogr::Error) -> Done {
    eprintln!("{key}: {}", e.message);
    Done::Failed(e.code.as_str().to_string())
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
