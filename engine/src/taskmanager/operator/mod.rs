//! The job's operators, one file each, in the order a click event meets them:
//! Kafka source → timestamps/watermarks → (with `--backpressure`, the backpressure map) → window
//! counter → Kafka sink.

pub mod backpressure_map;
pub mod kafka_sink;
pub mod kafka_source;
pub mod timestamps_watermarks;
pub mod window_counter;
