//! The broker's fetch purgatory (Kafka's `DelayedFetch`): a fetch that finds nothing waits here
//! until one of its partitions changes (an append, a transaction marker) or its `max_wait` runs
//! out.
//!
//! Held fetches share the runtime's timers for their deadlines. A fetch is nearly always ended by
//! an append long before its `max_wait`, so a timer per fetch would nearly always fire for
//! nothing. A fetch arms a timer only when none is armed at or before its deadline; a timer that
//! fires wakes the fetches due by then, and the earliest one still waiting if no armed timer
//! covers it any more, so that it arms its own. Deadlines are met exactly, as with a timer each.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};

use madsim::time::Instant;

use crate::lock::Mutex;
use crate::timer::Clock;

/// Where held fetches wait: on their partitions for changes, together for their deadlines.
pub(super) struct Purgatory {
    shared: Arc<Shared>,
}

struct Shared {
    clock: Clock,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The partitions, each at its place among the broker's logs (the broker finds a partition
    /// once per request and hands its place to both).
    partitions: Vec<Partition>,
    /// The held fetches' (deadline, id), with their wakers, in no order: a handful at a time,
    /// so a list's push and scan cost less than a map's insert and remove, once per held fetch
    /// (a callgrind profile: 0.5% of a run). The alarm sorts the ones it wakes.
    deadlines: Vec<((Instant, u64), Waker)>,
    /// The instants runtime timers are armed at, still ahead.
    armed: BTreeSet<Instant>,
    next_id: u64,
    /// Place lists of holds gone, emptied, for the next holds: nearly every fetch is held, and
    /// its list was allocated and freed each time.
    spare: Vec<Vec<Option<usize>>>,
}

/// The most spare place lists kept (about one per consumer fetching at once).
const SPARE_LISTS: usize = 16;

/// One partition: how often it changed, and the fetches waiting for its next change.
#[derive(Default)]
struct Partition {
    changes: u64,
    waiting: Vec<(u64, Waker)>,
}

impl State {
    /// The changes of `partitions` so far, summed (they only grow, so the sum moves with any).
    fn changes(&self, partitions: &[Option<usize>]) -> u64 {
        partitions.iter().flatten().fold(0u64, |sum, &p| sum.wrapping_add(self.partitions[p].changes))
    }

    fn changed(&mut self, partition: usize) {
        let partition = &mut self.partitions[partition];
        partition.changes = partition.changes.wrapping_add(1);
        for (_, waker) in partition.waiting.drain(..) {
            waker.wake();
        }
    }
}

impl Purgatory {
    /// An empty purgatory for `partitions` partitions, known by their places `0..partitions`.
    pub(super) fn new(partitions: usize) -> Purgatory {
        let mut state = State::default();
        state.partitions.resize_with(partitions, Partition::default);
        Purgatory { shared: Arc::new(Shared { clock: Clock::current(), state: Mutex::new(state) }) }
    }

    /// Wakes the fetches held on the partition at `partition`: it was appended to.
    pub(super) fn appended(&self, partition: usize) {
        let mut state = self.shared.state.lock();
        if partition < state.partitions.len() {
            state.changed(partition);
        }
    }

    /// Wakes every held fetch: a transaction marker may have moved any last stable offset.
    pub(super) fn changed_all(&self) {
        let mut state = self.shared.state.lock();
        for partition in 0..state.partitions.len() {
            state.changed(partition);
        }
    }

    /// A fetch of `partitions` (their places, below the count given to [`new`](Self::new);
    /// `None` for an unknown one, which is left out) that may wait until `deadline`.
    pub(super) fn hold(
        &self,
        partitions: impl IntoIterator<Item = Option<usize>>,
        deadline: Instant,
    ) -> Hold {
        let mut state = self.shared.state.lock();
        let mut list = state.spare.pop().unwrap_or_default();
        list.extend(partitions);
        let partitions = list;
        state.next_id += 1;
        let noted = Some(state.changes(&partitions));
        Hold { shared: self.shared.clone(), id: state.next_id, deadline, partitions, noted }
    }

    /// How many runtime timers are armed and still ahead (tests only).
    #[cfg(test)]
    fn armed(&self) -> usize {
        self.shared.state.lock().armed.len()
    }
}

/// One fetch in the purgatory; leaves it when dropped.
pub(super) struct Hold {
    shared: Arc<Shared>,
    id: u64,
    deadline: Instant,
    /// The fetch's partitions in its order, each at its place (`None`: unknown).
    partitions: Vec<Option<usize>>,
    /// The partitions' changes when the hold was made, for the first [`Hold::changes`]: no
    /// second lock for the same sum.
    noted: Option<u64>,
}

/// Why a [`Hold::wait`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Woken {
    /// A partition changed since the changes were noted.
    Changed,
    /// The deadline passed.
    Deadline,
}

impl Hold {
    /// The fetch's partitions in the order given to [`Purgatory::hold`], each at its place
    /// (`None`: unknown).
    pub(super) fn partitions(&self) -> &[Option<usize>] {
        &self.partitions
    }

    /// The partitions' changes so far: note them before reading, so that a change racing with
    /// the read still ends the wait.
    pub(super) fn changes(&mut self) -> u64 {
        if let Some(noted) = self.noted.take() {
            return noted;
        }
        self.shared.state.lock().changes(&self.partitions)
    }

    /// Waits until the partitions' changes differ from `seen` or the deadline passes.
    pub(super) async fn wait(&mut self, seen: u64) -> Woken {
        std::future::poll_fn(|cx| self.poll_wait(cx, seen)).await
    }

    fn poll_wait(&mut self, cx: &mut Context<'_>, seen: u64) -> Poll<Woken> {
        let mut state = self.shared.state.lock();
        if state.changes(&self.partitions) != seen {
            return Poll::Ready(Woken::Changed);
        }
        // Read only when nothing changed (half the polls: the others were woken by a change).
        let now = self.shared.clock.now();
        if now >= self.deadline {
            return Poll::Ready(Woken::Deadline);
        }
        let waker = cx.waker();
        for &partition in self.partitions.iter().flatten() {
            register(&mut state.partitions[partition].waiting, self.id, waker);
        }
        let key = (self.deadline, self.id);
        match state.deadlines.iter_mut().find(|(held, _)| *held == key) {
            Some((_, held)) if held.will_wake(waker) => {}
            Some((_, held)) => *held = waker.clone(),
            None => state.deadlines.push((key, waker.clone())),
        }
        if !armed_by(&state.armed, self.deadline) {
            state.armed.insert(self.deadline);
            drop(state);
            let alarm = Arc::new(Alarm { shared: Arc::downgrade(&self.shared), at: self.deadline });
            crate::timer::wake_at(&self.shared.clock, self.deadline, &Waker::from(alarm));
        }
        Poll::Pending
    }
}

/// Whether a timer is armed at or before `deadline`: the earliest armed one is (cheaper to ask
/// than a range's search).
fn armed_by(armed: &BTreeSet<Instant>, deadline: Instant) -> bool {
    armed.first().is_some_and(|&first| first <= deadline)
}

/// Puts `id`'s waker on a partition's waiting list, once.
fn register(waiting: &mut Vec<(u64, Waker)>, id: u64, waker: &Waker) {
    match waiting.iter_mut().find(|(held, _)| *held == id) {
        Some((_, held)) if held.will_wake(waker) => {}
        Some((_, held)) => *held = waker.clone(),
        None => waiting.push((id, waker.clone())),
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        let key = (self.deadline, self.id);
        if let Some(i) = state.deadlines.iter().position(|(held, _)| *held == key) {
            state.deadlines.swap_remove(i);
        }
        for &partition in self.partitions.iter().flatten() {
            state.partitions[partition].waiting.retain(|(held, _)| *held != self.id);
        }
        if state.spare.len() < SPARE_LISTS {
            let mut list = std::mem::take(&mut self.partitions);
            list.clear();
            state.spare.push(list);
        }
    }
}

/// A runtime timer armed at `at`. It runs inside the runtime's timer, so it only wakes tasks.
struct Alarm {
    shared: Weak<Shared>,
    at: Instant,
}

impl Wake for Alarm {
    fn wake(self: Arc<Self>) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut state = shared.state.lock();
        state.armed.remove(&self.at);
        // The fetches due by now, woken in (deadline, id) order.
        let mut due: Vec<&((Instant, u64), Waker)> =
            state.deadlines.iter().filter(|((deadline, _), _)| *deadline <= self.at).collect();
        due.sort_by_key(|(key, _)| *key);
        for (_, waker) in due {
            waker.wake_by_ref();
        }
        let later = state.deadlines.iter().filter(|((deadline, _), _)| *deadline > self.at);
        if let Some(((deadline, _), waker)) = later.min_by_key(|(key, _)| *key)
            && !armed_by(&state.armed, *deadline)
        {
            waker.wake_by_ref(); // it arms a timer for its own deadline when polled
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn runtime() -> madsim::runtime::Runtime {
        madsim::runtime::Runtime::with_seed_and_config(11, madsim::Config::default())
    }

    /// Holds a fetch of `partition` until `max_wait` from now; says how it ended and when.
    async fn held(purgatory: &Purgatory, partition: usize, max_wait: Duration) -> (Woken, Duration) {
        let start = Instant::now();
        let mut hold = purgatory.hold(vec![Some(partition)], start + max_wait);
        let seen = hold.changes();
        let woken = hold.wait(seen).await;
        (woken, start.elapsed())
    }

    /// [`held`] in a task of its own.
    fn spawn_held(
        purgatory: &Arc<Purgatory>,
        partition: usize,
        max_wait: Duration,
    ) -> madsim::task::JoinHandle<(Woken, Duration)> {
        let purgatory = purgatory.clone();
        madsim::task::spawn(async move { held(&purgatory, partition, max_wait).await })
    }

    fn assert_within_a_millisecond(after: Duration, expected: Duration) {
        let within = after >= expected && after < expected + Duration::from_millis(1);
        assert!(within, "{after:?}, not {expected:?}");
    }

    #[test]
    fn a_held_fetch_ends_at_its_deadline_or_at_its_partitions_append() {
        runtime().block_on(async {
            let purgatory = Arc::new(Purgatory::new(2));
            let timed_out = spawn_held(&purgatory, 0, Duration::from_millis(500));
            let appended = spawn_held(&purgatory, 1, Duration::from_millis(500));
            madsim::time::sleep(Duration::from_millis(120)).await;
            purgatory.appended(1);
            let (woken, after) = appended.await.unwrap();
            assert_eq!(woken, Woken::Changed);
            // The waiter started a few instructions' worth of simulated time after the sleep.
            assert!(after.abs_diff(Duration::from_millis(120)) < Duration::from_micros(1), "{after:?}");
            // An append to another partition does not end it: the deadline does, exactly.
            let (woken, after) = timed_out.await.unwrap();
            assert_eq!(woken, Woken::Deadline);
            assert_within_a_millisecond(after, Duration::from_millis(500));
        });
    }

    #[test]
    fn a_change_between_noting_and_waiting_ends_the_wait_at_once() {
        runtime().block_on(async {
            let purgatory = Purgatory::new(1);
            let mut hold = purgatory.hold(vec![Some(0)], Instant::now() + Duration::from_secs(1));
            let seen = hold.changes();
            purgatory.changed_all();
            let start = Instant::now();
            assert_eq!(hold.wait(seen).await, Woken::Changed);
            assert_eq!(start.elapsed(), Duration::ZERO);
        });
    }

    #[test]
    fn fetches_answered_early_share_one_timer_and_the_last_still_meets_its_deadline() {
        runtime().block_on(async {
            let purgatory = Arc::new(Purgatory::new(1));
            // A fetch every 10 ms, each ended by an append 5 ms later, as in a steady run: the
            // first one's timer (at 500 ms) covers all of them.
            for _ in 0..40 {
                let waiter = spawn_held(&purgatory, 0, Duration::from_millis(500));
                madsim::time::sleep(Duration::from_millis(5)).await;
                assert_eq!(purgatory.armed(), 1, "one timer covers every held fetch");
                purgatory.appended(0);
                assert_eq!(waiter.await.unwrap().0, Woken::Changed);
                madsim::time::sleep(Duration::from_millis(5)).await;
            }
            // This one waits past the first timer (which wakes it to arm its own) and ends at
            // its own deadline.
            let (woken, after) = held(&purgatory, 0, Duration::from_millis(500)).await;
            assert_eq!(woken, Woken::Deadline);
            assert_within_a_millisecond(after, Duration::from_millis(500));
            assert_eq!(purgatory.armed(), 0);
        });
    }

    #[test]
    fn a_dropped_fetch_leaves_nothing_behind() {
        runtime().block_on(async {
            let purgatory = Purgatory::new(1);
            let mut hold = purgatory.hold(vec![Some(0)], Instant::now() + Duration::from_secs(1));
            let seen = hold.changes();
            let waited = madsim::time::timeout(Duration::from_millis(10), hold.wait(seen)).await;
            assert!(waited.is_err());
            drop(hold);
            let state = purgatory.shared.state.lock();
            assert!(state.deadlines.is_empty());
            assert!(state.partitions[0].waiting.is_empty());
        });
    }
}
