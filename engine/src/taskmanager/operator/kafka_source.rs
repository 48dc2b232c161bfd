//! `ClickEvent Source` (docs/model/job.md#the-job, docs/model/kafka.md#overview,
//! docs/model/job.md#partitions-and-key-groups): reads the `input` partitions this subtask owns,
//! deserializes each ClickEvent and passes it on with its partition. Starts from the group's
//! committed offsets, else the earliest; without checkpointing it auto-commits every 5 s.
//! On a checkpoint trigger it snapshots its offsets and emits the barrier behind every record
//! it has emitted; when the checkpoint completes it commits those offsets to the group. After
//! the barrier of `flink stop`'s savepoint it reads nothing more (Flink's synchronous
//! savepoint) until the JobManager finishes it, or tells it the savepoint failed.

use std::collections::BTreeMap;
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use crate::kafka::{Consumer, ConsumerConfig, Fetched, TopicPartition};
use crate::plant::PlantedBug;
use crate::protocol::click_event::{ClickEvent, DateReader};
use crate::protocol::snapshot::{SnapshotKind, TaskSnapshot};
use crate::protocol::data::{Record, StreamElement};
use crate::protocol::key_group::kafka_partition_owner;
use crate::taskmanager::network::BUFFER_TIMEOUT;
use crate::taskmanager::control::TaskControl;
use crate::taskmanager::task_context::{TaskContext, TaskError};
use crate::timer::Ticker;

/// The consumer group the playground's job uses.
pub const GROUP: &str = "click-event-count";
/// The Kafka client's auto-commit interval (when checkpointing is off).
pub const AUTO_COMMIT_INTERVAL: Duration = Duration::from_secs(5);
const RETRY_BACKOFF: Duration = Duration::from_millis(500);

/// What woke the source's loop.
enum Woken<P> {
    FlushTick,
    CommitTick,
    Control(TaskControl),
    Polled(P),
}

/// Runs the source until it is cancelled.
pub async fn run(mut context: TaskContext) -> Result<(), TaskError> {
    let mut output = context.output.take().expect("the source has an output");
    let services = context.services.clone();
    let tdd = context.tdd.clone();
    let topic = tdd.submission.args.input_topic.clone();
    let mut consumer = Consumer::new(services.rpc.clone(), ConsumerConfig::new(services.broker));
    let committer = Consumer::new(services.rpc.clone(), ConsumerConfig::new(services.broker));
    let partitions = loop {
        match consumer.partitions_for(&topic).await {
            Ok(n) => break n,
            Err(_) => madsim::time::sleep(RETRY_BACKOFF).await,
        }
    };
    // Planted bugs (docs/planted-bugs.md), read once.
    let offset_skew = u64::from(services.plants.has(PlantedBug::SourceRestoreOffsetSkew));
    let savepoint_without_drain = services.plants.has(PlantedBug::SavepointWithoutDrain);
    let owned: Vec<u32> = (0..partitions)
        .filter(|&p| kafka_partition_owner(&topic, p, tdd.parallelism) == tdd.subtask)
        .collect();
    // Restored offsets first (any subtask's snapshot may hold a partition this one now owns),
    // then the group's committed offsets, then the earliest.
    let mut restored: BTreeMap<u32, u64> = BTreeMap::new();
    for (_, snapshot) in context.restored_snapshots().await? {
        if let TaskSnapshot::Source { offsets } = snapshot {
            restored.extend(offsets);
        }
    }
    context.running().await;
    output.broadcast(StreamElement::PartitionsAssigned(owned.clone())).await?;
    if owned.is_empty() {
        // Idle only through the watermark operator's idleness timeout, as in Flink.
        context.trace("has no partition to read");
        // Still part of every checkpoint: answer triggers with an empty snapshot.
        while let Some(control) = context.control.recv().await {
            match control {
                TaskControl::TriggerCheckpoint(barrier) => {
                    context.acknowledge(barrier, &TaskSnapshot::Source { offsets: BTreeMap::new() });
                    output.broadcast(StreamElement::Barrier(barrier)).await?;
                }
                TaskControl::Cancel => return Err(TaskError::Canceled),
                TaskControl::CheckpointComplete(_) | TaskControl::CheckpointAborted(_) => {}
            }
        }
        return Ok(());
    }
    let tps: Vec<TopicPartition> =
        owned.iter().map(|&p| TopicPartition { topic: topic.clone(), partition: p }).collect();
    let committed = loop {
        match committer.committed(GROUP, &tps).await {
            Ok(offsets) => break offsets,
            Err(_) => madsim::time::sleep(RETRY_BACKOFF).await,
        }
    };
    let start: Vec<(TopicPartition, u64)> = tps
        .iter()
        .zip(&committed)
        .map(|(tp, committed)| {
            // The planted skew reads a restored position (the next record to read) as the last
            // record read, and starts one further.
            let restored = restored.get(&tp.partition).map(|offset| offset + offset_skew);
            let offset = restored.or(*committed).unwrap_or(0);
            (tp.clone(), offset)
        })
        .collect();
    let from = match context.restored_checkpoint() {
        Some(id) => format!(" (restored from checkpoint {id})"),
        None => String::new(),
    };
    context.trace(format!(
        "reads {}{from}",
        start.iter().map(|(tp, o)| format!("{tp}@{o}")).collect::<Vec<_>>().join(", ")
    ));
    // Sorted by partition, each once (the last of repeats kept, as a map's insert keeps it): a
    // task reads a few partitions, and a scan finds one for less than a map's search.
    let mut positions: Vec<(TopicPartition, u64)> =
        start.iter().cloned().collect::<BTreeMap<_, _>>().into_iter().collect();
    consumer.assign(start);
    let auto_commit = !context.tdd.submission.args.checkpointing;
    // Offsets snapshotted per checkpoint, committed to the group when it completes.
    let mut pending_commits: BTreeMap<u64, Vec<(TopicPartition, u64)>> = BTreeMap::new();
    let mut flush_tick = Ticker::new(BUFFER_TIMEOUT);
    let mut commit_tick = Ticker::new(AUTO_COMMIT_INTERVAL);
    let mut malformed = 0u64;
    let mut dates = DateReader::default();
    // Emptied and filled by every fetch (`Consumer::poll_batches_into`): its lists are kept.
    let mut fetched = Fetched::default();
    // A control message taken while holding after a savepoint, to be handled as if just come.
    let mut deferred: Option<TaskControl> = None;
    loop {
        let polled = {
            let poll = consumer.poll_batches_into(&mut fetched);
            tokio::pin!(poll);
            loop {
                // What `tokio::select!` (biased) over the flusher, the auto-commit tick (without
                // checkpoints), the control line and the fetch would find, polled by hand: its
                // loop over the branches and their masks cost about 50 instructions a turn. The
                // control line, once closed, is not polled again this turn.
                let mut control_closed = false;
                let woken = if let Some(control) = deferred.take() {
                    Woken::Control(control)
                } else {
                    std::future::poll_fn(|cx| {
                        if flush_tick.poll_tick(cx).is_ready() {
                            return Poll::Ready(Woken::FlushTick);
                        }
                        if auto_commit && commit_tick.poll_tick(cx).is_ready() {
                            return Poll::Ready(Woken::CommitTick);
                        }
                        if let Poll::Ready(control) = context.control.poll_open(cx, &mut control_closed) {
                            return Poll::Ready(Woken::Control(control));
                        }
                        poll.as_mut().poll(cx).map(Woken::Polled)
                    })
                    .await
                };
                match woken {
                    Woken::FlushTick => output.flush_all().await?,
                    Woken::CommitTick => {
                        let offsets: Vec<_> = positions.iter().map(|(tp, o)| (tp.clone(), *o)).collect();
                        let _ = committer.commit(GROUP, &offsets).await;
                    }
                    Woken::Control(control) => match control {
                        TaskControl::TriggerCheckpoint(barrier) => {
                            let offsets = positions.iter().map(|(tp, o)| (tp.partition, *o)).collect();
                            context.acknowledge(barrier, &TaskSnapshot::Source { offsets });
                            if savepoint_without_drain && barrier.kind != SnapshotKind::Checkpoint {
                                // The planted mistake: the savepoint's barrier jumps the records
                                // still buffered, which the offsets above already cover, and the
                                // task stops without ever sending them.
                                let dropped = output.discard_pending();
                                context.trace(format!("drops {dropped} buffered records ahead of savepoint {} (planted)", barrier.checkpoint_id));
                            }
                            output.broadcast(StreamElement::Barrier(barrier)).await?;
                            let snapshot: Vec<_> = positions.iter().map(|(tp, o)| (tp.clone(), *o)).collect();
                            if barrier.kind != SnapshotKind::Checkpoint {
                                output.flush_all().await?;
                                deferred = hold_after_savepoint(&mut context, barrier.checkpoint_id, snapshot).await?;
                                continue;
                            }
                            pending_commits.insert(barrier.checkpoint_id, snapshot);
                        }
                        TaskControl::CheckpointComplete(id) => {
                            let Some(offsets) = pending_commits.remove(&id) else { continue };
                            pending_commits.retain(|older, _| *older > id);
                            let committer = Consumer::new(services.rpc.clone(), ConsumerConfig::new(services.broker));
                            // Committing to Kafka is informational (restores use the checkpoint):
                            // do it in the background.
                            madsim::task::spawn(async move {
                                let _ = committer.commit(GROUP, &offsets).await;
                            });
                        }
                        TaskControl::Cancel => return Err(TaskError::Canceled),
                        TaskControl::CheckpointAborted(_) => {}
                    },
                    Woken::Polled(polled) => break polled,
                }
            }
        };
        if polled.is_err() {
            madsim::time::sleep(RETRY_BACKOFF).await;
            continue;
        }
        context.metrics.add_records_in(fetched.record_count());
        // The position of the partition being read, written back when the records move on to
        // another partition (and after the last): one map lookup per partition and fetch rather
        // than per record. Nothing reads `positions` while the records are handed on.
        let mut reading: Option<(&TopicPartition, u64)> = None;
        for record in fetched.records() {
            match &mut reading {
                Some((partition, next)) if std::ptr::eq(*partition, record.partition) => {
                    *next = record.offset + 1;
                }
                _ => {
                    if let Some((partition, next)) = reading.take() {
                        set_position(&mut positions, partition, next);
                    }
                    reading = Some((record.partition, record.offset + 1));
                }
            }
            match ClickEvent::parse_json_with(&mut dates, record.value) {
                Ok(event) => {
                    let partition = record.partition.partition;
                    if let Some(record) = output.emit_now(Record::Sourced { partition, event }) {
                        output.emit(record).await?;
                    }
                }
                Err(error) => {
                    malformed += 1;
                    if malformed == 1 {
                        context.trace(format!("skips a malformed record at {}@{}: {error}", record.partition, record.offset));
                    }
                }
            }
        }
        if let Some((partition, next)) = reading {
            set_position(&mut positions, partition, next);
        }
    }
}

/// Records `next` as `partition`'s position, in place when it has one (no key clone), else in
/// its place by partition. A scan of the few positions: the map's search cost ~110 instructions
/// per partition and fetch (a callgrind profile).
fn set_position(positions: &mut Vec<(TopicPartition, u64)>, partition: &TopicPartition, next: u64) {
    // By the partition's number alone: the consumer is assigned partitions of the source's one
    // topic, so every record's is of it, and comparing the topic's name too cost about 20
    // instructions per partition and fetch.
    match positions.iter_mut().find(|(known, _)| known.partition == partition.partition) {
        Some((known, position)) => {
            debug_assert_eq!(known.topic, partition.topic, "a source reads one topic");
            *position = next;
        }
        None => {
            let at = positions.partition_point(|(known, _)| known < partition);
            positions.insert(at, (partition.clone(), next));
        }
    }
}

/// After the barrier of a stop's savepoint: reads nothing until the JobManager finishes the
/// task (a cancellation here), commits the offsets when the savepoint completes, and returns to
/// reading if the savepoint failed: told so, or triggered for a newer checkpoint, which the
/// coordinator starts only once the savepoint is given up (its abort notice may come later, or
/// not at all: the trigger is handed back, to be handled as the task reads on).
async fn hold_after_savepoint(
    context: &mut TaskContext,
    savepoint_id: u64,
    offsets: Vec<(TopicPartition, u64)>,
) -> Result<Option<TaskControl>, TaskError> {
    while let Some(control) = context.control.recv().await {
        match control {
            TaskControl::CheckpointComplete(id) if id == savepoint_id => {
                let services = &context.services;
                let committer = Consumer::new(services.rpc.clone(), ConsumerConfig::new(services.broker));
                let _ = committer.commit(GROUP, &offsets).await;
            }
            TaskControl::CheckpointAborted(id) if id == savepoint_id => return Ok(None),
            TaskControl::TriggerCheckpoint(newer) if newer.checkpoint_id > savepoint_id => {
                context.trace(format!(
                    "reads on: triggered for checkpoint {} while holding after savepoint {savepoint_id}, which was given up",
                    newer.checkpoint_id
                ));
                return Ok(Some(TaskControl::TriggerCheckpoint(newer)));
            }
            TaskControl::Cancel => return Err(TaskError::Canceled),
            _ => {}
        }
    }
    Err(TaskError::Canceled)
}
