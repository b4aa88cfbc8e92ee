//! `mogr-bench`: mogr beside libvips (`vips heifsave`/`webpsave`/`thumbnail`) and libheif's `heif-enc`,
//! in one run, then the download-speed targets (issue 13) checked against what was measured.
//!
//! Every converter — mogr included — runs as a child process, so that milliseconds (wall clock, best of
//! `runs`) and peak memory (GNU `time`'s maximum resident set) are measured the same way for all. Every output is
//! decoded by mogr and scored with SSIMULACRA2 against the decoded input (resized to the output's size for
//! thumbnails).

use anyhow::{bail, Context, Result};
use image::DynamicImage;
use mogr::codec::{self, Format, Frames};
use mogr::{Limits, Profile};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Measured {
    pub bytes: usize,
    pub score: f64,
    pub ms: f64,
    pub peak_mib: f64,
    /// mogr only: the best run's time inside the HEIF/AVIF encoder proper (libheif's `encoder_ms`,
    /// which `RUST_LOG=mogr=debug` prints); the rest of `ms` is everything but the encoder.
    pub encoder_ms: Option<f64>,
}

/// A peer's run slower than this is not repeated (mogr's runs always are: its times are the targets).
const PEER_SLOW_MS: f64 = 2000.0;

/// Runs `cmd` up to `runs` times (once if a run takes over `slow_ms`) under GNU `time`; returns the best wall time,
/// the largest peak RSS and the best run's standard error.
///
/// The peak comes from `time`, not from our own `wait4`: a child spawned by this (large) process starts
/// with its parent's resident-set high-water mark, which `ru_maxrss` then reports; the command `time`
/// runs is forked from `time`'s small process instead.
pub(crate) fn time_child(
    mut make: impl FnMut() -> Command,
    runs: u32,
    slow_ms: f64,
) -> Result<(f64, f64, String)> {
    let (mut best_ms, mut peak_kib, mut best_err) = (f64::MAX, 0u64, String::new());
    let report = std::env::temp_dir().join(format!("mogr-bench-time-{}", std::process::id()));
    for _ in 0..runs {
        let inner = make();
        let mut cmd = Command::new("/usr/bin/time");
        cmd.args(["-f", "%M", "-o"])
            .arg(&report)
            .arg(inner.get_program())
            .args(inner.get_args())
            .envs(inner.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let t = Instant::now();
        let out = cmd.output().with_context(|| {
            format!("cannot start {cmd:?} (GNU time comes from scripts/setup.sh)")
        })?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if !out.status.success() {
            bail!(
                "{inner:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let kib = std::fs::read_to_string(&report)?;
        let kib: u64 = kib
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .with_context(|| format!("GNU time wrote {kib:?}"))?;
        if ms < best_ms {
            best_ms = ms;
            best_err = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        peak_kib = peak_kib.max(kib);
        if ms > slow_ms {
            break; // one run of a slow converter is enough: its spread is small beside its time
        }
    }
    let _ = std::fs::remove_file(&report);
    Ok((best_ms, peak_kib as f64 / 1024.0, best_err))
}

/// The number after `key=` in a log line, e.g. `encoder_ms=290.1`.
pub(crate) fn logged(log: &str, key: &str) -> Option<f64> {
    let at = log.find(&format!("{key}="))? + key.len() + 1;
    let rest = &log[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn score(reference: &DynamicImage, out: &Path) -> Result<(usize, f64)> {
    let bytes = std::fs::read(out)?;
    let pic = codec::probe_and_decode(&bytes, &Limits::default(), Frames::First)?;
    let got = pic.first();
    let sc = if (got.width(), got.height()) == (reference.width(), reference.height()) {
        mogr::score::ssimulacra2(reference, got)?
    } else {
        let resized = mogr::pipeline::resize(reference, got.width(), got.height())?;
        mogr::score::ssimulacra2(&resized, got)?
    };
    Ok((bytes.len(), sc))
}

struct Peer {
    name: &'static str,
    job: Job,
    args: fn(&Path, &Path) -> Vec<String>,
}

pub(crate) fn s(p: &Path) -> String {
    p.to_string_lossy().to_string()
}

fn cmd(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// What is asked of every converter: a whole-image format conversion, or an 800-pixel-wide thumbnail.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Job {
    Format(Format),
    Thumbnail(Format),
}

impl Job {
    fn format(self) -> Format {
        match self {
            Job::Format(f) | Job::Thumbnail(f) => f,
        }
    }
    fn rule(self) -> String {
        match self {
            Job::Format(f) => format!("imageMogr2/format/{}", f.name()),
            Job::Thumbnail(f) => format!("imageMogr2/thumbnail/{THUMB}x/format/{}", f.name()),
        }
    }
    fn label(self) -> String {
        match self {
            Job::Format(f) => f.name().to_string(),
            Job::Thumbnail(f) => format!("thumbnail/{THUMB}x {}", f.name()),
        }
    }
}

const THUMB: u32 = 800;

/// Thumbnails are benchmarked for inputs of at least this many pixels (the large photos).
const THUMB_FROM: u64 = 8_000_000;

const PEERS: [Peer; 7] = [
    Peer {
        name: "vips heifsave",
        job: Job::Format(Format::Heif),
        args: |i, o| cmd(&["vips", "heifsave", &s(i), &s(o)]),
    },
    Peer {
        name: "vips heifsave av1",
        job: Job::Format(Format::Avif),
        args: |i, o| cmd(&["vips", "heifsave", &s(i), &s(o), "--compression", "av1"]),
    },
    Peer {
        name: "heif-enc",
        job: Job::Format(Format::Heif),
        args: |i, o| cmd(&["heif-enc", &s(i), "-o", &s(o)]),
    },
    Peer {
        name: "heif-enc -A",
        job: Job::Format(Format::Avif),
        args: |i, o| cmd(&["heif-enc", "-A", &s(i), "-o", &s(o)]),
    },
    Peer {
        name: "vips webpsave",
        job: Job::Format(Format::Webp),
        args: |i, o| cmd(&["vips", "webpsave", &s(i), &s(o)]),
    },
    Peer {
        name: "vips thumbnail",
        job: Job::Thumbnail(Format::Avif),
        args: |i, o| cmd(&["vips", "thumbnail", &s(i), &s(o), &THUMB.to_string()]),
    },
    Peer {
        name: "vips thumbnail",
        job: Job::Thumbnail(Format::Webp),
        args: |i, o| cmd(&["vips", "thumbnail", &s(i), &s(o), &THUMB.to_string()]),
    },
];

const FORMATS: [Format; 4] = [Format::Heif, Format::Avif, Format::Webp, Format::Jpeg];

/// One measured conversion, kept for the summary.
struct Record {
    image: String,
    pixels: u64,
    job: Job,
    encoder: &'static str,
    m: Measured,
}

/// The `mogr` command beside this one, which every mogr conversion here runs.
pub fn mogr_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe()?.with_file_name("mogr");
    if !exe.is_file() {
        bail!(
            "{} is missing: mogr-bench times the mogr command built beside it; build both with \
             cargo build --release -p mogr-cli -p mogr-bench",
            exe.display()
        );
    }
    Ok(exe)
}

pub fn run(inputs: &[PathBuf], runs: u32, profile: Profile) -> Result<()> {
    let exe = mogr_exe()?;
    let work = std::env::temp_dir().join(format!("mogr-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mut records = Vec::new();
    println!("| image | job | encoder | bytes | % saved | SSIMULACRA2 | ms | peak MiB | bytes ÷ mogr's | ms ÷ mogr's |");
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
        let pixels = w as u64 * h as u64;
        let label = format!("{name} ({w}×{h})");
        let mut jobs: Vec<Job> = FORMATS.into_iter().map(Job::Format).collect();
        if pixels >= THUMB_FROM {
            jobs.extend([Job::Thumbnail(Format::Avif), Job::Thumbnail(Format::Webp)]);
        }
        for job in jobs {
            let out = work.join(format!("mogr.{}", job.format().extension()));
            let rule = job.rule();
            let (ms, peak, log) = time_child(
                || {
                    let mut c = Command::new(&exe);
                    c.args(["convert", &s(input), "--rule", &rule, "--output", &s(&out)])
                        .args(["--profile", profile.name()])
                        .env("RUST_LOG", "mogr=debug");
                    c
                },
                runs,
                f64::INFINITY,
            )?;
            let (bytes, sc) = score(reference.first(), &out)?;
            let encoder_ms = logged(&log, "encoder_ms");
            let mine = Measured {
                bytes,
                score: sc,
                ms,
                peak_mib: peak,
                encoder_ms,
            };
            row(
                &label,
                job,
                &format!("mogr ({profile})"),
                in_bytes.len(),
                &mine,
                None,
            );
            for peer in PEERS.iter().filter(|p| p.job == job) {
                let out = work.join(format!("peer.{}", job.format().extension()));
                let args = (peer.args)(input, &out);
                let measured = time_child(
                    || {
                        let mut c = Command::new(&args[0]);
                        c.args(&args[1..]);
                        c
                    },
                    runs,
                    PEER_SLOW_MS,
                );
                match measured.and_then(|(ms, peak, _)| {
                    score(reference.first(), &out).map(|(b, sc)| (ms, peak, b, sc))
                }) {
                    Ok((ms, peak, bytes, sc)) => {
                        let theirs = Measured {
                            bytes,
                            score: sc,
                            ms,
                            peak_mib: peak,
                            encoder_ms: None,
                        };
                        row(&label, job, peer.name, in_bytes.len(), &theirs, Some(&mine));
                        records.push(Record {
                            image: name.clone(),
                            pixels,
                            job,
                            encoder: peer.name,
                            m: theirs,
                        });
                    }
                    Err(e) => println!(
                        "| {label} | {} | {} | failed: {e} | | | | | | |",
                        job.label(),
                        peer.name
                    ),
                }
            }
            records.push(Record {
                image: name.clone(),
                pixels,
                job,
                encoder: "mogr",
                m: mine,
            });
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    let startup = startup(&exe);
    summary(&records, &startup);
    Ok(())
}

fn row(label: &str, job: Job, encoder: &str, in_len: usize, m: &Measured, mogr: Option<&Measured>) {
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
        job.label(),
        m.bytes,
        m.score,
        m.ms,
        m.peak_mib
    );
}

/// Lambda start-up: each function binary beside this one (`cargo build --release -p mogr-download
/// -p mogr-upload -p mogr-process`), from exec to its first request to a stub Runtime API on localhost,
/// median of 7 runs. `None` for a binary that is not built.
fn startup(exe: &Path) -> Vec<(&'static str, Option<f64>)> {
    ["mogr-download", "mogr-upload", "mogr-process"]
        .into_iter()
        .map(|name| {
            let path = exe.with_file_name(name);
            let ms = path
                .exists()
                .then(|| startup_ms(&path))
                .and_then(|r| r.map_err(|e| eprintln!("start-up of {name}: {e:#}")).ok());
            (name, ms)
        })
        .collect()
}

fn startup_ms(binary: &Path) -> Result<f64> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let api = listener.local_addr()?.to_string();
    listener.set_nonblocking(true)?;
    let mut times = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let mut child = Command::new(binary)
            .env("AWS_LAMBDA_RUNTIME_API", &api)
            .envs([
                ("MOGR_BUCKET", "b"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_ACCESS_KEY_ID", "x"),
                ("AWS_SECRET_ACCESS_KEY", "y"),
                ("AWS_LAMBDA_FUNCTION_NAME", "f"),
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
                ("AWS_LAMBDA_FUNCTION_VERSION", "1"),
                ("AWS_LAMBDA_LOG_STREAM_NAME", "s"),
                ("AWS_LAMBDA_LOG_GROUP_NAME", "g"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let asked = loop {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    conn.set_nonblocking(false)?;
                    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
                    let mut first = [0u8; 1];
                    conn.read_exact(&mut first)?; // the request has begun: the runtime is ready
                    break Some(started.elapsed());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if started.elapsed() > Duration::from_secs(10) {
                        break None;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        let asked = asked.with_context(|| "never asked the Runtime API for an event in 10 s")?;
        times.push(asked.as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The issue-13 targets, each checked against this run's records: ✅ met, ❌ not, – nothing measured.
fn summary(records: &[Record], startup: &[(&'static str, Option<f64>)]) {
    let mogr = |r: &&Record| r.encoder == "mogr";
    let four_mp = |r: &&Record| (3_000_000..=5_000_000).contains(&r.pixels);
    let large = |r: &&Record| (14_000_000..=19_000_000).contains(&r.pixels);
    let peer_of = |me: &Record, name: &str| {
        records
            .iter()
            .find(|r| r.image == me.image && r.job == me.job && r.encoder == name)
    };
    println!();
    println!("| target | measured | |");
    println!("|---|---|---|");
    let target = |name: &str, rows: Vec<(String, bool)>| {
        let verdict = match rows.iter().all(|(_, ok)| *ok) {
            _ if rows.is_empty() => "–",
            true => "✅",
            false => "❌",
        };
        let text: Vec<String> = rows.into_iter().map(|(t, _)| t).collect();
        let text = if text.is_empty() {
            "not measured in this run".to_string()
        } else {
            text.join("; ")
        };
        println!("| {name} | {text} | {verdict} |");
    };
    for (format, peer) in [
        (Format::Heif, "vips heifsave"),
        (Format::Avif, "vips heifsave av1"),
    ] {
        let rows = records
            .iter()
            .filter(mogr)
            .filter(four_mp)
            .filter(|r| r.job == Job::Format(format))
            .map(|r| {
                let speedup = peer_of(r, peer).map(|p| p.m.ms / r.m.ms);
                let ok = r.m.ms <= 1000.0 && r.m.score >= 70.0 && speedup.is_some_and(|x| x >= 3.0);
                let speedup = speedup.map_or("peer failed".into(), |x| format!("{x:.2}×"));
                (
                    format!("{} {:.0} ms, {:.1}, {speedup}", r.image, r.m.ms, r.m.score),
                    ok,
                )
            })
            .collect();
        target(
            &format!(
                "4 MP → {} ≤ 1.0 s, ≥ 70, ≥ 3× faster than `{peer}`",
                format.name().to_uppercase()
            ),
            rows,
        );
    }
    let rows = records
        .iter()
        .filter(mogr)
        .filter(large)
        .filter(|r| matches!(r.job, Job::Format(Format::Heif | Format::Avif)))
        .map(|r| {
            let ok = r.m.ms <= 3000.0 && r.m.score >= 70.0;
            let text = format!(
                "{} {}: {:.0} ms, {:.1}",
                r.image,
                r.job.label(),
                r.m.ms,
                r.m.score
            );
            (text, ok)
        })
        .collect();
    target("15–18 MP → HEIF and → AVIF ≤ 3 s, ≥ 70", rows);
    let rows = records
        .iter()
        .filter(mogr)
        .filter(large)
        .filter(|r| matches!(r.job, Job::Thumbnail(_)))
        .map(|r| {
            let text = format!("{} {}: {:.0} ms", r.image, r.job.label(), r.m.ms);
            (text, r.m.ms <= 400.0)
        })
        .collect();
    target(
        &format!("15–18 MP → `thumbnail/{THUMB}x` AVIF and WebP ≤ 0.4 s"),
        rows,
    );
    let rows = records
        .iter()
        .filter(mogr)
        .filter(four_mp)
        .filter_map(|r| {
            let encoder = r.m.encoder_ms?;
            let outside = r.m.ms - encoder;
            let share = outside / encoder;
            let text = format!(
                "{} {}: {outside:.0} ms outside the encoder's {encoder:.0} ms ({:.0} %)",
                r.image,
                r.job.label(),
                100.0 * share
            );
            Some((text, share <= 0.10))
        })
        .collect();
    target("everything but the encoder ≤ 10 % of a 4 MP encode", rows);
    let rows = records
        .iter()
        .filter(mogr)
        .filter(|r| r.pixels >= 3_000_000)
        .map(|r| {
            let budget = 2.5 * r.pixels as f64 * 4.0 / (1024.0 * 1024.0);
            let text = format!(
                "{} {}: {:.0} of {budget:.0} MiB",
                r.image,
                r.job.label(),
                r.m.peak_mib
            );
            (text, r.m.peak_mib <= budget)
        })
        .collect();
    target("peak memory ≤ 2.5 × w × h × 4 bytes (inputs ≥ 3 MP)", rows);
    let rows = startup
        .iter()
        .map(|(name, ms)| match ms {
            Some(ms) => (format!("{name} {ms:.1} ms (median of 7)"), *ms <= 20.0),
            None => (format!("{name} not built"), false),
        })
        .collect();
    target("function binary exec → ready ≤ 20 ms", rows);
}
