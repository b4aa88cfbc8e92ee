//! The Lambda binaries under a runtime emulator: each real binary attached to its own `cargo lambda
//! watch --only-lambda-apis`, invoked through the Lambda Invoke API with the events/ files —
//! directly, or inside the container image's root file system (`scripts/runtime-rootfs.sh`).

use crate::{binary, repo, S3Server};
use base64::Engine;
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn append(path: &Path) -> std::fs::File {
    (std::fs::OpenOptions::new().create(true).append(true))
        .open(path)
        .unwrap()
}

/// One function: its real binary attached to its own `cargo lambda watch --only-lambda-apis` emulator.
pub struct Function {
    emulator: Child,
    binary: Child,
    port: u16,
    /// The binary's standard output and error: its metrics and its JSON log lines.
    log: std::path::PathBuf,
}

impl Function {
    /// The JSON log lines whose message is `message`.
    pub fn logged(&self, message: &str) -> Vec<Value> {
        self.json_lines()
            .filter(|v| v["message"] == message)
            .collect()
    }

    /// The CloudWatch embedded-metric-format lines of the request `request_id`.
    pub fn metrics(&self, request_id: &str) -> Vec<Value> {
        self.json_lines()
            .filter(|v| v.get("_aws").is_some() && v["RequestId"] == request_id)
            .collect()
    }

    fn json_lines(&self) -> impl Iterator<Item = Value> {
        let text = std::fs::read_to_string(&self.log).unwrap();
        let lines: Vec<Value> = (text.lines())
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect();
        lines.into_iter()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        for child in [&mut self.binary, &mut self.emulator] {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprint!("{}", std::fs::read_to_string(&self.log).unwrap_or_default());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `what` listens on `port`, for `secs` at most.
pub fn wait_for(port: u16, what: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `name`'s binary under its own emulator, with the server's environment and `env`.
pub fn start(name: &str, server: &S3Server, env: &[(&str, &str)]) -> Function {
    start_in(None, name, server, env)
}

/// Like [`start`], with the binary run inside the root file system `root` (`chroot`, through
/// `sudo -n` when not root), where it finds only the shared libraries installed there.
pub fn start_in(
    root: Option<&Path>,
    name: &str,
    server: &S3Server,
    env: &[(&str, &str)],
) -> Function {
    start_at(root, free_port(), name, server, env)
}

/// Like [`start_in`], with the emulator on `port`; `env` may override the runtime's variables (a
/// test's proxy in front of the emulator as `AWS_LAMBDA_RUNTIME_API`).
pub fn start_at(
    root: Option<&Path>,
    port: u16,
    name: &str,
    server: &S3Server,
    env: &[(&str, &str)],
) -> Function {
    let emulator = Command::new("cargo")
        .current_dir(repo())
        .args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "--ignore-changes",
            "--invoke-address",
            "127.0.0.1",
        ])
        .args(["--invoke-port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cargo lambda is installed by scripts/setup.sh (pip install cargo-lambda)");
    wait_for(port, "cargo lambda watch", 60);
    let log = std::env::temp_dir().join(format!(
        "mogr-lambda-{}-{name}-{port}.log",
        std::process::id()
    ));
    // The variables a Lambda execution environment gives a custom runtime, pointed at the emulator.
    let mut command = match root {
        None => Command::new(binary(name)),
        Some(root) => {
            let mut c = as_root("chroot");
            c.arg(root).arg(format!("/usr/local/bin/{name}"));
            c
        }
    };
    let binary = command
        .envs(server.env())
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
        .envs(env.iter().copied())
        // standard output (the metrics) and error (the log) into one file, as CloudWatch Logs
        // takes both: appended, so neither writes over the other
        .stdout(append(&log))
        .stderr(append(&log))
        .spawn()
        .unwrap();
    Function {
        emulator,
        binary,
        port,
        log,
    }
}

pub fn event(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(repo().join("events").join(name)).unwrap()).unwrap()
}

/// Invokes a function with `payload` through its emulator's Lambda Invoke API.
pub async fn invoke(f: &Function, payload: &Value) -> Value {
    let url = format!(
        "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
        f.port
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let resp = client
        .post(&url)
        .json(payload)
        .send()
        .await
        .expect("invoke");
    let status = resp.status();
    let body = resp.bytes().await.unwrap();
    assert!(
        status.is_success(),
        "HTTP {status}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&body)))
}

pub fn http_body(resp: &Value) -> Vec<u8> {
    let body = resp["body"].as_str().unwrap_or_default();
    if resp["isBase64Encoded"].as_bool().unwrap_or(false) {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    } else {
        body.as_bytes().to_vec()
    }
}

/// An API Gateway event of `method path?query` with `headers`, from the GET event's shape.
pub fn http_event(method: &str, path: &str, query: &str, headers: &[(&str, &str)]) -> Value {
    let mut e = event("apigw-get-heif.json");
    e["routeKey"] = format!("{method} /{{key+}}").into();
    e["requestContext"]["routeKey"] = e["routeKey"].clone();
    e["requestContext"]["http"]["method"] = method.into();
    e["requestContext"]["http"]["path"] = path.into();
    e["rawPath"] = path.into();
    e["pathParameters"]["key"] = path.trim_start_matches('/').into();
    e["rawQueryString"] = query.into();
    e["queryStringParameters"] = serde_json::json!({});
    for (k, v) in headers {
        e["headers"][*k] = (*v).into();
    }
    e
}

/// A command run as root: directly when this process is root, else through `sudo -n` (keeping the
/// environment, which a function binary is configured by).
pub fn as_root(program: &str) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if root {
        Command::new(program)
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", "--preserve-env", program]);
        c
    }
}
