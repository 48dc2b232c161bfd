//! The JobManager node (spec §1, §10, §11): the resource manager (TaskManager registrations,
//! heartbeats, the slot pool), the dispatcher (job submissions) and the job master (execution
//! graph, scheduling with slot sharing, deployment, failover under the restart strategy).

pub mod execution_graph;
pub mod restart_strategy;
pub mod slot_pool;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::time::Instant;
use tokio::sync::Notify;

use crate::protocol::cluster::{
    Heartbeat, RegisterTaskManager, RegistrationResponse, SubmitJob, SubmitJobResponse,
};
use crate::protocol::deployment::{
    CancelTask, SubmitTask, TaskDeploymentDescriptor, UpdateTaskExecutionState,
};
use crate::protocol::ids::{JobId, JobMasterId, ResourceId};
use crate::protocol::job::{JOB_NAME, Vertex};
use crate::protocol::key_group::default_max_parallelism;
use crate::protocol::states::{ExecutionState, JobStatus};
use crate::rpc::{LinkFaults, Rpc};
use crate::trace::NodeTrace;

use execution_graph::ExecutionGraph;
use restart_strategy::RestartStrategy;
use slot_pool::SlotPool;

/// How the JobManager node is set up (defaults from the playground's flink-conf.yaml).
#[derive(Clone, Debug)]
pub struct JobManagerConfig {
    /// Its address (RPC).
    pub address: SocketAddr,
    /// `heartbeat.interval`.
    pub heartbeat_interval: Duration,
    /// `heartbeat.timeout`.
    pub heartbeat_timeout: Duration,
    /// The simulator's link faults.
    pub faults: LinkFaults,
    /// The node's trace.
    pub trace: NodeTrace,
}

impl JobManagerConfig {
    /// The playground's configuration at `address`.
    pub fn new(address: SocketAddr, faults: LinkFaults, trace: NodeTrace) -> JobManagerConfig {
        JobManagerConfig {
            address,
            heartbeat_interval: Duration::from_millis(1000),
            heartbeat_timeout: Duration::from_millis(5000),
            faults,
            trace,
        }
    }
}

#[derive(Debug)]
struct RegisteredTaskManager {
    name: String,
    address: SocketAddr,
    last_heartbeat: Instant,
}

struct JobManagerState {
    job_master: JobMasterId,
    task_managers: BTreeMap<ResourceId, RegisteredTaskManager>,
    slots: SlotPool,
    job: Option<ExecutionGraph>,
}

/// Shared by the JobManager's handlers and loops.
#[derive(Clone)]
struct JobManager {
    config: JobManagerConfig,
    rpc: Rpc,
    state: Arc<Mutex<JobManagerState>>,
    /// Wakes the scheduler: a job arrived, slots came or went, a task failed.
    reschedule: Arc<Notify>,
}

/// The node's main: re-run from scratch on every restart.
pub async fn run(config: JobManagerConfig) {
    let rpc = match Rpc::bind(config.address, config.faults.clone()).await {
        Ok(rpc) => rpc,
        Err(error) => {
            config.trace.event(format!("cannot bind {}: {error}", config.address));
            return;
        }
    };
    let job_master = JobMasterId::random();
    config.trace.event(format!("JobManager started at {} as {job_master}", config.address));
    let jm = JobManager {
        config,
        rpc: rpc.clone(),
        state: Arc::new(Mutex::new(JobManagerState {
            job_master,
            task_managers: BTreeMap::new(),
            slots: SlotPool::default(),
            job: None,
        })),
        reschedule: Arc::new(Notify::new()),
    };
    rpc.serve({
        let jm = jm.clone();
        move |request: RegisterTaskManager, _| std::future::ready(jm.register(request))
    });
    rpc.serve({
        let jm = jm.clone();
        move |request: SubmitJob, _| std::future::ready(jm.submit(request))
    });
    rpc.serve({
        let jm = jm.clone();
        move |update: UpdateTaskExecutionState, _| std::future::ready(jm.update_task(update))
    });
    madsim::task::spawn(jm.clone().monitor_heartbeats());
    jm.schedule_forever().await;
}

impl JobManager {
    fn trace(&self) -> &NodeTrace {
        &self.config.trace
    }

    fn register(&self, request: RegisterTaskManager) -> RegistrationResponse {
        let mut state = self.state.lock().unwrap();
        self.trace().event(format!(
            "Registering TaskManager with ResourceID {} ({}) at ResourceManager",
            request.resource_id, request.name
        ));
        // A TaskManager that restarted registers under a new id: its old incarnation is gone.
        let stale: Vec<ResourceId> = state
            .task_managers
            .iter()
            .filter(|(id, tm)| tm.address == request.address && **id != request.resource_id)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.lose_task_manager(&mut state, id, "is no longer reachable");
        }
        if !state.task_managers.contains_key(&request.resource_id) {
            state.slots.offer(request.resource_id, request.address, request.slots);
        }
        state.task_managers.insert(
            request.resource_id,
            RegisteredTaskManager {
                name: request.name,
                address: request.address,
                last_heartbeat: Instant::now(),
            },
        );
        self.reschedule.notify_one();
        RegistrationResponse::Accepted { job_master: state.job_master }
    }

    fn submit(&self, SubmitJob { submission }: SubmitJob) -> SubmitJobResponse {
        let mut state = self.state.lock().unwrap();
        if let Some(job) = &state.job
            && !job.status.is_globally_terminal()
        {
            return SubmitJobResponse::Rejected(format!(
                "a job is already running: {JOB_NAME} ({})",
                job.job_id
            ));
        }
        let job_id = JobId::random();
        self.trace().event(format!("Received JobGraph submission '{JOB_NAME}' ({job_id})."));
        let max_parallelism = default_max_parallelism(submission.parallelism);
        let mut graph = ExecutionGraph::new(job_id, submission, max_parallelism);
        graph.transition(JobStatus::Running, self.trace());
        request_slots(&mut graph, self.trace());
        state.job = Some(graph);
        self.reschedule.notify_one();
        SubmitJobResponse::Submitted(job_id)
    }

    fn update_task(&self, update: UpdateTaskExecutionState) {
        let mut state = self.state.lock().unwrap();
        let Some(job) = state.job.as_mut().filter(|job| job.job_id == update.job_id) else {
            return;
        };
        let Some(key) = job.find(update.attempt_id) else { return }; // an older attempt
        if !job.transition_execution(key, update.state, self.trace()) {
            return;
        }
        match update.state {
            ExecutionState::Failed => {
                let cause = update.error.unwrap_or_default();
                let display = format!("{} ({}/{})", key.0.name(), key.1 + 1, job.parallelism());
                self.fail_job(&mut state, &format!("{display} failed: {cause}"));
            }
            ExecutionState::Finished => {
                if job.executions.values().all(|e| e.state == ExecutionState::Finished) {
                    job.transition(JobStatus::Finished, self.trace());
                    state.slots.free_all();
                }
            }
            _ => {}
        }
    }

    /// A TaskManager is gone: its slots go, and every task in them fails.
    fn lose_task_manager(&self, state: &mut JobManagerState, id: ResourceId, how: &str) {
        let Some(tm) = state.task_managers.remove(&id) else { return };
        let message = if how == "timed out" {
            format!("Heartbeat of TaskManager with id {id} timed out.")
        } else {
            format!("TaskManager with id {id} {how}.")
        };
        self.trace().event(format!("{message} ({})", tm.name));
        state.slots.release_task_manager(id);
        let lost_tasks: Vec<(Vertex, u32)> = state
            .job
            .iter()
            .flat_map(|job| job.executions.iter())
            .filter(|(_, e)| e.slot.is_some_and(|s| s.resource_id == id) && !e.state.is_terminal())
            .map(|(key, _)| *key)
            .collect();
        if let Some(job) = state.job.as_mut() {
            for key in &lost_tasks {
                job.transition_execution(*key, ExecutionState::Failed, self.trace());
            }
        }
        if !lost_tasks.is_empty() {
            self.fail_job(state, &format!("TaskManager {} ({id}) is lost", tm.name));
        }
    }

    /// A task failed: cancel the rest of the job (one pipelined region), then restart or fail.
    fn fail_job(&self, state: &mut JobManagerState, cause: &str) {
        let Some(job) = state.job.as_mut() else { return };
        if !matches!(job.status, JobStatus::Running) {
            return;
        }
        let strategy = RestartStrategy::for_job(&job.submission);
        self.trace().event(format!("Job {JOB_NAME} ({}) failed: {cause}", job.job_id));
        let next = if strategy.allows_restart(job.restarts) {
            JobStatus::Restarting
        } else {
            JobStatus::Failing
        };
        job.transition(next, self.trace());
        let cancels = cancel_executions(job, &state.task_managers, self.trace());
        state.slots.free_all();
        self.send_cancels(cancels);
        if next == JobStatus::Failing {
            job.transition(JobStatus::Failed, self.trace());
            return;
        }
        let jm = self.clone();
        let version = job.version;
        madsim::task::spawn(async move {
            madsim::time::sleep(strategy.delay).await;
            jm.restart(version);
        });
    }

    fn restart(&self, version: u64) {
        let mut state = self.state.lock().unwrap();
        let Some(job) = state.job.as_mut() else { return };
        if job.version != version || job.status != JobStatus::Restarting {
            return;
        }
        job.reset_for_restart();
        job.transition(JobStatus::Running, self.trace());
        request_slots(job, self.trace());
        self.reschedule.notify_one();
    }

    fn send_cancels(&self, cancels: Vec<(SocketAddr, CancelTask)>) {
        for (address, cancel) in cancels {
            let rpc = self.rpc.clone();
            madsim::task::spawn(async move {
                let _ = rpc.call(address, cancel, Duration::from_secs(1)).await;
            });
        }
    }

    /// Deploys the job whenever it waits for slots and enough are free.
    async fn schedule_forever(self) {
        loop {
            self.reschedule.notified().await;
            let deployments = {
                let mut state = self.state.lock().unwrap();
                self.allocate_and_prepare(&mut state)
            };
            for (address, tdd) in deployments {
                let jm = self.clone();
                madsim::task::spawn(async move {
                    let attempt_id = tdd.attempt_id;
                    let job_id = tdd.job_id;
                    let result = jm.rpc.call(address, SubmitTask { tdd }, Duration::from_secs(5)).await;
                    let error = match result {
                        Ok(Ok(())) => return,
                        Ok(Err(refused)) => refused,
                        Err(error) => error.to_string(),
                    };
                    jm.update_task(UpdateTaskExecutionState {
                        job_id,
                        attempt_id,
                        state: ExecutionState::Failed,
                        error: Some(format!("could not deploy: {error}")),
                    });
                });
            }
        }
    }

    /// With slot sharing the job needs one slot per subtask index; take them all or wait.
    fn allocate_and_prepare(
        &self,
        state: &mut JobManagerState,
    ) -> Vec<(SocketAddr, TaskDeploymentDescriptor)> {
        let job_master = state.job_master;
        let Some(job) = state.job.as_mut() else { return Vec::new() };
        let waiting = job.status == JobStatus::Running
            && job.executions.values().all(|e| e.state == ExecutionState::Scheduled);
        if !waiting {
            return Vec::new();
        }
        let Some(slots) = state.slots.allocate(job.parallelism()) else {
            return Vec::new();
        };
        let addresses: Vec<SocketAddr> = slots.iter().map(|(_, address)| *address).collect();
        let mut deployments = Vec::new();
        for vertex in Vertex::ALL {
            for subtask in 0..job.parallelism() {
                let (slot, address) = slots[subtask as usize];
                let key = (vertex, subtask);
                job.executions.get_mut(&key).expect("every subtask has an execution").slot =
                    Some(slot);
                job.transition_execution(key, ExecutionState::Deploying, self.trace());
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
                    input_channels: if vertex.upstream().is_some() { job.parallelism() } else { 0 },
                    jobmanager: self.config.address,
                    job_master,
                };
                deployments.push((address, tdd));
            }
        }
        deployments
    }

    /// Sends heartbeats every interval; a TaskManager silent for the timeout is lost.
    async fn monitor_heartbeats(self) {
        let mut tick = madsim::time::interval(self.config.heartbeat_interval);
        loop {
            tick.tick().await;
            let (job_master, targets): (JobMasterId, Vec<(ResourceId, SocketAddr)>) = {
                let state = self.state.lock().unwrap();
                let targets = state.task_managers.iter().map(|(id, tm)| (*id, tm.address)).collect();
                (state.job_master, targets)
            };
            for (id, address) in targets {
                let jm = self.clone();
                madsim::task::spawn(async move {
                    let answer =
                        jm.rpc.call(address, Heartbeat { job_master }, jm.config.heartbeat_interval).await;
                    if let Ok(response) = answer
                        && response.resource_id == id
                        && let Some(tm) = jm.state.lock().unwrap().task_managers.get_mut(&id)
                    {
                        tm.last_heartbeat = Instant::now();
                    }
                });
            }
            let mut state = self.state.lock().unwrap();
            let now = Instant::now();
            let lost: Vec<ResourceId> = state
                .task_managers
                .iter()
                .filter(|(_, tm)| now.duration_since(tm.last_heartbeat) > self.config.heartbeat_timeout)
                .map(|(id, _)| *id)
                .collect();
            for id in lost {
                self.lose_task_manager(&mut state, id, "timed out");
            }
            if state.job.is_some() {
                self.reschedule.notify_one();
            }
        }
    }
}

/// New executions ask for slots: CREATED → SCHEDULED.
fn request_slots(job: &mut ExecutionGraph, trace: &NodeTrace) {
    let keys: Vec<(Vertex, u32)> = job.executions.keys().copied().collect();
    for key in keys {
        job.transition_execution(key, ExecutionState::Scheduled, trace);
    }
}

/// Cancels every live execution; returns the cancel requests to send to TaskManagers.
fn cancel_executions(
    job: &mut ExecutionGraph,
    task_managers: &BTreeMap<ResourceId, RegisteredTaskManager>,
    trace: &NodeTrace,
) -> Vec<(SocketAddr, CancelTask)> {
    let mut cancels = Vec::new();
    let keys: Vec<(Vertex, u32)> = job.executions.keys().copied().collect();
    for key in keys {
        let execution = job.executions[&key].clone();
        match execution.state {
            ExecutionState::Created | ExecutionState::Scheduled => {
                job.transition_execution(key, ExecutionState::Canceled, trace);
            }
            ExecutionState::Deploying | ExecutionState::Initializing | ExecutionState::Running => {
                job.transition_execution(key, ExecutionState::Canceling, trace);
                if let Some(tm) = execution.slot.and_then(|s| task_managers.get(&s.resource_id)) {
                    cancels.push((tm.address, CancelTask { attempt_id: execution.attempt_id }));
                }
                // Flink waits for the TaskManager's confirmation; the slot is freed regardless
                // because the whole region restarts on fresh attempts.
                job.transition_execution(key, ExecutionState::Canceled, trace);
            }
            _ => {}
        }
    }
    cancels
}
