//! Registration, heartbeats and job submission between TaskManagers, the JobManager and the
//! client (docs/model/cluster.md#failure-detection-and-restarts): the resource-manager side of the
//! cluster.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::ids::{ExecutionAttemptId, JobId, JobMasterId, ResourceId};
use super::job::JobSubmission;

/// A TaskManager offers its slots to the JobManager.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegisterTaskManager {
    /// This incarnation of the TaskManager.
    pub resource_id: ResourceId,
    /// Its node name (`taskmanager-1`).
    pub name: String,
    /// Where it serves deployments, heartbeats and data.
    pub address: SocketAddr,
    /// Number of task slots.
    pub slots: u32,
    /// Which of this incarnation's connections to the JobManager: it grows each time the
    /// TaskManager loses the JobManager and drops its tasks. A retried registration keeps it.
    pub session: u64,
}

/// The JobManager's answer to a registration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum RegistrationResponse {
    /// Registered; heartbeats will come from this JobManager.
    Accepted {
        /// The JobManager's session.
        job_master: JobMasterId,
    },
}
crate::request!(RegisterTaskManager => RegistrationResponse);

/// The JobManager's heartbeat request to a TaskManager (every 1000 ms).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The JobManager's session.
    pub job_master: JobMasterId,
}

/// A TaskManager's answer: who it is and what runs in its slots.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// Which incarnation answered (a restarted TaskManager answers with a new id).
    pub resource_id: ResourceId,
    /// The attempts running on it.
    pub running: Vec<ExecutionAttemptId>,
    /// Their metrics now (docs/model/rest.md#metrics).
    pub metrics: Vec<super::metrics::TaskMetricsReport>,
}
crate::request!(Heartbeat => HeartbeatResponse);

/// The client submits a job (`flink run`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubmitJob {
    /// The parsed command line.
    pub submission: JobSubmission,
}

/// The JobManager's answer to a submission.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SubmitJobResponse {
    /// Accepted under this id.
    Submitted(JobId),
    /// Rejected, with Flink's reason.
    Rejected(String),
}
crate::request!(SubmitJob => SubmitJobResponse);

/// Why a savepoint cannot be restored (docs/model/cluster.md#the-flink-cli): a submission with
/// `-s` fails with Flink's error, which names the path the user gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestoreRefused {
    /// No `_metadata` under the savepoint's directory.
    NotFound {
        /// The path as given.
        path: String,
        /// The savepoint's directory.
        directory: String,
    },
    /// The storage could not be read.
    Unreadable {
        /// The path as given.
        path: String,
        /// The storage's error.
        error: String,
    },
    /// `_metadata` is truncated or corrupt.
    Corrupt {
        /// The path as given.
        path: String,
        /// What the decoder found wrong, naming the file.
        error: String,
    },
    /// The savepoint holds state of an operator the job lacks, without `--allowNonRestoredState`.
    UnknownOperator {
        /// The path as given.
        path: String,
        /// The savepoint's directory.
        directory: String,
        /// The operator's id.
        operator: String,
    },
    /// The new parallelism is above the max parallelism the savepoint keeps: keyed state is
    /// split into that many key groups, and a subtask cannot own less than one.
    AboveMaxParallelism {
        /// The path as given.
        path: String,
        /// The first task whose state cannot be restored, as Flink names it.
        task: String,
        /// The savepoint's max parallelism.
        max_parallelism: u32,
        /// The parallelism submitted.
        parallelism: u32,
    },
}

impl std::fmt::Display for RestoreRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = match self {
            RestoreRefused::NotFound { path, .. }
            | RestoreRefused::Unreadable { path, .. }
            | RestoreRefused::Corrupt { path, .. }
            | RestoreRefused::UnknownOperator { path, .. }
            | RestoreRefused::AboveMaxParallelism { path, .. } => path,
        };
        write!(f, "Could not restore job from savepoint {path}: ")?;
        match self {
            RestoreRefused::NotFound { directory, .. } => write!(
                f,
                "java.io.FileNotFoundException: Cannot find checkpoint or savepoint file/directory \
                 '{directory}' on file system 'file'."
            ),
            RestoreRefused::Unreadable { error, .. } | RestoreRefused::Corrupt { error, .. } => f.write_str(error),
            RestoreRefused::UnknownOperator { directory, operator, .. } => write!(
                f,
                "Failed to rollback to checkpoint/savepoint file:{directory}. Cannot map checkpoint/savepoint \
                 state for operator {operator} to the new program, because the operator is not available in \
                 the new program. If you want to allow to skip this, you can set the --allowNonRestoredState \
                 option on the CLI."
            ),
            RestoreRefused::AboveMaxParallelism { task, max_parallelism, parallelism, .. } => write!(
                f,
                "The state for task {task} can not be restored. The maximum parallelism ({max_parallelism}) of \
                 the restored state is lower than the configured parallelism ({parallelism}). Please reduce the \
                 parallelism of the task to be lower or equal to the maximum parallelism."
            ),
        }
    }
}

/// A TaskManager that is shutting down tells the JobManager, which fails its tasks at once
/// instead of waiting for the heartbeat timeout (Flink's `disconnectTaskManager`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DisconnectTaskManager {
    /// The incarnation going away.
    pub resource_id: ResourceId,
    /// Why, as Flink words it.
    pub cause: String,
}
crate::request!(DisconnectTaskManager => ());

/// A JobManager that is shutting down, or that lost a TaskManager to the heartbeat timeout,
/// tells the TaskManager, which drops its tasks at once and registers again (Flink's
/// `disconnectJobManager` / `disconnectResourceManager`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DisconnectJobManager {
    /// The JobManager's session going away.
    pub job_master: JobMasterId,
    /// The TaskManager incarnation it is for. One restarted at the same address is another
    /// incarnation and ignores it, as Flink's RPC would never have reached it.
    pub resource_id: ResourceId,
    /// The TaskManager's registration it ends ([`RegisterTaskManager::session`]); `None` for
    /// all of them (the JobManager shutting down). A copy sent again that arrives after the
    /// TaskManager registered anew ends nothing.
    pub registration: Option<u64>,
}
crate::request!(DisconnectJobManager => ());
