//! What mogr does not implement is refused before anything is read or written: a request is never
//! answered as a plainer one than it is (a copy as an empty PUT, `PUT ?acl` as an upload, a part as
//! the object). S3's and COS's subresources and the headers that change what a request means are
//! listed here; each gets 501 `NotImplemented` naming what is missing.

use crate::auth::chunked::STREAMING;
use crate::{query, Code, Error, Result};
use http::{HeaderMap, Method, Request};

/// Subresources of S3's and COS's APIs (query parameters that make a request another operation),
/// besides those mogr answers. `uploads`, `uploadId` and `partNumber` are here too: they are
/// multipart's, answered only by a front door that implements it.
const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "append",
    "attributes",
    "cors",
    "delete",
    "domain",
    "encryption",
    "inventory",
    "intelligent-tiering",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "origin",
    "ownershipControls",
    "partNumber",
    "policy",
    "policyStatus",
    "position",
    "publicAccessBlock",
    "referer",
    "rename",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "select-type",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versioning",
    "versions",
    "website",
    "workflow",
];

/// Multipart's parameters, for a front door that answers them before the service sees the request.
const MULTIPART: &[&str] = &["uploads", "uploadId", "partNumber"];

/// The headers that name a copy's source (S3's, COS's).
pub const COPY_SOURCES: [&str; 2] = ["x-amz-copy-source", "x-cos-copy-source"];

/// Request headers that make a write something other than storing its body, with what they ask.
const WRITE_HEADERS: &[(&str, &str)] = &[
    ("x-amz-copy-source-if-match", "a conditional copy"),
    ("x-amz-copy-source-if-none-match", "a conditional copy"),
    ("x-amz-copy-source-if-modified-since", "a conditional copy"),
    (
        "x-amz-copy-source-if-unmodified-since",
        "a conditional copy",
    ),
    ("x-cos-copy-source-if-match", "a conditional copy"),
    ("x-cos-copy-source-if-none-match", "a conditional copy"),
    ("x-cos-copy-source-if-modified-since", "a conditional copy"),
    (
        "x-cos-copy-source-if-unmodified-since",
        "a conditional copy",
    ),
    ("x-amz-copy-source-range", "a ranged copy"),
    ("x-amz-tagging", "object tags"),
    ("x-cos-tagging", "object tags"),
    ("x-amz-object-lock-mode", "object lock"),
    ("x-amz-object-lock-retain-until-date", "object lock"),
    ("x-amz-object-lock-legal-hold", "a legal hold"),
    ("x-amz-website-redirect-location", "a website redirect"),
    ("x-amz-acl", "an ACL"),
    ("x-cos-acl", "an ACL"),
    ("x-amz-grant-read", "an ACL grant"),
    ("x-amz-grant-read-acp", "an ACL grant"),
    ("x-amz-grant-write-acp", "an ACL grant"),
    ("x-amz-grant-full-control", "an ACL grant"),
    ("x-cos-grant-read", "an ACL grant"),
    ("x-cos-grant-write", "an ACL grant"),
    ("x-cos-grant-full-control", "an ACL grant"),
    ("x-amz-server-side-encryption", "server-side encryption"),
    ("x-cos-server-side-encryption", "server-side encryption"),
    (
        "x-amz-server-side-encryption-customer-algorithm",
        "encryption with a customer key (SSE-C)",
    ),
    (
        "x-cos-server-side-encryption-customer-algorithm",
        "encryption with a customer key (SSE-C)",
    ),
    ("if-match", "a conditional write"),
    ("if-none-match", "a conditional write"),
];

fn not_implemented(what: String) -> Error {
    Error::new(
        Code::NotImplemented,
        format!("{what} is not implemented by mogr; nothing was read or written"),
    )
}

/// Refuses, with 501, a request mogr would otherwise answer as a plainer one: an S3 or COS
/// subresource (`?acl`, `?tagging`, `?restore`, `?delete`, …; multipart's unless `multipart` says the
/// front door answers them), a write header that asks for more than storing the body (a copy source,
/// tags, ACLs, encryption, object lock, a condition), a request body in a framing mogr does not decode
/// (`aws-chunked` the router did not decode), or a method other than GET, HEAD, PUT, POST and DELETE.
pub fn check_implemented<B>(req: &Request<B>, multipart: bool) -> Result<()> {
    let method = req.method();
    if !matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::POST | Method::DELETE
    ) {
        return Err(not_implemented(format!("the method {method}")));
    }
    let mut part = false;
    for (name, value) in query::params(req.uri().query()).map(|p| p.form()) {
        part |= MULTIPART.contains(&name.as_str());
        let known = SUBRESOURCES.iter().any(|s| s.eq_ignore_ascii_case(&name));
        let answered = (multipart && MULTIPART.contains(&name.as_str()))
            || (*method == Method::POST && name == "delete"); // DeleteObjects
        if known && !answered {
            let name: String = name.chars().take(40).collect();
            return Err(not_implemented(format!("the subresource ?{name}")));
        }
        // a bucket without versioning has one version of each object, S3's "null"
        if name == "versionId" && value != "null" {
            return Err(not_implemented("object versions (?versionId)".into()));
        }
    }
    if matches!(*method, Method::PUT | Method::POST) {
        check_write_headers(req.headers())?;
    }
    // A copy is a PUT of a whole object: not a part (UploadPartCopy), not a POST.
    let copy = COPY_SOURCES.iter().any(|h| req.headers().contains_key(*h));
    if copy && (*method != Method::PUT || part) {
        return Err(not_implemented(format!(
            "a copy by {method} or into a part"
        )));
    }
    Ok(())
}

/// Refuses a write whose headers ask for more than storing its body, or a body mogr cannot read.
fn check_write_headers(headers: &HeaderMap) -> Result<()> {
    if let Some((name, what)) = WRITE_HEADERS.iter().find(|(h, _)| headers.contains_key(*h)) {
        return Err(not_implemented(format!("{what} (the {name} header)")));
    }
    let chunked = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|e| e.trim().eq_ignore_ascii_case("aws-chunked"))
        });
    let payload = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let streaming = payload.starts_with("STREAMING-");
    // the router decodes the framings S3's clients send (body.rs); any other is refused
    if (chunked || streaming) && !STREAMING.contains(&payload) {
        return Err(not_implemented(
            "a body in aws-chunked framing without a STREAMING-UNSIGNED-PAYLOAD-TRAILER or \
             STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER] x-amz-content-sha256; send the body \
             plainly or as the AWS SDKs frame it"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn subresources_copies_and_unknown_methods_are_not_implemented() {
        let refused = [
            req("PUT", "/a.jpg?acl", &[]),
            req("PUT", "/a.jpg?acl=", &[]),
            req("GET", "/a.jpg?tagging", &[]),
            req("POST", "/a.jpg?restore", &[]),
            req("GET", "/?delete", &[]),
            req("PUT", "/a.jpg?partNumber=1&uploadId=x", &[]),
            req("POST", "/a.jpg?append&position=0", &[]),
            req("POST", "/a.jpg", &[("x-amz-copy-source", "/b/c.jpg")]),
            req(
                "PUT",
                "/a.jpg",
                &[
                    ("x-amz-copy-source", "/b/c.jpg"),
                    ("x-amz-copy-source-if-match", "x"),
                ],
            ),
            req("PUT", "/a.jpg", &[("if-none-match", "*")]),
            req("PUT", "/a.jpg", &[("content-encoding", "aws-chunked")]),
            req(
                "PUT",
                "/a.jpg",
                &[(
                    "x-amz-content-sha256",
                    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
                )],
            ),
            req("GET", "/a.jpg?versionId=3HL4kqtJlcpXroDTDmJ", &[]),
            req("PATCH", "/a.jpg", &[]),
            req("OPTIONS", "/a.jpg", &[]),
        ];
        for r in &refused {
            let e = check_implemented(r, false).unwrap_err();
            assert_eq!(e.code, Code::NotImplemented, "{} {}", r.method(), r.uri());
            assert_eq!(e.code.status(), 501);
        }
        let answered = [
            req("GET", "/a.jpg?imageMogr2/format/heif", &[]),
            req(
                "GET",
                "/a.jpg?x-id=GetObject&response-content-type=image%2Fpng",
                &[],
            ),
            req("GET", "/a.jpg", &[("if-none-match", "\"x\"")]),
            req(
                "PUT",
                "/a.jpg",
                &[("x-amz-meta-a", "b"), ("content-md5", "x")],
            ),
            req("POST", "/a.jpg?image_process", &[]),
            req("DELETE", "/a.jpg", &[]),
            req("GET", "/a.jpg?versionId=null", &[]),
            req("PUT", "/a.jpg", &[("x-amz-copy-source", "/b/c.jpg")]),
            req(
                "PUT",
                "/a.jpg",
                &[("x-cos-copy-source", "b.cos.x.myqcloud.com/c.jpg")],
            ),
            // framings the router decodes
            req(
                "PUT",
                "/a.jpg",
                &[
                    ("content-encoding", "aws-chunked"),
                    ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
                ],
            ),
        ];
        for r in &answered {
            assert!(
                check_implemented(r, false).is_ok(),
                "{} {}",
                r.method(),
                r.uri()
            );
        }
        // a front door that answers multipart lets its parameters through
        let part = req("PUT", "/a.jpg?partNumber=1&uploadId=x", &[]);
        assert!(check_implemented(&part, true).is_ok());
        let copy_part = req(
            "PUT",
            "/a.jpg?partNumber=1&uploadId=x",
            &[("x-amz-copy-source", "/b/c")],
        );
        assert!(check_implemented(&copy_part, true).is_err());
    }
}
