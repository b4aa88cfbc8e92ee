//! A store that records the calls made to another: what a request cost in storage calls, for tests
//! and benchmarks (a 304 must cost one HEAD, a kept result one GET).

use super::{Head, Listed, Metadata, Object, Store};
use crate::Result;
use async_trait::async_trait;
use std::sync::{Arc, Mutex};

/// One call: the operation (`get`, `head`, `put`, `copy`, `list`, `delete`) and its key (for `copy`,
/// the destination; for `list`, the prefix).
pub type Call = (&'static str, String);

/// Wraps a store and records every call made through it.
pub struct Counting {
    inner: Arc<dyn Store>,
    calls: Mutex<Vec<Call>>,
}

impl Counting {
    pub fn new(inner: Arc<dyn Store>) -> Counting {
        Counting {
            inner,
            calls: Mutex::default(),
        }
    }

    /// The calls made since the last `take`, in order.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn record(&self, op: &'static str, key: &str) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        calls.push((op, key.to_string()));
    }
}

#[async_trait]
impl Store for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn get(&self, key: &str) -> Result<Object> {
        self.record("get", key);
        self.inner.get(key).await
    }
    async fn head(&self, key: &str) -> Result<Option<Head>> {
        self.record("head", key);
        self.inner.head(key).await
    }
    fn check_put(&self, key: &str) -> Result<()> {
        self.inner.check_put(key)
    }
    async fn put(&self, key: &str, body: Vec<u8>, ct: &str, meta: &Metadata) -> Result<String> {
        self.record("put", key);
        self.inner.put(key, body, ct, meta).await
    }
    async fn copy(&self, from: &str, to: &str, replace: Option<(&str, &Metadata)>) -> Result<Head> {
        self.record("copy", to);
        self.inner.copy(from, to, replace).await
    }
    async fn list(&self, prefix: &str, after: Option<&str>, max: usize) -> Result<Listed> {
        self.record("list", prefix);
        self.inner.list(prefix, after, max).await
    }
    fn created(&self) -> std::time::SystemTime {
        self.inner.created()
    }
    async fn url(&self, key: &str) -> Result<String> {
        self.inner.url(key).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.record("delete", key);
        self.inner.delete(key).await
    }
}
