//! `ClickEventStatistics Sink` (docs/model/checkpoints.md#sinks): writes each window result as JSON
//! to `output`. Sink subtask i writes to partition i mod partitions (Flink's fixed partitioner).
//! - At-least-once (the playground's): records go out as they come; before a barrier passes,
//!   the sink flushes and waits until the broker acknowledged everything.
//! - Exactly-once: one Kafka transaction per checkpoint interval; on barrier n the open one is
//!   flushed and kept as pending for n, and a new one opens; when checkpoint n completes the
//!   pending one commits. On restore the sink first commits what its checkpoint recorded as
//!   pending, and only then fences and aborts whatever else its transactional ids left open,
//!   for every subtask index it answers for (see `abort_lingering_transactions`). A recorded
//!   transaction the broker already aborted is logged as lost and dropped, not retried
//!   forever. Cancelled, the sink aborts its open transaction.

use std::collections::BTreeMap;
use std::task::Poll;
use std::time::Duration;

use smol_str::SmolStr;

use crate::kafka::{
    Consumer, ConsumerConfig, Partitioner, Producer, ProducerConfig, RecordedOutcome,
    TransactionHandle, TransactionalProducer, abort_lingering, commit_recorded,
};
use crate::plant::PlantedBug;
use crate::protocol::checkpoint::TaskSnapshot;
use crate::protocol::data::Record;
use crate::protocol::job::SinkMode;
use crate::taskmanager::network::GateEvent;
use crate::taskmanager::control::TaskControl;
use crate::taskmanager::task_context::{TaskContext, TaskError};
use crate::trace::{Event, SinkAbort};

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

/// What woke the sink's loop.
enum Woken {
    Control(TaskControl),
    Input(GateEvent),
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
    // Planted bugs (docs/planted-bugs.md), read once.
    let commit_at_barrier = services.plants.has(PlantedBug::SinkCommitsBeforeCheckpoint);
    let abort_restored = services.plants.has(PlantedBug::SinkAbortsRestoredTransactions);
    let mut config = ProducerConfig::new(services.broker);
    config.partitioner = Partitioner::Fixed(tdd.subtask % partitions);
    let mut writer = match tdd.submission.sink_mode {
        SinkMode::AtLeastOnce => {
            context.running().await;
            Writer::AtLeastOnce(Producer::new(services.rpc.clone(), config.clone()))
        }
        SinkMode::ExactlyOnce => {
            config.transaction_timeout = tdd.submission.transaction_timeout;
            let restored = context.restored_snapshots().await?;
            let restored_parallelism = restored.len() as u32;
            let checkpoint = context.restored_checkpoint().unwrap_or(0);
            // 1. Commit what the restored checkpoint recorded as pending (idempotent), for
            //    every old subtask whose transactions this subtask now answers for.
            for (old_subtask, snapshot) in restored {
                let TaskSnapshot::Sink { pending } = snapshot else { continue };
                // The planted mistake skips the commit: step 2 then aborts them as lingering.
                if old_subtask % tdd.parallelism != tdd.subtask || abort_restored {
                    continue;
                }
                for handle in pending.values() {
                    commit_pending(&context, handle, checkpoint, true).await?;
                }
            }
            // 2. Only then fence and abort anything else the ids it answers for left open.
            let aborted = abort_lingering_transactions(&context, &config, restored_parallelism).await?;
            if !aborted.is_empty() {
                services.trace.record(Event::TransactionsAborted {
                    task: context.display_name(),
                    transactional_ids: aborted,
                    why: SinkAbort::Lingering { restored_checkpoint: checkpoint },
                });
            }
            let open = open_transaction(&context, &config, checkpoint + 1).await?;
            context.running().await;
            Writer::ExactlyOnce { open, pending: BTreeMap::new() }
        }
    };
    let mut json = Vec::with_capacity(128);
    loop {
        // What `tokio::select!` (biased) over the control line and the input would find, polled
        // by hand as the other operators do (its loop over the branches and their masks cost
        // about 40 instructions a turn). The control line, once closed, is not polled again
        // this turn.
        let mut control_closed = false;
        let woken = std::future::poll_fn(|cx| {
            if let Poll::Ready(control) = context.control.poll_open(cx, &mut control_closed) {
                return Poll::Ready(Woken::Control(control));
            }
            input.poll_next(cx).map(Woken::Input)
        })
        .await;
        match woken {
            Woken::Control(control) => match (control, &mut writer) {
                (TaskControl::CheckpointComplete(id), Writer::ExactlyOnce { pending, .. }) => {
                    let ready: Vec<u64> = pending.range(..=id).map(|(n, _)| *n).collect();
                    for n in ready {
                        let handle = pending.remove(&n).expect("listed above");
                        commit_pending(&context, &handle, n, false).await?;
                    }
                }
                (TaskControl::Cancel, _) => {
                    // Closing the writer aborts its open transaction (Flink's KafkaWriter), so
                    // readers are not held up until the broker's timeout aborts it. Best effort:
                    // the TaskManager stops waiting after its cancellation timeout.
                    if let Writer::ExactlyOnce { open, .. } = writer {
                        let id = open.handle().transactional_id;
                        if open.abort().await.is_ok() {
                            services.trace.record(Event::TransactionsAborted {
                                task: context.display_name(),
                                transactional_ids: vec![id],
                                why: SinkAbort::Cancelled,
                            });
                        }
                    }
                    return Err(TaskError::Canceled);
                }
                _ => {}
            },
            Woken::Input(event) => match event {
                GateEvent::Record(_, Record::Statistics(statistics)) => {
                    json.clear();
                    statistics.write_json(&mut json);
                    let timestamp = statistics.window_end_ms - 1;
                    let transaction = match &writer {
                        Writer::AtLeastOnce(producer) => {
                            producer.send(&topic, timestamp, &json);
                            None
                        }
                        Writer::ExactlyOnce { open, .. } => {
                            open.send(&topic, timestamp, &json);
                            Some(open.handle())
                        }
                    };
                    context.metrics.add_records_out(1);
                    services.trace.record(Event::ResultWritten {
                        task: context.display_name(),
                        statistics,
                        transaction,
                    });
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
                            if commit_at_barrier {
                                // The planted mistake: committed before checkpoint `id` is
                                // complete, so a restore of an earlier one writes it again.
                                commit_pending(&context, &open.handle(), id, false).await?;
                            } else {
                                pending.insert(id, open.handle());
                            }
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

/// Commits a transaction recorded as pending by checkpoint `checkpoint_id`. One the broker
/// already aborted (its timeout passed while the job was down) is logged as lost and dropped,
/// as Flink's committer does: failing would restore the same checkpoint and fail again forever.
async fn commit_pending(
    context: &TaskContext,
    handle: &TransactionHandle,
    checkpoint_id: u64,
    on_restore: bool,
) -> Result<(), TaskError> {
    let services = &context.services;
    let outcome = commit_recorded(&services.rpc, services.broker, handle).await.map_err(kafka)?;
    services.trace.record(match outcome {
        RecordedOutcome::Committed => Event::TransactionCommitted {
            task: context.display_name(),
            transaction: handle.clone(),
            checkpoint_id,
            on_restore,
        },
        RecordedOutcome::Lost { cause } => {
            Event::TransactionLost { transaction: handle.clone(), checkpoint_id, cause }
        }
    });
    Ok(())
}

/// The sink subtask indices whose transactional ids subtask `subtask` of `parallelism` answers
/// for: its own, then every multiple of the parallelism above it (Flink's KafkaSink assigns an
/// old index to the new subtask `index % parallelism`).
pub fn owned_indices(subtask: u32, parallelism: u32) -> impl Iterator<Item = u32> {
    (0u32..).map_while(move |k| k.checked_mul(parallelism)?.checked_add(subtask))
}

/// Fences and aborts what the transactional ids of every index this subtask answers for left
/// open, as Flink's KafkaSink does on every start: its own index always, every index the
/// restored state's parallelism had, and above that the indices a job at a higher parallelism
/// may have used, probing upwards until an index whose ids were never used. Without it, a job
/// resubmitted at a lower parallelism leaves its old subtasks' transactions open: they pin
/// the last stable offset and hide every later result from `read_committed` readers until the
/// broker's transaction timeout.
async fn abort_lingering_transactions(
    context: &TaskContext,
    config: &ProducerConfig,
    restored_parallelism: u32,
) -> Result<Vec<SmolStr>, TaskError> {
    let (services, tdd) = (&context.services, &context.tdd);
    let mut aborted = Vec::new();
    for index in owned_indices(tdd.subtask, tdd.parallelism) {
        let prefix = format!("{TRANSACTIONAL_ID_PREFIX}-{index}-");
        let lingering =
            abort_lingering(&services.rpc, services.broker, &prefix, &[], config.transaction_timeout)
                .await
                .map_err(kafka)?;
        aborted.extend(lingering.aborted);
        let must_cover = index == tdd.subtask || index < restored_parallelism;
        if !lingering.ever_used && !must_cover {
            break;
        }
    }
    Ok(aborted)
}

/// Opens the transaction whose records checkpoint `checkpoint_id` will commit.
async fn open_transaction(
    context: &TaskContext,
    config: &ProducerConfig,
    checkpoint_id: u64,
) -> Result<TransactionalProducer, TaskError> {
    let id: SmolStr =
        format!("{TRANSACTIONAL_ID_PREFIX}-{}-{checkpoint_id}", context.tdd.subtask).into();
    let producer =
        TransactionalProducer::init(context.services.rpc.clone(), config.clone(), &id).await.map_err(kafka)?;
    context.services.trace.record(Event::TransactionBegun {
        task: context.display_name(),
        transaction: producer.handle(),
        checkpoint_id,
    });
    Ok(producer)
}

#[cfg(test)]
mod tests {
    use super::owned_indices;

    #[test]
    fn a_subtask_answers_for_its_index_and_every_multiple_of_the_parallelism_above_it() {
        let first = |subtask, parallelism| owned_indices(subtask, parallelism).take(4).collect::<Vec<_>>();
        assert_eq!(first(0, 2), [0, 2, 4, 6]);
        assert_eq!(first(1, 2), [1, 3, 5, 7]);
        assert_eq!(first(0, 1), [0, 1, 2, 3]);
        // After a scale-down from 4 to 2, old subtasks 2 and 3 belong to new 0 and 1.
        assert!(first(0, 2).contains(&2) && first(1, 2).contains(&3));
        assert_eq!(owned_indices(u32::MAX - 1, 2).count(), 1, "stops before overflowing");
    }
}
