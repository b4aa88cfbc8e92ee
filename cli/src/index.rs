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

/// A folder, drawn (an emoji would need a font many systems lack).
const FOLDER_ICON: &str = "<svg width=\"20\" height=\"16\" viewBox=\"0 0 20 16\" role=\"img\" \
aria-label=\"folder\"><path d=\"M1 2.5h6l2 2h10v10H1z\" fill=\"#f2c45a\" stroke=\"#b8860b\"/></svg>";

/// The formats each image's row weighs, as download conversions.
const WEIGHED: [(&str, &str); 3] = [
    ("AVIF", "?imageMogr2/format/avif"),
    ("HEIF", "?imageMogr2/format/heif"),
    ("WebP", "?imageMogr2/format/webp"),
];

/// Fills each `td[data-conv]` when its row comes into view: the conversion is fetched (two at a
/// time, so a long folder does not fill the work queue) and its size and the change against the
/// original's (`data-size`) written in the link. The service keeps each result in its cache, the
/// browser too: a second visit converts nothing.
const WEIGH_SCRIPT: &str = r#"<script>
const kb=n=>n<1e3?n+" B":n<1e6?(n/1e3).toFixed(1)+" KB":(n/1e6).toFixed(1)+" MB";
const pct=(a,b)=>{const c=100*(a/Math.max(b,1)-1);const d=Math.abs(c)>=99.5&&a>0?1:0;
  return (c<0?"\u2212":"+")+Math.abs(c).toFixed(d)+" %"};
const queue=[];let busy=0;
function pump(){
  while(busy<2&&queue.length){
    const td=queue.shift(),a=td.querySelector("a");busy++;
    fetch(td.dataset.conv).then(async r=>{
      if(!r.ok){const m=/<Message>([^<]*)/.exec(await r.text());throw new Error(m?m[1]:"HTTP "+r.status)}
      const n=(await r.blob()).size;
      a.textContent=kb(n)+" "+pct(n,+td.dataset.size);
      if(n>=+td.dataset.size)td.className="n more";
    }).catch(e=>{a.textContent="failed";td.title=e.message})
      .finally(()=>{busy--;pump()});
  }
}
const seen=new IntersectionObserver(es=>{for(const e of es)if(e.isIntersecting){
  seen.unobserve(e.target);queue.push(e.target);pump()}});
document.querySelectorAll("td[data-conv]").forEach(td=>seen.observe(td));
</script>"#;

/// The HTML index of one folder.
fn html(bucket: &str, prefix: &str, page: &Page) -> String {
    let title = format!("{bucket}/{prefix}");
    let mut h = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mogr: {t}</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>\
body{{font:15px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:70em}}table{{border-collapse:collapse}}\
td,th{{padding:.4em .8em;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}}\
td.n,th.n{{text-align:right;white-space:nowrap}}td.more a{{color:#a33}}img{{max-width:160px;max-height:120px}}\
code{{background:#f3f3f3;padding:0 .2em}}h1 small{{font-weight:normal;color:#666;font-size:60%}}\
</style></head><body><h1>{t} <small>bucket <b>{b}</b>{p}</small></h1>\
<p>This is <code>mogr serve</code>'s folder, served as the bucket <b>{b}</b> (<code>--bucket</code> \
names it; without it, the bucket is called <code>local</code> and answers to any name a client gives). \
Each object is at <code>/&lt;key&gt;</code>; add a rule to convert it on download, e.g. \
<code>?imageMogr2/format/avif</code>, <code>?imageMogr2/thumbnail/400x/format/heif</code>, \
<code>?imageInfo</code>. <code>GET /?list-type=2</code> lists the bucket as S3 does.</p>\
<p>The AVIF, HEIF and WebP columns are what each image weighs in that format and how much smaller \
(\u{2212}) or larger (+) that is than the original: the download conversion, made when its row \
comes into view and kept in the result cache (<code>_mogr/cache/</code>), so it is made once. Stored \
outputs (<code>POST ?image_process</code>, <code>mogr convert</code>) search their quality and usually come \
out smaller still. AVIF and WebP show in every current browser; HEIF shows in Safari 17 and later \
only — Chrome, Firefox and Edge download the <code>.heic</code> file instead (open it in an image \
viewer, or ask <code>?imageInfo</code>).</p>",
        t = esc(&title),
        b = esc(bucket),
        p = if prefix.is_empty() {
            String::new()
        } else {
            format!(", folder <b>{}</b>", esc(prefix))
        },
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
    h += "<table><tr><th></th><th>object</th><th class=\"n\">size</th>";
    for (label, _) in WEIGHED {
        h += &format!("<th class=\"n\">{label}</th>");
    }
    h += "<th>more</th></tr>";
    let blank = "<td></td>".repeat(WEIGHED.len() + 1);
    for p in &page.common_prefixes {
        h += &format!(
            "<tr><td>{FOLDER_ICON}</td><td><a href=\"{}\">{}</a></td><td></td>{blank}</tr>",
            href(p, ""),
            esc(&p[prefix.len()..])
        );
    }
    for Entry { key, size: n, .. } in &page.contents {
        let name = esc(&key[prefix.len()..]);
        if mogr::Format::of_key(key).is_none() {
            h += &format!(
                "<tr><td></td><td><a href=\"{}\">{name}</a></td><td class=\"n\">{}</td>{blank}</tr>",
                href(key, ""),
                crate::human_bytes(*n)
            );
            continue;
        }
        let weighed: String = WEIGHED
            .iter()
            .map(|(label, q)| {
                format!(
                    "<td class=\"n\" data-conv=\"{u}\" data-size=\"{n}\"><a href=\"{u}\">{label}</a></td>",
                    u = href(key, q)
                )
            })
            .collect();
        let more = [
            // within 800 px, never enlarged
            ("\u{2264} 800 px", "?imageMogr2/thumbnail/800x800>"),
            ("info", "?imageInfo"),
        ]
        .iter()
        .map(|(label, q)| format!("<a href=\"{}\">{label}</a>", href(key, q)))
        .collect::<Vec<_>>()
        .join(" \u{b7} ");
        h += &format!(
            "<tr><td><a href=\"{o}\"><img loading=\"lazy\" alt=\"\" src=\"{t}\"></a></td>\
<td><a href=\"{o}\">{name}</a></td><td class=\"n\">{}</td>{weighed}<td>{more}</td></tr>",
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
    h += WEIGH_SCRIPT;
    h += "</body></html>";
    h
}
