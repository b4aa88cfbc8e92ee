//! Work an answer leaves behind (a result's cache write, see `cache`): run after the answer and
//! counted, so that a host which freezes the process once it has answered (Lambda) can wait for it
//! first (`bootstrap::hold_for_background`).

use std::future::Future;
use std::sync::Arc;
use tokio::sync::watch;

/// The tasks running after their answers; clones share them.
#[derive(Clone, Default)]
pub struct Background {
    running: Arc<watch::Sender<usize>>,
}

impl Background {
    /// Runs `work` on its own task, counted until it ends (or panics).
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.running.send_modify(|n| *n += 1);
        let ended = Ended(self.running.clone());
        tokio::spawn(async move {
            let _ended = ended;
            work.await
        });
    }

    /// How many tasks are running.
    pub fn running(&self) -> usize {
        *self.running.borrow()
    }

    /// Waits until no task is running.
    pub async fn idle(&self) {
        let mut running = self.running.subscribe();
        // the sender lives in `self`: waiting cannot fail
        let _ = running.wait_for(|n| *n == 0).await;
    }
}

/// Counts its task out when dropped, whether the task ended or panicked.
struct Ended(Arc<watch::Sender<usize>>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn idle_waits_for_every_task_even_one_that_panics() {
        let background = Background::default();
        background.idle().await;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        background.spawn(async move {
            let _ = rx.await;
        });
        background.spawn(async { panic!("a task that fails") });
        assert!(background.running() >= 1);
        let waiting = tokio::spawn({
            let b = background.clone();
            async move { b.idle().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "one task still runs");
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("idle once both ended")
            .unwrap();
        assert_eq!(background.running(), 0);
    }
}
