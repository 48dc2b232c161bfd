//! The Kafka-style log (spec §6): one broker node with durable, segmented partition logs and
//! committed offsets, an idempotent batching producer, and a long-polling consumer. It knows
//! nothing of Flink; transactions (read_committed, markers) come later.

pub mod broker;
pub mod consumer;
pub mod log;
pub mod producer;

pub use crate::protocol::kafka::{
    IsolationLevel, KafkaError, ProduceAck, TopicPartition, TopicSpec,
};
pub use broker::{BrokerConfig, run};
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord};
pub use producer::{Partitioner, Producer, ProducerConfig};
