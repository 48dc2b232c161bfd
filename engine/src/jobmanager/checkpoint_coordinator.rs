//! The checkpoint coordinator (docs/model/checkpoints.md#overview): triggers periodic checkpoints
//! at the sources while every task runs (one at a time), collects every task's acknowledgement,
//! finalizes the checkpoint (its `_metadata`, one retained), notifies the tasks, aborts what
//! declines, fails or outlives the timeout, and chooses the checkpoint a restart restores.
//!
//! A savepoint (docs/model/cluster.md#the-flink-cli, `flink stop`) takes the same path with another directory and type:
//! asked for, it is triggered instead of the next checkpoint; periodic checkpoints wait for it;
//! completed, it is kept (never replaced nor deleted) and the job is to finish; failed, the job
//! runs on and checkpoints resume.
//!
//! I/O-free: it says what to send and what to write, and the node does it.

use crate::plant::{PlantedBug, Plants};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use madsim::time::Instant;

use crate::protocol::checkpoint::{
    AcknowledgeCheckpoint, CHECKPOINT_TIMEOUT, CheckpointBarrier, NotifyCheckpointComplete, StateHandle,
    TriggerCheckpoint,
};
use crate::protocol::ids::{ExecutionAttemptId, JobId, TriggerId};
use crate::protocol::rest::SavepointStatus;
use crate::protocol::snapshot::{CheckpointMetadata, FORMAT_VERSION, SnapshotKind, operator_id, snapshot_dir};
use crate::protocol::job::Vertex;
use crate::protocol::states::{ExecutionState, JobStatus};
use crate::trace::{CheckpointAbortReason, Event};

use super::execution_graph::ExecutionGraph;
use super::resource_manager::ResourceManager;

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
    acknowledged: BTreeMap<String, BTreeMap<u32, StateHandle>>,
}

/// A savepoint `flink stop` asked for.
#[derive(Clone, Copy, Debug)]
struct SavepointRequest {
    trigger_id: TriggerId,
    token: u64,
    drain: bool,
    /// Its checkpoint id, once triggered.
    checkpoint_id: Option<u64>,
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
    /// Checkpoints are triggered only while the job is RUNNING
    /// (docs/model/cluster.md#failure-detection-and-restarts).
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
    /// A savepoint of `flink stop` completed: the job is to finish.
    pub stop: bool,
}

/// The coordinator's state for one job.
#[derive(Debug)]
pub struct CheckpointCoordinator {
    next_id: u64,
    pending: Option<PendingCheckpoint>,
    latest: Option<CompletedCheckpoint>,
    /// The savepoint asked for and not yet completed or failed.
    savepoint: Option<SavepointRequest>,
    /// Every savepoint request's outcome so far, by trigger id.
    savepoints: BTreeMap<TriggerId, SavepointStatus>,
    /// A savepoint aborted since the node last asked (its sources wait to be told).
    aborted_savepoint: Option<u64>,
    /// The savepoint of `flink stop` is written and the job is finishing (nothing more is
    /// triggered meanwhile): its trigger and location. The request completes only once the job has FINISHED, as Flink's
    /// stop-with-savepoint answers with the path only then, so a `flink run` typed after
    /// `flink stop` returns never finds the old job still running.
    stopping: Option<(TriggerId, String)>,
    /// The job this coordinator serves, when it was restored from a savepoint.
    restored_job: Option<JobId>,
    /// Flink's checkpoint metrics.
    pub stats: CheckpointStats,
}

impl Default for CheckpointCoordinator {
    fn default() -> Self {
        CheckpointCoordinator {
            next_id: 1,
            pending: None,
            latest: None,
            savepoint: None,
            savepoints: BTreeMap::new(),
            aborted_savepoint: None,
            stopping: None,
            restored_job: None,
            stats: CheckpointStats::default(),
        }
    }
}

impl CheckpointCoordinator {
    /// A coordinator for a job restored from `savepoint` (docs/model/checkpoints.md#overview: ids continue after it). The
    /// savepoint is what a failover restores until the job's own first checkpoint completes.
    pub fn restored_from(job_id: JobId, savepoint: CompletedCheckpoint) -> CheckpointCoordinator {
        CheckpointCoordinator {
            next_id: savepoint.metadata.checkpoint_id + 1,
            latest: Some(savepoint),
            restored_job: Some(job_id),
            ..CheckpointCoordinator::default()
        }
    }

    /// `flink stop`: a savepoint is triggered instead of the next checkpoint (48 bits of `token`
    /// name its directory). Refused while another is asked for.
    pub fn request_savepoint(&mut self, trigger_id: TriggerId, token: u64, drain: bool) -> Result<(), String> {
        if let Some(other) = &self.savepoint {
            return Err(format!("a savepoint is already in progress (trigger {})", other.trigger_id));
        }
        if self.stopping.is_some() {
            return Err("the job is already stopping with a savepoint".to_owned());
        }
        self.savepoint = Some(SavepointRequest { trigger_id, token, drain, checkpoint_id: None });
        self.savepoints.insert(trigger_id, SavepointStatus::InProgress);
        Ok(())
    }

    /// What became of a savepoint request; `None` for an unknown trigger id.
    pub fn savepoint_status(&self, trigger_id: TriggerId) -> Option<SavepointStatus> {
        self.savepoints.get(&trigger_id).cloned()
    }

    /// The job stopped by `flink stop` has FINISHED: its savepoint request completes with the
    /// savepoint's location.
    pub fn stop_finished(&mut self) {
        if let Some((trigger_id, location)) = self.stopping.take() {
            self.savepoints.insert(trigger_id, SavepointStatus::Completed { location });
        }
    }

    /// The job failed over or was cancelled after its stop's savepoint was written and before
    /// it FINISHED: the request fails with Flink's words (the savepoint itself stays usable),
    /// and the job, running on, is checkpointed again.
    pub fn stop_interrupted(&mut self, job_id: JobId, events: &mut Vec<Event>) {
        let Some((trigger_id, location)) = self.stopping.take() else { return };
        let cause = format!(
            "A savepoint has been created at: {location}, but the corresponding job {job_id} failed during stopping. \
             The savepoint is consistent, but might have uncommitted transactions."
        );
        events.push(Event::SavepointFailed { job_id, cause: cause.clone() });
        self.savepoints.insert(trigger_id, SavepointStatus::Failed { cause });
    }

    /// The savepoint aborted since the last call, if any: its sources must be told.
    pub fn take_aborted_savepoint(&mut self) -> Option<u64> {
        self.aborted_savepoint.take()
    }

    /// Fails the savepoint asked for (the job failed over or cannot take it).
    fn fail_savepoint(&mut self, cause: String, job_id: JobId, events: &mut Vec<Event>) {
        let Some(request) = self.savepoint.take() else { return };
        events.push(Event::SavepointFailed { job_id, cause: cause.clone() });
        self.savepoints.insert(request.trigger_id, SavepointStatus::Failed { cause });
    }
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
        if job.status != JobStatus::Running || self.stopping.is_some() {
            if self.savepoint.is_some_and(|s| s.checkpoint_id.is_none()) {
                self.fail_savepoint(format!("Job {} is not running.", job.job_id), job.job_id, events);
            }
            return Err(TriggerError::JobNotRunning);
        }
        let savepoint = self.savepoint.filter(|s| s.checkpoint_id.is_none());
        if savepoint.is_none() && !job.submission.args.checkpointing {
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
            if savepoint.is_some() {
                // Flink fails the savepoint; the job runs on.
                let cause = "Not all required tasks are currently running.".to_owned();
                self.fail_savepoint(cause, job.job_id, events);
            }
            return Err(TriggerError::NotAllTasksRunning);
        }
        let kind = match savepoint {
            Some(s) => SnapshotKind::Savepoint { token: s.token, drain: s.drain },
            None => SnapshotKind::Checkpoint,
        };
        let barrier = CheckpointBarrier { checkpoint_id: self.next_id, timestamp_ms, kind };
        self.next_id += 1;
        let awaiting: BTreeMap<_, _> = job.executions.iter().map(|(key, e)| (e.attempt_id, *key)).collect();
        let job_id = job.job_id;
        if let Some(request) = &mut self.savepoint {
            request.checkpoint_id = Some(barrier.checkpoint_id);
            let drain = request.drain;
            events.push(Event::SavepointTriggered { job_id, checkpoint_id: barrier.checkpoint_id, timestamp_ms, drain });
        } else {
            events.push(Event::CheckpointTriggered { job_id, checkpoint_id: barrier.checkpoint_id, timestamp_ms });
        }
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
        self.acknowledge_planted(ack, Plants::NONE)
    }

    /// [`acknowledge`](Self::acknowledge) with the planted bug that lives here switched on when
    /// `plants` holds it: `checkpoint-completes-early` hands the checkpoint over once the tasks
    /// it triggered (the sources) have acknowledged, without the others' state
    /// (docs/planted-bugs.md).
    pub fn acknowledge_planted(&mut self, ack: AcknowledgeCheckpoint, plants: Plants) -> Option<Finalization> {
        let pending = self
            .pending
            .as_mut()
            .filter(|p| p.job_id == ack.job_id && p.barrier.checkpoint_id == ack.checkpoint_id)?;
        let (vertex, subtask) = pending.awaiting.remove(&ack.attempt_id)?;
        pending.acknowledged.entry(operator_id(vertex).to_owned()).or_default().insert(subtask, ack.state);
        let done = if plants.has(PlantedBug::CheckpointCompletesEarly) {
            // Counted against the triggered tasks: done at the last source's acknowledgement.
            vertex == Vertex::Source && !pending.awaiting.values().any(|(v, _)| *v == Vertex::Source)
        } else {
            pending.awaiting.is_empty()
        };
        if !done {
            return None;
        }
        let metadata = CheckpointMetadata {
            format_version: FORMAT_VERSION,
            job_id: pending.job_id,
            checkpoint_id: ack.checkpoint_id,
            kind: pending.barrier.kind,
            timestamp_ms: pending.barrier.timestamp_ms,
            parallelism: pending.parallelism,
            max_parallelism: pending.max_parallelism,
            operators: pending.acknowledged.clone(),
        };
        let bytes = Bytes::from(metadata.encode());
        Some(Finalization {
            directory: snapshot_dir(metadata.job_id, metadata.checkpoint_id, metadata.kind),
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
        let size = bytes.len() as u64 + metadata.operators.values().flat_map(|s| s.values()).map(|h| h.size).sum::<u64>();
        let stop = metadata.kind != SnapshotKind::Checkpoint;
        let mut replaced = None;
        if stop {
            // A savepoint is the user's: kept, and never what a later checkpoint replaces.
            let request = self.savepoint.take().expect("a savepoint is pending only when asked for");
            let location = directory.clone();
            events.push(Event::SavepointCompleted { job_id, checkpoint_id, location: location.clone() });
            self.stopping = Some((request.trigger_id, location));
        } else {
            self.stats.completed += 1;
            self.stats.last_size = size;
            self.stats.last_duration = now.duration_since(started);
            let old = self.latest.replace(CompletedCheckpoint { metadata, directory, size });
            replaced = old.filter(|old| old.metadata.kind == SnapshotKind::Checkpoint).map(|old| old.directory);
            events.push(Event::CheckpointCompleted {
                job_id,
                checkpoint_id,
                size_bytes: size,
                duration: self.stats.last_duration,
                finalization: now.duration_since(finalizing),
            });
        }
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
        Some(Completion { notices, replaced, stop })
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
        let (job_id, checkpoint_id) = (pending.job_id, pending.barrier.checkpoint_id);
        let cause = reason.to_string();
        events.push(Event::CheckpointAborted { job_id, checkpoint_id, reason });
        if pending.barrier.kind != SnapshotKind::Checkpoint {
            self.fail_savepoint(format!("Checkpoint {checkpoint_id} {cause}"), job_id, events);
            self.aborted_savepoint = Some(checkpoint_id);
        }
    }

    /// The checkpoint a restart restores: the latest completed one (one is retained). Records
    /// the restore.
    pub fn restore(&self, events: &mut Vec<Event>) -> Option<&CompletedCheckpoint> {
        let latest = self.latest.as_ref()?;
        let m = &latest.metadata;
        if m.kind != SnapshotKind::Checkpoint {
            events.push(Event::RestoringFromSavepoint {
                job_id: self.restored_job.unwrap_or(m.job_id),
                checkpoint_id: m.checkpoint_id,
                timestamp_ms: m.timestamp_ms,
                savepoint_job_id: m.job_id,
                location: latest.directory.clone(),
            });
            return Some(latest);
        }
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

    /// The pending checkpoint's id and how many tasks have acknowledged it so far.
    pub fn pending_progress(&self) -> Option<(u64, u32)> {
        let pending = self.pending.as_ref()?;
        let acknowledged = pending.acknowledged.values().map(|handles| handles.len() as u32).sum();
        Some((pending.barrier.checkpoint_id, acknowledged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobmanager::resource_manager::tests::{origin, registration};
    use crate::jobmanager::execution_graph::IdSource;
    use crate::jobmanager::slot_pool::SlotId;
    use crate::protocol::checkpoint::checkpoint_dir;
    use crate::protocol::ids::ResourceId;
    use crate::protocol::job::JobSubmission;

    const TASK_MANAGER: &str = "10.0.1.1:6122";

    /// The playground's job at parallelism 2, every task RUNNING on one TaskManager.
    fn running_job(t0: Instant) -> (ExecutionGraph, ResourceManager) {
        let run = "flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing --event-time";
        let submission = JobSubmission::parse_run_command(run).unwrap();
        let mut job = ExecutionGraph::new(JobId(7), submission, 128, &mut IdSource::Counter(0));
        job.status = JobStatus::Running;
        for ((_, subtask), execution) in job.executions.iter_mut() {
            execution.state = ExecutionState::Running;
            execution.slot = Some(SlotId { resource_id: ResourceId(1), index: *subtask });
        }
        let mut resource_manager = ResourceManager::new(t0, Duration::ZERO);
        resource_manager.admit(registration(1, TASK_MANAGER, 1), t0);
        (job, resource_manager)
    }

    fn ack(job: &ExecutionGraph, key: (Vertex, u32), checkpoint_id: u64) -> AcknowledgeCheckpoint {
        AcknowledgeCheckpoint {
            job_id: job.job_id,
            attempt_id: job.executions[&key].attempt_id,
            checkpoint_id,
            state: StateHandle { path: format!("chk-{checkpoint_id}/{key:?}"), size: 100 },
        }
    }

    /// Every task's acknowledgement of `checkpoint_id`, in the executions' order.
    fn acks(job: &ExecutionGraph, checkpoint_id: u64) -> Vec<AcknowledgeCheckpoint> {
        job.executions.keys().map(|key| ack(job, *key, checkpoint_id)).collect()
    }

    /// Triggers at `at`, acknowledges every task, and completes 5 ms after the last one.
    fn checkpoint(
        coordinator: &mut CheckpointCoordinator,
        job: &ExecutionGraph,
        resource_manager: &ResourceManager,
        at: Instant,
    ) -> Completion {
        let mut events = Vec::new();
        let id = coordinator.next_id;
        coordinator.trigger(job, resource_manager, 0, at, &mut events).unwrap();
        let finalization = acks(job, id).into_iter().find_map(|a| coordinator.acknowledge(a)).unwrap();
        let done = at + Duration::from_millis(5);
        coordinator.complete(finalization, job, resource_manager, at, done, &mut events).unwrap()
    }

    #[test]
    fn a_checkpoint_completes_when_every_task_has_acknowledged() {
        let t0 = origin();
        let (job, resource_manager) = running_job(t0);
        let mut coordinator = CheckpointCoordinator::default();
        let mut events = Vec::new();
        let triggers = coordinator.trigger(&job, &resource_manager, 1_234, t0, &mut events).unwrap();
        assert_eq!(triggers.len(), 2, "one trigger per source subtask");
        assert!(triggers.iter().all(|(address, t)| address.to_string() == TASK_MANAGER && t.barrier.checkpoint_id == 1));
        assert_eq!(
            events[0].to_string(),
            format!("Triggering checkpoint 1 (type=CHECKPOINT) @ 1234 for job {}.", job.job_id)
        );
        let mut acks = acks(&job, 1);
        let last = acks.pop().unwrap();
        for ack in acks {
            assert!(coordinator.acknowledge(ack).is_none(), "not all tasks have acknowledged yet");
        }
        let finalization = coordinator.acknowledge(last).expect("the last acknowledgement");
        assert_eq!(finalization.metadata_path(), format!("{}/_metadata", checkpoint_dir(job.job_id, 1)));
        assert_eq!(finalization.metadata.operators.values().map(|s| s.len()).sum::<usize>(), 8);
        let metadata_bytes = finalization.bytes.len() as u64;
        let finalizing = t0 + Duration::from_millis(40);
        let mut events = Vec::new();
        let completion = coordinator
            .complete(finalization, &job, &resource_manager, finalizing, finalizing + Duration::from_millis(7), &mut events)
            .unwrap();
        assert_eq!(
            events[0].to_string(),
            format!(
                "Completed checkpoint 1 for job {} ({} bytes, checkpointDuration=47 ms, finalizationTime=7 ms).",
                job.job_id,
                metadata_bytes + 8 * 100
            )
        );
        assert_eq!(completion.notices.len(), 1, "one notice per TaskManager");
        assert_eq!(completion.notices[0].1.attempts.len(), 8);
        assert_eq!(completion.replaced, None);
        assert_eq!(coordinator.latest().map(|c| c.metadata.checkpoint_id), Some(1));
        assert_eq!(coordinator.stats.completed, 1);

        let second = checkpoint(&mut coordinator, &job, &resource_manager, t0 + Duration::from_secs(1));
        assert_eq!(second.replaced, Some(checkpoint_dir(job.job_id, 1)), "one checkpoint is retained");
    }

    /// Planted bug `checkpoint-completes-early`: the sources' acknowledgements complete the
    /// checkpoint, whose metadata then has no state of the other vertices.
    #[test]
    fn with_the_early_completion_the_sources_acknowledgements_complete_the_checkpoint() {
        let t0 = origin();
        let (job, resource_manager) = running_job(t0);
        let planted = Plants::of([PlantedBug::CheckpointCompletesEarly]);
        for plants in [Plants::NONE, planted] {
            let mut coordinator = CheckpointCoordinator::default();
            coordinator.trigger(&job, &resource_manager, 1000, t0, &mut Vec::new()).unwrap();
            // The executions' order: the sources first.
            let mut finalized: Vec<Finalization> = Vec::new();
            for ack in acks(&job, 1) {
                finalized.extend(coordinator.acknowledge_planted(ack, plants));
            }
            assert_eq!(finalized.len(), 1, "finalized once");
            let operators: Vec<&String> = finalized[0].metadata.operators.keys().collect();
            if plants.is_empty() {
                assert_eq!(operators.len(), 4, "every vertex's state: {operators:?}");
            } else {
                assert_eq!(operators, [operator_id(Vertex::Source)], "the sources' state alone");
            }
        }
    }

    #[test]
    fn a_missing_acknowledgement_keeps_the_checkpoint_pending_and_the_next_trigger_waits() {
        let t0 = origin();
        let (job, resource_manager) = running_job(t0);
        let mut coordinator = CheckpointCoordinator::default();
        let mut events = Vec::new();
        coordinator.trigger(&job, &resource_manager, 0, t0, &mut events).unwrap();
        let mut acks = acks(&job, 1);
        acks.pop();
        assert!(acks.into_iter().all(|ack| coordinator.acknowledge(ack).is_none()));
        let mut events = Vec::new();
        let next = coordinator.trigger(&job, &resource_manager, 1_000, t0 + Duration::from_secs(1), &mut events);
        assert_eq!(next.unwrap_err(), TriggerError::InProgress(1));
        assert_eq!(events, vec![]);
    }

    #[test]
    fn a_checkpoint_older_than_the_timeout_is_aborted_and_the_next_one_triggered() {
        let t0 = origin();
        let (job, resource_manager) = running_job(t0);
        let mut coordinator = CheckpointCoordinator::default();
        coordinator.trigger(&job, &resource_manager, 0, t0, &mut Vec::new()).unwrap();
        let mut events = Vec::new();
        let almost = t0 + CHECKPOINT_TIMEOUT - Duration::from_millis(1);
        assert_eq!(coordinator.trigger(&job, &resource_manager, 0, almost, &mut events).unwrap_err(), TriggerError::InProgress(1));
        coordinator.trigger(&job, &resource_manager, 0, t0 + CHECKPOINT_TIMEOUT, &mut events).unwrap();
        let lines: Vec<String> = events.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                format!("Checkpoint 1 of job {} expired before completing.", job.job_id),
                format!("Triggering checkpoint 2 (type=CHECKPOINT) @ 0 for job {}.", job.job_id),
            ]
        );
        assert_eq!(coordinator.stats.failed, 1);
    }

    #[test]
    fn a_late_acknowledgement_of_a_declined_checkpoint_is_ignored() {
        let t0 = origin();
        let (job, resource_manager) = running_job(t0);
        let mut coordinator = CheckpointCoordinator::default();
        coordinator.trigger(&job, &resource_manager, 0, t0, &mut Vec::new()).unwrap();
        let mut acks = acks(&job, 1);
        let late = acks.pop().unwrap();
        acks.into_iter().for_each(|ack| assert!(coordinator.acknowledge(ack).is_none()));
        let mut events = Vec::new();
        coordinator.abort(1, CheckpointAbortReason::Declined("storage unreachable".into()), &mut events);
        assert_eq!(
            events[0].to_string(),
            format!("Checkpoint 1 of job {} failed: declined by a task: storage unreachable", job.job_id)
        );
        assert!(coordinator.acknowledge(late).is_none(), "the checkpoint is gone");
        assert!(coordinator.latest().is_none());
        coordinator.trigger(&job, &resource_manager, 0, t0, &mut Vec::new()).expect("the next one may start");
    }

    #[test]
    fn a_checkpoint_aborted_while_its_metadata_is_written_does_not_complete() {
        let t0 = origin();
        let (job, resource_manager) = running_job(t0);
        let mut coordinator = CheckpointCoordinator::default();
        coordinator.trigger(&job, &resource_manager, 0, t0, &mut Vec::new()).unwrap();
        let finalization = acks(&job, 1).into_iter().find_map(|a| coordinator.acknowledge(a)).unwrap();
        let mut events = Vec::new();
        coordinator.abort_pending(CheckpointAbortReason::FailingOver, &mut events);
        assert_eq!(events[0].to_string(), format!("Checkpoint 1 of job {} aborted: the job is failing over.", job.job_id));
        let done = t0 + Duration::from_millis(5);
        assert!(coordinator.complete(finalization, &job, &resource_manager, t0, done, &mut events).is_none());
        assert_eq!(events.len(), 1, "no completion");
        assert!(coordinator.latest().is_none());
    }

    #[test]
    fn checkpoint_ids_continue_after_a_restore() {
        let t0 = origin();
        let (job, resource_manager) = running_job(t0);
        let mut coordinator = CheckpointCoordinator::default();
        checkpoint(&mut coordinator, &job, &resource_manager, t0);
        coordinator.trigger(&job, &resource_manager, 0, t0 + Duration::from_secs(1), &mut Vec::new()).unwrap();
        coordinator.abort_pending(CheckpointAbortReason::FailingOver, &mut Vec::new());
        let mut events = Vec::new();
        let restored = coordinator.restore(&mut events).map(|c| c.metadata.checkpoint_id);
        assert_eq!(restored, Some(1), "the latest completed one, not the aborted one");
        assert!(matches!(events[..], [Event::Restoring { checkpoint_id: 1, .. }]));
        let mut events = Vec::new();
        let triggers = coordinator.trigger(&job, &resource_manager, 0, t0 + Duration::from_secs(3), &mut events).unwrap();
        assert_eq!(triggers[0].1.barrier.checkpoint_id, 3, "neither 1 again nor the aborted 2");
    }

    #[test]
    fn no_checkpoint_is_triggered_while_a_task_is_not_running() {
        let t0 = origin();
        let (mut job, resource_manager) = running_job(t0);
        job.executions.get_mut(&(Vertex::Sink, 1)).unwrap().state = ExecutionState::Deploying;
        let mut coordinator = CheckpointCoordinator::default();
        let mut events = Vec::new();
        let refused = coordinator.trigger(&job, &resource_manager, 0, t0, &mut events);
        assert_eq!(refused.unwrap_err(), TriggerError::NotAllTasksRunning);
        assert_eq!(
            events[0].to_string(),
            format!(
                "Failed to trigger checkpoint for job {} since Not all required tasks are currently running.",
                job.job_id
            )
        );
        job.status = JobStatus::Restarting;
        assert_eq!(coordinator.trigger(&job, &resource_manager, 0, t0, &mut events).unwrap_err(), TriggerError::JobNotRunning);
    }

    #[test]
    fn a_savepoint_takes_the_checkpoint_path_into_the_savepoints_directory_and_stops_the_job() {
        let t0 = origin();
        let (job, resource_manager) = running_job(t0);
        let mut coordinator = CheckpointCoordinator::default();
        checkpoint(&mut coordinator, &job, &resource_manager, t0);
        coordinator.request_savepoint(TriggerId(5), 0xabc, false).unwrap();
        assert_eq!(coordinator.savepoint_status(TriggerId(5)), Some(SavepointStatus::InProgress));
        let mut events = Vec::new();
        let triggers = coordinator.trigger(&job, &resource_manager, 2_000, t0 + Duration::from_secs(2), &mut events).unwrap();
        assert!(matches!(triggers[0].1.barrier.kind, SnapshotKind::Savepoint { token: 0xabc, drain: false }));
        assert!(events[0].to_string().contains("(type=SavepointType{name='Suspend Savepoint', postCheckpointAction=SUSPEND"));
        let finalization = acks(&job, 2).into_iter().find_map(|a| coordinator.acknowledge(a)).unwrap();
        let location = format!("/tmp/flink-savepoints-directory/savepoint-{}-000000000abc", &job.job_id.to_string()[..6]);
        assert_eq!(finalization.metadata_path(), format!("{location}/_metadata"));
        let done = t0 + Duration::from_secs(3);
        let completion = coordinator.complete(finalization, &job, &resource_manager, done, done, &mut events).unwrap();
        assert!(completion.stop, "the job is to finish");
        assert_eq!(completion.replaced, None, "a savepoint replaces no checkpoint");
        assert_eq!(coordinator.latest().map(|c| c.metadata.checkpoint_id), Some(1), "nor becomes the latest");
        assert_eq!(
            coordinator.savepoint_status(TriggerId(5)),
            Some(SavepointStatus::InProgress),
            "the request completes when the job has finished"
        );
        let after = coordinator.trigger(&job, &resource_manager, 4_000, t0 + Duration::from_secs(4), &mut Vec::new());
        assert_eq!(after.unwrap_err(), TriggerError::JobNotRunning, "nothing is triggered once stopped");
        coordinator.stop_finished();
        assert_eq!(coordinator.savepoint_status(TriggerId(5)), Some(SavepointStatus::Completed { location }));
    }

    #[test]
    fn a_job_failing_while_it_stops_fails_the_request_and_is_checkpointed_again() {
        let t0 = origin();
        let (job, resource_manager) = running_job(t0);
        let mut coordinator = CheckpointCoordinator::default();
        coordinator.request_savepoint(TriggerId(5), 0xabc, false).unwrap();
        coordinator.trigger(&job, &resource_manager, 0, t0, &mut Vec::new()).unwrap();
        let finalization = acks(&job, 1).into_iter().find_map(|a| coordinator.acknowledge(a)).unwrap();
        let done = t0 + Duration::from_secs(1);
        let mut events = Vec::new();
        coordinator.complete(finalization, &job, &resource_manager, done, done, &mut events).unwrap();
        // A task fails before the job has finished.
        coordinator.stop_interrupted(job.job_id, &mut events);
        let Some(SavepointStatus::Failed { cause }) = coordinator.savepoint_status(TriggerId(5)) else { panic!() };
        let location = format!("/tmp/flink-savepoints-directory/savepoint-{}-000000000abc", &job.job_id.to_string()[..6]);
        assert!(cause.starts_with(&format!("A savepoint has been created at: {location}, but the corresponding job")), "{cause}");
        assert!(matches!(events.last(), Some(Event::SavepointFailed { .. })));
        // Finishing later changes nothing; the job running on is checkpointed again.
        coordinator.stop_finished();
        assert!(matches!(coordinator.savepoint_status(TriggerId(5)), Some(SavepointStatus::Failed { .. })));
        let next = coordinator.trigger(&job, &resource_manager, 2_000, t0 + Duration::from_secs(2), &mut Vec::new()).unwrap();
        assert_eq!(next[0].1.barrier.kind, SnapshotKind::Checkpoint, "checkpoints resume");
    }

    #[test]
    fn a_failed_savepoint_lets_the_job_run_on_and_checkpoints_resume() {
        let t0 = origin();
        let (job, resource_manager) = running_job(t0);
        let mut coordinator = CheckpointCoordinator::default();
        coordinator.request_savepoint(TriggerId(5), 1, true).unwrap();
        coordinator.trigger(&job, &resource_manager, 0, t0, &mut Vec::new()).unwrap();
        let mut events = Vec::new();
        coordinator.abort(1, CheckpointAbortReason::Declined("storage unreachable".into()), &mut events);
        assert_eq!(coordinator.take_aborted_savepoint(), Some(1), "its sources are to read on");
        let Some(SavepointStatus::Failed { cause }) = coordinator.savepoint_status(TriggerId(5)) else { panic!() };
        assert_eq!(cause, "Checkpoint 1 failed: declined by a task: storage unreachable");
        let next = coordinator.trigger(&job, &resource_manager, 1_000, t0 + Duration::from_secs(1), &mut Vec::new()).unwrap();
        assert_eq!(next[0].1.barrier.kind, SnapshotKind::Checkpoint, "checkpoints resume");
    }

    #[test]
    fn a_job_restored_from_a_savepoint_keeps_it_until_its_own_checkpoint_and_never_deletes_it() {
        let t0 = origin();
        let (job, resource_manager) = running_job(t0);
        let mut coordinator = CheckpointCoordinator::default();
        coordinator.request_savepoint(TriggerId(5), 1, false).unwrap();
        coordinator.trigger(&job, &resource_manager, 0, t0, &mut Vec::new()).unwrap();
        let finalization = acks(&job, 1).into_iter().find_map(|a| coordinator.acknowledge(a)).unwrap();
        let savepoint =
            CompletedCheckpoint { metadata: finalization.metadata, directory: finalization.directory, size: 1 };
        let mut restored = CheckpointCoordinator::restored_from(JobId(8), savepoint);
        let first = checkpoint(&mut restored, &job, &resource_manager, t0 + Duration::from_secs(1));
        assert_eq!(first.replaced, None, "the savepoint is the user's");
        assert_eq!(restored.latest().map(|c| c.metadata.checkpoint_id), Some(2), "ids continue after it");
    }
}
