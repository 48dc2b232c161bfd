//! `ClickEventStatistics Sink` (spec §14): writes each window result as JSON to `output`.
//! Sink subtask i writes to partition i mod partitions (Flink's fixed partitioner).
//! - At-least-once (the playground's): records go out as they come; before a barrier passes,
//!   the sink flushes and waits until the broker acknowledged everything.
//! - Exactly-once: one Kafka transaction per checkpoint interval; on barrier n the open one is
//!   flushed and kept as pending for n, and a new one opens; when checkpoint n completes the
//!   pending one commits. On restore the sink first commits what its checkpoint recorded as
//!   pending, and only then fences and aborts whatever else its transactional ids left open.

use std::collections::BTreeMap;
use std::time::Duration;

use smol_str::SmolStr;

use crate::kafka::{
    Consumer, ConsumerConfig, Partitioner, Producer, ProducerConfig, TransactionHandle,
    TransactionalProducer, abort_lingering, commit_transaction,
};
use crate::protocol::checkpoint::TaskSnapshot;
use crate::protocol::data::Record;
use crate::protocol::job::SinkMode;
use crate::taskmanager::network::GateEvent;
use crate::taskmanager::task::{TaskContext, TaskControl, TaskError};

/// The sink's transactional id prefix (Flink's `transactionalIdPrefix`).
pub const TRANSACTIONAL_ID_PREFIX: &str = "click-event-count";

const METADATA_RETRY: Duration = Duration::from_millis(500);

fn kafka(error: impl std::fmt::Display) -> TaskError {
    TaskError::Kafka(error.to_string())
}

/// How records reach Kafka, by sink mode.
enum Writer {
    AtLeastOnce(Producer),
    ExactlyOnce {
        /// The transaction open now (records of the current checkpoint interval).
        open: TransactionalProducer,
        /// Flushed transactions waiting for their checkpoint to complete, by checkpoint id.
        pending: BTreeMap<u64, TransactionHandle>,
    },
}

/// Runs the sink until its input ends.
pub async fn run(mut context: TaskContext) -> Result<(), TaskError> {
    let mut input = context.input.take().expect("the sink has an input");
    let services = context.services.clone();
    let tdd = context.tdd.clone();
    let topic = tdd.submission.args.output_topic.clone();
    let metadata = Consumer::new(services.rpc.clone(), ConsumerConfig::new(services.broker));
    let partitions = loop {
        match metadata.partitions_for(&topic).await {
            Ok(n) if n > 0 => break n,
            _ => madsim::time::sleep(METADATA_RETRY).await,
        }
    };
    let mut config = ProducerConfig::new(services.broker);
    config.partitioner = Partitioner::Fixed(tdd.subtask % partitions);
    let mut writer = match tdd.submission.sink_mode {
        SinkMode::AtLeastOnce => {
            context.running().await;
            Writer::AtLeastOnce(Producer::new(services.rpc.clone(), config.clone()))
        }
        SinkMode::ExactlyOnce => {
            let restored = context.restored_snapshots().await?;
            let mine = format!("{TRANSACTIONAL_ID_PREFIX}-{}-", tdd.subtask);
            // 1. Commit what the restored checkpoint recorded as pending (idempotent), for
            //    every old subtask whose transactions this subtask now answers for.
            for (old_subtask, snapshot) in restored {
                let TaskSnapshot::Sink { pending } = snapshot else { continue };
                if old_subtask % tdd.parallelism != tdd.subtask {
                    continue;
                }
                for handle in pending.values() {
                    commit_transaction(&services.rpc, services.broker, handle).await.map_err(kafka)?;
                    context.trace(format!("committed transaction {} recorded by the checkpoint", handle.transactional_id));
                }
            }
            // 2. Only then fence and abort anything else its ids left open.
            let aborted = abort_lingering(&services.rpc, services.broker, &mine, &[]).await.map_err(kafka)?;
            if !aborted.is_empty() {
                context.trace(format!("aborted lingering transactions {aborted:?}"));
            }
            let first = context.restored_checkpoint().unwrap_or(0) + 1;
            let open = open_transaction(&context, &config, first).await?;
            context.running().await;
            Writer::ExactlyOnce { open, pending: BTreeMap::new() }
        }
    };
    let mut json = Vec::with_capacity(128);
    loop {
        tokio::select! {
            biased;
            Some(control) = context.control.recv() => {
                if let (TaskControl::CheckpointComplete(id), Writer::ExactlyOnce { pending, .. }) = (control, &mut writer) {
                    let ready: Vec<u64> = pending.range(..=id).map(|(n, _)| *n).collect();
                    for n in ready {
                        let handle = pending.remove(&n).expect("listed above");
                        commit_transaction(&services.rpc, services.broker, &handle).await.map_err(kafka)?;
                    }
                }
            }
            event = input.next() => match event {
                GateEvent::Record(_, Record::Statistics(statistics)) => {
                    json.clear();
                    statistics.write_json(&mut json);
                    let timestamp = statistics.window_end_ms - 1;
                    match &writer {
                        Writer::AtLeastOnce(producer) => producer.send(&topic, timestamp, &json),
                        Writer::ExactlyOnce { open, .. } => open.send(&topic, timestamp, &json),
                    }
                    context.trace(format!("wrote {}", String::from_utf8_lossy(&json)));
                }
                GateEvent::Barrier(barrier) => {
                    let id = barrier.checkpoint_id;
                    let pending = match &mut writer {
                        Writer::AtLeastOnce(producer) => {
                            producer.flush().await.map_err(kafka)?;
                            BTreeMap::new()
                        }
                        Writer::ExactlyOnce { open, pending } => {
                            open.flush().await.map_err(kafka)?;
                            pending.insert(id, open.handle());
                            *open = open_transaction(&context, &config, id + 1).await?;
                            pending.clone()
                        }
                    };
                    context.acknowledge(barrier, &TaskSnapshot::Sink { pending });
                }
                GateEvent::Closed => {
                    if let Writer::AtLeastOnce(producer) = &writer {
                        producer.flush().await.map_err(kafka)?;
                    }
                    return Ok(());
                }
                GateEvent::Record(..) | GateEvent::Watermark(_) | GateEvent::Status(_)
                | GateEvent::PartitionsAssigned(..) => {}
            },
        }
    }
}

/// Opens the transaction whose records checkpoint `checkpoint_id` will commit.
async fn open_transaction(
    context: &TaskContext,
    config: &ProducerConfig,
    checkpoint_id: u64,
) -> Result<TransactionalProducer, TaskError> {
    let id: SmolStr =
        format!("{TRANSACTIONAL_ID_PREFIX}-{}-{checkpoint_id}", context.tdd.subtask).into();
    TransactionalProducer::init(context.services.rpc.clone(), config.clone(), &id).await.map_err(kafka)
}
