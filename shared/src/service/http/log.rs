//! The access log: one line per request, and the request's id.

use http::{Method, Request, Response};
use percent_encoding::percent_decode_str;
use std::sync::atomic::{AtomicU64, Ordering};

/// One access-log line per request: method, key, rule, status, bytes, milliseconds and request id,
/// as `tracing` fields (plain text locally, JSON on Lambda). Start it before the request is handed
/// on, finish it with the response.
pub struct AccessLog {
    method: Method,
    key: String,
    rule: String,
    started: std::time::Instant,
}

impl AccessLog {
    /// The key and the query are the client's text: decoded, with control characters escaped (a line
    /// of the log is one request, whatever the client sent) and signatures and tokens redacted.
    pub fn start<B>(req: &Request<B>) -> AccessLog {
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
            method: req.method().clone(),
            key: decode(path.strip_prefix('/').unwrap_or(path)),
            rule: decode(&query),
            started: std::time::Instant::now(),
        }
    }

    /// Logs the line and hands the response back.
    pub fn finish<B: AsRef<[u8]>>(self, resp: Response<B>) -> Response<B> {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let rid = resp
            .headers()
            .get("x-cos-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info!(
            method = %self.method,
            key = %self.key,
            rule = %self.rule,
            status = resp.status().as_u16(),
            bytes = resp.body().as_ref().len(),
            ms = (ms * 10.0).round() / 10.0,
            request_id = %rid,
            "request"
        );
        resp
    }
}

/// `s` with its control characters (CR, LF, ESC, …) written as `\u{..}` escapes.
pub(super) fn escape_controls(s: &str) -> String {
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

/// Query parameters whose values are credentials: signatures and session tokens.
fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with("signature") || name.ends_with("security-token")
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);

/// The request's id: the one a proxy or Lambda gave it, or a new one.
pub fn request_id<B>(req: &Request<B>) -> String {
    for h in [
        "x-amz-request-id",
        "x-request-id",
        "lambda-runtime-aws-request-id",
    ] {
        if let Some(v) = req.headers().get(h).and_then(|v| v.to_str().ok()) {
            return v.to_string();
        }
    }
    format!(
        "mogr-{:x}-{}",
        std::process::id(),
        REQUEST_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}
