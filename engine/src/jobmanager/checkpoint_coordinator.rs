//! The checkpoint coordinator (spec §12): triggers periodic checkpoints at the sources while
//! every task runs (one at a time), collects every task's acknowledgement, finalizes the
//! checkpoint (its `_metadata`, one retained), notifies the tasks, aborts what declines, fails or
//! outlives the timeout, and chooses the checkpoint a restart restores.
//!
//! I/O-free: it says what to send and what to write, and the node does it, so that a savepoint
//! can later take the same path with another directory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use madsim::time::Instant;

use crate::protocol::checkpoint::{
    AcknowledgeCheckpoint, CheckpointBarrier, CheckpointMetadata, NotifyCheckpointComplete, StateHandle,
    TriggerCheckpoint, checkpoint_dir,
};
use crate::protocol::ids::{ExecutionAttemptId, JobId};
use crate::protocol::job::Vertex;
use crate::protocol::states::{ExecutionState, JobStatus};
use crate::trace::{CheckpointAbortReason, Event};

use super::execution_graph::ExecutionGraph;
use super::resource_manager::ResourceManager;

/// Flink's `execution.checkpointing.timeout` default.
pub const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A checkpoint that has been triggered and not yet acknowledged by every task.
#[derive(Debug)]
struct PendingCheckpoint {
    job_id: JobId,
    barrier: CheckpointBarrier,
    started: Instant,
    /// The job's shape when it was triggered, for the metadata.
    parallelism: u32,
    max_parallelism: u32,
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
    /// `lastCheckpointDuration`.
    pub last_duration: Duration,
}

/// Why a trigger did not start a checkpoint.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// Checkpoints are triggered only while the job is RUNNING (spec §11).
    #[error("the job is not running")]
    JobNotRunning,
    /// The job runs without `--checkpointing`.
    #[error("checkpointing is not enabled")]
    CheckpointingDisabled,
    /// Some task is not RUNNING.
    #[error("not all required tasks are currently running")]
    NotAllTasksRunning,
    /// One checkpoint at a time (max concurrent checkpoints 1).
    #[error("checkpoint {0} is still in progress")]
    InProgress(u64),
}

/// A checkpoint acknowledged by every task: its `_metadata`, to be written before it completes.
#[derive(Clone, Debug)]
pub struct Finalization {
    /// What every task snapshotted.
    pub metadata: CheckpointMetadata,
    /// When it was triggered.
    pub started: Instant,
    /// Where it lies (`<checkpoints dir>/<job-id>/chk-<n>`).
    pub directory: String,
    /// The metadata as written to `<directory>/_metadata`.
    pub bytes: Bytes,
}

impl Finalization {
    /// The file the metadata is written to.
    pub fn metadata_path(&self) -> String {
        format!("{}/_metadata", self.directory)
    }
}

/// What a completed checkpoint asks of the node.
#[derive(Debug)]
pub struct Completion {
    /// One notice per TaskManager, for the tasks that run there.
    pub notices: Vec<(SocketAddr, NotifyCheckpointComplete)>,
    /// The directory of the checkpoint it replaced (one is retained), to be deleted.
    pub replaced: Option<String>,
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
    /// The periodic trigger: aborts a pending checkpoint older than the timeout, then starts the
    /// next one if every task runs. Returns the trigger for each source, sent to its TaskManager.
    pub fn trigger(
        &mut self,
        job: &ExecutionGraph,
        resource_manager: &ResourceManager,
        timestamp_ms: i64,
        now: Instant,
        events: &mut Vec<Event>,
    ) -> Result<Vec<(SocketAddr, TriggerCheckpoint)>, TriggerError> {
        if job.status != JobStatus::Running {
            return Err(TriggerError::JobNotRunning);
        }
        if !job.submission.args.checkpointing {
            return Err(TriggerError::CheckpointingDisabled);
        }
        if self.pending.as_ref().is_some_and(|p| now.duration_since(p.started) >= CHECKPOINT_TIMEOUT) {
            self.abort_pending(CheckpointAbortReason::Expired, events);
        }
        if let Some(pending) = &self.pending {
            return Err(TriggerError::InProgress(pending.barrier.checkpoint_id));
        }
        if job.executions.values().any(|e| e.state != ExecutionState::Running) {
            events.push(Event::CheckpointNotTriggered { job_id: job.job_id });
            return Err(TriggerError::NotAllTasksRunning);
        }
        let barrier = CheckpointBarrier { checkpoint_id: self.next_id, timestamp_ms };
        self.next_id += 1;
        let awaiting: BTreeMap<_, _> = job.executions.iter().map(|(key, e)| (e.attempt_id, *key)).collect();
        let job_id = job.job_id;
        events.push(Event::CheckpointTriggered { job_id, checkpoint_id: barrier.checkpoint_id, timestamp_ms });
        let triggers = awaiting
            .iter()
            .filter(|(_, (vertex, _))| *vertex == Vertex::Source)
            .filter_map(|(attempt_id, key)| {
                let address = resource_manager.address(job.executions[key].slot?.resource_id)?;
                Some((address, TriggerCheckpoint { job_id, attempt_id: *attempt_id, barrier }))
            })
            .collect();
        self.pending = Some(PendingCheckpoint {
            job_id,
            barrier,
            started: now,
            parallelism: job.parallelism(),
            max_parallelism: job.max_parallelism,
            awaiting,
            acknowledged: BTreeMap::new(),
        });
        Ok(triggers)
    }

    /// Records a task's acknowledgement; when it was the last one, hands the checkpoint over
    /// for finalization. Acknowledgements of anything else than the pending checkpoint (a late
    /// one of an aborted checkpoint, another job's) are ignored.
    pub fn acknowledge(&mut self, ack: AcknowledgeCheckpoint) -> Option<Finalization> {
        let pending = self
            .pending
            .as_mut()
            .filter(|p| p.job_id == ack.job_id && p.barrier.checkpoint_id == ack.checkpoint_id)?;
        let (vertex, subtask) = pending.awaiting.remove(&ack.attempt_id)?;
        pending.acknowledged.insert(CheckpointMetadata::key(vertex, subtask), ack.state);
        if !pending.awaiting.is_empty() {
            return None;
        }
        let metadata = CheckpointMetadata {
            job_id: pending.job_id,
            checkpoint_id: ack.checkpoint_id,
            timestamp_ms: pending.barrier.timestamp_ms,
            parallelism: pending.parallelism,
            max_parallelism: pending.max_parallelism,
            states: pending.acknowledged.clone(),
        };
        let bytes = Bytes::from(serde_json::to_vec(&metadata).expect("metadata serializes"));
        Some(Finalization {
            directory: checkpoint_dir(metadata.job_id, metadata.checkpoint_id),
            metadata,
            started: pending.started,
            bytes,
        })
    }

    /// The metadata is written (finalization began at `finalizing`): the checkpoint completes
    /// and becomes the latest. Returns the notices for `job`'s tasks and the directory to
    /// delete, or `None` if the checkpoint is no longer pending (aborted meanwhile) or `job` is
    /// another job.
    pub fn complete(
        &mut self,
        finalization: Finalization,
        job: &ExecutionGraph,
        resource_manager: &ResourceManager,
        finalizing: Instant,
        now: Instant,
        events: &mut Vec<Event>,
    ) -> Option<Completion> {
        let Finalization { metadata, started, directory, bytes } = finalization;
        let (job_id, checkpoint_id) = (metadata.job_id, metadata.checkpoint_id);
        if job.job_id != job_id || self.pending.as_ref().is_none_or(|p| p.barrier.checkpoint_id != checkpoint_id) {
            return None;
        }
        self.pending = None;
        let size = bytes.len() as u64 + metadata.states.values().map(|h| h.size).sum::<u64>();
        self.stats.completed += 1;
        self.stats.last_size = size;
        self.stats.last_duration = now.duration_since(started);
        let replaced = self.latest.replace(CompletedCheckpoint { metadata, directory, size }).map(|old| old.directory);
        events.push(Event::CheckpointCompleted {
            job_id,
            checkpoint_id,
            size_bytes: size,
            duration: self.stats.last_duration,
            finalization: now.duration_since(finalizing),
        });
        let mut per_task_manager: BTreeMap<SocketAddr, Vec<ExecutionAttemptId>> = BTreeMap::new();
        for execution in job.executions.values() {
            if let Some(address) = execution.slot.and_then(|s| resource_manager.address(s.resource_id)) {
                per_task_manager.entry(address).or_default().push(execution.attempt_id);
            }
        }
        let notices = per_task_manager
            .into_iter()
            .map(|(address, attempts)| (address, NotifyCheckpointComplete { job_id, attempts, checkpoint_id }))
            .collect();
        Some(Completion { notices, replaced })
    }

    /// Gives up `checkpoint_id` if it is the pending one (declined, a source not triggered,
    /// its metadata not written).
    pub fn abort(&mut self, checkpoint_id: u64, reason: CheckpointAbortReason, events: &mut Vec<Event>) {
        if self.pending.as_ref().is_some_and(|p| p.barrier.checkpoint_id == checkpoint_id) {
            self.abort_pending(reason, events);
        }
    }

    /// Gives up the pending checkpoint, if any (the job is failing over, or it expired).
    pub fn abort_pending(&mut self, reason: CheckpointAbortReason, events: &mut Vec<Event>) {
        let Some(pending) = self.pending.take() else { return };
        self.stats.failed += 1;
        events.push(Event::CheckpointAborted {
            job_id: pending.job_id,
            checkpoint_id: pending.barrier.checkpoint_id,
            reason,
        });
    }

    /// The checkpoint a restart restores: the latest completed one (one is retained). Records
    /// the restore.
    pub fn restore(&self, events: &mut Vec<Event>) -> Option<&CompletedCheckpoint> {
        let latest = self.latest.as_ref()?;
        let m = &latest.metadata;
        events.push(Event::Restoring {
            job_id: m.job_id,
            checkpoint_id: m.checkpoint_id,
            timestamp_ms: m.timestamp_ms,
            directory: latest.directory.clone(),
        });
        Some(latest)
    }

    /// The latest completed checkpoint, whose state new tasks are deployed with.
    pub fn latest(&self) -> Option<&CompletedCheckpoint> {
        self.latest.as_ref()
    }
}
