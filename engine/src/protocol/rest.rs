//! What the Flink CLI asks of the JobManager besides `flink run` (docs/model/cluster.md#the-flink-cli, docs/not-modelled.md#rest-api): stop with a
//! savepoint and poll it, list the jobs, cancel one. Flink's CLI goes through the REST API; the
//! requests here carry the same questions and answers. No I/O here.

use serde::{Deserialize, Serialize};

use super::ids::{JobId, TriggerId};
use super::states::JobStatus;

/// `flink stop [--drain] <job-id>` (`POST /jobs/<id>/stop`): answered with the trigger id to
/// poll, or Flink's reason for refusing.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StopJob {
    /// The job.
    pub job_id: JobId,
    /// `--drain`: emit the maximum watermark first, so every open window fires.
    pub drain: bool,
}
crate::request!(StopJob => Result<TriggerId, String>);

/// `GET /jobs/<id>/savepoints/<trigger-id>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetSavepointStatus {
    /// The job.
    pub job_id: JobId,
    /// What [`StopJob`] answered.
    pub trigger_id: TriggerId,
}
crate::request!(GetSavepointStatus => Option<SavepointStatus>);

/// A savepoint request's state, as the REST API reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SavepointStatus {
    /// `IN_PROGRESS`.
    InProgress,
    /// `COMPLETED` with its location.
    Completed {
        /// The savepoint's directory.
        location: String,
    },
    /// `COMPLETED` with a failure cause.
    Failed {
        /// Why.
        cause: String,
    },
}

/// `flink list` (`GET /jobs/overview`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListJobs;
crate::request!(ListJobs => Vec<JobOverview>);

/// One line of `flink list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOverview {
    /// The job.
    pub job_id: JobId,
    /// Its status now.
    pub status: JobStatus,
    /// When it was submitted (ms of simulated time).
    pub start_time_ms: i64,
}

/// `flink cancel <job-id>` (`PATCH /jobs/<id>`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CancelJob {
    /// The job.
    pub job_id: JobId,
}
crate::request!(CancelJob => Result<(), String>);
