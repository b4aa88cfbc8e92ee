//! End-to-end test support: a real S3-protocol server (`s3s-fs`, in-process, over HTTP on 127.0.0.1)
//! with SigV4 authentication, and an `aws-sdk-s3` client for it.

pub mod faults;
pub mod lambda;
pub mod scenario;
pub mod three_ways;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const ACCESS_KEY: &str = "mogr-test-access-key";
pub const SECRET_KEY: &str = "mogr-test-secret-key-0123456789";
pub const REGION: &str = "us-east-1";
/// The bucket the events/ files name.
pub const BUCKET: &str = "mogr-examples";

/// An S3 server over a temporary folder, stopped when dropped.
pub struct S3Server {
    pub addr: SocketAddr,
    pub root: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl S3Server {
    pub async fn start(name: &str) -> S3Server {
        let root = std::env::temp_dir().join(format!("mogr-s3-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let fs = s3s_fs::FileSystem::new(&root).expect("s3s-fs root");
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                // as S3 answers: a small body goes out at once, not after the client's delayed ACK
                let _ = socket.set_nodelay(true);
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        S3Server { addr, root, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client for this server, path-style, with the test credentials.
    pub fn client(&self) -> aws_sdk_s3::Client {
        let creds =
            aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "mogr-tests");
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(REGION))
            .credentials_provider(creds)
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// The environment a mogr process needs to reach this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ENDPOINT_URL_S3", self.endpoint()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("MOGR_BUCKET", BUCKET.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    pub async fn create_bucket(&self, name: &str) {
        self.client()
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("create bucket");
    }

    pub async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, meta: &[(&str, &str)]) {
        let mut req = self
            .client()
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into());
        for (k, v) in meta {
            req = req.metadata(*k, *v);
        }
        req.send().await.expect("put object");
    }

    /// Body and user metadata of an object, or `None` if it does not exist.
    pub async fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Option<(Vec<u8>, std::collections::HashMap<String, String>)> {
        let out = self
            .client()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        let meta = out.metadata().cloned().unwrap_or_default();
        let body = out.body.collect().await.ok()?.into_bytes().to_vec();
        Some((body, meta))
    }
}

/// A request as the service functions take it.
pub fn request(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> http::Request<Vec<u8>> {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body).unwrap()
}

/// The directory this test binary was built into (`<target>/debug`): the function binaries built by
/// `cargo build --workspace --all-targets` (scripts/test.sh) are there, with the same features.
pub fn binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --all-targets` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn example(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("examples").join(name)).unwrap()
}

/// Decodes an image with mogr and returns (format, width, height).
pub fn image_facts(bytes: &[u8]) -> (mogr::Format, u32, u32) {
    let p = mogr::codec::probe(bytes, &mogr::Limits::default()).expect("an image");
    (p.format, p.width, p.height)
}
