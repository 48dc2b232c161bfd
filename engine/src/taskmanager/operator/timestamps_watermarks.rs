//! `Timestamps/Watermarks` (docs/model/job.md#event-time-and-watermarks): takes each event's own
//! timestamp and emits bounded out-of-orderness watermarks (max − 200 − 1) every 200 ms, one
//! generator per Kafka partition combined by min over non-idle partitions (Flink's per-partition
//! watermarks); a partition without records for 5 s is idle, and a subtask with only idle (or no)
//! partitions marks its output idle.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use madsim::time::Instant;

use crate::protocol::checkpoint::TaskSnapshot;
use crate::protocol::data::{Record, StreamElement, WatermarkStatus};
use crate::taskmanager::network::GateEvent;
use crate::taskmanager::task::{TaskContext, TaskControl, TaskError};
use crate::trace::Event;
use crate::timer::Ticker;

/// The bound on out-of-orderness.
pub const OUT_OF_ORDERNESS_MS: i64 = 200;
/// How often watermarks are emitted (processing time).
pub const WATERMARK_INTERVAL: Duration = Duration::from_millis(200);
/// How long a partition may go without records before it is idle.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// One partition's bounded-out-of-orderness generator.
#[derive(Clone, Copy, Debug)]
struct PartitionClock {
    max_timestamp: i64,
    last_record: Instant,
}

impl PartitionClock {
    fn watermark(&self) -> i64 {
        if self.max_timestamp == i64::MIN {
            i64::MIN
        } else {
            self.max_timestamp - OUT_OF_ORDERNESS_MS - 1
        }
    }

    fn is_idle(&self, now: Instant) -> bool {
        now.duration_since(self.last_record) >= IDLE_TIMEOUT
    }
}

/// The operator's runtime state (watermarks restart from the minimum on restore: no snapshot).
struct WatermarkGenerator {
    partitions: BTreeMap<u32, PartitionClock>,
    /// Until the source says which partitions it reads, hold everything back.
    assigned: bool,
    emitted: i64,
    idle: bool,
    /// The partitions idle now, as last traced.
    idle_partitions: BTreeSet<u32>,
}

impl WatermarkGenerator {
    /// The combined watermark, or `None` when every partition is idle (or there are none).
    fn current(&self, now: Instant) -> Option<i64> {
        self.partitions.values().filter(|p| !p.is_idle(now)).map(PartitionClock::watermark).min()
    }
}

/// Runs the operator until its input ends.
pub async fn run(mut context: TaskContext) -> Result<(), TaskError> {
    let mut input = context.input.take().expect("Timestamps/Watermarks has an input");
    let mut output = context.output.take().expect("Timestamps/Watermarks has an output");
    let mut generator = WatermarkGenerator {
        partitions: BTreeMap::new(),
        assigned: false,
        emitted: i64::MIN,
        idle: false,
        idle_partitions: BTreeSet::new(),
    };
    context.running().await;
    let clock = crate::timer::Clock::current();
    let mut watermark_tick = Ticker::new(WATERMARK_INTERVAL);
    let mut flush_tick = Ticker::new(crate::taskmanager::network::BUFFER_TIMEOUT);
    loop {
        tokio::select! {
            biased;
            _ = watermark_tick.tick() => {
                if !generator.assigned {
                    continue;
                }
                let now = clock.now();
                // Traced once per spell of idleness: the cause a late drop downstream points at.
                for (partition, partition_clock) in &generator.partitions {
                    let idle = partition_clock.is_idle(now);
                    if idle && generator.idle_partitions.insert(*partition) {
                        context.services.trace.record(Event::PartitionIdle {
                            task: context.tdd.display_name(),
                            partition: *partition,
                            idle_after: IDLE_TIMEOUT,
                        });
                    } else if !idle {
                        generator.idle_partitions.remove(partition);
                    }
                }
                match generator.current(now) {
                    None if !generator.idle => {
                        generator.idle = true;
                        output.broadcast(StreamElement::WatermarkStatus(WatermarkStatus::Idle)).await?;
                    }
                    None => {}
                    Some(watermark) => {
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
            _ = flush_tick.tick() => output.flush_all().await?,
            // Nothing to commit here; keep the queue drained, and stop when cancelled.
            Some(control) = context.control.recv() => {
                if control == TaskControl::Cancel {
                    return Err(TaskError::Canceled);
                }
            }
            event = input.next() => {
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
                            let clock = generator
                                .partitions
                                .entry(partition)
                                .or_insert(PartitionClock { max_timestamp: i64::MIN, last_record: now });
                            clock.max_timestamp = clock.max_timestamp.max(event.timestamp_ms);
                            clock.last_record = now;
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
                                generator
                                    .partitions
                                    .entry(partition)
                                    .or_insert(PartitionClock { max_timestamp: i64::MIN, last_record: now });
                            }
                            generator.assigned = true;
                        }
                        GateEvent::Closed => return Ok(()),
                        // The source emits no watermarks of its own.
                        GateEvent::Record(..) | GateEvent::Watermark(_) | GateEvent::Status(_) => {}
                    }
                    next = input.next_buffered();
                }
            }
        }
    }
}
