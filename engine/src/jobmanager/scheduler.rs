//! The scheduler (docs/model/cluster.md#state-machines,
//! docs/model/cluster.md#failure-detection-and-restarts): the job's execution graph through its
//! life. It requests slots, deploys every subtask once all slots are there (slot sharing: group i
//! holds subtask i of every vertex), fails tasks whose TaskManager is lost, and fails the job over
//! under the restart strategy, restoring the latest completed checkpoint.
//!
//! I/O-free: it returns the deployments and cancellations to send and the restart to schedule,
//! and the node sends and schedules them.

mod restart_strategy;

use std::net::SocketAddr;
use std::time::Duration;

use madsim::time::Instant;

use crate::protocol::deployment::{CancelTask, FinishTask, TaskDeploymentDescriptor, UpdateTaskExecutionState};
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
            ExecutionState::Finished
                if job.executions.values().all(|e| e.state == ExecutionState::Finished) => {
                    job.transition(JobStatus::Finished, events);
                    resource_manager.slots.free_all();
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
        checkpoints.stop_interrupted(job.job_id, events);
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
    /// over with NoResourceAvailableException
    /// (docs/model/cluster.md#failure-detection-and-restarts: the cycle of restarts the playground
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
        let backpressure = job.submission.args.backpressure;
        for &vertex in Vertex::graph(backpressure) {
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
                    consumers: if vertex.downstream(backpressure).is_some() { addresses.clone() } else { Vec::new() },
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

    /// The savepoint of `flink stop` completed (docs/model/cluster.md#the-flink-cli): every task FINISHES and so does the
    /// job, which completes the stop's request. Returns the requests that release the tasks on
    /// their TaskManagers.
    pub fn finish_stopped(
        &mut self,
        job_id: JobId,
        resource_manager: &mut ResourceManager,
        checkpoints: &mut CheckpointCoordinator,
        events: &mut Vec<Event>,
    ) -> Vec<(SocketAddr, FinishTask)> {
        let Some(job) = self.job.as_mut().filter(|job| job.job_id == job_id && job.status == JobStatus::Running)
        else {
            return Vec::new();
        };
        let mut finishes = Vec::new();
        let keys: Vec<(Vertex, u32)> = job.executions.keys().copied().collect();
        for key in keys {
            let execution = job.executions[&key].clone();
            if job.transition_execution(key, ExecutionState::Finished, events)
                && let Some(address) = execution.slot.and_then(|s| resource_manager.address(s.resource_id))
            {
                finishes.push((address, FinishTask { attempt_id: execution.attempt_id }));
            }
        }
        job.transition(JobStatus::Finished, events);
        checkpoints.stop_finished();
        resource_manager.slots.free_all();
        finishes
    }

    /// `flink cancel`: the job goes CANCELLING → CANCELED and its tasks are cancelled.
    pub fn cancel(
        &mut self,
        job_id: JobId,
        resource_manager: &mut ResourceManager,
        checkpoints: &mut CheckpointCoordinator,
        events: &mut Vec<Event>,
    ) -> Result<Vec<(SocketAddr, CancelTask)>, String> {
        let Some(job) = self.job.as_mut().filter(|job| job.job_id == job_id) else {
            return Err(format!("Job {job_id} not found"));
        };
        if job.status.is_globally_terminal() {
            return Err(format!("Job {job_id} is already {}.", job.status.name()));
        }
        checkpoints.abort_pending(CheckpointAbortReason::FailingOver, events);
        checkpoints.stop_interrupted(job.job_id, events);
        job.transition(JobStatus::Cancelling, events);
        let cancels = cancel_executions(job, resource_manager, events);
        job.transition(JobStatus::Canceled, events);
        resource_manager.slots.free_all();
        Ok(cancels)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobmanager::resource_manager::tests::{origin, registration};
    use crate::protocol::checkpoint::{AcknowledgeCheckpoint, StateHandle};

    const RUN: &str = "flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing --event-time";
    const STARTUP_PERIOD: Duration = Duration::from_secs(300);

    /// A JobManager's roles with no TaskManager yet, `startup_period` after their start.
    struct JobManager {
        scheduler: Scheduler,
        resource_manager: ResourceManager,
        checkpoints: CheckpointCoordinator,
        events: Vec<Event>,
        now: Instant,
    }

    impl JobManager {
        fn new(startup_period: Duration) -> JobManager {
            let config = SchedulerConfig {
                jobmanager: "10.0.0.2:6123".parse().unwrap(),
                job_master: JobMasterId(1),
                storage: "10.0.0.5:7000".parse().unwrap(),
                slot_request_timeout: Duration::from_secs(300),
            };
            let t0 = origin();
            JobManager {
                scheduler: Scheduler::new(config, IdSource::Counter(100)),
                resource_manager: ResourceManager::new(t0, startup_period),
                checkpoints: CheckpointCoordinator::default(),
                events: Vec::new(),
                now: t0 + startup_period,
            }
        }

        /// Submits the job (`run` is a `flink run` line).
        fn submit(&mut self, run: &str) {
            let submission = JobSubmission::parse_run_command(run).unwrap();
            self.scheduler.start(JobId(7), submission, 128, self.now, &mut self.events);
        }

        fn register(&mut self, resource_id: u128) {
            let address = format!("10.0.1.{resource_id}:6122");
            self.resource_manager.admit(registration(resource_id, &address, 1), self.now);
        }

        fn deploy(&mut self) -> Result<Vec<(SocketAddr, TaskDeploymentDescriptor)>, Failover> {
            self.scheduler.deploy(&mut self.resource_manager, &mut self.checkpoints, self.now, &mut self.events)
        }

        /// Every task reports `state` (its attempt as deployed).
        fn report_all(&mut self, state: ExecutionState) -> Vec<Failover> {
            let job = self.job();
            let updates: Vec<_> = job
                .executions
                .values()
                .map(|e| UpdateTaskExecutionState { job_id: job.job_id, attempt_id: e.attempt_id, state, error: None })
                .collect();
            updates.into_iter().map(|update| self.report(update)).collect()
        }

        fn report(&mut self, update: UpdateTaskExecutionState) -> Failover {
            self.scheduler.update_task(update, &mut self.resource_manager, &mut self.checkpoints, &mut self.events)
        }

        /// Deployed on TaskManager 1 and every task RUNNING.
        fn running(run: &str) -> JobManager {
            let mut jm = JobManager::new(Duration::ZERO);
            jm.register(1);
            jm.submit(run);
            assert_eq!(jm.deploy().unwrap().len(), 8);
            jm.report_all(ExecutionState::Initializing);
            jm.report_all(ExecutionState::Running);
            jm
        }

        fn job(&self) -> &ExecutionGraph {
            self.scheduler.job().unwrap()
        }

        fn states(&self) -> Vec<ExecutionState> {
            self.job().executions.values().map(|e| e.state).collect()
        }

        /// Completes a checkpoint of the running job.
        fn checkpoint(&mut self) -> u64 {
            let job = self.scheduler.job().unwrap();
            self.checkpoints.trigger(job, &self.resource_manager, 0, self.now, &mut self.events).unwrap();
            let id = self.events.iter().rev().find_map(|e| match e {
                Event::CheckpointTriggered { checkpoint_id, .. } => Some(*checkpoint_id),
                _ => None,
            });
            let id = id.unwrap();
            let acks: Vec<_> = job
                .executions
                .values()
                .map(|e| AcknowledgeCheckpoint {
                    job_id: job.job_id,
                    attempt_id: e.attempt_id,
                    checkpoint_id: id,
                    state: StateHandle { path: format!("s-{}", e.attempt_id), size: 1 },
                })
                .collect();
            let finalization = acks.into_iter().find_map(|a| self.checkpoints.acknowledge(a)).unwrap();
            let resource_manager = &self.resource_manager;
            self.checkpoints.complete(finalization, job, resource_manager, self.now, self.now, &mut self.events).unwrap();
            id
        }
    }

    #[test]
    fn a_job_waits_for_slots_during_the_startup_period_and_deploys_when_a_taskmanager_registers() {
        let mut jm = JobManager::new(STARTUP_PERIOD);
        jm.now -= Duration::from_secs(60);
        jm.submit(RUN);
        assert_eq!(jm.job().status, JobStatus::Running, "the job shows RUNNING while its tasks wait");
        assert!(jm.deploy().unwrap().is_empty());
        assert!(jm.states().iter().all(|s| *s == ExecutionState::Scheduled));
        jm.register(1);
        let deployments = jm.deploy().unwrap();
        assert_eq!(deployments.len(), 8, "4 vertices at parallelism 2 in 2 shared slots");
        assert!(deployments.iter().all(|(_, tdd)| tdd.restore.is_none() && tdd.max_parallelism == 128));
        assert!(jm.states().iter().all(|s| *s == ExecutionState::Deploying));
        assert_eq!(jm.resource_manager.slots.free(), 0);
    }

    #[test]
    fn without_slots_after_the_startup_period_the_job_cycles_through_no_resource_available() {
        let mut jm = JobManager::new(Duration::ZERO);
        jm.submit(RUN);
        let failover = jm.deploy().unwrap_err();
        assert_eq!(failover.restart, Some(Restart { delay: Duration::from_secs(1), version: 0 }));
        assert!(failover.cancels.is_empty(), "nothing was deployed");
        assert!(jm.events.iter().any(|e| matches!(e, Event::JobFailed { no_resource_available: true, .. })));
        assert_eq!(jm.job().status, JobStatus::Restarting);
        assert!(jm.states().iter().all(|s| *s == ExecutionState::Canceled));

        assert!(jm.scheduler.restart(0, &jm.checkpoints, jm.now, &mut jm.events));
        assert_eq!((jm.job().status, jm.job().version, jm.job().restarts), (JobStatus::Running, 1, 1));
        assert!(jm.job().executions.values().all(|e| e.state == ExecutionState::Scheduled && e.attempt_number == 1));
        assert!(!jm.scheduler.restart(0, &jm.checkpoints, jm.now, &mut jm.events), "a stale restart does nothing");
        assert!(jm.deploy().is_err(), "and again, until a TaskManager registers");
        assert!(jm.scheduler.restart(1, &jm.checkpoints, jm.now, &mut jm.events));
        jm.register(1);
        assert_eq!(jm.deploy().unwrap().len(), 8);
    }

    #[test]
    fn a_lost_taskmanager_fails_the_job_over_to_its_latest_checkpoint() {
        let mut jm = JobManager::running(RUN);
        let completed = jm.checkpoint();
        let job = jm.scheduler.job().unwrap();
        jm.checkpoints.trigger(job, &jm.resource_manager, 0, jm.now, &mut jm.events).unwrap();
        jm.events.clear();

        let lost = jm.resource_manager.lose(ResourceId(1)).unwrap();
        let failover = jm.scheduler.task_manager_lost(
            ResourceId(1),
            &lost.name,
            &mut jm.resource_manager,
            &mut jm.checkpoints,
            &mut jm.events,
        );
        assert!(failover.cancels.is_empty(), "its tasks failed with it: nothing left to cancel");
        assert_eq!(failover.restart.map(|r| r.version), Some(0));
        assert!(jm.states().iter().all(|s| *s == ExecutionState::Failed));
        let failed = jm.events.iter().find_map(|e| match e {
            Event::JobFailed { cause, .. } => Some(cause.clone()),
            _ => None,
        });
        assert_eq!(failed, Some(format!("TaskManager taskmanager-1 ({}) is lost", ResourceId(1))));
        let aborted = jm.events.iter().any(|e| {
            matches!(e, Event::CheckpointAborted { reason: CheckpointAbortReason::FailingOver, .. })
        });
        assert!(aborted, "the pending checkpoint goes with the failover");

        jm.events.clear();
        assert!(jm.scheduler.restart(0, &jm.checkpoints, jm.now, &mut jm.events));
        assert!(matches!(jm.events[0], Event::Restoring { checkpoint_id, .. } if checkpoint_id == completed));
        jm.register(2);
        let deployments = jm.deploy().unwrap();
        assert!(deployments.iter().all(|(_, tdd)| tdd.restore.as_ref().map(|m| m.checkpoint_id) == Some(completed)));
    }

    #[test]
    fn a_lost_taskmanager_without_tasks_leaves_the_job_alone() {
        let mut jm = JobManager::running(RUN);
        jm.register(2);
        jm.resource_manager.lose(ResourceId(2));
        let failover = jm.scheduler.task_manager_lost(
            ResourceId(2),
            "taskmanager-2",
            &mut jm.resource_manager,
            &mut jm.checkpoints,
            &mut jm.events,
        );
        assert!(failover.restart.is_none() && failover.cancels.is_empty());
        assert_eq!(jm.job().status, JobStatus::Running);
    }

    #[test]
    fn without_checkpointing_a_failed_task_fails_the_job_for_good() {
        let mut jm = JobManager::running("flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --event-time");
        let job = jm.job();
        let attempt_id = job.executions[&(Vertex::Counter, 0)].attempt_id;
        let update =
            UpdateTaskExecutionState { job_id: job.job_id, attempt_id, state: ExecutionState::Failed, error: Some("boom".into()) };
        let failover = jm.report(update);
        assert_eq!(failover.restart, None);
        assert_eq!(failover.cancels.len(), 7, "every other task is cancelled on its TaskManager");
        assert_eq!(jm.job().status, JobStatus::Failed);
        let failed = jm.events.iter().find_map(|e| match e {
            Event::JobFailed { cause, .. } => Some(cause.as_str()),
            _ => None,
        });
        assert_eq!(failed, Some("ClickEvent Counter (1/2) failed: boom"));
    }

    #[test]
    fn the_last_task_finishing_finishes_the_job_and_frees_its_slots() {
        let mut jm = JobManager::running(RUN);
        let mut failovers = jm.report_all(ExecutionState::Finished);
        assert!(failovers.drain(..).all(|f| f.restart.is_none() && f.cancels.is_empty()));
        assert_eq!(jm.job().status, JobStatus::Finished);
        assert_eq!(jm.resource_manager.slots.free(), 2);
    }

    #[test]
    fn suspending_cancels_the_running_tasks_on_their_taskmanagers() {
        let mut jm = JobManager::running(RUN);
        let cancels = jm.scheduler.suspend(&jm.resource_manager, &mut jm.events);
        assert_eq!(cancels.len(), 8);
        assert_eq!(jm.job().status, JobStatus::Suspended);
        assert!(jm.scheduler.suspend(&jm.resource_manager, &mut jm.events).is_empty(), "nothing is left to cancel");
    }
}
