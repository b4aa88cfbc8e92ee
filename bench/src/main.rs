//! `mogr-bench`: mogr beside vips and heif-enc, and the calibration of default qualities (BENCHMARKS.md).
//! Apart from the product: the `mogr` binary links none of this, and calls no peer tool. It times the
//! `mogr` command built beside it (`cargo build --release -p mogr-cli -p mogr-bench`).

mod at_score;
mod bench;
mod cache;
mod score;
mod slim;
mod stored;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use mogr::codec::{self, Frames};
use mogr::{Limits, Profile};
use std::path::PathBuf;

/// Benchmark mogr beside vips and heif-enc on the same files (a Markdown table for BENCHMARKS.md).
#[derive(Parser)]
#[command(
    name = "mogr-bench",
    version,
    help_expected = true,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  mogr-bench --runs 3 examples/photo.jpg examples/photo.png\n  \
        mogr-bench --at-score 70 examples/photo.png   (bytes at equal SSIMULACRA2)\n  \
        mogr-bench calibrate --format avif --profile download examples/photo.png\n\n\
        vips and heif-enc come from scripts/setup.sh; BENCHMARKS.md says how each table was made."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Images to convert.
    #[arg(default_values = ["examples/photo.jpg", "examples/photo.png"])]
    inputs: Vec<PathBuf>,
    /// Runs per conversion; the best time is reported.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// mogr's encoder profile: download or persistent.
    #[arg(long, default_value = "persistent")]
    profile: Profile,
    /// Compare bytes at equal quality instead: each encoder's quality searched for the smallest
    /// output scoring at least this SSIMULACRA2 (e.g. 70), both of mogr's profiles beside the peers.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    at_score: Option<u8>,
    /// With --at-score: only the encoders whose name and format contain this, e.g. "persistent) heif"
    /// (names: "mogr (persistent)", "mogr (download)", "vips heifsave", "vips heifsave av1", "vips webpsave").
    #[arg(long, requires = "at_score")]
    only: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Print SSIMULACRA2 and bytes per quality for one format, to calibrate default qualities.
    #[command(
        after_help = "Example:\n  mogr-bench calibrate --format avif --profile download examples/photo.png"
    )]
    Calibrate {
        /// The output format to calibrate: heif, avif, webp or jpeg.
        #[arg(long)]
        format: String,
        /// The encoder profile: download (fast) or persistent (smaller).
        #[arg(long, default_value = "persistent")]
        profile: Profile,
        /// The images to measure on (each scored against its own decoded pixels).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// What a stored rule without a quality writes at each input's own size (quality, bytes,
    /// SSIMULACRA2, time, peak memory) beside `quality/auto/<target>` and one encode at its quality.
    #[command(
        after_help = "Example:\n  mogr-bench stored \"$(bash scripts/bench-corpus.sh)\"/nature/TwoWings.jpg"
    )]
    Stored {
        /// The score a stored output should reach (and not pass by more than 3).
        #[arg(long, default_value_t = 70, value_parser = clap::value_parser!(u8).range(1..=100))]
        target: u8,
        /// The images, converted at their own size.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// SSIMULACRA2 as mogr computes it (one pass over the rows) beside `fast-ssim2`'s whole-plane
    /// form: the score, time and memory each takes on each input and a JPEG of it at quality 50.
    #[command(
        after_help = "Example:\n  mogr-bench score \"$(bash scripts/bench-corpus.sh)\"/nature/TwoWings.jpg"
    )]
    Score {
        /// The images (each scored against a JPEG of itself).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// One method of `mogr-bench score`, in a process of its own (its peak memory its own).
    #[command(
        hide = true,
        after_help = "Example:\n  mogr-bench score-one one-pass photo.jpg photo-q50.jpg"
    )]
    ScoreOne {
        /// one-pass (mogr's) or planes (fast-ssim2's, with a prepared reference).
        method: String,
        /// The picture scored against.
        reference: PathBuf,
        /// The picture scored.
        distorted: PathBuf,
    },
    /// `imageSlim` beside libvips on JPEG and PNG inputs: a JPEG re-saved at the lowest quality
    /// scoring what mogr's output scores (bytes at equal SSIMULACRA2), a PNG as a palette PNG.
    #[command(
        after_help = "Example:\n  mogr-bench slim examples/photo.jpg examples/screenshot.png"
    )]
    Slim {
        /// Runs of mogr's conversion; the best time is reported.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// JPEG and PNG images.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Time a download-time conversion the first time, from its kept copy and as a 304, over a
    /// folder and over S3 (the S3-protocol test server), with the storage calls each makes.
    #[command(after_help = "Example:\n  mogr-bench cache --runs 5 examples/photo.jpg")]
    Cache {
        /// Runs of each answer; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: u32,
        /// The JPEG to convert.
        input: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    mogr::bootstrap::init_tracing(false);
    let result = match cli.command {
        Some(Command::Calibrate {
            format,
            profile,
            inputs,
        }) => calibrate(&format, profile, &inputs),
        Some(Command::Cache { runs, input }) => cache::run(&input, runs.max(1)),
        Some(Command::Stored { target, inputs }) => stored::run(&inputs, target),
        Some(Command::Score { inputs }) => score::run(&inputs),
        Some(Command::Slim { runs, inputs }) => slim::run(&inputs, runs.max(1)),
        Some(Command::ScoreOne {
            method,
            reference,
            distorted,
        }) => score::one(&method, &reference, &distorted),
        None => match cli.at_score {
            Some(target) => at_score::run(&cli.inputs, target, cli.only.as_deref()),
            None => bench::run(&cli.inputs, cli.runs, cli.profile),
        },
    };
    if let Err(e) = result {
        eprintln!("mogr-bench: {e:#}");
        std::process::exit(1);
    }
}

fn calibrate(format: &str, profile: Profile, inputs: &[PathBuf]) -> Result<()> {
    let limits = Limits::default();
    let qualities: Vec<u8> = (30..=90).step_by(4).collect();
    let rules = qualities
        .iter()
        .map(|q| mogr::parse(&format!("imageMogr2/format/{format}/quality/{q}!")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    // per quality: (lowest score, sum of scores, total bytes)
    let mut stats = vec![(f64::MAX, 0.0, 0usize); qualities.len()];
    for p in inputs {
        let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        let probe = codec::probe(&bytes, &limits)?;
        // one decode and one prepared reference per image, for every quality
        let source = mogr::convert::Source::decode(&bytes, probe, &limits, Frames::First);
        let decoded = source.as_ref().map_err(Clone::clone)?;
        let reference = mogr::score::Reference::new(decoded.picture.first())?;
        let outputs = mogr::convert::convert_each(&source, &bytes, &rules, &limits, profile)?;
        for (out, (min, sum, total)) in outputs.iter().zip(&mut stats) {
            let got = codec::probe_and_decode(&out.bytes, &limits, Frames::First)?;
            let sc = reference.score(got.first())?;
            *min = min.min(sc);
            *sum += sc;
            *total += out.bytes.len();
        }
    }
    println!("quality  min-score  mean-score  total-bytes");
    for (q, (min, sum, total)) in qualities.iter().zip(stats) {
        println!(
            "{q:>7}  {min:>9.1}  {:>10.1}  {total:>11}",
            sum / inputs.len() as f64
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_has_help_and_every_command_an_example() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        cli.clone().debug_assert(); // with help_expected: panics on an argument without help text
        assert!(cli.render_long_help().to_string().contains("Examples"));
        for sub in cli.get_subcommands_mut().filter(|s| s.get_name() != "help") {
            let help = sub.render_long_help().to_string();
            assert!(
                help.contains("Example"),
                "{} shows no example",
                sub.get_name()
            );
        }
    }
}
