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
    // plain words at a shell: COS's error codes are for HTTP answers
    let codes = ["InvalidArgument", "InternalError", "InvalidImage"];
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
        assert!(!codes.iter().any(|c| err.contains(c)), "{err}");
    }
    // an extension naming a format mogr does not write: refused, nothing written
    let jxl = tmp("x.jxl");
    let out = mogr()
        .args(["convert", repo("examples/photo.jpg").to_str().unwrap()])
        .args([
            "-r",
            "imageMogr2/thumbnail/40x",
            "-o",
            jxl.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("mogr does not write .jxl files"), "{err}");
    assert!(!jxl.exists());
    // a signing key too short is the user's to fix, and said so
    let out = mogr()
        .args(["sign", "photo.png"])
        .env("MOGR_SIGNING_KEYS", "short")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("MOGR_SIGNING_KEYS"), "{err}");
    assert!(!codes.iter().any(|c| err.contains(c)), "{err}");
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
        ("bomb-100000x100000.png", "50000"),
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

fn convert_to(input: &str, rule: &str, output: &str) -> std::process::Output {
    mogr()
        .args(["convert", repo(input).to_str().unwrap(), "--rule", rule])
        .args(["--output", output])
        .output()
        .unwrap()
}

#[test]
fn the_output_extension_decides_the_format_when_the_rule_names_none() {
    for (name, format) in [
        ("small.webp", mogr::Format::Webp),
        ("small.HEIC", mogr::Format::Heif),
        ("small.avif", mogr::Format::Avif),
        ("small.png", mogr::Format::Png),
    ] {
        let path = tmp(name);
        let out = convert_to(
            "examples/photo.jpg",
            "imageMogr2/thumbnail/200x",
            path.to_str().unwrap(),
        );
        assert!(out.status.success(), "{name}: {out:?}");
        // not a terminal: nothing on stderr
        assert!(out.stderr.is_empty(), "{name}: {out:?}");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(mogr::Format::sniff(&bytes).unwrap(), format, "{name}");
    }
    // an extension mogr does not know leaves the input's format
    let path = tmp("small.out");
    let out = convert_to(
        "examples/photo.jpg",
        "imageMogr2/thumbnail/200x",
        path.to_str().unwrap(),
    );
    assert!(out.status.success(), "{out:?}");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(mogr::Format::sniff(&bytes).unwrap(), mogr::Format::Jpeg);
}

#[test]
fn a_rule_format_contradicting_the_extension_is_an_error_naming_both() {
    let path = tmp("contradiction.jpg");
    let out = convert_to(
        "examples/photo.png",
        "imageMogr2/format/webp",
        path.to_str().unwrap(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("webp") && err.contains("jpeg") && err.contains("contradiction.jpg"),
        "{err}"
    );
    assert!(!path.exists(), "nothing written under the wrong name");
    // ignore-error answering the original (a PNG) is not written as .webp either
    let path = tmp("ignored.webp");
    let out = convert_to(
        "examples/photo.png",
        "imageMogr2/thumbnail/20000x/ignore-error/1",
        path.to_str().unwrap(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("original") && err.contains(".png"), "{err}");
    assert!(!path.exists());
}

/// Runs `mogr <args>` with a pseudo-terminal as its standard streams (util-linux `script`) and returns what
/// it printed there.
fn in_terminal(args: &[&str]) -> String {
    let line = std::iter::once(env!("CARGO_BIN_EXE_mogr"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("util-linux script runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn at_a_terminal_a_summary_line_and_no_binary() {
    let photo = repo("examples/photo.jpg");
    let path = tmp("summary.webp");
    let shown = in_terminal(&[
        "convert",
        photo.to_str().unwrap(),
        "-r",
        "imageMogr2/thumbnail/320x",
        "-o",
        path.to_str().unwrap(),
    ]);
    let len = std::fs::metadata(&path).unwrap().len();
    let expect = format!(
        "wrote {}: 320\u{d7}214, {:.1} KB, \u{2212}",
        path.display(),
        len as f64 / 1e3
    );
    assert!(shown.contains(&expect), "{expect:?} in {shown:?}");
    let shown = in_terminal(&[
        "convert",
        photo.to_str().unwrap(),
        "-r",
        "imageMogr2/format/webp",
        "-o",
        "-",
    ]);
    assert!(
        shown.contains("refusing to write image bytes to a terminal"),
        "{shown:?}"
    );
    assert!(!shown.contains("RIFF"), "no image bytes: {shown:?}");
}

#[test]
fn a_long_conversion_shows_what_it_is_doing_at_a_terminal_only() {
    // enlarged to 2.7 MP and stored as HEIF (the persistent profile): quality/auto on a sample of the
    // picture, then at full size — seconds, so the spinner shows
    let photo = repo("examples/photo.png");
    let path = tmp("long.heic");
    let args = [
        "convert",
        photo.to_str().unwrap(),
        "-r",
        "imageMogr2/thumbnail/2000x/format/heif",
        "-o",
        path.to_str().unwrap(),
    ];
    let shown = in_terminal(&args);
    assert!(
        shown.contains("quality/auto 70, try 1 at quality "),
        "{shown:?}"
    );
    assert!(shown.contains(": scoring"), "{shown:?}");
    // the spinner's line is cleared; the summary names the quality and the score it reached
    let wrote = shown
        .split(['\r', '\n'])
        .find(|l| l.contains("wrote "))
        .unwrap_or_else(|| panic!("a wrote line in {shown:?}"));
    let expect = format!("wrote {}: 2000\u{d7}1333, ", path.display());
    assert!(wrote.contains(&expect), "{wrote:?}");
    let after = |label: &str| -> f64 {
        let rest = &wrote[wrote
            .find(label)
            .unwrap_or_else(|| panic!("{label} in {wrote:?}"))
            + label.len()..];
        rest.split([',', ' ']).next().unwrap().parse().unwrap()
    };
    let (quality, score) = (after(", quality "), after(", score "));
    assert!((1.0..=100.0).contains(&quality), "{wrote:?}");
    assert!(score >= 70.0, "quality/auto's target is 70: {wrote:?}");
    assert!(
        wrote.contains(" try)") || wrote.contains(" tries)"),
        "{wrote:?}"
    );
    // not at a terminal: nothing on stderr, the same file
    let before = std::fs::read(&path).unwrap();
    let out = mogr().args(args).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// A small sample converted by the library, as `format`.
fn sample(format: &str, width: u32) -> Vec<u8> {
    let rule = mogr::parse(&format!("imageMogr2/thumbnail/{width}x/format/{format}")).unwrap();
    let photo = std::fs::read(repo("examples/photo.jpg")).unwrap();
    mogr::convert(
        &photo,
        &rule,
        &mogr::Limits::default(),
        mogr::Profile::Download,
    )
    .unwrap()
    .bytes
}

#[test]
fn a_truncated_input_is_an_error_in_every_format() {
    for format in ["jpeg", "png", "webp", "heif", "avif", "tiff", "bmp", "gif"] {
        let whole = sample(format, 200);
        let cut = tmp(&format!("cut.{format}"));
        std::fs::write(&cut, &whole[..whole.len() * 2 / 3]).unwrap();
        let out = mogr()
            .args([
                "convert",
                cut.to_str().unwrap(),
                "-r",
                "imageMogr2/format/png",
            ])
            .args(["-o", tmp("cut-out.png").to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{format}: {err}");
        assert!(err.contains("could not be decoded"), "{format}: {err}");
    }
}

#[test]
fn dropping_animation_frames_is_a_warning() {
    let gif = repo("examples/animated.gif");
    let frames = mogr::codec::probe(&std::fs::read(&gif).unwrap(), &mogr::Limits::default())
        .unwrap()
        .frames;
    assert!(frames > 1);
    let out = convert_to(
        "examples/animated.gif",
        "imageMogr2/format/png",
        tmp("still.png").to_str().unwrap(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("mogr: warning: kept the first of {frames} frames")),
        "{err}"
    );
    // an animated output keeps them, and says nothing
    let out = convert_to(
        "examples/animated.gif",
        "imageMogr2/thumbnail/50x",
        tmp("moving.webp").to_str().unwrap(),
    );
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
}

#[test]
fn demo_keeps_every_output_reports_skips_and_totals() {
    let dir = tmp("demo-in");
    let out_dir = tmp("demo-out");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pic.jpg"), sample("jpeg", 96)).unwrap();
    std::fs::write(dir.join("pic.png"), sample("png", 96)).unwrap();
    std::fs::copy(repo("examples/animated.gif"), dir.join("moving.gif")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
    let out = mogr()
        .args([
            "demo",
            dir.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    // pic.jpg's outputs and pic.png's are different files
    let a = std::fs::read(out_dir.join("pic.jpg.heic")).unwrap();
    let b = std::fs::read(out_dir.join("pic.png.heic")).unwrap();
    assert_ne!(a, b);
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 3 * 6);
    assert!(stderr.contains("skipped notes.txt"), "{stderr}");
    for format in ["heif", "avif", "webp", "jpeg", "png", "gif"] {
        let total = stdout
            .lines()
            .find(|l| l.starts_with("total (3)") && l.contains(&format!(" {format} ")));
        assert!(total.is_some(), "a totals row for {format}: {stdout}");
    }
    assert!(stdout.contains("ssimu2: SSIMULACRA2"), "{stdout}");
    assert!(
        stdout.contains("* moving.gif -> heif: kept the first of"),
        "{stdout}"
    );
    // a folder without images is an error, not an empty table
    let empty = tmp("demo-empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "not an image").unwrap();
    let out = mogr()
        .args(["demo", empty.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no images in") && err.contains("notes.txt"),
        "{err}"
    );
}

#[test]
fn gif_output_is_dithered_and_an_animated_thumbnail_shrinks() {
    let input = std::fs::read(repo("examples/animated.gif")).unwrap();
    let path = tmp("thumb.gif");
    let out = convert_to(
        "examples/animated.gif",
        "imageMogr2/thumbnail/50x",
        path.to_str().unwrap(),
    );
    assert!(out.status.success(), "{out:?}");
    let thumb = std::fs::read(&path).unwrap();
    assert!(
        thumb.len() < input.len(),
        "thumbnail/50x: {} bytes from {}",
        thumb.len(),
        input.len()
    );
    let frames = |b: &[u8]| {
        mogr::codec::probe(b, &mogr::Limits::default())
            .unwrap()
            .frames
    };
    // still animated (frames that change nothing may merge into the one before)
    assert!((2..=frames(&input)).contains(&frames(&thumb)));
    // a photo's gradients survive the 256-colour palette
    let path = tmp("photo.gif");
    let out = convert_to(
        "examples/photo.png",
        "imageMogr2/format/gif",
        path.to_str().unwrap(),
    );
    assert!(out.status.success(), "{out:?}");
    let limits = mogr::Limits::default();
    let first = mogr::codec::Frames::First;
    let reference = mogr::codec::probe_and_decode(
        &std::fs::read(repo("examples/photo.png")).unwrap(),
        &limits,
        first,
    )
    .unwrap();
    let got =
        mogr::codec::probe_and_decode(&std::fs::read(&path).unwrap(), &limits, first).unwrap();
    let score = mogr::score::ssimulacra2(reference.first(), got.first()).unwrap();
    assert!(score >= 50.0, "photo.png as GIF scores {score:.1}");
}
