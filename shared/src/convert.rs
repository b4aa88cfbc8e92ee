//! One conversion: decode once, run the pipeline, encode once — with COS quality, size-limit and
//! ignore-error semantics.

use crate::codec::{self, EncodeOptions, Format, Frames, Limits, Picture};
use crate::rule::{Profile, Rule};
use crate::{pipeline, Result};

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
}

/// Default quality when a rule gives none. HEIF and AVIF values are calibrated so that typical photos
/// score at least 70 on SSIMULACRA2 ("high quality"); see BENCHMARKS.md for the measurements.
pub fn default_quality(format: Format, input: &Picture) -> u8 {
    match format {
        Format::Heif => 52,
        Format::Avif => 70,
        Format::Webp => 82,
        // JPEG to JPEG keeps the input's quality (capped), like COS; other inputs get 85.
        Format::Jpeg => input.quality.map_or(85, |q| q.min(90)),
        _ => 100,
    }
}

/// Converts `input` by `rule`. `profile` is the entry point's default when the rule names none.
pub fn convert(input: &[u8], rule: &Rule, limits: &Limits, profile: Profile) -> Result<Output> {
    match convert_inner(input, rule, limits, profile) {
        Err(e) if rule.ignore_error && e.is_client_error() => original(input, limits),
        other => other,
    }
}

fn original(input: &[u8], limits: &Limits) -> Result<Output> {
    let p = codec::probe(input, limits)?;
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
    })
}

fn convert_inner(input: &[u8], rule: &Rule, limits: &Limits, profile: Profile) -> Result<Output> {
    if rule.format_auto && rule.format.is_none() {
        return Err(crate::Error::invalid(
            "format/auto picks a format from a download request's Accept header, so it works upon download \
             only: name a format (e.g. format/avif) for stored outputs",
        ));
    }
    let probe = codec::probe(input, limits)?;
    let format = rule.format.unwrap_or(probe.format);
    let frames = if format.is_animated() {
        Frames::All
    } else {
        Frames::First
    };
    let mut pic = codec::decode(input, limits, frames)?;
    pipeline::run(&mut pic, &rule.ops, limits)?;

    let quality = match rule.quality {
        Some(q) => q.resolve(pic.quality.unwrap_or(100)),
        None => default_quality(format, &pic),
    };
    let mut opts = EncodeOptions {
        format,
        quality: if format.is_lossy() { quality } else { 100 },
        interlace: rule.interlace,
        strip: rule.strip,
        profile: rule.profile.unwrap_or(profile),
    };
    let mut bytes = codec::encode(&pic, &opts)?;

    if let Some(limit) = rule.size_limit {
        if bytes.len() as u64 > limit.bytes && format.is_lossy() {
            // Bisect the quality for the best output that fits; if none fits, the smallest one tried.
            let (mut lo, mut hi) = (1u8, opts.quality.saturating_sub(1));
            let mut fits: Option<(u8, Vec<u8>)> = None;
            let mut smallest = (opts.quality, std::mem::take(&mut bytes));
            while lo <= hi {
                let mid = lo + (hi - lo) / 2;
                opts.quality = mid;
                let b = codec::encode(&pic, &opts)?;
                if b.len() as u64 <= limit.bytes {
                    fits = Some((mid, b));
                    lo = mid + 1;
                } else {
                    if b.len() < smallest.1.len() {
                        smallest = (mid, b);
                    }
                    hi = mid - 1;
                }
            }
            (opts.quality, bytes) = fits.unwrap_or(smallest);
        }
        if limit.keep_smaller_original && bytes.len() > input.len() {
            return original(input, limits);
        }
    }
    Ok(Output {
        bytes,
        format,
        width: pic.width(),
        height: pic.height(),
        quality: opts.quality,
        is_original: false,
    })
}
