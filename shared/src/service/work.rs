//! [`Work`]: the bounded queue every conversion passes through. About one conversion per core runs at
//! a time and a short queue waits behind them; beyond that a request is refused at once with 503
//! `SlowDown` (and `Retry-After`) before it costs anything. A request whose client goes away while it
//! waits leaves the queue: its future is dropped, and with it its place. A request with a deadline
//! answers 503 when it passes, queue wait included; its work stops at the next step or encode, and
//! its result, if any, is dropped, so nothing is written.

use crate::codec::Deadline;
use crate::{Code, Error, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

pub struct Work {
    slots: Arc<Semaphore>,
    size: usize,
    waiting: AtomicUsize,
    queue: usize,
}

/// Takes one place in the queue and gives it back when dropped, however the wait ends.
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Work {
    /// `slots` conversions at once (at least one), `queue` more waiting.
    pub fn new(slots: usize, queue: usize) -> Work {
        Work {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            size: slots.max(1),
            waiting: AtomicUsize::new(0),
            queue,
        }
    }

    /// Runs CPU-bound image work on the blocking pool once a slot is free, or refuses it when the queue
    /// is full, or gives up on it at `deadline`.
    pub async fn run<T: Send + 'static>(
        &self,
        deadline: Option<Deadline>,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        match deadline {
            Some(d) => tokio::time::timeout_at(d.at.into(), self.queue_and_run(f))
                .await
                .unwrap_or_else(|_| Err(d.error())),
            None => self.queue_and_run(f).await,
        }
    }

    async fn queue_and_run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(Error::new(
                        Code::SlowDown,
                        format!(
                            "mogr is busy: {} conversions are running and {} are waiting; retry shortly",
                            self.size,
                            self.queue
                        ),
                    ));
                }
                let _place = Place(&self.waiting);
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Error::internal("the work queue was closed"))?
            }
        };
        tokio::task::spawn_blocking(move || {
            let _slot = slot; // held until the work is done, even if the request is gone
            f()
        })
        .await
        .map_err(|e| Error::internal(format!("image task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_and_a_dropped_wait_frees_its_place() {
        let work = Arc::new(Work::new(1, 1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let busy = {
            let work = work.clone();
            tokio::spawn(async move {
                work.run(None, move || {
                    rx.recv().ok();
                    Ok(1)
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await; // the slot is taken
        let waiter = {
            let work = work.clone();
            tokio::spawn(async move { work.run(None, || Ok(2)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await; // the queue's one place is taken
        let refused = work.run(None, || Ok(3)).await.unwrap_err();
        assert_eq!(refused.code, Code::SlowDown);
        assert!(refused.message.contains("busy"), "{refused}");

        waiter.abort(); // its client went away
        let _ = waiter.await;
        let queued = {
            let work = work.clone();
            tokio::spawn(async move { work.run(None, || Ok(4)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(()).unwrap();
        assert_eq!(busy.await.unwrap().unwrap(), 1);
        assert_eq!(queued.await.unwrap().unwrap(), 4);
        assert_eq!(work.waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deadline_answers_503_in_the_queue_or_at_work() {
        let work = Arc::new(Work::new(1, 2));
        let soon = || Some(Deadline::after(Duration::from_millis(100)));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let late = work
            .run(soon(), move || {
                rx.recv().ok();
                Ok(1)
            })
            .await
            .unwrap_err();
        assert_eq!(late.code, Code::ServiceUnavailable);
        assert!(late.message.contains("within the 0.1 s"), "{late}");
        // The stopped work keeps its slot until it returns, so the machine is never oversubscribed.
        let waiting = {
            let work = work.clone();
            tokio::spawn(async move { work.run(None, || Ok(2)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A deadline also ends a wait in the queue, and gives its place back.
        let queued_late = work.run(soon(), || Ok(3)).await.unwrap_err();
        assert_eq!(queued_late.code, Code::ServiceUnavailable);
        assert_eq!(work.waiting.load(Ordering::SeqCst), 1);
        tx.send(()).unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), 2);
    }
}
