//! The Kafka-style log (docs/model/kafka.md#overview): one broker node with durable, segmented
//! partition logs, committed offsets and a transaction coordinator; an idempotent batching
//! producer, a transactional producer for the exactly-once sink, and a long-polling consumer that
//! reads `read_uncommitted` or `read_committed`. It knows nothing of Flink.

pub mod broker;
pub mod consumer;
mod coordinator;
pub mod log;
pub mod producer;
mod purgatory;
#[cfg(test)]
pub(crate) mod test_cluster;
pub mod transaction;

pub use crate::protocol::kafka::{
    IsolationLevel, KafkaError, ProduceAck, TopicPartition, TopicSpec, TransactionState,
};
pub use broker::{BrokerConfig, run};
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, Fetched, FetchedRecord};
pub use producer::{Partitioner, Producer, ProducerConfig, RecordFeed};
pub use transaction::{
    Lingering, RecordedOutcome, TransactionHandle, TransactionalProducer, abort_lingering,
    commit_recorded, commit_transaction, list_transactions,
};
