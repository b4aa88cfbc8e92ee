//! `mogr-bench score`: SSIMULACRA2 as mogr computes it — one pass over the rows, every scale at once —
//! beside `fast-ssim2`'s whole-plane form with a prepared reference (what mogr used before issue 35),
//! on each input and a JPEG of it at quality 50: the score each gives, its time (best of three) and the
//! memory it adds to the two decoded pictures (the process's peak resident set before and after).
//! Each method runs in its own process (this binary again), so one's peak does not hide the other's.

use crate::bench::s;
use anyhow::{bail, Context, Result};
use mogr::codec::{self, Frames, Picture};
use mogr::{Limits, Profile};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// What each input is scored against: itself as a JPEG at quality 50.
const DISTORTION: &str = "imageMogr2/format/jpg/quality/50";

/// The two ways of computing the score, by the name the child process is given.
pub const METHODS: [&str; 2] = ["one-pass", "planes"];

pub fn run(inputs: &[PathBuf]) -> Result<()> {
    let exe = std::env::current_exe()?;
    let work = tempfile::tempdir()?;
    let limits = Limits::default();
    println!(
        "| image | one pass: score / ms / MiB added | whole planes, prepared reference: score / ms \
         (reference + compare) / MiB added | time ÷ whole planes' | memory ÷ whole planes' |"
    );
    println!("|---|---|---|---:|---:|");
    for input in inputs {
        let bytes =
            std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
        let jpeg = mogr::convert(
            &bytes,
            &mogr::parse(DISTORTION)?,
            &limits,
            Profile::Download,
        )?;
        let distorted = work.path().join("distorted.jpg");
        std::fs::write(&distorted, &jpeg.bytes)?;
        let mut got = Vec::new();
        for method in METHODS {
            let mut best: Option<(f64, f64, f64)> = None;
            for _ in 0..3 {
                let out = Command::new(&exe)
                    .args(["score-one", method])
                    .arg(input)
                    .arg(&distorted)
                    .output()?;
                let err = String::from_utf8_lossy(&out.stderr);
                if !out.status.success() {
                    bail!("mogr-bench score-one {method} failed: {}", err.trim());
                }
                let value = |key: &str| -> Result<f64> {
                    crate::bench::logged(&err, key).with_context(|| format!("no {key}= in {err:?}"))
                };
                let run = (value("score")?, value("ms")?, value("added_kib")? / 1024.0);
                if best.is_none_or(|b| run.1 < b.1) {
                    best = Some(run);
                }
            }
            got.push(best.expect("three runs"));
        }
        let (one, planes) = (got[0], got[1]);
        let (w, h) = (jpeg.width, jpeg.height);
        println!(
            "| {} ({w}×{h}, {:.1} MP) | {:.2} / {:.0} / {:.0} | {:.2} / {:.0} / {:.0} | {:.2} | {:.3} |",
            input.file_name().map_or_else(|| s(input), |n| n.to_string_lossy().into()),
            f64::from(w) * f64::from(h) / 1e6,
            one.0,
            one.1,
            one.2,
            planes.0,
            planes.1,
            planes.2,
            one.1 / planes.1,
            one.2 / planes.2,
        );
    }
    Ok(())
}

/// The process's peak resident set so far, in KiB.
fn peak_kib() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    line.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .context("VmHWM unreadable")
}

/// One method's score of `distorted` against `reference`, timed, on stderr as `score= ms= added_kib=`.
pub fn one(method: &str, reference: &Path, distorted: &Path) -> Result<()> {
    let limits = Limits::default();
    let decode = |p: &Path| -> Result<Picture> {
        Ok(codec::probe_and_decode(
            &std::fs::read(p)?,
            &limits,
            Frames::First,
        )?)
    };
    let (a, b) = (decode(reference)?, decode(distorted)?);
    let (a, b) = (a.first(), b.first());
    let before = peak_kib()?;
    let t = Instant::now();
    let score = match method {
        "one-pass" => mogr::score::ssimulacra2(a, b)?,
        "planes" => {
            let rgb = |img: &image::DynamicImage| {
                let rgb = img.to_rgb8();
                let (w, h) = (rgb.width() as usize, rgb.height() as usize);
                imgref::ImgVec::new(rgb.pixels().map(|p| p.0).collect::<Vec<_>>(), w, h)
            };
            let prepared = fast_ssim2::Ssimulacra2Reference::new(rgb(a).as_ref())?;
            prepared.compare(rgb(b).as_ref())?
        }
        _ => bail!("no method {method:?}; one of {METHODS:?}"),
    };
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    eprintln!(
        "score={score:.4} ms={ms:.1} added_kib={:.0}",
        peak_kib()? - before
    );
    Ok(())
}
