//! [`Work`]: the bounded queue every conversion passes through. About one conversion per core runs at
//! a time and a short queue waits behind them; beyond that a request is refused at once with 503
//! `SlowDown` (and `Retry-After`) before it costs anything. A request whose client goes away while it
//! waits leaves the queue: its future is dropped, and with it its place. A request with a deadline
//! answers 503 when it passes, queue wait included; its work stops at the next step or encode, and
//! its result, if any, is dropped, so nothing is written.
//!
//! Memory a request holds outside the work (an input read before it queues, the objects its writes
//! replace, kept to put back) comes from one budget too ([`Work::hold`]): past it a request is refused
//! with the same 503, before it reads anything.

use crate::codec::Deadline;
use crate::{Code, Error, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Work {
    slots: Arc<Semaphore>,
    size: usize,
    waiting: AtomicUsize,
    queue: usize,
    /// The memory budget, in KiB (a semaphore counts in `u32`).
    memory: Arc<Semaphore>,
    memory_kib: u32,
}

/// Memory taken from the budget of [`Work::hold`], given back when dropped.
pub struct Held {
    _permit: Option<OwnedSemaphorePermit>,
}

/// Takes one place in the queue and gives it back when dropped, however the wait ends.
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Work {
    /// `slots` conversions at once (at least one), `queue` more waiting, and `memory` bytes held by
    /// requests outside their work.
    pub fn new(slots: usize, queue: usize, memory: u64) -> Work {
        let memory_kib = u32::try_from(memory.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .min(Semaphore::MAX_PERMITS as u32);
        Work {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            size: slots.max(1),
            waiting: AtomicUsize::new(0),
            queue,
            memory: Arc::new(Semaphore::new(memory_kib as usize)),
            memory_kib,
        }
    }

    /// Conversions running and waiting now.
    pub fn depth(&self) -> (usize, usize) {
        let running = self.size - self.slots.available_permits().min(self.size);
        (running, self.waiting.load(Ordering::SeqCst))
    }

    /// Takes `bytes` of the memory budget for what a request is about to read and keep outside its
    /// work, or refuses at once: 503 `SlowDown` while other requests hold the budget, 400 when `bytes`
    /// alone is more than all of it (no retry would help).
    pub fn hold(&self, bytes: u64, what: &str) -> Result<Held> {
        if bytes == 0 {
            return Ok(Held { _permit: None });
        }
        let kib = bytes.div_ceil(1024);
        if kib > self.memory_kib as u64 {
            return Err(Error::invalid(format!(
                "{what} would hold {} MiB in memory, more than the {} MiB mogr keeps for all requests \
                 at once",
                bytes.div_ceil(1 << 20),
                self.memory_kib / 1024
            )));
        }
        match self.memory.clone().try_acquire_many_owned(kib as u32) {
            Ok(permit) => Ok(Held {
                _permit: Some(permit),
            }),
            Err(_) => Err(Error::new(
                Code::SlowDown,
                format!(
                    "mogr is busy: requests in flight hold most of the {} MiB it keeps in memory \
                     outside conversions; retry shortly",
                    self.memory_kib / 1024
                ),
            )),
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
        let work = Arc::new(Work::new(1, 1, 0));
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
        let work = Arc::new(Work::new(1, 2, 0));
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

    #[test]
    fn memory_is_held_within_the_budget_and_given_back() {
        let work = Work::new(1, 1, 10 << 20);
        let a = work.hold(6 << 20, "a").unwrap();
        let refused = work.hold(6 << 20, "b").err().unwrap();
        assert_eq!(refused.code, Code::SlowDown);
        let never = work.hold(11 << 20, "these rules").err().unwrap();
        assert_eq!(never.code, Code::InvalidArgument);
        assert!(
            never.message.starts_with("these rules would hold 11 MiB"),
            "{}",
            never.message
        );
        drop(a);
        assert!(work.hold(6 << 20, "b").is_ok());
        assert!(work.hold(0, "nothing").is_ok());
    }
}
