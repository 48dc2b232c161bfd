//! The dispatcher (spec §1, §13): accepts job submissions, one job at a time as the playground
//! runs them, gives each its id and hands it to the scheduler. The REST API will live here.

use madsim::time::Instant;

use crate::protocol::cluster::SubmitJobResponse;
use crate::protocol::job::{JOB_NAME, JobSubmission};
use crate::protocol::key_group::default_max_parallelism;
use crate::trace::Event;

use super::checkpoint_coordinator::CheckpointCoordinator;
use super::execution_graph::IdSource;
use super::scheduler::Scheduler;

/// Where submissions arrive.
#[derive(Debug)]
pub struct Dispatcher {
    /// Where job ids come from.
    ids: IdSource,
}

impl Dispatcher {
    /// A dispatcher drawing job ids from `ids`.
    pub fn new(ids: IdSource) -> Dispatcher {
        Dispatcher { ids }
    }

    /// `flink run`: refuses a variant the engine does not model and a second job while one is
    /// active; otherwise starts the job with a fresh checkpoint coordinator.
    pub fn submit(
        &mut self,
        submission: JobSubmission,
        scheduler: &mut Scheduler,
        checkpoints: &mut CheckpointCoordinator,
        now: Instant,
        events: &mut Vec<Event>,
    ) -> SubmitJobResponse {
        if let Some((_, reason)) = submission.unsupported_variant() {
            return SubmitJobResponse::Rejected(reason.to_owned());
        }
        if let Some(job_id) = scheduler.active_job() {
            return SubmitJobResponse::Rejected(format!("a job is already running: {JOB_NAME} ({job_id})"));
        }
        let job_id = self.ids.job_id();
        events.push(Event::JobSubmitted { job_id });
        let max_parallelism = default_max_parallelism(submission.parallelism);
        *checkpoints = CheckpointCoordinator::default();
        scheduler.start(job_id, submission, max_parallelism, now, events);
        SubmitJobResponse::Submitted(job_id)
    }
}
