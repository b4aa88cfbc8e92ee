//! mogr: an open implementation of COS `imageMogr2` / `Pic-Operations` image processing.
//! ARCHITECTURE.md at the repository root maps the modules and their invariants.
//!
//! - [`rule`]: the imageMogr2 grammar, parsed into typed operations;
//! - [`codec`]: formats, limits, decoding and encoding per format family, encoder profiles;
//! - [`pipeline`]: the operations, run in order over a decoded picture;
//! - [`convert`]: conversions end to end (decode once, pipeline and encode per rule, COS quality semantics);
//! - [`info`]: `?imageInfo` / `?imageAve`;
//! - [`accept`]: `format/auto`'s choice from an `Accept` header;
//! - [`score`]: SSIMULACRA2 scores, used by tests, the benchmark and calibration;
//! - [`cos`]: COS's wire formats: Pic-Operations JSON, fileid rules, UploadResult and Error XML;
//! - [`query`]: a query string's parameters, read the way each protocol means them;
//! - [`store`]: object storage (S3 or a local folder) and object keys;
//! - [`metrics`]: CloudWatch (EMF) and Prometheus metrics of each request's record;
//! - [`service`]: the three ways to process, as async functions over `http` requests;
//! - [`bootstrap`]: start-up shared by the Lambda functions.

pub mod accept;
pub mod auth;
pub mod bootstrap;
pub mod codec;
pub mod convert;
pub mod cos;
mod env;
mod error;
pub mod info;
pub mod metrics;
pub mod pipeline;
pub mod query;
pub mod rule;
pub mod score;
pub mod service;
pub mod store;
pub mod timing;

pub use codec::{Format, Limits, Profile};
pub use convert::{convert, Output};
pub use error::{Code, Error, Result};
pub use rule::{parse, Rule};
