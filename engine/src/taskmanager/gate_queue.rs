//! The queue of buffers admitted into an input gate, between the deliveries that put them in
//! and the task that reads them (docs/model/network.md#network-buffers).
//!
//! It needs no bound of its own: credit admits a buffer only while the gate has one free for
//! it, and a buffer holds its credit until the task has read it, so the queue never holds more
//! than the gate's buffers. A tokio bounded channel here counted that bound again with a
//! semaphore, and its receive cost about 300 instructions per buffer more (a callgrind
//! profile). It wakes the reading task as that channel did: once per wait, when a buffer
//! arrives or the last sender goes. The waiting task is kept under the queue's lock
//! ([`WaitingTask`](crate::waiting_task::WaitingTask)).

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

// The engine's lock (`crate::lock` says why), taken for every buffer handed to a gate.
use crate::lock::Mutex;

use super::credit::BufferKind;
use crate::protocol::data::NetworkBuffer;
use crate::waiting_task::WaitingQueue;

/// One buffer arriving at an input gate, tagged with the input channel it came in on.
#[derive(Debug)]
pub struct GateInput {
    /// Index of the input channel (the producing subtask).
    pub channel: u32,
    /// The buffer.
    pub buffer: NetworkBuffer,
    /// How many of its elements are records (for the task's metrics).
    pub records: usize,
    /// The kind of buffer it occupies in the gate until the task has read it.
    pub kind: BufferKind,
}

/// A new queue: the gate registry keeps the sender, the input gate the receiver.
pub fn queue() -> (GateSender, GateReceiver) {
    let shared = Arc::new(Mutex::new(WaitingQueue::new()));
    (GateSender(shared.clone()), GateReceiver(shared))
}

type Shared = Mutex<WaitingQueue<GateInput>>;

/// Wakes the reading task, if there is one to wake (called once the lock is released).
fn wake(reader: Option<Waker>) {
    if let Some(reader) = reader {
        reader.wake();
    }
}

/// A delivery's end of the queue.
pub struct GateSender(Arc<Shared>);

/// The input gate's end of the queue.
pub struct GateReceiver(Arc<Shared>);

impl GateSender {
    /// Queues `input` for the task and wakes it; gives it back if the gate's task has ended.
    pub fn send(&self, input: GateInput) -> Result<(), GateInput> {
        let reader = self.0.lock().push(input)?;
        wake(reader);
        Ok(())
    }
}

impl Clone for GateSender {
    fn clone(&self) -> GateSender {
        self.0.lock().add_sender();
        GateSender(self.0.clone())
    }
}

impl Drop for GateSender {
    fn drop(&mut self) {
        let reader = self.0.lock().remove_sender();
        wake(reader);
    }
}

impl GateReceiver {
    /// The next buffer; `None` once every sender is gone and all are read.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<GateInput>> {
        self.0.lock().poll_next(cx.waker())
    }
}

impl Drop for GateReceiver {
    fn drop(&mut self) {
        // Later sends are refused, and nobody is woken any more (as a tokio channel's receiver
        // drops its waker); what is queued goes with the gate (outside the lock).
        let closed = self.0.lock().close();
        drop(closed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::task::{Wake, Waker};

    use super::*;
    use crate::protocol::data::NetworkBuffer;
    use crate::taskmanager::credit::BufferKind;

    struct Wakes(AtomicU32);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn input(channel: u32) -> GateInput {
        GateInput { channel, buffer: NetworkBuffer::default(), records: 0, kind: BufferKind::Exclusive }
    }

    fn channel_of(polled: Poll<Option<GateInput>>) -> Poll<Option<u32>> {
        polled.map(|input| input.map(|input| input.channel))
    }

    #[test]
    fn buffers_come_in_order_with_one_wake_up_per_wait_and_the_end_after_the_last_sender() {
        let (sender, mut receiver) = queue();
        let wakes = Arc::new(Wakes(AtomicU32::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        assert_eq!(channel_of(receiver.poll_recv(&mut cx)), Poll::Pending);
        let waiting = sender.clone(); // a delivery waiting for credit holds one
        sender.send(input(1)).unwrap();
        sender.send(input(2)).unwrap();
        assert_eq!(wakes.0.load(Ordering::Relaxed), 1, "woken once for the wait");
        assert_eq!(channel_of(receiver.poll_recv(&mut cx)), Poll::Ready(Some(1)));
        drop(sender);
        assert_eq!(channel_of(receiver.poll_recv(&mut cx)), Poll::Ready(Some(2)));
        assert_eq!(channel_of(receiver.poll_recv(&mut cx)), Poll::Pending, "a sender is left");
        waiting.send(input(3)).unwrap();
        drop(waiting);
        assert_eq!(wakes.0.load(Ordering::Relaxed), 2);
        assert_eq!(channel_of(receiver.poll_recv(&mut cx)), Poll::Ready(Some(3)));
        assert_eq!(channel_of(receiver.poll_recv(&mut cx)), Poll::Ready(None));
    }

    #[test]
    fn the_last_sender_going_wakes_the_waiting_receiver_and_a_gone_receiver_refuses_buffers() {
        let (sender, mut receiver) = queue();
        let wakes = Arc::new(Wakes(AtomicU32::new(0)));
        let waker = Waker::from(wakes.clone());
        assert!(receiver.poll_recv(&mut Context::from_waker(&waker)).is_pending());
        let other = sender.clone();
        drop(sender);
        assert_eq!(wakes.0.load(Ordering::Relaxed), 0, "a sender is left");
        drop(receiver);
        assert_eq!(other.send(input(7)).map_err(|refused| refused.channel), Err(7));
        drop(other);
        assert_eq!(wakes.0.load(Ordering::Relaxed), 0, "nobody waits any more");
    }
}
