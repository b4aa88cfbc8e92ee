//! `mogr bench`: mogr beside libvips (`vips heifsave`/`webpsave`) and libheif's `heif-enc`, in one run.
//!
//! Every converter — mogr included — runs as a child process, so that milliseconds (wall clock, best of
//! `runs`) and peak memory (GNU `time`'s maximum resident set) are measured the same way for all. Every output is
//! decoded by mogr and scored with SSIMULACRA2 against the decoded input.

use anyhow::{bail, Context, Result};
use mogr::codec::{self, Format, Frames};
use mogr::{Limits, Profile};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub struct Measured {
    pub bytes: usize,
    pub score: f64,
    pub ms: f64,
    pub peak_mib: f64,
}

/// Runs `cmd` `runs` times under GNU `time`; returns the best wall time and the largest peak RSS.
///
/// The peak comes from `time`, not from our own `wait4`: a child spawned by this (large) process starts
/// with its parent's resident-set high-water mark, which `ru_maxrss` then reports; the command `time`
/// runs is forked from `time`'s small process instead.
fn time_child(mut make: impl FnMut() -> Command, runs: u32) -> Result<(f64, f64)> {
    let (mut best_ms, mut peak_kib) = (f64::MAX, 0u64);
    let report = std::env::temp_dir().join(format!("mogr-bench-time-{}", std::process::id()));
    for _ in 0..runs {
        let inner = make();
        let mut cmd = Command::new("/usr/bin/time");
        cmd.args(["-f", "%M", "-o"])
            .arg(&report)
            .arg(inner.get_program())
            .args(inner.get_args())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let t = Instant::now();
        let status = cmd.status().with_context(|| {
            format!("cannot start {cmd:?} (GNU time comes from scripts/setup.sh)")
        })?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if !status.success() {
            bail!("{inner:?} failed ({status})");
        }
        let kib = std::fs::read_to_string(&report)?;
        let kib: u64 = kib
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .with_context(|| format!("GNU time wrote {kib:?}"))?;
        best_ms = best_ms.min(ms);
        peak_kib = peak_kib.max(kib);
    }
    let _ = std::fs::remove_file(&report);
    Ok((best_ms, peak_kib as f64 / 1024.0))
}

fn score(reference: &image::DynamicImage, out: &Path) -> Result<(usize, f64)> {
    let bytes = std::fs::read(out)?;
    let pic = codec::probe_and_decode(&bytes, &Limits::default(), Frames::First)?;
    Ok((
        bytes.len(),
        mogr::score::ssimulacra2(reference, pic.first())?,
    ))
}

struct Peer {
    name: &'static str,
    format: Format,
    args: fn(&Path, &Path) -> Vec<String>,
}

fn s(p: &Path) -> String {
    p.to_string_lossy().to_string()
}

const PEERS: [Peer; 5] = [
    Peer {
        name: "vips heifsave",
        format: Format::Heif,
        args: |i, o| vec!["vips".into(), "heifsave".into(), s(i), s(o)],
    },
    Peer {
        name: "vips heifsave av1",
        format: Format::Avif,
        args: |i, o| {
            vec![
                "vips".into(),
                "heifsave".into(),
                s(i),
                s(o),
                "--compression".into(),
                "av1".into(),
            ]
        },
    },
    Peer {
        name: "heif-enc",
        format: Format::Heif,
        args: |i, o| vec!["heif-enc".into(), s(i), "-o".into(), s(o)],
    },
    Peer {
        name: "heif-enc -A",
        format: Format::Avif,
        args: |i, o| vec!["heif-enc".into(), "-A".into(), s(i), "-o".into(), s(o)],
    },
    Peer {
        name: "vips webpsave",
        format: Format::Webp,
        args: |i, o| vec!["vips".into(), "webpsave".into(), s(i), s(o)],
    },
];

const FORMATS: [Format; 4] = [Format::Heif, Format::Avif, Format::Webp, Format::Jpeg];

pub fn run(inputs: &[PathBuf], runs: u32, profile: Profile) -> Result<()> {
    let exe = std::env::current_exe()?;
    let work = std::env::temp_dir().join(format!("mogr-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    println!("| image | format | encoder | bytes | % saved | SSIMULACRA2 | ms | peak MiB | bytes ÷ mogr's | ms ÷ mogr's |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for input in inputs {
        let in_bytes =
            std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
        let reference = codec::probe_and_decode(&in_bytes, &Limits::default(), Frames::First)?;
        let name = input
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let (w, h) = (reference.width(), reference.height());
        let label = format!("{name} ({w}×{h})");
        for format in FORMATS {
            let out = work.join(format!("mogr.{}", format.extension()));
            let rule = format!("imageMogr2/format/{}", format.name());
            let (ms, peak) = time_child(
                || {
                    let mut c = Command::new(&exe);
                    c.args([
                        "convert",
                        &s(input),
                        "--rule",
                        &rule,
                        "--output",
                        &s(&out),
                        "--profile",
                        profile.name(),
                    ]);
                    c
                },
                runs,
            )?;
            let (bytes, sc) = score(reference.first(), &out)?;
            let mine = Measured {
                bytes,
                score: sc,
                ms,
                peak_mib: peak,
            };
            row(
                &label,
                format,
                &format!("mogr ({profile})"),
                in_bytes.len(),
                &mine,
                None,
            );
            for peer in PEERS.iter().filter(|p| p.format == format) {
                let out = work.join(format!("peer.{}", format.extension()));
                let args = (peer.args)(input, &out);
                let measured = time_child(
                    || {
                        let mut c = Command::new(&args[0]);
                        c.args(&args[1..]);
                        c
                    },
                    runs,
                );
                match measured.and_then(|(ms, peak)| {
                    score(reference.first(), &out).map(|(b, sc)| (ms, peak, b, sc))
                }) {
                    Ok((ms, peak, bytes, sc)) => {
                        let theirs = Measured {
                            bytes,
                            score: sc,
                            ms,
                            peak_mib: peak,
                        };
                        row(
                            &label,
                            format,
                            peer.name,
                            in_bytes.len(),
                            &theirs,
                            Some(&mine),
                        );
                    }
                    Err(e) => println!(
                        "| {label} | {} | {} | failed: {e} | | | | | | |",
                        format.name(),
                        peer.name
                    ),
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn row(
    label: &str,
    format: Format,
    encoder: &str,
    in_len: usize,
    m: &Measured,
    mogr: Option<&Measured>,
) {
    let saved = 100.0 * (1.0 - m.bytes as f64 / in_len as f64);
    let ratios = match mogr {
        Some(me) => format!(
            "{:.2} | {:.2}",
            m.bytes as f64 / me.bytes as f64,
            m.ms / me.ms
        ),
        None => "1.00 | 1.00".to_string(),
    };
    println!(
        "| {label} | {} | {encoder} | {} | {saved:.1} | {:.1} | {:.0} | {:.0} | {ratios} |",
        format.name(),
        m.bytes,
        m.score,
        m.ms,
        m.peak_mib
    );
}
