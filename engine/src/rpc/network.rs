//! flinksim's simulated network: one mailbox per bound address, a latency per message, and the
//! faults the simulator injects (loss, delay, partitions).
//!
//! A request is put in its destination's mailbox at once, stamped with the instant it arrives,
//! and one runtime timer wakes the mailbox's reader then (an answer lands in its call's slot the
//! same way: see the `call` module). Messages between two endpoints keep
//! their order (a reliable connection's order), unless a delay fault holds one back. A message to
//! an address nobody has bound, or to a node killed or restarted before it arrives, is lost with
//! the mailbox it went to, as a real connection loses what it had in flight.
//!
//! Why not madsim's connections: a callgrind profile put a message through them at about five
//! SipHash map lookups, an unbounded channel, a boxed stream and a sleep, a quarter of the whole
//! run. The model is the same: madsim's default latency, drawn from the run's seeded RNG.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use madsim::rand::Rng;
use madsim::time::Instant;

use super::{Frame, insert_in_order, pop_due};
use crate::counter::Counter;
use crate::lock::Mutex;
use crate::timer::{Clock, nanos};
use crate::waiting_task::WaitingTask;

/// How long a message takes on a healthy link: madsim's default `send_latency`.
pub const LATENCY: Range<Duration> = Duration::from_millis(1)..Duration::from_millis(10);

// The rpc layer relies on it: an arrival lies at least madsim's shortest sleep ahead, so its timer
// is armed without rounding, and a message sent during a wake-up is never due in that wake-up
// (the mailbox reader looks once, a call's slot trusts its timer). Checked when compiling.
const _: () = assert!(LATENCY.start.as_nanos() >= crate::timer::MIN_SLEEP.as_nanos());

/// Delay and loss on one directed link, drawn per message from the fault's own stream: the
/// `n`-th message's draws are a hash of (`seed`, `n`), so a fault's losses and delays do not
/// depend on what else in the run draws random numbers, nor on the other faults
/// (docs/scenarios.md#faults-draw-from-their-own-streams).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkFault {
    /// Extra delay added to every message on the link.
    pub delay: Option<Range<Duration>>,
    /// Probability in [0, 1] that a message on the link is dropped.
    pub loss_probability: f64,
    /// The seed of the fault's own stream of draws.
    pub seed: u64,
}

impl LinkFault {
    /// The `draw`-th 64-bit draw of the fault's stream.
    fn draw(&self, draw: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(&draw.to_le_bytes(), self.seed)
    }
}

/// A fault on a link and the messages it has judged so far (the position in its stream).
#[derive(Debug)]
struct FaultyLink {
    fault: LinkFault,
    judged: u64,
}

/// The simulated network of one run: every node's mailbox and the faulty links. Each node's
/// [`Rpc`](super::Rpc) holds a clone; the simulator injects faults through another.
#[derive(Clone, Debug, Default)]
pub struct Network {
    shared: Arc<NetworkShared>,
}

#[derive(Debug, Default)]
struct NetworkShared {
    state: Mutex<NetworkState>,
    /// Messages sent (lost ones included), for the run's report.
    messages: Counter,
    /// Mailboxes bound so far: a sender's cached lookup is good while this stays the same.
    binds: AtomicU64,
    /// Whether any link is faulty or cut (most of most runs: none is, and no lookup is needed).
    faults: AtomicBool,
}

#[derive(Debug, Default)]
struct NetworkState {
    faulty: BTreeMap<(IpAddr, IpAddr), FaultyLink>,
    /// Directed links cut by a partition: everything sent on them is lost.
    cut: BTreeSet<(IpAddr, IpAddr)>,
    /// The mailbox bound at each address; a restarted node's bind replaces its old one.
    bound: BTreeMap<SocketAddr, Weak<Mailbox>>,
}

/// One message's latency on a healthy link, drawn from [`LATENCY`], in nanoseconds: one
/// 64-bit draw scaled to the range (a bias of under 1e-12), where `gen_range` over a `Duration`
/// costs five times as much and may draw again and again. Public for the benchmark's madsim
/// floor, which draws its messages' latencies the same way.
pub fn latency(rng: &mut impl Rng) -> u64 {
    const START: u64 = nanos(LATENCY.start);
    const SPAN: u64 = nanos(LATENCY.end) - START;
    let scaled = (u128::from(rng.next_u64()) * u128::from(SPAN)) >> 64;
    START + scaled as u64
}

/// What happens to one message on a link.
enum Fate {
    Lost,
    /// Delivered in order after the link's latency.
    InOrder,
    /// Delivered after this extra delay on top of the latency, overtaken by later messages.
    Delayed(Duration),
}

impl Network {
    /// Sets (or with `None` clears) the fault on the directed link `src → dst`.
    pub fn set(&self, src: IpAddr, dst: IpAddr, fault: Option<LinkFault>) {
        let mut state = self.state();
        match fault {
            Some(fault) => state.faulty.insert((src, dst), FaultyLink { fault, judged: 0 }).map(|_| ()),
            None => state.faulty.remove(&(src, dst)).map(|_| ()),
        };
        self.note_faults(&state);
    }

    /// Keeps the "any faults" flag in step with the fault tables.
    fn note_faults(&self, state: &NetworkState) {
        let faults = !state.cut.is_empty() || !state.faulty.is_empty();
        self.shared.faults.store(faults, Ordering::Relaxed);
    }

    /// Cuts both directions between `a` and `b` (a network partition).
    pub fn partition(&self, a: IpAddr, b: IpAddr) {
        let mut state = self.state();
        state.cut.insert((a, b));
        state.cut.insert((b, a));
        self.note_faults(&state);
    }

    /// Heals a partition between `a` and `b`.
    pub fn heal(&self, a: IpAddr, b: IpAddr) {
        let mut state = self.state();
        state.cut.remove(&(a, b));
        state.cut.remove(&(b, a));
        self.note_faults(&state);
    }

    /// Messages sent so far, lost ones included.
    pub fn messages(&self) -> u64 {
        self.shared.messages.get()
    }

    fn state(&self) -> crate::lock::MutexGuard<'_, NetworkState> {
        self.shared.state.lock()
    }

    /// A new mailbox at `addr`, taking the address over from any earlier one (a killed node's
    /// tasks are dropped lazily, so its restarted self may bind before the old mailbox closes).
    pub(super) fn bind(&self, addr: SocketAddr) -> Arc<Mailbox> {
        let mailbox = Arc::new(Mailbox {
            addr,
            closed: AtomicBool::new(false),
            state: Mutex::default(),
        });
        self.state().bound.insert(addr, Arc::downgrade(&mailbox));
        self.shared.binds.fetch_add(1, Ordering::Relaxed);
        mailbox
    }

    /// Binds `alias` (another port of the same node) to `mailbox`: what is sent to either address
    /// lands in the one mailbox, read by the one reader.
    pub(super) fn bind_alias(&self, alias: SocketAddr, mailbox: &Arc<Mailbox>) {
        self.state().bound.insert(alias, Arc::downgrade(mailbox));
        self.shared.binds.fetch_add(1, Ordering::Relaxed);
    }

    /// The mailbox bound at `addr` now, open or not (the sender checks; see [`Network::binds`]).
    pub(super) fn lookup(&self, addr: SocketAddr) -> Weak<Mailbox> {
        self.state().bound.get(&addr).cloned().unwrap_or_default()
    }

    /// Mailboxes bound so far: a lookup stays good until this moves.
    pub(super) fn binds(&self) -> u64 {
        self.shared.binds.load(Ordering::Relaxed)
    }

    /// When a message sent from `src` to `dst` at `now` arrives, through the link's faults;
    /// `None` if it is lost. `last` is when the previous in-order message on this link
    /// arrives, and is moved on. Every message sent is counted, lost ones included. The latency
    /// is drawn from `rng`, the runtime's generator. Instants in nanoseconds since the runtime
    /// started ([`Clock::now_nanos`]). Inline (see `link_to`); the faults' path is out of line.
    #[inline(always)]
    pub(super) fn arrival(
        &self,
        src: &SocketAddr,
        dst: &SocketAddr,
        now: u64,
        last: &mut u64,
        rng: &mut impl Rng,
    ) -> Option<u64> {
        self.shared.messages.add(1);
        // A healthy network (most of most runs) needs no look at the faults, nor the two IP
        // addresses they are kept by.
        let fate = if self.shared.faults.load(Ordering::Relaxed) {
            self.fate(src.ip(), dst.ip())
        } else {
            Fate::InOrder
        };
        match fate {
            Fate::Lost => None,
            Fate::InOrder => {
                let arrival = (now + latency(rng)).max(*last);
                *last = arrival;
                Some(arrival)
            }
            Fate::Delayed(delay) => Some(now + nanos(delay) + latency(rng)),
        }
    }

    /// What happens to a message from `src` to `dst` while some link is faulty or cut.
    #[inline(never)]
    fn fate(&self, src: IpAddr, dst: IpAddr) -> Fate {
        let mut state = self.state();
        if state.cut.contains(&(src, dst)) {
            return Fate::Lost;
        }
        let Some(link) = state.faulty.get_mut(&(src, dst)) else {
            return Fate::InOrder;
        };
        // Two draws per message, whether or not they are used: the n-th message always reads the
        // same two, so a change of loss does not shift the delays.
        let n = link.judged;
        link.judged += 1;
        let fault = &link.fault;
        let (loss_draw, delay_draw) = (fault.draw(2 * n), fault.draw(2 * n + 1));
        // 53 bits: the precision of an f64 in [0, 1).
        let uniform = (loss_draw >> 11) as f64 / (1u64 << 53) as f64;
        if fault.loss_probability > 0.0 && uniform < fault.loss_probability.min(1.0) {
            return Fate::Lost;
        }
        match &fault.delay {
            Some(range) if !range.is_empty() => {
                let span = u64::try_from((range.end - range.start).as_nanos()).unwrap_or(u64::MAX);
                let scaled = (u128::from(delay_draw) * u128::from(span)) >> 64;
                Fate::Delayed(range.start + Duration::from_nanos(scaled as u64))
            }
            Some(range) if !range.start.is_zero() => Fate::Delayed(range.start),
            _ => Fate::InOrder,
        }
    }
}

/// A message in a mailbox.
pub(super) struct Envelope {
    /// The sender's address.
    pub from: SocketAddr,
    pub frame: Frame,
}

/// The messages on their way to one bound address, by arrival.
pub(super) struct Mailbox {
    addr: SocketAddr,
    /// Set when the reader is gone (its node was killed): later messages are lost.
    closed: AtomicBool,
    state: Mutex<MailboxState>,
}

#[derive(Default)]
struct MailboxState {
    /// Sorted by arrival, then by `put` order (messages arriving at the same instant keep it).
    /// A sorted deque rather than a `BTreeMap`: messages mostly arrive in the order they are
    /// put in, so one goes in near the back and leaves from the front (the map's insert and
    /// remove cost 1% of a run).
    queue: VecDeque<((u64, u64), Envelope)>,
    /// Messages put in so far: the second half of the queue's key.
    put: u64,
    /// The task reading this mailbox, once it waits.
    reader: WaitingTask,
}

impl Mailbox {
    /// The address this mailbox is bound at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether its reader still reads it.
    pub(super) fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Relaxed)
    }

    /// Puts a message in that arrives at `arrival` (in nanoseconds since the runtime started, the
    /// instant `at`), and arms a timer on `clock` that wakes the reader then. The sender's handle
    /// becomes the timer's waker, rather than a clone of it.
    pub(super) fn put(self: Arc<Self>, clock: &Clock, arrival: u64, at: Instant, envelope: Envelope) {
        {
            if !self.is_open() {
                return;
            }
            let mut state = self.state.lock();
            state.put += 1;
            let key = (arrival, state.put);
            insert_in_order(&mut state.queue, key, envelope);
        }
        clock.wake_at_arrival(at, &Waker::from(self));
    }

    /// Takes the first message that has arrived by `now` (in nanoseconds since the runtime
    /// started), moves any others into `more`, and
    /// notes `cx`'s task as the reader to wake at the next arrival; `None` if none has arrived.
    /// A wake-up mostly finds one message: it is handed back, not moved through `more` (a copy
    /// of the envelope and the deque's bookkeeping fewer).
    ///
    /// The reader is noted even when messages are handed over: nothing it does with them can
    /// make another one due at `now` (a message takes at least 1 ms), so a second look to note
    /// it after handling them found nothing, at a lock and a search per wake-up. Inline in the
    /// reader, its one caller: the call's frame and the envelope handed back through it cost
    /// about 20 instructions per wake-up.
    #[inline(always)]
    pub fn take_arrived(
        &self,
        cx: &mut Context<'_>,
        now: u64,
        more: &mut VecDeque<Envelope>,
    ) -> Option<Envelope> {
        let mut state = self.state.lock();
        let first = pop_due(&mut state.queue, now);
        if first.is_some() {
            while let Some(envelope) = pop_due(&mut state.queue, now) {
                more.push_back(envelope);
            }
        }
        state.reader.register(cx.waker());
        first
    }

    /// The reader is gone: drop what is queued and refuse what comes.
    pub fn close(&self) {
        let (queue, reader) = {
            let mut state = self.state.lock();
            self.closed.store(true, Ordering::Relaxed);
            (std::mem::take(&mut state.queue), state.reader.take())
        };
        // Outside the lock: dropping a frame may drop another mailbox's handle.
        drop((queue, reader));
    }
}

/// A mailbox's arrival timers wake its reader.
impl Wake for Mailbox {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // The reader stays noted: it waits again after every wake-up (`take_arrived`).
        self.state.lock().reader.wake_by_ref();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_spread_evenly_over_the_healthy_range() {
        let runtime = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        let draws: Vec<Duration> = runtime.block_on(async {
            let mut rng = madsim::rand::thread_rng();
            (0..100_000).map(|_| Duration::from_nanos(latency(&mut rng))).collect()
        });
        assert!(draws.iter().all(|d| LATENCY.contains(d)), "outside {LATENCY:?}");
        // Ten 0.9 ms buckets, each with about a tenth of the draws.
        let mut buckets = [0u32; 10];
        for d in &draws {
            buckets[((d.as_nanos() - 1_000_000) / 900_000) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| (9_500..10_500).contains(&n)), "{buckets:?}");
    }
}
