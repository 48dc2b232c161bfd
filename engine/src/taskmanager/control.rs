//! The TaskManager's line to one running task: checkpoint triggers and completion notices, in
//! the order sent.
//!
//! An operator looks at this line on every turn of its loop (a branch of its `select!`), and it
//! is nearly always empty. So an empty look costs one lock and a waker comparison; tokio's
//! unbounded channel cost about four times as much (a callgrind profile: 2% of a run). The
//! waiting task is kept under that same lock ([`WaitingTask`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use super::task::TaskControl;
use crate::waiting_task::WaitingTask;

/// A new line: the TaskManager keeps the sender, the task the receiver.
pub fn channel() -> (ControlSender, ControlReceiver) {
    let shared = Arc::new(Shared::default());
    (ControlSender(shared.clone()), ControlReceiver(shared))
}

#[derive(Default)]
struct Shared {
    line: Mutex<Line>,
}

#[derive(Default)]
struct Line {
    queue: VecDeque<TaskControl>,
    sender_gone: bool,
    receiver_gone: bool,
    /// The receiving task, while it waits.
    receiver: WaitingTask,
}

impl Shared {
    /// Wakes the receiving task if it waits (outside the lock).
    fn wake_receiver(&self, mut line: std::sync::MutexGuard<'_, Line>) {
        let receiver = line.receiver.take();
        drop(line);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
    }
}

/// The TaskManager's end.
pub struct ControlSender(Arc<Shared>);

/// The task's end.
pub struct ControlReceiver(Arc<Shared>);

impl ControlSender {
    /// Queues `control` for the task; gives it back if the task has ended.
    pub fn send(&self, control: TaskControl) -> Result<(), TaskControl> {
        let mut line = self.0.line.lock().unwrap();
        if line.receiver_gone {
            return Err(control);
        }
        line.queue.push_back(control);
        self.0.wake_receiver(line);
        Ok(())
    }
}

impl Drop for ControlSender {
    fn drop(&mut self) {
        let mut line = self.0.line.lock().unwrap();
        line.sender_gone = true;
        self.0.wake_receiver(line);
    }
}

impl ControlReceiver {
    /// The next message; `None` once the TaskManager has dropped its end and all are read.
    pub async fn recv(&mut self) -> Option<TaskControl> {
        std::future::poll_fn(|cx| {
            let mut line = self.0.line.lock().unwrap();
            if let Some(control) = line.queue.pop_front() {
                return Poll::Ready(Some(control));
            }
            if line.sender_gone {
                return Poll::Ready(None);
            }
            line.receiver.register(cx.waker());
            Poll::Pending
        })
        .await
    }
}

impl Drop for ControlReceiver {
    fn drop(&mut self) {
        self.0.line.lock().unwrap().receiver_gone = true;
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

    #[test]
    fn a_send_to_an_ended_task_gives_the_message_back() {
        let (sender, receiver) = channel();
        drop(receiver);
        assert_eq!(sender.send(TaskControl::CheckpointComplete(7)), Err(TaskControl::CheckpointComplete(7)));
    }
}
