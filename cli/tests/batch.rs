//! `mogr batch` over a folder: every image under a prefix converted as POST ?image_process would,
//! nothing done twice, failures counted without stopping the rest, `--dry-run` writing nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn examples(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    std::fs::read(dir.join("../examples").join(name)).unwrap()
}

/// A folder of 12 objects under `in/`: 9 images in three folders, a text file, a truncated JPEG, and
/// one object beside the prefix that the batch must not touch.
fn bucket(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("mogr-batch-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (jpg, png) = (examples("photo.jpg"), examples("photo.png"));
    for (key, body) in [
        ("in/a.jpg", &jpg),
        ("in/b.png", &png),
        ("in/c.jpg", &jpg),
        ("in/x/d.jpg", &jpg),
        ("in/x/e.png", &png),
        ("in/x/f.jpg", &jpg),
        ("in/y/z/g.png", &png),
        ("in/y/z/h.jpg", &jpg),
        ("in/y/i.jpg", &jpg),
        ("out-of-prefix.jpg", &jpg),
    ] {
        put(&root, key, body);
    }
    put(&root, "in/notes.txt", b"not an image");
    put(&root, "in/broken.jpg", &jpg[..jpg.len() / 3]);
    root
}

fn put(root: &Path, key: &str, body: &[u8]) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

fn batch(root: &Path, rules: &str, args: &[&str]) -> (i32, String, String) {
    let file = root.with_extension("rules.json");
    std::fs::write(&file, rules).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mogr"))
        .args(["batch", "--rules", file.to_str().unwrap(), "--root"])
        .arg(root)
        .args(["--prefix", "in/"])
        .args(if args.contains(&"--jobs") {
            &[][..]
        } else {
            &["--jobs", "2"][..]
        })
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap(),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// Every file under `root`, mogr's own `.mogr/` left out.
fn files(root: &Path) -> Vec<String> {
    let mut all = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel.starts_with(".mogr") {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else {
                all.push(rel);
            }
        }
    }
    all.sort();
    all
}

const RULES: &str = r#"{"rules":[{"fileid":"/heif/{dirname}/{barename}.heic","rule":"imageMogr2/thumbnail/64x/format/heif"},{"fileid":"/small/{dirname}/{barename}.webp","rule":"imageMogr2/thumbnail/32x/format/webp"}]}"#;

#[test]
fn a_batch_converts_each_image_once_and_counts_what_it_could_not() {
    let root = bucket("runs");
    let before = files(&root);
    let (code, out, err) = batch(&root, RULES, &[]);
    assert_eq!(code, 1, "one object failed: {out}{err}");
    assert!(
        out.starts_with("11 objects: 9 converted, 1 skipped, 1 failed;"),
        "{out}"
    );
    assert!(out.contains("skipped 1: not an image"), "{out}");
    assert!(
        out.contains("failed 1: could not be converted: a broken image"),
        "{out}"
    );
    assert!(
        err.contains("in/broken.jpg"),
        "the failure names its object: {err}"
    );
    // each image's two outputs, where the placeholders say; the broken one and the rest untouched
    let after = files(&root);
    let made: Vec<&String> = after.iter().filter(|f| !before.contains(f)).collect();
    assert_eq!(made.len(), 18, "{made:?}");
    for want in [
        "heif/in/x/d.heic",
        "heif/in/y/z/g.heic",
        "small/in/y/z/g.webp",
        "small/in/a.webp",
    ] {
        assert!(after.iter().any(|f| f == want), "{want} in {after:?}");
    }
    assert!(!after
        .iter()
        .any(|f| f.contains("broken.") && f != "in/broken.jpg"));
    assert!(!after
        .iter()
        .any(|f| f.contains("out-of-prefix.") && f != "out-of-prefix.jpg"));
    // the summary's bytes are what is stored
    let stored: u64 = made
        .iter()
        .map(|f| std::fs::metadata(root.join(f)).unwrap().len())
        .sum();
    assert!(
        out.contains(&format!(" bytes in, {stored} bytes out (")),
        "{out}"
    );

    // again: nothing left to do, nothing written
    let modified = |f: &str| std::fs::metadata(root.join(f)).unwrap().modified().unwrap();
    let first = modified("heif/in/a.heic");
    let (code, out, _) = batch(&root, RULES, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("11 objects: 0 converted, 10 skipped, 1 failed;"),
        "{out}"
    );
    assert!(
        out.contains("skipped 9: every output is made already"),
        "{out}"
    );
    assert_eq!(modified("heif/in/a.heic"), first);
    assert_eq!(files(&root), after);

    // a changed source is done again, and only it
    put(&root, "in/c.jpg", &examples("photo.png"));
    let (_, out, _) = batch(&root, RULES, &[]);
    assert!(
        out.starts_with("11 objects: 1 converted, 9 skipped, 1 failed;"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_dry_run_writes_nothing_and_a_fileid_for_every_object_is_refused() {
    let root = bucket("dry");
    let before = files(&root);
    let (code, out, _) = batch(&root, RULES, &["--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("would convert in/x/d.jpg (2 of 2 rules)"),
        "{out}"
    );
    assert!(
        out.contains("skipped 10: would be converted (--dry-run)"),
        "{out}"
    );
    assert_eq!(files(&root), before);
    let one_name = r#"{"rules":[{"fileid":"/all.heic","rule":"imageMogr2/format/heif"}]}"#;
    let (code, _, err) = batch(&root, one_name, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("names one output for every object"), "{err}");
    let (code, _, err) = batch(&root, "{not json", &[]);
    assert_eq!(code, 2);
    assert!(err.contains("are not a Pic-Operations rule set"), "{err}");
    assert_eq!(files(&root), before);
    let _ = std::fs::remove_dir_all(&root);
}

/// Waits (up to a minute) until `ready` holds.
fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "waited a minute for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_stopped_or_killed_run_is_continued_with_nothing_done_twice() {
    let root = std::env::temp_dir().join(format!("mogr-batch-{}-resume", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let jpg = examples("photo.jpg");
    for i in 0..30 {
        put(&root, &format!("in/{i:02}.jpg"), &jpg);
    }
    // a whole-size HEIF each: long enough to stop the run midway
    let rules = r#"{"rules":[{"fileid":"/heif/{dirname}/{barename}.heic","rule":"imageMogr2/format/heif"},{"fileid":"/small/{dirname}/{barename}.webp","rule":"imageMogr2/thumbnail/32x/format/webp"}]}"#;
    let file = root.with_extension("rules.json");
    std::fs::write(&file, rules).unwrap();
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_mogr"))
            .args(["batch", "--jobs", "1", "--rules", file.to_str().unwrap()])
            .arg("--root")
            .arg(&root)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let made = |folder: &str| {
        (files(&root).into_iter())
            .filter(|f| f.starts_with(folder))
            .count()
    };

    // Ctrl-C: the object being converted finishes, no new one starts
    let run = start();
    wait_until("3 outputs", || made("heif/") >= 3);
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    let out = run.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(130), "{stdout}{stderr}");
    assert!(stderr.contains("mogr: stopping:"), "{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");
    let first = made("heif/");
    assert!((3..30).contains(&first), "{stdout}");
    assert_eq!(made("small/"), first, "each object stopped whole");
    assert!(
        stdout.starts_with(&format!("{first} objects: {first} converted, 0 skipped")),
        "{stdout}"
    );

    // killed outright: at most the object being converted is left with one output of two
    let run = start();
    wait_until("3 more outputs", || made("heif/") >= first + 3);
    unsafe { libc::kill(run.id() as i32, libc::SIGKILL) };
    run.wait_with_output().unwrap();
    let kept: Vec<(String, std::time::SystemTime)> = (files(&root).into_iter())
        .filter(|f| f.starts_with("heif/") || f.starts_with("small/"))
        .map(|f| {
            let at = std::fs::metadata(root.join(&f))
                .unwrap()
                .modified()
                .unwrap();
            (f, at)
        })
        .collect();
    for (f, _) in &kept {
        // every output there is whole: a partial write never takes an object's name
        let info = Command::new(env!("CARGO_BIN_EXE_mogr"))
            .arg("info")
            .arg(root.join(f))
            .output()
            .unwrap();
        assert!(info.status.success(), "{f} is not a whole image");
    }
    let whole = (0..30)
        .filter(|i| {
            let has = |f: String| kept.iter().any(|(k, _)| *k == f);
            has(format!("heif/in/{i:02}.heic")) && has(format!("small/in/{i:02}.webp"))
        })
        .count();
    assert!(whole >= first + 2, "{whole} objects whole after the kill");

    // continued: only what is left, nothing made twice, nothing of the killed run's left behind
    let (code, out, err) = batch(&root, rules, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let left = 30 - whole;
    assert!(
        out.starts_with(&format!(
            "30 objects: {left} converted, {whole} skipped, 0 failed;"
        )),
        "{out}"
    );
    assert_eq!((made("heif/"), made("small/")), (30, 30));
    for (f, at) in &kept {
        let now = std::fs::metadata(root.join(f)).unwrap().modified().unwrap();
        assert_eq!(now, *at, "{f} was made again");
    }
    let tmp = root.join(".mogr/tmp");
    let litter = std::fs::read_dir(&tmp).map_or(0, |d| d.count());
    assert_eq!(litter, 0, "temporary files left in {}", tmp.display());
    // off a terminal, the progress is a line at each 5 %
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(" objects) · ")).collect();
    assert!((1..=20).contains(&lines.len()), "{err}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("100 % (30 of 30 objects) · "),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&root);
}
