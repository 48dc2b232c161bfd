//! The simulated clock, held ([`Clock`]), and timers on it that arm one runtime timer per deadline.
//!
//! madsim's `Sleep` adds an entry to the runtime's timer heap every time it is polled while
//! pending, and an entry stays in the heap until its deadline even when its sleep is dropped. An
//! operator that loops over a `select!` holding an interval polls that interval once per record,
//! so with madsim's types it would add one timer (and later one spurious wake-up) per record.
//! [`Ticker`], [`Deadline`] and [`timeout`] arm the runtime once per deadline and task instead.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use madsim::time::{Instant, Sleep};

/// The simulated clock, held: reading it costs a lock, where `Instant::now()` goes through
/// madsim's `clock_gettime` override and looks the runtime up on every reading. Same value.
///
/// It also holds one madsim `Sleep`, made at its first timer and re-aimed for each later one
/// ([`Clock::wake_at`]): a fresh sleep per timer cloned the runtime's time handle and read the
/// clock once more (about 100 instructions per timer, 138,000 timers in 5 simulated minutes).
pub struct Clock {
    handle: madsim::time::TimeHandle,
    /// The engine's lock (`crate::lock` says why), taken for every timer.
    sleep: crate::lock::Mutex<Option<Sleep>>,
}

/// madsim fires no timer sooner than this after it is armed (its `sleep_until` rounds up).
pub(crate) const MIN_SLEEP: Duration = Duration::from_millis(1);

/// `duration` in whole nanoseconds (saturating: over 584 years).
#[inline]
pub(crate) const fn nanos(duration: Duration) -> u64 {
    match duration.as_secs().checked_mul(1_000_000_000) {
        Some(secs) => secs.saturating_add(duration.subsec_nanos() as u64),
        None => u64::MAX,
    }
}

impl Clock {
    /// The clock of the runtime this runs in.
    pub fn current() -> Clock {
        Clock::of(madsim::time::TimeHandle::current())
    }

    fn of(handle: madsim::time::TimeHandle) -> Clock {
        Clock { handle, sleep: crate::lock::Mutex::new(None) }
    }

    /// Now, as `Instant::now()` would say.
    #[inline]
    pub fn now(&self) -> Instant {
        self.handle.now_instant()
    }

    /// Now, in nanoseconds since the runtime started ([`Clock::epoch`]): madsim's own count, read
    /// without the add that makes an `Instant` of it. The rpc layer keeps its instants so, where
    /// an `Instant`'s add (about 12 instructions, the nanoseconds carried) comes per message.
    #[inline]
    pub fn now_nanos(&self) -> u64 {
        nanos(self.handle.elapsed())
    }

    /// The instant the runtime started: [`now_nanos`](Self::now_nanos) counts from it.
    pub fn epoch(&self) -> Instant {
        self.now() - self.handle.elapsed()
    }

    /// Arms one runtime timer that wakes `waker` at `at` (at least 1 ms after `now`, madsim's
    /// rule), `now` being this clock's reading of the present; `false` if `at` has already
    /// passed, and nothing is armed. The same single timer a fresh `sleep_until(at)` polled once
    /// registers.
    pub fn wake_at(&self, now: Instant, at: Instant, waker: &Waker) -> bool {
        self.arm(at.max(now + MIN_SLEEP), waker)
    }

    /// Arms one runtime timer that wakes `waker` at `at`, which the caller knows to lie at least
    /// 1 ms ahead (a message's arrival: every message takes at least that long), so that
    /// [`wake_at`](Self::wake_at)'s clock arithmetic would leave it as it is (about 15
    /// instructions per message, 119,000 messages in 5 simulated minutes).
    #[inline(always)]
    pub fn wake_at_arrival(&self, at: Instant, waker: &Waker) {
        self.arm(at, waker);
    }

    /// Arms the runtime timer for `deadline`, at least 1 ms ahead; `false` if it has passed.
    /// Inline, the clock's first timer (which makes its sleep) out of line: as a call it cost
    /// about 20 instructions per timer in its frame.
    #[inline(always)]
    fn arm(&self, deadline: Instant, waker: &Waker) -> bool {
        let mut held = self.sleep.lock();
        let sleep = match &mut *held {
            Some(sleep) => {
                Pin::new(&mut *sleep).reset(deadline);
                sleep
            }
            None => self.first_sleep(&mut held, deadline),
        };
        Pin::new(sleep).poll(&mut Context::from_waker(waker)).is_pending()
    }

    /// The clock's sleep, made for its first timer, at `deadline`.
    #[inline(never)]
    fn first_sleep<'a>(&self, held: &'a mut Option<Sleep>, deadline: Instant) -> &'a mut Sleep {
        held.insert(self.handle.sleep_until(deadline))
    }
}

impl Clone for Clock {
    fn clone(&self) -> Clock {
        Clock::of(self.handle.clone())
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// A point in simulated time to wait for; polling it again does not arm another timer, and
/// does not read the clock until the armed timer has fired.
#[derive(Debug)]
pub struct Deadline {
    at: Instant,
    clock: Clock,
    /// The alarm a runtime timer is armed with for `at`, if any.
    armed: Option<Arc<Alarm>>,
    /// The alarm last disarmed, to arm again once nothing else holds it (its timer has fired):
    /// a ticker re-arms at every tick, and a fresh alarm cost an allocation and a waker clone.
    spare: Option<Arc<Alarm>>,
}

/// What a runtime timer wakes: it notes that it fired, then wakes the waiting task, unless its
/// deadline was dropped or moved meanwhile (madsim keeps a timer until it fires, and a wake-up
/// for a deadline nobody waits for would poll the task for nothing).
#[derive(Debug)]
struct Alarm {
    fired: AtomicBool,
    cancelled: AtomicBool,
    task: Waker,
}

impl Wake for Alarm {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.cancelled.load(Ordering::Relaxed) {
            self.fired.store(true, Ordering::Relaxed);
            self.task.wake_by_ref();
        }
    }
}

impl Alarm {
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

impl Deadline {
    /// The deadline `duration` from now.
    pub fn after(duration: Duration) -> Deadline {
        let clock = Clock::current();
        Deadline { at: clock.now() + duration, clock, armed: None, spare: None }
    }

    /// The deadline at `at`.
    pub fn at(at: Instant) -> Deadline {
        Deadline { at, clock: Clock::current(), armed: None, spare: None }
    }

    /// When it falls due.
    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Moves the deadline; the next pending poll arms a timer for the new one.
    pub fn reset(&mut self, at: Instant) {
        if at != self.at {
            self.at = at;
            self.disarm();
        }
    }

    fn disarm(&mut self) {
        if let Some(alarm) = self.armed.take() {
            alarm.cancel();
            self.spare = Some(alarm);
        }
    }

    /// Ready once the deadline has passed; otherwise makes sure a timer will wake this task.
    ///
    /// Inline, the common case (armed for this task and not yet due: an operator's loop polls
    /// its tickers on every turn, 115,000 times in 5 simulated minutes) is three comparisons in
    /// the caller, where two calls deep it cost about 45 instructions more.
    #[inline]
    pub fn poll_elapsed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(alarm) = &self.armed
            && !alarm.fired.load(Ordering::Relaxed)
            && alarm.task.will_wake(cx.waker())
        {
            return Poll::Pending; // armed for this task and not yet due
        }
        self.poll_elapsed_slow(cx)
    }

    /// [`poll_elapsed`](Self::poll_elapsed) once the armed timer fired, or none is armed for
    /// this task.
    #[inline(never)]
    fn poll_elapsed_slow(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Fired, or armed with another waker: only the latest waker is woken, as with tokio.
        self.disarm();
        let now = self.clock.now();
        if now >= self.at {
            return Poll::Ready(());
        }
        let alarm = match self.spare.take() {
            // No timer holds it any more, so none can wake it: as good as a fresh one.
            Some(alarm) if Arc::strong_count(&alarm) == 1 && alarm.task.will_wake(cx.waker()) => {
                alarm.fired.store(false, Ordering::Relaxed);
                alarm.cancelled.store(false, Ordering::Relaxed);
                alarm
            }
            _ => Arc::new(Alarm {
                fired: AtomicBool::new(false),
                cancelled: AtomicBool::new(false),
                task: cx.waker().clone(),
            }),
        };
        if self.clock.wake_at(now, self.at, &Waker::from(alarm.clone())) {
            self.armed = Some(alarm);
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// A periodic tick (first one at once, then every `period`, ticks missed while busy delivered
/// in a burst, as tokio's default `interval`), arming one timer per tick.
#[derive(Debug)]
pub struct Ticker {
    period: Duration,
    next: Deadline,
}

impl Ticker {
    /// Ticks now and every `period` after.
    pub fn new(period: Duration) -> Ticker {
        Ticker { period, next: Deadline::after(Duration::ZERO) }
    }

    /// Ready with the tick's scheduled instant once it is due.
    #[inline]
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        std::task::ready!(self.next.poll_elapsed(cx));
        let due = self.next.instant();
        self.next.reset(due + self.period);
        Poll::Ready(due)
    }

    /// Drops the ticks missed before `now`: the next tick is the first one at or after `now`,
    /// on the same grid. For a ticker that was not waited on for a while (nothing to do).
    pub fn skip_missed(&mut self, now: Instant) {
        let due = self.next.instant();
        if due >= now || self.period.is_zero() {
            return;
        }
        let missed = (now - due).as_nanos().div_ceil(self.period.as_nanos());
        let skip = self.period.as_nanos().saturating_mul(missed);
        self.next.reset(due + Duration::from_nanos(u64::try_from(skip).unwrap_or(u64::MAX)));
    }

    /// Waits for the next tick; cancel-safe (a dropped wait loses no tick).
    pub fn tick(&mut self) -> Tick<'_> {
        Tick(self)
    }
}

/// The wait for a [`Ticker`]'s next tick. A plain future rather than an `async fn`'s: an
/// operator's loop makes one per turn, and the state machine around the poll cost about 35
/// instructions a turn.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Tick<'a>(&'a mut Ticker);

impl Future for Tick<'_> {
    type Output = Instant;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Instant> {
        self.0.poll_tick(cx)
    }
}

/// Arms one runtime timer that wakes `waker` at `at` (at least 1 ms from now, madsim's rule);
/// `false` if `at` has already passed, and nothing is armed. [`Clock::wake_at`] spares the
/// clock's reading where the caller has it.
pub fn wake_at(clock: &Clock, at: Instant, waker: &Waker) -> bool {
    clock.wake_at(clock.now(), at, waker)
}

/// `future` ran past its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("deadline elapsed")]
pub struct Elapsed;

/// Runs `future` for at most `duration`, arming a single timer however often it is polled.
pub async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
    let mut deadline = Deadline::after(duration);
    let mut future = pin!(future);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        deadline.poll_elapsed(cx).map(|()| Err(Elapsed))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> madsim::runtime::Runtime {
        madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default())
    }

    #[test]
    fn ticker_ticks_now_then_every_period() {
        runtime().block_on(async {
            let start = Instant::now();
            let mut ticker = Ticker::new(Duration::from_millis(100));
            let ticks: Vec<Duration> = {
                let mut ticks = Vec::new();
                for _ in 0..4 {
                    ticks.push(ticker.tick().await - start);
                }
                ticks
            };
            let ms = |n| Duration::from_millis(n);
            assert_eq!(ticks, vec![ms(0), ms(100), ms(200), ms(300)]);
            assert!(Instant::now() - start >= ms(300));
        });
    }

    #[test]
    fn ticker_bursts_missed_ticks() {
        runtime().block_on(async {
            let start = Instant::now();
            let mut ticker = Ticker::new(Duration::from_millis(100));
            ticker.tick().await;
            madsim::time::sleep(Duration::from_millis(350)).await;
            let late = Instant::now();
            for n in 1..=3 {
                assert_eq!(ticker.tick().await - start, Duration::from_millis(100 * n));
            }
            assert_eq!(Instant::now(), late, "missed ticks come at once");
        });
    }

    #[test]
    fn a_ticker_skipping_missed_ticks_keeps_its_grid() {
        runtime().block_on(async {
            let start = Instant::now();
            let ms = |n| Duration::from_millis(n);
            let mut ticker = Ticker::new(ms(100));
            ticker.tick().await;
            madsim::time::sleep(ms(350)).await;
            ticker.skip_missed(Instant::now());
            assert_eq!(ticker.tick().await - start, ms(400), "the next tick on the grid, no burst");
            ticker.skip_missed(Instant::now()); // nothing missed: unchanged
            assert_eq!(ticker.tick().await - start, ms(500));
        });
    }

    #[test]
    fn timeout_elapses_or_passes_the_output() {
        runtime().block_on(async {
            let slow = madsim::time::sleep(Duration::from_secs(5));
            assert_eq!(timeout(Duration::from_secs(1), slow).await, Err(Elapsed));
            let fast = async {
                madsim::time::sleep(Duration::from_millis(10)).await;
                42
            };
            assert_eq!(timeout(Duration::from_secs(1), fast).await, Ok(42));
        });
    }

    #[test]
    fn a_deadline_polled_in_a_loop_is_armed_once() {
        runtime().block_on(async {
            let start = Instant::now();
            let mut deadline = Deadline::after(Duration::from_millis(50));
            let mut wakes = 0;
            let mut first_alarm = None;
            // Each short sleep wakes the task and polls the deadline again: the alarm armed by
            // the first poll stays the one armed.
            loop {
                tokio::select! {
                    biased;
                    () = std::future::poll_fn(|cx| deadline.poll_elapsed(cx)) => break,
                    () = madsim::time::sleep(Duration::from_millis(5)) => {
                        wakes += 1;
                        let alarm = Arc::as_ptr(deadline.armed.as_ref().expect("armed while pending"));
                        assert_eq!(*first_alarm.get_or_insert(alarm), alarm, "re-armed on poll {wakes}");
                    }
                }
            }
            assert!(wakes >= 9);
            assert!(deadline.armed.is_none(), "disarmed once elapsed");
            assert!(Instant::now() - start >= Duration::from_millis(50));
        });
    }

    #[test]
    fn a_dropped_or_moved_deadline_wakes_nobody() {
        runtime().block_on(async {
            let polls = Arc::new(std::sync::atomic::AtomicU32::new(0));
            let counted = polls.clone();
            // A task that arms a deadline at 10 ms and drops it, arms one at 20 ms and moves it
            // to 30 s, then waits for nothing else: its only poll after the first would be a
            // wake-up from a timer nobody waits for.
            let task = madsim::task::spawn(async move {
                let mut dropped = Some(Deadline::after(Duration::from_millis(10)));
                let mut moved = Deadline::after(Duration::from_millis(20));
                std::future::poll_fn(move |cx| {
                    counted.fetch_add(1, Ordering::Relaxed);
                    if let Some(mut deadline) = dropped.take() {
                        assert!(deadline.poll_elapsed(cx).is_pending());
                        assert!(moved.poll_elapsed(cx).is_pending());
                        moved.reset(moved.instant() + Duration::from_secs(30));
                    }
                    Poll::<()>::Pending
                })
                .await
            });
            madsim::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(polls.load(Ordering::Relaxed), 1, "woken by a cancelled alarm");
            drop(task);
        });
    }
}
