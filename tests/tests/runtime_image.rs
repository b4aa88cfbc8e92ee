//! The container image's final stage, proven without Docker: `scripts/runtime-rootfs.sh` builds it as a
//! root file system the way the Dockerfile does (Debian 12 minbase, then `scripts/setup.sh --runtime`;
//! cached under ~/.cache), the three function binaries are copied in, and the download function converts
//! to HEIF, AVIF and WebP inside it under the runtime emulator — so a shared library the image lacks
//! fails CI instead of the first request on AWS.

use mogr::Format;
use mogr_e2e::lambda::{as_root, http_body, http_event, invoke, start_in};
use mogr_e2e::{binary, example, image_facts, repo, S3Server, BUCKET};
use std::path::{Path, PathBuf};
use std::process::Command;

const FUNCTIONS: [&str; 3] = ["mogr-download", "mogr-process", "mogr-upload"];

fn run(mut c: Command, what: &str) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The runtime image's root file system, with the function binaries of this build in it.
fn image() -> PathBuf {
    let mut build = Command::new("bash");
    build.arg(repo().join("scripts/runtime-rootfs.sh"));
    let root = PathBuf::from(run(build, "scripts/runtime-rootfs.sh").trim());
    for name in FUNCTIONS {
        // as the Dockerfile's `COPY --from=build ... /usr/local/bin/`
        let mut copy = as_root("cp");
        copy.arg(binary(name))
            .arg(root.join("usr/local/bin").join(name));
        run(copy, "copying a function binary into the image");
    }
    root
}

/// What `ldd` says of a binary inside the image.
fn libraries(root: &Path, name: &str) -> String {
    let mut ldd = as_root("chroot");
    ldd.arg(root)
        .args(["ldd", &format!("/usr/local/bin/{name}")]);
    run(ldd, "ldd inside the image")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runtime_image_runs_the_functions_with_its_own_libraries() {
    let root = image();
    for name in FUNCTIONS {
        let libs = libraries(&root, name);
        assert!(!libs.contains("not found"), "{name} in the image:\n{libs}");
    }
    assert!(
        libraries(&root, "mogr-download").contains("libx265"),
        "the image's own codecs are the ones loaded"
    );

    let server = S3Server::start("runtime-image").await;
    server.create_bucket(BUCKET).await;
    server
        .put(BUCKET, "photo.jpg", example("photo.jpg"), &[])
        .await;
    let download = start_in(Some(&root), "mogr-download", &server, &[]);
    for (name, format) in [
        ("heif", Format::Heif),
        ("avif", Format::Avif),
        ("webp", Format::Webp),
    ] {
        let query = format!("imageMogr2/thumbnail/200x/format/{name}");
        let resp = invoke(&download, &http_event("GET", "/photo.jpg", &query, &[])).await;
        assert_eq!(resp["statusCode"], 200, "{name}: {resp}");
        assert_eq!(image_facts(&http_body(&resp)), (format, 200, 133), "{name}");
    }
    // the image holds the fonts text watermarks are drawn with (CJK included): "水印 mogr"
    let plain = "imageMogr2/thumbnail/200x/format/png";
    let marked = format!("{plain}|watermark/2/text/5rC05Y2wIG1vZ3I/fontsize/30");
    let mut bodies = Vec::new();
    for query in [plain, &marked] {
        let resp = invoke(&download, &http_event("GET", "/photo.jpg", query, &[])).await;
        assert_eq!(resp["statusCode"], 200, "{query}: {resp}");
        bodies.push(http_body(&resp));
    }
    assert_ne!(bodies[0], bodies[1], "the text changed the picture");
}
