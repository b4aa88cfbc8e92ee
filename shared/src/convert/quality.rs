//! The quality a conversion is written with when the rule gives none (calibrated defaults, or
//! `quality/auto/70` for stored stills), and the `quality/auto` search itself.

use super::sample;
use crate::codec::{self, EncodeOptions, Format, Limits, Picture, Profile};
use crate::Result;

/// Default quality when a rule gives none. HEIF and AVIF values are calibrated per profile so that typical
/// photos score at least 70 on SSIMULACRA2 ("high quality"); see BENCHMARKS.md for the measurements.
pub fn default_quality(format: Format, profile: Profile, input: &Picture) -> u8 {
    match format {
        Format::Heif => 52,
        // aom's fast speeds (download: 8, or 9 above 8 MP) lose quality at the same setting: the
        // calibration photos' minimum at 70 is 65.6, at 74 it is 70.2 (hubble_deep_field).
        Format::Avif if profile == Profile::Download => 74,
        Format::Avif => 70,
        Format::Webp => 82,
        // JPEG to JPEG keeps the input's quality (capped), like COS; other inputs get 85.
        Format::Jpeg => input.quality.map_or(85, |q| q.min(90)),
        _ => 100,
    }
}

/// SSIMULACRA2 gained per quality step, about: how far `quality/auto`'s first steps go. Measured between
/// targets 70 and 85 on photo.png and a generated gradient+texture picture: HEIF 0.86–1.0, AVIF
/// 0.54–0.78, WebP 0.94–1.06, JPEG 1.0–1.05; HEIF is steeper below quality 45, where its search now
/// starts (1.0–1.7 per step on the bench corpus; 1.3 took 2.9 tries there where 0.9 took 3.1).
fn score_per_step(format: Format) -> f64 {
    match format {
        Format::Avif => 0.65,
        Format::Heif => 1.3,
        _ => 1.0,
    }
}

/// Where `quality/auto/<target>`'s search starts: the median quality it chose for a score of 70 on the
/// `mogr-bench --at-score` corpus (BENCHMARKS.md) — below the calibrated defaults, which are set for the
/// hardest photo — moved by [`score_per_step`] for other targets.
pub(super) fn auto_start(format: Format, target: u8) -> u8 {
    let at_70 = match format {
        Format::Heif => 40.0,
        Format::Avif => 57.0,
        Format::Webp => 76.0,
        _ => 75.0,
    };
    let q = at_70 + (f64::from(target) - 70.0) / score_per_step(format);
    q.round().clamp(1.0, 100.0) as u8
}

/// A passing try this close above the target is taken: a lower quality would save little.
const CLOSE_ENOUGH: f64 = 1.5;

/// The same on a [`sample`], whose tries cost a fraction as much: it decides the full-size try.
const CLOSE_ON_SAMPLE: f64 = 0.75;

/// Above this many pixels a try of `quality/auto` costs seconds (a 4 MP photo: about 1.3 s per HEIF
/// encode on 2 cores), so under a deadline the search aims its first full-size try higher (see
/// [`auto_quality`]).
const SAFE_START_ABOVE_PIXELS: u64 = 4_000_000;

/// The `quality/auto` target of a rule that names no quality: stored outputs (the persistent profile) in
/// HEIF, AVIF and WebP, stills of any size. The calibrated defaults are set for the hardest photo, so
/// typical pictures came out well above the target score: on the bench corpus HEIF 52 wrote 1.87× and
/// AVIF 70 1.58× the bytes of `quality/auto/70`, and up to 4.27× above 4 MP, where a cap on the search's
/// memory kept the defaults until the score was computed in one pass (BENCHMARKS.md).
/// JPEG keeps COS's rule (a JPEG input's own quality); animations keep the defaults (the search scores
/// the first frame only).
pub fn default_auto(format: Format, profile: Profile, pic: &Picture) -> Option<u8> {
    (profile == Profile::Persistent
        && matches!(format, Format::Heif | Format::Avif | Format::Webp)
        && pic.frames.len() == 1)
        .then_some(crate::rule::AUTO_SCORE)
}

/// Whether a request with `left` before its deadline (`None`: no deadline) has time for one more
/// try of `quality/auto` after one that took `last`: twice that, so the last try does not run it past.
fn time_for_another_try(left: Option<std::time::Duration>, last: std::time::Duration) -> bool {
    left.is_none_or(|left| left >= 2 * last)
}

/// `quality/auto/<target>`: the lowest quality whose output scores at least `target` on SSIMULACRA2
/// against `pic` (the picture encoded: the input after the rule's operations), found by [`search`].
///
/// A HEIF or AVIF picture of 1 MP and more is searched on its [`sample`] first — tiles of it, a
/// sixteenth of its pixels, where each try costs a fraction of a full-size one. The sample scores
/// higher than the picture at the same quality (its tiles are too small to show what the coarse
/// scales of the score see), so its search aims [`SAMPLE_OPTIMISM`] above the middle of the band a
/// stored output may land in ([`BAND`]). The picture itself is then encoded at the quality the sample
/// chose, and that try is kept when it scores within the band; otherwise the search goes on at full
/// size from there, stepping by the score per quality the sample's tries measured. Under a deadline,
/// a picture above [`SAFE_START_ABOVE_PIXELS`] — where the first full-size try may be the only one
/// that fits — aims a point higher, so a search cut short stores a passing try.
pub(super) fn auto_quality(
    pic: &Picture,
    opts: &mut EncodeOptions,
    target: u8,
    limits: &Limits,
) -> Result<Searched> {
    let target = f64::from(target);
    let sample = match opts.format {
        Format::Heif | Format::Avif => sample::sample(pic),
        _ => None,
    };
    // the sample's search, when there is one, decides the first full-size try and its slope
    let guess = match sample {
        None => None,
        Some(sample) => {
            let pixels = u64::from(pic.width()) * u64::from(pic.height());
            let cautious = limits.deadline.is_some() && pixels > SAFE_START_ABOVE_PIXELS;
            let caution = if cautious { 1.0 } else { 0.0 };
            // the sample's tries are taken within CLOSE_ON_SAMPLE of its target: centre that on the
            // band's middle plus the sample's optimism
            let middle = target + BAND / 2.0 + SAMPLE_OPTIMISM + caution;
            let on_target = middle - CLOSE_ON_SAMPLE / 2.0;
            let mut on_sample = opts.clone();
            let _span =
                tracing::debug_span!("quality/auto sample", target, aim = on_target).entered();
            let guess = search(
                &sample,
                &mut on_sample,
                on_target,
                CLOSE_ON_SAMPLE,
                None,
                limits,
            )?;
            opts.quality = guess.nearest;
            Some(guess)
        }
    };
    let close = if guess.is_some() { BAND } else { CLOSE_ENOUGH };
    let slope = guess.as_ref().and_then(|g| g.slope);
    let found = tracing::debug_span!("quality/auto", target)
        .in_scope(|| search(pic, opts, target, close, slope, limits))?;
    tracing::debug!(
        target,
        quality = opts.quality,
        score = found.score,
        tries = found.tries,
        sample_tries = guess.as_ref().map(|g| g.tries),
        sample_quality = guess.as_ref().map(|g| g.nearest),
        sample_score = guess.as_ref().map(|g| g.score),
        "quality/auto"
    );
    Ok(Searched {
        bytes: found.bytes,
        tries: found.tries,
        score: Some(found.score),
    })
}

/// An output and the full-size encodes that made it: [`auto_quality`]'s tries and the SSIMULACRA2
/// score of the one kept (0 and `None` for one plain encode).
pub(super) struct Searched {
    pub bytes: Vec<u8>,
    pub tries: u32,
    pub score: Option<f64>,
}

/// How far above its target a stored output may score (issue 35: "70–73"): the first full-size try
/// after a sample's search is kept when it passes by less.
const BAND: f64 = 3.0;

/// How much higher a [`sample`] scores than its picture at the same quality: the mean over HEIF and
/// AVIF at two qualities near score 70 on six photos of 4.1–8.3 MP (HEIF 3.5, AVIF 3.1; each
/// 1.4–5.3).
const SAMPLE_OPTIMISM: f64 = 3.3;

/// What a [`search`] found: the output, its score, how many encodes it took, the score per quality
/// between its closest passing and failing tries (when it made both), and the quality of the try
/// that scored nearest where the search aimed, passing or not.
struct Found {
    bytes: Vec<u8>,
    score: f64,
    tries: u32,
    slope: Option<f64>,
    nearest: u8,
}

/// The search for the lowest quality that scores `target` on `pic`. The first try is at
/// `opts.quality` ([`auto_start`]'s, or the sample's), which typical pictures bring close to the
/// target; from there each try steps toward the middle of the scores it takes (`target + close / 2`)
/// by the score it missed that by (over `slope`, or else the format's [`score_per_step`]), then
/// between the closest passing and failing tries in proportion to their scores, passing over
/// qualities whose encoder step ([`codec::quality_step`]) was tried already: they would write the
/// same file. It stops at a try that passes by less than `close`, when the closest passing and
/// failing tries are at most two qualities apart or no untried step lies between them, after eight
/// tries, or when the request's deadline leaves less than twice the last try's time. Each try is an
/// encode, a decode and a score. When no try reaches the target (it is above what the format gives,
/// or the deadline came first), the best one. The quality reported is the lowest that writes the
/// chosen file.
fn search(
    pic: &Picture,
    opts: &mut EncodeOptions,
    target: f64,
    close: f64,
    slope: Option<f64>,
    limits: &Limits,
) -> Result<Found> {
    let reference = crate::score::Reference::new(pic.first())?;
    let score = |bytes: &[u8]| -> Result<f64> {
        codec::with_rgb8(bytes, limits, |rows| reference.score_rows(rows))?
    };
    // where the tries aim: the middle of the scores a passing try is taken at
    let aim = target + close / 2.0;
    // (quality, score, bytes): the lowest try that passed, the highest that did not
    let mut pass: Option<(i32, f64, Vec<u8>)> = None;
    let mut fail: Option<(i32, f64, Vec<u8>)> = None;
    let step = |q: i32| codec::quality_step(opts.format, q as u8);
    // steps encoded so far: a quality of the same step would write the same file again
    let mut tried: Vec<u32> = Vec::new();
    let (mut q, mut tries) = (i32::from(opts.quality), 0);
    loop {
        let started = std::time::Instant::now();
        limits.check_deadline()?;
        let bytes = codec::encode(pic, opts)?;
        tries += 1;
        tried.push(step(q));
        let s = tracing::debug_span!("score").in_scope(|| score(&bytes))?;
        tracing::trace!(
            tries,
            quality = q,
            score = s,
            ms = started.elapsed().as_millis() as u64,
            width = pic.width(),
            "quality/auto try"
        );
        if s >= target {
            if pass.as_ref().is_none_or(|p| q < p.0) {
                pass = Some((q, s, bytes));
            }
        } else if fail.as_ref().is_none_or(|f| q > f.0) {
            fail = Some((q, s, bytes));
        }
        if s >= target && s < target + close {
            break;
        }
        let slope = slope.unwrap_or_else(|| score_per_step(opts.format));
        let untried = |x: &i32| !tried.contains(&step(*x));
        let next = match (&pass, &fail) {
            (Some((pq, ps, _)), Some((fq, fs, _))) if pq - fq > 2 => {
                let t = (aim - fs) / (ps - fs).max(0.01);
                let guess = f64::from(*fq) + t * f64::from(pq - fq);
                (fq + 1..*pq).filter(untried).min_by(|a, b| {
                    (f64::from(*a) - guess)
                        .abs()
                        .total_cmp(&(f64::from(*b) - guess).abs())
                })
            }
            (Some((pq, ps, _)), None) => {
                let by = ((ps - aim) / slope).round().max(1.0) as i32;
                (1..=(pq - by).max(1)).rev().find(untried)
            }
            (None, Some((fq, fs, _))) => {
                let by = ((aim - fs) / slope).round().max(1.0) as i32;
                (fq + by..=100).find(untried)
            }
            _ => None,
        };
        let Some(n) = next.filter(|_| tries < 8) else {
            break;
        };
        if !time_for_another_try(limits.time_left(), started.elapsed()) {
            tracing::warn!(
                tries,
                passed = pass.is_some(),
                "quality/auto stopped early: the request's deadline is near"
            );
            break;
        }
        q = n;
        opts.quality = q as u8;
    }
    let slope = match (&pass, &fail) {
        (Some((pq, ps, _)), Some((fq, fs, _))) => {
            Some((ps - fs) / f64::from(pq - fq)).filter(|s| *s > 0.0)
        }
        _ => None,
    };
    let off =
        |t: &Option<(i32, f64, Vec<u8>)>| t.as_ref().map_or(f64::INFINITY, |t| (t.1 - aim).abs());
    let nearest = if off(&fail) < off(&pass) {
        &fail
    } else {
        &pass
    };
    let nearest = nearest.as_ref().map_or(0, |t| t.0 as u8);
    let (mut q, score, bytes) = pass.or(fail).expect("at least one try");
    while q > 1 && step(q - 1) == step(q) {
        q -= 1;
    }
    opts.quality = q as u8;
    Ok(Found {
        bytes,
        score,
        tries,
        slope,
        nearest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn quality_auto_tries_again_only_with_twice_the_last_try_left() {
        let last = Duration::from_millis(400);
        assert!(time_for_another_try(None, last), "no deadline");
        assert!(time_for_another_try(Some(Duration::from_millis(800)), last));
        assert!(!time_for_another_try(
            Some(Duration::from_millis(799)),
            last
        ));
        assert!(!time_for_another_try(Some(Duration::ZERO), last));
    }

    #[test]
    fn only_persistent_lossy_stills_are_searched_by_default() {
        let still = |w, h| Picture::still(image::DynamicImage::new_rgb8(w, h), Format::Png);
        let small = still(64, 48);
        for f in [Format::Heif, Format::Avif, Format::Webp] {
            assert_eq!(default_auto(f, Profile::Persistent, &small), Some(70));
            assert_eq!(default_auto(f, Profile::Download, &small), None);
        }
        for f in [Format::Jpeg, Format::Png, Format::Gif] {
            assert_eq!(default_auto(f, Profile::Persistent, &small), None, "{f:?}");
        }
        let large = still(5000, 3000);
        assert_eq!(
            default_auto(Format::Heif, Profile::Persistent, &large),
            Some(70)
        );
        let mut animation = still(64, 48);
        animation.frames.push(animation.frames[0].clone());
        assert_eq!(
            default_auto(Format::Webp, Profile::Persistent, &animation),
            None
        );
    }
}
