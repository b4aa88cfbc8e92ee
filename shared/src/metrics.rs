//! Metrics made from each request's [`Line`]: on Lambda, CloudWatch embedded-metric-format lines
//! ([`Emf`]: JSON lines on standard output, which CloudWatch Logs turns into metrics, no API call
//! made); for `mogr serve`, Prometheus counters and histograms ([`Local`]) that it answers at
//! `/_mogr/metrics`. Each is on only where its entry point turned it on ([`emf_on`], [`local_on`]);
//! nothing here knows HTTP.

use crate::service::record::{round_ms, Line};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::sync::OnceLock;

static EMF: OnceLock<Emf> = OnceLock::new();
static LOCAL: OnceLock<Local> = OnceLock::new();

/// Records `line` in the metrics that are on.
pub fn observe(line: &Line) {
    if let Some(emf) = EMF.get() {
        emf.write(line);
    }
    if let Some(local) = LOCAL.get() {
        local.observe(line);
    }
}

/// Turns CloudWatch's embedded metric format on, under `namespace` (the Lambda functions:
/// `MOGR_METRICS_NAMESPACE`, default `mogr`).
pub fn emf_on(namespace: String) {
    let _ = EMF.set(Emf { namespace });
}

/// Turns the Prometheus metrics on and returns them (`mogr serve`).
pub fn local_on() -> &'static Local {
    LOCAL.get_or_init(Local::new)
}

/// CloudWatch embedded metric format: per request, one line of the request's metrics by `Function`
/// (and by `Function` and `ErrorCode` when it was refused), and one line per output made by
/// `Function` and by `Function` and `Format`. See docs/observability.md.
pub struct Emf {
    namespace: String,
}

impl Emf {
    fn write(&self, line: &Line) {
        let mut out = Vec::new();
        for value in self.lines(line, now_ms()) {
            let _ = serde_json::to_writer(&mut out, &value);
            out.push(b'\n');
        }
        // on standard output, where AWS documents that Lambda's logs take them; one write
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&out).and_then(|()| stdout.flush());
    }

    /// The EMF lines of `line`, stamped `timestamp` (ms since the epoch).
    pub fn lines(&self, line: &Line, timestamp: u64) -> Vec<Value> {
        let r = line.record;
        let mut request = Metrics::default();
        request.put("Requests", "Count", 1);
        request.put("Errors", "Count", u8::from(line.code.is_some()));
        request.put("ServerErrors", "Count", u8::from(line.status >= 500));
        request.put("Duration", "Milliseconds", round_ms(line.ms));
        for (stage, name) in STAGE_METRICS {
            if let Some(d) = r.timings.get(stage) {
                request.put(name, "Milliseconds", round_ms(d.as_secs_f64() * 1e3));
            }
        }
        let mut dimensions = vec![json!(["Function"])];
        if let Some(code) = line.code {
            request.fields.insert("ErrorCode".into(), code.into());
            dimensions.push(json!(["Function", "ErrorCode"]));
        }
        let mut lines = vec![self.line(request, line, dimensions, timestamp)];
        for out in &r.outputs {
            let mut made = Metrics::default();
            made.put("Conversions", "Count", 1);
            made.put("BytesOut", "Bytes", out.bytes);
            if let Some(bytes_in) = r.bytes_in {
                made.put("BytesIn", "Bytes", bytes_in);
                made.put("BytesSaved", "Bytes", bytes_in as i64 - out.bytes as i64);
            }
            made.put("Pixels", "Count", out.pixels());
            made.fields
                .insert("Format".into(), out.format.name().into());
            let dimensions = vec![json!(["Function"]), json!(["Function", "Format"])];
            lines.push(self.line(made, line, dimensions, timestamp));
        }
        lines
    }

    /// One EMF line: `m`'s values, the request's `Function` and `RequestId`, and the directive naming
    /// the metrics and their `dimensions`.
    fn line(&self, m: Metrics, line: &Line, dimensions: Vec<Value>, timestamp: u64) -> Value {
        let mut fields = m.fields;
        fields.insert("Function".into(), line.entry.into());
        fields.insert("RequestId".into(), line.request_id.into());
        let directive = json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": self.namespace,
                "Dimensions": dimensions,
                "Metrics": m.metrics,
            }],
        });
        fields.insert("_aws".into(), directive);
        Value::Object(fields)
    }
}

/// An EMF line's metrics being gathered: each value, and its name and unit for the directive.
#[derive(Default)]
struct Metrics {
    fields: Map<String, Value>,
    metrics: Vec<Value>,
}

impl Metrics {
    fn put(&mut self, name: &str, unit: &str, value: impl Into<Value>) {
        self.fields.insert(name.into(), value.into());
        self.metrics.push(json!({ "Name": name, "Unit": unit }));
    }
}

/// The stages a [`Line`] names (each its own `<stage>_ms` field of the log line), and each one's
/// EMF metric.
const STAGE_METRICS: [(&str, &str); 7] = [
    ("fetch", "FetchTime"),
    ("cache", "CacheTime"),
    ("queue", "QueueTime"),
    ("decode", "DecodeTime"),
    ("transform", "TransformTime"),
    ("encode", "EncodeTime"),
    ("store", "StoreTime"),
];

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

type Labels = Vec<(&'static str, String)>;

/// `mogr serve`'s metrics, in Prometheus's text format (OpenMetrics): requests by route and status,
/// their duration and each stage's by route, errors by code, 503s shed, conversions by format, bytes
/// in and out, and — read when scraped — the work queue and the process's resident memory.
pub struct Local {
    registry: Registry,
    requests: Family<Labels, Counter>,
    duration: Family<Labels, Histogram>,
    stages: Family<Labels, Histogram>,
    errors: Family<Labels, Counter>,
    shed: Counter,
    conversions: Family<Labels, Counter>,
    bytes_in: Counter,
    bytes_out: Counter,
    running: Gauge,
    waiting: Gauge,
    resident: Gauge,
}

fn seconds() -> Histogram {
    // 1 ms to ~33 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Local {
    fn new() -> Local {
        let mut registry = Registry::with_prefix("mogr");
        let requests = Family::default();
        let duration = Family::new_with_constructor(seconds as fn() -> Histogram);
        let stages = Family::new_with_constructor(seconds as fn() -> Histogram);
        let errors = Family::default();
        let conversions = Family::default();
        let (shed, bytes_in, bytes_out) =
            (Counter::default(), Counter::default(), Counter::default());
        let (running, waiting, resident) = (Gauge::default(), Gauge::default(), Gauge::default());
        let r = &mut registry;
        r.register(
            "requests",
            "Requests answered, by route and status",
            requests.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "Time from a request's arrival to its answer, by route",
            Unit::Seconds,
            duration.clone(),
        );
        r.register_with_unit(
            "stage_duration",
            "Time a request spent in each stage (fetch, cache, queue: the wait for a worker, decode, transform, encode, store)",
            Unit::Seconds,
            stages.clone(),
        );
        r.register(
            "errors",
            "Requests refused or failed, by COS error code",
            errors.clone(),
        );
        r.register(
            "shed",
            "Requests shed with 503 SlowDown: the work queue or the memory budget was full",
            shed.clone(),
        );
        r.register(
            "conversions",
            "Images made, by output format",
            conversions.clone(),
        );
        r.register_with_unit(
            "input",
            "Bytes of the sources conversions read",
            Unit::Bytes,
            bytes_in.clone(),
        );
        r.register_with_unit(
            "output",
            "Bytes of the images conversions made",
            Unit::Bytes,
            bytes_out.clone(),
        );
        r.register("queue_running", "Conversions running now", running.clone());
        r.register(
            "queue_waiting",
            "Conversions waiting for a worker now",
            waiting.clone(),
        );
        r.register_with_unit(
            "resident_memory",
            "The process's resident memory",
            Unit::Bytes,
            resident.clone(),
        );
        Local {
            registry,
            requests,
            duration,
            stages,
            errors,
            shed,
            conversions,
            bytes_in,
            bytes_out,
            running,
            waiting,
            resident,
        }
    }

    fn observe(&self, line: &Line) {
        let route = || ("route", line.route.to_string());
        let status = ("status", line.status.to_string());
        self.requests.get_or_create(&vec![route(), status]).inc();
        (self.duration.get_or_create(&vec![route()])).observe(line.ms / 1e3);
        let r = line.record;
        for (stage, _) in STAGE_METRICS {
            if let Some(d) = r.timings.get(stage) {
                let labels = vec![route(), ("stage", stage.to_string())];
                self.stages.get_or_create(&labels).observe(d.as_secs_f64());
            }
        }
        if let Some(code) = line.code {
            self.errors
                .get_or_create(&vec![("code", code.into())])
                .inc();
            if code == crate::Code::SlowDown.as_str() {
                self.shed.inc();
            }
        }
        for out in &r.outputs {
            let format = vec![("format", out.format.name().to_string())];
            self.conversions.get_or_create(&format).inc();
            self.bytes_out.inc_by(out.bytes);
            self.bytes_in.inc_by(r.bytes_in.unwrap_or(0));
        }
    }

    /// The metrics as Prometheus's text format (OpenMetrics 1.0), with the queue as it is now
    /// (`running`, `waiting`).
    pub fn render(&self, running: usize, waiting: usize) -> String {
        self.running.set(running as i64);
        self.waiting.set(waiting as i64);
        self.resident.set(resident_bytes().unwrap_or(0) as i64);
        let mut text = String::new();
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// The process's resident set, from `/proc/self/statm` (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system setting.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::record::{Image, Record};
    use crate::Format;
    use std::time::Duration;

    fn record() -> Record {
        let mut r = Record {
            bytes_in: Some(10_000),
            input: None,
            outputs: vec![Image {
                format: Format::Heif,
                bytes: 1_000,
                width: 40,
                height: 30,
                quality: Some(60),
                tries: 2,
            }],
            ..Record::default()
        };
        r.timings.add("decode", Duration::from_millis(12));
        r
    }

    fn line<'a>(record: &'a Record, code: Option<&'static str>, status: u16) -> Line<'a> {
        Line {
            request_id: "r-1",
            entry: "download",
            route: "download",
            method: "GET",
            key: "a.jpg",
            rule: "imageMogr2/format/heif",
            status,
            bytes: 1_000,
            code,
            ms: 20.5,
            record,
        }
    }

    #[test]
    fn emf_lines_name_every_metric_they_carry() {
        let r = record();
        let emf = Emf {
            namespace: "mogr/test".into(),
        };
        let lines = emf.lines(&line(&r, None, 200), 7);
        assert_eq!(lines.len(), 2, "the request and its one output");
        for l in &lines {
            let d = &l["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(d["Namespace"], "mogr/test");
            assert_eq!(l["_aws"]["Timestamp"], 7);
            for m in d["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap();
                assert!(l[name].is_number(), "{name} has a value: {l}");
            }
            for set in d["Dimensions"].as_array().unwrap() {
                for dim in set.as_array().unwrap() {
                    assert!(
                        l[dim.as_str().unwrap()].is_string(),
                        "{dim} has a value: {l}"
                    );
                }
            }
        }
        assert_eq!(lines[0]["DecodeTime"], 12.0);
        assert_eq!(lines[0]["Errors"], 0);
        assert_eq!(lines[1]["Format"], "heif");
        assert_eq!(lines[1]["BytesSaved"], 9_000);
        let refused = emf.lines(&line(&Record::default(), Some("InvalidArgument"), 400), 7);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0]["ErrorCode"], "InvalidArgument");
        assert_eq!(refused[0]["Errors"], 1);
        assert_eq!(refused[0]["ServerErrors"], 0);
    }

    #[test]
    fn prometheus_counts_what_it_observed() {
        let local = Local::new();
        let r = record();
        local.observe(&line(&r, None, 200));
        local.observe(&line(&Record::default(), Some("SlowDown"), 503));
        let text = local.render(1, 2);
        for want in [
            "mogr_requests_total{route=\"download\",status=\"200\"} 1",
            "mogr_requests_total{route=\"download\",status=\"503\"} 1",
            "mogr_shed_total 1",
            "mogr_conversions_total{format=\"heif\"} 1",
            "mogr_input_bytes_total 10000",
            "mogr_output_bytes_total 1000",
            "mogr_queue_waiting 2",
            "mogr_stage_duration_seconds_count{route=\"download\",stage=\"decode\"} 1",
        ] {
            assert!(text.contains(want), "{want} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
