//! Listing a bucket as S3 and COS answer `GET /` (ListObjects, and ListObjectsV2 with `list-type=2`):
//! `prefix`, `delimiter`, `max-keys`, `marker` / `continuation-token` / `start-after`, `encoding-type=url`.
//! Pure: the caller feeds keys in order, a store's page at a time, to a [`Pager`]; this picks the page
//! asked for and writes the XML.

pub use crate::store::Entry;
use crate::{Error, Result};
use quick_xml::escape::escape;
use std::collections::BTreeMap;

/// The most keys one page holds, and the default (as in S3 and COS).
pub const MAX_KEYS: usize = 1000;

/// What a listing request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// ListObjectsV2 (`list-type=2`).
    pub v2: bool,
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max_keys: usize,
    /// Keys at or before this one are skipped (`marker`, `start-after`, or a decoded continuation token).
    pub after: Option<String>,
    /// As sent, echoed back in V1 `<Marker>` and V2 `<StartAfter>` / `<ContinuationToken>`.
    pub marker: Option<String>,
    pub start_after: Option<String>,
    pub continuation_token: Option<String>,
    /// `encoding-type=url`: keys, prefixes and the delimiter come back percent-encoded.
    pub url_encoded: bool,
}

/// Query parameters that belong to a listing (anything else on `GET /` is not one).
pub const PARAMS: [&str; 10] = [
    "x-id",
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "marker",
    "continuation-token",
    "start-after",
    "encoding-type",
    "fetch-owner",
];

impl Query {
    /// Reads a listing's parameters (percent-decoded). `prefix` is the folder a path names
    /// (`GET /photos/` lists `photos/` one level deep); parameters override it.
    pub fn from_params(params: &BTreeMap<String, String>, folder: Option<&str>) -> Result<Query> {
        let get = |name: &str| params.get(name).cloned();
        let v2 = match get("list-type").as_deref() {
            None => false,
            Some("2") => true,
            Some(other) => {
                return Err(Error::invalid(format!(
                    "list-type {other:?} is not supported: use list-type=2 (ListObjectsV2) or leave it out (ListObjects)"
                )))
            }
        };
        let max_keys = match get("max-keys") {
            None => MAX_KEYS,
            Some(v) => v.parse::<usize>().map(|n| n.min(MAX_KEYS)).map_err(|_| {
                Error::invalid(format!(
                    "max-keys {v:?} is not a number: give 0 to {MAX_KEYS}"
                ))
            })?,
        };
        let url_encoded = match get("encoding-type").as_deref() {
            None => false,
            Some("url") => true,
            Some(other) => {
                return Err(Error::invalid(format!(
                "encoding-type {other:?} is not supported: use encoding-type=url or leave it out"
            )))
            }
        };
        let continuation_token = get("continuation-token").filter(|_| v2);
        let token_key = match &continuation_token {
            Some(t) => Some(decode_token(t)?),
            None => None,
        };
        let marker = get("marker").filter(|_| !v2);
        let start_after = get("start-after").filter(|_| v2);
        let after = token_key
            .or_else(|| marker.clone())
            .or_else(|| start_after.clone())
            .filter(|a| !a.is_empty());
        let (default_prefix, default_delimiter) = match folder {
            Some(f) => (f.to_string(), Some("/".to_string())),
            None => (String::new(), None),
        };
        Ok(Query {
            v2,
            prefix: get("prefix").unwrap_or(default_prefix),
            delimiter: get("delimiter")
                .or(default_delimiter)
                .filter(|d| !d.is_empty()),
            max_keys,
            after,
            marker,
            start_after,
            continuation_token,
            url_encoded,
        })
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub contents: Vec<Entry>,
    /// Folders (`<CommonPrefixes>`), each ending with the delimiter.
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or prefix of this page, where the next page starts after.
    pub next: Option<String>,
}

/// Builds the page `q` asks for from entries given in key order, a store's page at a time: keys under
/// the prefix, after the marker; keys with the delimiter past the prefix roll up into one common prefix
/// each, counted once against `max-keys`.
pub struct Pager<'q> {
    q: &'q Query,
    page: Page,
    count: usize,
}

impl<'q> Pager<'q> {
    pub fn new(q: &'q Query) -> Pager<'q> {
        Pager {
            q,
            page: Page::default(),
            count: 0,
        }
    }

    /// Takes the next entry; `false` once the page is full (it is then truncated, and `e` is not on it).
    pub fn push(&mut self, e: Entry) -> bool {
        let q = self.q;
        if !e.key.starts_with(&q.prefix) {
            return true;
        }
        // the name this key is listed under: itself, or the folder it rolls up into
        let rolled = q.delimiter.as_ref().and_then(|d| {
            let rest = &e.key[q.prefix.len()..];
            rest.find(d.as_str())
                .map(|i| e.key[..q.prefix.len() + i + d.len()].to_string())
        });
        let name = rolled.as_deref().unwrap_or(&e.key);
        if q.after.as_deref().is_some_and(|a| name <= a) {
            return true;
        }
        if self.page.common_prefixes.last().map(String::as_str) == Some(name) {
            return true; // another key in the folder just listed
        }
        if self.count == q.max_keys {
            self.page.is_truncated = true;
            return false;
        }
        self.count += 1;
        self.page.next = Some(name.to_string());
        match rolled {
            Some(p) => self.page.common_prefixes.push(p),
            None => self.page.contents.push(e),
        }
        true
    }

    /// Where a store's listing may go on after `last`, the last key it gave: past the rest of a folder
    /// already rolled up (the greatest character after its name), else after `last`.
    pub fn resume_after(&self, last: &str) -> String {
        match self.page.common_prefixes.last() {
            Some(p) if last.starts_with(p.as_str()) => format!("{p}{}", char::MAX),
            _ => last.to_string(),
        }
    }

    pub fn finish(mut self) -> Page {
        if !self.page.is_truncated {
            self.page.next = None;
        }
        self.page
    }
}

/// The opaque V2 continuation token for resuming after `key` (hex, so it survives any URL or XML).
pub fn token_for(key: &str) -> String {
    crate::auth::hex(key.as_bytes())
}

fn decode_token(token: &str) -> Result<String> {
    let bad = || {
        Error::invalid(
            "the continuation-token is not one this server gave: pass NextContinuationToken unchanged",
        )
    };
    if !token.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect::<Result<Vec<u8>>>()?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// S3's `ListAllMyBucketsResult` (ListBuckets): the one bucket a server serves, created at `created`
/// (ISO 8601).
pub fn list_buckets_xml(bucket: &str, created: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Owner><ID>mogr</ID><DisplayName>mogr</DisplayName></Owner><Buckets><Bucket><Name>{}</Name>\
         <CreationDate>{}</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>",
        escape(bucket),
        escape(created)
    )
}

/// `<ListBucketResult>` as S3 and COS write it, V1 or V2 as `q` asked.
pub fn list_bucket_xml(bucket: &str, q: &Query, page: &Page) -> String {
    let enc = |s: &str| -> String {
        if q.url_encoded {
            crate::auth::uri_encode(s, true)
        } else {
            escape(s).into_owned()
        }
    };
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    x += &format!(
        "<Name>{}</Name><Prefix>{}</Prefix>",
        escape(bucket),
        enc(&q.prefix)
    );
    if q.v2 {
        if let Some(t) = &q.continuation_token {
            x += &format!("<ContinuationToken>{}</ContinuationToken>", escape(t));
        }
        if let Some(s) = &q.start_after {
            x += &format!("<StartAfter>{}</StartAfter>", enc(s));
        }
        x += &format!(
            "<KeyCount>{}</KeyCount>",
            page.contents.len() + page.common_prefixes.len()
        );
    } else {
        x += &format!(
            "<Marker>{}</Marker>",
            enc(q.marker.as_deref().unwrap_or(""))
        );
    }
    x += &format!("<MaxKeys>{}</MaxKeys>", q.max_keys);
    if let Some(d) = &q.delimiter {
        x += &format!("<Delimiter>{}</Delimiter>", enc(d));
    }
    if q.url_encoded {
        x += "<EncodingType>url</EncodingType>";
    }
    x += &format!("<IsTruncated>{}</IsTruncated>", page.is_truncated);
    if let Some(next) = &page.next {
        if q.v2 {
            x += &format!(
                "<NextContinuationToken>{}</NextContinuationToken>",
                token_for(next)
            );
        } else {
            x += &format!("<NextMarker>{}</NextMarker>", enc(next));
        }
    }
    for e in &page.contents {
        x += &format!(
            "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>&quot;{}&quot;</ETag>\
<Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            enc(&e.key),
            crate::store::iso8601(e.last_modified),
            escape(&e.etag),
            e.size
        );
    }
    for p in &page.common_prefixes {
        x += &format!(
            "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
            enc(p)
        );
    }
    x += "</ListBucketResult>";
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Picks the page `q` asks for from every entry (sorted here): see [`Pager`].
    fn page(mut entries: Vec<Entry>, q: &Query) -> Page {
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        let mut pager = Pager::new(q);
        for e in entries {
            if !pager.push(e) {
                break;
            }
        }
        pager.finish()
    }

    fn entries(keys: &[&str]) -> Vec<Entry> {
        keys.iter()
            .map(|k| Entry {
                key: k.to_string(),
                size: 1,
                etag: "e".into(),
                last_modified: std::time::UNIX_EPOCH,
            })
            .collect()
    }

    fn query(pairs: &[(&str, &str)]) -> Query {
        let params = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Query::from_params(&params, None).unwrap()
    }

    fn keys(p: &Page) -> Vec<&str> {
        p.contents.iter().map(|e| e.key.as_str()).collect()
    }

    const BUCKET: [&str; 7] = [
        "a.png",
        "b/1.png",
        "b/2.png",
        "b/c/3.png",
        "b-x.png",
        "c.png",
        "d/4.png",
    ];

    #[test]
    fn prefix_and_delimiter_roll_folders_up() {
        let all = page(entries(&BUCKET), &query(&[]));
        assert_eq!(all.contents.len(), 7);
        assert!(!all.is_truncated && all.next.is_none());
        let top = page(entries(&BUCKET), &query(&[("delimiter", "/")]));
        assert_eq!(keys(&top), ["a.png", "b-x.png", "c.png"]);
        assert_eq!(top.common_prefixes, ["b/", "d/"]);
        let b = page(
            entries(&BUCKET),
            &query(&[("prefix", "b/"), ("delimiter", "/")]),
        );
        assert_eq!(keys(&b), ["b/1.png", "b/2.png"]);
        assert_eq!(b.common_prefixes, ["b/c/"]);
    }

    #[test]
    fn pages_follow_on_without_repeating_a_folder() {
        // V1: max-keys 2 with the delimiter; a folder counts once and is not listed again
        let mut seen = Vec::new();
        let mut marker = String::new();
        loop {
            let q = query(&[("delimiter", "/"), ("max-keys", "2"), ("marker", &marker)]);
            let p = page(entries(&BUCKET), &q);
            assert!(p.contents.len() + p.common_prefixes.len() <= 2);
            seen.extend(keys(&p).iter().map(|k| k.to_string()));
            seen.extend(p.common_prefixes.iter().cloned());
            match p.next {
                Some(n) => marker = n,
                None => break,
            }
        }
        seen.sort();
        assert_eq!(seen, ["a.png", "b-x.png", "b/", "c.png", "d/"]);
        // V2: continuation tokens round-trip
        let first = page(
            entries(&BUCKET),
            &query(&[("list-type", "2"), ("max-keys", "3")]),
        );
        assert!(first.is_truncated);
        let token = token_for(first.next.as_deref().unwrap());
        let q = query(&[
            ("list-type", "2"),
            ("max-keys", "3"),
            ("continuation-token", &token),
        ]);
        let second = page(entries(&BUCKET), &q);
        assert_eq!(keys(&second), ["b/2.png", "b/c/3.png", "c.png"]);
        let x = list_bucket_xml("local", &q, &second);
        assert!(
            x.contains("<KeyCount>3</KeyCount><MaxKeys>3</MaxKeys>"),
            "{x}"
        );
        assert!(x.contains("<IsTruncated>true</IsTruncated>"), "{x}");
        assert!(
            x.contains(&format!("<NextContinuationToken>{}<", token_for("c.png"))),
            "{x}"
        );
        assert!(
            x.contains(&format!("<ContinuationToken>{token}</ContinuationToken>")),
            "{x}"
        );
        let q = query(&[("list-type", "2"), ("start-after", "c.png")]);
        let last = page(entries(&BUCKET), &q);
        assert_eq!(keys(&last), ["d/4.png"]);
        assert!(!last.is_truncated && last.next.is_none());
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let params = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        for (k, v) in [
            ("max-keys", "many"),
            ("list-type", "3"),
            ("encoding-type", "base64"),
        ] {
            let e = Query::from_params(&params(k, v), None).unwrap_err();
            assert!(e.message.contains(k), "{e:?}");
        }
        let mut p = params("list-type", "2");
        p.insert("continuation-token".into(), "zz".into());
        assert!(Query::from_params(&p, None).is_err());
    }

    #[test]
    fn xml_is_escaped_or_url_encoded() {
        let e = entries(&["a&b <c>.png", "d e/f.png"]);
        let q = query(&[("delimiter", "/")]);
        let x = list_bucket_xml("local", &q, &page(e.clone(), &q));
        assert!(x.contains("<Key>a&amp;b &lt;c&gt;.png</Key>"), "{x}");
        assert!(
            x.contains("<CommonPrefixes><Prefix>d e/</Prefix></CommonPrefixes>"),
            "{x}"
        );
        assert!(x.contains("<Marker></Marker>") && x.contains("<ETag>&quot;e&quot;</ETag>"));
        let q = query(&[("delimiter", "/"), ("encoding-type", "url")]);
        let x = list_bucket_xml("local", &q, &page(e, &q));
        assert!(x.contains("<Key>a%26b%20%3Cc%3E.png</Key>"), "{x}");
        assert!(x.contains("<Prefix>d%20e/</Prefix>"), "{x}");
        // a folder path lists one level of that folder
        let q = Query::from_params(&BTreeMap::new(), Some("b/")).unwrap();
        let p = page(entries(&BUCKET), &q);
        assert_eq!(keys(&p), ["b/1.png", "b/2.png"]);
        assert_eq!(p.common_prefixes, ["b/c/"]);
    }
}
