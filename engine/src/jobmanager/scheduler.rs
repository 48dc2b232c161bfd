//! The scheduler (spec §10, §11): the job's execution graph through its life. It requests
//! slots, deploys every subtask once all slots are there (slot sharing: group i holds subtask i of
//! every vertex), fails tasks whose TaskManager is lost, and fails the job over under the
//! restart strategy, restoring the latest completed checkpoint.
//!
//! I/O-free: it returns the deployments and cancellations to send and the restart to schedule,
//! and the node sends and schedules them.

mod restart_strategy;

use std::net::SocketAddr;
use std::time::Duration;

use madsim::time::Instant;

use crate::protocol::deployment::{CancelTask, TaskDeploymentDescriptor, UpdateTaskExecutionState};
use crate::protocol::ids::{JobId, JobMasterId, ResourceId};
use crate::protocol::job::{JobSubmission, ShipStrategy, Vertex};
use crate::protocol::states::{ExecutionState, JobStatus};
use crate::trace::{CheckpointAbortReason, Event};

use super::checkpoint_coordinator::CheckpointCoordinator;
use super::execution_graph::{ExecutionGraph, IdSource};
use super::resource_manager::ResourceManager;

use restart_strategy::RestartStrategy;

/// The exception Flink's scheduler fails a job with when slots are missing.
pub const NO_RESOURCE_AVAILABLE: &str = "NoResourceAvailableException";

/// What the scheduler writes into every deployment, and how long a slot request may wait.
#[derive(Clone, Copy, Debug)]
pub struct SchedulerConfig {
    /// The JobManager's address, where tasks report.
    pub jobmanager: SocketAddr,
    /// The JobManager's session.
    pub job_master: JobMasterId,
    /// The checkpoint storage node.
    pub storage: SocketAddr,
    /// `slot.request.timeout`.
    pub slot_request_timeout: Duration,
}

/// A restart the node schedules after the strategy's delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restart {
    /// The strategy's delay.
    pub delay: Duration,
    /// The graph version that failed: a restart for an older one is stale.
    pub version: u64,
}

/// What a failover asks of the node; empty when nothing failed over.
#[derive(Debug, Default)]
pub struct Failover {
    /// Cancellations for tasks still running on reachable TaskManagers.
    pub cancels: Vec<(SocketAddr, CancelTask)>,
    /// The restart to schedule, unless the job failed for good.
    pub restart: Option<Restart>,
}

/// The job (one at a time) and its executions.
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    ids: IdSource,
    job: Option<ExecutionGraph>,
}

impl Scheduler {
    /// A scheduler with no job, drawing attempt ids from `ids`.
    pub fn new(config: SchedulerConfig, ids: IdSource) -> Scheduler {
        Scheduler { config, ids, job: None }
    }

    /// The current (or last) job.
    pub fn job(&self) -> Option<&ExecutionGraph> {
        self.job.as_ref()
    }

    /// The job, if it has not reached a globally terminal state.
    pub fn active_job(&self) -> Option<JobId> {
        self.job.as_ref().filter(|job| !job.status.is_globally_terminal()).map(|job| job.job_id)
    }

    /// Starts a newly submitted job, replacing the last one: CREATED → RUNNING, and its
    /// executions ask for slots.
    pub fn start(
        &mut self,
        job_id: JobId,
        submission: JobSubmission,
        max_parallelism: u32,
        now: Instant,
        events: &mut Vec<Event>,
    ) {
        let mut graph = ExecutionGraph::new(job_id, submission, max_parallelism, &mut self.ids);
        graph.transition(JobStatus::Running, events);
        request_slots(&mut graph, now, events);
        self.job = Some(graph);
    }

    /// A task reports a new state: a failure fails the job over, and the last task finishing
    /// finishes the job.
    pub fn update_task(
        &mut self,
        update: UpdateTaskExecutionState,
        resource_manager: &mut ResourceManager,
        checkpoints: &mut CheckpointCoordinator,
        events: &mut Vec<Event>,
    ) -> Failover {
        let Some(job) = self.job.as_mut().filter(|job| job.job_id == update.job_id) else {
            return Failover::default();
        };
        let Some(key) = job.find(update.attempt_id) else { return Failover::default() }; // an older attempt
        if !job.transition_execution(key, update.state, events) {
            return Failover::default();
        }
        match update.state {
            ExecutionState::Failed => {
                let cause = update.error.unwrap_or_default();
                let display = format!("{} ({}/{})", key.0.name(), key.1 + 1, job.parallelism());
                return self.fail(&format!("{display} failed: {cause}"), resource_manager, checkpoints, events);
            }
            ExecutionState::Finished => {
                if job.executions.values().all(|e| e.state == ExecutionState::Finished) {
                    job.transition(JobStatus::Finished, events);
                    resource_manager.slots.free_all();
                }
            }
            _ => {}
        }
        Failover::default()
    }

    /// A TaskManager is gone (the resource manager has forgotten it): every task in its slots
    /// fails, and so does the job.
    pub fn task_manager_lost(
        &mut self,
        id: ResourceId,
        name: &str,
        resource_manager: &mut ResourceManager,
        checkpoints: &mut CheckpointCoordinator,
        events: &mut Vec<Event>,
    ) -> Failover {
        let Some(job) = self.job.as_mut() else { return Failover::default() };
        let lost_tasks: Vec<(Vertex, u32)> = job
            .executions
            .iter()
            .filter(|(_, e)| e.slot.is_some_and(|s| s.resource_id == id) && !e.state.is_terminal())
            .map(|(key, _)| *key)
            .collect();
        for key in &lost_tasks {
            job.transition_execution(*key, ExecutionState::Failed, events);
        }
        if lost_tasks.is_empty() {
            return Failover::default();
        }
        self.fail(&format!("TaskManager {name} ({id}) is lost"), resource_manager, checkpoints, events)
    }

    /// A task failed: abort the pending checkpoint, cancel the rest of the job (one pipelined
    /// region), then restart after the strategy's delay or fail for good.
    pub fn fail(
        &mut self,
        cause: &str,
        resource_manager: &mut ResourceManager,
        checkpoints: &mut CheckpointCoordinator,
        events: &mut Vec<Event>,
    ) -> Failover {
        let Some(job) = self.job.as_mut().filter(|job| job.status == JobStatus::Running) else {
            return Failover::default();
        };
        let strategy = RestartStrategy::for_job(&job.submission);
        events.push(Event::JobFailed {
            job_id: job.job_id,
            cause: cause.to_owned(),
            no_resource_available: cause.starts_with(NO_RESOURCE_AVAILABLE),
        });
        checkpoints.abort_pending(CheckpointAbortReason::FailingOver, events);
        let next = if strategy.allows_restart(job.restarts) { JobStatus::Restarting } else { JobStatus::Failing };
        job.transition(next, events);
        let cancels = cancel_executions(job, resource_manager, events);
        resource_manager.slots.free_all();
        if next == JobStatus::Failing {
            job.transition(JobStatus::Failed, events);
            return Failover { cancels, restart: None };
        }
        Failover { cancels, restart: Some(Restart { delay: strategy.delay, version: job.version }) }
    }

    /// The restart delay has passed: fresh attempts restore the latest completed checkpoint
    /// and ask for slots. Returns whether it restarted (a stale restart does nothing).
    pub fn restart(
        &mut self,
        version: u64,
        checkpoints: &CheckpointCoordinator,
        now: Instant,
        events: &mut Vec<Event>,
    ) -> bool {
        let Some(job) = self.job.as_mut() else { return false };
        if job.version != version || job.status != JobStatus::Restarting {
            return false;
        }
        job.reset_for_restart(&mut self.ids);
        checkpoints.restore(events);
        job.transition(JobStatus::Running, events);
        request_slots(job, now, events);
        true
    }

    /// With slot sharing the job needs one slot per subtask index: takes them all and returns
    /// the deployments, or waits while the resource manager is starting up, or fails the job
    /// over with NoResourceAvailableException (spec §11: the cycle of restarts the playground
    /// shows while a TaskManager is missing).
    pub fn deploy(
        &mut self,
        resource_manager: &mut ResourceManager,
        checkpoints: &mut CheckpointCoordinator,
        now: Instant,
        events: &mut Vec<Event>,
    ) -> Result<Vec<(SocketAddr, TaskDeploymentDescriptor)>, Failover> {
        let config = self.config;
        let Some(job) = self.job.as_mut() else { return Ok(Vec::new()) };
        let waiting = job.status == JobStatus::Running
            && job.executions.values().all(|e| e.state == ExecutionState::Scheduled);
        if !waiting {
            return Ok(Vec::new());
        }
        let Some(slots) = resource_manager.slots.allocate(job.parallelism()) else {
            let waited = now.duration_since(job.scheduled_at.unwrap_or(now));
            if resource_manager.starting_up(now) && waited < config.slot_request_timeout {
                return Ok(Vec::new());
            }
            let cause = format!(
                "{NO_RESOURCE_AVAILABLE}: Could not acquire the minimum required resources. \
                 ({} slots needed, {} free)",
                job.parallelism(),
                resource_manager.slots.free()
            );
            return Err(self.fail(&cause, resource_manager, checkpoints, events));
        };
        let restore = checkpoints.latest().map(|c| c.metadata.clone());
        let addresses: Vec<SocketAddr> = slots.iter().map(|(_, address)| *address).collect();
        let mut deployments = Vec::new();
        for vertex in Vertex::ALL {
            for subtask in 0..job.parallelism() {
                let (slot, address) = slots[subtask as usize];
                let key = (vertex, subtask);
                job.executions.get_mut(&key).expect("every subtask has an execution").slot = Some(slot);
                job.transition_execution(key, ExecutionState::Deploying, events);
                let execution = &job.executions[&key];
                let tdd = TaskDeploymentDescriptor {
                    job_id: job.job_id,
                    attempt_id: execution.attempt_id,
                    attempt_number: execution.attempt_number,
                    graph_version: job.version,
                    vertex,
                    subtask,
                    parallelism: job.parallelism(),
                    max_parallelism: job.max_parallelism,
                    submission: job.submission.clone(),
                    slot: slot.index,
                    consumers: if vertex.downstream().is_some() { addresses.clone() } else { Vec::new() },
                    // A forward edge is one channel; a hash edge one per upstream subtask.
                    input_channels: match vertex.input_ship_strategy() {
                        None => 0,
                        Some(ShipStrategy::Forward) => 1,
                        Some(ShipStrategy::Hash) => job.parallelism(),
                    },
                    jobmanager: config.jobmanager,
                    job_master: config.job_master,
                    storage: config.storage,
                    restore: restore.clone(),
                };
                deployments.push((address, tdd));
            }
        }
        Ok(deployments)
    }

    /// The JobManager is shutting down: the job is SUSPENDED (without HA it is gone with the
    /// process); returns the cancellations for its tasks.
    pub fn suspend(
        &mut self,
        resource_manager: &ResourceManager,
        events: &mut Vec<Event>,
    ) -> Vec<(SocketAddr, CancelTask)> {
        let Some(job) = self.job.as_mut().filter(|job| !job.status.is_globally_terminal()) else {
            return Vec::new();
        };
        job.transition(JobStatus::Suspended, events);
        cancel_executions(job, resource_manager, events)
    }
}

/// New executions ask for slots: CREATED → SCHEDULED.
fn request_slots(job: &mut ExecutionGraph, now: Instant, events: &mut Vec<Event>) {
    job.scheduled_at = Some(now);
    let keys: Vec<(Vertex, u32)> = job.executions.keys().copied().collect();
    for key in keys {
        job.transition_execution(key, ExecutionState::Scheduled, events);
    }
}

/// Cancels every live execution; returns the cancel requests to send to TaskManagers.
fn cancel_executions(
    job: &mut ExecutionGraph,
    resource_manager: &ResourceManager,
    events: &mut Vec<Event>,
) -> Vec<(SocketAddr, CancelTask)> {
    let mut cancels = Vec::new();
    let keys: Vec<(Vertex, u32)> = job.executions.keys().copied().collect();
    for key in keys {
        let execution = job.executions[&key].clone();
        match execution.state {
            ExecutionState::Created | ExecutionState::Scheduled => {
                job.transition_execution(key, ExecutionState::Canceled, events);
            }
            ExecutionState::Deploying | ExecutionState::Initializing | ExecutionState::Running => {
                job.transition_execution(key, ExecutionState::Canceling, events);
                if let Some(address) = execution.slot.and_then(|s| resource_manager.address(s.resource_id)) {
                    cancels.push((address, CancelTask { attempt_id: execution.attempt_id }));
                }
                // Flink waits for the TaskManager's confirmation; the slot is freed regardless
                // because the whole region restarts on fresh attempts.
                job.transition_execution(key, ExecutionState::Canceled, events);
            }
            _ => {}
        }
    }
    cancels
}
