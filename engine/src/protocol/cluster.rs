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

/// A JobManager that is shutting down tells its TaskManagers, which drop its tasks at once
/// and register again (Flink's `disconnectJobManager` / `disconnectResourceManager`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DisconnectJobManager {
    /// The JobManager's session going away.
    pub job_master: JobMasterId,
}
crate::request!(DisconnectJobManager => ());
