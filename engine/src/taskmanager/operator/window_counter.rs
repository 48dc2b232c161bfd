//! `ClickEvent Counter` (docs/model/job.md#event-time-and-watermarks,
//! docs/model/job.md#partitions-and-key-groups, docs/model/checkpoints.md#overview): keyBy(page),
//! 15 s tumbling windows, count. State lives in key groups from the start, so snapshots, restores
//! and rescaling move whole key groups. Each (page, window) has an event-time timer at window end −
//! 1; when the watermark passes it the count is emitted, in timestamp order, before the watermark
//! goes downstream.
//!
//! Without `--event-time` the windows are 15 s buckets of the TaskManager's clock
//! (docs/model/job.md#processing-time): an event counts into the window of the moment it is
//! handled, never late, and the window fires by a processing-time timer at its end − 1.

use std::collections::{BTreeMap, BTreeSet};
use std::task::Poll;
use std::time::Duration;

use smol_str::SmolStr;

use crate::plant::{PlantedBug, Plants};
use crate::timer::{Deadline, Ticker};
use crate::protocol::click_event::{
    ClickEvent, ClickEventStatistics, PAGES, WINDOW_MS, known_page_str, window_start,
};
use crate::protocol::snapshot::{SnapshotKind, TaskSnapshot, WindowState};
use crate::protocol::data::{Record, StreamElement};
use crate::protocol::key_group::{KeyGroup, KeyGroupRange};
use crate::taskmanager::network::{BUFFER_TIMEOUT, GateEvent};
use crate::taskmanager::control::TaskControl;
use crate::taskmanager::task_context::{TaskContext, TaskError};
use crate::trace::Event;

/// The window operator: state, timers and the current watermark.
pub struct WindowCounter {
    max_parallelism: u32,
    state: WindowState,
    /// Pending event-time timers: (fire at, key group, page, window start), in firing order.
    timers: BTreeSet<(i64, KeyGroup, SmolStr, i64)>,
    watermark: i64,
    /// Flink's `numLateRecordsDropped`.
    pub late_records_dropped: u64,
    /// Planted bug `timers-lost-on-restore` (docs/planted-bugs.md).
    lose_timers_on_restore: bool,
    /// Processing-time windows: per (page, window start), when this attempt handled its first
    /// and last event, ms of the TaskManager's clock (for the trace, not the snapshot).
    handled: BTreeMap<(SmolStr, i64), (i64, i64)>,
    /// Processing-time windows: per (page, window start), the count restored from a checkpoint.
    restored: BTreeMap<(SmolStr, i64), u64>,
    /// Per page of the generator's (by its place in `PAGES`), events counted into one of its
    /// open windows but not yet into `state`: the window's start and how many. Consecutive events
    /// of a page nearly always share a window, and its two map lookups (the key group's, then the
    /// window's, compared by page text) cost about 150 instructions per event. Added to `state`
    /// before anything reads it or fires a window ([`settle`](Self::settle)).
    unsettled: [Option<Unsettled>; PAGES.len()],
    /// The start of the window the last event fell in: events come mostly in order, and a
    /// comparison with it spares `window_start`'s remainder, about 20 instructions per event.
    last_window: Option<i64>,
}

/// Events of one page counted into its open window but not yet into the state.
#[derive(Clone, Copy, Debug)]
struct Unsettled {
    window_start: i64,
    key_group: KeyGroup,
    count: u64,
}

/// A processing-time window that fired, with what the trace says about it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessingTimeFire {
    /// The result.
    pub statistics: ClickEventStatistics,
    /// Of the count, events restored from a checkpoint.
    pub restored: u64,
    /// When this attempt handled the window's first and last event.
    pub handled_ms: Option<(i64, i64)>,
}

impl WindowCounter {
    /// An empty operator.
    pub fn new(max_parallelism: u32) -> WindowCounter {
        WindowCounter {
            max_parallelism,
            state: WindowState::default(),
            timers: BTreeSet::new(),
            watermark: i64::MIN,
            late_records_dropped: 0,
            lose_timers_on_restore: false,
            handled: BTreeMap::new(),
            restored: BTreeMap::new(),
            unsettled: [None; PAGES.len()],
            last_window: None,
        }
    }

    /// An empty operator with the planted bugs that live in it switched on
    /// (docs/planted-bugs.md).
    pub fn planted(max_parallelism: u32, plants: Plants) -> WindowCounter {
        WindowCounter {
            lose_timers_on_restore: plants.has(PlantedBug::TimersLostOnRestore),
            ..WindowCounter::new(max_parallelism)
        }
    }

    /// Counts one event into the processing-time window of `now_ms`, the TaskManager's clock
    /// when the event is handled; such an event is never late.
    pub fn process_at(&mut self, event: ClickEvent, now_ms: i64) {
        let start = window_start(now_ms);
        let key_group = KeyGroup::of_hash_code(event.page_hash_code(), self.max_parallelism);
        let key = (event.page, start);
        // Looked up first: only the first event of a key group with no open window inserts.
        let windows = match self.state.key_groups.get_mut(&key_group) {
            Some(windows) => windows,
            None => self.state.key_groups.entry(key_group).or_default(),
        };
        let count = windows.entry(key.clone()).or_insert(0);
        if *count == 0 {
            self.timers.insert((start + WINDOW_MS - 1, key_group, key.0.clone(), start));
        }
        *count += 1;
        self.handled.entry(key).and_modify(|(_, last)| *last = now_ms).or_insert((now_ms, now_ms));
    }

    /// When the next processing-time timer falls due, ms of the TaskManager's clock.
    pub fn next_timer(&self) -> Option<i64> {
        self.timers.first().map(|t| t.0)
    }

    /// Fires every processing-time timer whose millisecond has passed by `now_ms` (a timer at
    /// end − 1 fires once the clock reads the window's end), in timestamp order. Firing within
    /// that last millisecond would let an event handled later in it open the window again.
    pub fn fire_processing_time(&mut self, now_ms: i64) -> Vec<ProcessingTimeFire> {
        self.settle();
        let mut fired = Vec::new();
        while let Some(first) = self.timers.first() {
            if first.0 >= now_ms {
                break;
            }
            let (_, key_group, page, start) = self.timers.pop_first().expect("checked above");
            fired.push(self.fire(key_group, page, start));
        }
        fired
    }

    /// Removes one window from the state and makes its result.
    fn fire(&mut self, key_group: KeyGroup, page: SmolStr, start: i64) -> ProcessingTimeFire {
        let windows = self.state.key_groups.get_mut(&key_group).expect("a timer has state");
        let key = (page, start);
        let count = windows.remove(&key).expect("a timer has a window");
        if windows.is_empty() {
            self.state.key_groups.remove(&key_group);
        }
        let restored = self.restored.remove(&key).unwrap_or(0);
        let handled_ms = self.handled.remove(&key);
        let (page, start) = key;
        let statistics =
            ClickEventStatistics { window_start_ms: start, window_end_ms: start + WINDOW_MS, page, count };
        ProcessingTimeFire { statistics, restored, handled_ms }
    }

    /// Counts one event into its window, or drops it if its window has already fired; returns
    /// the window start and page of a dropped (late) event.
    #[inline]
    pub fn process(&mut self, event: ClickEvent) -> Option<(i64, SmolStr)> {
        // Nearly every event is of a generator's page, in the last event's window, not late,
        // and its page has that window's unsettled count: that count goes up here, inlined into
        // the task's loop, where the whole call (its frame alone about 20 instructions) cost
        // about 100 instructions an event. The same tests as `process_slow` makes, in its order.
        if let Some(last) = self.last_window
            && event.timestamp_ms >= last
            && (event.timestamp_ms.wrapping_sub(last) as u64) < WINDOW_MS as u64
            && last + WINDOW_MS - 1 > self.watermark
            && let Some(page) = event.known_page_index()
            && let Some(unsettled) = &mut self.unsettled[page]
            && unsettled.window_start == last
        {
            unsettled.count += 1;
            return None;
        }
        self.process_slow(event)
    }

    /// [`process`](Self::process) for an event its inlined test did not count.
    #[inline(never)]
    fn process_slow(&mut self, event: ClickEvent) -> Option<(i64, SmolStr)> {
        let start = self.window_of(event.timestamp_ms);
        let fire_at = start + WINDOW_MS - 1;
        if fire_at <= self.watermark {
            self.late_records_dropped += 1;
            return Some((start, event.page));
        }
        let page = event.known_page_index();
        if let Some(page) = page {
            match &mut self.unsettled[page] {
                Some(unsettled) if unsettled.window_start == start => {
                    unsettled.count += 1;
                    return None;
                }
                // The page moved to another window (an event out of order): the old one's count
                // goes into the state first.
                Some(_) => self.settle_page(page),
                None => {}
            }
        }
        let key_group = KeyGroup::of_hash_code(event.page_hash_code(), self.max_parallelism);
        // Looked up first: only the first event of a key group with no open window inserts.
        let windows = match self.state.key_groups.get_mut(&key_group) {
            Some(windows) => windows,
            None => self.state.key_groups.entry(key_group).or_default(),
        };
        // Looked up by reference first: the page is cloned only for a window's first event.
        let key = (event.page, start);
        let count = match windows.get_mut(&key) {
            Some(count) => count,
            None => windows.entry(key.clone()).or_insert(0),
        };
        if *count == 0 {
            self.timers.insert((fire_at, key_group, key.0, start));
        }
        *count += 1;
        if let Some(page) = page {
            self.unsettled[page] = Some(Unsettled { window_start: start, key_group, count: 0 });
        }
        None
    }

    /// `window_start(timestamp_ms)`, looked up in the last event's window first.
    #[inline]
    fn window_of(&mut self, timestamp_ms: i64) -> i64 {
        // `last_window` is a true window start (a multiple of the window, never `i64::MIN`,
        // where `window_start` saturates): every timestamp less than a window after it falls
        // in it (the difference of two such is exact as a u64).
        if let Some(last) = self.last_window
            && timestamp_ms >= last
            && (timestamp_ms.wrapping_sub(last) as u64) < WINDOW_MS as u64
        {
            return last;
        }
        let start = window_start(timestamp_ms);
        if start != i64::MIN {
            self.last_window = Some(start);
        }
        start
    }

    /// Adds every page's unsettled count to the state.
    fn settle(&mut self) {
        for page in 0..PAGES.len() {
            self.settle_page(page);
        }
    }

    /// Adds the unsettled count of `PAGES[page]` to its window in the state (there since the
    /// window's first event: no window fires before its counts are settled). The page keeps its
    /// window, with nothing unsettled: its next event there is counted inline again, where
    /// forgetting the window after each watermark's settling sent 6 events in 60 down the slow
    /// path (about 270 instructions each). A window that fires after this is late, which both
    /// paths test first, so no count goes to it.
    fn settle_page(&mut self, page: usize) {
        let Some(Unsettled { window_start, key_group, count }) = self.unsettled[page].as_mut().map(|unsettled| {
            let settled = *unsettled;
            unsettled.count = 0;
            settled
        }) else {
            return;
        };
        if count == 0 {
            return;
        }
        let key = (known_page_str(page), window_start);
        let window = self
            .state
            .key_groups
            .get_mut(&key_group)
            .and_then(|windows| windows.get_mut(&key))
            .expect("an unsettled count's window is open");
        *window += count;
    }

    /// Advances event time: fires every timer at or below `watermark`, in timestamp order.
    pub fn advance(&mut self, watermark: i64) -> Vec<ClickEventStatistics> {
        self.watermark = self.watermark.max(watermark);
        // Settled only when a window fires: most watermarks fire none, and what is unsettled
        // stays correct until the state is read (every reader settles it first). Settling at
        // every watermark cost about 500 instructions each.
        if self.timers.first().is_none_or(|first| first.0 > self.watermark) {
            return Vec::new();
        }
        self.settle();
        let mut fired = Vec::new();
        while let Some(first) = self.timers.first() {
            if first.0 > self.watermark {
                break;
            }
            let (_, key_group, page, start) = self.timers.pop_first().expect("checked above");
            fired.push(self.fire(key_group, page, start).statistics);
        }
        fired
    }

    /// The keyed state, for a snapshot.
    pub fn state(&mut self) -> &WindowState {
        self.settle();
        &self.state
    }

    /// Lends the (settled) state to `f` as the task's snapshot: moved into it and back, where
    /// a copy of the windows cost about 1,350 instructions per checkpoint (measured).
    pub fn lend_snapshot(&mut self, f: impl FnOnce(&TaskSnapshot)) {
        self.settle();
        let snapshot = TaskSnapshot::Counter(std::mem::take(&mut self.state));
        f(&snapshot);
        let TaskSnapshot::Counter(state) = snapshot else { unreachable!("made a counter's snapshot above") };
        self.state = state;
    }

    /// Takes over the key groups of `state` that lie in `range`, with their timers.
    pub fn restore(&mut self, state: WindowState, range: KeyGroupRange) {
        self.settle();
        for (key_group, windows) in state.within(range).key_groups {
            for ((page, start), count) in &windows {
                // The planted mistake restores the counts but not the timers that fire them.
                if *count > 0 && !self.lose_timers_on_restore {
                    self.timers.insert((start + WINDOW_MS - 1, key_group, page.clone(), *start));
                    *self.restored.entry((page.clone(), *start)).or_insert(0) += count;
                }
            }
            self.state.key_groups.entry(key_group).or_default().extend(windows);
        }
    }
}

/// The key groups subtask `subtask` of `parallelism` takes from a snapshot taken at
/// `restored_parallelism` (one snapshot per old subtask; 0 without a restore). The planted bug
/// `wrong-key-group-on-rescale` computes the range at the old parallelism instead: the same
/// while the parallelism is unchanged, wrong on rescale.
pub fn restore_range(
    max_parallelism: u32,
    parallelism: u32,
    subtask: u32,
    restored_parallelism: u32,
    plants: Plants,
) -> KeyGroupRange {
    let at = match plants.has(PlantedBug::WrongKeyGroupOnRescale) && restored_parallelism > 0 {
        true => restored_parallelism,
        false => parallelism,
    };
    KeyGroupRange::of_subtask(max_parallelism, at, subtask)
}

/// What woke the operator's loop.
enum Woken {
    WindowTimer,
    FlushTick,
    Control(TaskControl),
    Input(GateEvent),
}

/// Runs the operator until its input ends.
pub async fn run(mut context: TaskContext) -> Result<(), TaskError> {
    let mut input = context.input.take().expect("the counter has an input");
    let mut output = context.output.take().expect("the counter has an output");
    let tdd = &context.tdd;
    let plants = context.services.plants;
    let mut counter = WindowCounter::planted(tdd.max_parallelism, plants);
    let snapshot_state = !plants.has(PlantedBug::WindowStateNotSnapshotted);
    let restored = context.restored_snapshots().await?;
    let range = restore_range(tdd.max_parallelism, tdd.parallelism, tdd.subtask, restored.len() as u32, plants);
    for (_, snapshot) in restored {
        if let TaskSnapshot::Counter(state) = snapshot {
            counter.restore(state, range);
        }
    }
    context.running().await;
    let clock = crate::timer::Clock::current();
    // The TaskManager's clock reads the simulated time since the run began as ms since the epoch,
    // as the generator's event time does (docs/model/job.md#processing-time).
    let origin = clock.now() - context.services.trace.elapsed();
    let now_ms = || (clock.now() - origin).as_millis() as i64;
    let processing_time = !tdd.submission.args.event_time;
    let mut window_timer = Deadline::at(origin);
    let mut flush_tick = Ticker::new(BUFFER_TIMEOUT);
    let mut late = LateDrops { checkpoint_id: context.restored_checkpoint().unwrap_or(0), ..LateDrops::default() };
    loop {
        // The output flusher only runs while there is something to flush (results come once
        // per window), on its usual 100 ms grid: no wake-up ten times a second for nothing.
        let pending = output.has_pending();
        if pending {
            flush_tick.skip_missed(clock.now());
        }
        let next_timer = if processing_time { counter.next_timer() } else { None };
        if let Some(at_ms) = next_timer {
            window_timer.reset(origin + Duration::from_millis(at_ms.max(0) as u64 + 1));
        }
        // What `tokio::select!` (biased) over the window timer and the flusher (each while it
        // has something to do), the control line and the input would find, polled by hand: its
        // loop over the branches and their masks cost about 40 instructions a turn. The control
        // line, once closed, is not polled again this turn.
        let woken = {
            let mut control_closed = false;
            std::future::poll_fn(|cx| {
                if next_timer.is_some() && window_timer.poll_elapsed(cx).is_ready() {
                    return Poll::Ready(Woken::WindowTimer);
                }
                if pending && flush_tick.poll_tick(cx).is_ready() {
                    return Poll::Ready(Woken::FlushTick);
                }
                if let Poll::Ready(control) = context.control.poll_open(cx, &mut control_closed) {
                    return Poll::Ready(Woken::Control(control));
                }
                input.poll_next(cx).map(Woken::Input)
            })
            .await
        };
        match woken {
            Woken::WindowTimer => {
                let fired_ms = now_ms();
                for fire in counter.fire_processing_time(fired_ms) {
                    output.emit(Record::Statistics(traced(&context, fire, fired_ms))).await?;
                }
            }
            Woken::FlushTick => output.flush_all().await?,
            // Nothing to commit here; keep the queue drained, and stop when cancelled.
            Woken::Control(control) => {
                if control == TaskControl::Cancel {
                    return Err(TaskError::Canceled);
                }
            }
            Woken::Input(event) => {
                // Work through the rest of the buffer before looking at the timers again.
                let mut next = Some(event);
                while let Some(event) = next.take() {
                    match event {
                        GateEvent::Barrier(barrier) => {
                            // Drops before the barrier belong to the state it snapshots.
                            late.report(&context, &counter, input.watermark());
                            late.checkpoint_id = barrier.checkpoint_id;
                            if let SnapshotKind::Savepoint { drain: true, .. } = barrier.kind {
                                // `flink stop --drain`: the maximum watermark reaches the
                                // windows before the barrier, so every open window fires now
                                // and the savepoint holds none.
                                // Processing-time windows do not fire on a watermark: they
                                // stay open, in the savepoint (docs/model/job.md#processing-time).
                                let watermark = if processing_time { i64::MIN } else { i64::MAX };
                                for statistics in counter.advance(watermark) {
                                    output.emit(Record::Statistics(statistics)).await?;
                                }
                                output.broadcast(StreamElement::Watermark(i64::MAX)).await?;
                            }
                            // The planted mistake leaves the window state out of the snapshot.
                            if snapshot_state {
                                counter.lend_snapshot(|snapshot| context.acknowledge(barrier, snapshot));
                            } else {
                                context.acknowledge(barrier, &TaskSnapshot::Counter(WindowState::default()));
                            }
                            output.broadcast(StreamElement::Barrier(barrier)).await?;
                        }
                        GateEvent::Record(_, Record::Click(event)) if processing_time => {
                            counter.process_at(event, now_ms());
                        }
                        GateEvent::Record(_, Record::Click(event)) => {
                            if let Some(dropped) = counter.process(event) {
                                context.metrics.add_late_records_dropped(1);
                                late.add(dropped);
                            }
                        }
                        // Processing-time windows ignore event time; the watermark goes on.
                        GateEvent::Watermark(watermark) if processing_time => {
                            output.broadcast(StreamElement::Watermark(watermark)).await?;
                        }
                        GateEvent::Watermark(watermark) => {
                            for statistics in counter.advance(watermark) {
                                output.emit(Record::Statistics(statistics)).await?;
                            }
                            output.broadcast(StreamElement::Watermark(watermark)).await?;
                        }
                        GateEvent::Status(status) => {
                            output.broadcast(StreamElement::WatermarkStatus(status)).await?;
                        }
                        GateEvent::Closed => return Ok(()),
                        GateEvent::Record(..) | GateEvent::PartitionsAssigned(..) => {}
                    }
                    // The event-time records behind it in the buffer: each counted here, out of
                    // the scrutinee, so none is kept in the task's future across an await as
                    // `next` is (about 25 instructions a record); anything else goes back to the
                    // match above.
                    next = loop {
                        if processing_time {
                            break input.next_buffered();
                        }
                        match input.next_buffered_click() {
                            Some(event) => {
                                if let Some(dropped) = counter.process(event) {
                                    context.metrics.add_late_records_dropped(1);
                                    late.add(dropped);
                                }
                            }
                            None => break input.next_buffered(),
                        }
                    };
                }
                late.report(&context, &counter, input.watermark());
            }
        }
    }
}

/// Traces a processing-time window that fired; returns its result.
fn traced(context: &TaskContext, fire: ProcessingTimeFire, fired_ms: i64) -> ClickEventStatistics {
    let statistics = fire.statistics;
    context.services.trace.record(Event::ProcessingTimeWindowFired {
        task: context.display_name(),
        job_id: context.tdd.job_id,
        window_start_ms: statistics.window_start_ms,
        page: statistics.page.clone(),
        count: statistics.count,
        restored: fire.restored,
        handled_ms: fire.handled_ms,
        fired_ms,
    });
    statistics
}

/// Late drops not yet traced: one line per (window, page) per input buffer, rather than per
/// event, with what the oracle needs to account for each dropped event.
#[derive(Default)]
struct LateDrops {
    /// The latest checkpoint the operator's state covers.
    checkpoint_id: u64,
    /// (window start, page) → events dropped since the last report; a buffer holds a few.
    pending: Vec<((i64, SmolStr), u64)>,
}

impl LateDrops {
    fn add(&mut self, key: (i64, SmolStr)) {
        match self.pending.iter_mut().find(|(k, _)| *k == key) {
            Some((_, count)) => *count += 1,
            None => self.pending.push((key, 1)),
        }
    }

    /// Traces what was dropped since the last report.
    #[inline]
    fn report(&mut self, context: &TaskContext, counter: &WindowCounter, watermark_ms: i64) {
        // Called after every buffer, which nearly always dropped nothing: the call and the
        // empty drain cost about 80 instructions a buffer.
        if !self.pending.is_empty() {
            self.trace_pending(context, counter, watermark_ms);
        }
    }

    /// [`report`](Self::report) when something was dropped.
    #[inline(never)]
    fn trace_pending(&mut self, context: &TaskContext, counter: &WindowCounter, watermark_ms: i64) {
        for ((window_start_ms, page), count) in self.pending.drain(..) {
            context.services.trace.record(Event::LateDropped {
                task: context.display_name(),
                job_id: context.tdd.job_id,
                checkpoint_id: self.checkpoint_id,
                window_start_ms,
                page,
                count,
                watermark_ms,
                dropped_so_far: counter.late_records_dropped,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_falls_in_the_window_window_start_says_whatever_came_before() {
        let mut counter = WindowCounter::new(128);
        let edge = i64::MIN - i64::MIN.rem_euclid(WINDOW_MS) + WINDOW_MS; // the lowest true start
        let timestamps = [
            0, 14_999, 15_000, 29_999, 7, -1, -15_000, -15_001, 45_000, 44_999, i64::MAX, i64::MIN,
            i64::MIN + 5, edge - 1, edge, edge + WINDOW_MS - 1, i64::MAX - 20_000, i64::MAX, 0,
        ];
        for timestamp in timestamps {
            assert_eq!(counter.window_of(timestamp), window_start(timestamp), "at {timestamp}");
        }
    }

    fn click(k: u64) -> ClickEvent {
        ClickEvent::nth(k)
    }

    #[test]
    fn a_window_fires_when_the_watermark_reaches_its_end_minus_one() {
        let mut counter = WindowCounter::new(128);
        (0..6000).for_each(|k| { counter.process(click(k)); });
        assert!(counter.advance(14_998).is_empty());
        let fired = counter.advance(14_999);
        assert_eq!(fired.len(), 6);
        assert!(fired.iter().all(|s| s.count == 1000 && s.window_end_ms == 15_000));
        assert!(counter.state().key_groups.is_empty());
    }

    /// Settling between events (every watermark does) loses no count and adds none twice, and a
    /// window settled and then fired takes no more events.
    #[test]
    fn counts_settled_between_events_add_up_and_a_fired_window_takes_no_more() {
        let mut counter = WindowCounter::new(128);
        for k in 0..6000 {
            counter.process(click(k));
            if k % 7 == 0 {
                counter.advance(i64::MIN);
            }
            if k % 11 == 0 {
                let _ = counter.state();
            }
        }
        let fired = counter.advance(14_999);
        assert_eq!(fired.len(), 6);
        assert!(fired.iter().all(|s| s.count == 1000), "{fired:?}");
        assert_eq!(counter.process(click(6)), Some((0, "/help".into())));
        assert!(counter.state().key_groups.is_empty());
    }

    #[test]
    fn events_of_a_fired_window_are_late_and_dropped() {
        let mut counter = WindowCounter::new(128);
        counter.process(click(0));
        counter.advance(20_000);
        assert_eq!(counter.process(click(6)), Some((0, "/help".into())));
        assert_eq!(counter.late_records_dropped, 1);
        assert!(counter.advance(40_000).is_empty());
    }

    #[test]
    fn a_restore_takes_only_its_own_key_groups_and_their_timers() {
        let mut before = WindowCounter::new(128);
        (0..600).for_each(|k| { before.process(click(k)); });
        // p=2: subtask 1 owns key groups 64..=127: /help (111) and /shop (73).
        let mut after = WindowCounter::new(128);
        after.restore(before.state().clone(), KeyGroupRange::of_subtask(128, 2, 1));
        let fired = after.advance(14_999);
        let pages: Vec<&str> = fired.iter().map(|s| s.page.as_str()).collect();
        assert_eq!(pages, vec!["/shop", "/help"]);
        assert!(fired.iter().all(|s| s.count == 100));
    }

    /// Planted bug `wrong-key-group-on-rescale`: unchanged at the same parallelism; from 2 to 3,
    /// subtask 1 takes 64..=127 instead of its own 43..=85.
    #[test]
    fn with_the_wrong_key_group_on_rescale_a_subtask_restores_the_old_range() {
        let wrong = Plants::of([PlantedBug::WrongKeyGroupOnRescale]);
        for plants in [Plants::NONE, wrong] {
            assert_eq!(restore_range(128, 2, 1, 2, plants), KeyGroupRange::of_subtask(128, 2, 1));
            assert_eq!(restore_range(128, 3, 1, 0, plants), KeyGroupRange::of_subtask(128, 3, 1));
        }
        assert_eq!(restore_range(128, 3, 1, 2, Plants::NONE), KeyGroupRange { start: 43, end: 85 });
        assert_eq!(restore_range(128, 3, 1, 2, wrong), KeyGroupRange { start: 64, end: 127 });
    }

    /// Planted bug `timers-lost-on-restore`: the restored counts are there, and never fire.
    #[test]
    fn with_timers_lost_on_restore_a_restored_window_never_fires() {
        let mut before = WindowCounter::new(128);
        (0..600).for_each(|k| { before.process(click(k)); });
        let mut after = WindowCounter::planted(128, Plants::of([PlantedBug::TimersLostOnRestore]));
        after.restore(before.state().clone(), KeyGroupRange::of_subtask(128, 1, 0));
        assert_eq!(after.state().key_groups.values().map(|w| w.len()).sum::<usize>(), 6);
        assert!(after.advance(i64::MAX).is_empty(), "no timer, no result");
        let mut faithful = WindowCounter::planted(128, Plants::NONE);
        faithful.restore(before.state().clone(), KeyGroupRange::of_subtask(128, 1, 0));
        assert_eq!(faithful.advance(i64::MAX).len(), 6);
    }

    #[test]
    fn a_processing_time_window_counts_what_was_handled_while_it_was_open() {
        let mut counter = WindowCounter::new(128);
        // Event time plays no part: events of any timestamp count where the clock is.
        counter.process_at(click(0), 14_000);
        counter.process_at(click(6_000_000), 14_999);
        counter.process_at(click(6), 15_000);
        assert_eq!(counter.next_timer(), Some(14_999));
        assert!(counter.fire_processing_time(14_999).is_empty(), "the last millisecond has not passed");
        let fired = counter.fire_processing_time(15_000);
        let [fire] = fired.as_slice() else { panic!("{fired:?}") };
        assert_eq!((fire.statistics.window_start_ms, fire.statistics.count), (0, 2));
        assert_eq!((fire.restored, fire.handled_ms), (0, Some((14_000, 14_999))));
        let [next] = counter.fire_processing_time(40_000).try_into().unwrap();
        assert_eq!((next.statistics.window_start_ms, next.statistics.count), (15_000, 1));
        assert_eq!(counter.late_records_dropped, 0);
    }

    #[test]
    fn a_restored_processing_time_window_fires_with_its_restored_count_named() {
        let mut before = WindowCounter::new(128);
        (0..3).for_each(|_| before.process_at(click(0), 1_000));
        let mut after = WindowCounter::new(128);
        after.restore(before.state().clone(), KeyGroupRange::of_subtask(128, 1, 0));
        after.process_at(click(0), 2_000);
        let [fire] = after.fire_processing_time(60_000).try_into().unwrap();
        assert_eq!((fire.statistics.count, fire.restored, fire.handled_ms), (4, 3, Some((2_000, 2_000))));
    }

    #[test]
    fn a_page_going_back_and_forth_between_windows_counts_each_event_once() {
        let mut counter = WindowCounter::new(128);
        let help_at = |timestamp_ms| ClickEvent { timestamp_ms, ..click(0) };
        for timestamp_ms in [1_000, 2_000, 16_000, 3_000, 17_000, 18_000, 4_000] {
            assert_eq!(counter.process(help_at(timestamp_ms)), None);
        }
        let counts: Vec<u64> = counter.state().key_groups.values().flat_map(|w| w.values().copied()).collect();
        assert_eq!(counts, vec![4, 3], "read while counts are unsettled");
        counter.process(help_at(5_000));
        let fired = counter.advance(i64::MAX);
        let counts: Vec<(i64, u64)> = fired.iter().map(|s| (s.window_start_ms, s.count)).collect();
        assert_eq!(counts, vec![(0, 5), (15_000, 3)]);
    }

    #[test]
    fn state_is_kept_per_key_group() {
        let mut counter = WindowCounter::new(128);
        (0..6).for_each(|k| { counter.process(click(k)); });
        let groups: Vec<u32> = counter.state().key_groups.keys().map(|g| g.0).collect();
        assert_eq!(groups, vec![15, 16, 38, 61, 73, 111]);
    }
}
