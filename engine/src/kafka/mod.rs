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

/// (temporary, replaced by the transactions work) A pending transaction recorded in a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TransactionHandle {
    /// The transactional id.
    pub transactional_id: smol_str::SmolStr,
    /// Its producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub epoch: i16,
}

/// (temporary stub) transactional producer.
pub struct TransactionalProducer;
impl TransactionalProducer {
    /// stub
    pub async fn init(_rpc: crate::rpc::Rpc, _config: ProducerConfig, _id: &str) -> Result<TransactionalProducer, KafkaError> { unimplemented!() }
    /// stub
    pub fn send(&self, _topic: &str, _ts: i64, _value: &[u8]) {}
    /// stub
    pub async fn flush(&self) -> Result<(), KafkaError> { Ok(()) }
    /// stub
    pub fn handle(&self) -> TransactionHandle { unimplemented!() }
}
/// stub
pub async fn commit_transaction(_rpc: &crate::rpc::Rpc, _broker: std::net::SocketAddr, _h: &TransactionHandle) -> Result<(), KafkaError> { Ok(()) }
/// stub
pub async fn abort_lingering(_rpc: &crate::rpc::Rpc, _broker: std::net::SocketAddr, _prefix: &str, _keep: &[smol_str::SmolStr]) -> Result<Vec<smol_str::SmolStr>, KafkaError> { Ok(vec![]) }
