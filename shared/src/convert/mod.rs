//! Conversions: decode once, run each rule's pipeline, encode once per rule — with COS quality, size-limit and
//! ignore-error semantics. Here: the orchestration and `ignore-error`; `quality.rs`: the default
//! qualities and the `quality/auto` search; `fit.rs`: the `size-limit` search.

mod fit;
mod quality;
mod sample;

pub use quality::{default_auto, default_quality};

use crate::codec::{
    self, EncodeOptions, Format, Frames, Limits, MemoryPlan, Picture, Probe, Profile,
};
use crate::rule::{Op, Quality, Rule, SLIM_SCORE};
use crate::timing::Timings;
use crate::{pipeline, Result};
use quality::{auto_quality, auto_start, Searched};

/// The result of a conversion.
#[derive(Debug, Clone)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    /// The quality the output was written with (100 for lossless formats).
    pub quality: u8,
    /// True when the input was returned unchanged (`ignore-error`, or `size-limit/..!` with a larger result).
    pub is_original: bool,
    /// Frames of an animated input left out because the output format holds one picture.
    pub frames_dropped: u32,
    /// `imageSlim`'s answer header `X-Slimflag`: 1 when the output is smaller than the input, 2 when
    /// it is the input itself; `None` for other rules.
    pub slim_flag: Option<u8>,
    /// The time the conversion's stages took: `decode` (when this call decoded), `transform` (the
    /// rule's steps) and `encode` (every encode a search or a size limit made).
    pub timings: Timings,
    /// `quality/auto`'s full-size tries (0 without a search).
    pub tries: u32,
    /// The SSIMULACRA2 score `quality/auto` measured for the output it chose (`None` without a
    /// search, or when a `size-limit` encoded again after it).
    pub score: Option<f64>,
}

impl Output {
    /// The quality setting worth recording with a stored copy: lossy formats only.
    pub fn stored_quality(&self) -> Option<u8> {
        self.format.is_lossy().then_some(self.quality)
    }

    /// What the output lost that the input had, in words for a person (ASCII: it goes in a header).
    pub fn warning(&self) -> Option<String> {
        (self.frames_dropped > 0).then(|| {
            format!(
                "kept the first of {} frames: {} is not animated here (format/webp or format/gif keep every frame)",
                self.frames_dropped + 1,
                self.format.name()
            )
        })
    }
}

/// An input probed and decoded once, for any number of rules.
#[derive(Debug, Clone)]
pub struct Source {
    pub probe: Probe,
    pub picture: Picture,
}

impl Source {
    /// Decodes a probed input, with every frame of an animation when `frames` asks for them.
    pub fn decode(bytes: &[u8], probe: Probe, limits: &Limits, frames: Frames) -> Result<Self> {
        let picture = codec::decode(bytes, &probe, limits, frames)?;
        Ok(Source { probe, picture })
    }
}

/// The frames a rule's output needs from an input in `input` format: all of them when it animates,
/// those up to the one `frame/<n>` picks (all when `cgif` picks from them first).
pub fn frames_for(rule: &Rule, input: Format) -> Frames {
    let mut cgif = false;
    for op in &rule.ops {
        match *op {
            Op::Frame(_) if cgif => return Frames::All,
            Op::Frame(n) => return Frames::Upto(n),
            Op::Cgif(_) => cgif = true,
            _ => {}
        }
    }
    if rule.format.unwrap_or(input).is_animated() {
        Frames::All
    } else {
        Frames::First
    }
}

/// Sizes every step of `rule` from the header, before any pixel is decoded (see [`pipeline::plan`]):
/// with as many frames as the output keeps.
/// The memory the conversion will hold is planned too ([`Limits::check_memory`]).
pub fn plan(rule: &Rule, probe: &Probe, limits: &Limits) -> Result<()> {
    let frames = frames_for(rule, probe.format).count(probe.frames);
    let planned = pipeline::planned(&rule.ops, probe.upright(), frames, limits)?;
    let format = rule.format.unwrap_or(probe.format);
    let out_frames = if format.is_animated() {
        planned.frames
    } else {
        1
    };
    let pixels = |frames: u32, (w, h): (u32, u32)| frames as u64 * w as u64 * h as u64;
    limits.check_memory(&MemoryPlan {
        decoded: pixels(frames, (probe.width, probe.height)),
        step: planned.step_pixels,
        output: pixels(out_frames, planned.size),
        format,
    })
}

/// Converts `input` by `rule`. `profile` is the entry point's default when the rule names none.
pub fn convert(input: &[u8], rule: &Rule, limits: &Limits, profile: Profile) -> Result<Output> {
    match codec::probe(input, limits) {
        Ok(probe) => convert_probed(input, probe, rule, limits, profile),
        Err(e) => or_original(Err(e), input, rule, limits),
    }
}

/// [`convert`] for an input already probed (`format/auto` picks the format from the probe first).
pub fn convert_probed(
    input: &[u8],
    probe: Probe,
    rule: &Rule,
    limits: &Limits,
    profile: Profile,
) -> Result<Output> {
    let result = check_rule(rule).and_then(|()| {
        plan(rule, &probe, limits)?;
        let mut timings = Timings::default();
        let picture = timings.time("decode", || {
            codec::decode(input, &probe, limits, frames_for(rule, probe.format))
        })?;
        convert_picture(input, &probe, picture, rule, limits, profile, timings)
    });
    or_original(result, input, rule, limits)
}

/// Converts one decoded source of `input` by several rules (Pic-Operations): one decode, one copy of
/// the picture per rule. Outputs are in rule order; a rule that fails fails the whole set, unless it
/// asks for `ignore-error`.
pub fn convert_each(
    source: &Result<Source>,
    input: &[u8],
    rules: &[Rule],
    limits: &Limits,
    profile: Profile,
) -> Result<Vec<Output>> {
    rules
        .iter()
        .map(|rule| {
            let result = check_rule(rule).and_then(|()| match source {
                Ok(s) => {
                    plan(rule, &s.probe, limits)?;
                    let picture = s.picture.copy(frames_for(rule, s.probe.format));
                    let timings = Timings::default(); // the shared decode is not this rule's
                    convert_picture(input, &s.probe, picture, rule, limits, profile, timings)
                }
                Err(e) => Err(e.clone()),
            });
            or_original(result, input, rule, limits)
        })
        .collect()
}

/// `ignore-error/1`: a client error answers the original instead (an input over the limits included).
pub fn or_original(
    result: Result<Output>,
    input: &[u8],
    rule: &Rule,
    limits: &Limits,
) -> Result<Output> {
    match result {
        Err(e) if rule.ignore_error && e.is_client_error() => original(input, limits),
        other => other,
    }
}

fn original(input: &[u8], limits: &Limits) -> Result<Output> {
    // The original is answered as it is, so only its header is read: over the limits or not.
    let unlimited = Limits {
        max_input_bytes: usize::MAX,
        max_pixels: u64::MAX,
        max_side: u32::MAX,
        max_frames: u32::MAX,
        ..*limits
    };
    let p = codec::probe(input, &unlimited)?;
    Ok(Output {
        bytes: input.to_vec(),
        format: p.format,
        width: p.width,
        height: p.height,
        quality: if p.format == Format::Jpeg {
            codec::jpeg::estimate_quality(input).unwrap_or(100)
        } else {
            100
        },
        is_original: true,
        frames_dropped: 0,
        slim_flag: None,
        timings: Timings::default(),
        tries: 0,
        score: None,
    })
}

/// What a rule asks that no input can give.
fn check_rule(rule: &Rule) -> Result<()> {
    if let Some(why) = &rule.refused {
        return Err(crate::Error::invalid(why.clone()));
    }
    if rule.format_auto && rule.format.is_none() {
        return Err(crate::Error::invalid(
            "format/auto picks a format from a download request's Accept header, so it works upon download \
             only: name a format (e.g. format/avif) for stored outputs",
        ));
    }
    Ok(())
}

/// Runs the rule's pipeline over `pic` (holding the frames [`frames_for`] asked for) and encodes it,
/// adding `transform` and `encode` to `timings` (which holds the decode when the caller made one).
#[allow(clippy::too_many_arguments)]
fn convert_picture(
    input: &[u8],
    probe: &Probe,
    mut pic: Picture,
    rule: &Rule,
    limits: &Limits,
    profile: Profile,
    mut timings: Timings,
) -> Result<Output> {
    let format = rule.format.unwrap_or(probe.format);
    timings.time("transform", || pipeline::run(&mut pic, &rule.ops, limits))?;
    let encoding = std::time::Instant::now();

    let profile = rule.profile.unwrap_or(profile);
    // the quality/auto target, if the output is searched for, and the quality to encode (first) with
    let slims = rule.slim && pic.frames.len() == 1;
    let (auto, quality) = match rule.quality {
        Some(Quality::Auto(target)) if format.is_lossy() => {
            (Some(target), auto_start(format, target))
        }
        Some(q) => (None, q.resolve(pic.quality.unwrap_or(100))),
        None if slims && format.is_lossy() => (Some(SLIM_SCORE), auto_start(format, SLIM_SCORE)),
        None => match default_auto(format, profile, &pic) {
            Some(target) => (Some(target), auto_start(format, target)),
            None => (None, default_quality(format, profile, &pic)),
        },
    };
    let mut opts = EncodeOptions {
        format,
        quality: if format.is_lossy() { quality } else { 100 },
        interlace: rule.interlace,
        strip: rule.strip,
        profile,
        threads: limits.encoder_threads,
        // imageSlim's JPEGs: mozjpeg's trellis quantisation and optimised scans, as yjpeg
        optimized: rule.yjpeg || (rule.slim && format == Format::Jpeg),
    };
    let Searched {
        mut bytes,
        tries,
        mut score,
    } = match auto {
        Some(target) => auto_quality(&pic, &mut opts, target, limits)?,
        None => {
            limits.check_deadline()?;
            Searched {
                bytes: codec::encode(&pic, &opts)?,
                tries: 0,
                score: None,
            }
        }
    };

    if slims && format == Format::Png {
        bytes = slim_png(&pic, &opts, bytes)?;
    }

    if let Some(limit) = rule.size_limit {
        if bytes.len() as u64 > limit.bytes && format.is_lossy() {
            bytes = fit::within(&pic, &mut opts, bytes, limit.bytes, limits)?;
            score = None; // the search's score was of a larger file
        }
        if limit.keep_smaller_original && bytes.len() > input.len() {
            return original(input, limits);
        }
    }
    timings.add("encode", encoding.elapsed());
    // imageSlim never answers more bytes than it was given (unless a format/ of its own asked for
    // another format): then the input itself
    if rule.slim && format == probe.format && bytes.len() >= input.len() {
        return Ok(Output {
            slim_flag: Some(2),
            timings,
            tries,
            ..original(input, limits)?
        });
    }
    Ok(Output {
        bytes,
        format,
        width: pic.width(),
        height: pic.height(),
        quality: opts.quality,
        is_original: false,
        // a frame the rule picked is not a loss to warn of
        frames_dropped: if format.is_animated()
            || rule.ops.iter().any(|o| matches!(o, Op::Frame(_)))
        {
            0
        } else {
            probe.frames.saturating_sub(1)
        },
        slim_flag: rule.slim.then_some(1),
        timings,
        tries,
        score,
    })
}

/// `imageSlim` of a PNG: the picture as an indexed PNG when that scores at least [`SLIM_SCORE`]
/// against it and is smaller than `lossless`, the true-colour encode; `lossless` otherwise.
fn slim_png(pic: &Picture, opts: &EncodeOptions, lossless: Vec<u8>) -> Result<Vec<u8>> {
    let indexed = codec::Indexed::quantize(pic.first())?;
    let score = crate::score::Reference::new(pic.first())?.score(&indexed.to_image())?;
    tracing::debug!(score, "imageSlim: the picture as a palette");
    if score < f64::from(SLIM_SCORE) {
        return Ok(lossless);
    }
    let bytes = indexed.encode(pic, opts.strip)?;
    Ok(if bytes.len() < lossless.len() {
        bytes
    } else {
        lossless
    })
}
