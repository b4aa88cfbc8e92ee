//! A local folder as the bucket. Objects are plain files under the root (so `examples/` can be served
//! as it is); ETag, content type and user metadata live beside them in `.mogr/meta/<key>.json`. Writes
//! go to a temporary file in `.mogr/tmp` and are renamed into place, so readers never see a partial file.

use super::{check_key, Head, Metadata, Object, Store};
use crate::{Code, Error, Result};
use async_trait::async_trait;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct DirStore {
    bucket: String,
    root: PathBuf,
}

#[derive(Serialize, Deserialize, Default)]
struct Sidecar {
    etag: String,
    content_type: Option<String>,
    #[serde(default)]
    metadata: Metadata,
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl DirStore {
    pub fn new(bucket: impl Into<String>, root: impl Into<PathBuf>) -> DirStore {
        DirStore {
            bucket: bucket.into(),
            root: root.into(),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn sidecar(&self, key: &str) -> PathBuf {
        self.root.join(".mogr/meta").join(format!("{key}.json"))
    }

    async fn write_atomic(&self, dest: &Path, body: &[u8]) -> Result<()> {
        let tmp_dir = self.root.join(".mogr/tmp");
        let io = |e: std::io::Error| Error::internal(format!("writing {}: {e}", dest.display()));
        tokio::fs::create_dir_all(&tmp_dir).await.map_err(io)?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(io)?;
        }
        let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = tmp_dir.join(format!("{}-{seq}", std::process::id()));
        tokio::fs::write(&tmp, body).await.map_err(io)?;
        tokio::fs::rename(&tmp, dest).await.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }
}

fn etag_of(body: &[u8]) -> String {
    format!("{:x}", Md5::digest(body))
}

#[async_trait]
impl Store for DirStore {
    fn name(&self) -> &str {
        &self.bucket
    }

    async fn get(&self, key: &str) -> Result<Object> {
        let path = self.path(key)?;
        let body = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
                ) =>
            {
                return Err(Error::new(
                    Code::NoSuchKey,
                    format!("the object {key:?} does not exist"),
                ))
            }
            Err(e) => return Err(Error::internal(format!("reading {key:?}: {e}"))),
        };
        let head = self.head_of(key, &body).await;
        Ok(Object { head, body })
    }

    async fn head(&self, key: &str) -> Result<Option<Head>> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(body) => Ok(Some(self.head_of(key, &body).await)),
            Err(_) => Ok(None),
        }
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        metadata: &Metadata,
    ) -> Result<String> {
        let path = self.path(key)?;
        let etag = etag_of(&body);
        let side = Sidecar {
            etag: etag.clone(),
            content_type: Some(content_type.to_string()),
            metadata: metadata.clone(),
        };
        let side_json = serde_json::to_vec(&side).map_err(|e| Error::internal(e.to_string()))?;
        // The sidecar first: a crash between the two leaves a stale sidecar whose ETag no longer matches,
        // which `head_of` ignores, never a new body with old metadata.
        self.write_atomic(&self.sidecar(key), &side_json).await?;
        self.write_atomic(&path, &body).await?;
        Ok(etag)
    }

    async fn url(&self, key: &str) -> Result<String> {
        check_key(key)?;
        Ok(format!("/{}", super::encode_key(key)))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            // a folder is not an object: nothing to delete under that key
            Err(_) if path.is_dir() => return Ok(()),
            Err(e) => return Err(Error::internal(format!("deleting {key:?}: {e}"))),
        }
        let _ = tokio::fs::remove_file(self.sidecar(key)).await;
        Ok(())
    }
}

impl DirStore {
    /// Metadata from the sidecar when it belongs to this body (same ETag); otherwise just the ETag.
    async fn head_of(&self, key: &str, body: &[u8]) -> Head {
        let etag = etag_of(body);
        let side: Sidecar = match tokio::fs::read(self.sidecar(key)).await {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => Sidecar::default(),
        };
        if side.etag == etag {
            Head {
                etag,
                content_type: side.content_type,
                metadata: side.metadata,
                size: body.len() as u64,
            }
        } else {
            Head {
                etag,
                content_type: None,
                metadata: Metadata::new(),
                size: body.len() as u64,
            }
        }
    }
}

impl DirStore {
    /// Whether `key` names a folder (a prefix of other keys) rather than an object.
    pub fn is_folder(&self, key: &str) -> bool {
        check_key(key).is_ok() && self.root.join(key).is_dir()
    }

    /// Every object in the folder, for a listing: each file's key, size, ETag (its MD5, as a GET
    /// answers) and modification time. `.mogr/` (mogr's own bookkeeping) and names that are not valid
    /// keys are left out.
    pub async fn entries(&self) -> Result<Vec<super::Entry>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || walk(&root))
            .await
            .map_err(|e| Error::internal(format!("listing the folder: {e}")))?
    }
}

fn walk(root: &Path) -> Result<Vec<super::Entry>> {
    use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let read = std::fs::read_dir(&dir)
            .map_err(|e| Error::internal(format!("listing {}: {e}", dir.display())))?;
        for entry in read.flatten() {
            let path = entry.path();
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // gone meanwhile, or a broken link
            };
            let Some(key) = path
                .strip_prefix(root)
                .ok()
                .and_then(|k| k.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            if key == ".mogr" {
                continue;
            }
            if meta.is_dir() {
                dirs.push(path);
            } else if meta.is_file() && check_key(&key).is_ok() {
                let Ok(body) = std::fs::read(&path) else {
                    continue;
                };
                let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                out.push(super::Entry {
                    etag: etag_of(&body),
                    size: body.len() as u64,
                    last_modified: DateTime::from(modified)
                        .fmt(DateTimeFormat::DateTime)
                        .unwrap_or_default(),
                    key,
                });
            }
        }
    }
    Ok(out)
}
