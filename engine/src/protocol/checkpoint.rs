//! Checkpoints (docs/model/checkpoints.md#overview): the coordinator triggers them at the sources, barriers flow in-band,
//! every task snapshots its state to checkpoint storage and acknowledges; when all have, the
//! coordinator completes the checkpoint and notifies the tasks. The snapshots' format is
//! [`super::snapshot`]'s.

use serde::{Deserialize, Serialize};

use super::ids::{ExecutionAttemptId, JobId};
use super::snapshot::SnapshotKind;
// The snapshot format's names, where the checkpoint protocol's users look for them.
pub use super::snapshot::{CHECKPOINTS_DIR, CheckpointMetadata, StateHandle, TaskSnapshot, checkpoint_dir};

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
    /// A checkpoint, or a savepoint (its directory's token, and whether to drain).
    pub kind: SnapshotKind,
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

/// The coordinator tells a TaskManager's sources that a savepoint was aborted, so that a source
/// holding still after its barrier (stop-with-savepoint) reads on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotifyCheckpointAborted {
    /// The job.
    pub job_id: JobId,
    /// The attempts on that TaskManager.
    pub attempts: Vec<ExecutionAttemptId>,
    /// The checkpoint.
    pub checkpoint_id: u64,
}
crate::request!(NotifyCheckpointAborted => ());
