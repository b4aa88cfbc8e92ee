//! `mogr serve` as a child process, for the tests that talk to it over HTTP.
#![allow(dead_code)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Server {
    pub child: Child,
    pub base: String,
    pub root: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Starts `mogr serve` on a fresh copy of two samples; `name` keeps parallel tests apart.
pub fn start(name: &str, env: &[(&str, &str)]) -> Server {
    start_with(name, env, &[])
}

/// [`start`] with extra `mogr serve` arguments.
pub fn start_with(name: &str, env: &[(&str, &str)], args: &[&str]) -> Server {
    start_logging(name, env, args, Stdio::inherit())
}

/// The package's folder, read at run time: a test binary reused from another checkout (the shared
/// target dir) must not read the path it was built at.
pub fn here() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
}

/// The shipped samples.
pub fn examples() -> PathBuf {
    here().join("../examples")
}

/// [`start_with`], its log (standard error) going to `log`.
pub fn start_logging(name: &str, env: &[(&str, &str)], args: &[&str], log: Stdio) -> Server {
    let root = std::env::temp_dir().join(format!("mogr-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let examples = examples();
    for f in ["photo.jpg", "photo.png"] {
        std::fs::copy(examples.join(f), root.join(f)).unwrap();
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mogr"));
    cmd.args([
        "serve",
        "--root",
        root.to_str().unwrap(),
        "--addr",
        "127.0.0.1:0",
    ])
    .args(args)
    .stdout(Stdio::piped())
    .stderr(log);
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().unwrap();
    let base = base_url(&mut child);
    Server { child, base, root }
}

/// The address a starting `mogr serve` prints on its first line: "mogr serves <root> at
/// http://127.0.0.1:PORT/" (its stdout must be piped).
pub fn base_url(child: &mut Child) -> String {
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.split(" at ")
        .nth(1)
        .unwrap_or_else(|| panic!("not the server's first line: {line:?}"))
        .trim()
        .trim_end_matches('/')
        .to_string()
}

/// A field of `/proc/<pid>/status` in KiB (Linux), e.g. `VmRSS:`.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc status"))
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn facts(bytes: &[u8]) -> (mogr::Format, u32, u32) {
    let p = mogr::codec::probe(bytes, &mogr::Limits::default()).unwrap();
    (p.format, p.width, p.height)
}

/// Sends `raw` on a new connection and reads until the server closes it or `wait` passes.
pub fn raw_exchange(
    base: &str,
    raw: &[u8],
    wait: std::time::Duration,
) -> (String, std::time::Duration) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(wait)).unwrap();
    let started = std::time::Instant::now();
    conn.write_all(raw).unwrap();
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got); // EOF, reset or the read timeout
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

impl Server {
    /// The server's resident set now and at its peak, in KiB (Linux `/proc`).
    pub fn memory_kib(&self) -> (u64, u64) {
        let pid = self.child.id();
        (status_kib(pid, "VmRSS:"), status_kib(pid, "VmHWM:"))
    }

    /// Whether the server process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Runs a client script of `tests/` (`python3 tests/<script> <args>`) against a server and checks
/// that it ended well and said "checks passed"; `module` is the client package it imports, named when
/// it is missing.
pub fn run_client_script(script: &str, args: &[&std::ffi::OsStr], module: &str) {
    run_client_script_with(script, args, module, &[]);
}

/// [`run_client_script`] with `env` set for the script.
pub fn run_client_script_with(
    script: &str,
    args: &[&std::ffi::OsStr],
    module: &str,
    env: &[(&str, &str)],
) {
    let home = std::env::var("HOME").unwrap_or_default();
    let path = format!(
        "{home}/.local/bin:{}",
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("python3")
        .arg(here().join("tests").join(script))
        .args(args)
        .env("PATH", path)
        .envs(env.iter().copied())
        .output()
        .expect("python3 is installed by scripts/setup.sh");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        !stderr.contains(&format!("No module named '{module}'")),
        "{module} is missing: run scripts/setup.sh"
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    eprint!("{stdout}");
    assert!(stdout.contains("checks passed"), "{stdout}");
}
