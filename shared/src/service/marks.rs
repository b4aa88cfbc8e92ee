//! `watermark/1`'s images: named by their heads before a result is looked for, read only when one is
//! made, from the served bucket and only from it. The URL's
//! host must name this bucket — COS's `<bucket>.cos.<region>.myqcloud.com` (or its image-processing
//! `.pic.` host), S3's `<bucket>.s3[.<region>].amazonaws.com` or `s3.<region>.amazonaws.com/<bucket>/`,
//! or `MOGR_PUBLIC_HOST` — and anything else is refused (403): no request ever goes to another host.

use super::Service;
use crate::rule::{ImageMark, Mark, MarkObject, Op, Rule};
use crate::store;
use crate::{Code, Error, Result};
use percent_encoding::percent_decode_str;

impl Service {
    /// Names the image of each `watermark/1` in `rule` by its head: key and ETag, which name the
    /// result (see [`crate::rule::MarkObject`]); a missing image is a 400, one over the input limit too.
    pub(super) async fn head_marks(&self, rule: &mut Rule) -> Result<()> {
        for mark in image_marks(rule) {
            let key = self.mark_key(&mark.url)?;
            let head = self
                .default_bucket
                .head(&key)
                .await?
                .ok_or_else(|| missing(&key))?;
            self.config
                .limits
                .check_bytes(head.size as usize)
                .map_err(|e| {
                    Error::new(
                        e.code,
                        format!("the watermark image {key:?}: {}", e.message),
                    )
                })?;
            mark.object = Some(MarkObject {
                key,
                etag: head.etag,
                bytes: None,
            });
        }
        Ok(())
    }

    /// Reads the bytes of the images [`Service::head_marks`] named, for a result to be made. True
    /// when one changed since its head (its ETag is then the one read: the result's name changes).
    pub(super) async fn read_marks(&self, rule: &mut Rule) -> Result<bool> {
        let mut changed = false;
        for object in image_marks(rule).filter_map(|m| m.object.as_mut()) {
            if object.bytes.is_some() {
                continue;
            }
            let obj = self
                .default_bucket
                .get(&object.key)
                .await
                .map_err(|e| match e.code {
                    Code::NoSuchKey => missing(&object.key),
                    _ => e,
                })?;
            self.config.limits.check_bytes(obj.body.len())?;
            changed |= obj.head.etag != object.etag;
            object.etag = obj.head.etag;
            object.bytes = Some(obj.body.into());
        }
        Ok(changed)
    }

    /// The key a watermark image's URL names in the served bucket.
    fn mark_key(&self, url: &str) -> Result<String> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .unwrap_or(url);
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = host.to_ascii_lowercase();
        let host = host.rsplit_once(':').map_or(host.as_str(), |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host.as_str()
            }
        });
        let served = self.default_bucket.name();
        let (bucket, path) = match bucket_of(host, path) {
            _ if self.config.public_host.as_deref().is_some_and(|p| {
                let p = p.trim_start_matches("https://").trim_start_matches("http://");
                p.eq_ignore_ascii_case(host)
            }) =>
            {
                (served.to_string(), path)
            }
            Some(found) => found,
            None => {
                return Err(Error::new(
                    Code::AccessDenied,
                    format!(
                        "watermark images come from this bucket only, and {:?} is not one of its hosts: \
                         name the image by its COS or S3 URL in {served:?} (e.g. \
                         http://{served}.cos.<region>.myqcloud.com/logo.png)",
                        host.chars().take(80).collect::<String>()
                    ),
                ))
            }
        };
        let same = self
            .bucket_named(Some(&bucket))
            .is_ok_and(|b| b.name() == served);
        if !same {
            return Err(Error::new(
                Code::AccessDenied,
                format!(
                    "watermark images come from this bucket ({served:?}) only, not from {:?}",
                    bucket.chars().take(80).collect::<String>()
                ),
            ));
        }
        let key = store::decode_path(path)
            .map_err(|_| Error::invalid("a watermark image's URL names its key in UTF-8"))?;
        if key.is_empty() || store::is_reserved(&key) {
            return Err(Error::new(
                Code::AccessDenied,
                format!("{key:?} cannot be a watermark image: name an object of the bucket"),
            ));
        }
        Ok(key)
    }
}

/// The image marks of `rule`.
fn image_marks(rule: &mut Rule) -> impl Iterator<Item = &mut ImageMark> {
    rule.ops.iter_mut().filter_map(|op| match op {
        Op::Watermark(wm) => match &mut wm.mark {
            Mark::Image(m) => Some(m),
            Mark::Text(_) => None,
        },
        _ => None,
    })
}

fn missing(key: &str) -> Error {
    Error::invalid(format!(
        "the watermark image {key:?} is not in the bucket: upload it, then name its URL (url-safe \
         base64) in watermark/1/image/"
    ))
}

/// The bucket a COS or S3 host names, and the key's path (path-style S3 names the bucket first).
fn bucket_of<'a>(host: &str, path: &'a str) -> Option<(String, &'a str)> {
    let s3 = |s: &str| s == "s3" || s.starts_with("s3.") || s.starts_with("s3-");
    if let Some(cos) = host.strip_suffix(".myqcloud.com") {
        // <bucket>-<appid>.cos.<region>, .pic.<region>, .picsh, .cos-website.<region>, ...
        let (bucket, service) = cos.split_once('.')?;
        let ours = ["cos.", "cos-", "pic", "ci."]
            .iter()
            .any(|s| service.starts_with(s));
        return (ours && !bucket.is_empty()).then(|| (bucket.to_string(), path));
    }
    let aws = host.strip_suffix(".amazonaws.com")?;
    if s3(aws) {
        let (bucket, key) = path.split_once('/')?;
        return Some((
            percent_decode_str(bucket).decode_utf8_lossy().into_owned(),
            key,
        ));
    }
    // <bucket>.s3[.<region>]: bucket names may hold dots themselves
    let at = aws.rfind(".s3")?;
    let (bucket, service) = (&aws[..at], &aws[at + 1..]);
    (s3(service) && !bucket.is_empty()).then(|| (bucket.to_string(), path))
}

#[cfg(test)]
mod tests {
    use super::bucket_of;

    #[test]
    fn hosts_name_their_bucket() {
        let b = |h, p| bucket_of(h, p).map(|(b, k)| (b, k.to_string()));
        let ok = |b: &str, k: &str| Some((b.to_string(), k.to_string()));
        assert_eq!(
            b("pics-125.cos.ap-shanghai.myqcloud.com", "a/logo.png"),
            ok("pics-125", "a/logo.png")
        );
        assert_eq!(
            b("pics-125.pic.ap-shanghai.myqcloud.com", "logo.png"),
            ok("pics-125", "logo.png")
        );
        assert_eq!(
            b("pics-125.picsh.myqcloud.com", "logo.png"),
            ok("pics-125", "logo.png")
        );
        assert_eq!(
            b("pics.s3.amazonaws.com", "logo.png"),
            ok("pics", "logo.png")
        );
        assert_eq!(
            b("my.pics.s3.eu-west-1.amazonaws.com", "logo.png"),
            ok("my.pics", "logo.png")
        );
        assert_eq!(
            b("pics.s3-eu-west-1.amazonaws.com", "logo.png"),
            ok("pics", "logo.png")
        );
        assert_eq!(
            b("s3.eu-west-1.amazonaws.com", "pics/logo.png"),
            ok("pics", "logo.png")
        );
        for other in [
            "example.com",
            "pics.example.com",
            "pics-125.cos.ap-shanghai.myqcloud.com.evil.com",
            "evil.myqcloud.com",
            "pics.ec2.amazonaws.com",
            "pics.s3x.amazonaws.com",
            "localhost",
        ] {
            assert_eq!(b(other, "logo.png"), None, "{other}");
        }
    }
}
