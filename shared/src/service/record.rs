//! [`Record`]: what one request did — the image it read, what it made of it, where its time went —
//! for the answer's `Server-Timing` and `X-Mogr-Bytes`, the access log's line and the metrics. The
//! operations fill it in; the HTTP layer writes it out.

use crate::codec::Probe;
use crate::convert::Output;
use crate::timing::Timings;
use crate::{Error, Format};
use std::time::{Duration, Instant};

/// What one request did with images. Empty for a request that read or made none (the object itself,
/// a listing, a plain PUT).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// The bytes of the source the request read (an image or not).
    pub bytes_in: Option<u64>,
    /// The source image, as its header describes it.
    pub input: Option<Image>,
    /// Every output made, in rule order (a kept result answered again is not one).
    pub outputs: Vec<Image>,
    /// `fetch`, `cache`, `queue`, `decode`, `transform`, `encode`, `store`: see [`Timings`].
    pub timings: Timings,
}

/// An image read or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub format: Format,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    /// The quality an output was written with (lossy formats only).
    pub quality: Option<u8>,
    /// `quality/auto`'s full-size tries (0 without a search).
    pub tries: u32,
}

impl Image {
    /// The source of `bytes` whose header is `probe`.
    pub fn source(probe: &Probe, bytes: usize) -> Image {
        Image {
            format: probe.format,
            bytes: bytes as u64,
            width: probe.width,
            height: probe.height,
            quality: None,
            tries: 0,
        }
    }

    /// An output.
    pub fn made(out: &Output) -> Image {
        Image {
            format: out.format,
            bytes: out.bytes.len() as u64,
            width: out.width,
            height: out.height,
            quality: out.stored_quality(),
            tries: out.tries,
        }
    }

    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

impl Record {
    /// The record of work done between reading its source (`fetch`, when the request read it) and
    /// storing its outputs (`store`): those stages around the work's own.
    pub fn stored(mut self, fetch: Option<Duration>, store: Duration) -> Record {
        if let Some(fetch) = fetch {
            self.timings.before("fetch", fetch);
        }
        self.timings.add("store", store);
        self
    }

    /// The bytes of every output.
    pub fn bytes_out(&self) -> u64 {
        self.outputs.iter().map(|o| o.bytes).sum()
    }

    /// The outputs' formats, `heif,webp` (empty without outputs).
    pub fn formats_out(&self) -> String {
        self.join(|o| o.format.name().to_string())
    }

    /// The outputs' qualities, `62,80` (`-` for a lossless one).
    pub fn qualities(&self) -> String {
        self.join(|o| o.quality.map_or("-".into(), |q| q.to_string()))
    }

    /// The outputs' `quality/auto` tries, `3,0`.
    pub fn tries(&self) -> String {
        self.join(|o| o.tries.to_string())
    }

    fn join(&self, f: impl Fn(&Image) -> String) -> String {
        self.outputs.iter().map(f).collect::<Vec<_>>().join(",")
    }
}

/// One request as the access log and the metrics see it: where it came in, what it asked, how it
/// ended, and its [`Record`]. The key and the rule are the client's text, escaped by whoever made the
/// line (no control character reaches the log) with signatures redacted.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// Ours, never a client's: the Lambda invocation's, or one made here.
    pub request_id: &'a str,
    /// The entry point: `download`, `process`, `upload` (the Lambda functions) or `serve`.
    pub entry: &'static str,
    /// The operation: `download`, `list`, `put`, `post`, `copy`, `delete`, `multipart`, `index`,
    /// `metrics`, `event` (an S3 notification), `batch` (an S3 Batch Operations task), or `-` when the
    /// request was refused before it was read.
    pub route: &'static str,
    pub method: &'a str,
    pub key: &'a str,
    pub rule: &'a str,
    pub status: u16,
    /// The answer's body.
    pub bytes: u64,
    /// The COS error code of a refused or failed request.
    pub code: Option<&'static str>,
    /// The whole request, from its arrival to its answer.
    pub ms: f64,
    pub record: &'a Record,
}

impl Line<'_> {
    /// Writes the line: one `tracing` event (a JSON line on Lambda, text locally), then the metrics.
    pub fn log(&self) {
        let r = self.record;
        let stage = |name: &str| r.timings.get(name).map(|d| round_ms(d.as_secs_f64() * 1e3));
        let (format_out, quality, tries) = match r.outputs.is_empty() {
            true => (None, None, None),
            false => (Some(r.formats_out()), Some(r.qualities()), Some(r.tries())),
        };
        let text = |s: Option<String>| s.map(tracing::field::display);
        tracing::info!(
            request_id = %self.request_id,
            entry = %self.entry,
            route = %self.route,
            method = %self.method,
            key = %self.key,
            rule = %self.rule,
            status = self.status,
            bytes = self.bytes,
            code = self.code.map(tracing::field::display),
            format_in = r.input.as_ref().map(|i| tracing::field::display(i.format.name())),
            format_out = text(format_out),
            bytes_in = r.bytes_in,
            bytes_out = (!r.outputs.is_empty()).then(|| r.bytes_out()),
            pixels_in = r.input.as_ref().map(Image::pixels),
            pixels_out = (!r.outputs.is_empty()).then(|| r.outputs.iter().map(Image::pixels).sum::<u64>()),
            quality = text(quality),
            tries = text(tries),
            fetch_ms = stage("fetch"),
            cache_ms = stage("cache"),
            queue_ms = stage("queue"),
            decode_ms = stage("decode"),
            transform_ms = stage("transform"),
            encode_ms = stage("encode"),
            store_ms = stage("store"),
            ms = round_ms(self.ms),
            "request"
        );
        crate::metrics::observe(self);
    }
}

/// Logs an event the upload function handled — an S3 notification's record (`route` `event`) or an S3
/// Batch Operations task (`batch`): not an HTTP request, so no rule and no answer body; status 200
/// with what the work did (`None`: it made nothing), or the failure's status and code. `key` is
/// escaped here.
pub fn log_event(
    request_id: &str,
    route: &'static str,
    method: &str,
    key: &str,
    started: Instant,
    done: std::result::Result<Option<&Record>, &Error>,
) {
    let none = Record::default();
    let (status, code, record) = match done {
        Ok(record) => (200, None, record.unwrap_or(&none)),
        Err(e) => (e.code.status(), Some(e.code.as_str()), &none),
    };
    Line {
        request_id,
        entry: "upload",
        route,
        method,
        key: &escape_controls(key),
        rule: "",
        status,
        bytes: 0,
        code,
        ms: started.elapsed().as_secs_f64() * 1e3,
        record,
    }
    .log()
}

/// Milliseconds to a tenth.
pub fn round_ms(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// `s` with its control characters (CR, LF, ESC, …) written as `\u{..}` escapes.
pub fn escape_controls(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}
