//! The checkpoint coordinator (spec §12): triggers periodic checkpoints at the sources while
//! every task runs (one at a time), collects every task's acknowledgement, completes the
//! checkpoint (one retained), and keeps the latest completed one for restores.

use std::collections::BTreeMap;
use std::time::Duration;

use madsim::time::Instant;

use crate::protocol::checkpoint::{CheckpointBarrier, CheckpointMetadata, StateHandle, checkpoint_dir};
use crate::protocol::ids::ExecutionAttemptId;
use crate::protocol::job::Vertex;
use crate::protocol::states::ExecutionState;

use super::execution_graph::ExecutionGraph;

/// Flink's `execution.checkpointing.timeout` default.
pub const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A checkpoint that has been triggered and not yet acknowledged by every task.
#[derive(Debug)]
struct PendingCheckpoint {
    barrier: CheckpointBarrier,
    started: Instant,
    /// Tasks that still have to acknowledge.
    awaiting: BTreeMap<ExecutionAttemptId, (Vertex, u32)>,
    acknowledged: BTreeMap<String, StateHandle>,
}

/// A completed checkpoint: its metadata and where it lies.
#[derive(Clone, Debug)]
pub struct CompletedCheckpoint {
    /// What every task snapshotted.
    pub metadata: CheckpointMetadata,
    /// `<checkpoints dir>/<job-id>/chk-<n>`.
    pub directory: String,
    /// Bytes of all snapshots plus the metadata (Flink's `lastCheckpointSize`).
    pub size: u64,
}

/// Flink's checkpoint metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// `numberOfCompletedCheckpoints`.
    pub completed: u64,
    /// `numberOfFailedCheckpoints`.
    pub failed: u64,
    /// `lastCheckpointSize`, bytes.
    pub last_size: u64,
    /// `lastCheckpointDuration`, ms.
    pub last_duration_ms: u64,
}

/// Why a trigger did not start a checkpoint.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// Some task is not RUNNING.
    #[error("Not all required tasks are currently running.")]
    NotAllTasksRunning,
    /// One checkpoint at a time (max concurrent checkpoints 1).
    #[error("checkpoint {0} is still in progress")]
    InProgress(u64),
}

/// A checkpoint acknowledged by every task, ready to be finalized.
#[derive(Clone, Debug)]
pub struct AllAcknowledged {
    /// Its metadata, to be written as `_metadata`.
    pub metadata: CheckpointMetadata,
    /// When it was triggered.
    pub started: Instant,
}

/// The coordinator's state for one job.
#[derive(Debug)]
pub struct CheckpointCoordinator {
    next_id: u64,
    pending: Option<PendingCheckpoint>,
    latest: Option<CompletedCheckpoint>,
    /// Flink's checkpoint metrics.
    pub stats: CheckpointStats,
}

impl Default for CheckpointCoordinator {
    fn default() -> Self {
        CheckpointCoordinator { next_id: 1, pending: None, latest: None, stats: CheckpointStats::default() }
    }
}

impl CheckpointCoordinator {
    /// Starts the next checkpoint if every task runs; returns its barrier and the sources to
    /// trigger.
    pub fn trigger(
        &mut self,
        job: &ExecutionGraph,
        timestamp_ms: i64,
    ) -> Result<(CheckpointBarrier, Vec<(ExecutionAttemptId, (Vertex, u32))>), TriggerError> {
        if let Some(pending) = &self.pending {
            return Err(TriggerError::InProgress(pending.barrier.checkpoint_id));
        }
        if job.executions.values().any(|e| e.state != ExecutionState::Running) {
            return Err(TriggerError::NotAllTasksRunning);
        }
        let barrier = CheckpointBarrier { checkpoint_id: self.next_id, timestamp_ms };
        self.next_id += 1;
        let awaiting: BTreeMap<_, _> =
            job.executions.iter().map(|(key, e)| (e.attempt_id, *key)).collect();
        let sources = awaiting.iter().filter(|(_, (v, _))| *v == Vertex::Source).map(|(a, k)| (*a, *k)).collect();
        self.pending = Some(PendingCheckpoint {
            barrier,
            started: Instant::now(),
            awaiting,
            acknowledged: BTreeMap::new(),
        });
        Ok((barrier, sources))
    }

    /// Records a task's acknowledgement; when it was the last one, hands the checkpoint over
    /// for finalization.
    pub fn acknowledge(
        &mut self,
        job: &ExecutionGraph,
        attempt_id: ExecutionAttemptId,
        checkpoint_id: u64,
        state: StateHandle,
    ) -> Option<AllAcknowledged> {
        let pending = self.pending.as_mut().filter(|p| p.barrier.checkpoint_id == checkpoint_id)?;
        let (vertex, subtask) = pending.awaiting.remove(&attempt_id)?;
        pending.acknowledged.insert(CheckpointMetadata::key(vertex, subtask), state);
        if !pending.awaiting.is_empty() {
            return None;
        }
        Some(AllAcknowledged {
            metadata: CheckpointMetadata {
                job_id: job.job_id,
                checkpoint_id,
                timestamp_ms: pending.barrier.timestamp_ms,
                parallelism: job.parallelism(),
                max_parallelism: job.max_parallelism,
                states: pending.acknowledged.clone(),
            },
            started: pending.started,
        })
    }

    /// The metadata is stored: the checkpoint is complete and becomes the latest. Returns the
    /// directory of the checkpoint it replaces (one retained), to be deleted.
    /// Returns `None` if the checkpoint is no longer pending (aborted meanwhile), else
    /// `Some(replaced directory, if any)`.
    pub fn complete(&mut self, completed: CompletedCheckpoint, started: Instant) -> Option<Option<String>> {
        let id = completed.metadata.checkpoint_id;
        if self.pending.as_ref().is_none_or(|p| p.barrier.checkpoint_id != id) {
            return None;
        }
        self.pending = None;
        self.stats.completed += 1;
        self.stats.last_size = completed.size;
        self.stats.last_duration_ms = Instant::now().duration_since(started).as_millis() as u64;
        Some(self.latest.replace(completed).map(|old| old.directory))
    }

    /// Gives up the pending checkpoint (declined, timed out, or the job is failing over).
    pub fn abort_pending(&mut self) -> Option<u64> {
        let pending = self.pending.take()?;
        self.stats.failed += 1;
        Some(pending.barrier.checkpoint_id)
    }

    /// Gives up the pending checkpoint if it is `checkpoint_id`.
    pub fn abort_pending_if(&mut self, checkpoint_id: u64) -> Option<u64> {
        if self.pending.as_ref()?.barrier.checkpoint_id != checkpoint_id {
            return None;
        }
        self.abort_pending()
    }

    /// The pending checkpoint's id, if it has run longer than the timeout.
    pub fn expired(&self, timeout: Duration) -> Option<u64> {
        let pending = self.pending.as_ref()?;
        (Instant::now().duration_since(pending.started) >= timeout).then_some(pending.barrier.checkpoint_id)
    }

    /// The latest completed checkpoint, to restore from.
    pub fn latest(&self) -> Option<&CompletedCheckpoint> {
        self.latest.as_ref()
    }

    /// The directory a completed checkpoint of `job` is written to.
    pub fn directory(job: &ExecutionGraph, id: u64) -> String {
        checkpoint_dir(job.job_id, id)
    }
}
