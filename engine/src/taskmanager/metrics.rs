//! A running task's metrics (docs/model/rest.md#metrics): counters its input gate, record writer
//! and operators bump as they work, read by the heartbeat's answer. Shared by the task and the
//! node's RPC handlers, so atomic types; a run has one OS thread, so the order of updates is the
//! simulation's, and counts are bumped without atomic increments (`crate::counter`).

use std::sync::atomic::{AtomicI64, Ordering};

use crate::counter::Counter;
use crate::protocol::ids::ExecutionAttemptId;
use crate::protocol::metrics::TaskMetricsReport;

use super::flow_control::FlowControlProbe;

/// One task attempt's metrics.
#[derive(Debug, Default)]
pub struct TaskMetrics {
    records_in: Counter,
    records_out: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    late_records_dropped: Counter,
    /// `i64::MIN` until the first watermark.
    current_input_watermark: AtomicI64,
    /// The task's flow control: its output queues, input buffers, blocked and busy time (kept
    /// by its record writer and input gate).
    flow_control: FlowControlProbe,
}

impl TaskMetrics {
    /// Fresh metrics: every counter 0, no watermark yet.
    pub fn new() -> TaskMetrics {
        TaskMetrics { current_input_watermark: AtomicI64::new(i64::MIN), ..TaskMetrics::default() }
    }

    /// Records taken in (from the input gate, or from Kafka by the source).
    pub fn add_records_in(&self, n: u64) {
        self.records_in.add(n);
    }

    /// Records put out (into the output channels, or to Kafka by the sink).
    pub fn add_records_out(&self, n: u64) {
        self.records_out.add(n);
    }

    /// Bytes of network buffers received.
    pub fn add_bytes_in(&self, n: u64) {
        self.bytes_in.add(n);
    }

    /// Bytes of network buffers shipped.
    pub fn add_bytes_out(&self, n: u64) {
        self.bytes_out.add(n);
    }

    /// Events the window operator dropped as late.
    pub fn add_late_records_dropped(&self, n: u64) {
        self.late_records_dropped.add(n);
    }

    /// The input watermark advanced.
    pub fn set_input_watermark(&self, watermark: i64) {
        self.current_input_watermark.store(watermark, Ordering::Relaxed);
    }

    /// The probe the task's record writer and input gate keep its flow control in.
    pub fn flow_control(&self) -> FlowControlProbe {
        self.flow_control.clone()
    }

    /// The values now, for the heartbeat's answer.
    pub fn report(&self, attempt_id: ExecutionAttemptId) -> TaskMetricsReport {
        let watermark = self.current_input_watermark.load(Ordering::Relaxed);
        let flow = self.flow_control.read();
        TaskMetricsReport {
            attempt_id,
            records_in: self.records_in.get(),
            records_out: self.records_out.get(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            late_records_dropped: self.late_records_dropped.get(),
            current_input_watermark: (watermark != i64::MIN).then_some(watermark),
            output_queue_length: flow.queued_buffers as u32,
            output_pool_size: flow.capacity as u32,
            input_exclusive_buffers_used: flow.input.exclusive_used as u32,
            input_exclusive_buffers: flow.input.exclusive_total as u32,
            input_floating_buffers_used: flow.input.floating_used as u32,
            input_floating_buffers: flow.input.floating_total as u32,
            back_pressured_ms: flow.blocked.as_millis() as u64,
            busy_ms: flow.busy.as_millis() as u64,
        }
    }
}
