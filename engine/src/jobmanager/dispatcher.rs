//! The dispatcher (docs/model/cluster.md#nodes, docs/model/cluster.md#the-flink-cli): accepts job submissions, one job at a time as the playground
//! runs them, gives each its id and hands it to the scheduler. A submission with `-s` restores
//! a savepoint: its `_metadata` is checked against the job here, and its max parallelism is the
//! job's (never recomputed from the new parallelism).

use madsim::time::Instant;

use crate::protocol::cluster::{RestoreRefused, SubmitJobResponse};
use crate::protocol::job::{JOB_NAME, JobSubmission, Vertex};
use crate::protocol::key_group::default_max_parallelism;
use crate::protocol::snapshot::{CheckpointMetadata, vertex_of};
use crate::trace::Event;

use super::checkpoint_coordinator::{CheckpointCoordinator, CompletedCheckpoint};
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
    /// active; otherwise starts the job with a fresh checkpoint coordinator, or one restored
    /// from `savepoint` (see [`restore_plan`]).
    pub fn submit(
        &mut self,
        submission: JobSubmission,
        savepoint: Option<CompletedCheckpoint>,
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
        let max_parallelism = match &savepoint {
            Some(savepoint) => savepoint.metadata.max_parallelism,
            None => default_max_parallelism(submission.parallelism),
        };
        *checkpoints = match savepoint {
            Some(savepoint) => CheckpointCoordinator::restored_from(job_id, savepoint),
            None => CheckpointCoordinator::default(),
        };
        scheduler.start(job_id, submission, max_parallelism, now, events);
        // A restored job traces where its state comes from, as a failover does.
        checkpoints.restore(events);
        SubmitJobResponse::Submitted(job_id)
    }
}

/// The savepoint directory a `-s` argument names: Flink takes `file:` URIs, the directory, or
/// its `_metadata` file.
pub fn savepoint_directory(path: &str) -> String {
    let path = path.strip_prefix("file:").unwrap_or(path).trim_end_matches('/');
    path.strip_suffix("/_metadata").unwrap_or(path).to_owned()
}

/// What the node read at `<savepoint>/_metadata`: the bytes, none (no such file), or why it
/// could not read.
pub type MetadataFile = Result<Option<bytes::Bytes>, String>;

/// Checks a savepoint's `_metadata` against the submitted job (docs/model/cluster.md#the-flink-cli): it must exist and
/// parse, name only the job's operators (unless `--allowNonRestoredState`), and have a max
/// parallelism at least the new parallelism. Errors are Flink's, naming the path.
pub fn restore_plan(
    submission: &JobSubmission,
    path: &str,
    file: MetadataFile,
) -> Result<CompletedCheckpoint, RestoreRefused> {
    let directory = savepoint_directory(path);
    let metadata_path = format!("{directory}/_metadata");
    let path = path.to_owned();
    let bytes = match file {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(RestoreRefused::NotFound { path, directory }),
        Err(error) => return Err(RestoreRefused::Unreadable { path, error }),
    };
    let mut metadata = CheckpointMetadata::decode(&metadata_path, &bytes)
        .map_err(|e| RestoreRefused::Corrupt { path: path.clone(), error: e.to_string() })?;
    let unknown: Vec<String> = metadata.operators.keys().filter(|id| vertex_of(id).is_none()).cloned().collect();
    if let Some(operator) = unknown.first() {
        if !submission.allow_non_restored_state {
            return Err(RestoreRefused::UnknownOperator { path, directory, operator: operator.clone() });
        }
        metadata.operators.retain(|id, _| vertex_of(id).is_some());
    }
    if submission.parallelism > metadata.max_parallelism {
        return Err(RestoreRefused::AboveMaxParallelism {
            path,
            task: Vertex::Source.name().to_owned(),
            max_parallelism: metadata.max_parallelism,
            parallelism: submission.parallelism,
        });
    }
    let size = bytes.len() as u64 + metadata.operators.values().flat_map(|s| s.values()).map(|h| h.size).sum::<u64>();
    Ok(CompletedCheckpoint { metadata, directory, size })
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
        let first = dispatcher.submit(submission.clone(), None, &mut scheduler, &mut checkpoints, origin(), &mut events);
        assert!(matches!(first, SubmitJobResponse::Submitted(JobId(1))));
        assert_eq!(events[0].to_string(), format!("Received JobGraph submission '{JOB_NAME}' ({}).", JobId(1)));
        let second = dispatcher.submit(submission, None, &mut scheduler, &mut checkpoints, origin(), &mut events);
        let SubmitJobResponse::Rejected(reason) = second else { panic!("accepted: {second:?}") };
        assert_eq!(reason, format!("a job is already running: {JOB_NAME} ({})", JobId(1)));
        assert_eq!(scheduler.job().map(|job| (job.job_id, job.status)), Some((JobId(1), JobStatus::Running)));
    }

    #[test]
    fn a_variant_the_engine_does_not_model_is_refused() {
        let (mut dispatcher, mut scheduler) = (Dispatcher::new(IdSource::Counter(0)), scheduler());
        let mut events = Vec::new();
        let mut submission = JobSubmission::parse_run_command(RUN).unwrap();
        submission.args.chaining = true;
        let response =
            dispatcher.submit(submission, None, &mut scheduler, &mut CheckpointCoordinator::default(), origin(), &mut events);
        assert!(matches!(response, SubmitJobResponse::Rejected(_)));
        assert!(events.is_empty() && scheduler.job().is_none());
    }

    /// A savepoint's `_metadata` of a job at -p 2 (max parallelism 128), as the coordinator
    /// writes it.
    fn savepoint_metadata() -> CheckpointMetadata {
        use crate::protocol::checkpoint::StateHandle;
        use crate::protocol::snapshot::{FORMAT_VERSION, SnapshotKind, operator_id};
        let operators = Vertex::graph(false)
            .iter()
            .copied()
            .map(|v| {
                let handles = (0..2).map(|i| (i, StateHandle { path: format!("/sp/{}-{i}", operator_id(v)), size: 10 }));
                (operator_id(v).to_owned(), handles.collect())
            })
            .collect();
        CheckpointMetadata {
            format_version: FORMAT_VERSION,
            job_id: JobId(9),
            checkpoint_id: 41,
            kind: SnapshotKind::Savepoint { token: 1, drain: false },
            timestamp_ms: 60_000,
            parallelism: 2,
            max_parallelism: 128,
            operators,
        }
    }

    const PATH: &str = "/tmp/flink-savepoints-directory/savepoint-000000-000000000001";

    fn restore(run: &str, file: MetadataFile) -> Result<CompletedCheckpoint, String> {
        restore_plan(&JobSubmission::parse_run_command(run).unwrap(), PATH, file).map_err(|e| e.to_string())
    }

    fn bytes(metadata: &CheckpointMetadata) -> MetadataFile {
        Ok(Some(bytes::Bytes::from(metadata.encode())))
    }

    #[test]
    fn a_restore_keeps_the_savepoints_max_parallelism_and_continues_its_checkpoint_ids() {
        let (mut dispatcher, mut scheduler) = (Dispatcher::new(IdSource::Counter(0)), scheduler());
        let mut checkpoints = CheckpointCoordinator::default();
        let mut events = Vec::new();
        let run = RUN.replace("flink run -d", "flink run -d -p 3 -s file:/x");
        let mut metadata = savepoint_metadata();
        metadata.max_parallelism = 256; // not what p=3 would give (128)
        let savepoint = restore(&run, bytes(&metadata)).unwrap();
        assert_eq!(savepoint.directory, PATH);
        let submission = JobSubmission::parse_run_command(&run).unwrap();
        dispatcher.submit(submission, Some(savepoint), &mut scheduler, &mut checkpoints, origin(), &mut events);
        assert_eq!(scheduler.job().unwrap().max_parallelism, 256);
        assert_eq!(checkpoints.latest().unwrap().metadata.checkpoint_id, 41);
        let restoring = events.iter().find(|e| matches!(e, Event::RestoringFromSavepoint { .. })).unwrap();
        assert_eq!(
            restoring.to_string(),
            format!("Restoring job {} from Savepoint 41 @ 60000 for {} located at file:{PATH}.", JobId(1), JobId(9))
        );
    }

    #[test]
    fn the_savepoint_path_may_be_a_uri_the_directory_or_its_metadata_file() {
        for path in [PATH.to_owned(), format!("file:{PATH}"), format!("{PATH}/"), format!("{PATH}/_metadata")] {
            assert_eq!(savepoint_directory(&path), PATH, "{path}");
        }
    }

    #[test]
    fn a_missing_savepoint_fails_naming_its_path() {
        assert_eq!(
            restore(RUN, Ok(None)).unwrap_err(),
            format!(
                "Could not restore job from savepoint {PATH}: java.io.FileNotFoundException: Cannot find checkpoint \
                 or savepoint file/directory '{PATH}' on file system 'file'."
            )
        );
        let unreachable = restore(RUN, Err("storage unavailable for x: no answer".into())).unwrap_err();
        assert!(unreachable.starts_with(&format!("Could not restore job from savepoint {PATH}: storage")), "{unreachable}");
    }

    #[test]
    fn a_truncated_or_corrupt_savepoint_fails_naming_its_metadata_file() {
        let whole = savepoint_metadata().encode();
        for broken in [whole[..whole.len() / 3].to_vec(), b"\x00\x01garbage".to_vec()] {
            let error = restore(RUN, Ok(Some(bytes::Bytes::from(broken)))).unwrap_err();
            assert!(
                error.starts_with(&format!("Could not restore job from savepoint {PATH}: {PATH}/_metadata is corrupt: ")),
                "{error}"
            );
        }
    }

    #[test]
    fn a_restore_above_the_max_parallelism_fails_with_flinks_error() {
        let run = RUN.replace("flink run -d", "flink run -d -p 200");
        assert_eq!(
            restore(&run, bytes(&savepoint_metadata())).unwrap_err(),
            format!(
                "Could not restore job from savepoint {PATH}: The state for task ClickEvent Source can not be \
                 restored. The maximum parallelism (128) of the restored state is lower than the configured \
                 parallelism (200). Please reduce the parallelism of the task to be lower or equal to the maximum \
                 parallelism."
            )
        );
        assert!(restore(&RUN.replace("flink run -d", "flink run -d -p 128"), bytes(&savepoint_metadata())).is_ok());
    }

    #[test]
    fn state_of_an_operator_the_job_lacks_needs_allow_non_restored_state() {
        let mut metadata = savepoint_metadata();
        metadata.operators.insert("backpressure-map".into(), Default::default());
        let error = restore(RUN, bytes(&metadata)).unwrap_err();
        assert!(error.contains("Cannot map checkpoint/savepoint state for operator backpressure-map to the new program"), "{error}");
        assert!(error.contains("--allowNonRestoredState"), "{error}");
        let allowed = restore(&RUN.replace("flink run -d", "flink run -d --allowNonRestoredState"), bytes(&metadata)).unwrap();
        assert_eq!(allowed.metadata.operators.len(), 4, "the unknown operator's state is left out");
    }
}
