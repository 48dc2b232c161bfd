//! What a running task's operator is given and reports through: the TaskManager's services, the
//! task's context (its deployment, input, output, control line, checkpoint storage and metrics),
//! its errors, and its reports to the JobManager. The operators and the task's runner
//! ([`task`](super::task)) both stand on it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::plant::Plants;
use crate::protocol::checkpoint::{
    AcknowledgeCheckpoint, CHECKPOINT_TIMEOUT, CheckpointBarrier, DeclineCheckpoint, StateHandle,
};
use crate::protocol::deployment::{TaskDeploymentDescriptor, UpdateTaskExecutionState};
use crate::protocol::snapshot::{SnapshotPaths, TaskSnapshot};
use crate::protocol::states::ExecutionState;
use crate::rpc::Rpc;
use crate::storage::StorageClient;
use crate::trace::NodeTrace;

use super::control::ControlReceiver;
use super::metrics::TaskMetrics;
use super::network::{ChannelClosed, GateRegistry, InputGate, RecordWriter};

/// What a running task may use of its TaskManager.
#[derive(Clone)]
pub struct TaskServices {
    /// The TaskManager's endpoint.
    pub rpc: Rpc,
    /// The TaskManager's own address (to tell local consumers from remote ones).
    pub local_address: SocketAddr,
    /// Where local deliveries land.
    pub gates: GateRegistry,
    /// The Kafka broker's address.
    pub broker: SocketAddr,
    /// The TaskManager's trace.
    pub trace: NodeTrace,
    /// The bugs planted in this run (docs/planted-bugs.md): each task reads what it needs once,
    /// when it starts.
    pub plants: Plants,
}

/// Why a task stopped before its input ended.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A downstream consumer disappeared.
    #[error(transparent)]
    Output(#[from] ChannelClosed),
    /// Kafka could not be reached or refused a request.
    #[error("kafka: {0}")]
    Kafka(String),
    /// The TaskManager cancelled the task (failover, or the TaskManager shutting down).
    #[error("the task was cancelled")]
    Canceled,
    /// The checkpoint to restore from could not be read.
    #[error("cannot restore from checkpoint {checkpoint_id}: {reason}")]
    Restore {
        /// The checkpoint.
        checkpoint_id: u64,
        /// Why.
        reason: String,
    },
}

/// Everything an operator's loop gets: its descriptor, input and output.
pub struct TaskContext {
    /// The deployment.
    pub tdd: TaskDeploymentDescriptor,
    /// The TaskManager's services.
    pub services: TaskServices,
    /// The input gate; `None` for the source.
    pub input: Option<InputGate>,
    /// The output; `None` for the sink.
    pub output: Option<RecordWriter>,
    /// Triggers and completion notices from the TaskManager.
    pub control: ControlReceiver,
    /// Checkpoint storage.
    pub storage: StorageClient,
    /// The task's metrics (the source counts what it reads from Kafka, the sink what it writes,
    /// the window operator its late drops; the gate and the writer count the rest).
    pub metrics: Arc<TaskMetrics>,
    /// `tdd.display_name()`, made once: the sink names itself in a trace event for each result
    /// and transaction, and formatting the name cost about 650 instructions each time.
    display_name: String,
    /// Where the task's checkpoint snapshots go, made once.
    snapshot_paths: SnapshotPaths,
}

impl TaskContext {
    /// The context of the task `tdd` deploys, with the input, output and control line opened
    /// for it.
    pub(super) fn new(
        tdd: TaskDeploymentDescriptor,
        services: TaskServices,
        input: Option<InputGate>,
        output: Option<RecordWriter>,
        control: ControlReceiver,
        metrics: Arc<TaskMetrics>,
    ) -> Self {
        let storage = StorageClient::new(services.rpc.clone(), tdd.storage);
        TaskContext {
            display_name: tdd.display_name(),
            snapshot_paths: SnapshotPaths::new(tdd.job_id, tdd.vertex, tdd.subtask),
            tdd,
            services,
            input,
            output,
            control,
            storage,
            metrics,
        }
    }

    /// Records a trace event prefixed with the task's display name.
    pub fn trace(&self, message: impl AsRef<str>) {
        self.services.trace.event(format!("{} {}", self.display_name, message.as_ref()));
    }

    /// The task's name as the trace gives it: `<vertex> (<subtask + 1>/<parallelism>)`.
    pub fn display_name(&self) -> String {
        self.display_name.clone()
    }

    /// The snapshots this task restores from: every subtask's snapshot of its vertex (a task
    /// picks what it owns, so a restore at another parallelism redistributes state).
    pub async fn restored_snapshots(&self) -> Result<Vec<(u32, TaskSnapshot)>, TaskError> {
        let Some(metadata) = &self.tdd.restore else { return Ok(Vec::new()) };
        let failed = |reason: String| TaskError::Restore { checkpoint_id: metadata.checkpoint_id, reason };
        let mut snapshots = Vec::new();
        for (subtask, handle) in metadata.states_of(self.tdd.vertex) {
            let bytes = read_with_retry(&self.storage, &handle.path).await.map_err(failed)?;
            let snapshot = serde_json::from_slice(&bytes)
                .map_err(|e| failed(format!("{} is corrupt: {e}", handle.path)))?;
            snapshots.push((subtask, snapshot));
        }
        Ok(snapshots)
    }

    /// The checkpoint id the task restored from, if any.
    pub fn restored_checkpoint(&self) -> Option<u64> {
        self.tdd.restore.as_ref().map(|m| m.checkpoint_id)
    }

    /// Writes the snapshot to checkpoint storage and acknowledges it, in the background so the
    /// task goes on processing (Flink's asynchronous snapshot phase).
    pub fn acknowledge(&self, barrier: CheckpointBarrier, snapshot: &TaskSnapshot) {
        let tdd = &self.tdd;
        let path = self.snapshot_paths.of(barrier.checkpoint_id, barrier.kind);
        // Written by hand, byte for byte what serde_json writes (its tests check it): 2.9 M
        // instructions fewer in 5 simulated minutes than serde_json, which escapes byte by byte.
        let bytes = bytes::Bytes::from(snapshot.encode());
        let (rpc, storage, jobmanager) = (self.services.rpc.clone(), self.storage.clone(), tdd.jobmanager);
        let (job_id, attempt_id, checkpoint_id) = (tdd.job_id, tdd.attempt_id, barrier.checkpoint_id);
        // The acknowledgement (or decline) is sent until the JobManager answers, for as long as
        // the checkpoint could still complete: Flink sends it over a reliable connection, and a
        // lost one would leave the checkpoint pending until it expires, stalling an exactly-once
        // sink for the 10-minute checkpoint timeout. The JobManager ignores a duplicate.
        madsim::task::spawn(async move {
            let size = bytes.len() as u64;
            match storage.put(&path, bytes).await {
                Ok(()) => {
                    let ack = AcknowledgeCheckpoint {
                        job_id,
                        attempt_id,
                        checkpoint_id,
                        state: StateHandle { path, size },
                    };
                    rpc.call_until_answered(jobmanager, ack, ATTEMPT, CHECKPOINT_TIMEOUT).await;
                }
                Err(error) => {
                    let decline =
                        DeclineCheckpoint { job_id, attempt_id, checkpoint_id, reason: error.to_string() };
                    rpc.call_until_answered(jobmanager, decline, ATTEMPT, CHECKPOINT_TIMEOUT).await;
                }
            }
        });
    }
}

/// How long one attempt to reach the JobManager waits for its answer.
const ATTEMPT: Duration = Duration::from_secs(1);

/// Reads a snapshot, retrying for a while if storage is unreachable.
async fn read_with_retry(storage: &StorageClient, path: &str) -> Result<bytes::Bytes, String> {
    match storage.get_for_restore(path).await {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(format!("{path} is missing")),
        Err(error) => Err(error.to_string()),
    }
}

impl TaskContext {
    /// Restoring is done: INITIALIZING → RUNNING.
    pub async fn running(&self) {
        report(&self.services.rpc, &self.tdd, ExecutionState::Running, None).await;
    }
}

/// Tells the JobManager about a state change, retrying a few times if it does not answer.
pub async fn report(
    rpc: &Rpc,
    tdd: &TaskDeploymentDescriptor,
    state: ExecutionState,
    error: Option<String>,
) {
    let update = UpdateTaskExecutionState {
        job_id: tdd.job_id,
        attempt_id: tdd.attempt_id,
        state,
        error,
    };
    // Five tries: each attempt fails only by timing out.
    rpc.call_until_answered(tdd.jobmanager, update, ATTEMPT, 5 * ATTEMPT).await;
}
