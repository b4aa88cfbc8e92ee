//! A rule set over stored objects one at a time, as `mogr batch` runs it over a listing and S3 Batch
//! Operations over a manifest: each object through [`Service::post`] (the fileids, the output
//! marker, outputs never processed again) with only the rules whose output is not already made from
//! the object's current ETag by that rule, so a run repeated or resumed does only what is left.
//!
//! A fileid names each object's own output with placeholders, as OSS's batch jobs do: `{dirname}`
//! (the key's folder, `a/b`), `{barename}` (its name without the extension), `{basename}` (with it)
//! and `{ext}`; e.g. `/heif/{dirname}/{barename}.heic` (a relative fileid is resolved beside the
//! object, as COS resolves it). A fileid without `{barename}` or `{basename}` would name one output
//! for every object, and is refused.

use super::record::{log_event, Record};
use super::{Post, Service};
use crate::cos::{PicOperations, ProcessResult};
use crate::store;
use crate::{Error, Format, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Instant;

/// What became of one object.
#[derive(Debug)]
pub enum Outcome {
    /// Rules run: the source's bytes, each output stored, and the request record of the work.
    Converted {
        bytes_in: u64,
        outputs: Vec<ProcessResult>,
        record: Record,
    },
    /// Nothing to do, and why: every output is current, or the object is not one to convert.
    Skipped(&'static str),
    /// A dry run: `left` of the `of` rules would run.
    Would {
        left: usize,
        of: usize,
    },
    Failed(Error),
}

/// The rule set `json` (Pic-Operations' JSON, as the header carries it), checked for a batch: some
/// rules, each fileid naming each object's own output.
pub fn parse_rules(json: &str) -> Result<PicOperations> {
    let ops = PicOperations::parse(json).map_err(|e| {
        Error::invalid(format!(
            "the rules are not a Pic-Operations rule set ({}): write them as the header's JSON, \
             {{\"rules\":[{{\"fileid\":\"/heif/{{dirname}}/{{barename}}.heic\",\"rule\":\"imageMogr2/format/heif\"}}]}}",
            e.message
        ))
    })?;
    if ops.rules.is_empty() {
        return Err(Error::invalid("the rule set has no rules: nothing to do"));
    }
    for r in &ops.rules {
        if !(r.fileid.contains("{barename}") || r.fileid.contains("{basename}")) {
            return Err(Error::invalid(format!(
                "fileid {:?} names one output for every object: name each object's own with \
                 {{barename}} or {{basename}}, e.g. \"/heif/{{dirname}}/{{barename}}.heic\"",
                r.fileid
            )));
        }
    }
    Ok(ops)
}

/// `ops` with each fileid's placeholders filled in for `key`.
pub fn for_object(ops: &PicOperations, key: &str) -> PicOperations {
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

impl Service {
    /// Runs `ops` (placeholders unfilled) over the object `key`: skipped when it is not an image or
    /// is one of mogr's outputs, or when every rule's output is current; otherwise its remaining
    /// rules run as a POST would run them (with `dry_run`, only counted).
    pub async fn batch_one(&self, key: &str, ops: &PicOperations, dry_run: bool) -> Outcome {
        if Format::of_key(key).is_none() {
            return Outcome::Skipped("not an image (by its extension)");
        }
        let ops = &for_object(ops, key);
        let head = match self.bucket().head(key).await {
            Ok(Some(h)) => h,
            Ok(None) => return Outcome::Skipped("deleted while the batch ran"),
            Err(e) => return Outcome::Failed(e),
        };
        if store::is_output(&head.metadata) {
            return Outcome::Skipped("one of mogr's outputs");
        }
        let done = match self.rules_done(key, &head.etag, ops).await {
            Ok(d) => d,
            Err(e) => return Outcome::Failed(e),
        };
        let left: Vec<_> = (ops.rules.iter().zip(&done))
            .filter(|(_, done)| !**done)
            .map(|(r, _)| r.clone())
            .collect();
        if left.is_empty() {
            return Outcome::Skipped("every output is made already");
        }
        if dry_run {
            return Outcome::Would {
                left: left.len(),
                of: done.len(),
            };
        }
        let post = Post {
            key: key.to_string(),
            ops: PicOperations {
                is_pic_info: 0,
                rules: left,
            },
        };
        match self.post(post).await {
            Ok(report) => Outcome::Converted {
                bytes_in: head.size,
                outputs: report.results,
                record: report.record,
            },
            Err(e) => Outcome::Failed(e),
        }
    }
}

/// An S3 Batch Operations invocation (`LambdaInvoke`), schema 1.0 or 2.0.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchInvocation {
    pub invocation_schema_version: String,
    pub invocation_id: String,
    pub job: BatchJob,
    pub tasks: Vec<BatchTask>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchJob {
    pub id: String,
    /// Schema 2.0 only: the job's `UserArguments`; `rules` holds a rule set.
    #[serde(default)]
    pub user_arguments: Option<HashMap<String, String>>,
}

/// One object of the manifest. Its key is URL-encoded, as in S3's event notifications.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchTask {
    pub task_id: String,
    pub s3_key: String,
    #[serde(default)]
    pub s3_version_id: Option<String>,
    /// Schema 1.0: `arn:aws:s3:::BUCKET`.
    #[serde(default)]
    pub s3_bucket_arn: Option<String>,
    /// Schema 2.0.
    #[serde(default)]
    pub s3_bucket: Option<String>,
}

/// The answer S3 Batch Operations reads: one result per task.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    pub invocation_schema_version: String,
    pub treat_missing_keys_as: &'static str,
    pub invocation_id: String,
    pub results: Vec<TaskResult>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub task_id: String,
    /// `Succeeded`, `TemporaryFailure` (S3 retries the task) or `PermanentFailure`.
    pub result_code: &'static str,
    /// Into the job's completion report.
    pub result_string: String,
}

impl BatchTask {
    /// The task's bucket, from either schema's field.
    pub fn bucket(&self) -> &str {
        match (&self.s3_bucket, &self.s3_bucket_arn) {
            (Some(b), _) => b,
            (None, Some(arn)) => arn.rsplit(':').next().unwrap_or(arn),
            (None, None) => "",
        }
    }
}

impl BatchInvocation {
    /// The rule set the job runs: its `rules` user argument (schema 2.0), else `default` (the
    /// function's `MOGR_BATCH_RULES`).
    pub fn rules(&self, default: Option<&PicOperations>) -> Result<PicOperations> {
        let given = (self.job.user_arguments.as_ref()).and_then(|a| a.get("rules"));
        match (given, default) {
            (Some(json), _) => parse_rules(json),
            (None, Some(ops)) => Ok(ops.clone()),
            (None, None) => Err(Error::invalid(
                "no rules for this job: give it the user argument \"rules\" (schema 2.0) or set \
                 the function's MOGR_BATCH_RULES (the template's BatchRules)",
            )),
        }
    }
}

impl TaskResult {
    /// The result of `outcome` for `task`: a refusal (4xx: not an image, a bad rule) fails for good,
    /// anything else (S3 unreachable, a 5xx, no memory for it now) may succeed when S3 retries it.
    pub fn of(task: &BatchTask, outcome: &Outcome) -> TaskResult {
        let (result_code, result_string) = match outcome {
            Outcome::Converted {
                bytes_in, outputs, ..
            } => {
                let out: Vec<String> = (outputs.iter())
                    .map(|o| format!("{} ({} bytes)", o.key, o.size))
                    .collect();
                let text = format!("converted ({bytes_in} bytes): {}", out.join(", "));
                ("Succeeded", text)
            }
            Outcome::Skipped(why) => ("Succeeded", format!("skipped: {why}")),
            Outcome::Would { left, of } => ("Succeeded", format!("would run {left} of {of} rules")),
            Outcome::Failed(e) if e.is_client_error() => (
                "PermanentFailure",
                format!("{}: {}", e.code.as_str(), e.message),
            ),
            Outcome::Failed(e) => (
                "TemporaryFailure",
                format!("{}: {}", e.code.as_str(), e.message),
            ),
        };
        TaskResult {
            task_id: task.task_id.clone(),
            result_code,
            result_string,
        }
    }
}

impl Service {
    /// Runs an S3 Batch Operations invocation's tasks over this service's bucket, with the job's
    /// rules (or the function's, [`Config::batch_rules`](super::Config::batch_rules)); one
    /// access-log line (and its metrics) per task, entry `upload`, route `batch`.
    pub async fn s3_batch(&self, invocation: &BatchInvocation, request_id: &str) -> BatchResponse {
        let rules = invocation.rules(self.config.batch_rules.as_ref());
        let mut results = Vec::with_capacity(invocation.tasks.len());
        for task in &invocation.tasks {
            let started = Instant::now();
            let key = store::key_from_event(&task.s3_key);
            let outcome = match (&rules, &key) {
                (Err(e), _) | (_, Err(e)) => Outcome::Failed(e.clone()),
                _ if task.bucket() != self.bucket().name() => {
                    Outcome::Failed(Error::invalid(format!(
                    "the task's bucket {:?} is not the one this function serves ({:?}): give the \
                     job a manifest of {:?}'s objects, or run it with that bucket's stack",
                    task.bucket(),
                    self.bucket().name(),
                    self.bucket().name()
                )))
                }
                (Ok(ops), Ok(key)) => self.batch_one(key, ops, false).await,
            };
            let done = match &outcome {
                Outcome::Failed(e) => Err(e),
                Outcome::Converted { record, .. } => Ok(Some(record)),
                _ => Ok(None),
            };
            let key = key.as_deref().unwrap_or(&task.s3_key);
            log_event(request_id, "batch", "LambdaInvoke", key, started, done);
            results.push(TaskResult::of(task, &outcome));
        }
        BatchResponse {
            invocation_schema_version: invocation.invocation_schema_version.clone(),
            treat_missing_keys_as: "PermanentFailure",
            invocation_id: invocation.invocation_id.clone(),
            results,
        }
    }
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

    #[test]
    fn both_schemas_name_the_bucket_and_the_rules() {
        let one: BatchInvocation = serde_json::from_str(
            r#"{"invocationSchemaVersion":"1.0","invocationId":"i","job":{"id":"j"},"tasks":[{"taskId":"t","s3Key":"a+b.jpg","s3VersionId":null,"s3BucketArn":"arn:aws:s3:::photos"}]}"#,
        )
        .unwrap();
        assert_eq!(one.tasks[0].bucket(), "photos");
        assert!(one
            .rules(None)
            .unwrap_err()
            .message
            .contains("MOGR_BATCH_RULES"));
        let rules = r#"{"rules":[{"fileid":"{barename}.heic","rule":"imageMogr2/format/heif"}]}"#;
        let default = parse_rules(rules).unwrap();
        assert_eq!(one.rules(Some(&default)).unwrap().rules.len(), 1);
        let two: BatchInvocation = serde_json::from_value(serde_json::json!({
            "invocationSchemaVersion": "2.0", "invocationId": "i",
            "job": {"id": "j", "userArguments": {"rules": rules}},
            "tasks": [{"taskId": "t", "s3Key": "a.jpg", "s3VersionId": null, "s3Bucket": "photos"}]
        }))
        .unwrap();
        assert_eq!(two.tasks[0].bucket(), "photos");
        assert_eq!(two.rules(None).unwrap().rules[0].fileid, "{barename}.heic");
        let one_name = r#"{"rules":[{"fileid":"all.heic","rule":"imageMogr2/format/heif"}]}"#;
        assert!(parse_rules(one_name).is_err());
    }
}
