//! The TaskManager's line to one running task: checkpoint triggers and completion notices, in
//! the order sent.
//!
//! An operator looks at this line on every turn of its loop (a branch of its `select!`), and it
//! is nearly always empty. So an empty look costs an atomic load and a waker comparison, with
//! no lock: the task keeps its own copy of the waker it left on the line, good until a message
//! comes (a send takes the line's). tokio's unbounded channel cost about four times what a look
//! under the lock cost (a callgrind profile: 2% of a run), and the lock itself about 60
//! instructions a look more than the atomic. The waiting task is kept under that lock
//! ([`WaitingTask`](crate::waiting_task::WaitingTask)).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

// The engine's lock (`crate::lock` says why).
use crate::lock::Mutex;

use crate::protocol::checkpoint::CheckpointBarrier;
use crate::waiting_task::WaitingQueue;

/// What the TaskManager tells a running task besides its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskControl {
    /// (Sources) start a checkpoint: snapshot and emit this barrier.
    TriggerCheckpoint(CheckpointBarrier),
    /// A checkpoint completed: commit what it covers (offsets, transactions).
    CheckpointComplete(u64),
    /// (Sources) a savepoint was aborted: a source holding still after its barrier reads on.
    CheckpointAborted(u64),
    /// Stop now, releasing what the task holds (an exactly-once sink aborts its open
    /// transaction), as Flink's task cancellation closes its operators.
    Cancel,
}

/// A new line: the TaskManager keeps the sender, the task the receiver.
pub fn channel() -> (ControlSender, ControlReceiver) {
    let shared = Arc::new(Shared::default());
    (ControlSender(shared.clone()), ControlReceiver { shared, waiting: None })
}

#[derive(Default)]
struct Shared {
    line: Mutex<WaitingQueue<TaskControl>>,
    /// Set under the lock whenever the sender queues a message or goes (and so takes the
    /// waiting task off the line); cleared by the receiver once it has read everything.
    stirred: AtomicBool,
}

impl Shared {
    /// Tells the receiving task to look, and wakes it if it waited; called under the line's
    /// lock, whose guard the caller drops before the wake-up.
    fn stir(&self, reader: Option<Waker>) -> Option<Waker> {
        self.stirred.store(true, Ordering::Release);
        reader
    }
}

/// Wakes the receiving task, if there is one to wake (called once the lock is released).
fn wake(reader: Option<Waker>) {
    if let Some(reader) = reader {
        reader.wake();
    }
}

/// The TaskManager's end.
pub struct ControlSender(Arc<Shared>);

/// The task's end.
pub struct ControlReceiver {
    shared: Arc<Shared>,
    /// The waker left on the line, while it is there: the line has not been stirred since.
    waiting: Option<Waker>,
}

impl ControlSender {
    /// Queues `control` for the task; gives it back if the task has ended.
    pub fn send(&self, control: TaskControl) -> Result<(), TaskControl> {
        let reader = {
            let mut line = self.0.line.lock();
            let reader = line.push(control)?;
            self.0.stir(reader)
        };
        wake(reader);
        Ok(())
    }
}

impl Drop for ControlSender {
    fn drop(&mut self) {
        let reader = {
            let mut line = self.0.line.lock();
            let reader = line.remove_sender();
            self.0.stir(reader)
        };
        wake(reader);
    }
}

impl ControlReceiver {
    /// The next message; `None` once the TaskManager has dropped its end and all are read.
    pub async fn recv(&mut self) -> Option<TaskControl> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) as a poll, for a task's loop that polls its sources by hand.
    #[inline]
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<TaskControl>> {
        // Nothing sent since this task's waker was left on the line: it is still there.
        if !self.shared.stirred.load(Ordering::Acquire)
            && self.waiting.as_ref().is_some_and(|waiting| waiting.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        self.poll_line(cx.waker())
    }

    /// The control line's branch of a task's loop that polls its sources by hand: a message,
    /// unless the line was found closed earlier this turn. Closed, it sets `closed` and is not
    /// looked at again while that stays set.
    #[inline]
    pub fn poll_open(&mut self, cx: &mut Context<'_>, closed: &mut bool) -> Poll<TaskControl> {
        if !*closed {
            match self.poll_recv(cx) {
                Poll::Ready(Some(control)) => return Poll::Ready(control),
                Poll::Ready(None) => *closed = true,
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }

    /// Looks at the line under its lock.
    #[inline(never)]
    fn poll_line(&mut self, waker: &Waker) -> Poll<Option<TaskControl>> {
        let mut line = self.shared.line.lock();
        // What stirred the line is seen now; a later send stirs it again (under this lock).
        self.shared.stirred.store(false, Ordering::Relaxed);
        // A send took the waker off the line, if one was there.
        if !line.reader_waits() {
            self.waiting = None;
        }
        match line.poll_next(waker) {
            Poll::Ready(Some(control)) => {
                if !line.is_empty() {
                    self.shared.stirred.store(true, Ordering::Relaxed);
                }
                Poll::Ready(Some(control))
            }
            Poll::Ready(None) => {
                self.shared.stirred.store(true, Ordering::Relaxed);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if !self.waiting.as_ref().is_some_and(|waiting| waiting.will_wake(waker)) {
                    self.waiting = Some(waker.clone());
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for ControlReceiver {
    fn drop(&mut self) {
        let closed = self.shared.line.lock().close();
        drop(closed);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn messages_come_in_order_and_the_line_ends_with_its_sender() {
        let runtime = madsim::runtime::Runtime::with_seed_and_config(3, madsim::Config::default());
        runtime.block_on(async {
            let (sender, mut receiver) = channel();
            let reader = madsim::task::spawn(async move {
                let mut got = Vec::new();
                while let Some(control) = receiver.recv().await {
                    got.push(control);
                }
                got
            });
            madsim::time::sleep(Duration::from_millis(5)).await; // the reader waits meanwhile
            sender.send(TaskControl::CheckpointComplete(1)).unwrap();
            sender.send(TaskControl::CheckpointComplete(2)).unwrap();
            madsim::time::sleep(Duration::from_millis(5)).await;
            sender.send(TaskControl::CheckpointComplete(3)).unwrap();
            drop(sender);
            let expected: Vec<_> = (1..=3).map(TaskControl::CheckpointComplete).collect();
            assert_eq!(reader.await.unwrap(), expected);
        });
    }

    /// Counts its wake-ups.
    struct Wakes(std::sync::atomic::AtomicU32);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_waiting_receiver_is_woken_by_every_send_after_it_has_read_the_last() {
        let (sender, mut receiver) = channel();
        let wakes = Arc::new(Wakes(std::sync::atomic::AtomicU32::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        let mut poll = |receiver: &mut ControlReceiver| {
            let recv = std::pin::pin!(receiver.recv());
            std::future::Future::poll(recv, &mut cx)
        };
        assert_eq!(poll(&mut receiver), Poll::Pending);
        assert_eq!(poll(&mut receiver), Poll::Pending, "looked again without a send");
        for round in 1..=3 {
            sender.send(TaskControl::CheckpointComplete(round)).unwrap();
            sender.send(TaskControl::CheckpointComplete(10 + round)).unwrap();
            assert_eq!(wakes.0.load(Ordering::Relaxed), round as u32, "one wake-up per wait");
            assert_eq!(poll(&mut receiver), Poll::Ready(Some(TaskControl::CheckpointComplete(round))));
            assert_eq!(poll(&mut receiver), Poll::Ready(Some(TaskControl::CheckpointComplete(10 + round))));
            assert_eq!(poll(&mut receiver), Poll::Pending);
            assert_eq!(poll(&mut receiver), Poll::Pending);
        }
        drop(sender);
        assert_eq!(wakes.0.load(Ordering::Relaxed), 4, "woken when the line ends");
        assert_eq!(poll(&mut receiver), Poll::Ready(None));
        assert_eq!(poll(&mut receiver), Poll::Ready(None));
    }

    #[test]
    fn a_send_to_an_ended_task_gives_the_message_back() {
        let (sender, receiver) = channel();
        drop(receiver);
        assert_eq!(sender.send(TaskControl::CheckpointComplete(7)), Err(TaskControl::CheckpointComplete(7)));
    }
}
