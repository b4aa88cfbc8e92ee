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
    assert!(out.contains("failed 1: InvalidArgument"), "{out}");
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
    assert!(err.contains("is not a Pic-Operations rule set"), "{err}");
    assert_eq!(files(&root), before);
    let _ = std::fs::remove_dir_all(&root);
}
