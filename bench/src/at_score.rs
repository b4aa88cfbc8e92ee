//! `mogr-bench --at-score S`: bytes at equal quality. For every image and every encoder — mogr's HEIF,
//! AVIF and WebP in both profiles, `vips heifsave` (HEVC and AV1) and `vips webpsave` — the quality knob
//! is searched for the smallest output scoring at least `S` on SSIMULACRA2 against the decoded input;
//! bytes are then compared with the peer of the same format. mogr's own `quality/auto/S` runs beside
//! (persistent HEIF and AVIF): what it found and what it cost beside one encode at the quality the
//! search found — and, for comparison, the calibrated default quality that a rule without a quality
//! got before `quality/auto/70` became the persistent profile's default.
//!
//! Inputs over [`DOWNSCALE_ABOVE`] pixels are first downscaled to about [`DOWNSCALE_TO`] (written as a
//! lossless PNG every encoder then reads), so that the whole run stays within minutes on 2 cores; "%
//! saved" is only shown for inputs kept at their own size (it is against the input file's bytes).

use crate::bench::{s, time_child};
use anyhow::{Context, Result};
use image::DynamicImage;
use mogr::codec::{self, Format, Frames};
use mogr::score::Reference;
use mogr::{Limits, Profile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Inputs larger than this are downscaled for this benchmark (the renders, 2–2.6 MP, keep their size).
const DOWNSCALE_ABOVE: u64 = 2_600_000;
/// ... to about this many pixels.
const DOWNSCALE_TO: f64 = 2_000_000.0;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoder {
    Mogr(Format, Profile),
    VipsHeif,
    VipsAv1,
    VipsWebp,
}

/// Each peer before mogr's encoders of its format, whose rows then show the ratio.
const ENCODERS: [Encoder; 9] = [
    Encoder::VipsHeif,
    Encoder::Mogr(Format::Heif, Profile::Persistent),
    Encoder::Mogr(Format::Heif, Profile::Download),
    Encoder::VipsAv1,
    Encoder::Mogr(Format::Avif, Profile::Persistent),
    Encoder::Mogr(Format::Avif, Profile::Download),
    Encoder::VipsWebp,
    Encoder::Mogr(Format::Webp, Profile::Persistent),
    Encoder::Mogr(Format::Webp, Profile::Download),
];

impl Encoder {
    fn format(self) -> Format {
        match self {
            Encoder::Mogr(f, _) => f,
            Encoder::VipsHeif => Format::Heif,
            Encoder::VipsAv1 => Format::Avif,
            Encoder::VipsWebp => Format::Webp,
        }
    }

    fn name(self) -> String {
        match self {
            Encoder::Mogr(_, p) => format!("mogr ({p})"),
            Encoder::VipsHeif => "vips heifsave".into(),
            Encoder::VipsAv1 => "vips heifsave av1".into(),
            Encoder::VipsWebp => "vips webpsave".into(),
        }
    }

    /// The peer a mogr encoder's bytes are compared with.
    fn peer(self) -> Option<Encoder> {
        match self {
            Encoder::Mogr(Format::Heif, _) => Some(Encoder::VipsHeif),
            Encoder::Mogr(Format::Avif, _) => Some(Encoder::VipsAv1),
            Encoder::Mogr(Format::Webp, _) => Some(Encoder::VipsWebp),
            _ => None,
        }
    }

    /// The command writing `input` to `out` at quality `q` (`Quality::Auto`: mogr's `quality/auto/<target>`).
    pub(crate) fn command(self, exe: &Path, input: &Path, out: &Path, q: Quality) -> Command {
        match (self, q) {
            (Encoder::Mogr(f, p), q) => {
                let quality = match q {
                    Quality::Fixed(q) => q.to_string(),
                    Quality::Auto(t) => format!("auto/{t}"),
                };
                let rule = format!("imageMogr2/format/{}/quality/{quality}", f.name());
                let mut c = Command::new(exe);
                c.args(["convert", &s(input), "--rule", &rule, "--output", &s(out)])
                    .args(["--profile", p.name()])
                    .env("RUST_LOG", "mogr=debug");
                c
            }
            (_, Quality::Auto(_)) => unreachable!("only mogr has quality/auto"),
            (vips, Quality::Fixed(q)) => {
                let (saver, more): (&str, &[&str]) = match vips {
                    Encoder::VipsAv1 => ("heifsave", &["--compression", "av1"]),
                    Encoder::VipsWebp => ("webpsave", &[]),
                    _ => ("heifsave", &[]),
                };
                let mut c = Command::new("vips");
                c.args([saver, &s(input), &s(out), "--Q", &q.to_string()])
                    .args(more);
                c
            }
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Quality {
    Fixed(u8),
    Auto(u8),
}

/// One output: the quality that made it, its size, its score and the converter's wall time.
#[derive(Clone, Copy)]
pub(crate) struct Try {
    pub q: u8,
    pub bytes: usize,
    pub score: f64,
    pub ms: f64,
}

/// The smallest quality whose output scores at least `target` (scores rise with quality; where they
/// do not, the search may stop one step off): a search between the highest failing and lowest passing
/// quality, each next try interpolated between their scores but kept at least an eighth of the way in
/// from either end, so that it narrows quickly and always ends. `None` when even 100 falls short, with
/// the tries made.
pub(crate) fn search(
    target: f64,
    mut run: impl FnMut(u8) -> Result<Try>,
) -> Result<(Option<Try>, Vec<Try>)> {
    let mut tries: Vec<Try> = Vec::new();
    // (quality, score): the highest that failed and the lowest that passed; 0 and 101 are sentinels
    let (mut lo, mut hi) = ((0u8, None::<f64>), (101u8, None::<f64>));
    let mut q = 60u8;
    loop {
        let t = run(q)?;
        tries.push(t);
        if t.score >= target {
            hi = (q, Some(t.score));
        } else {
            lo = (q, Some(t.score));
        }
        let gap = i32::from(hi.0) - i32::from(lo.0);
        if gap <= 1 {
            break;
        }
        let margin = (gap / 8).max(1);
        let guess = match (lo.1, hi.1) {
            (Some(ls), Some(hs)) if hs > ls => {
                f64::from(lo.0) + (target - ls) / (hs - ls) * f64::from(gap)
            }
            (None, _) => f64::from(hi.0) / 2.0,
            _ => f64::from(lo.0) + f64::from(gap) / 2.0,
        };
        q = (guess.round() as i32).clamp(i32::from(lo.0) + margin, i32::from(hi.0) - margin) as u8;
        if q > 100 {
            break;
        }
    }
    let best = tries
        .iter()
        .filter(|t| t.score >= target)
        .min_by_key(|t| t.q)
        .copied();
    Ok((best, tries))
}

struct Row {
    image: String,
    is_png: bool,
    /// The input file's bytes, for inputs kept at their own size.
    in_len: Option<usize>,
    encoder: Encoder,
    best: Option<Try>,
}

/// mogr's `quality/auto/<target>` on one image: its output, the encodes it made, and its time over
/// the time of one encode at the quality the search found.
struct Auto {
    image: String,
    format: Format,
    out: Try,
    encodes: f64,
    cost: f64,
    /// The output at the calibrated default quality (`mogr::convert::default_quality`), which a rule
    /// without a quality wrote before `quality/auto/70` became the persistent profile's default.
    fixed: Try,
}

pub fn run(inputs: &[PathBuf], target: u8, only: Option<&str>) -> Result<()> {
    let exe = crate::bench::mogr_exe()?;
    let work = std::env::temp_dir().join(format!("mogr-at-score-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let goal = f64::from(target);
    let mut rows: Vec<Row> = Vec::new();
    let mut autos: Vec<Auto> = Vec::new();
    println!(
        "| image | format | encoder | quality | bytes | % saved | SSIMULACRA2 | ms | tries | bytes ÷ peer's |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for input in inputs {
        let in_bytes =
            std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
        let decoded = codec::probe_and_decode(&in_bytes, &Limits::default(), Frames::First)?;
        let name = input
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let (picture, source, downscaled) = fit(decoded.first(), input, &work)?;
        let label = format!("{name} ({}×{})", picture.width(), picture.height());
        // prepared once: every try of every encoder is scored against it
        let reference = Reference::new(&picture)?;
        let in_len = (!downscaled).then_some(in_bytes.len());
        let is_png = input
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        let mut found: BTreeMap<String, Try> = BTreeMap::new();
        for encoder in ENCODERS {
            if only.is_some_and(|o| {
                !format!("{} {}", encoder.name(), encoder.format().name()).contains(o)
            }) {
                continue;
            }
            let format = encoder.format();
            let out = work.join(format!("out.{}", format.extension()));
            let once = |q: Quality| -> Result<(Try, String)> {
                let (ms, _, log) = time_child(|| encoder.command(&exe, &source, &out, q), 1, 0.0)?;
                let (bytes, score) = score(&reference, &out)?;
                let q = match q {
                    Quality::Fixed(q) => q,
                    Quality::Auto(_) => crate::bench::logged(&log, "quality").unwrap_or(0.0) as u8,
                };
                Ok((
                    Try {
                        q,
                        bytes,
                        score,
                        ms,
                    },
                    log,
                ))
            };
            let (best, tries) = search(goal, |q| Ok(once(Quality::Fixed(q))?.0))?;
            let peer = encoder
                .peer()
                .and_then(|p| found.get(&p.name()).map(|t| t.bytes));
            print_row(
                &label,
                format,
                &encoder.name(),
                best,
                tries.len(),
                in_len,
                peer,
            );
            if let Some(b) = best {
                found.insert(encoder.name(), b);
            }
            rows.push(Row {
                image: name.clone(),
                is_png,
                in_len,
                encoder,
                best,
            });
            if let (
                Encoder::Mogr(f @ (Format::Heif | Format::Avif), Profile::Persistent),
                Some(b),
            ) = (encoder, best)
            {
                let (auto, log) = once(Quality::Auto(target))?;
                let encodes = crate::bench::logged(&log, "tries").unwrap_or(f64::NAN);
                print_row(
                    &label,
                    format,
                    &format!("mogr ({}) quality/auto/{target}", Profile::Persistent),
                    Some(auto),
                    encodes as usize,
                    in_len,
                    peer,
                );
                // what a rule without a quality wrote before quality/auto/70 was the persistent default
                let q = mogr::convert::default_quality(f, Profile::Persistent, &decoded);
                let (fixed, _) = once(Quality::Fixed(q))?;
                print_row(
                    &label,
                    format,
                    &format!("mogr ({}) calibrated default", Profile::Persistent),
                    Some(fixed),
                    1,
                    in_len,
                    peer,
                );
                autos.push(Auto {
                    image: name.clone(),
                    format: f,
                    out: auto,
                    encodes,
                    cost: auto.ms / b.ms,
                    fixed,
                });
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    summary(&rows, &autos, goal);
    Ok(())
}

/// An output file's size and its score against `reference` (the same size).
pub(crate) fn score(reference: &Reference, out: &Path) -> Result<(usize, f64)> {
    let bytes = std::fs::read(out)?;
    let pic = codec::probe_and_decode(&bytes, &Limits::default(), Frames::First)?;
    Ok((bytes.len(), reference.score(pic.first())?))
}

/// The picture to score against and the file every encoder reads: the input itself, or, over
/// [`DOWNSCALE_ABOVE`] pixels, a downscaled copy written as PNG into `work`.
fn fit(img: &DynamicImage, input: &Path, work: &Path) -> Result<(DynamicImage, PathBuf, bool)> {
    let pixels = u64::from(img.width()) * u64::from(img.height());
    if pixels <= DOWNSCALE_ABOVE {
        return Ok((img.clone(), input.to_path_buf(), false));
    }
    let k = (DOWNSCALE_TO / pixels as f64).sqrt();
    let (w, h) = (
        (f64::from(img.width()) * k).round() as u32,
        (f64::from(img.height()) * k).round() as u32,
    );
    let small = mogr::pipeline::resize(img, w, h)?;
    let path = work.join("input.png");
    small.save(&path)?;
    Ok((small, path, true))
}

fn print_row(
    label: &str,
    format: Format,
    encoder: &str,
    best: Option<Try>,
    tries: usize,
    in_len: Option<usize>,
    peer_bytes: Option<usize>,
) {
    let Some(t) = best else {
        println!(
            "| {label} | {} | {encoder} | never reaches the score | | | | | {tries} | |",
            format.name()
        );
        return;
    };
    let saved = in_len.map_or("–".into(), |n| {
        format!("{:.1}", 100.0 * (1.0 - t.bytes as f64 / n as f64))
    });
    let ratio = peer_bytes.map_or("–".into(), |p| {
        format!("{:.2}", t.bytes as f64 / p as f64)
    });
    println!(
        "| {label} | {} | {encoder} | {} | {} | {saved} | {:.1} | {:.0} | {tries} | {ratio} |",
        format.name(),
        t.q,
        t.bytes,
        t.score,
        t.ms
    );
}

fn geomean(xs: &[f64]) -> f64 {
    (xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp()
}

/// Geometric means of bytes ÷ peer's bytes, then issue 14's targets checked against this run: ✅ met,
/// ❌ not, – nothing measured.
fn summary(rows: &[Row], autos: &[Auto], goal: f64) {
    let ratios = |encoder: Encoder| -> Vec<f64> {
        rows.iter()
            .filter(|r| r.encoder == encoder)
            .filter_map(|r| {
                let mine = r.best?;
                let peer = encoder.peer()?;
                let theirs = rows
                    .iter()
                    .find(|p| p.image == r.image && p.encoder == peer)?
                    .best?;
                Some(mine.bytes as f64 / theirs.bytes as f64)
            })
            .collect()
    };
    println!();
    println!("| encoder | format | images | bytes ÷ peer's, geometric mean | best | worst |");
    println!("|---|---|---:|---:|---:|---:|");
    let mut means = BTreeMap::new();
    for encoder in ENCODERS.into_iter().filter(|e| e.peer().is_some()) {
        let xs = ratios(encoder);
        if xs.is_empty() {
            continue;
        }
        let g = geomean(&xs);
        means.insert((encoder.name(), encoder.format().name()), (g, xs.len()));
        println!(
            "| {} | {} | {} | {g:.3} | {:.2} | {:.2} |",
            encoder.name(),
            encoder.format().name(),
            xs.len(),
            xs.iter().copied().fold(f64::MAX, f64::min),
            xs.iter().copied().fold(0.0, f64::max)
        );
    }
    println!();
    println!("| target | measured | |");
    println!("|---|---|---|");
    let verdict = |ok: Option<bool>| match ok {
        None => "–",
        Some(true) => "✅",
        Some(false) => "❌",
    };
    for (profile, limit) in [(Profile::Persistent, 0.85), (Profile::Download, 1.0)] {
        let mut text = Vec::new();
        let mut ok = None;
        for format in [Format::Heif, Format::Avif] {
            let encoder = Encoder::Mogr(format, profile);
            if let Some((g, n)) = means.get(&(encoder.name(), format.name())) {
                text.push(format!("{} {g:.3} ({n} images)", format.name()));
                ok = Some(ok.unwrap_or(true) && *g <= limit);
            }
        }
        println!(
            "| {profile} profile, HEIF and AVIF bytes at score {goal} ≤ {limit}× the peer's (geometric mean) | {} | {} |",
            text.join("; "),
            verdict(ok)
        );
    }
    if !autos.is_empty() {
        let cost = autos.iter().map(|a| a.cost).sum::<f64>() / autos.len() as f64;
        let encodes = autos.iter().map(|a| a.encodes).sum::<f64>() / autos.len() as f64;
        let low = autos
            .iter()
            .filter(|a| a.out.score < goal)
            .map(|a| format!("{} {} {:.1}", a.image, a.format.name(), a.out.score))
            .collect::<Vec<_>>();
        let lowest = autos.iter().map(|a| a.out.score).fold(f64::MAX, f64::min);
        println!(
            "| `quality/auto/{goal}`: ≤ 2× one encode (mean), every output ≥ {goal} | {cost:.2}× the time of one encode at the searched quality, {encodes:.2} encodes, {} conversions, lowest score {lowest:.1}{} | {} |",
            autos.len(),
            if low.is_empty() { String::new() } else { format!("; below: {}", low.join(", ")) },
            verdict(Some(cost <= 2.0 && low.is_empty()))
        );
        let mut text = Vec::new();
        for format in [Format::Heif, Format::Avif] {
            let mine: Vec<&Auto> = autos.iter().filter(|a| a.format == format).collect();
            if mine.is_empty() {
                continue;
            }
            let ratios: Vec<f64> = mine
                .iter()
                .map(|a| a.fixed.bytes as f64 / a.out.bytes as f64)
                .collect();
            let (low, high) = mine.iter().fold((f64::MAX, 0.0f64), |(l, h), a| {
                (l.min(a.fixed.score), h.max(a.fixed.score))
            });
            text.push(format!(
                "{} quality {}: {:.2}× the bytes of `quality/auto/{goal}` (geometric mean), scores {low:.1}–{high:.1}",
                format.name(),
                mine[0].fixed.q,
                geomean(&ratios)
            ));
        }
        println!(
            "| (for comparison) persistent profile's calibrated default, the fixed quality a rule without one got before `quality/auto/{goal}` | {} | – |",
            text.join("; ")
        );
    }
    let mut text = Vec::new();
    let mut ok = None;
    for image in rows.iter().filter(|r| r.is_png) {
        if image.encoder != Encoder::Mogr(Format::Heif, Profile::Persistent) {
            continue;
        }
        let Some(in_len) = image.in_len else { continue };
        let best = rows
            .iter()
            .filter(|r| r.image == image.image)
            .filter(|r| {
                matches!(
                    r.encoder,
                    Encoder::Mogr(Format::Heif | Format::Avif, Profile::Persistent)
                )
            })
            .filter_map(|r| Some((r.best?.bytes, r.encoder.format())))
            .min_by_key(|(bytes, _)| *bytes);
        if let Some((bytes, format)) = best {
            let saved = 100.0 * (1.0 - bytes as f64 / in_len as f64);
            text.push(format!("{} {saved:.1} % ({})", image.image, format.name()));
            ok = Some(ok.unwrap_or(true) && saved >= 97.3);
        }
    }
    println!(
        "| PNG → AVIF or HEIF (persistent) at score ≥ {goal}: ≥ 97.3 % saved, per image | {} | {} |",
        if text.is_empty() { "no PNG at its own size in this run".into() } else { text.join("; ") },
        verdict(ok)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(f: impl Fn(f64) -> f64) -> impl FnMut(u8) -> Result<Try> {
        move |q| {
            Ok(Try {
                q,
                bytes: usize::from(q) * 100,
                score: f(f64::from(q)),
                ms: 1.0,
            })
        }
    }

    #[test]
    fn the_search_finds_the_lowest_passing_quality_in_few_tries() {
        // linear, concave and convex score curves, targets at either end and between
        type Curve = fn(f64) -> f64;
        let curves: [(&str, Curve); 3] = [
            ("linear", |q| q * 0.9),
            ("concave", |q| 100.0 * (q / 100.0).sqrt()),
            ("convex", |q| 100.0 * (q / 100.0).powi(3)),
        ];
        for (name, f) in curves {
            for target in [1.0, 30.0, 70.0, 72.5, 85.0, 90.0] {
                let (best, tries) = search(target, curve(f)).unwrap();
                let want = (1..=100u8).find(|&q| f(f64::from(q)) >= target);
                assert_eq!(best.map(|t| t.q), want, "{name} at {target}");
                assert!(
                    tries.len() <= 12,
                    "{name} at {target}: {} tries",
                    tries.len()
                );
            }
        }
    }

    #[test]
    fn a_score_no_quality_reaches_is_reported_as_none() {
        let (best, tries) = search(95.0, curve(|q| q * 0.9)).unwrap();
        assert!(best.is_none());
        assert!(tries.iter().any(|t| t.q == 100), "100 was tried");
    }
}
