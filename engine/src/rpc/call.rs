//! A call's slot: its request travels in it to the node it is sent to, and its answer lands in it
//! as it is sent, stamped with the instant it arrives; a timer wakes the caller at that instant.
//! The slot is typed by the request, so neither the request nor its answer is boxed on its own
//! (two allocations and two type checks fewer per round trip than `Box<dyn Any>` bodies).
//!
//! Why not through the caller's mailbox: an answer passed through the caller's mailbox reader
//! and then a channel to the calling task, two task polls per answer where one does (a callgrind
//! profile). The model is unchanged: the answer takes its link's latency and faults, and is lost
//! if the call has ended (timed out, or its node's reader died) before it arrives.

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use madsim::time::Instant;

use super::Request;
use crate::lock::Mutex;
use crate::waiting_task::WaitingTask;
use crate::timer::Clock;

/// Where one call's request waits to be taken and its answer lands.
pub(super) struct CallSlot<R: Request> {
    /// An answer arriving at or after this instant (in nanoseconds since the runtime started)
    /// is too late: the call has timed out.
    deadline: u64,
    state: Mutex<SlotState<R>>,
}

struct SlotState<R: Request> {
    /// The request, until the node it was sent to takes it (even after the call has ended, as a
    /// request on its way is delivered whatever became of its caller).
    request: Option<R>,
    /// The answer, landed as it was sent.
    answer: Option<R::Response>,
    /// The answer's arrival timer has fired: it has arrived. The timer is armed at the arrival
    /// instant itself (a message takes at least madsim's 1 ms minimum), and madsim fires every
    /// timer due before any task sees the clock move, so this says what a clock reading against
    /// the arrival instant would, without the reading.
    arrived: bool,
    /// The call ended without an answer; nothing lands any more.
    closed: bool,
    /// The calling task, once it waits.
    caller: WaitingTask,
}

/// A slot of any request type, as the calls waiting for an answer hold it: to end it.
pub(super) trait Slot: Send + Sync {
    /// Ends the call without an answer (its deadline passed, or its node's reader died): an
    /// answer still on its way is lost, and the caller wakes to a timeout.
    fn close(&self);
}

impl<R: Request> CallSlot<R> {
    /// A slot holding `request`, for a call that times out at `deadline`.
    pub fn new(deadline: u64, request: R) -> Arc<CallSlot<R>> {
        let state = SlotState {
            request: Some(request),
            answer: None,
            arrived: false,
            closed: false,
            caller: WaitingTask::default(),
        };
        Arc::new(CallSlot { deadline, state: Mutex::new_here(state) })
    }

    /// Takes the request out, once, where it arrived; `None` if it was taken already.
    pub fn take_request(&self) -> Option<R> {
        self.state.lock().request.take()
    }

    /// Lands an answer that arrives at `arrival` (in nanoseconds since the runtime started, the
    /// instant `at`), and arms a timer on `clock` that wakes the caller then. The sender's handle
    /// on the slot becomes the timer's waker.
    /// Lost if the call has ended, or if it would arrive at or after the deadline (the caller
    /// times out first, as it would with the answer still on its way).
    pub fn land(self: Arc<Self>, clock: &Clock, arrival: u64, at: Instant, answer: R::Response) {
        {
            let mut state = self.state.lock();
            if state.closed || state.answer.is_some() || arrival >= self.deadline {
                return;
            }
            state.answer = Some(answer);
        }
        clock.wake_at_arrival(at, &Waker::from(self));
    }

    /// The answer once it has arrived; `Ready(None)` if the call ended without one.
    pub fn poll_answer(&self, cx: &mut Context<'_>) -> Poll<Option<R::Response>> {
        let mut state = self.state.lock();
        if state.arrived && state.answer.is_some() {
            return Poll::Ready(state.answer.take());
        }
        if state.closed {
            return Poll::Ready(None);
        }
        state.caller.register(cx.waker());
        Poll::Pending
    }
}

impl<R: Request> Slot for CallSlot<R> {
    fn close(&self) {
        let (answer, caller) = {
            let mut state = self.state.lock();
            state.closed = true;
            (state.answer.take(), state.caller.take())
        };
        drop(answer);
        if let Some(caller) = caller {
            caller.wake();
        }
    }
}

/// The arrival timer (the only one to wake a slot) marks the answer arrived and wakes the caller.
impl<R: Request> Wake for CallSlot<R> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let caller = {
            let mut state = self.state.lock();
            state.arrived = true;
            state.caller.take()
        };
        if let Some(caller) = caller {
            caller.wake();
        }
    }
}
