//! The access keys signatures are checked against: fixed ones (`MOGR_ACCESS_KEYS`, `mogr serve`'s
//! flags) and, on Lambda, those held in a secret (`MOGR_ACCESS_KEYS_SECRET`, read by the start-up
//! code in `bootstrap.rs`). A secret is read when a signed request first needs it — never at start,
//! never for a public download — kept for [`KEYS_TTL`], and read again sooner (at most once per
//! [`KEYS_RETRY`]) when a request names a key id the cached keys lack or its signature does not
//! hold with them: a rotation is taken up within seconds. A secret that cannot be read refuses
//! signed requests with 503, never lets them through unchecked.

use crate::auth::AccessKeys;
use crate::{Code, Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a secret's keys are used before it is read again.
pub const KEYS_TTL: Duration = Duration::from_secs(300);
/// The shortest time between two reads of a secret prompted by a key it did not hold.
pub const KEYS_RETRY: Duration = Duration::from_secs(2);

/// Reads a secret's text.
pub type ReadSecret =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Result<String>> + Send>> + Send + Sync>;

/// The keys a signature may be made with; see the module.
#[derive(Default)]
pub struct Keys {
    fixed: Arc<AccessKeys>,
    secret: Option<Secret>,
}

struct Secret {
    /// Named in errors and logs (never the keys).
    name: String,
    read: ReadSecret,
    /// The fixed keys and the secret's, as last read, and when.
    cached: tokio::sync::Mutex<Option<(Arc<AccessKeys>, Instant)>>,
}

impl Keys {
    /// The fixed keys only.
    pub fn new(fixed: AccessKeys) -> Keys {
        Keys {
            fixed: Arc::new(fixed),
            secret: None,
        }
    }

    /// These keys and those held in the secret `name`, read by `read`.
    pub fn with_secret(self, name: String, read: ReadSecret) -> Keys {
        let cached = Default::default();
        Keys {
            secret: Some(Secret { name, read, cached }),
            ..self
        }
    }

    /// Whether writes and listings need a signature: there are keys, or a secret holds them (even
    /// before it is read).
    pub fn required(&self) -> bool {
        !self.fixed.is_empty() || self.secret.is_some()
    }

    /// The keys: the secret's as cached, or read now when the cache is older than [`KEYS_TTL`].
    pub async fn current(&self) -> Result<Arc<AccessKeys>> {
        match &self.secret {
            None => Ok(self.fixed.clone()),
            Some(secret) => Ok(self.younger_than(secret, KEYS_TTL).await?.0),
        }
    }

    /// The keys read again for a signature the current ones do not verify, unless the secret was
    /// read within [`KEYS_RETRY`] (or cannot be read, or there is none): `None`, nothing newer.
    pub async fn newer(&self) -> Result<Option<Arc<AccessKeys>>> {
        let Some(secret) = &self.secret else {
            return Ok(None);
        };
        let (keys, read_now) = self.younger_than(secret, KEYS_RETRY).await?;
        Ok(read_now.then_some(keys))
    }

    /// The cached keys if read within `max_age`, else read now (`true`); a failed read keeps the
    /// cached ones in use.
    async fn younger_than(
        &self,
        secret: &Secret,
        max_age: Duration,
    ) -> Result<(Arc<AccessKeys>, bool)> {
        let mut cached = secret.cached.lock().await;
        if let Some((keys, read)) = &*cached {
            if read.elapsed() < max_age {
                return Ok((keys.clone(), false));
            }
        }
        match (secret.read)()
            .await
            .and_then(|text| parse(&secret.name, &text))
        {
            Ok(held) => {
                tracing::info!(secret = %secret.name, keys = held.len(), "access keys read");
                let keys = Arc::new(self.fixed.as_ref().clone().with(held));
                *cached = Some((keys.clone(), Instant::now()));
                Ok((keys, true))
            }
            Err(e) => match cached.as_mut() {
                Some((keys, read)) => {
                    tracing::warn!(secret = %secret.name, error = %e.message, "access keys not read again; the cached ones stay in use");
                    *read = Instant::now();
                    Ok((keys.clone(), false))
                }
                None => Err(e),
            },
        }
    }
}

/// A secret's keys: `ID:SECRET` pairs, comma-separated, or a JSON object `{"ID": "SECRET", …}` (the
/// key/value form of the Secrets Manager console). A secret without keys is refused.
fn parse(name: &str, text: &str) -> Result<AccessKeys> {
    let unusable = |why: String| {
        Error::new(
            Code::ServiceUnavailable,
            format!(
                "the access keys in the secret {name:?} cannot be used ({why}); signed requests \
                 are refused until the secret holds ID:SECRET pairs or a JSON object of them"
            ),
        )
    };
    let text = text.trim();
    let keys = if text.starts_with('{') {
        let pairs: std::collections::BTreeMap<String, String> = serde_json::from_str(text)
            .map_err(|e| unusable(format!("not a JSON object of strings: {e}")))?;
        AccessKeys::from_pairs(pairs)
    } else {
        AccessKeys::parse(text)
    }
    .map_err(|e| unusable(e.message))?;
    if keys.is_empty() {
        return Err(unusable("it holds none".into()));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting(
        texts: Arc<std::sync::Mutex<Vec<Result<String>>>>,
        reads: Arc<AtomicUsize>,
    ) -> ReadSecret {
        Box::new(move || {
            reads.fetch_add(1, Ordering::SeqCst);
            let next = texts.lock().unwrap().remove(0);
            Box::pin(async move { next })
        })
    }

    #[test]
    fn both_forms_of_a_secret() {
        let keys = parse("s", "AKID1:s3cr3t-1, AKID2:s3cr3t-2").unwrap();
        assert_eq!(keys.len(), 2);
        let keys = parse("s", r#"{"AKID1": "s3cr3t-1", "AKID2": "s3cr3t-2"}"#).unwrap();
        assert_eq!(keys.len(), 2);
        // a JSON secret may hold what the text form separates with
        let keys = parse("s", r#"{"AKID1": "s3cr,3t:1"}"#).unwrap();
        assert_eq!(format!("{keys:?}"), r#"AccessKeys(["AKID1"])"#);
        for bad in [
            "",
            "{}",
            "AKID1",
            "AKID1:s3cr3t-1,AKID2",
            r#"{"AKID1": 1}"#,
            r#"{"AKID1": "s3cr3t-1", "AKID2": 2}"#,
            r#"{"AKID1": ""}"#,
        ] {
            let e = parse("s", bad).unwrap_err();
            assert_eq!(e.code, Code::ServiceUnavailable, "{bad}");
            assert!(
                !e.message.contains("s3cr3t"),
                "a secret's value is never shown: {e:?}"
            );
        }
    }

    #[tokio::test]
    async fn read_once_then_again_only_when_a_key_is_missing_and_not_too_often() {
        let texts = Arc::new(std::sync::Mutex::new(vec![
            Ok("OLD:secret".to_string()),
            Ok("OLD:secret,NEW:secret".to_string()),
            Err(Error::new(Code::ServiceUnavailable, "down")),
        ]));
        let reads = Arc::new(AtomicUsize::new(0));
        let keys = Keys::default().with_secret("s".into(), counting(texts, reads.clone()));
        assert_eq!(keys.current().await.unwrap().len(), 1);
        assert_eq!(keys.current().await.unwrap().len(), 1);
        assert_eq!(reads.load(Ordering::SeqCst), 1, "cached");
        // a missing key right after a read: not read again yet
        assert!(keys.newer().await.unwrap().is_none());
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        tokio::time::sleep(KEYS_RETRY).await;
        assert_eq!(
            keys.newer().await.unwrap().unwrap().len(),
            2,
            "the rotated secret"
        );
        tokio::time::sleep(KEYS_RETRY).await;
        // a failed read keeps the keys read last
        assert!(keys.newer().await.unwrap().is_none());
        assert_eq!(keys.current().await.unwrap().len(), 2);
        assert_eq!(reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_secret_never_read_refuses() {
        let texts = Arc::new(std::sync::Mutex::new(vec![Err(Error::new(
            Code::ServiceUnavailable,
            "down",
        ))]));
        let keys = Keys::default().with_secret("s".into(), counting(texts, Arc::default()));
        assert!(keys.required());
        assert_eq!(
            keys.current().await.unwrap_err().code,
            Code::ServiceUnavailable
        );
        assert!(Keys::default().current().await.unwrap().is_empty());
    }
}
