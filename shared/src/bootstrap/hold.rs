//! A Lambda function that answers first and finishes its background work after: an internal Lambda
//! extension holds the execution environment until that work has ended.
//!
//! Lambda freezes an environment once its runtime has posted the answer *and* every extension has
//! asked for its next event. The extension registered here asks only once the invocation has been
//! answered (the handler marks it, [`Hold::answering`]) and [`Service::background`] is idle — or at
//! the invocation's deadline, where Lambda would stop it anyway. So a result's cache write no longer
//! delays the answer, and is not frozen half done.

use crate::service::{Background, Service};
use lambda_extension::{service_fn, Extension, InvokeEvent, LambdaEvent, NextEvent};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The extension's name, in Lambda's logs.
const NAME: &str = "mogr-background";
/// Answered invocations remembered for an extension that hears of them late.
const REMEMBERED: usize = 64;
/// How long before an invocation's deadline the environment is let go, whatever still runs.
const MARGIN: Duration = Duration::from_millis(500);

/// What the handler tells the extension: which invocations are answered.
#[derive(Clone, Default)]
pub struct Hold {
    answered: Arc<watch::Sender<VecDeque<String>>>,
}

/// Marks its invocation answered when dropped: after the handler returns, or if it panics.
pub struct Answering {
    hold: Hold,
    request_id: String,
}

impl Drop for Answering {
    fn drop(&mut self) {
        let id = std::mem::take(&mut self.request_id);
        self.hold.answered.send_modify(|ids| {
            if ids.len() == REMEMBERED {
                ids.pop_front();
            }
            ids.push_back(id);
        });
    }
}

impl Hold {
    /// Held by the handler of invocation `request_id` while it answers.
    pub fn answering(&self, request_id: &str) -> Answering {
        Answering {
            hold: self.clone(),
            request_id: request_id.to_string(),
        }
    }

    /// Waits until invocation `request_id` is answered and no background work runs.
    async fn until_done(&self, request_id: &str, background: &Background) {
        let mut answered = self.answered.subscribe();
        // the sender lives in `self`: waiting cannot fail
        let _ = answered
            .wait_for(|ids| ids.iter().any(|id| id == request_id))
            .await;
        background.idle().await
    }
}

/// Registers the extension and, once registered, lets `service` write results to its cache after
/// answering (`Config::detached_cache_writes`). Call before the runtime starts (Lambda accepts
/// extensions only while the function initialises). Where no extension can register (an emulator
/// without the Extensions API), the service keeps writing before it answers.
pub async fn hold_for_background(service: &mut Service) -> Hold {
    let hold = Hold::default();
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return hold;
    }
    let (waiting, background) = (hold.clone(), service.background().clone());
    let events = service_fn(move |event: LambdaEvent| {
        let (hold, background) = (waiting.clone(), background.clone());
        async move {
            if let NextEvent::Invoke(invoke) = event.next {
                hold_until_done(&hold, &background, &invoke).await
            }
            Ok::<(), lambda_extension::Error>(())
        }
    });
    let registered = Extension::new()
        .with_extension_name(NAME)
        .with_events(&["INVOKE"])
        .with_events_processor(events)
        .register()
        .await;
    match registered {
        Ok(extension) => {
            tokio::spawn(async move {
                let why = match extension.run().await {
                    Err(e) => e.to_string(),
                    Ok(()) => "its loop ended".into(),
                };
                // An extension that stops asking for events would leave every invocation to time
                // out: a fresh environment is better.
                tracing::error!(
                    error = why,
                    "the {NAME} extension stopped; exiting so Lambda starts afresh"
                );
                std::process::exit(1);
            });
            service.config.detached_cache_writes = true;
            tracing::debug!("{NAME} registered: results are cached after answering");
        }
        Err(e) => tracing::info!(
            error = %e,
            "no Lambda extension could register: results are cached before answering"
        ),
    }
    hold
}

/// The extension's work for one invocation: wait until it is answered and its background work has
/// ended, or until just before its deadline. A deadline already past is not a real one (an
/// emulator's; Lambda's lie ahead, and past them the environment is stopped anyway): the wait is then
/// bounded by the store's own timeouts alone.
async fn hold_until_done(hold: &Hold, background: &Background, invoke: &InvokeEvent) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_millis(invoke.deadline_ms).checked_sub(now + MARGIN);
    let done = hold.until_done(&invoke.request_id, background);
    let Some(left) = left else {
        return done.await;
    };
    if tokio::time::timeout(left, done).await.is_err() {
        tracing::warn!(
            request_id = invoke.request_id,
            running = background.running(),
            "background work (a result's cache write) still runs at the invocation's deadline; \
             Lambda may freeze it, and the result is then made anew next time"
        );
    }
}
