//! Checkpoints (docs/model/checkpoints.md#overview): the coordinator triggers them at the sources,
//! barriers flow in-band, every task snapshots its state to checkpoint storage and acknowledges;
//! when all have, the coordinator completes the checkpoint and notifies the tasks. Also the task
//! snapshots' shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ids::{ExecutionAttemptId, JobId};
use super::job::Vertex;
use super::kafka::TransactionHandle;
use crate::taskmanager::operator::window_counter::WindowCounterState;

/// The root of checkpoint storage on the shared volume.
pub const CHECKPOINTS_DIR: &str = "/tmp/flink-checkpoints-directory";

/// Flink's `execution.checkpointing.timeout` default: the coordinator aborts a checkpoint not
/// complete by then, and a task stops retrying its acknowledgement.
pub const CHECKPOINT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// A checkpoint barrier, in-band in every channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBarrier {
    /// The checkpoint's id (from 1; after a restore from K, from K + 1).
    pub checkpoint_id: u64,
    /// When the coordinator triggered it (ms since the run started).
    pub timestamp_ms: i64,
}

/// The coordinator asks a source subtask to start checkpoint `barrier.checkpoint_id`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TriggerCheckpoint {
    /// The job.
    pub job_id: JobId,
    /// The source attempt.
    pub attempt_id: ExecutionAttemptId,
    /// The barrier to inject.
    pub barrier: CheckpointBarrier,
}
crate::request!(TriggerCheckpoint => bool);

/// Where a task's snapshot for one checkpoint lies, and how big it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateHandle {
    /// Path in checkpoint storage.
    pub path: String,
    /// Bytes written.
    pub size: u64,
}

/// A task has snapshotted its state for a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AcknowledgeCheckpoint {
    /// The job.
    pub job_id: JobId,
    /// The attempt.
    pub attempt_id: ExecutionAttemptId,
    /// The checkpoint.
    pub checkpoint_id: u64,
    /// Its snapshot.
    pub state: StateHandle,
}
crate::request!(AcknowledgeCheckpoint => ());

/// A task could not take part in a checkpoint (e.g. storage unreachable).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeclineCheckpoint {
    /// The job.
    pub job_id: JobId,
    /// The attempt.
    pub attempt_id: ExecutionAttemptId,
    /// The checkpoint.
    pub checkpoint_id: u64,
    /// Why.
    pub reason: String,
}
crate::request!(DeclineCheckpoint => ());

/// The coordinator tells a TaskManager's tasks that a checkpoint completed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotifyCheckpointComplete {
    /// The job.
    pub job_id: JobId,
    /// The attempts on that TaskManager.
    pub attempts: Vec<ExecutionAttemptId>,
    /// The checkpoint.
    pub checkpoint_id: u64,
}
crate::request!(NotifyCheckpointComplete => ());

/// One task's snapshot: each operator's checkpointed state is its own struct
/// (docs/model/checkpoints.md#overview).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TaskSnapshot {
    /// Source: the next offset to read of each partition it owns (operator list state).
    Source {
        /// Partition → next offset.
        offsets: BTreeMap<u32, u64>,
    },
    /// Timestamps/Watermarks: nothing (watermarks restart from the minimum).
    TimestampsWatermarks,
    /// Counter: window contents per key group (the timers are one per open window).
    Counter(WindowCounterState),
    /// Sink: the transactions flushed but not yet committed (exactly-once; empty otherwise).
    Sink {
        /// Pending transactions by the checkpoint that will commit them.
        pending: BTreeMap<u64, TransactionHandle>,
    },
}

/// A completed checkpoint's `_metadata`: where every task's snapshot lies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    /// The job.
    pub job_id: JobId,
    /// The checkpoint.
    pub checkpoint_id: u64,
    /// When it was triggered (ms since the run started).
    pub timestamp_ms: i64,
    /// The job's parallelism when it was taken.
    pub parallelism: u32,
    /// Number of key groups.
    pub max_parallelism: u32,
    /// Every task's snapshot, by vertex and subtask.
    pub states: BTreeMap<String, StateHandle>,
}

impl CheckpointMetadata {
    /// The key under which a task's state is listed.
    pub fn key(vertex: Vertex, subtask: u32) -> String {
        format!("{vertex:?}-{subtask}")
    }

    /// The handles of every subtask of `vertex`.
    pub fn states_of(&self, vertex: Vertex) -> Vec<(u32, &StateHandle)> {
        let prefix = format!("{vertex:?}-");
        self.states
            .iter()
            .filter_map(|(k, h)| Some((k.strip_prefix(&prefix)?.parse().ok()?, h)))
            .collect()
    }
}

/// The directory of checkpoint `id` of `job`.
pub fn checkpoint_dir(job_id: JobId, id: u64) -> String {
    format!("{CHECKPOINTS_DIR}/{job_id}/chk-{id}")
}
