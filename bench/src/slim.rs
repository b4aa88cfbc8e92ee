//! `mogr-bench slim`: `imageSlim` (the input's own format, fewer bytes, no visible loss) beside the
//! peer doing the same with libvips: a JPEG re-saved by `vips jpegsave --optimize-coding` at the lowest
//! quality scoring at least what mogr's output scores (bytes at equal SSIMULACRA2), a PNG by
//! `vips pngsave --palette` at its defaults (256 colours, dithered). Both scored against the input.

use crate::at_score::{score, search, Try};
use crate::bench::{mogr_exe, s, time_child};
use anyhow::{bail, Context, Result};
use mogr::codec::{self, Format, Frames};
use mogr::score::Reference;
use mogr::Limits;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn run(inputs: &[PathBuf], runs: u32) -> Result<()> {
    let exe = mogr_exe()?;
    let dir = tempfile::tempdir()?;
    let limits = Limits::default();
    println!(
        "| image | input bytes | mogr `imageSlim`: bytes / saved / score / ms | peer: bytes / saved / score / ms | \
         bytes peer ÷ mogr | ms peer ÷ mogr |"
    );
    println!("|---|---:|---|---|---:|---:|");
    let (mut ratios, mut saved) = (Vec::new(), Vec::new());
    for input in inputs {
        let bytes =
            std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
        let probe = codec::probe(&bytes, &limits)?;
        if !matches!(probe.format, Format::Jpeg | Format::Png) {
            bail!("{}: slim compares JPEG and PNG inputs", input.display());
        }
        let decoded = codec::decode(&bytes, &probe, &limits, Frames::First)?;
        let reference = Reference::new(decoded.first())?;
        let out = dir
            .path()
            .join(format!("slim.{}", probe.format.extension()));
        let mogr = || {
            let mut c = Command::new(&exe);
            c.args([
                "convert",
                &s(input),
                "--rule",
                "imageSlim",
                "--output",
                &s(&out),
            ]);
            c
        };
        let (ms, _, _) = time_child(mogr, runs, 0.0)?;
        let (len, mogr_score) = score(&reference, &out)?;
        let (peer, what) = if probe.format == Format::Jpeg {
            let found = search(mogr_score, |q| {
                jpegsave(input, &dir.path().join("peer.jpg"), q, &reference)
            })?;
            let best = found
                .0
                .context("vips jpegsave at Q 100 scores below mogr's output")?;
            (best, format!("jpegsave Q {}", best.q))
        } else {
            (
                pngsave_palette(input, &dir.path().join("peer.png"), &reference)?,
                "pngsave --palette".into(),
            )
        };
        let pct = |n: usize| 100.0 * (1.0 - n as f64 / bytes.len() as f64);
        let name = input
            .file_name()
            .map_or_else(|| s(input), |n| n.to_string_lossy().into());
        println!(
            "| {name} ({}×{}) | {} | {len} / −{:.0} % / {mogr_score:.1} / {ms:.0} | {what}: {} / −{:.0} % / {:.1} / {:.0} | {:.2} | {:.2} |",
            probe.width,
            probe.height,
            bytes.len(),
            pct(len),
            peer.bytes,
            pct(peer.bytes),
            peer.score,
            peer.ms,
            peer.bytes as f64 / len as f64,
            peer.ms / ms,
        );
        ratios.push(peer.bytes as f64 / len as f64);
        saved.push(pct(len));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!();
    println!(
        "imageSlim saved {:.0} % of the input's bytes (mean); the peer's bytes ÷ mogr's: {:.2} (mean)",
        mean(&saved),
        mean(&ratios)
    );
    Ok(())
}

/// `vips jpegsave` at quality `q`, Huffman tables optimised.
fn jpegsave(input: &Path, out: &Path, q: u8, reference: &Reference) -> Result<Try> {
    let command = || {
        let mut c = Command::new("vips");
        c.args([
            "jpegsave",
            &s(input),
            &s(out),
            "--Q",
            &q.to_string(),
            "--optimize-coding",
        ]);
        c
    };
    let (ms, _, _) = time_child(command, 1, 0.0)?;
    let (bytes, score) = score(reference, out)?;
    Ok(Try {
        q,
        bytes,
        score,
        ms,
    })
}

/// `vips pngsave --palette` at its defaults.
fn pngsave_palette(input: &Path, out: &Path, reference: &Reference) -> Result<Try> {
    let command = || {
        let mut c = Command::new("vips");
        c.args(["pngsave", &s(input), &s(out), "--palette"]);
        c
    };
    let (ms, _, _) = time_child(command, 3, 0.0)?;
    let (bytes, score) = score(reference, out)?;
    Ok(Try {
        q: 100,
        bytes,
        score,
        ms,
    })
}
