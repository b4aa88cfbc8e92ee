//! Upon download: the original, `?imageInfo`, `?imageAve`, `?exif`, or the object converted by an `imageMogr2`
//! rule with the download profile. A conversion's or a fact's ETag is known from the source's head
//! (`cache::tag`): a request that already holds it is answered 304 after that head alone, and a
//! conversion made once is answered from its stored copy until the source changes. Results larger
//! than an inline response can hold are stored the same way and redirected to.

use super::cache::{self, Hit};
use super::content_type::guess_type;
use super::record::{Image, Record};
use super::Service;
use crate::codec::{self, Frames, Profile};
use crate::convert;
use crate::rule::Rule;
use crate::store::{self, Head, Object};
use crate::timing::Timings;
use crate::{info, Code, Error, Result};
use std::time::Instant;

/// What a download asks for.
#[derive(Debug)]
pub enum Query {
    Original,
    /// `imageMogr2/...`: the rule as written (what a signed URL names) and parsed.
    Rule {
        text: String,
        rule: Rule,
    },
    Info,
    Ave,
    /// `?exif`: the EXIF tags as COS's JSON.
    Exif,
    /// `?image_process` belongs to POST; a GET with it answers the original.
    ImageProcess,
}

impl Query {
    /// The processor as a signed URL names it: the rule as written, `imageInfo`, `imageAve`, or
    /// nothing for the object itself.
    pub fn processor(&self) -> &str {
        match self {
            Query::Rule { text, .. } => text,
            Query::Info => "imageInfo",
            Query::Ave => "imageAve",
            Query::Exif => "exif",
            Query::Original | Query::ImageProcess => "",
        }
    }
}

/// What a GET or HEAD asks for: an object, or a conversion or facts of it.
#[derive(Debug)]
pub struct Download {
    pub key: String,
    pub query: Query,
    /// The `Accept` header, for `format/auto`.
    pub accept: Option<String>,
    /// The `If-None-Match` header: ETags the client holds (answered 304 when one is the result's).
    pub if_none_match: Option<String>,
}

impl Download {
    /// True when the answer depends on `Accept` (`format/auto`): responses carry `Vary: Accept`.
    pub fn varies_on_accept(&self) -> bool {
        matches!(&self.query, Query::Rule { rule, .. } if rule.format_auto)
    }

    /// Whether the client already holds the result tagged `tag`.
    fn holds(&self, tag: &str) -> bool {
        self.if_none_match
            .as_deref()
            .is_some_and(|list| cache::listed(list, tag))
    }

    /// What decides a conversion's or a fact's bytes besides its source: the parsed rule (with, for
    /// `format/auto`, what the Accept header chooses for each input format), `imageInfo` or
    /// `imageAve`; `None` for the object itself.
    fn work(&self) -> Option<String> {
        match &self.query {
            Query::Rule { rule, .. } if rule.format_auto => Some(format!(
                "{rule:?}\naccept {}",
                crate::accept::class(self.accept.as_deref())
            )),
            Query::Rule { rule, .. } => Some(format!("{rule:?}")),
            Query::Info | Query::Ave | Query::Exif => Some(self.query.processor().to_string()),
            Query::Original | Query::ImageProcess => None,
        }
    }
}

/// An answer with a body: the object, a conversion or a fact.
pub struct Body {
    pub bytes: Vec<u8>,
    pub content_type: String,
    /// The stored object's head (ETag, user metadata, time), when the answer is the object itself.
    pub stored: Option<Head>,
    /// A conversion's or a fact's ETag, known before the work (`cache::tag`).
    pub tag: Option<String>,
    /// What a conversion lost (dropped frames), for the `x-mogr-warning` header.
    pub warning: Option<String>,
    /// `imageSlim`'s `X-Slimflag` (1 slimmed, 2 the original).
    pub slim_flag: Option<u8>,
    /// What the request read and made, and where its time went (`Server-Timing`, `X-Mogr-Bytes`,
    /// the access log); empty for the object itself.
    pub record: Record,
}

/// What a download answers.
// One per request, moved once into the response: boxing the body would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Answer {
    Body(Body),
    /// The client holds the result already (`If-None-Match` names its tag): 304.
    NotModified {
        tag: String,
    },
    /// The result is too large to answer inline: it was stored, and this URL serves it.
    Redirect(String),
}

impl Service {
    /// `profile` and `size-limit` cost extra encoding on every GET (a slower encoder, up to eight
    /// re-encodes): a download may ask for them only if the operator allows it.
    fn allow_on_download(&self, rule: &Rule) -> Result<()> {
        let costly = [
            (rule.profile.is_some(), "profile"),
            (rule.size_limit.is_some(), "size-limit"),
        ];
        match costly.iter().find(|(asked, _)| *asked) {
            Some((_, name)) if !self.config.download_allow_costly => Err(Error::invalid(format!(
                "{name} is not available upon download here: it re-encodes on every request. Store the \
                 result once instead (PUT or POST ?image_process with Pic-Operations), or have the operator \
                 set MOGR_DOWNLOAD_ALLOW_COSTLY=1"
            ))),
            _ => Ok(()),
        }
    }

    pub async fn answer(&self, mut d: Download) -> Result<Answer> {
        // mogr's own objects (kept results, uploads in progress) are not served
        if store::is_reserved(&d.key) {
            return Err(Error::new(
                Code::AccessDenied,
                format!(
                    "{:?} is one of mogr's own objects (under {}), not served",
                    d.key,
                    store::RESERVED
                ),
            ));
        }
        if let Query::Rule { rule, .. } = &mut d.query {
            self.allow_on_download(rule)?;
            // a watermark's image is part of what names the result (its ETag is in the rule's text)
            self.head_marks(rule).await?;
        }
        let Some(mut work) = d.work() else {
            return self.the_object(&d.key).await;
        };
        // The source's head names the result: a client that holds it, or a kept copy, costs no read
        // of the source. Without either to look for, the source is read at once.
        let caching = matches!(d.query, Query::Rule { .. }) && self.config.result_cache;
        let mut tag = None;
        let mut timings = Timings::default();
        if d.if_none_match.is_some() || caching {
            let started = Instant::now();
            let head = (self.default_bucket.head(&d.key).await?)
                .ok_or_else(|| store::no_such_key(&d.key))?;
            timings.add("fetch", started.elapsed());
            let t = cache::tag(&head.etag, &work);
            if d.holds(&t) {
                return Ok(Answer::NotModified { tag: t });
            }
            if caching {
                let started = Instant::now();
                let hit = self.cached(&t).await;
                timings.add("cache", started.elapsed());
                if let Some(hit) = hit {
                    return self.answer_kept(&t, hit, timings).await;
                }
            }
            tag = Some((head.etag, t));
        }
        let started = Instant::now();
        let obj = self.default_bucket.get(&d.key).await?;
        if let Query::Rule { rule, .. } = &mut d.query {
            // a mark that changed since its head: the result is the new mark's
            if self.read_marks(rule).await? {
                work = d.work().unwrap_or_default();
                tag = None;
            }
        }
        timings.add("fetch", started.elapsed());
        let bytes_in = obj.body.len();
        // the source changed since its head: the result is the new source's
        let tag = match tag {
            Some((etag, t)) if etag == obj.head.etag => t,
            _ => cache::tag(&obj.head.etag, &work),
        };
        let limits = self.config.download_limits();
        let json = |bytes: Vec<u8>| {
            Answer::Body(Body {
                bytes,
                content_type: "application/json".into(),
                stored: None,
                tag: Some(tag.clone()),
                warning: None,
                slim_flag: None,
                record: Record {
                    bytes_in: Some(bytes_in as u64),
                    timings: timings.clone(),
                    ..Record::default()
                },
            })
        };
        match d.query {
            Query::Info => {
                let input = obj.body;
                let mut info = self
                    .work
                    .run(limits.deadline, move || info::image_info(&input, &limits))
                    .await?;
                info.stored_quality = store::output_quality(&obj.head.metadata).map(str::to_owned);
                Ok(json(
                    serde_json::to_vec(&info).map_err(|e| Error::internal(e.to_string()))?,
                ))
            }
            Query::Ave => {
                let input = obj.body;
                let rgb = self
                    .work
                    .run(limits.deadline, move || {
                        let pic = codec::probe_and_decode(&input, &limits, Frames::First)?;
                        Ok(info::average_rgb(&pic))
                    })
                    .await?;
                Ok(json(
                    serde_json::json!({ "RGB": rgb }).to_string().into_bytes(),
                ))
            }
            Query::Exif => {
                let input = obj.body;
                let text = self
                    .work
                    .run(limits.deadline, move || info::exif_json(&input, &limits))
                    .await?;
                Ok(json(text.into_bytes()))
            }
            Query::Rule { mut rule, .. } => {
                let Object { head, body } = obj;
                let accept = d.accept;
                let started = Instant::now();
                let out = self
                    .work
                    .run(limits.deadline, move || {
                        let probe = match codec::probe(&body, &limits) {
                            Ok(p) => p,
                            Err(e) => {
                                let out = convert::or_original(Err(e), &body, &rule, &limits)?;
                                return Ok((None, out));
                            }
                        };
                        if rule.format_auto {
                            rule.format =
                                Some(crate::accept::negotiate(accept.as_deref(), probe.format)?);
                        }
                        let input = Image::source(&probe, body.len());
                        let out = convert::convert_probed(
                            &body,
                            probe,
                            &rule,
                            &limits,
                            Profile::Download,
                        )?;
                        Ok((Some(input), out))
                    })
                    .await?;
                let (input, out) = out;
                // the time in the work queue not spent converting: the wait for a worker, the probe
                let worked = started.elapsed();
                timings.add("queue", worked.saturating_sub(out.timings.total()));
                timings.extend(&out.timings);
                if self.too_large(out.bytes.len()) {
                    if let Some(url) = self.cache_url(&tag).await? {
                        self.keep(&tag, &head.etag, out).await?;
                        return Ok(Answer::Redirect(url));
                    }
                }
                if self.config.result_cache {
                    let started = Instant::now();
                    self.remember(&tag, &head.etag, &out).await;
                    timings.add("cache", started.elapsed());
                }
                let record = Record {
                    bytes_in: Some(bytes_in as u64),
                    input,
                    outputs: vec![Image::made(&out)],
                    timings,
                };
                Ok(Answer::Body(Body {
                    content_type: out.format.mime().to_string(),
                    warning: out.warning(),
                    slim_flag: out.slim_flag,
                    bytes: out.bytes,
                    stored: None,
                    tag: Some(tag),
                    record,
                }))
            }
            Query::Original | Query::ImageProcess => self.the_object(&d.key).await,
        }
    }

    /// The object itself, or a redirect to it when it is too large to answer inline.
    async fn the_object(&self, key: &str) -> Result<Answer> {
        if let Some(url) = self.large_original(key).await? {
            return Ok(Answer::Redirect(url));
        }
        let obj = self.default_bucket.get(key).await?;
        let content_type = obj
            .head
            .content_type
            .clone()
            .unwrap_or_else(|| guess_type(&obj.body));
        Ok(Answer::Body(Body {
            bytes: obj.body,
            content_type,
            stored: Some(obj.head),
            tag: None,
            warning: None,
            slim_flag: None,
            record: Record::default(),
        }))
    }

    /// A kept result answered: inline, or redirected to when it is too large and the store has URLs.
    async fn answer_kept(&self, tag: &str, hit: Hit, timings: Timings) -> Result<Answer> {
        if self.too_large(hit.bytes.len()) {
            if let Some(url) = self.cache_url(tag).await? {
                return Ok(Answer::Redirect(url));
            }
        }
        Ok(body_of(tag.to_string(), hit, timings))
    }

    /// Whether `len` bytes are more than an answer may hold inline (`MOGR_MAX_INLINE_BYTES`).
    fn too_large(&self, len: usize) -> bool {
        self.config.max_inline_bytes.is_some_and(|max| len > max)
    }

    /// A URL a client can fetch a kept result from (see [`Service::store_url`]).
    async fn cache_url(&self, tag: &str) -> Result<Option<String>> {
        self.store_url(&cache::key(tag)).await
    }

    /// The store's own URL of `key` (a presigned S3 URL), to redirect to; `None` when the store has
    /// none (a folder's is this service's, which would redirect to itself and serves no `_mogr/`
    /// object).
    async fn store_url(&self, key: &str) -> Result<Option<String>> {
        let url = self.default_bucket.url(key).await?;
        Ok((!url.starts_with('/')).then_some(url))
    }

    /// The store's URL of an object too large to answer inline (`MOGR_MAX_INLINE_BYTES`: Lambda's
    /// responses hold about 4.5 MB), to redirect to; `None` when it fits, or when the store has no URL
    /// of its own ([`Service::store_url`]).
    async fn large_original(&self, key: &str) -> Result<Option<String>> {
        if self.config.max_inline_bytes.is_none() {
            return Ok(None);
        }
        // a missing object is the GET's to report
        match self.default_bucket.head(key).await? {
            Some(head) if self.too_large(usize::try_from(head.size).unwrap_or(usize::MAX)) => {
                self.store_url(key).await
            }
            _ => Ok(None),
        }
    }
}

/// A kept result as a download's answer.
fn body_of(tag: String, hit: Hit, timings: Timings) -> Answer {
    Answer::Body(Body {
        bytes: hit.bytes,
        content_type: hit.content_type,
        stored: None,
        tag: Some(tag),
        warning: hit.warning,
        slim_flag: hit.slim_flag,
        record: Record {
            timings,
            ..Record::default()
        },
    })
}
