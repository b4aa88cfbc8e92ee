//! The `mogr` command: convert local files with imageMogr2 rules, inspect images, and run the demo.

mod batch;
mod index;
mod listen;
mod progress;
mod serve;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use mogr::codec::{self, Format, Frames};
use mogr::{Limits, Profile};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "mogr",
    version,
    about = "Image Advanced Compression: COS imageMogr2 rules on local files",
    help_expected = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert one image by an imageMogr2 rule.
    #[command(after_help = "Examples:\n  \
        mogr convert photo.png -r imageMogr2/thumbnail/800x/format/heif -o photo.heic\n  \
        mogr convert photo.jpg -r imageMogr2/thumbnail/200x -o small.webp   (the extension picks WebP)\n  \
        mogr convert - -r imageMogr2/format/avif/quality/60 -o - < in.jpg > out.avif\n\n\
        The rule grammar: docs/rules.md.")]
    Convert {
        /// Input file, or - for standard input.
        input: String,
        /// The rule, e.g. imageMogr2/thumbnail/800x/format/heif (grammar: docs/rules.md).
        #[arg(long, short)]
        rule: String,
        /// Output file, or - for standard output (never a terminal). When the rule names no format,
        /// the file's extension picks it (.heic, .avif, .webp, .jpg, .png, .gif, .bmp, .tif); a rule
        /// whose format contradicts the extension is an error.
        #[arg(long, short)]
        output: String,
        /// Encoder profile when the rule names none: download (fast) or persistent (smaller).
        #[arg(long, default_value = "persistent")]
        profile: Profile,
    },
    /// Print an image's ?imageInfo JSON.
    #[command(after_help = "Example:\n  mogr info examples/photo.jpg\n  \
        {\"format\":\"jpeg\",\"width\":\"640\",\"height\":\"427\",\"size\":\"112525\",...}")]
    Info {
        /// Input file, or - for standard input.
        input: String,
    },
    /// Convert every image in a folder into every output format and print bytes, % saved and quality.
    #[command(after_help = "Example:\n  mogr demo examples --out /tmp/demo   \
        (writes /tmp/demo/photo.jpg.heic, /tmp/demo/photo.png.heic, ...)")]
    Demo {
        /// The folder of images (files that are not images are reported and skipped).
        #[arg(default_value = "examples")]
        dir: PathBuf,
        /// Also write the outputs here, each named <input name>.<format> (photo.jpg.heic).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Serve a folder as the bucket over HTTP: GET ?imageMogr2/..., POST ?image_process, PUT with Pic-Operations.
    #[command(after_help = "Examples:\n  \
        mogr serve                       (a copy of the shipped samples, on 127.0.0.1:8080)\n  \
        mogr serve --root photos --addr 8081\n  \
        curl -o photo.heic 'http://127.0.0.1:8080/photo.png?imageMogr2/format/heif'\n  \
        curl 'http://127.0.0.1:8080/?list-type=2'   (or open http://127.0.0.1:8080/ in a browser)\n\n\
        Settings (MOGR_WORKERS, MOGR_DOWNLOAD_DEADLINE_MS, ...) come from the environment: docs/api.md, \"Settings\".")]
    Serve {
        /// The folder that acts as the bucket; it must exist. Without it: a copy of the shipped
        /// samples, made in ~/.cache/mogr/samples ($XDG_CACHE_HOME/mogr/samples) — writes land
        /// there; delete it to start over.
        #[arg(long)]
        root: Option<PathBuf>,
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
        guard: listen::Guard,
        #[command(flatten)]
        access: serve::Access,
        /// Do not answer /_mogr/metrics (Prometheus text format: requests, stage latencies, the
        /// work queue, bytes in and out, resident memory) nor count for it.
        #[arg(long)]
        no_metrics: bool,
    },
    /// Apply a Pic-Operations rule set to every image under a prefix of an S3 bucket or a folder,
    /// as POST ?image_process would; outputs already made from the same source by the same rule are
    /// skipped, so an interrupted run continues where it stopped.
    #[command(after_help = "Examples:\n  \
        echo '{\"rules\":[{\"fileid\":\"/heif/{dirname}/{barename}.heic\",\"rule\":\"imageMogr2/format/heif\"}]}' > rules.json\n  \
        mogr batch --rules rules.json --bucket s3://my-photos/2024/ --exclude '*.gif'\n  \
        mogr batch --rules rules.json --root photos --prefix 2024/ --report report.json\n\n\
        --bucket uses the AWS SDK's configuration (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_S3, ...).\n\
        Progress goes to stderr: a bar on a terminal, a line per 5 % otherwise. Ctrl-C (or SIGTERM)\n\
        lets the objects being converted finish and stops; a second one quits at once. Nothing is\n\
        left half-written either way, and the same command run again does only what is left.\n\n\
        Exit status: 0 every object done, 1 some failed, 2 bad arguments, 130 stopped early.")]
    Batch {
        /// The rule set: Pic-Operations' JSON, as the header carries it.
        #[arg(long)]
        rules: PathBuf,
        /// The bucket and prefix: s3://BUCKET or s3://BUCKET/PREFIX.
        #[arg(long, required_unless_present = "root", conflicts_with_all = ["root", "prefix"])]
        bucket: Option<String>,
        /// Or a folder served as the bucket.
        #[arg(long)]
        root: Option<PathBuf>,
        /// With --root: only keys under this prefix.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Only keys matching this pattern (repeatable; matched against the whole key, `*` crossing
        /// `/`: '*.jpg', '2024/*').
        #[arg(long)]
        include: Vec<String>,
        /// Not keys matching this pattern (repeatable; wins over --include).
        #[arg(long)]
        exclude: Vec<String>,
        /// Also write the summary and one row per object (converted, skipped or failed, and why)
        /// to this JSON file.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Objects converted at once (default: one per core).
        #[arg(long)]
        jobs: Option<usize>,
        /// List what would be converted, and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not convert here: write a manifest of the images to the bucket's mogr-batch/ and
        /// print the S3 Batch Operations job that converts them with the stack's upload function
        /// (for `aws s3control create-job --cli-input-json`).
        #[arg(long, requires_all = ["bucket", "function_arn", "role_arn"], conflicts_with_all = ["dry_run", "report"])]
        s3_batch: bool,
        /// With --s3-batch: the function the job invokes (the stack's UploadFunctionArn output).
        #[arg(long, requires = "s3_batch")]
        function_arn: Option<String>,
        /// With --s3-batch: the role the job takes (the stack's BatchOperationsRoleArn output).
        #[arg(long, requires = "s3_batch")]
        role_arn: Option<String>,
        /// With --s3-batch: an S3 Inventory report's manifest.json (s3://BUCKET/KEY) to use instead
        /// of listing the bucket.
        #[arg(long, requires = "s3_batch")]
        inventory: Option<String>,
    },
    /// Print a signed download URL, for a service started with MOGR_SIGNING_KEYS.
    #[command(after_help = "Example:\n  \
        MOGR_SIGNING_KEYS=$KEY mogr sign photo.png --processor imageMogr2/format/heif \\\n    \
        --base http://127.0.0.1:8080\n  \
        http://127.0.0.1:8080/photo.png?imageMogr2/format/heif&mogr-expires=1798761600&mogr-signature=...\n\n\
        The signature is HMAC-SHA256 over <key>\\n<processor>\\n<expires> with the first of\n\
        MOGR_SIGNING_KEYS (docs/api.md: Signed downloads).")]
    Sign {
        /// The object's key, e.g. photo.png or in/photo.png.
        key: String,
        /// What the URL asks for: a rule (imageMogr2/format/heif), imageInfo, or nothing for the
        /// object itself.
        #[arg(long, default_value = "")]
        processor: String,
        /// Seconds the URL stays valid.
        #[arg(long, default_value_t = 3600)]
        expires_in: u64,
        /// Printed before the path: the server's address or the API's URL.
        #[arg(long, default_value = "")]
        base: String,
    },
}

fn main() {
    // as the server and the functions do, so a conversion here costs the memory it costs there
    mogr::bootstrap::tune_malloc();
    let cli = Cli::parse();
    // a long conversion shows what it is doing, to a person at a terminal
    let progress =
        matches!(cli.command, Command::Convert { .. } if std::io::stderr().is_terminal())
            .then(progress::Progress::start);
    mogr::bootstrap::init_tracing_with(false, progress.as_ref().map(progress::Progress::layer));
    let result = match cli.command {
        Command::Convert {
            input,
            rule,
            output,
            profile,
        } => convert(&input, &rule, &output, profile, progress),
        Command::Info { input } => info(&input),
        Command::Demo { dir, out } => demo(&dir, out.as_deref()),
        Command::Batch {
            rules,
            bucket,
            root,
            prefix,
            include,
            exclude,
            report,
            jobs,
            dry_run,
            s3_batch,
            function_arn,
            role_arn,
            inventory,
        } => {
            let jobs = jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            let source = match (bucket, root) {
                (Some(url), _) => batch::Source::Bucket(url),
                (None, root) => batch::Source::Root {
                    root: root.unwrap_or_default(),
                    prefix,
                },
            };
            let batch = batch::Batch {
                rules,
                source,
                include,
                exclude,
                report,
                jobs,
                dry_run,
            };
            let job = s3_batch.then(|| batch::S3Job {
                function_arn: function_arn.unwrap_or_default(),
                role_arn: role_arn.unwrap_or_default(),
                inventory,
            });
            let code = tokio::runtime::Runtime::new()
                .context("cannot start the async runtime")
                .and_then(|rt| match job {
                    Some(job) => rt.block_on(batch::s3_batch(batch, job)),
                    None => rt.block_on(batch::run(batch)),
                });
            match code {
                Ok(code) => std::process::exit(code),
                Err(e) => {
                    eprintln!("mogr: {}", plain(&e));
                    std::process::exit(2);
                }
            }
        }
        Command::Serve {
            root,
            addr,
            bucket,
            guard,
            access,
            no_metrics,
        } => tokio::runtime::Runtime::new()
            .context("cannot start the async runtime")
            .and_then(|rt| rt.block_on(serve::run(root, addr, bucket, guard, access, !no_metrics))),
        Command::Sign {
            key,
            processor,
            expires_in,
            base,
        } => sign(&key, &processor, expires_in, &base),
    };
    if let Err(e) = result {
        eprintln!("mogr: {}", plain(&e));
        std::process::exit(1);
    }
}

/// An error as the command says it: each cause in plain words, without the COS error codes HTTP
/// answers carry (`InvalidArgument`, `InternalError`), which would only puzzle a person at a shell.
fn plain(e: &anyhow::Error) -> String {
    let causes: Vec<String> = (e.chain())
        .map(|c| match c.downcast_ref::<mogr::Error>() {
            Some(e) => e.message.clone(),
            None => c.to_string(),
        })
        .collect();
    causes.join(": ")
}

fn sign(key: &str, processor: &str, expires_in: u64, base: &str) -> Result<()> {
    mogr::store::check_key(key)?;
    let keys = std::env::var("MOGR_SIGNING_KEYS").unwrap_or_default();
    let signer = mogr::service::sign::Signer::parse(&keys)?;
    let url = signer.url(key, processor, expires_in).context(
        "MOGR_SIGNING_KEYS is not set: give the keys the service was started with (the first signs)",
    )?;
    println!("{}{url}", base.trim_end_matches('/'));
    Ok(())
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

fn convert(
    input: &str,
    rule: &str,
    output: &str,
    profile: Profile,
    progress: Option<progress::Progress>,
) -> Result<()> {
    let mut rule = mogr::parse(rule.strip_prefix('?').unwrap_or(rule))?;
    let to_stdout = output == "-";
    if to_stdout && std::io::stdout().is_terminal() {
        anyhow::bail!(
            "refusing to write image bytes to a terminal: redirect standard output \
             (`-o - > out.heic`) or name a file (`-o out.heic`)"
        );
    }
    let wanted = if to_stdout {
        None
    } else {
        format_of_path(output)
    };
    let extension = Path::new(output).extension().and_then(|e| e.to_str());
    let unwritten =
        extension.filter(|e| UNWRITTEN_IMAGES.contains(&e.to_ascii_lowercase().as_str()));
    if let (Some(ext), false) = (unwritten, to_stdout) {
        anyhow::bail!(
            "{output}: mogr does not write .{ext} files; name the output .jpg, .png, .webp, .gif, \
             .heic, .avif, .bmp or .tiff"
        );
    }
    if let Some(wanted) = wanted {
        match rule.format {
            // the rule names none: the output's extension decides
            None if !rule.format_auto => rule.format = Some(wanted),
            Some(f) if f != wanted => anyhow::bail!(
                "the rule writes {} but --output {output} says {}: change the rule's format/ or \
                 the file's extension",
                f.name(),
                wanted.name()
            ),
            _ => {}
        }
    }
    let bytes = read_input(input)?;
    let out = mogr::convert(&bytes, &rule, &Limits::default(), profile);
    drop(progress); // cleared before anything else is printed
    let out = out?;
    if let Some(w) = out.warning() {
        eprintln!("mogr: warning: {w}");
    }
    if let Some(wanted) = wanted.filter(|&w| w != out.format) {
        // format/auto, or ignore-error answering the original: nothing is written under a wrong name
        anyhow::bail!(
            "the conversion gave {} (the rule {}) but --output {output} says {}: name the file .{}",
            out.format.name(),
            if out.is_original {
                "answered the original"
            } else {
                "chose it"
            },
            wanted.name(),
            out.format.extension()
        );
    }
    if to_stdout {
        std::io::stdout()
            .write_all(&out.bytes)
            .context("writing standard output")?;
    } else {
        std::fs::write(output, &out.bytes).with_context(|| format!("cannot write {output}"))?;
        if std::io::stderr().is_terminal() {
            eprintln!("{}", summary(output, bytes.len(), &out));
        }
    }
    Ok(())
}

/// Extensions of image formats mogr does not write: an output named so is refused rather than
/// written as another format under that name (an extension naming no image, `.out`, leaves the format
/// to the rule, or the input's).
const UNWRITTEN_IMAGES: &[&str] = &[
    "jxl", "jp2", "j2k", "j2c", "jpf", "jpx", "jpm", "jxr", "wdp", "hdp", "ico", "cur", "icns",
    "svg", "svgz", "psd", "psb", "exr", "hdr", "qoi", "tga", "pbm", "pgm", "ppm", "pnm", "pam",
    "pcx", "dds", "ktx", "ktx2", "xbm", "xpm", "mng", "jng", "dng", "cr2", "cr3", "nef", "arw",
    "orf", "rw2", "raf", "raw", "heics", "avifs", "eps",
];

/// The format a file name's extension stands for (`.webp`, `.HEIC`, `.jpe`), if any.
fn format_of_path(path: &str) -> Option<Format> {
    let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "jpe" | "jfif" => Some(Format::Jpeg),
        "hif" => Some(Format::Heif),
        other => Format::from_name(other),
    }
}

/// `wrote small.webp: 640×427, 3.2 KB, −97 %, quality 62, score 71.4 (2 tries)`: what a conversion
/// wrote, for a person at a terminal — the quality of a lossy output, and the score `quality/auto`
/// chose it by.
fn summary(name: &str, input_len: usize, out: &mogr::Output) -> String {
    let mut line = format!(
        "wrote {name}: {}\u{d7}{}, {}, {}",
        out.width,
        out.height,
        human_bytes(out.bytes.len() as u64),
        change(input_len as u64, out.bytes.len() as u64)
    );
    if let Some(q) = out.stored_quality().filter(|_| !out.is_original) {
        line += &format!(", quality {q}");
    }
    if let Some(score) = out.score {
        let tries = match out.tries {
            1 => "1 try".to_string(),
            n => format!("{n} tries"),
        };
        line += &format!(", score {score:.1} ({tries})");
    }
    line
}

/// How much `after` differs from `before`, in whole per cent (`−96 %`), with as many decimals as it
/// takes not to round a real file down to nothing (`−99.6 %`, not `−100 %`).
fn change(before: u64, after: u64) -> String {
    let change = 100.0 * (after as f64 / before.max(1) as f64 - 1.0);
    let sign = if change < 0.0 { "\u{2212}" } else { "+" };
    let rounds_to_all = |decimals: i32| {
        let scale = 10f64.powi(decimals);
        (change.abs() * scale).round() >= 100.0 * scale
    };
    let mut decimals = 0;
    while change < 0.0 && after > 0 && decimals < 3 && rounds_to_all(decimals) {
        decimals += 1;
    }
    format!("{sign}{:.*} %", decimals as usize, change.abs())
}

/// Bytes in B, KB or MB (powers of 1000, one decimal).
pub(crate) fn human_bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} KB", n as f64 / 1e3),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
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
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    }
    let limits = Limits::default();
    let mut skipped = Vec::new();
    let mut inputs = Vec::new();
    for path in files {
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        match codec::probe_and_decode(&bytes, &limits, Frames::First) {
            Ok(reference) => inputs.push((name, bytes, reference)),
            Err(e) => skipped.push(format!("{name} ({})", e.message)),
        }
    }
    if inputs.is_empty() {
        anyhow::bail!(
            "no images in {}: put JPEG, PNG, GIF, WebP, BMP, TIFF, HEIF or AVIF files there{}",
            dir.display(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!(" (skipped: {})", skipped.join(", "))
            }
        );
    }
    println!(
        "{:<16} {:>9}  {:<5} {:>9} {:>7} {:>8} {:>7}",
        "input", "bytes", "to", "bytes", "saved", "ssimu2", "ms"
    );
    // per output format: input bytes, output bytes, score sum, ms
    let mut totals = [(0usize, 0usize, 0.0f64, 0.0f64); DEMO_FORMATS.len()];
    let mut notes = Vec::new();
    for (name, bytes, reference) in &inputs {
        for (format, total) in DEMO_FORMATS.iter().zip(totals.iter_mut()) {
            let rule = mogr::parse(&format!("imageMogr2/format/{}", format.name()))?;
            let t = Instant::now();
            let res = mogr::convert(bytes, &rule, &limits, Profile::Persistent)
                .with_context(|| format!("{name} -> {}", format.name()))?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let decoded = codec::probe_and_decode(&res.bytes, &limits, Frames::First)?;
            let score =
                mogr::score::ssimulacra2(reference.first(), decoded.first()).unwrap_or(f64::NAN);
            let saved = 100.0 * (1.0 - res.bytes.len() as f64 / bytes.len() as f64);
            let mark = if let Some(w) = res.warning() {
                notes.push(format!("{name} -> {}: {w}", format.name()));
                "*"
            } else {
                " "
            };
            println!(
                "{:<16} {:>9}  {:<5} {:>9} {:>6.1}%{mark}{:>7.1} {:>7.0}",
                name,
                bytes.len(),
                format.name(),
                res.bytes.len(),
                saved,
                score,
                ms
            );
            *total = (
                total.0 + bytes.len(),
                total.1 + res.bytes.len(),
                total.2 + score,
                total.3 + ms,
            );
            if let Some(out) = out {
                // `photo.jpg` and `photo.png` both have outputs: each is named after its whole input name
                let path = out.join(format!("{name}.{}", format.extension()));
                std::fs::write(&path, &res.bytes)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
    }
    println!();
    for (format, (input, output, scores, ms)) in DEMO_FORMATS.iter().zip(totals) {
        println!(
            "{:<16} {:>9}  {:<5} {:>9} {:>6.1}% {:>7.1} {:>7.0}",
            format!("total ({})", inputs.len()),
            input,
            format.name(),
            output,
            100.0 * (1.0 - output as f64 / input as f64),
            scores / inputs.len() as f64,
            ms
        );
    }
    println!(
        "\nbytes: input and output sizes; saved: 1 - output/input; ssimu2: SSIMULACRA2 of the output \
         against the input (70 high quality, 90 visually lossless; totals give the mean); ms: conversion \
         time. Persistent profile, default qualities."
    );
    for note in &notes {
        println!("* {note}");
    }
    if let Some(out) = out {
        println!(
            "outputs written to {} as <input name>.<format>",
            out.display()
        );
    }
    for s in &skipped {
        eprintln!("mogr: skipped {s}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_never_rounds_a_file_down_to_nothing() {
        assert_eq!(change(112_525, 3_277), "\u{2212}97 %");
        assert_eq!(change(15_000_000, 61_785), "\u{2212}99.6 %");
        assert_eq!(change(50_000_000, 30_000), "\u{2212}99.9 %");
        assert_eq!(change(50_000_000, 1_000), "\u{2212}99.998 %");
        assert_eq!(change(4_011, 16_846), "+320 %");
        assert_eq!(change(100, 100), "+0 %");
    }

    #[test]
    fn every_command_and_option_has_help_and_every_command_an_example() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        cli.clone().debug_assert(); // with help_expected: panics on an argument without help text
        for sub in cli.get_subcommands_mut() {
            let name = sub.get_name().to_string();
            let help = sub.render_long_help().to_string();
            assert!(
                help.contains("Example"),
                "mogr {name} --help shows no example"
            );
            for arg in sub.get_arguments() {
                assert!(
                    arg.get_help().is_some(),
                    "mogr {name}: {} has no help",
                    arg.get_id()
                );
            }
        }
    }
}
