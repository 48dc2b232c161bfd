//! The dispatcher (docs/model/cluster.md#nodes, docs/model/cluster.md#the-flink-cli): accepts job
//! submissions, one job at a time as the playground runs them, gives each its id and hands it to
//! the scheduler. The REST API will live here.

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::jobmanager::resource_manager::tests::origin;
    use crate::jobmanager::scheduler::SchedulerConfig;
    use crate::protocol::ids::{JobId, JobMasterId};
    use crate::protocol::states::JobStatus;

    const RUN: &str = "flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing --event-time";

    fn scheduler() -> Scheduler {
        let config = SchedulerConfig {
            jobmanager: "10.0.0.2:6123".parse().unwrap(),
            job_master: JobMasterId(1),
            storage: "10.0.0.5:7000".parse().unwrap(),
            slot_request_timeout: Duration::from_secs(300),
        };
        Scheduler::new(config, IdSource::Counter(100))
    }

    #[test]
    fn a_second_job_is_refused_while_the_first_is_active() {
        let (mut dispatcher, mut scheduler) = (Dispatcher::new(IdSource::Counter(0)), scheduler());
        let mut checkpoints = CheckpointCoordinator::default();
        let mut events = Vec::new();
        let submission = JobSubmission::parse_run_command(RUN).unwrap();
        let first = dispatcher.submit(submission.clone(), &mut scheduler, &mut checkpoints, origin(), &mut events);
        assert!(matches!(first, SubmitJobResponse::Submitted(JobId(1))));
        assert_eq!(events[0].to_string(), format!("Received JobGraph submission '{JOB_NAME}' ({}).", JobId(1)));
        let second = dispatcher.submit(submission, &mut scheduler, &mut checkpoints, origin(), &mut events);
        let SubmitJobResponse::Rejected(reason) = second else { panic!("accepted: {second:?}") };
        assert_eq!(reason, format!("a job is already running: {JOB_NAME} ({})", JobId(1)));
        assert_eq!(scheduler.job().map(|job| (job.job_id, job.status)), Some((JobId(1), JobStatus::Running)));
    }

    #[test]
    fn a_variant_the_engine_does_not_model_is_refused() {
        let (mut dispatcher, mut scheduler) = (Dispatcher::new(IdSource::Counter(0)), scheduler());
        let mut events = Vec::new();
        let mut submission = JobSubmission::parse_run_command(RUN).unwrap();
        submission.args.event_time = false;
        let response =
            dispatcher.submit(submission, &mut scheduler, &mut CheckpointCoordinator::default(), origin(), &mut events);
        assert!(matches!(response, SubmitJobResponse::Rejected(_)));
        assert!(events.is_empty() && scheduler.job().is_none());
    }
}
