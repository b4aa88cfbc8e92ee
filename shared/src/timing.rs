//! [`Timings`]: where a request's time went, stage by stage (`fetch`, `cache`, `queue`, `decode`,
//! `transform`, `encode`, `store`), for the answer's `Server-Timing` header and the access log. Nothing here knows HTTP: the header's
//! text is the W3C Server-Timing syntax, written by whoever answers.

use std::time::{Duration, Instant};

/// Stages in the order they were recorded; a stage recorded twice adds up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timings {
    stages: Vec<(&'static str, Duration)>,
}

impl Timings {
    /// Adds `took` to `stage`.
    pub fn add(&mut self, stage: &'static str, took: Duration) {
        match self.stages.iter_mut().find(|(s, _)| *s == stage) {
            Some((_, d)) => *d += took,
            None => self.stages.push((stage, took)),
        }
    }

    /// Adds `took` to `stage`, which comes first when it is new (a stage that began before those
    /// recorded: the wait for them).
    pub fn before(&mut self, stage: &'static str, took: Duration) {
        match self.stages.iter_mut().find(|(s, _)| *s == stage) {
            Some((_, d)) => *d += took,
            None => self.stages.insert(0, (stage, took)),
        }
    }

    /// Runs `f`, adding its time to `stage`.
    pub fn time<T>(&mut self, stage: &'static str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.add(stage, start.elapsed());
        out
    }

    /// Every stage of `other` added to these.
    pub fn extend(&mut self, other: &Timings) {
        for &(stage, took) in &other.stages {
            self.add(stage, took);
        }
    }

    /// The time recorded for `stage`.
    pub fn get(&self, stage: &str) -> Option<Duration> {
        self.stages
            .iter()
            .find(|(s, _)| *s == stage)
            .map(|(_, d)| *d)
    }

    /// Whether no stage was recorded (the object itself, answered as it is).
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// The sum of every stage.
    pub fn total(&self) -> Duration {
        self.stages.iter().map(|(_, d)| *d).sum()
    }

    /// `fetch;dur=1.2, decode;dur=30.5`: milliseconds, one decimal.
    pub fn server_timing(&self) -> String {
        self.stages
            .iter()
            .map(|(s, d)| format!("{s};dur={:.1}", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_add_up_in_their_order() {
        let mut t = Timings::default();
        t.add("fetch", Duration::from_micros(1500));
        t.add("decode", Duration::from_millis(30));
        t.add("fetch", Duration::from_micros(500));
        assert_eq!(t.server_timing(), "fetch;dur=2.0, decode;dur=30.0");
        assert_eq!(t.total(), Duration::from_millis(32));
        assert_eq!(t.get("decode"), Some(Duration::from_millis(30)));
        assert_eq!(t.time("encode", || 7), 7);
        assert!(t.get("encode").is_some());
        t.before("queue", Duration::from_millis(1));
        assert!(t
            .server_timing()
            .starts_with("queue;dur=1.0, fetch;dur=2.0"));
    }
}
