//! The JobManager node (spec §1, §10, §11): the resource manager (TaskManager registrations,
//! heartbeats, the slot pool), the dispatcher (job submissions) and the job master (execution
//! graph, scheduling with slot sharing, deployment, failover under the restart strategy).

pub mod checkpoint_coordinator;
pub mod execution_graph;
pub mod restart_strategy;
pub mod slot_pool;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::rand::Rng;
use madsim::time::Instant;
use tokio::sync::Notify;

use crate::protocol::checkpoint::{
    AcknowledgeCheckpoint, DeclineCheckpoint, NotifyCheckpointComplete, TriggerCheckpoint,
};
use crate::lifecycle::Shutdown;
use crate::protocol::cluster::{
    DisconnectJobManager, DisconnectTaskManager, Heartbeat, RegisterTaskManager,
    RegistrationResponse, SubmitJob, SubmitJobResponse,
};
use crate::protocol::deployment::{
    CancelTask, SubmitTask, TaskDeploymentDescriptor, UpdateTaskExecutionState,
};
use crate::protocol::ids::{JobId, JobMasterId, ResourceId};
use crate::protocol::job::{JOB_NAME, ShipStrategy, Vertex};
use crate::protocol::key_group::default_max_parallelism;
use crate::protocol::states::{ExecutionState, JobStatus};
use crate::rpc::{Network, Rpc};
use crate::storage::StorageClient;
use crate::timer::Ticker;
use crate::trace::{Event, NodeTrace};

use checkpoint_coordinator::{CHECKPOINT_TIMEOUT, CheckpointCoordinator, CompletedCheckpoint};
use execution_graph::ExecutionGraph;
use restart_strategy::RestartStrategy;
use slot_pool::SlotPool;

/// The exception Flink's scheduler fails a job with when slots are missing.
const NO_RESOURCE_AVAILABLE: &str = "NoResourceAvailableException";

/// How the JobManager node is set up (defaults from the playground's flink-conf.yaml).
#[derive(Clone, Debug)]
pub struct JobManagerConfig {
    /// Its address (RPC).
    pub address: SocketAddr,
    /// `heartbeat.interval`.
    pub heartbeat_interval: Duration,
    /// `heartbeat.timeout`.
    pub heartbeat_timeout: Duration,
    /// The checkpoint storage node.
    pub storage: SocketAddr,
    /// The resource manager's start-up period: slot requests wait instead of failing.
    pub startup_period: Duration,
    /// `slot.request.timeout`.
    pub slot_request_timeout: Duration,
    /// The job's checkpoint interval (with `--checkpointing`).
    pub checkpoint_interval: Duration,
    /// The simulated network the node is bound on (the simulator injects its faults there).
    pub network: Network,
    /// The node's trace.
    pub trace: NodeTrace,
    /// SIGTERM (`docker-compose stop`): suspend the job, disconnect, exit.
    pub shutdown: Shutdown,
}

impl JobManagerConfig {
    /// The playground's configuration at `address`, storing checkpoints at `storage`.
    pub fn new(
        address: SocketAddr,
        storage: SocketAddr,
        network: Network,
        trace: NodeTrace,
    ) -> JobManagerConfig {
        JobManagerConfig {
            address,
            heartbeat_interval: Duration::from_millis(1000),
            heartbeat_timeout: Duration::from_millis(5000),
            storage,
            startup_period: Duration::from_secs(5 * 60),
            slot_request_timeout: Duration::from_secs(5 * 60),
            checkpoint_interval: Duration::from_millis(1000),
            network,
            trace,
            shutdown: Shutdown::default(),
        }
    }
}

#[derive(Debug)]
struct RegisteredTaskManager {
    name: String,
    address: SocketAddr,
    /// The registration session it last registered in (see [`RegisterTaskManager::session`]).
    session: u64,
    last_heartbeat: Instant,
}

struct JobManagerState {
    /// When the resource manager started (its start-up period counts from here).
    started: Instant,
    job_master: JobMasterId,
    checkpoints: CheckpointCoordinator,
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
    let rpc = Rpc::bind(config.address, config.network.clone());
    let job_master = JobMasterId::random();
    config.trace.record(Event::JobManagerStarted {
        address: config.address,
        session: job_master.to_string(),
    });
    let jm = JobManager {
        config,
        rpc: rpc.clone(),
        state: Arc::new(Mutex::new(JobManagerState {
            started: Instant::now(),
            job_master,
            checkpoints: CheckpointCoordinator::default(),
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
    rpc.serve({
        let jm = jm.clone();
        move |ack: AcknowledgeCheckpoint, _| std::future::ready(jm.acknowledge_checkpoint(ack))
    });
    rpc.serve({
        let jm = jm.clone();
        move |decline: DeclineCheckpoint, _| {
            let reason = format!("declined by a task: {}", decline.reason);
            std::future::ready(jm.abort_checkpoint(decline.checkpoint_id, &reason))
        }
    });
    rpc.serve({
        let jm = jm.clone();
        move |disconnect: DisconnectTaskManager, _| std::future::ready(jm.disconnect_task_manager(disconnect))
    });
    madsim::task::spawn(jm.clone().shut_down_on_sigterm());
    madsim::task::spawn(jm.clone().monitor_heartbeats());
    madsim::task::spawn(jm.clone().trigger_checkpoints());
    jm.schedule_forever().await;
}

impl JobManager {
    fn trace(&self) -> &NodeTrace {
        &self.config.trace
    }

    fn register(&self, request: RegisterTaskManager) -> RegistrationResponse {
        let mut state = self.state.lock().unwrap();
        self.trace().record(Event::TaskManagerRegistered {
            resource_id: request.resource_id,
            name: request.name.clone(),
        });
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
        // The same incarnation in a new session lost this JobManager and dropped its tasks, as
        // Flink's TaskExecutor does: release its slots and fail what ran there, as Flink's
        // ResourceManager does when it replaces an old registration. (A retried registration
        // of the same session changes nothing.)
        if state.task_managers.get(&request.resource_id).is_some_and(|tm| tm.session != request.session) {
            self.lose_task_manager(&mut state, request.resource_id, "registered again: its tasks are gone");
        }
        if !state.task_managers.contains_key(&request.resource_id) {
            state.slots.offer(request.resource_id, request.address, request.slots);
        }
        state.task_managers.insert(
            request.resource_id,
            RegisteredTaskManager {
                name: request.name,
                address: request.address,
                session: request.session,
                last_heartbeat: Instant::now(),
            },
        );
        self.reschedule.notify_one();
        RegistrationResponse::Accepted { job_master: state.job_master }
    }

    fn submit(&self, SubmitJob { submission }: SubmitJob) -> SubmitJobResponse {
        if let Some((_, reason)) = submission.unsupported_variant() {
            return SubmitJobResponse::Rejected(reason.to_owned());
        }
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
        self.trace().record(Event::JobSubmitted { job_id });
        let max_parallelism = default_max_parallelism(submission.parallelism);
        let mut graph = ExecutionGraph::new(job_id, submission, max_parallelism);
        state.checkpoints = CheckpointCoordinator::default();
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

    /// A TaskManager that is shutting down said goodbye: lose it now, not after the heartbeat
    /// timeout.
    fn disconnect_task_manager(&self, disconnect: DisconnectTaskManager) {
        let mut state = self.state.lock().unwrap();
        let Some(name) = state.task_managers.get(&disconnect.resource_id).map(|tm| tm.name.clone())
        else {
            return;
        };
        self.trace().record(Event::TaskManagerDisconnected { name });
        let how = format!("disconnected because: {}", disconnect.cause.trim_end_matches('.'));
        self.lose_task_manager(&mut state, disconnect.resource_id, &how);
        self.reschedule.notify_one();
    }

    /// On SIGTERM: suspend the job (cancelling its tasks), tell every TaskManager, and say the
    /// node may go. Without HA the job is gone with the process: a JobManager that starts
    /// again knows of no job (the playground's client must submit it again).
    async fn shut_down_on_sigterm(self) {
        self.config.shutdown.requested().await;
        self.trace().record(Event::ShutdownStarted { grace: crate::lifecycle::STOP_GRACE });
        let (cancels, job_master, task_managers) = {
            let mut guard = self.state.lock().unwrap();
            let state = &mut *guard;
            let mut cancels = Vec::new();
            if let Some(job) = state.job.as_mut()
                && !job.status.is_globally_terminal()
            {
                job.transition(JobStatus::Suspended, self.trace());
                cancels = cancel_executions(job, &state.task_managers, self.trace());
            }
            let task_managers: Vec<SocketAddr> = state.task_managers.values().map(|tm| tm.address).collect();
            (cancels, state.job_master, task_managers)
        };
        // Cancellations first, so the tasks release what they hold before their TaskManager
        // drops them on the disconnect.
        for (address, cancel) in cancels {
            let _ = self.rpc.call(address, cancel, Duration::from_secs(1)).await;
        }
        for address in task_managers {
            let _ = self.rpc.call(address, DisconnectJobManager { job_master }, Duration::from_secs(1)).await;
        }
        self.trace().record(Event::ShutdownCompleted);
        self.config.shutdown.complete();
    }

    /// A TaskManager is gone: its slots go, and every task in them fails.
    fn lose_task_manager(&self, state: &mut JobManagerState, id: ResourceId, how: &str) {
        let Some(tm) = state.task_managers.remove(&id) else { return };
        self.trace().record(Event::TaskManagerLost {
            resource_id: id,
            name: tm.name.clone(),
            heartbeat_timed_out: how == "timed out",
            how: how.to_owned(),
        });
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
        self.trace().record(Event::JobFailed {
            job_id: job.job_id,
            cause: cause.to_owned(),
            no_resource_available: cause.starts_with(NO_RESOURCE_AVAILABLE),
        });
        if let Some(id) = state.checkpoints.abort_pending() {
            self.trace().event(format!("Checkpoint {id} of job {} aborted: the job is failing over.", job.job_id));
        }
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
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let Some(job) = state.job.as_mut() else { return };
        if job.version != version || job.status != JobStatus::Restarting {
            return;
        }
        job.reset_for_restart();
        if let Some(latest) = state.checkpoints.latest() {
            let m = &latest.metadata;
            self.trace().record(Event::Restoring {
                job_id: m.job_id,
                checkpoint_id: m.checkpoint_id,
                timestamp_ms: m.timestamp_ms,
                directory: latest.directory.clone(),
            });
        }
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
                let deployments = self.allocate_and_prepare(&mut state);
                if let Err(cause) = &deployments {
                    self.fail_job(&mut state, cause);
                }
                deployments.unwrap_or_default()
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

    /// With slot sharing the job needs one slot per subtask index; take them all, or wait
    /// while the resource manager is starting up, or fail with NoResourceAvailableException
    /// (spec §11: the cycle of restarts the playground shows while a TaskManager is missing).
    fn allocate_and_prepare(
        &self,
        state: &mut JobManagerState,
    ) -> Result<Vec<(SocketAddr, TaskDeploymentDescriptor)>, String> {
        let job_master = state.job_master;
        let now = Instant::now();
        let starting_up = now.duration_since(state.started) < self.config.startup_period;
        let restore = state.checkpoints.latest().map(|c| c.metadata.clone());
        let Some(job) = state.job.as_mut() else { return Ok(Vec::new()) };
        let waiting = job.status == JobStatus::Running
            && job.executions.values().all(|e| e.state == ExecutionState::Scheduled);
        if !waiting {
            return Ok(Vec::new());
        }
        let Some(slots) = state.slots.allocate(job.parallelism()) else {
            let waited = now.duration_since(job.scheduled_at.unwrap_or(now));
            if !starting_up || waited >= self.config.slot_request_timeout {
                return Err(format!(
                    "{NO_RESOURCE_AVAILABLE}: Could not acquire the minimum required resources. \
                     ({} slots needed, {} free)",
                    job.parallelism(),
                    state.slots.free()
                ));
            }
            return Ok(Vec::new());
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
                    // A forward edge is one channel; a hash edge one per upstream subtask.
                    input_channels: match vertex.input_ship_strategy() {
                        None => 0,
                        Some(ShipStrategy::Forward) => 1,
                        Some(ShipStrategy::Hash) => job.parallelism(),
                    },
                    jobmanager: self.config.address,
                    job_master,
                    storage: self.config.storage,
                    restore: restore.clone(),
                };
                deployments.push((address, tdd));
            }
        }
        Ok(deployments)
    }

    /// Triggers a checkpoint every interval while the job runs with `--checkpointing`; the
    /// first one at a seeded random point of the first interval.
    async fn trigger_checkpoints(self) {
        let interval = self.config.checkpoint_interval;
        let first = Duration::from_micros(madsim::rand::thread_rng().gen_range(0..=interval.as_micros() as u64));
        madsim::time::sleep(first).await;
        let mut tick = Ticker::new(interval);
        loop {
            tick.tick().await;
            let triggers = {
                let mut guard = self.state.lock().unwrap();
                let state = &mut *guard;
                let Some(job) = state.job.as_ref() else { continue };
                if job.status != JobStatus::Running || !job.submission.args.checkpointing {
                    continue;
                }
                if let Some(id) = state.checkpoints.expired(CHECKPOINT_TIMEOUT) {
                    state.checkpoints.abort_pending();
                    self.trace().event(format!("Checkpoint {id} of job {} expired before completing.", job.job_id));
                }
                let timestamp_ms = self.config.trace.elapsed().as_millis() as i64;
                match state.checkpoints.trigger(job, timestamp_ms) {
                    Ok((barrier, sources)) => {
                        self.trace().event(format!(
                            "Triggering checkpoint {} (type=CHECKPOINT) @ {} for job {}.",
                            barrier.checkpoint_id, timestamp_ms, job.job_id
                        ));
                        let job_id = job.job_id;
                        sources
                            .into_iter()
                            .filter_map(|(attempt_id, key)| {
                                let slot = job.executions[&key].slot?;
                                let tm = state.task_managers.get(&slot.resource_id)?;
                                Some((tm.address, TriggerCheckpoint { job_id, attempt_id, barrier }))
                            })
                            .collect::<Vec<_>>()
                    }
                    Err(error @ checkpoint_coordinator::TriggerError::NotAllTasksRunning) => {
                        self.trace().event(format!(
                            "Failed to trigger checkpoint for job {} since {error}",
                            job.job_id
                        ));
                        continue;
                    }
                    Err(checkpoint_coordinator::TriggerError::InProgress(_)) => continue,
                }
            };
            for (address, trigger) in triggers {
                let jm = self.clone();
                madsim::task::spawn(async move {
                    let id = trigger.barrier.checkpoint_id;
                    let accepted = jm.rpc.call(address, trigger, Duration::from_secs(1)).await;
                    if !matches!(accepted, Ok(true)) {
                        jm.abort_checkpoint(id, "a source could not be triggered");
                    }
                });
            }
        }
    }

    fn acknowledge_checkpoint(&self, ack: AcknowledgeCheckpoint) {
        let all = {
            let mut guard = self.state.lock().unwrap();
            let state = &mut *guard;
            let Some(job) = state.job.as_ref().filter(|j| j.job_id == ack.job_id) else { return };
            state.checkpoints.acknowledge(job, ack.attempt_id, ack.checkpoint_id, ack.state)
        };
        let Some(all) = all else { return };
        // Finalize: write _metadata, then complete, notify the tasks and drop the older one.
        let jm = self.clone();
        madsim::task::spawn(async move {
            let finalizing = Instant::now();
            let metadata = all.metadata;
            let directory = crate::protocol::checkpoint::checkpoint_dir(metadata.job_id, metadata.checkpoint_id);
            let bytes = bytes::Bytes::from(serde_json::to_vec(&metadata).expect("metadata serializes"));
            let size = bytes.len() as u64 + metadata.states.values().map(|h| h.size).sum::<u64>();
            let storage = StorageClient::new(jm.rpc.clone(), jm.config.storage);
            if let Err(error) = storage.put(&format!("{directory}/_metadata"), bytes).await {
                jm.abort_checkpoint(metadata.checkpoint_id, &format!("cannot write its metadata: {error}"));
                return;
            }
            let (notices, replaced) = {
                let mut guard = jm.state.lock().unwrap();
                let state = &mut *guard;
                let id = metadata.checkpoint_id;
                let job_id = metadata.job_id;
                let completed = CompletedCheckpoint { metadata, directory, size };
                let Some(job) = state.job.as_ref().filter(|j| j.job_id == job_id) else { return };
                let Some(replaced) = state.checkpoints.complete(completed, all.started) else { return };
                let stats = state.checkpoints.stats;
                jm.trace().event(format!(
                    "Completed checkpoint {id} for job {job_id} ({size} bytes, checkpointDuration={} ms, finalizationTime={} ms).",
                    stats.last_duration_ms,
                    Instant::now().duration_since(finalizing).as_millis()
                ));
                let mut per_tm: BTreeMap<SocketAddr, Vec<crate::protocol::ids::ExecutionAttemptId>> = BTreeMap::new();
                for execution in job.executions.values() {
                    if let Some(tm) = execution.slot.and_then(|s| state.task_managers.get(&s.resource_id)) {
                        per_tm.entry(tm.address).or_default().push(execution.attempt_id);
                    }
                }
                let notices: Vec<_> = per_tm
                    .into_iter()
                    .map(|(address, attempts)| (address, NotifyCheckpointComplete { job_id, attempts, checkpoint_id: id }))
                    .collect();
                (notices, replaced)
            };
            for (address, notice) in notices {
                let rpc = jm.rpc.clone();
                madsim::task::spawn(async move {
                    let _ = rpc.call(address, notice, Duration::from_secs(1)).await;
                });
            }
            if let Some(old) = replaced {
                let _ = storage.delete_prefix(&format!("{old}/")).await;
            }
        });
    }

    fn abort_checkpoint(&self, checkpoint_id: u64, reason: &str) {
        let mut state = self.state.lock().unwrap();
        let pending = state.checkpoints.abort_pending_if(checkpoint_id);
        if let (Some(id), Some(job)) = (pending, state.job.as_ref()) {
            self.trace().event(format!("Checkpoint {id} of job {} failed: {reason}", job.job_id));
        }
    }

    /// Sends heartbeats every interval; a TaskManager silent for the timeout is lost.
    async fn monitor_heartbeats(self) {
        let mut tick = Ticker::new(self.config.heartbeat_interval);
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
    job.scheduled_at = Some(Instant::now());
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
