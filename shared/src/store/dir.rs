//! A local folder as the bucket. Objects are plain files under the root (so `examples/` can be served
//! as it is); ETag, content type and user metadata live in a sidecar, `.mogr/meta/<md5 of key>.json`,
//! that names its key and its body's ETag. Writes go to temporary files in `.mogr/tmp` and are renamed
//! into place, so readers never see a partial file.
//!
//! Body and metadata are one unit: a key's writes and reads hold that key's lock (one of 64 stripes),
//! so in one process a reader sees both old or both new, and concurrent PUTs to one key never mix one's
//! body with another's metadata; across a crash (or another process) a sidecar whose ETag is not the
//! body's is ignored, never applied to the wrong body. A folder cannot hold `a.png` and `a.png/b.png`
//! at once, nor a name over 255 bytes: such keys are refused before anything is written ([`DirStore`]'s
//! `check_put`), with errors that name the key, never the folder's path.

use super::content_etag as etag_of;
use super::{check_key, Entry, Head, Listed, Metadata, Object, Store};
use crate::{Error, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::sync::RwLock;

/// The longest file name most file systems hold (ext4, APFS, NTFS: 255 bytes or UTF-16 units).
const MAX_SEGMENT: usize = 255;
const STRIPES: usize = 64;

pub struct DirStore {
    bucket: String,
    root: PathBuf,
    locks: Box<[RwLock<()>]>,
    /// Folders are shared by keys: a write holds this for reading while it makes its key's folders
    /// and moves its file in, a delete for writing while it removes the folders it left empty, so a
    /// folder is never removed under a write that needs it.
    folders: RwLock<()>,
    etags: Arc<Etags>,
}

/// Body ETags with the size and modification time they were computed at, so that a listing or a HEAD
/// hashes only the files that changed since.
#[derive(Default)]
struct Etags(Mutex<HashMap<String, Stamp>>);

#[derive(Clone)]
struct Stamp {
    size: u64,
    modified: SystemTime,
    etag: String,
}

impl Etags {
    /// The ETag of `key`'s body when the file's size and time are those it was computed at.
    fn get(&self, key: &str, meta: &std::fs::Metadata) -> Option<String> {
        let stamp = self.0.lock().ok()?.get(key).cloned()?;
        (stamp.size == meta.len() && Some(stamp.modified) == meta.modified().ok())
            .then_some(stamp.etag)
    }

    fn remember(&self, key: &str, meta: &std::fs::Metadata, etag: &str) {
        if let (Ok(mut etags), Ok(modified)) = (self.0.lock(), meta.modified()) {
            let stamp = Stamp {
                size: meta.len(),
                modified,
                etag: etag.to_string(),
            };
            etags.insert(key.to_string(), stamp);
        }
    }
}

#[derive(Serialize, Deserialize, Default)]
struct Sidecar {
    #[serde(default)]
    key: String,
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
            locks: (0..STRIPES).map(|_| RwLock::new(())).collect(),
            folders: RwLock::new(()),
            etags: Arc::default(),
        }
        .swept()
    }

    /// The store, with the temporary files of processes that are gone removed from `.mogr/tmp`: a
    /// process killed mid-write leaves the body it was writing there, never renamed into place, so
    /// nothing refers to it. A file's name starts with its writer's process id.
    fn swept(self) -> DirStore {
        #[cfg(target_os = "linux")]
        if let Ok(dir) = std::fs::read_dir(self.root.join(".mogr/tmp")) {
            for file in dir.flatten() {
                let name = file.file_name();
                let pid = name.to_str().and_then(|n| n.split_once('-')).map(|p| p.0);
                if pid.is_some_and(|pid| !Path::new("/proc").join(pid).exists()) {
                    let _ = std::fs::remove_file(file.path());
                }
            }
        }
        self
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        if key.split('/').any(|s| s.len() > MAX_SEGMENT) {
            return Err(Error::invalid(format!(
                "object key {key:?} cannot be stored in a folder: a segment between slashes is over \
                 {MAX_SEGMENT} bytes, more than a file name can hold; shorten it"
            )));
        }
        Ok(self.root.join(key))
    }

    fn sidecar(&self, key: &str) -> PathBuf {
        self.root
            .join(".mogr/meta")
            .join(format!("{}.json", etag_of(key.as_bytes())))
    }

    fn lock(&self, key: &str) -> &RwLock<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        &self.locks[h as usize % STRIPES]
    }

    /// A temporary file holding `body`, to be renamed into place.
    async fn temp(&self, body: &[u8], key: &str) -> Result<PathBuf> {
        let tmp_dir = self.root.join(".mogr/tmp");
        tokio::fs::create_dir_all(&tmp_dir)
            .await
            .map_err(|e| io_error("writing", key, e))?;
        let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = tmp_dir.join(format!("{}-{seq}", std::process::id()));
        if let Err(e) = tokio::fs::write(&tmp, body).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_error("writing", key, e));
        }
        Ok(tmp)
    }

    /// The head of the object at `path` (its lock held by the caller), its body when `with_body`.
    async fn read(&self, key: &str, path: &Path, with_body: bool) -> Result<Option<Object>> {
        let meta = match tokio::fs::metadata(path).await {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None), // a folder is no object
            Err(e) if gone(&e) => return Ok(None),
            Err(e) => return Err(io_error("reading", key, e)),
        };
        let (etag, body) = match (with_body, self.etags.get(key, &meta)) {
            (false, Some(etag)) => (etag, Vec::new()),
            (false, None) => {
                // a head hashes the file as it reads it: no body is held
                let etag = match file_etag(path).await {
                    Ok(etag) => etag,
                    Err(e) if gone(&e) => return Ok(None),
                    Err(e) => return Err(io_error("reading", key, e)),
                };
                self.etags.remember(key, &meta, &etag);
                (etag, Vec::new())
            }
            (true, _) => {
                let body = match tokio::fs::read(path).await {
                    Ok(b) => b,
                    Err(e) if gone(&e) => return Ok(None),
                    Err(e) => return Err(io_error("reading", key, e)),
                };
                let etag = etag_of(&body);
                self.etags.remember(key, &meta, &etag);
                (etag, body)
            }
        };
        let side: Sidecar = match tokio::fs::read(self.sidecar(key)).await {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => Sidecar::default(),
        };
        // Metadata only when the sidecar belongs to this key and this body.
        let (content_type, metadata) = if side.key == key && side.etag == etag {
            (side.content_type, side.metadata)
        } else {
            (None, Metadata::new())
        };
        let head = Head {
            etag,
            content_type,
            metadata,
            size: meta.len(),
            last_modified: meta.modified().ok(),
        };
        Ok(Some(Object { head, body }))
    }

    /// Removes the folders `key` leaves empty, as S3 has no folder once its last key is gone.
    async fn prune(&self, key: &str) {
        let _folders = self.folders.write().await;
        let mut dir = Path::new(key).parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            if tokio::fs::remove_dir(self.root.join(d)).await.is_err() {
                break; // not empty, or gone
            }
            dir = d.parent();
        }
    }
}

/// The MD5 of a file, read in pieces.
async fn file_etag(path: &Path) -> std::io::Result<String> {
    use md5::{Digest, Md5};
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut md5 = Md5::new();
        std::io::copy(&mut std::fs::File::open(path)?, &mut md5)?;
        Ok(format!("{:x}", md5.finalize()))
    })
    .await
    .map_err(std::io::Error::other)?
}

fn gone(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), NotFound | IsADirectory | NotADirectory)
}

/// An I/O failure as the client sees it: the key and the kind of failure, never the folder's path
/// (the full error goes to the log).
fn io_error(doing: &str, key: &str, e: std::io::Error) -> Error {
    tracing::error!(key, error = %e, "folder store: {doing} failed");
    Error::internal(format!(
        "{doing} the object {key:?} failed in the folder store: {}",
        e.kind()
    ))
}

#[async_trait]
impl Store for DirStore {
    fn name(&self) -> &str {
        &self.bucket
    }

    async fn get(&self, key: &str) -> Result<Object> {
        let path = self.path(key)?;
        let _read = self.lock(key).read().await;
        (self.read(key, &path, true).await?).ok_or_else(|| super::no_such_key(key))
    }

    async fn head(&self, key: &str) -> Result<Option<Head>> {
        let path = self.path(key)?;
        let _read = self.lock(key).read().await;
        Ok(self.read(key, &path, false).await?.map(|o| o.head))
    }

    fn check_put(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        let conflict = |why: String| {
            Error::invalid(format!(
                "object key {key:?} cannot be stored in this folder: {why}; choose another key"
            ))
        };
        if path.is_dir() {
            return Err(conflict(
                "it is a folder here, holding other objects (a folder store cannot hold an object \
                 and objects below it under one name)"
                    .into(),
            ));
        }
        let mut above = Path::new(key).parent();
        while let Some(dir) = above.filter(|d| !d.as_os_str().is_empty()) {
            if self.root.join(dir).is_file() {
                return Err(conflict(format!(
                    "{:?} is an object, and a folder store cannot also hold objects below its name",
                    dir.to_string_lossy()
                )));
            }
            above = dir.parent();
        }
        Ok(())
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        metadata: &Metadata,
    ) -> Result<String> {
        self.check_put(key)?;
        let path = self.path(key)?;
        let etag = etag_of(&body);
        let side = Sidecar {
            key: key.to_string(),
            etag: etag.clone(),
            content_type: Some(content_type.to_string()),
            metadata: metadata.clone(),
        };
        let side_json = serde_json::to_vec(&side).map_err(|e| Error::internal(e.to_string()))?;
        let side_tmp = self.temp(&side_json, key).await?;
        let body_tmp = match self.temp(&body, key).await {
            Ok(t) => t,
            Err(e) => {
                let _ = tokio::fs::remove_file(&side_tmp).await;
                return Err(e);
            }
        };
        let _write = self.lock(key).write().await;
        let _folders = self.folders.read().await;
        let result = async {
            // A write of `a` and one of `a/b` at once both passed `check_put`: the one that finds the
            // other's file or folder in its way is refused as `check_put` would have, not failed.
            let io = |e| match self.check_put(key) {
                Err(conflict) => conflict,
                Ok(()) => io_error("writing", key, e),
            };
            tokio::fs::create_dir_all(self.root.join(".mogr/meta"))
                .await
                .map_err(io)?;
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(io)?;
            }
            // The sidecar first: a crash between the two renames leaves a sidecar whose ETag is not the
            // body's, which `read` ignores, never a new body with old metadata.
            tokio::fs::rename(&side_tmp, self.sidecar(key))
                .await
                .map_err(io)?;
            tokio::fs::rename(&body_tmp, &path).await.map_err(io)?;
            if let Ok(meta) = tokio::fs::metadata(&path).await {
                self.etags.remember(key, &meta, &etag);
            }
            Ok(())
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&side_tmp).await;
            let _ = tokio::fs::remove_file(&body_tmp).await;
        }
        result.map(|()| etag)
    }

    async fn list(&self, prefix: &str, after: Option<&str>, max: usize) -> Result<Listed> {
        // only the folder the prefix names is walked
        let folder = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let mut entries = self.entries_under(folder).await?;
        entries.retain(|e| e.key.starts_with(prefix) && after.is_none_or(|a| e.key.as_str() > a));
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let truncated = entries.len() > max;
        entries.truncate(max);
        Ok(Listed { entries, truncated })
    }

    /// The folder's own time.
    fn created(&self) -> SystemTime {
        let meta = std::fs::metadata(&self.root);
        meta.and_then(|m| m.created().or_else(|_| m.modified()))
            .unwrap_or(std::time::UNIX_EPOCH)
    }

    async fn url(&self, key: &str) -> Result<String> {
        check_key(key)?;
        Ok(format!("/{}", super::encode_key(key)))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        let _write = self.lock(key).write().await;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if gone(&e) => return Ok(()),
            // a folder is not an object: nothing to delete under that key
            Err(_) if path.is_dir() => return Ok(()),
            Err(e) => return Err(io_error("deleting", key, e)),
        }
        let _ = tokio::fs::remove_file(self.sidecar(key)).await;
        self.prune(key).await;
        Ok(())
    }
}

impl DirStore {
    /// The objects under `folder` (a key's folder, `""` for all), for a listing: each file's key,
    /// size, ETag (its MD5, as a GET answers; read again only for files changed since the last listing)
    /// and modification time. `.mogr/` (mogr's own bookkeeping) and names that are not valid keys are
    /// left out.
    async fn entries_under(&self, folder: &str) -> Result<Vec<Entry>> {
        let root = self.root.clone();
        let start = match folder {
            "" => root.clone(),
            f if check_key(f).is_ok() => root.join(f),
            _ => return Ok(Vec::new()), // no object has a key under it
        };
        let etags = self.etags.clone();
        tokio::task::spawn_blocking(move || walk(&root, start, &etags))
            .await
            .map_err(|e| Error::internal(format!("listing the folder: {e}")))?
    }
}

fn walk(root: &Path, start: PathBuf, etags: &Etags) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    let mut dirs = vec![start.clone()];
    while let Some(dir) = dirs.pop() {
        let read = match std::fs::read_dir(&dir) {
            Ok(r) => r,
            // a folder removed meanwhile (or never made: a prefix's folder) holds nothing
            Err(e) if dir != root && gone(&e) => continue,
            Err(e) if dir != start => {
                tracing::warn!(folder = %dir.display(), error = %e, "listing: a folder was skipped");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "listing the folder failed");
                return Err(Error::internal(format!(
                    "listing the folder failed: {}",
                    e.kind()
                )));
            }
        };
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
            if meta.is_dir() {
                if check_key(&key).is_ok() {
                    dirs.push(path); // not .mogr/, mogr's own bookkeeping
                }
            } else if meta.is_file() && check_key(&key).is_ok() {
                let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                let etag = match etags.get(&key, &meta) {
                    Some(etag) => etag,
                    None => {
                        let Ok(body) = std::fs::read(&path) else {
                            continue;
                        };
                        let etag = etag_of(&body);
                        etags.remember(&key, &meta, &etag);
                        etag
                    }
                };
                out.push(Entry {
                    etag,
                    size: meta.len(),
                    last_modified: modified,
                    key,
                });
            }
        }
    }
    Ok(out)
}
