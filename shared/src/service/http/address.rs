//! Which bucket and key a request addresses. mogr answers two styles, told apart by one rule:
//!
//! - **S3 clients address path-style**: a request signed or presigned the S3 way (`Authorization:
//!   AWS4-HMAC-SHA256 …` or `AWS …`, `X-Amz-Credential`/`AWSAccessKeyId` in the query) or carrying
//!   `x-amz-content-sha256` (every request of an AWS SDK or the AWS CLI) is `/<bucket>/<key>`, and
//!   `/<bucket>` is the bucket itself; `/` alone is the account (ListBuckets).
//! - **Everything else addresses the key** (`/<key>`, COS style: the bucket is in the `Host` or
//!   implied): the COS SDKs, curl, browsers.
//!
//! Once read, the request's path is the key's (`/<key>`), whatever the style, and an [`Addressed`]
//! extension records what was found, so that reading it again changes nothing.

use super::super::Service;
use crate::{Code, Error, Result};
use http::{header, Request, Uri};
use percent_encoding::percent_decode_str;

/// What [`Service::address`] found: the bucket a path-style request named (`None` for `/` or a COS-style
/// request), and whether the request came from an S3 client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addressed {
    pub bucket: Option<String>,
    pub s3: bool,
}

/// The path a request was sent with, before [`Service::address`] left it the key's: what a signature
/// covers.
#[derive(Clone, Debug)]
pub(in crate::service) struct SentPath(pub String);

/// Whether `req` comes from an S3 client (the rule above).
pub fn is_s3_request<B>(req: &Request<B>) -> bool {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let query = req.uri().query().unwrap_or_default();
    auth.starts_with("AWS4-HMAC-SHA256 ")
        || auth.starts_with("AWS ")
        || query.contains("X-Amz-Credential=")
        || query.contains("AWSAccessKeyId=")
        || req.headers().contains_key("x-amz-content-sha256")
}

impl Service {
    /// Reads which bucket `req` addresses and leaves its path the key's (see the module's rule); a
    /// path-style request naming a bucket this service does not serve is 404 `NoSuchBucket`.
    pub fn address<B>(&self, req: &mut Request<B>) -> Result<()> {
        if req.extensions().get::<Addressed>().is_some() {
            return Ok(());
        }
        let s3 = is_s3_request(req);
        let mut bucket = None;
        if s3 {
            let path = req.uri().path();
            let rest = path.strip_prefix('/').unwrap_or(path);
            let (name, key) = rest.split_once('/').unwrap_or((rest, ""));
            if !name.is_empty() {
                let name = percent_decode_str(name).decode_utf8_lossy().into_owned();
                let served = self.default_bucket.name();
                if name != served && !self.any_name {
                    return Err(Error::new(
                        Code::NoSuchBucket,
                        format!(
                            "the bucket {name:?} is not served here; this server serves {served:?}"
                        ),
                    ));
                }
                let sent = req.uri().path().to_string();
                let path_and_query = match req.uri().query() {
                    Some(q) => format!("/{key}?{q}"),
                    None => format!("/{key}"),
                };
                let mut parts = req.uri().clone().into_parts();
                parts.path_and_query = Some(
                    path_and_query
                        .parse()
                        .map_err(|_| Error::invalid("the request's path is not a valid URI"))?,
                );
                *req.uri_mut() = Uri::from_parts(parts)
                    .map_err(|_| Error::invalid("the request's path is not a valid URI"))?;
                req.extensions_mut().insert(SentPath(sent));
                bucket = Some(name);
            }
        }
        req.extensions_mut().insert(Addressed { bucket, s3 });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Config;
    use crate::store::DirStore;
    use std::sync::Arc;

    fn addressed(
        service: &Service,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> Result<(String, Addressed)> {
        let mut b = Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut req = b.body(()).unwrap();
        service.address(&mut req)?;
        service.address(&mut req)?; // a second reading changes nothing
        let found = req.extensions().get::<Addressed>().cloned().unwrap();
        Ok((req.uri().to_string(), found))
    }

    #[test]
    fn s3_clients_address_path_style_the_others_the_key() {
        let store = Arc::new(DirStore::new("photos", std::env::temp_dir()));
        let service = Service::new(Config::default(), store);
        let sigv4 = [("authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab")];
        let (uri, a) = addressed(&service, "/photos/a/b.jpg?x-id=GetObject", &sigv4).unwrap();
        assert_eq!(uri, "/a/b.jpg?x-id=GetObject");
        assert_eq!(
            a,
            Addressed {
                bucket: Some("photos".into()),
                s3: true
            }
        );
        let (uri, a) = addressed(
            &service,
            "/photos?list-type=2",
            &[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")],
        )
        .unwrap();
        assert_eq!(
            (uri.as_str(), a.bucket.as_deref()),
            ("/?list-type=2", Some("photos"))
        );
        let (uri, a) = addressed(&service, "/", &sigv4).unwrap();
        assert_eq!((uri.as_str(), a.bucket), ("/", None));
        let (uri, a) = addressed(
            &service,
            "/photos/x.jpg?X-Amz-Credential=AKID%2F&X-Amz-Signature=ab",
            &[],
        )
        .unwrap();
        assert_eq!(
            (uri.as_str(), a.s3),
            ("/x.jpg?X-Amz-Credential=AKID%2F&X-Amz-Signature=ab", true)
        );
        // COS style: the path is the key, whatever its first segment
        let cos = [(
            "authorization",
            "q-sign-algorithm=sha1&q-ak=AKID&q-signature=ab",
        )];
        let (uri, a) = addressed(&service, "/photos/a.jpg", &cos).unwrap();
        assert_eq!(
            (uri.as_str(), a),
            (
                "/photos/a.jpg",
                Addressed {
                    bucket: None,
                    s3: false
                }
            )
        );
        let (uri, _) = addressed(&service, "/photos/a.jpg", &[("x-amz-meta-a", "b")]).unwrap();
        assert_eq!(uri, "/photos/a.jpg");
        // another bucket
        let e = addressed(&service, "/other/a.jpg", &sigv4).unwrap_err();
        assert_eq!(e.code, Code::NoSuchBucket);
        let any = Service::new(
            Config::default(),
            Arc::new(DirStore::new("local", std::env::temp_dir())),
        )
        .answer_to_any_bucket_name();
        let (uri, a) = addressed(&any, "/examplebucket-1250000000/a.jpg", &sigv4).unwrap();
        assert_eq!(
            (uri.as_str(), a.bucket.as_deref()),
            ("/a.jpg", Some("examplebucket-1250000000"))
        );
    }
}
