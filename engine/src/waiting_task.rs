//! The one task that waits on a shared structure (a node's mailbox, a call's answer slot, a
//! task's control line, an input gate's queue), kept inside the state the structure's mutex
//! guards: the waiting side holds that lock anyway, so registering costs a waker comparison, where an `AtomicWaker`
//! beside the lock cost 28 instructions more per look (a callgrind profile).

use std::collections::VecDeque;
use std::task::{Poll, Waker};

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

    /// Wakes the waiting task and keeps it noted, for a task that waits again every time it
    /// runs (a mailbox's reader): it then notes the same waker, a comparison, where a waker
    /// taken to be woken is cloned again at the next wait. Safe under the structure's lock: a
    /// madsim waker only queues its task, and a second wake-up before it runs changes nothing.
    pub fn wake_by_ref(&self) {
        if let Some(waiting) = &self.0 {
            waiting.wake_by_ref();
        }
    }
}

/// A queue read by one task, kept under its structure's lock with that task while it waits (a
/// task's control line, an input gate's admitted buffers): what the senders put in, how many
/// senders are left, and whether the reader is still there. A waker it hands back is to be
/// woken once the lock is released.
#[derive(Debug)]
pub struct WaitingQueue<T> {
    items: VecDeque<T>,
    senders: usize,
    reader_gone: bool,
    reader: WaitingTask,
}

impl<T> WaitingQueue<T> {
    /// An empty queue with one sender.
    pub fn new() -> WaitingQueue<T> {
        WaitingQueue { items: VecDeque::new(), senders: 1, reader_gone: false, reader: WaitingTask::default() }
    }

    /// Queues `item` and hands back the reader to wake; gives `item` back if the reader is gone.
    pub fn push(&mut self, item: T) -> Result<Option<Waker>, T> {
        if self.reader_gone {
            return Err(item);
        }
        self.items.push_back(item);
        Ok(self.reader.take())
    }

    /// One more sender.
    pub fn add_sender(&mut self) {
        self.senders += 1;
    }

    /// One sender fewer; the reader to wake if that was the last (the end is then read).
    pub fn remove_sender(&mut self) -> Option<Waker> {
        self.senders -= 1;
        if self.senders == 0 { self.reader.take() } else { None }
    }

    /// The next item; `None` once every sender is gone and all are read; pending with
    /// `waker`'s task noted as the reader.
    pub fn poll_next(&mut self, waker: &Waker) -> Poll<Option<T>> {
        if let Some(item) = self.items.pop_front() {
            return Poll::Ready(Some(item));
        }
        if self.senders == 0 {
            return Poll::Ready(None);
        }
        self.reader.register(waker);
        Poll::Pending
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the reader is noted as waiting (no push or last sender has taken it since).
    pub fn reader_waits(&self) -> bool {
        !self.reader.is_empty()
    }

    /// The reader has gone: later pushes are refused. What was queued and the reader's waker
    /// are handed back, to be dropped outside the lock.
    pub fn close(&mut self) -> (VecDeque<T>, Option<Waker>) {
        self.reader_gone = true;
        (std::mem::take(&mut self.items), self.reader.take())
    }
}

impl<T> Default for WaitingQueue<T> {
    fn default() -> WaitingQueue<T> {
        WaitingQueue::new()
    }
}
