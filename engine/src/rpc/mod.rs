//! Request/response messaging between simulated nodes, over flinksim's [`network`].
//!
//! Requests and responses travel as typed payloads (no serialization on the hot path), matched by
//! a call id. Every message takes 1–10 ms of simulated time, so callers batch.
//!
//! Faults are datagram-like, and they are flinksim's (docs/model/network.md#faults): the
//! [`Network`] decides per message whether it is lost, delayed, or cut off by a partition; a
//! message to a dead or restarted node is lost. Callers never see an error before their timeout, as
//! with a real network.

mod call;
pub mod network;

use std::any::Any;
use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use madsim::time::Instant;

use crate::lock::Mutex;
use call::{CallSlot, Slot};
use network::{Envelope, Mailbox};
pub use network::{LinkFault, Network};

/// A request type and the response it gets; `ID` tags it on the wire.
pub trait Request: Send + Sync + 'static {
    /// The answer to this request.
    type Response: Send + Sync + 'static;
    /// A unique tag per request type (see [`request!`](crate::request)).
    const ID: u64;
}

/// Declares `impl Request for $req { type Response = $rsp; }` with an ID hashed from the name.
#[macro_export]
macro_rules! request {
    ($req:ty => $rsp:ty) => {
        impl $crate::rpc::Request for $req {
            type Response = $rsp;
            const ID: u64 = $crate::rpc::tag_of(stringify!($req));
        }
    };
}

/// FNV-1a over a type name: a stable wire tag for a request type.
pub const fn tag_of(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x100_0000_01b3);
        i += 1;
    }
    hash
}

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No answer within the timeout: the peer is dead, partitioned, or the message was lost.
    #[error("no answer from {dst} within {timeout:?}")]
    Timeout {
        /// Where the request went.
        dst: SocketAddr,
        /// How long the caller waited.
        timeout: Duration,
    },
}

/// A call's slot as a request carries it: a [`CallSlot`] of the request type its tag names.
type AnySlot = Arc<dyn Any + Send + Sync>;
type Answer = Pin<Box<dyn PendingAnswer>>;
type Handler = Box<dyn FnMut(AnySlot, SocketAddr) -> Answer + Send>;

/// A request on its way: `tag` names the request type, `slot` holds the request and is where
/// the answer lands.
struct Frame {
    tag: u64,
    slot: AnySlot,
}

/// One node's messaging endpoint: makes calls and serves requests.
#[derive(Clone)]
pub struct Rpc {
    shared: Arc<Shared>,
}

struct Shared {
    network: Network,
    clock: crate::timer::Clock,
    /// When the runtime started: the instants here are kept in nanoseconds since then
    /// ([`Clock::now_nanos`](crate::timer::Clock::now_nanos)), where an `Instant`'s add costs
    /// about 12 instructions, and turned into instants only to arm timers.
    epoch: Instant,
    mailbox: Arc<Mailbox>,
    /// Handlers by request tag: a node serves about ten types, found by a scan, cheaper than
    /// a map's search once per request.
    handlers: Mutex<Vec<(u64, Handler)>>,
    /// This node's links to its peers, and the run's random numbers for their latencies.
    links: Mutex<Links>,
    /// Calls waiting for their response, by call id.
    waiting: Mutex<Waiting>,
    /// No waiting call's deadline and no alarm of the reader's lies before this instant: the
    /// reader looks at each wake-up without the lock (which cost about 40 instructions per
    /// wake-up, at most of which nothing is due). A bound, lowered as calls and alarms are
    /// added and made exact whenever the reader takes the lock; an answered call leaves it.
    next_due: AtomicU64,
}

/// The calls waiting for an answer. The mailbox's reader expires them at their deadlines, so a
/// call that is answered in time (nearly every call) costs no timer: the node keeps one timer
/// armed a little before its earliest deadline, and only then arms one at each deadline about to
/// pass. (madsim fires no timer sooner than 1 ms after it is armed: one timer re-armed from
/// deadline to deadline would end calls less than 1 ms apart up to 1 ms late.)
#[derive(Default)]
struct Waiting {
    next_call: u64,
    /// Each call's answer slot, sorted by deadline (in nanoseconds since the runtime started, as
    /// every instant here) and call id. A sorted deque rather than a
    /// `BTreeMap`: calls mostly share one timeout, so a new one goes at the back and the
    /// answered ones leave from near the front (the map's insert and remove cost 2% of a run).
    deadlines: VecDeque<((u64, u64), Arc<dyn Slot>)>,
    /// The instants timers are armed to wake the reader at, still ahead.
    alarms: BTreeSet<u64>,
}

/// Inserts `value` at `key` into `queue`, kept sorted by key. The keys here are an instant (in
/// nanoseconds since the runtime started) and a
/// sequence number that grows with every insert, so a new entry sorts after every entry at its
/// instant, and mostly at the back: it is pushed there without the search and the insert's
/// shifting (about 300 instructions per call or message).
///
/// Inline, with the search out of line: as one call (the compiler's choice even when marked
/// `#[inline]`) it cost about 50 instructions per call, of which a push at the back is a third.
#[inline(always)]
fn insert_in_order<V>(queue: &mut VecDeque<((u64, u64), V)>, key: (u64, u64), value: V) {
    if queue.back().is_none_or(|(last, _)| *last <= key) {
        queue.push_back((key, value));
    } else {
        insert_before_later(queue, key, value);
    }
}

/// [`insert_in_order`] for an entry that sorts before the last one.
#[inline(never)]
fn insert_before_later<V>(queue: &mut VecDeque<((u64, u64), V)>, key: (u64, u64), value: V) {
    let at = queue.partition_point(|(other, _)| *other <= key);
    queue.insert(at, (key, value));
}

/// The first entry of a sorted `queue` if its instant has come by `now`, taken out.
fn pop_due<V>(queue: &mut VecDeque<((u64, u64), V)>, now: u64) -> Option<V> {
    match queue.front() {
        Some(&((at, _), _)) if at <= now => queue.pop_front().map(|(_, value)| value),
        _ => None,
    }
}

/// The calls ended by their deadline (to be closed outside the lock) and the timers to arm next.
type Expiry = (Vec<Arc<dyn Slot>>, Vec<u64>);

/// How long before the earliest deadline the reader wakes to arm a timer at each deadline due
/// within two leads, in nanoseconds: 2 ms, more than madsim's 1 ms minimum.
const EXPIRY_LEAD: u64 = 2_000_000;

impl Waiting {
    /// Adds a call ending at `deadline`; returns its id and the timers to arm.
    fn add(&mut self, deadline: u64, slot: Arc<dyn Slot>, now: u64) -> (u64, Vec<u64>) {
        self.next_call += 1;
        let call = self.next_call;
        // Nothing to arm when an earlier deadline lies beyond two leads: a timer wakes the reader
        // a lead before that one, in time to arm this one's. (Calls mostly share one timeout, so
        // a new call's deadline is nearly always the latest.)
        let horizon = now + 2 * EXPIRY_LEAD;
        let covered = self
            .deadlines
            .front()
            .is_some_and(|&((first, _), _)| first > horizon && first <= deadline);
        // Mostly at the back: calls share one timeout.
        insert_in_order(&mut self.deadlines, (deadline, call), slot);
        if covered || self.nothing_to_plan(horizon) {
            return (call, Vec::new());
        }
        (call, self.plan(now))
    }

    /// Whether [`plan`](Self::plan) would arm nothing because the earliest deadline lies beyond
    /// `horizon` (two leads from now) and a timer already wakes the reader a lead before it or
    /// sooner: the common case of a call added to a node whose other calls are all answered
    /// (half of all calls), told without the plan's search and list (about 100 instructions).
    fn nothing_to_plan(&self, horizon: u64) -> bool {
        self.deadlines.front().is_some_and(|&((first, _), _)| {
            first > horizon && self.alarms.first().is_some_and(|&alarm| alarm <= first - EXPIRY_LEAD)
        })
    }

    /// The earliest deadline or alarm; `u64::MAX` if there is none.
    fn earliest(&self) -> u64 {
        let deadline = self.deadlines.front().map_or(u64::MAX, |&((first, _), _)| first);
        let alarm = self.alarms.first().copied().unwrap_or(u64::MAX);
        deadline.min(alarm)
    }

    /// Forgets `call` (answered, or gone already) if it still waits. Inline in each call, the
    /// search out of line: as a call, its frame cost about 14 instructions per call.
    #[inline(always)]
    fn forget(&mut self, call: u64, deadline: u64) {
        // Mostly the earliest: a node mostly has one call waiting, or gets its answers in the
        // order it called. Taken from the front without the search and the general removal.
        if self.deadlines.front().is_some_and(|(first, _)| *first == (deadline, call)) {
            self.deadlines.pop_front();
            return;
        }
        self.forget_later(call, deadline);
    }

    /// [`forget`](Self::forget) for a call behind the earliest.
    #[inline(never)]
    fn forget_later(&mut self, call: u64, deadline: u64) {
        if let Ok(at) = self.deadlines.binary_search_by(|(key, _)| key.cmp(&(deadline, call))) {
            self.deadlines.remove(at);
        }
    }

    /// Removes the calls whose deadline has passed (returned, to be closed outside the lock,
    /// which tells each caller); says which timers to arm next. `None` when no deadline and no
    /// alarm is due, as at most wake-ups (an arrival): nothing to hand back, and no lists made
    /// and dropped for it.
    fn expire(&mut self, now: u64) -> Option<Expiry> {
        let due = |at: u64| at <= now;
        if !self.deadlines.front().is_some_and(|&((first, _), _)| due(first))
            && !self.alarms.first().is_some_and(|&alarm| due(alarm))
        {
            return None;
        }
        let mut expired = Vec::new();
        while let Some(slot) = pop_due(&mut self.deadlines, now) {
            expired.push(slot);
        }
        let mut fired = false;
        while self.alarms.first().is_some_and(|&alarm| alarm <= now) {
            self.alarms.pop_first();
            fired = true;
        }
        // Until an alarm fires or a call expires, the timers armed still cover every deadline
        // (a call added meanwhile planned for itself): most wake-ups have nothing to plan.
        let alarms = if fired || !expired.is_empty() { self.plan(now) } else { Vec::new() };
        Some((expired, alarms))
    }

    /// The timers to arm so that every deadline is met exactly: one at each deadline due within
    /// two leads, and one a lead before the next deadline unless a timer wakes the reader sooner.
    fn plan(&mut self, now: u64) -> Vec<u64> {
        let mut arm = Vec::new();
        let horizon = now + 2 * EXPIRY_LEAD;
        // Mostly no deadline is that close: then the search is skipped.
        let within = if self.deadlines.front().is_none_or(|&((first, _), _)| first > horizon) {
            0
        } else {
            self.deadlines.partition_point(|&((deadline, _), _)| deadline <= horizon)
        };
        for &((deadline, _), _) in self.deadlines.range(..within) {
            if self.alarms.insert(deadline) {
                arm.push(deadline);
            }
        }
        if let Some(&((next, _), _)) = self.deadlines.get(within) {
            let wake = next - EXPIRY_LEAD;
            if self.alarms.first().is_none_or(|&alarm| alarm > wake) {
                self.alarms.insert(wake);
                arm.push(wake);
            }
        }
        arm
    }
}

impl Rpc {
    /// Binds the node's mailbox at `addr` (taking the address over from a killed incarnation of
    /// the node) and starts reading it. Call it on the node that owns `addr`.
    pub fn bind(addr: SocketAddr, network: Network) -> Self {
        let mailbox = network.bind(addr);
        let clock = crate::timer::Clock::current();
        let shared = Arc::new(Shared {
            network,
            epoch: clock.epoch(),
            clock,
            mailbox: mailbox.clone(),
            handlers: Mutex::default(),
            links: Mutex::new(Links { peers: Vec::new(), rng: madsim::rand::thread_rng() }),
            waiting: Mutex::default(),
            next_due: AtomicU64::new(u64::MAX),
        });
        madsim::task::spawn(read_mailbox(Arc::downgrade(&shared), mailbox));
        Rpc { shared }
    }

    /// Also receives what is sent to `alias`, another port of this node (the JobManager's REST
    /// port): one mailbox and one reader serve both, so a second port adds no task to the node.
    pub fn answer_also_at(&self, alias: SocketAddr) {
        self.shared.network.bind_alias(alias, &self.shared.mailbox);
    }

    /// This endpoint's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.mailbox.addr()
    }

    /// Sends `request` to `dst` and waits at most `timeout` for the answer.
    pub async fn call<R: Request>(
        &self,
        dst: SocketAddr,
        request: R,
        timeout: Duration,
    ) -> Result<R::Response, RpcError> {
        let now = self.shared.clock.now_nanos();
        let deadline = now.saturating_add(crate::timer::nanos(timeout));
        let slot = CallSlot::new(deadline, request);
        let call = self.shared.wait_for(deadline, slot.clone(), now);
        self.shared.send_request(dst, now, Frame { tag: R::ID, slot: slot.clone() });
        // The slot is closed at the deadline (or when the node's reader dies).
        let answer = std::future::poll_fn(|cx| slot.poll_answer(cx)).await;
        match answer {
            Some(response) => {
                self.shared.waiting.lock().forget(call, deadline);
                Ok(response)
            }
            None => Err(RpcError::Timeout { dst, timeout }),
        }
    }

    /// Sends `request` to `dst` until an answer comes, waiting `per_try` for each, and gives up
    /// (`None`) once `give_up_after` has passed: a message that must get through a lossy
    /// network, as over a reliable connection.
    pub async fn call_until_answered<R: Request + Clone>(
        &self,
        dst: SocketAddr,
        request: R,
        per_try: Duration,
        give_up_after: Duration,
    ) -> Option<R::Response> {
        let give_up = self.shared.clock.now() + give_up_after;
        while self.shared.clock.now() < give_up {
            if let Ok(response) = self.call(dst, request.clone(), per_try).await {
                return Some(response);
            }
        }
        None
    }

    /// Serves requests of type `R`. An answer that is ready at once goes back at once; a slow
    /// one (a long-polling fetch) is polled again on the node's later wake-ups, so it holds up
    /// no other request.
    pub fn serve<R, F, Fut>(&self, mut handler: F)
    where
        R: Request,
        F: FnMut(R, SocketAddr) -> Fut + Send + 'static,
        Fut: Future<Output = R::Response> + Send + 'static,
    {
        let erased: Handler = Box::new(move |slot: AnySlot, from| {
            let slot = slot
                .downcast::<CallSlot<R>>()
                .expect("a request tag is only ever used for its request type");
            let request =
                slot.take_request().expect("a request is delivered once, to the one node it went to");
            let reply = Arc::downgrade(&slot);
            // One box holds the handler's future and erases its type. The box comes first and
            // the future is built in it: built first and then moved into the box, the future
            // (about 950 bytes for a produce or a fetch) was copied whole per request.
            let boxed = Box::<Erased<Fut, R>>::new_uninit();
            let answer = Erased { answer: handler(request, from), caller: from, reply };
            Box::into_pin(Box::write(boxed, answer) as Box<dyn PendingAnswer>)
        });
        let mut handlers = self.shared.handlers.lock();
        // A second `serve` of a type replaces its handler, as a map's insert would.
        match handlers.iter_mut().find(|(tag, _)| *tag == R::ID) {
            Some((_, handler)) => *handler = erased,
            None => handlers.push((R::ID, erased)),
        }
    }
}

/// A request's answer being worked out, its type erased.
trait PendingAnswer: Send {
    /// Polls the answer and, once it is ready, sends it back to its call through `shared`'s
    /// link to the caller (the clock reading `now`); ready once sent (or lost).
    fn poll_send(self: Pin<&mut Self>, cx: &mut Context<'_>, shared: &Shared, now: u64) -> Poll<()>;
}

pin_project_lite::pin_project! {
    /// A handler's future for a request of type `R`, with where its answer goes: it lands in
    /// the call's typed slot as it is, without a box of its own.
    struct Erased<F, R: Request> {
        #[pin]
        answer: F,
        // The caller's address: the answer takes the link back to it.
        caller: SocketAddr,
        reply: Weak<CallSlot<R>>,
    }
}

impl<F, R> PendingAnswer for Erased<F, R>
where
    F: Future<Output = R::Response> + Send,
    R: Request,
{
    fn poll_send(self: Pin<&mut Self>, cx: &mut Context<'_>, shared: &Shared, now: u64) -> Poll<()> {
        let this = self.project();
        let answer = std::task::ready!(this.answer.poll(cx));
        shared.send_answer(*this.caller, this.reply, now, answer);
        Poll::Ready(())
    }
}

/// Reads the node's mailbox until the node dies (or its `Rpc` is dropped), handing each message
/// to its handler or its waiting caller.
async fn read_mailbox(shared: Weak<Shared>, mailbox: Arc<Mailbox>) {
    /// When the reader ends, also when a kill drops it: closes the mailbox, ends the calls still
    /// waiting (a caller on another node would otherwise wait for an expiry that never comes),
    /// and drops the handlers. A handler often holds its node's `Rpc` (to call out while it
    /// answers), so the handlers and `Shared` hold each other: left in place, that cycle kept the
    /// node's whole state, and with it the run's trace and clock, alive after the run ended.
    struct Close(Arc<Mailbox>, Weak<Shared>);
    impl Drop for Close {
        fn drop(&mut self) {
            self.0.close();
            if let Some(shared) = self.1.upgrade() {
                let slots = std::mem::take(&mut shared.waiting.lock().deadlines);
                for (_, slot) in slots {
                    slot.close();
                }
                // Taken out under the lock and dropped after it: a handler's drop may drop the
                // last other `Rpc` of this node.
                let mut handlers = std::mem::take(&mut *shared.handlers.lock());
                // Dropped in tag order, as from the map they were once kept in.
                handlers.sort_by_key(|(tag, _)| *tag);
                drop(handlers);
            }
        }
    }
    let mailbox = Close(mailbox, shared.clone());
    let mut arrived = VecDeque::new();
    // Answers still being worked out (a long-polling fetch): polled by this task, only after
    // their own wake-up, rather than each in a task of its own, which madsim never frees (its
    // node keeps a record of every task it spawned).
    let mut answering: Vec<Answering> = Vec::new();
    // Set while the reader runs: an answer woken meanwhile (a fetch woken by the produce just
    // handled) is answered before the reader returns, without waking the reader again.
    let busy = Arc::new(AtomicBool::new(false));
    // The wake-ups of answers that were sent, which nothing else holds, each with its waker:
    // the next requests' answers take them over rather than allocating their own (one
    // allocation and four reference counts less per request). More than one: a held answer
    // keeps the one it took until it is sent, and the requests meanwhile need another.
    let mut spares: Vec<Spare> = Vec::new();
    std::future::poll_fn(|cx| {
        let Some(shared) = shared.upgrade() else {
            return Poll::Ready(());
        };
        busy.store(true, Ordering::Relaxed);
        // Every wake-up (an arrival, an answer's progress, the calls' timer) checks the deadlines.
        let now = shared.clock.now_nanos();
        shared.expire_calls(now);
        for round in 1.. {
            let finished = |pending: &mut Answering| pending.wake.take() && shared.try_answer(pending, now);
            for done in answering.extract_if(.., finished) {
                spares.extend(done.into_spare_wake());
            }
            // Only the first round finds messages: one sent meanwhile takes at least 1 ms, and
            // no other task runs in between (a look in each later round cost about 60
            // instructions, 24,000 times in 5 simulated minutes).
            if round == 1
                && let Some(first) = mailbox.0.take_arrived(cx, now, &mut arrived)
            {
                // One place for the message in hand, refilled from the others: the first taken
                // out of an `Option` and chained with the others cost a copy of each envelope.
                let mut next = Some(first);
                while let Some(envelope) = next {
                    let wake = spares
                        .pop()
                        .filter(|(wake, _)| wake.reader.will_wake(cx.waker()))
                        .unwrap_or_else(|| {
                            let wake = AnswerWake::new(cx.waker(), &busy);
                            let waker = Waker::from(wake.clone());
                            (wake, waker)
                        });
                    if let Some(mut pending) = shared.dispatch(envelope, wake) {
                        if !shared.try_answer(&mut pending, now) {
                            answering.push(pending);
                        } else {
                            spares.extend(pending.into_spare_wake());
                        }
                    }
                    next = arrived.pop_front();
                }
            }
            if !answering.iter().any(|pending| pending.wake.is_woken()) {
                break;
            }
            // An answer that keeps waking itself (a yield) gets its next poll on the next wake-up.
            if round == 4 {
                cx.waker().wake_by_ref();
                break;
            }
        }
        busy.store(false, Ordering::Relaxed);
        Poll::Pending
    })
    .await
}

/// A request being answered: its answer, which knows where it goes.
struct Answering {
    answer: Answer,
    /// What the answer's future wakes: it marks the answer for a poll, then wakes the reader.
    wake: Arc<AnswerWake>,
    /// `wake` as a waker, made once rather than on every poll.
    waker: Waker,
}

impl Answering {
    /// The answer's wake-up and its waker, once its answer is sent, for the next request to
    /// take over; `None` if its future left a clone of the waker somewhere (it could still wake
    /// it). Kept with its waker: making one per request and dropping it cost two atomic
    /// reference counts, which cost more time than the few instructions they are. Inline in the
    /// reader (see [`Shared::dispatch`]).
    #[inline(always)]
    fn into_spare_wake(self) -> Option<Spare> {
        let Answering { answer, wake, waker, .. } = self;
        drop(answer);
        // Held twice: here and by the waker.
        (Arc::strong_count(&wake) == 2 && Arc::weak_count(&wake) == 0).then(|| {
            wake.woken.store(false, Ordering::Relaxed);
            (wake, waker)
        })
    }
}

/// An answer's wake-up with its waker, free for the next request's answer.
type Spare = (Arc<AnswerWake>, Waker);

/// Wakes the mailbox's reader for one answer, and notes that this answer is the one to poll:
/// a node holding many answers (a broker with several fetches held) polls only those woken.
struct AnswerWake {
    woken: AtomicBool,
    reader: Waker,
    /// The reader is running, and looks at every woken answer before it returns.
    reader_busy: Arc<AtomicBool>,
}

impl AnswerWake {
    /// A wake-up for an answer that `reader` (the mailbox's reader, busy while `reader_busy`)
    /// polls.
    fn new(reader: &Waker, reader_busy: &Arc<AtomicBool>) -> Arc<AnswerWake> {
        Arc::new(AnswerWake {
            woken: AtomicBool::new(false),
            reader: reader.clone(),
            reader_busy: reader_busy.clone(),
        })
    }

    /// Whether the answer was woken since the last poll; clears the mark. A load and a store,
    /// not `swap`'s locked instruction: only the run's one thread touches it.
    fn take(&self) -> bool {
        let woken = self.woken.load(Ordering::Relaxed);
        if woken {
            self.woken.store(false, Ordering::Relaxed);
        }
        woken
    }

    /// Whether the answer was woken since the last poll.
    fn is_woken(&self) -> bool {
        self.woken.load(Ordering::Relaxed)
    }
}

impl std::task::Wake for AnswerWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Relaxed);
        if !self.reader_busy.load(Ordering::Relaxed) {
            self.reader.wake_by_ref();
        }
    }
}

impl Shared {
    /// Starts answering a request; `None` if nobody serves its type here. Inline in the mailbox
    /// reader, its one caller: as a call, its frame and the envelope passed to it cost about 20
    /// instructions per request.
    #[inline(always)]
    fn dispatch(&self, envelope: Envelope, (wake, waker): Spare) -> Option<Answering> {
        let Envelope { from, frame: Frame { tag, slot } } = envelope;
        let answer = {
            let mut handlers = self.handlers.lock();
            // Nobody serving it here: lost, as at an unbound port.
            let (_, handler) = handlers.iter_mut().find(|(served, _)| *served == tag)?;
            handler(slot, from)
        };
        Some(Answering { answer, wake, waker })
    }

    /// Polls an answer (most are ready at once) and sends it if it is ready, the clock reading
    /// `now`; `true` if sent.
    fn try_answer(&self, pending: &mut Answering, now: u64) -> bool {
        pending.answer.as_mut().poll_send(&mut Context::from_waker(&pending.waker), self, now).is_ready()
    }

    /// Adds a call waiting for its answer until `deadline` (the clock reading `now`), arms the
    /// timers it needs, and returns its id. Not generic, unlike the call itself: one copy of
    /// this code serves every request type. Mostly there is no timer to arm, and the list is
    /// only looked at, not iterated.
    fn wait_for(&self, deadline: u64, slot: Arc<dyn Slot>, now: u64) -> u64 {
        let (call, alarms) = self.waiting.lock().add(deadline, slot, now);
        self.lower_next_due(deadline);
        if !alarms.is_empty() {
            for at in alarms {
                self.lower_next_due(at);
                self.wake_reader_at(now, at);
            }
        }
        call
    }

    /// Keeps [`next_due`](Self::next_due) at or before `at`, a deadline or alarm just added.
    fn lower_next_due(&self, at: u64) {
        if at < self.next_due.load(Ordering::Relaxed) {
            self.next_due.store(at, Ordering::Relaxed);
        }
    }

    /// Ends the calls whose deadline has passed, and keeps a timer armed for the next one.
    /// Inline, the common case: nothing is due.
    #[inline]
    fn expire_calls(&self, now: u64) {
        if now >= self.next_due.load(Ordering::Relaxed) {
            self.expire_due_calls(now);
        }
    }

    /// [`expire_calls`](Self::expire_calls) once a deadline or an alarm may be due.
    fn expire_due_calls(&self, now: u64) {
        let expiry = {
            let mut waiting = self.waiting.lock();
            let expiry = waiting.expire(now);
            self.next_due.store(waiting.earliest(), Ordering::Relaxed);
            expiry
        };
        let Some((expired, alarms)) = expiry else {
            return;
        };
        for slot in expired {
            slot.close(); // the caller wakes to a timeout
        }
        for at in alarms {
            self.wake_reader_at(now, at);
        }
    }

    /// Arms a timer that wakes this node's mailbox reader at `at` (the clock reads `now`).
    fn wake_reader_at(&self, now: u64, at: u64) {
        self.clock.wake_at(self.instant(now), self.instant(at), &Waker::from(self.mailbox.clone()));
    }

    /// The instant `nanos` after the runtime started.
    fn instant(&self, nanos: u64) -> Instant {
        self.epoch + Duration::from_nanos(nanos)
    }

    /// Sends a request to whoever is bound at `dst` now (as the clock reads `now`, read by the
    /// caller in the same poll: a second reading cost about 40 instructions); lost if nobody is.
    fn send_request(&self, dst: SocketAddr, now: u64, frame: Frame) {
        let (peer, arrival) = {
            let Links { peers, rng } = &mut *self.links.lock();
            let link = link_to(peers, dst, now);
            let Some(peer) = link.peer(&self.network) else {
                return;
            };
            (peer, link.arrival(&self.network, &self.mailbox.addr(), now, rng))
        };
        if let Some(arrival) = arrival {
            let at = self.instant(arrival);
            peer.put(&self.clock, arrival, at, Envelope { from: self.mailbox.addr(), frame });
        }
    }

    /// Sends an answer back to its call, the clock reading `now` (the reader's reading for
    /// this wake-up); lost if the call has ended (the caller timed out, died or restarted) by
    /// the time it arrives.
    fn send_answer<R: Request>(&self, caller: SocketAddr, reply: &Weak<CallSlot<R>>, now: u64, answer: R::Response) {
        let Some(slot) = reply.upgrade() else {
            return;
        };
        if let Some(arrival) = self.arrival(caller, now) {
            slot.land(&self.clock, arrival, self.instant(arrival), answer);
        }
    }

    /// When a message sent `now` to `dst` arrives, through the link's faults; `None` if lost.
    /// Inline in each answer's sending: as a call, its frame cost about 20 instructions per
    /// answer.
    #[inline(always)]
    fn arrival(&self, dst: SocketAddr, now: u64) -> Option<u64> {
        let Links { peers, rng } = &mut *self.links.lock();
        link_to(peers, dst, now).arrival(&self.network, &self.mailbox.addr(), now, rng)
    }
}

/// One node's links.
struct Links {
    /// A handful: found by a scan.
    peers: Vec<Link>,
    /// The runtime's random number generator, held: `madsim::rand::thread_rng()` looks the
    /// runtime up on every call (twice per call answered).
    rng: madsim::rand::GlobalRng,
}

/// One node's link to a peer address.
struct Link {
    peer_addr: SocketAddr,
    /// When the last in-order message on it arrives (in nanoseconds since the runtime started):
    /// a link keeps its messages' order.
    last: u64,
    /// The mailbox bound at the peer's address, as looked up when the network had seen `binds`
    /// binds: a bind (a node starting or restarting) makes every lookup stale.
    peer: Weak<Mailbox>,
    binds: Option<u64>,
}

impl Link {
    /// The open mailbox bound at the peer's address, looked up again after any bind.
    fn peer(&mut self, network: &Network) -> Option<Arc<Mailbox>> {
        let binds = network.binds();
        if self.binds != Some(binds) {
            self.peer = network.lookup(self.peer_addr);
            self.binds = Some(binds);
        }
        self.peer.upgrade().filter(|peer| peer.is_open())
    }

    /// When a message sent on it from `from` at `now` arrives; `None` if it is lost.
    #[inline(always)]
    fn arrival(
        &mut self,
        network: &Network,
        from: &SocketAddr,
        now: u64,
        rng: &mut madsim::rand::GlobalRng,
    ) -> Option<u64> {
        network.arrival(from, &self.peer_addr, now, &mut self.last, rng)
    }
}

/// The link to `dst`, new (its last message arriving `now`) if there was none. Inline, as is
/// a message's arrival on it, with a new link's making out of line: as calls, the two cost
/// about 35 instructions per message.
#[inline(always)]
fn link_to(links: &mut Vec<Link>, dst: SocketAddr, now: u64) -> &mut Link {
    let index = match links.iter().position(|link| link.peer_addr == dst) {
        Some(index) => index,
        None => new_link(links, dst, now),
    };
    &mut links[index]
}

/// Adds a link to `dst`, its last message arriving `now`; returns its place.
#[inline(never)]
fn new_link(links: &mut Vec<Link>, dst: SocketAddr, now: u64) -> usize {
    links.push(Link { peer_addr: dst, last: now, peer: Weak::new(), binds: None });
    links.len() - 1
}

/// Creates a node called `name` at `addr`'s IP and binds an `Rpc` at `addr` on it (tests only).
#[cfg(test)]
pub(crate) async fn bind_on_new_node(
    name: &str,
    addr: SocketAddr,
    network: &Network,
) -> (madsim::runtime::NodeHandle, Rpc) {
    let node = madsim::runtime::Handle::current().create_node().name(name).ip(addr.ip()).build();
    let network = network.clone();
    let rpc = node.spawn(async move { Rpc::bind(addr, network) }).await.unwrap();
    (node, rpc)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use madsim::runtime::{Handle, Runtime};
    use madsim::time::{Instant, sleep};

    use super::*;
    use std::sync::Mutex;

    struct Echo(u32);
    struct Slow(u32);
    crate::request!(Echo => u32);
    crate::request!(Slow => u32);

    const SERVER: &str = "10.0.0.1:7000";
    const CLIENT: &str = "10.0.0.2:7000";
    const TIMEOUT: Duration = Duration::from_secs(1);

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Starts the `server` node: `Echo(n)` answers n + 1 at once, `Slow(n)` after 500 ms.
    fn start_server(network: &Network) -> madsim::task::NodeId {
        let network = network.clone();
        Handle::current()
            .create_node()
            .name("server")
            .ip(addr(SERVER).ip())
            .init(move || {
                let network = network.clone();
                async move {
                    let rpc = Rpc::bind(addr(SERVER), network);
                    rpc.serve(|Echo(n), _| async move { n + 1 });
                    rpc.serve(|Slow(n), _| async move {
                        sleep(Duration::from_millis(500)).await;
                        n * 2
                    });
                    std::future::pending::<()>().await;
                }
            })
            .build()
            .id()
    }

    /// Runs `test` on a `client` node bound at CLIENT.
    fn with_client<F, Fut>(test: F)
    where
        F: FnOnce(Rpc, Network, madsim::task::NodeId) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Runtime::with_seed_and_config(7, madsim::Config::default()).block_on(async move {
            let network = Network::default();
            let server = start_server(&network);
            let client =
                Handle::current().create_node().name("client").ip(addr(CLIENT).ip()).build();
            client
                .spawn(async move {
                    sleep(Duration::from_millis(10)).await; // the server binds
                    let rpc = Rpc::bind(addr(CLIENT), network.clone());
                    test(rpc, network, server).await
                })
                .await
                .unwrap();
        });
    }

    /// How long `call` took, and what it gave.
    async fn timed<T>(call: impl Future<Output = T>) -> (T, Duration) {
        let start = Instant::now();
        let out = call.await;
        (out, start.elapsed())
    }

    #[test]
    fn a_slow_answer_holds_up_no_other_request() {
        with_client(|rpc, _, _| async move {
            let slow = timed(rpc.call(addr(SERVER), Slow(21), TIMEOUT));
            let fast = async {
                sleep(Duration::from_millis(20)).await;
                timed(rpc.call(addr(SERVER), Echo(1), TIMEOUT)).await
            };
            let ((slow, slow_took), (fast, fast_took)) = tokio::join!(slow, fast);
            assert_eq!((slow.unwrap(), fast.unwrap()), (42, 2));
            assert!(slow_took >= Duration::from_millis(500), "{slow_took:?}");
            // Two messages of 1–10 ms each, behind nothing.
            assert!(fast_took <= Duration::from_millis(25), "{fast_took:?}");
        });
    }

    #[test]
    fn a_held_answer_is_polled_only_when_it_is_woken() {
        struct Held;
        crate::request!(Held => u32);
        Runtime::with_seed_and_config(7, madsim::Config::default()).block_on(async {
            let network = Network::default();
            let polls = Arc::new(std::sync::atomic::AtomicU32::new(0));
            let release = Arc::new(tokio::sync::Notify::new());
            let (counted, released) = (polls.clone(), release.clone());
            let (_server, rpc) = bind_on_new_node("server", addr(SERVER), &network).await;
            rpc.serve(|Echo(n), _| async move { n + 1 });
            rpc.serve(move |Held, _| {
                let (polls, release) = (counted.clone(), released.clone());
                let mut notified = Box::pin(async move { release.notified().await });
                std::future::poll_fn(move |cx| {
                    polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    notified.as_mut().poll(cx).map(|()| 7)
                })
            });
            let (_client, client) = bind_on_new_node("client", addr(CLIENT), &network).await;
            let held = madsim::task::spawn({
                let client = client.clone();
                async move { client.call(addr(SERVER), Held, TIMEOUT).await }
            });
            sleep(Duration::from_millis(20)).await;
            // Twenty other requests wake the server's reader; the held answer sleeps through them.
            for n in 0..20 {
                assert_eq!(client.call(addr(SERVER), Echo(n), TIMEOUT).await.unwrap(), n + 1);
            }
            assert_eq!(polls.load(std::sync::atomic::Ordering::Relaxed), 1, "polled without a wake-up");
            release.notify_waiters();
            assert_eq!(held.await.unwrap().unwrap(), 7);
            assert_eq!(polls.load(std::sync::atomic::Ordering::Relaxed), 2);
        });
    }

    #[test]
    fn an_answer_that_keeps_yielding_is_answered_without_stalling_the_reader() {
        struct Yielding(u32);
        crate::request!(Yielding => u32);
        Runtime::with_seed_and_config(7, madsim::Config::default()).block_on(async {
            let network = Network::default();
            let (_server, rpc) = bind_on_new_node("server", addr(SERVER), &network).await;
            rpc.serve(|Echo(n), _| async move { n + 1 });
            // Wakes itself and returns pending, 20 times over, before answering.
            rpc.serve(|Yielding(n), _| {
                let mut left = 20;
                std::future::poll_fn(move |cx| {
                    if left == 0 {
                        return Poll::Ready(n);
                    }
                    left -= 1;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                })
            });
            let (_client, client) = bind_on_new_node("client", addr(CLIENT), &network).await;
            let (yielded, echoed) = tokio::join!(
                client.call(addr(SERVER), Yielding(5), TIMEOUT),
                client.call(addr(SERVER), Echo(1), TIMEOUT)
            );
            assert_eq!((yielded.unwrap(), echoed.unwrap()), (5, 2));
        });
    }

    #[test]
    fn an_answer_that_would_arrive_after_the_deadline_is_lost() {
        with_client(|rpc, network, _| async move {
            let (client, server) = (addr(CLIENT).ip(), addr(SERVER).ip());
            // Answers take 300-400 ms: a 1 s call gets its answer, a 200 ms one times out at 200 ms.
            let delay = Duration::from_millis(300)..Duration::from_millis(400);
            network.set(server, client, Some(LinkFault { delay: Some(delay), loss_probability: 0.0, seed: 0 }));
            let (answer, took) = timed(rpc.call(addr(SERVER), Echo(1), TIMEOUT)).await;
            assert_eq!(answer.unwrap(), 2);
            assert!(took >= Duration::from_millis(300), "{took:?}");
            let short = Duration::from_millis(200);
            let (answer, took) = timed(rpc.call(addr(SERVER), Echo(2), short)).await;
            assert!(answer.is_err(), "{answer:?}");
            assert!(took >= short && took < short + Duration::from_micros(50), "{took:?}");
        });
    }

    #[test]
    fn a_partition_loses_every_message_until_it_heals() {
        with_client(|rpc, network, _| async move {
            assert_eq!(rpc.call(addr(SERVER), Echo(1), TIMEOUT).await.unwrap(), 2);
            network.partition(addr(CLIENT).ip(), addr(SERVER).ip());
            let (result, took) = timed(rpc.call(addr(SERVER), Echo(2), TIMEOUT)).await;
            assert!(matches!(result, Err(RpcError::Timeout { .. })), "{result:?}");
            assert!(took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(5), "{took:?}");
            network.heal(addr(SERVER).ip(), addr(CLIENT).ip());
            assert_eq!(rpc.call(addr(SERVER), Echo(3), TIMEOUT).await.unwrap(), 4);
        });
    }

    #[test]
    fn link_faults_delay_or_drop_the_messages_of_one_direction() {
        with_client(|rpc, network, _| async move {
            let (client, server) = (addr(CLIENT).ip(), addr(SERVER).ip());
            let delay = Duration::from_millis(200)..Duration::from_millis(300);
            network.set(
                server,
                client,
                Some(LinkFault { delay: Some(delay), loss_probability: 0.0, seed: 0 }),
            );
            let (answer, took) = timed(rpc.call(addr(SERVER), Echo(1), TIMEOUT)).await;
            assert_eq!(answer.unwrap(), 2);
            assert!(took >= Duration::from_millis(200), "{took:?}");
            // Every answer lost: the request arrives, the caller still only times out.
            network.set(server, client, Some(LinkFault { delay: None, loss_probability: 1.0, seed: 0 }));
            let (answer, took) = timed(rpc.call(addr(SERVER), Echo(2), TIMEOUT)).await;
            assert!(answer.is_err() && took >= TIMEOUT, "{answer:?} after {took:?}");
            network.set(server, client, None);
            assert_eq!(rpc.call(addr(SERVER), Echo(3), TIMEOUT).await.unwrap(), 4);
        });
    }

    #[test]
    fn a_killed_peer_is_silent_and_a_restarted_one_is_reached_anew() {
        with_client(|rpc, _, server| async move {
            assert_eq!(rpc.call(addr(SERVER), Echo(1), TIMEOUT).await.unwrap(), 2);
            Handle::current().kill(server);
            let (result, took) = timed(rpc.call(addr(SERVER), Echo(2), TIMEOUT)).await;
            assert!(result.is_err() && took >= TIMEOUT, "{result:?} after {took:?}");
            Handle::current().restart(server);
            sleep(Duration::from_millis(10)).await; // it binds again
            assert_eq!(rpc.call(addr(SERVER), Echo(3), TIMEOUT).await.unwrap(), 4);
        });
    }

    #[test]
    fn a_request_nobody_serves_is_lost() {
        struct Unserved;
        crate::request!(Unserved => ());
        with_client(|rpc, _, _| async move {
            let (result, took) = timed(rpc.call(addr(SERVER), Unserved, TIMEOUT)).await;
            assert!(result.is_err() && took >= TIMEOUT, "{result:?} after {took:?}");
        });
    }

    #[test]
    fn messages_on_one_link_arrive_in_the_order_sent() {
        struct Note(u32);
        crate::request!(Note => ());
        Runtime::with_seed_and_config(7, madsim::Config::default()).block_on(async {
            let network = Network::default();
            let heard = Arc::new(Mutex::new(Vec::new()));
            let (server_network, server_heard) = (network.clone(), heard.clone());
            Handle::current()
                .create_node()
                .ip(addr(SERVER).ip())
                .init(move || {
                    let (network, heard) = (server_network.clone(), server_heard.clone());
                    async move {
                        let rpc = Rpc::bind(addr(SERVER), network);
                        rpc.serve(move |Note(n), _| {
                            heard.lock().unwrap().push(n);
                            async {}
                        });
                        std::future::pending::<()>().await;
                    }
                })
                .build();
            let client = Handle::current().create_node().ip(addr(CLIENT).ip()).build();
            let sent = client
                .spawn(async move {
                    sleep(Duration::from_millis(10)).await; // the server binds
                    let rpc = Rpc::bind(addr(CLIENT), network);
                    // Each message draws its own 1-10 ms latency; none overtakes another.
                    // Tasks run in the runtime's random order: note the order they send in.
                    let sent = Arc::new(Mutex::new(Vec::new()));
                    let calls: Vec<_> = (0..100)
                        .map(|n| {
                            let (rpc, sent) = (rpc.clone(), sent.clone());
                            madsim::task::spawn(async move {
                                sent.lock().unwrap().push(n); // the call sends in this same poll
                                rpc.call(addr(SERVER), Note(n), TIMEOUT).await
                            })
                        })
                        .collect();
                    for call in calls {
                        call.await.unwrap().unwrap();
                    }
                    
                    sent.lock().unwrap().clone()
                })
                .await
                .unwrap();
            let heard = heard.lock().unwrap().clone();
            assert_ne!(
                sent,
                (0..100).collect::<Vec<_>>(),
                "the calls went out in a shuffled order"
            );
            assert_eq!(heard, sent);
        });
    }

    #[test]
    fn a_request_in_flight_to_a_node_that_restarts_is_lost_with_it() {
        with_client(|rpc, _, server| async move {
            let call = rpc.call(addr(SERVER), Echo(1), TIMEOUT);
            let restart = async {
                // The request is on its way (1-10 ms): the server restarts under it.
                Handle::current().kill(server);
                Handle::current().restart(server);
            };
            let (result, ()) = tokio::join!(call, restart);
            assert!(result.is_err(), "{result:?}");
            assert_eq!(rpc.call(addr(SERVER), Echo(2), TIMEOUT).await.unwrap(), 3);
        });
    }

    #[test]
    fn an_answer_to_a_caller_that_restarted_meanwhile_is_lost() {
        Runtime::with_seed_and_config(7, madsim::Config::default()).block_on(async {
            let network = Network::default();
            start_server(&network);
            let answers = Arc::new(Mutex::new(Vec::new()));
            let (client_network, client_answers) = (network.clone(), answers.clone());
            let client = Handle::current()
                .create_node()
                .ip(addr(CLIENT).ip())
                .init(move || {
                    let (network, answers) = (client_network.clone(), client_answers.clone());
                    async move {
                        sleep(Duration::from_millis(10)).await; // the server binds
                        let rpc = Rpc::bind(addr(CLIENT), network);
                        // Each incarnation's first call has the same call id; the first
                        // incarnation's answer (42) comes while the second one's call waits.
                        let first = answers.lock().unwrap().is_empty();
                        let n = if first { 21 } else { 5 };
                        if !first {
                            sleep(Duration::from_millis(400)).await;
                        }
                        let answer = rpc.call(addr(SERVER), Slow(n), TIMEOUT).await;
                        answers.lock().unwrap().push(answer.ok());
                        std::future::pending::<()>().await;
                    }
                })
                .build();
            sleep(Duration::from_millis(50)).await;
            answers.lock().unwrap().push(None); // marks the restart for the next incarnation
            Handle::current().kill(client.id());
            Handle::current().restart(client.id());
            sleep(Duration::from_secs(2)).await;
            assert_eq!(*answers.lock().unwrap(), vec![None, Some(10)]);
        });
    }

    #[test]
    fn calls_that_time_out_less_than_a_millisecond_apart_each_end_at_their_deadline() {
        with_client(|rpc, network, _| async move {
            network.partition(addr(CLIENT).ip(), addr(SERVER).ip());
            let timeouts = [0, 300, 900, 2_500].map(|us| TIMEOUT + Duration::from_micros(us));
            let call = |n: u32| timed(rpc.call(addr(SERVER), Echo(n), timeouts[n as usize]));
            let ((a, ta), (b, tb), (c, tc), (d, td)) =
                tokio::join!(call(0), call(1), call(2), call(3));
            assert!(a.is_err() && b.is_err() && c.is_err() && d.is_err());
            for (took, timeout) in [ta, tb, tc, td].into_iter().zip(timeouts) {
                // Exact but for the runtime's 50-100 ns per poll.
                assert!(
                    took >= timeout && took < timeout + Duration::from_micros(50),
                    "{took:?} for {timeout:?}"
                );
            }
        });
    }

    #[test]
    fn a_call_from_another_node_ends_when_the_callers_node_dies() {
        Runtime::with_seed_and_config(7, madsim::Config::default()).block_on(async {
            let network = Network::default();
            start_server(&network);
            network.partition(addr(CLIENT).ip(), addr(SERVER).ip());
            let client = Handle::current().create_node().ip(addr(CLIENT).ip()).build();
            let bound = network.clone();
            let rpc = client.spawn(async move { Rpc::bind(addr(CLIENT), bound) }).await.unwrap();
            // This task is not on the client node: its call waits on the client's mailbox reader.
            let call = madsim::task::spawn(async move {
                timed(rpc.call(addr(SERVER), Echo(1), TIMEOUT)).await
            });
            sleep(Duration::from_millis(100)).await;
            Handle::current().kill(client.id());
            let (result, took) = call.await.unwrap();
            assert!(result.is_err(), "{result:?}");
            assert!(took < TIMEOUT, "ended with its reader, not at its deadline: {took:?}");
        });
    }
}
