//! What a TaskManager reports of its tasks' metrics to the JobManager (docs/model/rest.md#metrics):
//! one [`TaskMetricsReport`] per running task, carried by the heartbeat's answer. Counters are
//! cumulative since the task attempt started; gauges are the value when the heartbeat was
//! answered. No I/O here.

use serde::{Deserialize, Serialize};

use super::ids::ExecutionAttemptId;

/// One task attempt's metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMetricsReport {
    /// The attempt.
    pub attempt_id: ExecutionAttemptId,
    /// `numRecordsIn`: records the task took in (from its input gate; the source: from Kafka).
    pub records_in: u64,
    /// `numRecordsOut`: records the task put out (into its output channels; the sink: to Kafka).
    pub records_out: u64,
    /// `numBytesIn`: bytes of the network buffers the task received.
    pub bytes_in: u64,
    /// `numBytesOut`: bytes of the network buffers the task shipped.
    pub bytes_out: u64,
    /// `numLateRecordsDropped` (the window operator's).
    pub late_records_dropped: u64,
    /// `currentInputWatermark` (ms); `None` before the first watermark (Flink shows
    /// Long.MIN_VALUE).
    pub current_input_watermark: Option<i64>,
    /// `outputQueueLength`: output buffers queued and not yet taken by the consumer.
    pub output_queue_length: u32,
    /// Buffers in the task's output pool (for `outPoolUsage` = queued / pool).
    pub output_pool_size: u32,
    /// Exclusive buffers of the input gate holding data not read yet
    /// (`inputExclusiveBuffersUsage` = used / all).
    pub input_exclusive_buffers_used: u32,
    /// Exclusive buffers of the input gate in all (2 per input channel; 0 without an input).
    pub input_exclusive_buffers: u32,
    /// Floating buffers the input gate has lent to its channels (`inputFloatingBuffersUsage` =
    /// used / all).
    pub input_floating_buffers_used: u32,
    /// Floating buffers of the input gate in all (8; 0 without an input).
    pub input_floating_buffers: u32,
    /// Total time the task waited for credit to ship a buffer, in ms (Flink's
    /// `backPressuredTimeMsPerSecond` is its rate).
    pub back_pressured_ms: u64,
    /// Total time the task spent processing its input, in ms (Flink's `busyTimeMsPerSecond` is
    /// its rate).
    pub busy_ms: u64,
}
