//! mogr: an open implementation of COS `imageMogr2` / `Pic-Operations` image processing.
//!
//! - [`rule`]: the imageMogr2 grammar, parsed into typed operations;
//! - [`codec`]: decoding and encoding per format, with limits checked before pixels are allocated;
//! - [`pipeline`]: the operations, run in order over a decoded picture;
//! - [`convert`]: one conversion end to end (decode, pipeline, encode, COS quality semantics);
//! - [`info`]: `?imageInfo` / `?imageAve`;
//! - [`quality`]: SSIMULACRA2 scores, used by tests, the benchmark and calibration;
//! - [`pic_ops`]: Pic-Operations JSON, fileid rules, UploadResult and Error XML;
//! - [`store`]: object storage (S3 or a local folder);
//! - [`service`]: the three ways to process, as async functions over `http` requests;
//! - [`aws`]: start-up shared by the Lambda functions.

pub mod accept;
pub mod aws;
pub mod codec;
pub mod convert;
mod error;
pub mod info;
pub mod pic_ops;
pub mod pipeline;
pub mod quality;
pub mod rule;
pub mod service;
pub mod store;

pub use codec::{Format, Limits};
pub use convert::{convert, Output};
pub use error::{Code, Error, Result};
pub use rule::{parse, Profile, Rule};
