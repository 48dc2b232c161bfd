//! `Backpressure` (docs/model/job.md#backpressure): the playground's map after keyBy(page) that
//! `--backpressure` inserts between the watermarks and the Counter. During even minutes of the
//! TaskManager's clock it spends 100 ms on every record (at most 10 records a second per subtask);
//! during odd minutes records pass unimpeded. It keeps no state. Its input gate fills, the
//! senders upstream run out of credit, and backpressure reaches the source
//! (docs/model/network.md#credits-and-backpressure).

use std::time::Duration;

use crate::protocol::data::{Record, StreamElement};
use crate::protocol::snapshot::TaskSnapshot;
use crate::taskmanager::network::{BUFFER_TIMEOUT, GateEvent};
use crate::taskmanager::control::TaskControl;
use crate::taskmanager::task_context::{TaskContext, TaskError};
use crate::timer::Ticker;

/// What the map spends on a record during an even minute.
pub const SLOW_RECORD: Duration = Duration::from_millis(100);

/// Whether the map is slow at `now_ms` of the TaskManager's clock: during even minutes.
pub fn is_slow(now_ms: i64) -> bool {
    now_ms.div_euclid(60_000) % 2 == 0
}

/// Runs the map until its input ends.
pub async fn run(mut context: TaskContext) -> Result<(), TaskError> {
    let mut input = context.input.take().expect("the map has an input");
    let mut output = context.output.take().expect("the map has an output");
    context.running().await;
    let clock = crate::timer::Clock::current();
    // The TaskManager's clock, as the Counter reads it (docs/model/job.md#processing-time).
    let origin = clock.now() - context.services.trace.elapsed();
    let now_ms = || (clock.now() - origin).as_millis() as i64;
    let mut flush_tick = Ticker::new(BUFFER_TIMEOUT);
    loop {
        tokio::select! {
            biased;
            _ = flush_tick.tick() => output.flush_all().await?,
            Some(control) = context.control.recv() => {
                if control == TaskControl::Cancel {
                    return Err(TaskError::Canceled);
                }
            }
            event = input.next() => {
                let mut next = Some(event);
                while let Some(event) = next.take() {
                    match event {
                        GateEvent::Record(_, record @ Record::Click(_)) => {
                            if is_slow(now_ms()) {
                                // A sleeping map thread: the record goes out after it, and the
                                // flusher ships it (one record per 100 ms flush).
                                tokio::select! {
                                    biased;
                                    Some(control) = context.control.recv() => {
                                        if control == TaskControl::Cancel {
                                            return Err(TaskError::Canceled);
                                        }
                                    }
                                    _ = madsim::time::sleep(SLOW_RECORD) => {}
                                }
                                output.emit(record).await?;
                                output.flush_all().await?;
                            } else if let Some(record) = output.emit_now(record) {
                                output.emit(record).await?;
                            }
                        }
                        GateEvent::Barrier(barrier) => {
                            context.acknowledge(barrier, &TaskSnapshot::Backpressure);
                            output.broadcast(StreamElement::Barrier(barrier)).await?;
                        }
                        GateEvent::Watermark(watermark) => {
                            output.broadcast(StreamElement::Watermark(watermark)).await?;
                        }
                        GateEvent::Status(status) => {
                            output.broadcast(StreamElement::WatermarkStatus(status)).await?;
                        }
                        GateEvent::Closed => return Ok(()),
                        GateEvent::Record(..) | GateEvent::PartitionsAssigned(..) => {}
                    }
                    next = input.next_buffered();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_is_slow_during_even_minutes_of_the_clock() {
        assert!(is_slow(0) && is_slow(59_999) && is_slow(120_000));
        assert!(!is_slow(60_000) && !is_slow(119_999) && !is_slow(181_000));
    }
}
