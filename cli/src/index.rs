//! `mogr serve`'s page for a browser: `GET /` or a folder (`GET /photos/`) asked with `Accept:
//! text/html` and no query is an HTML index of the folder — its images as thumbnails with ready-made
//! conversion links — instead of the `<ListBucketResult>` the service answers to SDKs.

use mogr::cos::list::{Entry, Page, Query, MAX_KEYS};
use mogr::service::{self, Service};
use mogr::store::{decode_path, encode_key};

type Req = http::Request<bytes::Bytes>;
type Resp = http::Response<Vec<u8>>;

/// The HTML index `req` asks for, or `None` when it asks for something else (or listing is off: the
/// service then words the refusal).
pub async fn page(service: &Service, req: &Req, allowed: bool) -> Option<Resp> {
    let html_wanted = (req.headers().get(http::header::ACCEPT))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if req.method() != http::Method::GET || req.uri().query().is_some() || !html_wanted || !allowed
    {
        return None;
    }
    let folder = decode_path(req.uri().path()).ok()?;
    if !(folder.is_empty() || folder.ends_with('/')) {
        return None; // an object
    }
    let q = Query {
        prefix: folder,
        delimiter: Some("/".into()),
        max_keys: MAX_KEYS,
        ..Query::default()
    };
    let resp = match service.list(&q).await {
        Ok(page) => http::Response::builder()
            .header(http::header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(html(service.bucket().name(), &q.prefix, &page).into_bytes())
            .expect("static headers are valid"),
        Err(e) => service::error_response(&e, req.uri().path(), &service::request_id(req)),
    };
    Some(resp)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// An attribute-safe link to `key` with `query`.
fn href(key: &str, query: &str) -> String {
    esc(&format!("/{}{query}", encode_key(key)))
}

/// The HTML index of one folder.
fn html(bucket: &str, prefix: &str, page: &Page) -> String {
    let title = format!("{bucket}/{prefix}");
    let mut h = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mogr: {t}</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>\
body{{font:15px/1.4 system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse}}\
td,th{{padding:.4em .8em;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}}\
td.n{{text-align:right}}img{{max-width:160px;max-height:120px}}code{{background:#f3f3f3;padding:0 .2em}}\
</style></head><body><h1>{t}</h1><p>mogr serves this folder as a bucket. Each object is at \
<code>/&lt;key&gt;</code>; add a rule to convert it on download, e.g. \
<code>?imageMogr2/format/avif</code>, <code>?imageMogr2/thumbnail/400x/format/heif</code>, \
<code>?imageInfo</code>. <code>GET /?list-type=2</code> lists the bucket as S3 does.</p>",
        t = esc(&title)
    );
    if !prefix.is_empty() {
        let up = prefix[..prefix.len() - 1]
            .rfind('/')
            .map_or("", |i| &prefix[..=i]);
        h += &format!("<p><a href=\"{}\">\u{2191} up</a></p>", href(up, ""));
    }
    if page.contents.is_empty() && page.common_prefixes.is_empty() {
        h += "<p>Nothing here yet: copy images into the folder, or PUT one (<code>curl -T photo.jpg \
http://HOST/photo.jpg</code>).</p>";
    }
    h += "<table><tr><th></th><th>object</th><th>size</th><th>convert</th></tr>";
    for p in &page.common_prefixes {
        h += &format!(
            "<tr><td>\u{1F4C1}</td><td><a href=\"{}\">{}</a></td><td></td><td></td></tr>",
            href(p, ""),
            esc(&p[prefix.len()..])
        );
    }
    for Entry { key, size: n, .. } in &page.contents {
        let name = esc(&key[prefix.len()..]);
        if mogr::Format::of_key(key).is_none() {
            h += &format!(
                "<tr><td></td><td><a href=\"{}\">{name}</a></td><td class=\"n\">{}</td><td></td></tr>",
                href(key, ""),
                crate::human_bytes(*n)
            );
            continue;
        }
        let links = [
            ("avif", "?imageMogr2/format/avif"),
            ("heif", "?imageMogr2/format/heif"),
            ("webp", "?imageMogr2/format/webp"),
            ("800 px", "?imageMogr2/thumbnail/800x"),
            ("info", "?imageInfo"),
        ]
        .iter()
        .map(|(label, q)| format!("<a href=\"{}\">{label}</a>", href(key, q)))
        .collect::<Vec<_>>()
        .join(" \u{b7} ");
        h += &format!(
            "<tr><td><a href=\"{o}\"><img loading=\"lazy\" alt=\"\" src=\"{t}\"></a></td>\
<td><a href=\"{o}\">{name}</a></td><td class=\"n\">{}</td><td>{links}</td></tr>",
            crate::human_bytes(*n),
            o = href(key, ""),
            t = href(key, "?imageMogr2/thumbnail/320x240/format/webp"),
        );
    }
    h += "</table>";
    if page.is_truncated {
        h += &format!(
            "<p>The first {} entries are shown; list the rest with <code>GET /?list-type=2</code>.</p>",
            page.contents.len() + page.common_prefixes.len()
        );
    }
    h += "</body></html>";
    h
}
