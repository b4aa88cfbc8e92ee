//! The front door of `mogr serve`: `GET /` and folder paths (`GET /photos/`) list the bucket as S3 and
//! COS do (`<ListBucketResult>`, V1 or V2, so every SDK's `list_objects` works, path-style
//! `GET /<bucket>?list-type=2` included), and a browser (`Accept: text/html`) gets an HTML index of the
//! folder instead: its images as thumbnails with ready-made conversion links.

use crate::multipart::params;
use mogr::cos::list::{self, Entry, Page, Query};
use mogr::service::{self, request_id};
use mogr::store::{decode_path, encode_key, DirStore, Store};
use mogr::{Format, Result};
use std::collections::BTreeMap;

type Req = http::Request<bytes::Bytes>;
type Resp = http::Response<Vec<u8>>;

/// Answers a listing or an index page (a 403 instead unless `allowed`: downloads must be signed, and a
/// listing would hand out the keys), or `None` when `req` asks for something else.
pub async fn route(store: &DirStore, req: &Req, allowed: bool) -> Option<Resp> {
    if !matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
        return None;
    }
    let params = params(req.uri().query());
    let account = req
        .extensions()
        .get::<service::Addressed>()
        .is_some_and(|a| a.s3 && a.bucket.is_none());
    if account && req.uri().path() == "/" {
        return Some(list_buckets(store, req, allowed));
    }
    let listing = params.keys().all(|k| list::PARAMS.contains(&k.as_str()));
    if !listing {
        return None; // `GET /?imageMogr2/...` and the like: the service's answer (an error)
    }
    let path = req.uri().path();
    let Ok(rest) = decode_path(path) else {
        return None; // the service words the error
    };
    let rest = rest.as_str();
    // Path-style (`/<bucket>?list-type=2`, `/<bucket>/?delimiter=/`), as the S3 SDKs send it to a custom
    // endpoint: one segment naming the bucket (or any, with list-type) that is no folder or object here.
    let segment = rest.strip_suffix('/').unwrap_or(rest);
    let path_style = !segment.is_empty()
        && !segment.contains('/')
        && (segment == store.name() || params.contains_key("list-type"))
        && !store.is_folder(segment)
        && store.head(segment).await.ok().flatten().is_none();
    let folder = if rest.is_empty() || path_style {
        ""
    } else if rest.ends_with('/') {
        rest
    } else {
        return None; // an object's key
    };
    if !allowed {
        return Some(service::error_response(
            &listing_off(),
            path,
            &request_id(req),
        ));
    }
    let browser = params.is_empty()
        && req
            .headers()
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    let result = answer(store, &params, folder, browser).await;
    Some(result.unwrap_or_else(|e| service::error_response(&e, path, &request_id(req))))
}

/// S3's ListBuckets (`GET /` from an S3 client): the one bucket served, created when its folder was.
fn list_buckets(store: &DirStore, req: &Req, allowed: bool) -> Resp {
    if !allowed {
        return service::error_response(&listing_off(), "/", &request_id(req));
    }
    let xml = list::list_buckets_xml(store.name(), &store.created());
    http::Response::builder()
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(xml.into_bytes())
        .expect("static headers are valid")
}

pub(crate) fn listing_off() -> mogr::Error {
    mogr::Error::new(
        mogr::Code::AccessDenied,
        "listing is off while downloads must be signed (MOGR_SIGNING_KEYS): ask for a signed URL \
         of each object",
    )
}

async fn answer(
    store: &DirStore,
    params: &BTreeMap<String, String>,
    folder: &str,
    browser: bool,
) -> Result<Resp> {
    let folder = (!folder.is_empty()).then_some(folder);
    let mut q = Query::from_params(params, folder)?;
    if browser {
        q.delimiter = Some("/".into());
    }
    let page = list::page(store.entries().await?, &q);
    let (body, content_type) = if browser {
        (
            html(store.name(), &q.prefix, &page),
            "text/html; charset=utf-8",
        )
    } else {
        (
            list::list_bucket_xml(store.name(), &q, &page),
            "application/xml",
        )
    };
    Ok(http::Response::builder()
        .header(http::header::CONTENT_TYPE, content_type)
        .body(body.into_bytes())
        .expect("static headers are valid"))
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

fn is_image(key: &str) -> bool {
    key.rsplit_once('.')
        .is_some_and(|(_, ext)| Format::from_name(&ext.to_ascii_lowercase()).is_some())
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
        if !is_image(key) {
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
