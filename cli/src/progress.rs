//! What a long `mogr convert` is doing, for a person at a terminal: one line under a spinner — decoding,
//! encoding, try 3 of `quality/auto` and what the last try scored — fed by the conversion's own
//! tracing spans (`decode`, `encode`, `score`, `quality/auto`, `quality/auto sample`) and its
//! `quality/auto try` events. It shows once a conversion has run for [`SHOW_AFTER`], so a quick one
//! prints nothing but its `wrote …` line; the line is cleared when the conversion ends.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fmt::Write as _;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};
use tracing_subscriber::registry::LookupSpan;

/// How long a conversion runs before its progress shows.
const SHOW_AFTER: Duration = Duration::from_millis(500);

/// The spinner and what the conversion is doing; [`Progress::layer`] feeds it.
pub struct Progress {
    bar: ProgressBar,
    search: Arc<Mutex<Option<Search>>>,
    shown: Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl Progress {
    /// A spinner on standard error, hidden until the conversion has run for [`SHOW_AFTER`].
    pub fn start() -> Progress {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()).with_style(
            ProgressStyle::with_template("{spinner} {elapsed:>3} {wide_msg}")
                .expect("a valid template"),
        );
        let (done, wait) = mpsc::channel::<()>();
        let later = bar.clone();
        let shown = std::thread::spawn(move || {
            if wait.recv_timeout(SHOW_AFTER) == Err(mpsc::RecvTimeoutError::Timeout) {
                later.set_draw_target(ProgressDrawTarget::stderr());
                later.enable_steady_tick(Duration::from_millis(120));
            }
        });
        Progress {
            bar,
            search: Arc::default(),
            shown: Some((done, shown)),
        }
    }

    /// The tracing layer that keeps the spinner's line up to date.
    pub fn layer(&self) -> mogr::bootstrap::ExtraLayer {
        Box::new(
            Feed {
                bar: self.bar.clone(),
                search: self.search.clone(),
            }
            .with_filter(OnlyMogr),
        )
    }
}

/// Dropped, the spinner is cleared (before the `wrote …` line or an error is printed).
impl Drop for Progress {
    fn drop(&mut self) {
        if let Some((done, shown)) = self.shown.take() {
            let _ = done.send(());
            let _ = shown.join();
        }
        self.bar.finish_and_clear();
    }
}

/// Spans and events of the conversion itself, at any level, whatever `RUST_LOG` says.
struct OnlyMogr;

impl<S> Filter<S> for OnlyMogr {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: &Context<'_, S>) -> bool {
        meta.target().starts_with("mogr::")
    }
}

/// The `quality/auto` search under way: its target, whether on a sample, and its tries so far.
struct Search {
    target: f64,
    sample: bool,
    tries: u64,
    /// The quality of the try under way.
    quality: Option<u64>,
    /// The last try's quality and score.
    last: Option<(u64, f64)>,
}

/// The fields of a span or event this display reads.
#[derive(Default, Clone)]
struct Fields {
    format: Option<String>,
    width: Option<u64>,
    height: Option<u64>,
    quality: Option<u64>,
    target: Option<f64>,
    score: Option<f64>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "width" => self.width = Some(value),
            "height" => self.height = Some(value),
            "quality" => self.quality = Some(value),
            "target" => self.target = Some(value as f64),
            _ => {}
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, value.max(0) as u64);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            "target" => self.target = Some(value),
            "score" => self.score = Some(value),
            _ => {}
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "format" {
            self.format = Some(value.to_uppercase());
        }
    }
    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

struct Feed {
    bar: ProgressBar,
    search: Arc<Mutex<Option<Search>>>,
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Feed {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let fields = span
            .extensions()
            .get::<Fields>()
            .cloned()
            .unwrap_or_default();
        let mut search = self.search.lock().unwrap_or_else(|e| e.into_inner());
        let message = match span.name() {
            "quality/auto" | "quality/auto sample" => {
                *search = Some(Search {
                    target: fields.target.unwrap_or_default(),
                    sample: span.name() == "quality/auto sample",
                    tries: 0,
                    quality: None,
                    last: None,
                });
                return;
            }
            // a search's tries are decoded to be scored: that is part of "scoring"
            "decode" if search.is_some() => return,
            "decode" => format!("decoding {}", picture(&fields)),
            "encode" => match search.as_mut() {
                Some(search) => {
                    search.tries += 1;
                    search.quality = fields.quality;
                    format!("{}: encoding", search.describe())
                }
                None => match fields.quality {
                    Some(q) => format!("encoding {} at quality {q}", picture(&fields)),
                    None => format!("encoding {}", picture(&fields)),
                },
            },
            "score" => match search.as_ref() {
                Some(search) => format!("{}: scoring", search.describe()),
                None => return,
            },
            _ => return,
        };
        self.bar.set_message(message);
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if ctx
            .span(id)
            .is_some_and(|s| s.name().starts_with("quality/auto"))
        {
            *self.search.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// A search's `quality/auto try` event: the only one inside a search with a quality and a score
    /// (the search's closing summary comes after its span).
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut search = self.search.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(search), Some(q), Some(score)) =
            (search.as_mut(), fields.quality, fields.score)
        {
            search.last = Some((q, score));
        }
    }
}

impl Search {
    /// `quality/auto 70, try 3 at quality 52 (try 2: quality 48, score 68.2)`; `quality/auto 70 on
    /// a sample, try 1 at quality 50` while the search runs on a sample of the picture first.
    fn describe(&self) -> String {
        let mut s = format!("quality/auto {:.0}", self.target);
        if self.sample {
            s.push_str(" on a sample");
        }
        let _ = write!(s, ", try {}", self.tries.max(1));
        if let Some(q) = self.quality {
            let _ = write!(s, " at quality {q}");
        }
        if let Some((q, score)) = self.last {
            let _ = write!(
                s,
                " (try {}: quality {q}, score {score:.1})",
                self.tries.saturating_sub(1).max(1)
            );
        }
        s
    }
}

/// `4000×3000 JPEG`.
fn picture(f: &Fields) -> String {
    let mut s = String::new();
    if let (Some(w), Some(h)) = (f.width, f.height) {
        let _ = write!(s, "{w}\u{d7}{h} ");
    }
    s.push_str(f.format.as_deref().unwrap_or("image"));
    s
}
