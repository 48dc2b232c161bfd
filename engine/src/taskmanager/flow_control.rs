//! Credit-based flow control at a TaskManager's gates (docs/model/network.md#credits-and-backpressure),
//! and what a task's metrics read of it: an input gate's credits, shared by the deliveries that
//! wait for credit and the task that gives it back, and the probe that the record writer and the
//! input gate keep up to date with queued buffers, time waited for credit and busy time.

use std::sync::Arc;
use std::time::Duration;

use madsim::time::Instant;
use tokio::sync::mpsc;

// The engine's lock (`crate::lock` says why).
use crate::lock::Mutex;
use crate::protocol::data::NetworkBuffer;

use super::credit::{BufferKind, InputBufferUsage, InputCredits};

/// Buffers a writer may have queued per remote channel before it blocks: the channel's share of
/// the task's output buffer pool (its backlog is at most this).
pub(super) const OUTPUT_BUFFERS_PER_CHANNEL: usize = 2;

/// An input gate's credits, shared by the deliveries that wait for credit and the task that
/// reads the buffers and so gives credit back.
#[derive(Debug)]
pub(super) struct GateCredits {
    state: Mutex<CreditState>,
    /// Woken whenever credit comes back, a buffer is admitted, or the gate closes.
    changed: tokio::sync::Notify,
}

#[derive(Debug)]
struct CreditState {
    credits: InputCredits,
    /// Sequence number of the next buffer each channel admits: a buffer waiting for credit
    /// cannot be overtaken by the one after it on its channel.
    next_admitted: Vec<u64>,
    closed: bool,
    /// Deliveries waiting for credit (for `changed`): no one to notify while there are none.
    waiting: usize,
}

/// A delivery counted among the waiters while it waits (also when its wait is dropped).
struct WaitingAdmit<'a>(&'a GateCredits);

impl WaitingAdmit<'_> {
    fn new(credits: &GateCredits) -> WaitingAdmit<'_> {
        credits.state.lock().waiting += 1;
        WaitingAdmit(credits)
    }
}

impl Drop for WaitingAdmit<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.waiting -= 1;
    }
}

impl GateCredits {
    pub(super) fn new(channels: u32) -> GateCredits {
        let state = CreditState {
            credits: InputCredits::new(channels as usize),
            next_admitted: vec![0; channels as usize],
            closed: false,
            waiting: 0,
        };
        GateCredits { state: Mutex::new(state), changed: tokio::sync::Notify::new() }
    }

    /// Waits until `channel` has credit for buffer `sequence` (and has admitted every buffer
    /// before it), then takes one of its buffers; `None` if the gate closed meanwhile. The
    /// sender's `backlog` comes with the buffer and may get the channel floating buffers.
    pub(super) async fn admit(&self, channel: u32, sequence: u64, backlog: u32) -> Option<BufferKind> {
        // Nearly every buffer has credit at once: it is admitted without registering for a
        // wake-up it will not wait for (tokio's `Notified::enable`, 0.25% of a run).
        if let Some(admitted) = self.try_admit(channel, sequence, backlog) {
            return admitted;
        }
        let _waiting = WaitingAdmit::new(self);
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(admitted) = self.try_admit(channel, sequence, backlog) {
                return admitted;
            }
            notified.await;
        }
    }

    /// Admits buffer `sequence` of `channel` if it is its turn and the channel has credit
    /// (`Some(None)`: the gate is closed); `None` if it must wait.
    pub(super) fn try_admit(&self, channel: u32, sequence: u64, backlog: u32) -> Option<Option<BufferKind>> {
        let mut state = self.state.lock();
        if state.closed {
            return Some(None);
        }
        if state.next_admitted[channel as usize] == sequence
            && let Some(kind) = state.credits.receive(channel as usize, backlog as usize)
        {
            state.next_admitted[channel as usize] += 1;
            let waiting = state.waiting;
            drop(state);
            if waiting > 0 {
                self.changed.notify_waiters();
            }
            return Some(Some(kind));
        }
        None
    }

    /// The task has read a buffer: its credit goes back.
    pub(super) fn release(&self, channel: u32, kind: BufferKind) {
        let waiting = {
            let mut state = self.state.lock();
            state.credits.release(channel as usize, kind);
            state.waiting
        };
        // Only a waiting delivery listens (most of the time none waits: 0.4% of a run).
        if waiting > 0 {
            self.changed.notify_waiters();
        }
    }

    pub(super) fn close(&self) {
        self.state.lock().closed = true;
        self.changed.notify_waiters();
    }

    pub(super) fn usage(&self) -> InputBufferUsage {
        self.state.lock().credits.usage()
    }
}

/// A task's flow control as its metrics read it (docs/model/network.md#credits-and-backpressure):
/// Flink's `outputQueueLength`, `outPoolUsage`, `inPoolUsage` (exclusive and floating), the
/// backpressure status, `backPressuredTimeMsPerSecond` and `busyTimeMsPerSecond` all derive from
/// it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowControl {
    /// Output buffers queued for remote channels' senders and not yet taken by them. A buffer
    /// handed over in memory to a consumer on the same TaskManager never queues here.
    pub queued_buffers: usize,
    /// The buffers those queues may hold: the task's output pool, 2 per remote channel.
    pub capacity: usize,
    /// Whether the task waits now for credit: it is backpressured.
    pub waiting_for_credit: bool,
    /// Time spent waiting for credit so far.
    pub blocked: Duration,
    /// Time spent processing what the input gate handed over so far (neither waiting for input
    /// nor for credit).
    pub busy: Duration,
    /// How the input gate's exclusive and floating buffers are used now.
    pub input: InputBufferUsage,
}

/// A task's one shared, readable handle on its [`FlowControl`]: the record writer and the input
/// gate keep it up to date, the task's metrics read it.
#[derive(Clone, Debug, Default)]
pub struct FlowControlProbe(Arc<Mutex<ProbeState>>);

#[derive(Debug, Default)]
struct ProbeState {
    /// The remote channels' queues, read when sampled.
    output_queues: Vec<mpsc::WeakSender<NetworkBuffer>>,
    /// Time waited for credit in waits that have ended.
    blocked: Duration,
    /// Since when the task waits for credit, if it does now.
    waiting_since: Option<Instant>,
    /// Busy time in stretches that have ended.
    busy: Duration,
    /// Since when the task handles what the gate last handed it, if it does now, and the time
    /// it had waited for credit by then (waits meanwhile are not busy time).
    busy_since: Option<(Instant, Duration)>,
    /// The input gate's credits, read when sampled.
    input: Option<Arc<GateCredits>>,
}

/// `now - since`, zero when `now` is not later (as `Instant`'s `-`). The probe's stretches
/// mostly start and end at one instant (a buffer shipped on credit, a record handled at once):
/// the comparison spares `Instant`'s subtraction, ~55 instructions each time.
#[inline]
fn since(since: Instant, now: Instant) -> Duration {
    if now > since { now - since } else { Duration::ZERO }
}

impl ProbeState {
    /// Time waited for credit up to `now`, the wait under way included.
    fn blocked(&self, now: Instant) -> Duration {
        self.blocked + self.waiting_since.map_or(Duration::ZERO, |start| since(start, now))
    }

    /// Busy time up to `now`, the stretch under way included.
    fn busy(&self, now: Instant) -> Duration {
        let ongoing = self.busy_since.map_or(Duration::ZERO, |(start, blocked_then)| {
            since(start, now).saturating_sub(self.blocked(now).saturating_sub(blocked_then))
        });
        self.busy + ongoing
    }
}

impl FlowControlProbe {
    /// The task's flow control now: waiting and busy time count up to now, so a wait that
    /// lasts longer than a reporting interval shows in it.
    pub fn read(&self) -> FlowControl {
        let state = self.0.lock();
        let queued_buffers = state
            .output_queues
            .iter()
            .filter_map(mpsc::WeakSender::upgrade)
            .map(|queue| queue.max_capacity() - queue.capacity())
            .sum();
        // Only a task that has waited or worked set a time: only then is the clock read.
        let now = (state.waiting_since.is_some() || state.busy_since.is_some()).then(|| crate::timer::Clock::current().now());
        FlowControl {
            queued_buffers,
            capacity: state.output_queues.len() * OUTPUT_BUFFERS_PER_CHANNEL,
            waiting_for_credit: state.waiting_since.is_some(),
            blocked: now.map_or(state.blocked, |now| state.blocked(now)),
            busy: now.map_or(state.busy, |now| state.busy(now)),
            input: state.input.as_ref().map(|credits| credits.usage()).unwrap_or_default(),
        }
    }

    pub(super) fn observe_output(&self, queues: Vec<mpsc::WeakSender<NetworkBuffer>>) {
        self.0.lock().output_queues = queues;
    }

    pub(super) fn observe_input(&self, credits: Arc<GateCredits>) {
        self.0.lock().input = Some(credits);
    }

    /// The task starts waiting for credit at `now`.
    pub(super) fn start_waiting(&self, now: Instant) {
        self.0.lock().waiting_since = Some(now);
    }

    /// The task's wait, if any, ended at `now`.
    pub(super) fn stop_waiting(&self, now: Instant) {
        let mut state = self.0.lock();
        if let Some(start) = state.waiting_since.take() {
            state.blocked += since(start, now);
        }
    }

    /// The gate hands the task an event at `now`: it is busy until it asks for the next.
    pub(super) fn start_busy(&self, now: Instant) {
        let mut state = self.0.lock();
        let blocked = state.blocked(now);
        state.busy_since = Some((now, blocked));
    }

    /// The task asks its gate for the next event at `now`.
    pub(super) fn stop_busy(&self, now: Instant) {
        let mut state = self.0.lock();
        // A stretch that ended at the instant it began (a buffer handled in one go, as nearly
        // every one is) adds nothing: the sum is skipped (about 80 instructions per buffer).
        if state.busy_since.is_some_and(|(start, _)| now > start) {
            state.busy = state.busy(now);
        }
        state.busy_since = None;
    }
}

