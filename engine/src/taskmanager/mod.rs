//! The TaskManager node (docs/model/cluster.md#nodes, docs/model/network.md#network-buffers,
//! docs/model/cluster.md#failure-detection-and-restarts): offers its slots to the JobManager,
//! answers its heartbeats, runs deployed tasks, and moves their buffers. If it hears no heartbeat
//! for the heartbeat timeout it drops its tasks, frees its slots and registers again.

pub mod control;
pub mod credit;
pub mod flow_control;
pub mod gate_queue;
pub mod metrics;
pub mod network;
pub mod operator;
pub mod task;
pub mod task_context;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::task::JoinHandle;
use madsim::time::Instant;

use crate::lifecycle::Shutdown;
use crate::protocol::cluster::{
    DisconnectJobManager, DisconnectTaskManager, Heartbeat, HeartbeatResponse,
    RegisterTaskManager, RegistrationResponse,
};
use crate::protocol::checkpoint::{NotifyCheckpointAborted, NotifyCheckpointComplete, TriggerCheckpoint};
use crate::protocol::data::DeliverBuffer;
use crate::protocol::deployment::{CancelTask, FinishTask, SubmitTask};
use crate::protocol::ids::{ExecutionAttemptId, JobMasterId, ResourceId};
use crate::protocol::states::ExecutionState;
use crate::rpc::{Network, Rpc};
use crate::trace::{Event, NodeTrace};

use network::GateRegistry;
use control::TaskControl;
use task_context::TaskServices;
use crate::plant::Plants;

/// The playground's `taskmanager.numberOfTaskSlots`.
pub const DEFAULT_SLOTS: u32 = 2;
/// The first registration attempt's timeout (Flink's `cluster.registration.initial-timeout`).
pub const REGISTRATION_INITIAL_TIMEOUT: Duration = Duration::from_millis(100);
/// The longest a registration attempt waits (Flink's `cluster.registration.max-timeout`).
pub const REGISTRATION_MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// How a TaskManager node is set up.
#[derive(Clone, Debug)]
pub struct TaskManagerConfig {
    /// Its node name (`taskmanager-1`).
    pub name: String,
    /// Its address.
    pub address: SocketAddr,
    /// The JobManager's address.
    pub jobmanager: SocketAddr,
    /// The Kafka broker's address (the job's `--bootstrap.servers`).
    pub broker: SocketAddr,
    /// Number of task slots.
    pub slots: u32,
    /// `heartbeat.timeout`: without a heartbeat for this long the JobManager counts as lost.
    pub heartbeat_timeout: Duration,
    /// The simulated network the node is bound on (the simulator injects its faults there).
    pub network: Network,
    /// The node's trace.
    pub trace: NodeTrace,
    /// SIGTERM (`docker-compose stop`): cancel the tasks, disconnect, exit.
    pub shutdown: Shutdown,
    /// The bugs planted in this run (docs/planted-bugs.md); none by default.
    pub plants: Plants,
}

/// How long a cancelled task may take to stop by itself before it is killed (shorter than
/// Flink's 30 s `task.cancellation.interval`, so a TaskManager stops within Docker's 10 s).
pub const CANCELLATION_TIMEOUT: Duration = Duration::from_secs(3);

struct RunningTask {
    display_name: String,
    handle: JoinHandle<()>,
    gate: network::GateKey,
    control: control::ControlSender,
    metrics: Arc<metrics::TaskMetrics>,
}

struct TaskManagerState {
    job_master: Option<JobMasterId>,
    /// The registration session under way (see [`RegisterTaskManager::session`]).
    session: u64,
    last_heartbeat: Instant,
    tasks: BTreeMap<ExecutionAttemptId, RunningTask>,
}

/// The node's main: re-run from scratch on every restart (a new [`ResourceId`], empty memory).
pub async fn run(config: TaskManagerConfig) {
    let rpc = Rpc::bind(config.address, config.network.clone());
    let resource_id = ResourceId::random();
    config.trace.event(format!(
        "TaskManager {} started with ResourceID {resource_id} and {} slots",
        config.name, config.slots
    ));
    let state = Arc::new(Mutex::new(TaskManagerState {
        job_master: None,
        session: 0,
        last_heartbeat: Instant::now(),
        tasks: BTreeMap::new(),
    }));
    let gates = GateRegistry::default();
    let services = TaskServices {
        rpc: rpc.clone(),
        local_address: config.address,
        gates: gates.clone(),
        broker: config.broker,
        trace: config.trace.clone(),
        plants: config.plants,
    };

    rpc.serve({
        let state = state.clone();
        move |heartbeat: Heartbeat, _| {
            let mut state = state.lock().unwrap();
            if state.job_master == Some(heartbeat.job_master) {
                state.last_heartbeat = Instant::now();
            }
            let running = state.tasks.keys().copied().collect();
            // The tasks' metrics ride on the answer: the JobManager's view is one heartbeat old.
            let metrics = state.tasks.iter().map(|(attempt, task)| task.metrics.report(*attempt)).collect();
            std::future::ready(HeartbeatResponse { resource_id, running, metrics })
        }
    });
    rpc.serve({
        let (state, services, shutdown) = (state.clone(), services.clone(), config.shutdown.clone());
        move |SubmitTask { tdd }, _| {
            let services = services.clone();
            let mut state = state.lock().unwrap();
            // The JobManager may deploy before its registration answer got here: a deployment
            // from the session this TaskManager registered with is as good as the answer.
            if state.job_master.is_none() {
                state.job_master = Some(tdd.job_master);
                state.last_heartbeat = Instant::now();
            }
            let response = if shutdown.is_requested() {
                Err("The TaskExecutor is shutting down.".to_owned())
            } else if state.job_master != Some(tdd.job_master) {
                Err(format!("TaskManager is registered with another JobManager than {}", tdd.job_master))
            } else {
                // The gate opens before the task runs, so early buffers find it.
                let metrics = Arc::new(metrics::TaskMetrics::new());
                let input = task::open_input(&tdd, &services.gates, services.plants, &metrics);
                let (control, control_receiver) = control::channel();
                let run = task::run(tdd.clone(), services, input, control_receiver, metrics.clone());
                let running = RunningTask {
                    display_name: tdd.display_name(),
                    gate: task::gate_key(&tdd),
                    handle: madsim::task::spawn(run),
                    control,
                    metrics,
                };
                state.tasks.insert(tdd.attempt_id, running);
                Ok(())
            };
            std::future::ready(response)
        }
    });
    // Both end a task the same way; only what it reports differs.
    let end = |ending: Ending| {
        let (state, services) = (state.clone(), services.clone());
        move |attempt_id: ExecutionAttemptId| {
            let ended = state.lock().unwrap().tasks.remove(&attempt_id);
            if let Some(task) = ended {
                madsim::task::spawn(cancel(attempt_id, task, services.clone(), ending));
            }
            std::future::ready(())
        }
    };
    let end_canceled = end(Ending::Canceled);
    rpc.serve(move |CancelTask { attempt_id }, _| end_canceled(attempt_id));
    let end_finished = end(Ending::Finished);
    rpc.serve(move |FinishTask { attempt_id }, _| end_finished(attempt_id));
    rpc.serve({
        let state = state.clone();
        move |notice: NotifyCheckpointAborted, _| {
            let state = state.lock().unwrap();
            for attempt in &notice.attempts {
                if let Some(task) = state.tasks.get(attempt) {
                    let _ = task.control.send(TaskControl::CheckpointAborted(notice.checkpoint_id));
                }
            }
            std::future::ready(())
        }
    });
    rpc.serve({
        let state = state.clone();
        move |trigger: TriggerCheckpoint, _| {
            let state = state.lock().unwrap();
            let accepted = state.tasks.get(&trigger.attempt_id).is_some_and(|task| {
                task.control.send(TaskControl::TriggerCheckpoint(trigger.barrier)).is_ok()
            });
            std::future::ready(accepted)
        }
    });
    rpc.serve({
        let (state, trace) = (state.clone(), config.trace.clone());
        move |notice: NotifyCheckpointComplete, _| {
            let state = state.lock().unwrap();
            let mut notified = 0;
            for attempt in &notice.attempts {
                if let Some(task) = state.tasks.get(attempt)
                    && task.control.send(TaskControl::CheckpointComplete(notice.checkpoint_id)).is_ok()
                {
                    notified += 1;
                }
            }
            trace.event(format!(
                "Checkpoint {} of job {} completed: notified {notified} tasks.",
                notice.checkpoint_id, notice.job_id
            ));
            std::future::ready(())
        }
    });
    rpc.serve({
        let gates = gates.clone();
        move |delivery: DeliverBuffer, _| {
            let gates = gates.clone();
            async move { gates.answer(delivery).await }
        }
    });

    // A JobManager shutting down says so: its tasks are dropped at once (below), without
    // waiting for the heartbeat timeout.
    let jobmanager_gone = Arc::new(tokio::sync::Notify::new());
    rpc.serve({
        let (state, gone, trace) = (state.clone(), jobmanager_gone.clone(), config.trace.clone());
        move |disconnect: DisconnectJobManager, from: SocketAddr| {
            let state = state.lock().unwrap();
            let ends_this = disconnect.resource_id == resource_id
                && disconnect.registration.is_none_or(|registration| registration == state.session);
            if state.job_master == Some(disconnect.job_master) && ends_this {
                let shutting_down = disconnect.registration.is_none();
                trace.record(Event::JobManagerDisconnected { address: from, shutting_down });
                gone.notify_one();
            }
            std::future::ready(())
        }
    });
    madsim::task::spawn(shut_down_on_sigterm(config.clone(), rpc.clone(), resource_id, state.clone(), services.clone()));

    // Register, then watch the JobManager's heartbeats; register again when they stop. An
    // unanswered attempt is retried at once with twice the timeout, as Flink's retrying
    // registration does (`cluster.registration.initial-timeout` 100 ms, `max-timeout` 30 s): a
    // TaskManager up before its JobManager registers within a few hundred ms.
    let mut registration_timeout = REGISTRATION_INITIAL_TIMEOUT;
    let mut session = 0;
    loop {
        if config.shutdown.is_requested() {
            // Shutting down: no new registration (the node ends when the shutdown completes).
            return std::future::pending().await;
        }
        let registration = RegisterTaskManager {
            resource_id,
            name: config.name.clone(),
            address: config.address,
            slots: config.slots,
            session,
        };
        match rpc.call(config.jobmanager, registration, registration_timeout).await {
            Ok(RegistrationResponse::Accepted { job_master }) => {
                registration_timeout = REGISTRATION_INITIAL_TIMEOUT;
                {
                    let mut state = state.lock().unwrap();
                    state.job_master = Some(job_master);
                    state.last_heartbeat = Instant::now();
                }
                config.trace.event(format!(
                    "Successful registration at resource manager {} under registration id {job_master}.",
                    config.jobmanager
                ));
            }
            Err(_) => {
                registration_timeout = (registration_timeout * 2).min(REGISTRATION_MAX_TIMEOUT);
                continue;
            }
        }
        let disconnected = loop {
            tokio::select! {
                biased;
                _ = jobmanager_gone.notified() => break true,
                _ = madsim::time::sleep(Duration::from_secs(1)) => {}
            }
            let silent_for = Instant::now().duration_since(state.lock().unwrap().last_heartbeat);
            if silent_for >= config.heartbeat_timeout {
                break false;
            }
        };
        if !disconnected {
            config.trace.event(format!(
                "The heartbeat of JobManager with id {} timed out.",
                state.lock().unwrap().job_master.map(|id| id.to_string()).unwrap_or_default()
            ));
        }
        // The next registration tells the JobManager these tasks are gone. The session moves on
        // at once, not when that registration is answered: a deployment may set the JobManager
        // again before the answer comes, and a disconnect meant for the old session must then
        // still end nothing.
        session += 1;
        let dropped = {
            let mut state = state.lock().unwrap();
            state.job_master = None;
            state.session = session;
            std::mem::take(&mut state.tasks)
        };
        for (_, task) in dropped {
            task.handle.abort();
        }
        gates.close_all();
    }
}

/// Cancels a task as Flink does: asks it to stop (its operators release what they hold: an
/// exactly-once sink aborts its open transaction), and kills it if it has not stopped within
/// [`CANCELLATION_TIMEOUT`]. Its input gate closes only then, so it never mistakes the
/// cancellation for the end of its input.
/// How a task released by the JobManager ends: cancelled, or finished after the savepoint of
/// `flink stop` (its operators close the same way: an open transaction is aborted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Canceled,
    Finished,
}

async fn cancel(attempt_id: ExecutionAttemptId, task: RunningTask, services: TaskServices, ending: Ending) {
    let RunningTask { display_name, mut handle, gate, control, .. } = task;
    if control.send(TaskControl::Cancel).is_ok()
        && madsim::time::timeout(CANCELLATION_TIMEOUT, &mut handle).await.is_err()
    {
        handle.abort();
    }
    services.gates.close_gate(gate);
    let (from, to) = match ending {
        Ending::Canceled => (ExecutionState::Canceling, ExecutionState::Canceled),
        Ending::Finished => (ExecutionState::Running, ExecutionState::Finished),
    };
    services.trace.record(Event::ExecutionStateChanged { task: display_name, attempt_id, from, to });
}

/// On SIGTERM: cancel every task, tell the JobManager, and say the node may go (Flink's
/// TaskExecutor stopping: its job connections close with "The TaskExecutor is shutting down.").
async fn shut_down_on_sigterm(
    config: TaskManagerConfig,
    rpc: Rpc,
    resource_id: ResourceId,
    state: Arc<Mutex<TaskManagerState>>,
    services: TaskServices,
) {
    config.shutdown.requested().await;
    config.trace.record(Event::ShutdownStarted { grace: crate::lifecycle::STOP_GRACE });
    let (tasks, registered) = {
        let mut state = state.lock().unwrap();
        (std::mem::take(&mut state.tasks), state.job_master.take().is_some())
    };
    let cancels: Vec<_> = tasks
        .into_iter()
        .map(|(attempt_id, task)| madsim::task::spawn(cancel(attempt_id, task, services.clone(), Ending::Canceled)))
        .collect();
    for cancel in cancels {
        let _ = cancel.await;
    }
    if registered {
        let disconnect = DisconnectTaskManager {
            resource_id,
            cause: "The TaskExecutor is shutting down.".to_owned(),
        };
        let _ = rpc.call(config.jobmanager, disconnect, Duration::from_secs(1)).await;
    }
    config.trace.record(Event::ShutdownCompleted);
    config.shutdown.complete();
}
