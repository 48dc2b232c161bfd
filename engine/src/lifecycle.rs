//! A node's graceful stop, as `docker-compose stop` gives it (docs/model/cluster.md#nodes):
//! SIGTERM, then SIGKILL once the grace period (10 s) has passed. The simulator holds one
//! [`Shutdown`] per node and requests it; a node that handles SIGTERM (JobManager, TaskManager,
//! broker) waits on
//! [`Shutdown::requested`], winds down, and says [`Shutdown::complete`], after which the
//! simulator kills it at once. Nodes that do not handle it exit on SIGTERM as a JVM does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// Docker's default stop timeout: SIGKILL follows SIGTERM after this long.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// One node's stop signal and its answer; cloned into the node's config, shared with the
/// simulator, and reset for each new incarnation.
#[derive(Clone, Debug, Default)]
pub struct Shutdown(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    requested: AtomicBool,
    completed: AtomicBool,
    changed: Notify,
}

impl Shutdown {
    /// Sends SIGTERM.
    pub fn request(&self) {
        self.0.requested.store(true, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }

    /// Whether SIGTERM was sent to this incarnation.
    pub fn is_requested(&self) -> bool {
        self.0.requested.load(Ordering::SeqCst)
    }

    /// Resolves once SIGTERM is sent.
    pub async fn requested(&self) {
        self.wait(|inner| inner.requested.load(Ordering::SeqCst)).await;
    }

    /// The node has shut down by itself.
    pub fn complete(&self) {
        self.0.completed.store(true, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }

    /// Resolves once the node has shut down by itself.
    pub async fn completed(&self) {
        self.wait(|inner| inner.completed.load(Ordering::SeqCst)).await;
    }

    /// A new incarnation of the node starts with neither signal.
    pub fn reset(&self) {
        self.0.requested.store(false, Ordering::SeqCst);
        self.0.completed.store(false, Ordering::SeqCst);
    }

    async fn wait(&self, done: impl Fn(&Inner) -> bool) {
        loop {
            // Made before the check: a notification between the check and the await is kept.
            let changed = self.0.changed.notified();
            if done(&self.0) {
                return;
            }
            changed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_wakes_the_waiting_node_and_its_completion_wakes_the_simulator() {
        let runtime = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
        let order = runtime.block_on(async {
            let shutdown = Shutdown::default();
            let node = shutdown.clone();
            let log = Arc::new(std::sync::Mutex::new(Vec::new()));
            let node_log = log.clone();
            madsim::task::spawn(async move {
                node.requested().await;
                node_log.lock().unwrap().push("node: SIGTERM");
                madsim::time::sleep(Duration::from_secs(2)).await;
                node.complete();
            });
            madsim::time::sleep(Duration::from_secs(1)).await;
            assert!(!shutdown.is_requested());
            shutdown.request();
            shutdown.completed().await;
            log.lock().unwrap().push("simulator: done");
            shutdown.reset();
            assert!(!shutdown.is_requested());
            
            log.lock().unwrap().clone()
        });
        assert_eq!(order, ["node: SIGTERM", "simulator: done"]);
    }
}
