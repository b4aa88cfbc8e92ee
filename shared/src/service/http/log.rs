//! The access log: one line per request — its [`Line`], with the operation's [`Record`] — and the
//! request's id.

pub(super) use crate::service::record::escape_controls;
use crate::service::record::{Line, Record};
use crate::Code;
use http::{Method, Request, Response};
use percent_encoding::percent_decode_str;
use std::sync::atomic::{AtomicU64, Ordering};

/// The request's id, ours: set by the entry point (the Lambda invocation's, or made by
/// [`AccessLog::start`]) as the request's extension; a client's `x-request-id` or `x-amz-request-id`
/// header is never taken for it.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The operation the router took a request to (`download`, `put`, …), as the response's extension.
#[derive(Clone, Copy, Debug)]
pub struct Route(pub &'static str);

/// One access-log line per request ([`Line::log`]: plain text locally, JSON on Lambda, and the
/// metrics). Start it before the request is handed on, finish it with the response.
pub struct AccessLog {
    entry: &'static str,
    id: String,
    method: Method,
    key: String,
    rule: String,
    started: std::time::Instant,
}

impl AccessLog {
    /// Gives `req` its id — `id` (the Lambda invocation's) or a new one — and notes what it asks.
    /// The key and the query are the client's text: decoded, with control characters escaped (a line
    /// of the log is one request, whatever the client sent) and signatures and tokens redacted.
    pub fn start<B>(req: &mut Request<B>, entry: &'static str, id: Option<&str>) -> AccessLog {
        let id = id.map_or_else(new_id, str::to_string);
        req.extensions_mut().insert(RequestId(id.clone()));
        let decode = |s: &str| escape_controls(&percent_decode_str(s).decode_utf8_lossy());
        let path = req.uri().path();
        let query = crate::query::params(req.uri().query())
            .map(|p| match p.raw.contains('=') && is_secret(&p.name()) {
                true => format!("{}=REDACTED", p.raw_name),
                false => p.raw.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&");
        AccessLog {
            entry,
            id,
            method: req.method().clone(),
            key: decode(path.strip_prefix('/').unwrap_or(path)),
            rule: decode(&query),
            started: std::time::Instant::now(),
        }
    }

    /// Logs the line, with what the response's extensions say the request did, and hands the response
    /// back.
    pub fn finish<B: AsRef<[u8]>>(self, mut resp: Response<B>) -> Response<B> {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let record = resp.extensions_mut().remove::<Record>().unwrap_or_default();
        let ext = resp.extensions();
        Line {
            request_id: &self.id,
            entry: self.entry,
            route: ext.get::<Route>().map_or("-", |r| r.0),
            method: self.method.as_str(),
            key: &self.key,
            rule: &self.rule,
            status: resp.status().as_u16(),
            bytes: resp.body().as_ref().len() as u64,
            code: ext.get::<Code>().map(|c| c.as_str()),
            ms,
            record: &record,
        }
        .log();
        resp
    }
}

/// Query parameters whose values are credentials: signatures and session tokens.
fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with("signature") || name.ends_with("security-token")
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);

fn new_id() -> String {
    format!(
        "mogr-{:x}-{}",
        std::process::id(),
        REQUEST_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The request's id: the one its entry point gave it ([`AccessLog::start`]), or a new one.
pub fn request_id<B>(req: &Request<B>) -> String {
    match req.extensions().get::<RequestId>() {
        Some(id) => id.0.clone(),
        None => new_id(),
    }
}
