//! `ClickEventStatistics Sink` (spec §14): writes each window result as JSON to `output`.
//! At-least-once: records go to Kafka as they come (batched by the producer's linger).
//! Sink subtask i writes to partition i mod partitions (Flink's fixed partitioner).

use std::time::Duration;

use crate::kafka::{Consumer, ConsumerConfig, Partitioner, Producer, ProducerConfig};
use crate::protocol::data::Record;
use crate::taskmanager::network::GateEvent;
use crate::taskmanager::task::{TaskContext, TaskError};

/// Runs the sink until its input ends.
pub async fn run(mut context: TaskContext) -> Result<(), TaskError> {
    let mut input = context.input.take().expect("the sink has an input");
    let services = &context.services;
    let topic = context.tdd.submission.args.output_topic.clone();
    let metadata = Consumer::new(services.rpc.clone(), ConsumerConfig::new(services.broker));
    let partitions = loop {
        match metadata.partitions_for(&topic).await {
            Ok(n) if n > 0 => break n,
            _ => madsim::time::sleep(Duration::from_millis(500)).await,
        }
    };
    let mut config = ProducerConfig::new(services.broker);
    config.partitioner = Partitioner::Fixed(context.tdd.subtask % partitions);
    let producer = Producer::new(services.rpc.clone(), config);
    let mut json = Vec::with_capacity(128);
    loop {
        match input.next().await {
            GateEvent::Record(_, Record::Statistics(statistics)) => {
                json.clear();
                statistics.write_json(&mut json);
                producer.send(&topic, statistics.window_end_ms - 1, &json);
                context.trace(format!("wrote {}", String::from_utf8_lossy(&json)));
            }
            GateEvent::Closed => {
                producer.flush().await.map_err(|e| TaskError::Kafka(e.to_string()))?;
                return Ok(());
            }
            _ => {}
        }
    }
}
