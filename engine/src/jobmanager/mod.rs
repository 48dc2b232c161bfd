//! The JobManager node (docs/model/cluster.md#nodes, docs/model/cluster.md#state-machines,
//! docs/model/cluster.md#failure-detection-and-restarts, docs/model/checkpoints.md#overview):
//! Flink's roles, each an I/O-free module that says what to send, under one lock, and the node's
//! own I/O here: the RPC handlers, the heartbeat, checkpoint and deployment loops, and the restart
//! timers.
//!
//! - [`resource_manager`]: TaskManager registrations, heartbeats, slots ([`slot_pool`]).
//! - [`dispatcher`]: job submissions, and the REST API on port 8081 ([`web_monitor`] answers
//!   its reads; its stop, cancel and run take the CLI's paths).
//! - [`scheduler`]: the [`execution_graph`] through deployment, failover and the restart strategy.
//! - [`checkpoint_coordinator`]: trigger, acknowledge, finalize, notify, abort, restore.

pub mod checkpoint_coordinator;
pub mod dispatcher;
pub mod execution_graph;
pub mod resource_manager;
pub mod scheduler;
pub mod slot_pool;
pub mod web_monitor;

use crate::plant::{PlantedBug, Plants};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::rand::Rng;
use madsim::time::Instant;
use tokio::sync::Notify;

use crate::lifecycle::Shutdown;
use crate::protocol::checkpoint::{AcknowledgeCheckpoint, DeclineCheckpoint, NotifyCheckpointAborted};
use crate::protocol::cluster::{
    DisconnectJobManager, DisconnectTaskManager, Heartbeat, RegisterTaskManager, RegistrationResponse,
    SubmitJob, SubmitJobResponse,
};
use crate::protocol::deployment::{SubmitTask, UpdateTaskExecutionState};
use crate::protocol::ids::{JobId, JobMasterId, ResourceId, TriggerId};
use crate::protocol::job::Vertex;
use crate::protocol::job::JobSubmission;
use crate::protocol::rest::{CancelJob, GetSavepointStatus, JobOverview, ListJobs, StopJob};
use crate::protocol::rest_api::{
    HttpRequest, HttpResponse, JarRunRequest, JarRunResponse, JarUploadResponse, REST_PORT, Route, TriggerResponse,
};
use crate::protocol::states::{ExecutionState, JobStatus};
use crate::rpc::{Network, Rpc};
use crate::storage::StorageClient;
use crate::timer::Ticker;
use crate::trace::{CheckpointAbortReason, Event, NodeTrace};

use checkpoint_coordinator::CheckpointCoordinator;
use dispatcher::Dispatcher;
use execution_graph::IdSource;
use resource_manager::ResourceManager;
use scheduler::{Failover, Scheduler, SchedulerConfig};

/// How long a failover's cancel call is sent again while unanswered: three tries of 1 s
/// (Flink's `NUM_CANCEL_CALL_TRIES`).
const CANCEL_TRIES_FOR: Duration = Duration::from_secs(3);

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
    /// The bugs planted in this run (docs/planted-bugs.md); none by default.
    pub plants: Plants,
    /// The settings a job submitted through `POST /jars/<id>/run` takes besides its arguments
    /// (the sink mode and the sink's and source's settings a scenario chooses, as for `flink run`).
    pub job_defaults: Option<JobSubmission>,
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
            plants: Plants::NONE,
            job_defaults: None,
        }
    }
}

/// Every role's state, under the node's one lock: a step of one role often moves another
/// (a lost TaskManager fails the job and aborts its pending checkpoint).
struct JobManagerState {
    job_master: JobMasterId,
    resource_manager: ResourceManager,
    dispatcher: Dispatcher,
    scheduler: Scheduler,
    checkpoints: CheckpointCoordinator,
    /// When each job was submitted (ms of simulated time), for `flink list`.
    submitted_ms: std::collections::BTreeMap<JobId, i64>,
}

/// Shared by the JobManager's handlers and loops.
#[derive(Clone)]
struct JobManager {
    config: JobManagerConfig,
    rpc: Rpc,
    state: Arc<Mutex<JobManagerState>>,
    /// Wakes the scheduler: a job arrived, slots came or went, a task failed.
    reschedule: Arc<Notify>,
    /// What the REST API reports besides the roles' own state (locked after `state`, never
    /// before).
    web: Arc<Mutex<WebState>>,
}

/// The REST endpoint's own memory.
#[derive(Default)]
struct WebState {
    history: web_monitor::JobHistory,
    metrics: web_monitor::MetricStore,
    /// Uploaded jars: jar id → the file's path on the client.
    jars: std::collections::BTreeMap<String, String>,
    /// `/tmp/flink-web-<uuid>`: the upload directory of this JobManager process, drawn at its
    /// first upload (so that a run without uploads draws nothing more from the seed).
    upload_dir: Option<String>,
}

/// The node's main: re-run from scratch on every restart.
pub async fn run(config: JobManagerConfig) {
    let rpc = Rpc::bind(config.address, config.network.clone());
    let job_master = JobMasterId::random();
    config.trace.record(Event::JobManagerStarted {
        address: config.address,
        session: job_master.to_string(),
    });
    let scheduler = SchedulerConfig {
        jobmanager: config.address,
        job_master,
        storage: config.storage,
        slot_request_timeout: config.slot_request_timeout,
    };
    let jm = JobManager {
        state: Arc::new(Mutex::new(JobManagerState {
            job_master,
            resource_manager: ResourceManager::new(Instant::now(), config.startup_period),
            dispatcher: Dispatcher::new(IdSource::Seeded),
            scheduler: Scheduler::new(scheduler, IdSource::Seeded),
            checkpoints: CheckpointCoordinator::default(),
            submitted_ms: Default::default(),
        })),
        config,
        rpc: rpc.clone(),
        reschedule: Arc::new(Notify::new()),
        web: Arc::default(),
    };
    // The REST endpoint: its own port on the node, over the same simulated network, read by the
    // node's one mailbox reader (a task of its own would shift every seed's schedule).
    rpc.answer_also_at(SocketAddr::new(jm.config.address.ip(), REST_PORT));
    rpc.serve({
        let jm = jm.clone();
        move |request: HttpRequest, _| {
            let jm = jm.clone();
            async move { jm.answer_rest(request).await }
        }
    });
    rpc.serve({
        let jm = jm.clone();
        move |request: RegisterTaskManager, _| std::future::ready(jm.register(request))
    });
    rpc.serve({
        let jm = jm.clone();
        move |request: SubmitJob, _| {
            let jm = jm.clone();
            async move { jm.submit(request).await }
        }
    });
    rpc.serve({
        let jm = jm.clone();
        move |request: StopJob, _| std::future::ready(jm.stop(request))
    });
    rpc.serve({
        let jm = jm.clone();
        move |request: GetSavepointStatus, _| {
            let state = jm.state.lock().unwrap();
            let known = state.scheduler.job().is_some_and(|job| job.job_id == request.job_id);
            std::future::ready(state.checkpoints.savepoint_status(request.trigger_id).filter(|_| known))
        }
    });
    rpc.serve({
        let jm = jm.clone();
        move |_: ListJobs, _| std::future::ready(jm.list())
    });
    rpc.serve({
        let jm = jm.clone();
        move |request: CancelJob, _| std::future::ready(jm.cancel(request))
    });
    rpc.serve({
        let jm = jm.clone();
        move |update: UpdateTaskExecutionState, _| {
            jm.update_task(update);
            std::future::ready(())
        }
    });
    rpc.serve({
        let jm = jm.clone();
        move |ack: AcknowledgeCheckpoint, _| {
            jm.acknowledge_checkpoint(ack);
            std::future::ready(())
        }
    });
    rpc.serve({
        let jm = jm.clone();
        move |decline: DeclineCheckpoint, _| {
            let reason = CheckpointAbortReason::Declined(decline.reason);
            jm.abort_checkpoint(decline.checkpoint_id, reason);
            std::future::ready(())
        }
    });
    rpc.serve({
        let jm = jm.clone();
        move |disconnect: DisconnectTaskManager, _| {
            jm.disconnect_task_manager(disconnect);
            std::future::ready(())
        }
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

    /// Writes a step's events to the trace, in order, and keeps what the REST API reports of
    /// them.
    fn record(&self, events: Vec<Event>) {
        let now_ms = self.trace().elapsed().as_millis() as i64;
        let mut web = self.web.lock().unwrap();
        for event in events {
            web.history.observe(&event, now_ms);
            self.trace().record(event);
        }
    }

    /// Answers a REST request (docs/model/rest.md): reads from the roles as they are now; stop,
    /// cancel and run take the same paths as the CLI's requests.
    async fn answer_rest(&self, request: HttpRequest) -> HttpResponse {
        let route = match Route::of(&request) {
            Ok(route) => route,
            Err(error) => return error.response(),
        };
        match route {
            Route::Stop { job, drain } => {
                if self.web.lock().unwrap().history.get(job).is_none() {
                    return HttpResponse::error(404, format!("Job {job} not found"));
                }
                match self.stop(StopJob { job_id: job, drain }) {
                    Ok(trigger) => HttpResponse::with_status(202, &TriggerResponse { request_id: trigger.to_string() }),
                    Err(cause) => HttpResponse::error(409, cause),
                }
            }
            Route::Cancel(job) => {
                if self.web.lock().unwrap().history.get(job).is_none() {
                    return HttpResponse::error(404, format!("Job {job} not found"));
                }
                match self.cancel(CancelJob { job_id: job }) {
                    Ok(()) => HttpResponse::with_status(202, &serde_json::json!({})),
                    Err(cause) => HttpResponse::error(409, cause),
                }
            }
            Route::JarUpload { file } => {
                let mut web = self.web.lock().unwrap();
                let name = file.rsplit('/').next().unwrap_or(&file).to_owned();
                let jar_id = format!("{}_{name}", uuid(madsim::rand::random()));
                let upload_dir =
                    web.upload_dir.get_or_insert_with(|| format!("/tmp/flink-web-{}", uuid(madsim::rand::random())));
                let filename = format!("{upload_dir}/flink-web-upload/{jar_id}");
                web.jars.insert(jar_id, file);
                HttpResponse::ok(&JarUploadResponse { filename, status: "success".into() })
            }
            Route::JarRun { jar_id, body } => self.run_jar(&jar_id, body).await,
            read => {
                let guard = self.state.lock().unwrap();
                let web = self.web.lock().unwrap();
                let view = web_monitor::View {
                    job: guard.scheduler.job(),
                    checkpoints: &guard.checkpoints,
                    resource_manager: &guard.resource_manager,
                    history: &web.history,
                    metrics: &web.metrics,
                    now_ms: self.trace().elapsed().as_millis() as i64,
                };
                match read {
                    Route::Overview => view.overview(),
                    Route::Jobs => view.jobs(),
                    Route::Job(job) => view.job(job),
                    Route::JobMetrics { job, get } => view.job_metrics(job, &get),
                    Route::VertexMetrics { job, vertex, get } => view.vertex_metrics(job, vertex, &get),
                    Route::Backpressure { job, vertex } => view.backpressure(job, vertex),
                    Route::Checkpoints(job) => view.checkpoints(job),
                    Route::SavepointStatus { job, trigger } => {
                        let known = guard.scheduler.job().is_some_and(|j| j.job_id == job);
                        let status = guard.checkpoints.savepoint_status(trigger).filter(|_| known);
                        view.savepoint_status(job, status)
                    }
                    Route::Stop { .. } | Route::Cancel(_) | Route::JarUpload { .. } | Route::JarRun { .. } => {
                        unreachable!("answered above")
                    }
                }
            }
        }
    }

    /// `POST /jars/<jar-id>/run`: the request read as the `flink run` line it stands for, then
    /// submitted as the CLI's submission is.
    async fn run_jar(&self, jar_id: &str, body: JarRunRequest) -> HttpResponse {
        let Some(jar) = self.web.lock().unwrap().jars.get(jar_id).cloned() else {
            return HttpResponse::error(404, format!("Jar file {jar_id} does not exist"));
        };
        let mut submission = match JobSubmission::parse_run_command(&body.run_line(&jar)) {
            Ok(submission) => submission,
            Err(error) => return HttpResponse::error(400, format!("Bad request received. {error}")),
        };
        if let Some(defaults) = &self.config.job_defaults {
            submission.sink_mode = defaults.sink_mode;
            submission.transaction_timeout = defaults.transaction_timeout;
            submission.idleness = defaults.idleness;
            submission.out_of_orderness = defaults.out_of_orderness;
        }
        match self.submit(SubmitJob { submission }).await {
            SubmitJobResponse::Submitted(job_id) => HttpResponse::ok(&JarRunResponse { jobid: job_id.to_string() }),
            SubmitJobResponse::Rejected(reason) => {
                HttpResponse::error(500, format!("Could not execute application. {reason}"))
            }
        }
    }

    fn register(&self, request: RegisterTaskManager) -> RegistrationResponse {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let mut events =
            vec![Event::TaskManagerRegistered { resource_id: request.resource_id, name: request.name.clone() }];
        // As Flink's ResourceManager does when it replaces an old registration: what ran there
        // is gone.
        for id in state.resource_manager.replaced_by(&request) {
            let how = if id == request.resource_id {
                "registered again: its tasks are gone"
            } else {
                "is no longer reachable"
            };
            self.lose_task_manager(state, id, Loss::Other(how), &mut events);
        }
        state.resource_manager.admit(request, Instant::now());
        self.record(events);
        self.reschedule.notify_one();
        RegistrationResponse::Accepted { job_master: state.job_master }
    }

    /// `flink run`: with `-s`, reads the savepoint's `_metadata` first (trying an unreachable
    /// storage node again for a while, as a task restoring its snapshot does); a savepoint that
    /// cannot be restored fails the submission, naming its path.
    async fn submit(&self, SubmitJob { submission }: SubmitJob) -> SubmitJobResponse {
        let savepoint = match &submission.savepoint_path {
            None => None,
            Some(path) => {
                let metadata_path = format!("{}/_metadata", dispatcher::savepoint_directory(path));
                let storage = StorageClient::new(self.rpc.clone(), self.config.storage);
                let file = storage.get_for_restore(&metadata_path).await.map_err(|e| e.to_string());
                match dispatcher::restore_plan(&submission, path, file) {
                    Ok(savepoint) => Some(savepoint),
                    Err(refused) => {
                        let reason = refused.to_string();
                        self.trace().record(Event::SubmissionRejected { refused });
                        return SubmitJobResponse::Rejected(reason);
                    }
                }
            }
        };
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        // The job the new one replaces in the scheduler stays in the REST API as it ended.
        if let Some(previous) = state.scheduler.job().filter(|job| job.status.is_globally_terminal()) {
            let mut web = self.web.lock().unwrap();
            let web = &mut *web;
            let view = web_monitor::View {
                job: Some(previous),
                checkpoints: &state.checkpoints,
                resource_manager: &state.resource_manager,
                history: &web.history,
                metrics: &web.metrics,
                now_ms: self.trace().elapsed().as_millis() as i64,
            };
            if let Some(details) = view.details(previous.job_id) {
                web.history.archive(previous.job_id, details);
            }
        }
        let mut events = Vec::new();
        let response = state.dispatcher.submit(
            submission,
            savepoint,
            &mut state.scheduler,
            &mut state.checkpoints,
            Instant::now(),
            &mut events,
        );
        self.record(events);
        if let SubmitJobResponse::Submitted(job_id) = response {
            state.submitted_ms.insert(job_id, self.trace().elapsed().as_millis() as i64);
            self.reschedule.notify_one();
        }
        response
    }

    /// `flink stop`: asks the checkpoint coordinator for a savepoint and triggers it at once
    /// if it can (else the next tick does); answers with the trigger id the CLI polls.
    fn stop(&self, StopJob { job_id, drain }: StopJob) -> Result<TriggerId, String> {
        {
            let mut guard = self.state.lock().unwrap();
            let state = &mut *guard;
            match state.scheduler.job() {
                Some(job) if job.job_id == job_id && job.status == JobStatus::Running => {}
                Some(job) if job.job_id == job_id => {
                    return Err(format!("Job {job_id} is not running: it is {}.", job.status.name()));
                }
                _ => return Err(format!("Job {job_id} not found")),
            }
            let mut rng = madsim::rand::thread_rng();
            let trigger_id = TriggerId(rng.r#gen());
            let token = rng.gen_range(0..1u64 << 48);
            state.checkpoints.request_savepoint(trigger_id, token, drain)?;
            drop(guard);
            self.trigger_checkpoint();
            Ok(trigger_id)
        }
    }

    /// `flink list`: the jobs not yet in a globally terminal state.
    fn list(&self) -> Vec<JobOverview> {
        let state = self.state.lock().unwrap();
        let Some(job) = state.scheduler.job().filter(|job| !job.status.is_globally_terminal()) else {
            return Vec::new();
        };
        let start_time_ms = state.submitted_ms.get(&job.job_id).copied().unwrap_or(0);
        vec![JobOverview { job_id: job.job_id, status: job.status, start_time_ms }]
    }

    /// `flink cancel`: cancels the job's tasks; the job ends CANCELED.
    fn cancel(&self, CancelJob { job_id }: CancelJob) -> Result<(), String> {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let mut events = Vec::new();
        let cancels =
            state.scheduler.cancel(job_id, &mut state.resource_manager, &mut state.checkpoints, &mut events);
        self.record(events);
        self.fail_over(Failover { cancels: cancels?, restart: None });
        Ok(())
    }

    fn update_task(&self, update: UpdateTaskExecutionState) {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let mut events = Vec::new();
        let failover =
            state.scheduler.update_task(update, &mut state.resource_manager, &mut state.checkpoints, &mut events);
        self.record(events);
        self.fail_over(failover);
    }

    /// A TaskManager that is shutting down said goodbye: lose it now, not after the heartbeat
    /// timeout.
    fn disconnect_task_manager(&self, disconnect: DisconnectTaskManager) {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let Some(name) = state.resource_manager.get(disconnect.resource_id).map(|tm| tm.name.clone()) else {
            return;
        };
        let mut events = vec![Event::TaskManagerDisconnected { name }];
        let how = format!("disconnected because: {}", disconnect.cause.trim_end_matches('.'));
        self.lose_task_manager(state, disconnect.resource_id, Loss::Other(&how), &mut events);
        self.record(events);
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
            let mut events = Vec::new();
            let cancels = state.scheduler.suspend(&state.resource_manager, &mut events);
            self.record(events);
            let task_managers: Vec<(ResourceId, SocketAddr)> = state.resource_manager.task_managers();
            (cancels, state.job_master, task_managers)
        };
        // Cancellations first, so the tasks release what they hold before their TaskManager
        // drops them on the disconnect.
        for (address, cancel) in cancels {
            let _ = self.rpc.call(address, cancel, Duration::from_secs(1)).await;
        }
        for (resource_id, address) in task_managers {
            let disconnect = DisconnectJobManager { job_master, resource_id, registration: None };
            let _ = self.rpc.call(address, disconnect, Duration::from_secs(1)).await;
        }
        self.trace().record(Event::ShutdownCompleted);
        self.config.shutdown.complete();
    }

    /// A TaskManager is gone: the resource manager forgets it and its slots, and the scheduler
    /// fails every task in them.
    fn lose_task_manager(&self, state: &mut JobManagerState, id: ResourceId, loss: Loss<'_>, events: &mut Vec<Event>) {
        let Some(tm) = state.resource_manager.lose(id) else { return };
        let (heartbeat_timed_out, how) = match loss {
            Loss::HeartbeatTimedOut => (true, "timed out"),
            Loss::Other(how) => (false, how),
        };
        events.push(Event::TaskManagerLost {
            resource_id: id,
            name: tm.name.clone(),
            heartbeat_timed_out,
            how: how.to_owned(),
        });
        let failover = state.scheduler.task_manager_lost(
            id,
            &tm.name,
            &mut state.resource_manager,
            &mut state.checkpoints,
            events,
        );
        if heartbeat_timed_out {
            // Flink's JobMaster tells a TaskManager it stopped hearing from that it is
            // disconnected, and the TaskManager drops the job's tasks: one that is alive behind
            // a slow or lossy link would otherwise run them on as zombies until its own
            // heartbeat timeout, writing beside their restarted copies. Sent until answered (as
            // over Flink's RPC), for as long as a heartbeat timeout.
            let (rpc, job_master, give_up) = (self.rpc.clone(), state.job_master, self.config.heartbeat_timeout);
            madsim::task::spawn(async move {
                let disconnect = DisconnectJobManager { job_master, resource_id: id, registration: Some(tm.session) };
                let _ = rpc.call_until_answered(tm.address, disconnect, Duration::from_secs(1), give_up).await;
            });
        }
        self.fail_over(failover);
    }

    /// Sends a failover's cancellations and schedules its restart.
    fn fail_over(&self, Failover { cancels, restart }: Failover) {
        for (address, cancel) in cancels {
            let rpc = self.rpc.clone();
            madsim::task::spawn(async move {
                // Three tries, as Flink's Execution sends its cancel call: a task that misses
                // it runs on beside its restarted copy.
                let _ = rpc.call_until_answered(address, cancel, Duration::from_secs(1), CANCEL_TRIES_FOR).await;
            });
        }
        if let Some(restart) = restart {
            let jm = self.clone();
            madsim::task::spawn(async move {
                madsim::time::sleep(restart.delay).await;
                jm.restart(restart.version);
            });
        }
    }

    fn restart(&self, version: u64) {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let mut events = Vec::new();
        let restarted = state.scheduler.restart(version, &state.checkpoints, Instant::now(), &mut events);
        self.record(events);
        if restarted {
            self.reschedule.notify_one();
        }
    }

    /// Deploys the job whenever it waits for slots and enough are free.
    async fn schedule_forever(self) {
        loop {
            self.reschedule.notified().await;
            let deployments = {
                let mut guard = self.state.lock().unwrap();
                let state = &mut *guard;
                let mut events = Vec::new();
                let deployments = state.scheduler.deploy(
                    &mut state.resource_manager,
                    &mut state.checkpoints,
                    Instant::now(),
                    &mut events,
                );
                self.record(events);
                deployments.unwrap_or_else(|failover| {
                    self.fail_over(failover);
                    Vec::new()
                })
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

    /// Triggers a checkpoint every interval while the job runs with `--checkpointing`; the
    /// first one at a seeded random point of the first interval.
    async fn trigger_checkpoints(self) {
        let interval = self.config.checkpoint_interval;
        let first = Duration::from_micros(madsim::rand::thread_rng().gen_range(0..=interval.as_micros() as u64));
        madsim::time::sleep(first).await;
        let mut tick = Ticker::new(interval);
        loop {
            tick.tick().await;
            self.trigger_checkpoint();
        }
    }

    /// Triggers the next checkpoint (or the savepoint asked for) if the coordinator can, and
    /// sends its triggers to the sources.
    fn trigger_checkpoint(&self) {
        let triggers = {
            let mut guard = self.state.lock().unwrap();
            let state = &mut *guard;
            let Some(job) = state.scheduler.job() else { return };
            let timestamp_ms = self.trace().elapsed().as_millis() as i64;
            let mut events = Vec::new();
            let triggers =
                state.checkpoints.trigger(job, &state.resource_manager, timestamp_ms, Instant::now(), &mut events);
            self.record(events);
            triggers
        };
        self.resume_sources();
        let Ok(triggers) = triggers else { return };
        for (address, trigger) in triggers {
            let jm = self.clone();
            madsim::task::spawn(async move {
                let id = trigger.barrier.checkpoint_id;
                let accepted = jm.rpc.call(address, trigger, Duration::from_secs(1)).await;
                if !matches!(accepted, Ok(true)) {
                    jm.abort_checkpoint(id, CheckpointAbortReason::SourceNotTriggered);
                }
            });
        }
    }

    /// A task acknowledged: when it was the last, finalize the checkpoint (write `_metadata`),
    /// complete it, notify the tasks and delete the checkpoint it replaces.
    fn acknowledge_checkpoint(&self, ack: AcknowledgeCheckpoint) {
        let acknowledged = self.state.lock().unwrap().checkpoints.acknowledge_planted(ack, self.config.plants);
        let Some(finalization) = acknowledged else { return };
        let finalization_job = finalization.metadata.job_id;
        let jm = self.clone();
        madsim::task::spawn(async move {
            let finalizing = Instant::now();
            let storage = StorageClient::new(jm.rpc.clone(), jm.config.storage);
            if let Err(error) = storage.put(&finalization.metadata_path(), finalization.bytes.clone()).await {
                let reason = CheckpointAbortReason::MetadataNotWritten(error.to_string());
                jm.abort_checkpoint(finalization.metadata.checkpoint_id, reason);
                return;
            }
            let completion = {
                let mut guard = jm.state.lock().unwrap();
                let state = &mut *guard;
                let Some(job) = state.scheduler.job() else { return };
                let mut events = Vec::new();
                let completion = state.checkpoints.complete(
                    finalization,
                    job,
                    &state.resource_manager,
                    finalizing,
                    Instant::now(),
                    &mut events,
                );
                jm.record(events);
                completion
            };
            let Some(completion) = completion else { return };
            if completion.stop {
                // Stop-with-savepoint: the tasks hear of the completion (a sink commits) before
                // they are told to finish, in that order on each TaskManager.
                for (address, notice) in completion.notices {
                    let _ = jm.rpc.call(address, notice, Duration::from_secs(1)).await;
                }
                jm.finish_stopped(finalization_job);
                return;
            }
            for (address, notice) in completion.notices {
                let rpc = jm.rpc.clone();
                madsim::task::spawn(async move {
                    let _ = rpc.call(address, notice, Duration::from_secs(1)).await;
                });
            }
            if let Some(old) = completion.replaced {
                let _ = storage.delete_prefix(&format!("{old}/")).await;
            }
        });
    }

    fn abort_checkpoint(&self, checkpoint_id: u64, reason: CheckpointAbortReason) {
        let mut events = Vec::new();
        self.state.lock().unwrap().checkpoints.abort(checkpoint_id, reason, &mut events);
        self.record(events);
        self.resume_sources();
    }

    /// A savepoint was aborted while the job runs: its sources, holding still after their
    /// barrier, read on.
    fn resume_sources(&self) {
        let notices = {
            let mut guard = self.state.lock().unwrap();
            let state = &mut *guard;
            let Some(checkpoint_id) = state.checkpoints.take_aborted_savepoint() else { return };
            let Some(job) = state.scheduler.job() else { return };
            let mut per_task_manager: std::collections::BTreeMap<SocketAddr, Vec<_>> = Default::default();
            for ((vertex, _), execution) in &job.executions {
                if *vertex != Vertex::Source {
                    continue;
                }
                if let Some(address) = execution.slot.and_then(|s| state.resource_manager.address(s.resource_id)) {
                    per_task_manager.entry(address).or_default().push(execution.attempt_id);
                }
            }
            let job_id = job.job_id;
            per_task_manager
                .into_iter()
                .map(|(address, attempts)| (address, NotifyCheckpointAborted { job_id, attempts, checkpoint_id }))
                .collect::<Vec<_>>()
        };
        // Sent until answered, as over Flink's reliable RPC: a source holding after the barrier
        // reads on only when told (or triggered anew), so a notice lost to a brief partition
        // must not be the last word. Given up once the TaskManager would be declared lost.
        let give_up = self.config.heartbeat_timeout;
        for (address, notice) in notices {
            let rpc = self.rpc.clone();
            madsim::task::spawn(async move {
                let _ = rpc.call_until_answered(address, notice, Duration::from_secs(1), give_up).await;
            });
        }
    }

    /// The savepoint of `flink stop` completed: every task finishes, and so does the job.
    fn finish_stopped(&self, job_id: JobId) {
        let finishes = {
            let mut guard = self.state.lock().unwrap();
            let state = &mut *guard;
            let mut events = Vec::new();
            let finishes =
                state.scheduler.finish_stopped(job_id, &mut state.resource_manager, &mut state.checkpoints, &mut events);
            self.record(events);
            finishes
        };
        for (address, finish) in finishes {
            let rpc = self.rpc.clone();
            madsim::task::spawn(async move {
                let _ = rpc.call(address, finish, Duration::from_secs(1)).await;
            });
        }
    }

    /// Sends heartbeats every interval; a TaskManager silent for the timeout is lost.
    async fn monitor_heartbeats(self) {
        let mut tick = Ticker::new(self.config.heartbeat_interval);
        // The planted mistake never looks for silent TaskManagers (docs/planted-bugs.md).
        let timeout_ignored = self.config.plants.has(PlantedBug::HeartbeatTimeoutIgnored);
        loop {
            tick.tick().await;
            let (job_master, targets) = {
                let state = self.state.lock().unwrap();
                (state.job_master, state.resource_manager.task_managers())
            };
            for (id, address) in targets {
                let jm = self.clone();
                madsim::task::spawn(async move {
                    let answer =
                        jm.rpc.call(address, Heartbeat { job_master }, jm.config.heartbeat_interval).await;
                    if let Ok(response) = answer
                        && response.resource_id == id
                    {
                        let mut state = jm.state.lock().unwrap();
                        state.resource_manager.heartbeat_answered(id, Instant::now());
                        let now_ms = jm.trace().elapsed().as_millis() as i64;
                        let mut web = jm.web.lock().unwrap();
                        web.metrics.update(response.metrics, now_ms);
                        // Only the current graph's tasks are reported on.
                        let job = state.scheduler.job();
                        web.metrics.retain(|attempt| job.is_some_and(|job| job.find(attempt).is_some()));
                    }
                });
            }
            let mut guard = self.state.lock().unwrap();
            let state = &mut *guard;
            let mut events = Vec::new();
            if !timeout_ignored {
                for id in state.resource_manager.timed_out(Instant::now(), self.config.heartbeat_timeout) {
                    self.lose_task_manager(state, id, Loss::HeartbeatTimedOut, &mut events);
                }
            }
            self.record(events);
            if state.scheduler.job().is_some() {
                self.reschedule.notify_one();
            }
        }
    }
}

/// A random UUID in its usual text form (Flink names uploads with them).
fn uuid(bits: u128) -> String {
    let hex = format!("{bits:032x}");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// How the JobManager lost a TaskManager.
#[derive(Clone, Copy, Debug)]
enum Loss<'a> {
    /// Its heartbeats timed out.
    HeartbeatTimedOut,
    /// Otherwise, as Flink words it (`disconnected because: …`, `registered again: …`).
    Other(&'a str),
}
