//! The `mogr` binary as a user runs it: files, pipes, exit codes, one-line errors, and memory on a bomb.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn mogr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mogr"))
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mogr-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn convert_a_file_to_heif() {
    let out = tmp("photo.heic");
    let st = mogr()
        .args([
            "convert",
            repo("examples/photo.jpg").to_str().unwrap(),
            "--rule",
            "imageMogr2/thumbnail/320x/format/heif",
        ])
        .args(["--output", out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(mogr::Format::sniff(&bytes).unwrap(), mogr::Format::Heif);
    let pic =
        mogr::codec::probe_and_decode(&bytes, &mogr::Limits::default(), mogr::codec::Frames::First)
            .unwrap();
    assert_eq!(pic.width(), 320);
}

#[test]
fn convert_through_pipes() {
    let input = std::fs::read(repo("examples/photo.png")).unwrap();
    let mut child = mogr()
        .args([
            "convert",
            "-",
            "--rule",
            "imageMogr2/format/webp/quality/70",
            "--output",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        mogr::Format::sniff(&out.stdout).unwrap(),
        mogr::Format::Webp
    );
    assert!(out.stdout.len() < input.len() / 5);
}

#[test]
fn errors_are_one_line_and_exit_1() {
    let cases = [
        (
            "imageMogr2/thumbnail/80xx",
            "examples/photo.jpg",
            "offset 21",
        ),
        ("imageMogr2/format/tpg", "examples/photo.jpg", "format/avif"),
        (
            "imageMogr2/format/heif",
            "README.md",
            "unsupported input format",
        ),
        ("imageMogr2/format/heif", "no/such/file.png", "cannot read"),
    ];
    for (rule, input, needle) in cases {
        let out = mogr()
            .args([
                "convert",
                repo(input).to_str().unwrap(),
                "--rule",
                rule,
                "--output",
                tmp("x").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{rule} {input}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(err.contains(needle), "{rule} {input}: {err}");
    }
}

#[test]
fn info_prints_cos_json() {
    let out = mogr()
        .args(["info", repo("examples/photo.jpg").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], "jpeg");
    assert_eq!(v["width"], "640");
    assert_eq!(v["height"], "427");
    assert_eq!(v["size"], "112525");
}

/// Runs a command and returns (exit code, stderr, peak RSS in KiB) of the child.
#[allow(clippy::zombie_processes)] // the child is reaped by wait4, which also reports its peak RSS
fn run_measured(mut cmd: Command) -> (i32, String, i64) {
    let child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data filled by wait4 for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.unwrap(), &mut err).unwrap();
    (libc::WEXITSTATUS(status), err, usage.ru_maxrss)
}

#[test]
fn header_bombs_fail_before_pixels_are_allocated() {
    // 100,000 x 100,000 RGBA would be 40 GB; 20,000 x 20,000 is within the side limit but 400 MP.
    for (name, needle) in [
        ("bomb-100000x100000.png", "30000"),
        ("bomb-20000x20000.png", "pixels"),
    ] {
        let mut cmd = mogr();
        cmd.args([
            "convert",
            repo(&format!("shared/tests/fixtures/{name}"))
                .to_str()
                .unwrap(),
        ]);
        cmd.args([
            "--rule",
            "imageMogr2/format/heif",
            "--output",
            tmp("bomb.heic").to_str().unwrap(),
        ]);
        let (code, err, peak_kib) = run_measured(cmd);
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(needle), "{err}");
        assert!(peak_kib < 64 * 1024, "{name}: peak RSS {peak_kib} KiB");
    }
}
