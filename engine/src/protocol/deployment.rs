//! Deploying and cancelling tasks, and tasks reporting their state
//! (docs/model/cluster.md#state-machines): the JobManager ↔ TaskManager task protocol.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::ids::{ExecutionAttemptId, JobId, JobMasterId};
use super::job::{JobSubmission, Vertex};
use super::states::ExecutionState;

/// Everything a TaskManager needs to run one subtask (Flink's TaskDeploymentDescriptor).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskDeploymentDescriptor {
    /// The job.
    pub job_id: JobId,
    /// This attempt.
    pub attempt_id: ExecutionAttemptId,
    /// Attempt number of this subtask (0 first, +1 per restart).
    pub attempt_number: u32,
    /// Which execution graph this attempt belongs to: bumped on every restart, so data from
    /// an older graph is never mixed in.
    pub graph_version: u64,
    /// The vertex.
    pub vertex: Vertex,
    /// Subtask index, from 0.
    pub subtask: u32,
    /// The vertex's parallelism.
    pub parallelism: u32,
    /// Number of key groups.
    pub max_parallelism: u32,
    /// The job's arguments.
    pub submission: JobSubmission,
    /// The slot it runs in.
    pub slot: u32,
    /// For each subtask of the downstream vertex: the TaskManager it runs on.
    pub consumers: Vec<SocketAddr>,
    /// Number of input channels (subtasks of the upstream vertex); 0 for the source.
    pub input_channels: u32,
    /// Where to report state changes.
    pub jobmanager: SocketAddr,
    /// The JobManager session that deploys it (a registration answer may still be in flight).
    pub job_master: JobMasterId,
    /// Where checkpoints are stored (the storage node).
    pub storage: SocketAddr,
    /// The checkpoint to restore from, if the job restarts from one.
    pub restore: Option<super::checkpoint::CheckpointMetadata>,
}

impl TaskDeploymentDescriptor {
    /// The name Flink shows: `ClickEvent Counter (1/2)`.
    pub fn display_name(&self) -> String {
        use std::fmt::Write;
        // Sized once: `format!` guessed short and grew the string twice (~1,100 instructions a
        // name, and the trace names a task in most of its records).
        let name = self.vertex.name();
        let mut display = String::with_capacity(name.len() + " (/)".len() + 2 * 10);
        display.push_str(name);
        let _ = write!(display, " ({}/{})", self.subtask + 1, self.parallelism);
        display
    }
}

/// Deploy a task (`submitTask`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubmitTask {
    /// The deployment.
    pub tdd: TaskDeploymentDescriptor,
}
crate::request!(SubmitTask => Result<(), String>);

/// Cancel a task (`cancelTask`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CancelTask {
    /// The attempt to cancel.
    pub attempt_id: ExecutionAttemptId,
}
crate::request!(CancelTask => ());

/// Release a task whose job finished by `flink stop` (its savepoint completed): the task ends
/// FINISHED, and an exactly-once sink aborts the transaction it opened after the savepoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FinishTask {
    /// The attempt to finish.
    pub attempt_id: ExecutionAttemptId,
}
crate::request!(FinishTask => ());

/// A task tells the JobManager it moved to another state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UpdateTaskExecutionState {
    /// The job.
    pub job_id: JobId,
    /// The attempt.
    pub attempt_id: ExecutionAttemptId,
    /// Its new state.
    pub state: ExecutionState,
    /// Why, when it failed.
    pub error: Option<String>,
}
crate::request!(UpdateTaskExecutionState => ());
