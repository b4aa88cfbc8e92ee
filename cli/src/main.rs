//! The `mogr` command: convert local files with imageMogr2 rules, inspect images, and run the demo.

mod bench;
mod multipart;
mod serve;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use mogr::codec::{self, Format, Frames};
use mogr::{Limits, Profile};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "mogr",
    version,
    about = "Image Advanced Compression: COS imageMogr2 rules on local files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert one image by an imageMogr2 rule.
    Convert {
        /// Input file, or - for standard input.
        input: String,
        /// The rule, e.g. imageMogr2/thumbnail/800x/format/heif
        #[arg(long, short)]
        rule: String,
        /// Output file, or - for standard output.
        #[arg(long, short)]
        output: String,
        /// Encoder profile when the rule names none: download (fast) or persistent (smaller).
        #[arg(long, default_value = "persistent")]
        profile: Profile,
    },
    /// Print an image's ?imageInfo JSON.
    Info {
        /// Input file, or - for standard input.
        input: String,
    },
    /// Convert every image in a folder into every output format and print bytes, % saved and quality.
    Demo {
        #[arg(default_value = "examples")]
        dir: PathBuf,
        /// Also write the outputs here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Serve a folder as the bucket over HTTP: GET ?imageMogr2/..., POST ?image_process, PUT with Pic-Operations.
    Serve {
        /// The folder that acts as the bucket; it must exist.
        #[arg(long, default_value = "examples")]
        root: PathBuf,
        /// Where to listen: `host:port` (`127.0.0.1:8080`, `localhost:9000`, `0.0.0.0:8080` for every
        /// interface) or a bare port (`8080`, on 127.0.0.1).
        #[arg(long, default_value = "127.0.0.1:8080", value_parser = serve::parse_addr)]
        addr: std::net::SocketAddr,
        /// The bucket's name, used in Location and matched against Pic-Operations' `bucket`. Without
        /// it the bucket is called "local" and answers to any name a rule's `bucket` gives it (code
        /// written for COS names its real bucket; locally there is only this one).
        #[arg(long)]
        bucket: Option<String>,
        #[command(flatten)]
        guard: serve::Guard,
    },
    /// Benchmark mogr beside vips and heif-enc on the same files (a Markdown table for BENCHMARKS.md).
    Bench {
        /// Images to convert.
        #[arg(default_values = ["examples/photo.jpg", "examples/photo.png"])]
        inputs: Vec<PathBuf>,
        /// Runs per conversion; the best time is reported.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// mogr's encoder profile: download or persistent.
        #[arg(long, default_value = "persistent")]
        profile: Profile,
    },
    /// Print SSIMULACRA2 and bytes per quality for one format, to calibrate default qualities.
    Calibrate {
        #[arg(long)]
        format: String,
        #[arg(long, default_value = "persistent")]
        profile: Profile,
        inputs: Vec<PathBuf>,
    },
}

fn main() {
    let cli = Cli::parse();
    mogr::bootstrap::init_tracing(false);
    let result = match cli.command {
        Command::Convert {
            input,
            rule,
            output,
            profile,
        } => convert(&input, &rule, &output, profile),
        Command::Info { input } => info(&input),
        Command::Demo { dir, out } => demo(&dir, out.as_deref()),
        Command::Serve {
            root,
            addr,
            bucket,
            guard,
        } => tokio::runtime::Runtime::new()
            .context("cannot start the async runtime")
            .and_then(|rt| rt.block_on(serve::run(root, addr, bucket, guard))),
        Command::Bench {
            inputs,
            runs,
            profile,
        } => bench::run(&inputs, runs, profile),
        Command::Calibrate {
            format,
            profile,
            inputs,
        } => calibrate(&format, profile, &inputs),
    };
    if let Err(e) = result {
        eprintln!("mogr: {e:#}");
        std::process::exit(1);
    }
}

fn read_input(input: &str) -> Result<Vec<u8>> {
    if input == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?;
        Ok(buf)
    } else {
        std::fs::read(input).with_context(|| format!("cannot read {input}"))
    }
}

fn convert(input: &str, rule: &str, output: &str, profile: Profile) -> Result<()> {
    let rule = mogr::parse(rule.strip_prefix('?').unwrap_or(rule))?;
    let bytes = read_input(input)?;
    let out = mogr::convert(&bytes, &rule, &Limits::default(), profile)?;
    if output == "-" {
        std::io::stdout()
            .write_all(&out.bytes)
            .context("writing standard output")?;
    } else {
        std::fs::write(output, &out.bytes).with_context(|| format!("cannot write {output}"))?;
    }
    Ok(())
}

fn info(input: &str) -> Result<()> {
    let bytes = read_input(input)?;
    let info = mogr::info::image_info(&bytes, &Limits::default())?;
    println!("{}", serde_json::to_string(&info)?);
    Ok(())
}

const DEMO_FORMATS: [Format; 6] = [
    Format::Heif,
    Format::Avif,
    Format::Webp,
    Format::Jpeg,
    Format::Png,
    Format::Gif,
];

fn demo(dir: &Path, out: Option<&Path>) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if let Some(out) = out {
        std::fs::create_dir_all(out)?;
    }
    let limits = Limits::default();
    println!(
        "{:<16} {:>9}  {:<5} {:>9} {:>7} {:>8} {:>7}",
        "input", "bytes", "to", "bytes", "saved", "ssimu2", "ms"
    );
    for path in files {
        let bytes = std::fs::read(&path)?;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let Ok(reference) = codec::probe_and_decode(&bytes, &limits, Frames::First) else {
            continue; // not an image
        };
        for format in DEMO_FORMATS {
            let rule = mogr::parse(&format!("imageMogr2/format/{}", format.name()))?;
            let t = Instant::now();
            let res = mogr::convert(&bytes, &rule, &limits, Profile::Persistent)
                .with_context(|| format!("{name} -> {}", format.name()))?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let decoded = codec::probe_and_decode(&res.bytes, &limits, Frames::First)?;
            let score =
                mogr::score::ssimulacra2(reference.first(), decoded.first()).unwrap_or(f64::NAN);
            let saved = 100.0 * (1.0 - res.bytes.len() as f64 / bytes.len() as f64);
            println!(
                "{:<16} {:>9}  {:<5} {:>9} {:>6.1}% {:>8.1} {:>7.0}",
                name,
                bytes.len(),
                format.name(),
                res.bytes.len(),
                saved,
                score,
                ms
            );
            if let Some(out) = out {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                std::fs::write(
                    out.join(format!("{stem}.{}", format.extension())),
                    &res.bytes,
                )?;
            }
        }
    }
    Ok(())
}

fn calibrate(format: &str, profile: Profile, inputs: &[PathBuf]) -> Result<()> {
    let limits = Limits::default();
    let refs = inputs
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
            let pic = codec::probe_and_decode(&bytes, &limits, Frames::First)?;
            Ok((bytes, pic))
        })
        .collect::<Result<Vec<_>>>()?;
    println!("quality  min-score  mean-score  total-bytes");
    for q in (30..=90).step_by(4) {
        let rule = mogr::parse(&format!("imageMogr2/format/{format}/quality/{q}!"))?;
        let (mut min, mut sum, mut total) = (f64::MAX, 0.0, 0usize);
        for (bytes, reference) in &refs {
            let out = mogr::convert(bytes, &rule, &limits, profile)?;
            let got = codec::probe_and_decode(&out.bytes, &limits, Frames::First)?;
            let sc = mogr::score::ssimulacra2(reference.first(), got.first())?;
            min = min.min(sc);
            sum += sc;
            total += out.bytes.len();
        }
        println!(
            "{q:>7}  {min:>9.1}  {:>10.1}  {total:>11}",
            sum / refs.len() as f64
        );
    }
    Ok(())
}
