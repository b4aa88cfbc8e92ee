//! [`Work`]: the bounded queue every conversion passes through. About one conversion per core runs at
//! a time and a short queue waits behind them; beyond that a request is refused at once with 503
//! `SlowDown` (and `Retry-After`) before it costs anything. A request whose client goes away while it
//! waits leaves the queue: its future is dropped, and with it its place.

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
    /// is full.
    pub async fn run<T: Send + 'static>(
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
                work.run(move || {
                    rx.recv().ok();
                    Ok(1)
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await; // the slot is taken
        let waiter = {
            let work = work.clone();
            tokio::spawn(async move { work.run(|| Ok(2)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await; // the queue's one place is taken
        let refused = work.run(|| Ok(3)).await.unwrap_err();
        assert_eq!(refused.code, Code::SlowDown);
        assert!(refused.message.contains("busy"), "{refused}");

        waiter.abort(); // its client went away
        let _ = waiter.await;
        let queued = {
            let work = work.clone();
            tokio::spawn(async move { work.run(|| Ok(4)).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(()).unwrap();
        assert_eq!(busy.await.unwrap().unwrap(), 1);
        assert_eq!(queued.await.unwrap().unwrap(), 4);
        assert_eq!(work.waiting.load(Ordering::SeqCst), 0);
    }
}
