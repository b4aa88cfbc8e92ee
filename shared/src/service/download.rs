//! Upon download: the original, `?imageInfo`, `?imageAve`, or the object converted by an `imageMogr2`
//! rule with the download profile. Results larger than an inline response can hold are stored once
//! and redirected to.

use super::content_type::guess_type;
use super::Service;
use crate::codec::{self, Frames, Profile};
use crate::convert::{self, Output};
use crate::rule::Rule;
use crate::store::{self, output_metadata, Head, Object};
use crate::{info, Code, Error, Result};
use md5::{Digest, Md5};

/// What a download asks for.
#[derive(Debug)]
pub enum Query {
    Original,
    /// `imageMogr2/...`: the rule as written (it names a large result's stored copy) and parsed.
    Rule {
        text: String,
        rule: Rule,
    },
    Info,
    Ave,
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
}

impl Download {
    /// True when the answer depends on `Accept` (`format/auto`): responses carry `Vary: Accept`.
    pub fn varies_on_accept(&self) -> bool {
        matches!(&self.query, Query::Rule { rule, .. } if rule.format_auto)
    }
}

/// What a download answers.
pub enum Answer {
    Body {
        bytes: Vec<u8>,
        content_type: String,
        /// The stored object's head (ETag, user metadata, time), when the answer is the object itself.
        stored: Option<Head>,
        /// What a conversion lost (dropped frames), for the `x-mogr-warning` header.
        warning: Option<String>,
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

    pub async fn answer(&self, d: Download) -> Result<Answer> {
        // mogr's own objects other than large results (which it hands out itself) are not served
        let large = self.config.large_prefix.as_str();
        if crate::store::is_reserved(&d.key) && (large.is_empty() || !d.key.starts_with(large)) {
            return Err(Error::new(
                Code::AccessDenied,
                format!(
                    "{:?} is one of mogr's own objects (under {}), not served",
                    d.key,
                    crate::store::RESERVED
                ),
            ));
        }
        if let Query::Rule { rule, .. } = &d.query {
            self.allow_on_download(rule)?;
        }
        let limits = self.config.download_limits();
        if matches!(d.query, Query::Original | Query::ImageProcess) {
            if let Some(url) = self.large_original(&d.key).await? {
                return Ok(Answer::Redirect(url));
            }
        }
        let obj = self.default_bucket.get(&d.key).await?;
        let json = |bytes: Vec<u8>| Answer::Body {
            bytes,
            content_type: "application/json".into(),
            stored: None,
            warning: None,
        };
        match d.query {
            Query::Original | Query::ImageProcess => {
                let content_type = obj
                    .head
                    .content_type
                    .clone()
                    .unwrap_or_else(|| guess_type(&obj.body));
                Ok(Answer::Body {
                    bytes: obj.body,
                    content_type,
                    stored: Some(obj.head),
                    warning: None,
                })
            }
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
            Query::Rule { text, mut rule } => {
                let Object { head, body } = obj;
                let accept = d.accept;
                let out = self
                    .work
                    .run(limits.deadline, move || {
                        let probe = match codec::probe(&body, &limits) {
                            Ok(p) => p,
                            Err(e) => return convert::or_original(Err(e), &body, &rule, &limits),
                        };
                        if rule.format_auto {
                            rule.format =
                                Some(crate::accept::negotiate(accept.as_deref(), probe.format)?);
                        }
                        convert::convert_probed(&body, probe, &rule, &limits, Profile::Download)
                    })
                    .await?;
                match self.config.max_inline_bytes {
                    Some(max) if out.bytes.len() > max => {
                        self.store_large(&d.key, &head.etag, &text, out).await
                    }
                    _ => Ok(Answer::Body {
                        content_type: out.format.mime().to_string(),
                        warning: out.warning(),
                        bytes: out.bytes,
                        stored: None,
                    }),
                }
            }
        }
    }

    /// A presigned URL of an object too large to answer inline (`MOGR_MAX_INLINE_BYTES`: Lambda's
    /// responses hold about 4.5 MB), to redirect to; `None` when it fits, or when the store has no URL
    /// of its own (a folder's is this service's, which would redirect to itself).
    async fn large_original(&self, key: &str) -> Result<Option<String>> {
        let Some(max) = self.config.max_inline_bytes else {
            return Ok(None);
        };
        // a missing object is the GET's to report
        let Some(head) = self.default_bucket.head(key).await? else {
            return Ok(None);
        };
        if head.size <= max as u64 {
            return Ok(None);
        }
        let url = self.default_bucket.url(key).await?;
        Ok((!url.starts_with('/')).then_some(url))
    }

    /// Stores a result too large to answer inline and redirects to it. The key is derived from the
    /// source's ETag and the rule, so a repeated request reuses the stored copy.
    async fn store_large(&self, key: &str, etag: &str, rule: &str, out: Output) -> Result<Answer> {
        let digest = format!(
            "{:x}",
            Md5::digest(format!("{key}\n{etag}\n{rule}").as_bytes())
        );
        let large_key = format!(
            "{}{digest}.{}",
            self.config.large_prefix,
            out.format.extension()
        );
        let bucket = &self.default_bucket;
        if bucket.head(&large_key).await?.is_none() {
            let meta = output_metadata(etag, out.stored_quality());
            bucket
                .put(&large_key, out.bytes, out.format.mime(), &meta)
                .await?;
        }
        let url = bucket.url(&large_key).await?;
        // A local path (the folder store) is served by this service: signed when downloads must be.
        let signed = url
            .starts_with('/')
            .then(|| self.config.signer.url(&large_key, "", 900))
            .flatten();
        Ok(Answer::Redirect(signed.unwrap_or(url)))
    }
}
