//! `Timestamps/Watermarks` (docs/model/job.md#event-time-and-watermarks): takes each event's own
//! timestamp and emits bounded out-of-orderness watermarks (max − bound − 1, the playground's
//! bound 200 ms) every 200 ms, one generator per Kafka partition combined by min over non-idle
//! partitions (Flink's per-partition watermarks); with idleness on (the playground's 5 s), a
//! partition without records for the timeout is idle, and a subtask whose partitions are all
//! idle, or that has none for that long, marks its output idle.

use std::collections::BTreeSet;
use std::task::Poll;
use std::time::Duration;

use madsim::time::Instant;

use crate::plant::{PlantedBug, Plants};
use crate::protocol::checkpoint::TaskSnapshot;
use crate::protocol::data::{Record, StreamElement, WatermarkStatus};
use crate::taskmanager::network::GateEvent;
use crate::taskmanager::control::TaskControl;
use crate::taskmanager::task_context::{TaskContext, TaskError};
use crate::trace::Event;
use crate::timer::Ticker;

/// How often watermarks are emitted (processing time).
pub const WATERMARK_INTERVAL: Duration = Duration::from_millis(200);

/// One partition's bounded-out-of-orderness generator.
#[derive(Clone, Copy, Debug)]
struct PartitionClock {
    max_timestamp: i64,
    last_record: Instant,
}

impl PartitionClock {
    fn watermark(&self, out_of_orderness_ms: i64) -> i64 {
        if self.max_timestamp == i64::MIN {
            i64::MIN
        } else {
            self.max_timestamp.saturating_sub(out_of_orderness_ms).saturating_sub(1)
        }
    }
}

/// The partitions' generators, sorted by partition. A subtask reads a handful: a binary search
/// of a short vector finds a record's, where a `BTreeMap` entry per record cost ~30 instructions.
#[derive(Debug, Default)]
struct PartitionClocks {
    clocks: Vec<(u32, PartitionClock)>,
    /// Where the last partition asked for is: a buffer's records come from one fetch, a
    /// partition's together, and the search cost about 25 instructions a record.
    last: usize,
}

impl PartitionClocks {
    /// The generator of `partition`, started (no record yet, last one `now`) if it had none.
    #[inline]
    fn get_or_start(&mut self, partition: u32, now: Instant) -> &mut PartitionClock {
        let last = self.last;
        if self.clocks.get(last).is_some_and(|(other, _)| *other == partition) {
            return &mut self.clocks[last].1;
        }
        let at = self.clocks.partition_point(|(other, _)| *other < partition);
        if self.clocks.get(at).is_none_or(|(other, _)| *other != partition) {
            self.clocks.insert(at, (partition, PartitionClock { max_timestamp: i64::MIN, last_record: now }));
        }
        self.last = at;
        &mut self.clocks[at].1
    }

    fn is_empty(&self) -> bool {
        self.clocks.is_empty()
    }

    /// Each partition and its generator, by partition.
    fn iter(&self) -> impl Iterator<Item = (&u32, &PartitionClock)> {
        self.clocks.iter().map(|(partition, clock)| (partition, clock))
    }

    fn values(&self) -> impl Iterator<Item = &PartitionClock> {
        self.clocks.iter().map(|(_, clock)| clock)
    }
}

/// Whether `since` is at least the idleness timeout ago; never with idleness off.
fn idle_since(since: Instant, now: Instant, idleness: Option<Duration>) -> bool {
    idleness.is_some_and(|timeout| now.duration_since(since) >= timeout)
}

/// What the subtask's output is at a watermark tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    /// Every partition is idle, or the subtask has none and has waited out the idleness timeout.
    Idle,
    /// Active, with the min over the active partitions (`i64::MIN` before any record, or with
    /// no partition at all: KafkaSource does not mark such a subtask idle by itself).
    Active(i64),
}

/// The operator's runtime state (watermarks restart from the minimum on restore: no snapshot).
struct WatermarkGenerator {
    partitions: PartitionClocks,
    /// When the source said which partitions it reads; until then, hold everything back.
    assigned_at: Option<Instant>,
    idleness: Option<Duration>,
    out_of_orderness_ms: i64,
    emitted: i64,
    idle: bool,
    /// The partitions idle now, as last traced.
    idle_partitions: BTreeSet<u32>,
}

impl WatermarkGenerator {
    /// A record of `partition` at `timestamp_ms` arrived `now`.
    #[inline(always)]
    fn saw(&mut self, partition: u32, timestamp_ms: i64, now: Instant) {
        let clock = self.partitions.get_or_start(partition, now);
        clock.max_timestamp = clock.max_timestamp.max(timestamp_ms);
        clock.last_record = now;
    }

    fn is_idle(&self, partition: &PartitionClock, now: Instant) -> bool {
        idle_since(partition.last_record, now, self.idleness)
    }

    /// The subtask's output at `now`, once its partitions are known (`assigned_at`).
    fn current(&self, assigned_at: Instant, now: Instant) -> Output {
        if self.partitions.is_empty() {
            return if idle_since(assigned_at, now, self.idleness) { Output::Idle } else { Output::Active(i64::MIN) };
        }
        self.partitions
            .values()
            .filter(|p| !self.is_idle(p, now))
            .map(|p| p.watermark(self.out_of_orderness_ms))
            .min()
            .map_or(Output::Idle, Output::Active)
    }
}

/// The bound the generators subtract, in milliseconds: the job's, or none under the planted bug
/// `watermark-without-bound` (docs/planted-bugs.md).
fn out_of_orderness_ms(bound: Duration, plants: Plants) -> i64 {
    if plants.has(PlantedBug::WatermarkWithoutBound) {
        return 0;
    }
    i64::try_from(bound.as_millis()).unwrap_or(i64::MAX)
}

/// What woke the operator's loop.
enum Woken {
    WatermarkTick,
    FlushTick,
    Control(TaskControl),
    Input(GateEvent),
}

/// Runs the operator until its input ends.
pub async fn run(mut context: TaskContext) -> Result<(), TaskError> {
    let mut input = context.input.take().expect("Timestamps/Watermarks has an input");
    let mut output = context.output.take().expect("Timestamps/Watermarks has an output");
    let submission = &context.tdd.submission;
    let mut generator = WatermarkGenerator {
        partitions: PartitionClocks::default(),
        assigned_at: None,
        idleness: submission.idleness,
        out_of_orderness_ms: out_of_orderness_ms(submission.out_of_orderness, context.services.plants),
        emitted: i64::MIN,
        idle: false,
        idle_partitions: BTreeSet::new(),
    };
    context.running().await;
    let clock = crate::timer::Clock::current();
    let mut watermark_tick = Ticker::new(WATERMARK_INTERVAL);
    let mut flush_tick = Ticker::new(crate::taskmanager::network::BUFFER_TIMEOUT);
    loop {
        // What `tokio::select!` (biased) over the two ticks, the control line and the input
        // would find, polled by hand: its loop over the branches and their masks cost about
        // 40 instructions a turn. The control line, once closed, is not polled again this turn.
        let woken = {
            let mut control_closed = false;
            std::future::poll_fn(|cx| {
                if watermark_tick.poll_tick(cx).is_ready() {
                    return Poll::Ready(Woken::WatermarkTick);
                }
                if flush_tick.poll_tick(cx).is_ready() {
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
            Woken::WatermarkTick => {
                let Some(assigned_at) = generator.assigned_at else { continue };
                let now = clock.now();
                // Traced once per spell of idleness: the cause a late drop downstream points at.
                for (partition, partition_clock) in generator.partitions.iter() {
                    let idle = generator.is_idle(partition_clock, now);
                    if idle && generator.idle_partitions.insert(*partition) {
                        context.services.trace.record(Event::PartitionIdle {
                            task: context.display_name(),
                            partition: *partition,
                            idle_after: generator.idleness.unwrap_or_default(),
                        });
                    } else if !idle {
                        generator.idle_partitions.remove(partition);
                    }
                }
                match generator.current(assigned_at, now) {
                    Output::Idle if !generator.idle => {
                        generator.idle = true;
                        output.broadcast(StreamElement::WatermarkStatus(WatermarkStatus::Idle)).await?;
                    }
                    Output::Idle => {}
                    Output::Active(watermark) => {
                        if generator.idle {
                            generator.idle = false;
                            output.broadcast(StreamElement::WatermarkStatus(WatermarkStatus::Active)).await?;
                        }
                        if watermark > generator.emitted {
                            generator.emitted = watermark;
                            output.broadcast(StreamElement::Watermark(watermark)).await?;
                        }
                    }
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
                // Work through the rest of the buffer before looking at the timers again. The
                // buffer's records arrive together: they share one reading of the clock.
                let now = clock.now();
                let mut next = Some(event);
                while let Some(event) = next.take() {
                    match event {
                        GateEvent::Barrier(barrier) => {
                            context.acknowledge(barrier, &TaskSnapshot::TimestampsWatermarks);
                            output.broadcast(StreamElement::Barrier(barrier)).await?;
                        }
                        GateEvent::Record(_, Record::Sourced { partition, event }) => {
                            generator.saw(partition, event.timestamp_ms, now);
                            if generator.idle {
                                generator.idle = false;
                                output.broadcast(StreamElement::WatermarkStatus(WatermarkStatus::Active)).await?;
                            }
                            if let Some(record) = output.emit_now(Record::Click(event)) {
                                output.emit(record).await?;
                            }
                        }
                        GateEvent::PartitionsAssigned(_, partitions) => {
                            for partition in partitions {
                                generator.partitions.get_or_start(partition, now);
                            }
                            generator.assigned_at.get_or_insert(now);
                        }
                        GateEvent::Closed => return Ok(()),
                        // The source emits no watermarks of its own.
                        GateEvent::Record(..) | GateEvent::Watermark(_) | GateEvent::Status(_) => {}
                    }
                    // The records behind it in the buffer, while the output is active: each
                    // handled here, out of the scrutinee before anything waits, so none is kept
                    // in the task's future across an await as `next` is (about 25 instructions
                    // a record); anything else goes back to the match above.
                    next = loop {
                        if generator.idle {
                            break input.next_buffered();
                        }
                        let Some((partition, event)) = input.next_buffered_sourced() else {
                            break input.next_buffered();
                        };
                        generator.saw(partition, event.timestamp_ms, now);
                        let full = output.emit_now(Record::Click(event));
                        if let Some(record) = full {
                            output.emit(record).await?;
                        }
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_clocks_keep_one_generator_per_partition_in_partition_order() {
        let now = Instant::now();
        let mut clocks = PartitionClocks::default();
        for (partition, timestamp) in [(3, 10), (1, 20), (3, 30), (2, 5), (2, 7), (2, 6), (1, 15)] {
            let clock = clocks.get_or_start(partition, now);
            clock.max_timestamp = clock.max_timestamp.max(timestamp);
        }
        clocks.get_or_start(0, now);
        let seen: Vec<(u32, i64)> = clocks.iter().map(|(p, c)| (*p, c.max_timestamp)).collect();
        assert_eq!(seen, vec![(0, i64::MIN), (1, 20), (2, 7), (3, 30)]);
    }

    /// Planted bug `watermark-without-bound`: the watermark follows the newest timestamp, so an
    /// event 1 ms older than it is already behind it.
    #[test]
    fn without_the_bound_the_watermark_is_the_newest_timestamp_minus_one() {
        let clock = PartitionClock { max_timestamp: 15_000, last_record: Instant::now() };
        let bound = Duration::from_millis(200);
        assert_eq!(clock.watermark(out_of_orderness_ms(bound, Plants::NONE)), 14_799);
        let planted = Plants::of([PlantedBug::WatermarkWithoutBound]);
        assert_eq!(clock.watermark(out_of_orderness_ms(bound, planted)), 14_999);
    }
}
