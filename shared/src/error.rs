//! One error type for the whole crate. Each variant maps to a COS error code and an HTTP status, and its
//! message says what was wrong and what to do about it.

use std::fmt;

/// COS error codes mogr answers with (cos-api.md, "Errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Code {
    /// 400: a rule, a parameter or the input image is not acceptable.
    InvalidArgument,
    /// 400: a body that does not match the digest sent with it (`Content-MD5`, `x-amz-checksum-*`).
    BadDigest,
    /// 413: the input is larger than the configured byte limit.
    EntityTooLarge,
    /// 403
    AccessDenied,
    /// 403: a signed URL whose signature no key made.
    SignatureDoesNotMatch,
    /// 403: a request signed with an access key id this service does not hold.
    InvalidAccessKeyId,
    /// 403: a signed request whose time is more than 15 minutes from the server's.
    RequestTimeTooSkewed,
    /// 400: a body whose SHA-256 is not the `x-amz-content-sha256` it was signed with.
    XAmzContentSHA256Mismatch,
    /// 400: a body shorter than it says, or whose aws-chunked framing is broken.
    IncompleteBody,
    /// 404
    NoSuchKey,
    /// 404: a path-style request for a bucket this service does not serve.
    NoSuchBucket,
    /// 404: a multipart upload id that does not exist (or was completed or aborted).
    NoSuchUpload,
    /// 406: `format/auto` found no format the request's Accept header admits.
    NotAcceptable,
    /// 408: the client did not send its request in time.
    RequestTimeout,
    /// 500: a failure inside mogr, not caused by the request.
    InternalError,
    /// 502: the storage failed (answered 5xx, or the connection broke); nothing was written.
    BadGateway,
    /// 504: the storage did not answer in time.
    GatewayTimeout,
    /// 503: too much work queued already; the response carries `Retry-After`.
    SlowDown,
    /// 503: the work ran past the request's deadline and was stopped; nothing was written.
    ServiceUnavailable,
    /// 412: a precondition (`If-Match`, `If-Unmodified-Since`) does not hold.
    PreconditionFailed,
    /// 416: a `Range` that starts past the end of the body.
    InvalidRange,
    /// 501: a request mogr recognises but does not implement (a subresource such as `?acl`, a header
    /// such as a copy source, a method); nothing was read or written.
    NotImplemented,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgument => "InvalidArgument",
            Code::EntityTooLarge => "EntityTooLarge",
            Code::BadDigest => "BadDigest",
            Code::AccessDenied => "AccessDenied",
            Code::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Code::InvalidAccessKeyId => "InvalidAccessKeyId",
            Code::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            Code::XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
            Code::IncompleteBody => "IncompleteBody",
            Code::NoSuchKey => "NoSuchKey",
            Code::NoSuchUpload => "NoSuchUpload",
            Code::NoSuchBucket => "NoSuchBucket",
            Code::NotAcceptable => "NotAcceptable",
            Code::RequestTimeout => "RequestTimeout",
            Code::InternalError => "InternalError",
            Code::BadGateway => "BadGateway",
            Code::GatewayTimeout => "GatewayTimeout",
            Code::SlowDown => "SlowDown",
            Code::ServiceUnavailable => "ServiceUnavailable",
            Code::NotImplemented => "NotImplemented",
            Code::PreconditionFailed => "PreconditionFailed",
            Code::InvalidRange => "InvalidRange",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Code::InvalidArgument
            | Code::BadDigest
            | Code::XAmzContentSHA256Mismatch
            | Code::IncompleteBody => 400,
            Code::EntityTooLarge => 413,
            Code::AccessDenied
            | Code::SignatureDoesNotMatch
            | Code::InvalidAccessKeyId
            | Code::RequestTimeTooSkewed => 403,
            Code::NoSuchKey | Code::NoSuchUpload | Code::NoSuchBucket => 404,
            Code::NotAcceptable => 406,
            Code::RequestTimeout => 408,
            Code::InternalError => 500,
            Code::NotImplemented => 501,
            Code::PreconditionFailed => 412,
            Code::InvalidRange => 416,
            Code::BadGateway => 502,
            Code::GatewayTimeout => 504,
            Code::SlowDown | Code::ServiceUnavailable => 503,
        }
    }
}

/// An error with the COS code it should be reported as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::InternalError, message)
    }
    /// True when the failure came from the request (4xx), false for mogr's own faults.
    pub fn is_client_error(&self) -> bool {
        self.code.status() < 500
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}
