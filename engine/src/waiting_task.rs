//! The one task that waits on a shared structure (a node's mailbox, a call's answer slot, a
//! task's control line), kept inside the state the structure's mutex guards: the waiting side
//! holds that lock anyway, so registering costs a waker comparison, where an `AtomicWaker`
//! beside the lock cost 28 instructions more per look (a callgrind profile).

use std::task::Waker;

/// The task to wake, if one waits. Lives under the structure's lock; what
/// [`take`](Self::take) returns is woken after the lock is released.
#[derive(Debug, Default)]
pub struct WaitingTask(Option<Waker>);

impl WaitingTask {
    /// Notes that `waker`'s task waits, cloning the waker only if another one was noted.
    pub fn register(&mut self, waker: &Waker) {
        match &mut self.0 {
            Some(waiting) if waiting.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
    }

    /// Whether no task waits.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The waiting task, to be woken outside the lock; none waits afterwards.
    pub fn take(&mut self) -> Option<Waker> {
        self.0.take()
    }
}
