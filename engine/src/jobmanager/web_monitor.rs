//! The dispatcher's REST endpoint, read side (docs/model/rest.md): what `GET` requests answer,
//! made from the JobManager's roles as they are now, from the history of its own events
//! ([`JobHistory`]), and from the tasks' metrics the TaskManagers report with their heartbeats
//! ([`MetricStore`]). The requests that change something (stop, cancel, run) go through the
//! dispatcher's and the CLI's own paths in the node. No I/O here.

use std::collections::BTreeMap;

use crate::protocol::ids::{ExecutionAttemptId, JobId};
use crate::protocol::job::{JOB_NAME, Vertex};
use crate::protocol::metrics::TaskMetricsReport;
use crate::protocol::rest::SavepointStatus;
use crate::protocol::rest_api::{
    AsynchronousOperationResult, BackpressureInfo, CheckpointCounts, CheckpointEntry, CheckpointSummary,
    CheckpointingStatistics, ClusterOverview, FailureCause, HttpResponse, JobDetails, JobIdWithStatus, JobsList,
    LatestCheckpoints, Metric, MinMaxAvg, Plan, PlanInput, PlanNode, QueueStatus, RestoredCheckpoint,
    SavepointOperation, SubtaskBackpressure, VertexDetails, VertexIoMetrics, backpressure_level, vertex_id,
};
use crate::protocol::states::{ExecutionState, JobStatus};
use crate::trace::Event;

use super::checkpoint_coordinator::CheckpointCoordinator;
use super::execution_graph::ExecutionGraph;
use super::resource_manager::ResourceManager;

/// The Flink version the playground pins, as `/overview` shows it.
pub const FLINK_VERSION: &str = "1.16.0";
/// How many checkpoints `/checkpoints` lists (Flink's `web.checkpoints.history`).
pub const CHECKPOINT_HISTORY: usize = 10;

/// Every job status, in Flink's order (`timestamps` has a key for each).
const JOB_STATUSES: [JobStatus; 11] = [
    JobStatus::Initializing,
    JobStatus::Created,
    JobStatus::Running,
    JobStatus::Failing,
    JobStatus::Failed,
    JobStatus::Cancelling,
    JobStatus::Canceled,
    JobStatus::Finished,
    JobStatus::Restarting,
    JobStatus::Suspended,
    JobStatus::Reconciling,
];

/// Every execution state (`tasks` and `status-counts` have a key for each).
const EXECUTION_STATES: [ExecutionState; 10] = [
    ExecutionState::Created,
    ExecutionState::Scheduled,
    ExecutionState::Deploying,
    ExecutionState::Initializing,
    ExecutionState::Running,
    ExecutionState::Finished,
    ExecutionState::Canceling,
    ExecutionState::Canceled,
    ExecutionState::Failed,
    ExecutionState::Reconciling,
];

/// What the JobManager's events say about each job, for the REST API: when it entered each
/// status, and its checkpoints. Kept for the node's life (a JobManager that restarts knows no
/// job, as without HA).
#[derive(Debug, Default)]
pub struct JobHistory {
    jobs: BTreeMap<JobId, JobRecord>,
    /// Submission order.
    order: Vec<JobId>,
}

/// One job's history.
#[derive(Debug, Default)]
pub struct JobRecord {
    /// When it was submitted (ms).
    pub submitted_ms: i64,
    /// Its last status.
    pub status: Option<JobStatus>,
    /// When it last entered each status (ms).
    pub status_ms: BTreeMap<JobStatus, i64>,
    /// When it reached a globally terminal status (ms).
    pub end_ms: Option<i64>,
    /// Its checkpoints.
    pub checkpoints: CheckpointHistory,
    /// Its details when a later job took its place in the scheduler (Flink's archived graph).
    pub archived: Option<JobDetails>,
}

/// One job's checkpoints, as `/checkpoints` shows them.
#[derive(Debug, Default)]
pub struct CheckpointHistory {
    counts: CheckpointCounts,
    /// Newest last; at most [`CHECKPOINT_HISTORY`].
    entries: Vec<CheckpointEntry>,
    latest: LatestCheckpoints,
    sizes: Vec<u64>,
    durations: Vec<u64>,
}

impl CheckpointHistory {
    fn entry(&mut self, id: u64) -> Option<&mut CheckpointEntry> {
        self.entries.iter_mut().rev().find(|e| e.id == id)
    }

    fn triggered(&mut self, id: u64, timestamp_ms: i64, is_savepoint: bool) {
        self.counts.total += 1;
        self.counts.in_progress += 1;
        self.entries.push(CheckpointEntry {
            id,
            status: "IN_PROGRESS".into(),
            is_savepoint,
            trigger_timestamp: timestamp_ms,
            latest_ack_timestamp: timestamp_ms,
            state_size: 0,
            end_to_end_duration: 0,
            // Filled in from the job's shape when answered.
            num_subtasks: 0,
            num_acknowledged_subtasks: 0,
            external_path: None,
            failure_message: None,
        });
        if self.entries.len() > CHECKPOINT_HISTORY {
            self.entries.remove(0);
        }
    }

    fn completed(&mut self, id: u64, now_ms: i64, size: Option<u64>, path: String) {
        let Some(entry) = self.entry(id) else { return };
        entry.status = "COMPLETED".into();
        entry.latest_ack_timestamp = now_ms;
        entry.end_to_end_duration = now_ms - entry.trigger_timestamp;
        entry.state_size = size.unwrap_or(0);
        entry.external_path = Some(path);
        let entry = entry.clone();
        self.counts.in_progress = self.counts.in_progress.saturating_sub(1);
        self.counts.completed += 1;
        self.sizes.push(entry.state_size);
        self.durations.push(entry.end_to_end_duration.max(0) as u64);
        if entry.is_savepoint {
            self.latest.savepoint = Some(entry);
        } else {
            self.latest.completed = Some(entry);
        }
    }

    fn failed(&mut self, id: u64, now_ms: i64, message: String) {
        let Some(entry) = self.entry(id) else { return };
        entry.status = "FAILED".into();
        entry.latest_ack_timestamp = now_ms;
        entry.end_to_end_duration = now_ms - entry.trigger_timestamp;
        entry.failure_message = Some(message);
        let entry = entry.clone();
        self.counts.in_progress = self.counts.in_progress.saturating_sub(1);
        self.counts.failed += 1;
        self.latest.failed = Some(entry);
    }

    /// The statistics of a job of `subtasks` subtasks, with the pending checkpoint's
    /// acknowledgements so far.
    fn statistics(&self, pending: Option<(u64, u32)>, subtasks: u32) -> CheckpointingStatistics {
        let summary = |values: &[u64]| MinMaxAvg {
            min: values.iter().copied().min().unwrap_or(0),
            max: values.iter().copied().max().unwrap_or(0),
            avg: if values.is_empty() { 0 } else { values.iter().sum::<u64>() / values.len() as u64 },
        };
        let shaped = |entry: &CheckpointEntry| {
            let mut entry = entry.clone();
            entry.num_subtasks = subtasks;
            entry.num_acknowledged_subtasks = match pending {
                _ if entry.status == "COMPLETED" => subtasks,
                Some((id, acknowledged)) if id == entry.id && entry.status == "IN_PROGRESS" => acknowledged,
                _ => 0,
            };
            entry
        };
        let latest = LatestCheckpoints {
            completed: self.latest.completed.as_ref().map(shaped),
            savepoint: self.latest.savepoint.as_ref().map(shaped),
            failed: self.latest.failed.as_ref().map(shaped),
            restored: self.latest.restored.clone(),
        };
        CheckpointingStatistics {
            counts: self.counts,
            summary: CheckpointSummary { state_size: summary(&self.sizes), end_to_end_duration: summary(&self.durations) },
            latest,
            history: self.entries.iter().rev().map(shaped).collect(),
        }
    }
}

impl JobHistory {
    /// Takes in what the JobManager just did; `now_ms` is the simulated time, `graph` the job in
    /// the scheduler (before the events' own changes are seen by a later call).
    pub fn observe(&mut self, event: &Event, now_ms: i64) {
        match event {
            Event::JobSubmitted { job_id } => {
                let mut record = JobRecord { submitted_ms: now_ms, status: Some(JobStatus::Created), ..JobRecord::default() };
                record.status_ms.insert(JobStatus::Initializing, now_ms);
                record.status_ms.insert(JobStatus::Created, now_ms);
                self.jobs.insert(*job_id, record);
                self.order.push(*job_id);
            }
            Event::JobStatusChanged { job_id, to, .. } => {
                if let Some(record) = self.jobs.get_mut(job_id) {
                    record.status = Some(*to);
                    record.status_ms.insert(*to, now_ms);
                    if to.is_globally_terminal() {
                        record.end_ms = Some(now_ms);
                    }
                }
            }
            Event::CheckpointTriggered { job_id, checkpoint_id, timestamp_ms } => {
                if let Some(record) = self.jobs.get_mut(job_id) {
                    record.checkpoints.triggered(*checkpoint_id, *timestamp_ms, false);
                }
            }
            Event::SavepointTriggered { job_id, checkpoint_id, timestamp_ms, .. } => {
                if let Some(record) = self.jobs.get_mut(job_id) {
                    record.checkpoints.triggered(*checkpoint_id, *timestamp_ms, true);
                }
            }
            Event::CheckpointCompleted { job_id, checkpoint_id, size_bytes, .. } => {
                if let Some(record) = self.jobs.get_mut(job_id) {
                    let path = crate::protocol::snapshot::snapshot_dir(
                        *job_id,
                        *checkpoint_id,
                        crate::protocol::snapshot::SnapshotKind::Checkpoint,
                    );
                    record.checkpoints.completed(*checkpoint_id, now_ms, Some(*size_bytes), path);
                }
            }
            Event::SavepointCompleted { job_id, checkpoint_id, location } => {
                if let Some(record) = self.jobs.get_mut(job_id) {
                    record.checkpoints.completed(*checkpoint_id, now_ms, None, location.clone());
                }
            }
            Event::CheckpointAborted { job_id, checkpoint_id, reason } => {
                if let Some(record) = self.jobs.get_mut(job_id) {
                    record.checkpoints.failed(*checkpoint_id, now_ms, reason.to_string());
                }
            }
            Event::Restoring { job_id, checkpoint_id, directory, .. } => {
                self.restored(*job_id, *checkpoint_id, now_ms, false, directory.clone());
            }
            Event::RestoringFromSavepoint { job_id, checkpoint_id, location, .. } => {
                self.restored(*job_id, *checkpoint_id, now_ms, true, location.clone());
            }
            _ => {}
        }
    }

    fn restored(&mut self, job_id: JobId, id: u64, now_ms: i64, is_savepoint: bool, path: String) {
        if let Some(record) = self.jobs.get_mut(&job_id) {
            record.checkpoints.counts.restored += 1;
            record.checkpoints.latest.restored =
                Some(RestoredCheckpoint { id, restore_timestamp: now_ms, is_savepoint, external_path: path });
        }
    }

    /// A job's record.
    pub fn get(&self, job_id: JobId) -> Option<&JobRecord> {
        self.jobs.get(&job_id)
    }

    /// Keeps `details` as what the REST API shows of a job no longer in the scheduler.
    pub fn archive(&mut self, job_id: JobId, details: JobDetails) {
        if let Some(record) = self.jobs.get_mut(&job_id) {
            record.archived = Some(details);
        }
    }

    /// Every job, in submission order.
    pub fn jobs(&self) -> impl Iterator<Item = (JobId, &JobRecord)> {
        self.order.iter().filter_map(|id| self.jobs.get(id).map(|record| (*id, record)))
    }
}

/// The latest metrics each task reported (docs/model/rest.md#metrics), with the back-pressure
/// ratio between its last two reports.
#[derive(Debug, Default)]
pub struct MetricStore {
    samples: BTreeMap<ExecutionAttemptId, Sample>,
}

/// One task's latest report.
#[derive(Clone, Debug)]
pub struct Sample {
    /// What it reported.
    pub report: TaskMetricsReport,
    /// When the JobManager received it (ms).
    pub at_ms: i64,
    /// The share of the time between its last two reports its output was blocked.
    pub back_pressure_ratio: f64,
    /// The share of the time between its last two reports it was busy processing its input.
    pub busy_ratio: f64,
}

impl Sample {
    /// The share of the time between its last two reports it was neither busy nor blocked: it
    /// waited for input.
    pub fn idle_ratio(&self) -> f64 {
        // In whole ms per second, as the other two are measured.
        ((1000.0 - 1000.0 * self.back_pressure_ratio - 1000.0 * self.busy_ratio).round() / 1000.0).max(0.0)
    }
}

impl MetricStore {
    /// Takes in a heartbeat's reports, received at `now_ms`.
    pub fn update(&mut self, reports: Vec<TaskMetricsReport>, now_ms: i64) {
        for report in reports {
            let (back_pressure_ratio, busy_ratio) = match self.samples.get(&report.attempt_id) {
                Some(previous) if now_ms > previous.at_ms => {
                    let interval = (now_ms - previous.at_ms) as f64;
                    let share = |now: u64, then: u64| (now.saturating_sub(then) as f64 / interval).clamp(0.0, 1.0);
                    let blocked = share(report.back_pressured_ms, previous.report.back_pressured_ms);
                    // Busy and blocked time never overlap; rounding to ms may make them
                    // add up to a little over the interval.
                    let busy = share(report.busy_ms, previous.report.busy_ms).min(1.0 - blocked);
                    (blocked, busy)
                }
                Some(previous) => (previous.back_pressure_ratio, previous.busy_ratio),
                None => (0.0, 0.0),
            };
            self.samples.insert(report.attempt_id, Sample { report, at_ms: now_ms, back_pressure_ratio, busy_ratio });
        }
    }

    /// Forgets the tasks of graphs no longer running (`live` says which attempts are current).
    pub fn retain(&mut self, live: impl Fn(ExecutionAttemptId) -> bool) {
        self.samples.retain(|attempt, _| live(*attempt));
    }

    /// The latest report of `attempt`.
    pub fn get(&self, attempt: ExecutionAttemptId) -> Option<&Sample> {
        self.samples.get(&attempt)
    }
}

/// What a read-only request sees of the JobManager.
pub struct View<'a> {
    /// The job in the scheduler.
    pub job: Option<&'a ExecutionGraph>,
    /// Its checkpoint coordinator.
    pub checkpoints: &'a CheckpointCoordinator,
    /// TaskManagers and slots.
    pub resource_manager: &'a ResourceManager,
    /// Every job's history.
    pub history: &'a JobHistory,
    /// The tasks' metrics.
    pub metrics: &'a MetricStore,
    /// Simulated time now (ms).
    pub now_ms: i64,
}

/// The ids of the job metrics, in the order `/jobs/<id>/metrics` lists them.
pub const JOB_METRICS: [&str; 7] = [
    "lastCheckpointSize",
    "lastCheckpointDuration",
    "numberOfCompletedCheckpoints",
    "numberOfFailedCheckpoints",
    "numberOfInProgressCheckpoints",
    "totalNumberOfCheckpoints",
    "numRestarts",
];

/// The ids of a subtask's metrics, after its `<index>.` prefix.
pub const SUBTASK_METRICS: [&str; 14] = [
    "numRecordsIn",
    "numRecordsOut",
    "numBytesIn",
    "numBytesOut",
    "currentInputWatermark",
    "numLateRecordsDropped",
    "Shuffle.Netty.Output.Buffers.outputQueueLength",
    "Shuffle.Netty.Output.Buffers.outPoolUsage",
    "backPressuredTimeMsPerSecond",
    "Shuffle.Netty.Input.Buffers.inPoolUsage",
    "Shuffle.Netty.Input.Buffers.inputExclusiveBuffersUsage",
    "Shuffle.Netty.Input.Buffers.inputFloatingBuffersUsage",
    "busyTimeMsPerSecond",
    "idleTimeMsPerSecond",
];

/// The answer to `ids` (`?get=`) over `available`: without `get`, the list of ids; with it,
/// the values of the known ids asked for, in the order asked (unknown ids are left out, as
/// Flink does).
fn metric_answer(get: &Option<Vec<String>>, available: Vec<(String, String)>) -> HttpResponse {
    let metrics: Vec<Metric> = match get {
        None => available.into_iter().map(|(id, _)| Metric { id, value: None }).collect(),
        Some(ids) => ids
            .iter()
            .filter_map(|id| available.iter().find(|(known, _)| known == id))
            .map(|(id, value)| Metric { id: id.clone(), value: Some(value.clone()) })
            .collect(),
    };
    HttpResponse::ok(&metrics)
}

fn unknown_job(job_id: JobId) -> HttpResponse {
    HttpResponse::error(404, format!("Job {job_id} not found"))
}

impl View<'_> {
    /// The job in the scheduler if it is `job_id`.
    fn current(&self, job_id: JobId) -> Option<&ExecutionGraph> {
        self.job.filter(|job| job.job_id == job_id)
    }

    /// `GET /overview`.
    pub fn overview(&self) -> HttpResponse {
        let mut overview = ClusterOverview {
            taskmanagers: self.resource_manager.task_managers().len() as u32,
            slots_total: self.resource_manager.slots.total() as u32,
            slots_available: self.resource_manager.slots.free() as u32,
            jobs_running: 0,
            jobs_finished: 0,
            jobs_cancelled: 0,
            jobs_failed: 0,
            flink_version: FLINK_VERSION.into(),
            flink_commit: "flinksim".into(),
        };
        for (_, record) in self.history.jobs() {
            match record.status {
                Some(JobStatus::Finished) => overview.jobs_finished += 1,
                Some(JobStatus::Canceled) => overview.jobs_cancelled += 1,
                Some(JobStatus::Failed) => overview.jobs_failed += 1,
                _ => overview.jobs_running += 1,
            }
        }
        HttpResponse::ok(&overview)
    }

    /// `GET /jobs`.
    pub fn jobs(&self) -> HttpResponse {
        let jobs = self
            .history
            .jobs()
            .map(|(id, record)| JobIdWithStatus {
                id: id.to_string(),
                status: record.status.unwrap_or(JobStatus::Initializing).name().into(),
            })
            .collect();
        HttpResponse::ok(&JobsList { jobs })
    }

    /// `GET /jobs/<id>`.
    pub fn job(&self, job_id: JobId) -> HttpResponse {
        match self.details(job_id) {
            Some(details) => HttpResponse::ok(&details),
            None => unknown_job(job_id),
        }
    }

    /// The details of `job_id`: live while it is in the scheduler, archived after.
    pub fn details(&self, job_id: JobId) -> Option<JobDetails> {
        let record = self.history.get(job_id)?;
        let Some(job) = self.current(job_id) else { return record.archived.clone() };
        let end_time = record.end_ms.unwrap_or(-1);
        let duration = record.end_ms.unwrap_or(self.now_ms) - record.submitted_ms;
        let timestamps = JOB_STATUSES
            .iter()
            .map(|status| (status.name().to_owned(), record.status_ms.get(status).copied().unwrap_or(0)))
            .collect();
        let running_since = record.status_ms.get(&JobStatus::Running).copied();
        let mut status_counts: BTreeMap<String, u32> = EXECUTION_STATES.iter().map(|s| (s.name().to_owned(), 0)).collect();
        let vertices = job
            .vertices()
            .iter()
            .map(|&vertex| {
                let executions: Vec<_> = job.executions.iter().filter(|((v, _), _)| *v == vertex).map(|(_, e)| e).collect();
                let mut tasks: BTreeMap<String, u32> = EXECUTION_STATES.iter().map(|s| (s.name().to_owned(), 0)).collect();
                for execution in &executions {
                    *tasks.entry(execution.state.name().to_owned()).or_default() += 1;
                    *status_counts.entry(execution.state.name().to_owned()).or_default() += 1;
                }
                // The least advanced state of its subtasks, as Flink's aggregate does.
                let status = executions.iter().map(|e| e.state).min().unwrap_or(ExecutionState::Created);
                let start_time = running_since.unwrap_or(-1);
                let vertex_end = if executions.iter().all(|e| e.state.is_terminal()) { record.end_ms } else { None };
                let metrics = self.vertex_io(job, vertex);
                VertexDetails {
                    id: vertex_id(vertex),
                    name: vertex.name().into(),
                    max_parallelism: job.max_parallelism,
                    parallelism: job.parallelism(),
                    status: status.name().into(),
                    start_time,
                    end_time: vertex_end.unwrap_or(-1),
                    duration: if start_time < 0 { -1 } else { vertex_end.unwrap_or(self.now_ms) - start_time },
                    tasks,
                    metrics,
                }
            })
            .collect();
        Some(JobDetails {
            jid: job_id.to_string(),
            name: JOB_NAME.into(),
            is_stoppable: false,
            state: job.status.name().into(),
            start_time: record.submitted_ms,
            end_time,
            duration,
            max_parallelism: -1,
            now: self.now_ms,
            timestamps,
            vertices,
            status_counts,
            plan: plan(job_id, job.parallelism(), job.vertices()),
        })
    }

    /// A vertex's I/O counters, summed over the subtasks that reported.
    fn vertex_io(&self, job: &ExecutionGraph, vertex: Vertex) -> VertexIoMetrics {
        let samples: Vec<_> = self.samples(job, vertex).collect();
        let complete = samples.iter().all(|(_, s)| s.is_some());
        let sum = |f: fn(&TaskMetricsReport) -> u64| samples.iter().filter_map(|(_, s)| s.map(|s| f(&s.report))).sum();
        // Records crossing the job's edges: the source's come from Kafka and the sink's go to
        // Kafka, which the vertex metrics leave out, as Flink's do.
        let read_records = if vertex == Vertex::Source { 0 } else { sum(|r| r.records_in) };
        let write_records = if vertex == Vertex::Sink { 0 } else { sum(|r| r.records_out) };
        VertexIoMetrics {
            read_bytes: sum(|r| r.bytes_in),
            read_bytes_complete: complete,
            write_bytes: sum(|r| r.bytes_out),
            write_bytes_complete: complete,
            read_records,
            read_records_complete: complete,
            write_records,
            write_records_complete: complete,
        }
    }

    /// Each subtask of `vertex` with its latest sample, if it reported one.
    fn samples<'s>(&'s self, job: &'s ExecutionGraph, vertex: Vertex) -> impl Iterator<Item = (u32, Option<&'s Sample>)> + 's {
        job.executions
            .iter()
            .filter(move |((v, _), _)| *v == vertex)
            .map(|((_, subtask), execution)| (*subtask, self.metrics.get(execution.attempt_id)))
    }

    /// `GET /jobs/<id>/metrics`.
    pub fn job_metrics(&self, job_id: JobId, get: &Option<Vec<String>>) -> HttpResponse {
        if self.history.get(job_id).is_none() {
            return unknown_job(job_id);
        }
        // A job no longer in the scheduler has no live metrics: Flink answers an empty list.
        let Some(job) = self.current(job_id) else { return HttpResponse::ok(&Vec::<Metric>::new()) };
        let stats = self.checkpoints.stats;
        let record = self.history.get(job_id).expect("checked above");
        let values = [
            stats.last_size.to_string(),
            stats.last_duration.as_millis().to_string(),
            stats.completed.to_string(),
            stats.failed.to_string(),
            record.checkpoints.counts.in_progress.to_string(),
            record.checkpoints.counts.total.to_string(),
            job.restarts.to_string(),
        ];
        let available = JOB_METRICS.iter().map(|id| id.to_string()).zip(values).collect();
        metric_answer(get, available)
    }

    /// `GET /jobs/<id>/vertices/<vid>/metrics`.
    pub fn vertex_metrics(&self, job_id: JobId, vertex: Vertex, get: &Option<Vec<String>>) -> HttpResponse {
        if self.history.get(job_id).is_none() {
            return unknown_job(job_id);
        }
        let Some(job) = self.current(job_id) else { return HttpResponse::ok(&Vec::<Metric>::new()) };
        let mut available = Vec::new();
        for (subtask, sample) in self.samples(job, vertex) {
            let Some(sample) = sample else { continue };
            let r = &sample.report;
            let usage = |used: u32, all: u32| if all == 0 { 0.0 } else { used as f64 / all as f64 };
            let per_second = |ratio: f64| ((ratio * 1000.0).round() as u64).to_string();
            let values = [
                r.records_in.to_string(),
                r.records_out.to_string(),
                r.bytes_in.to_string(),
                r.bytes_out.to_string(),
                r.current_input_watermark.unwrap_or(i64::MIN).to_string(),
                r.late_records_dropped.to_string(),
                r.output_queue_length.to_string(),
                usage(r.output_queue_length, r.output_pool_size).to_string(),
                per_second(sample.back_pressure_ratio),
                usage(
                    r.input_exclusive_buffers_used + r.input_floating_buffers_used,
                    r.input_exclusive_buffers + r.input_floating_buffers,
                )
                .to_string(),
                usage(r.input_exclusive_buffers_used, r.input_exclusive_buffers).to_string(),
                usage(r.input_floating_buffers_used, r.input_floating_buffers).to_string(),
                per_second(sample.busy_ratio),
                per_second(sample.idle_ratio()),
            ];
            for (id, value) in SUBTASK_METRICS.iter().zip(values) {
                if *id == "numLateRecordsDropped" && vertex != Vertex::Counter {
                    continue; // only the window operator has it
                }
                available.push((format!("{subtask}.{id}"), value));
            }
        }
        metric_answer(get, available)
    }

    /// `GET /jobs/<id>/vertices/<vid>/backpressure`.
    pub fn backpressure(&self, job_id: JobId, vertex: Vertex) -> HttpResponse {
        if self.history.get(job_id).is_none() {
            return unknown_job(job_id);
        }
        let job = self.current(job_id);
        let mut subtasks = Vec::new();
        let mut end_timestamp = 0;
        if let Some(job) = job {
            for ((v, subtask), execution) in &job.executions {
                if *v != vertex {
                    continue;
                }
                let Some(sample) = self.metrics.get(execution.attempt_id) else { continue };
                end_timestamp = end_timestamp.max(sample.at_ms);
                let ratio = sample.back_pressure_ratio;
                subtasks.push(SubtaskBackpressure {
                    subtask: *subtask,
                    attempt_number: execution.attempt_number,
                    backpressure_level: backpressure_level(ratio).into(),
                    ratio,
                    idle_ratio: sample.idle_ratio(),
                    busy_ratio: sample.busy_ratio,
                });
            }
        }
        let worst = subtasks.iter().map(|s| s.ratio).fold(0.0, f64::max);
        let info = BackpressureInfo {
            status: if subtasks.is_empty() { "deprecated".into() } else { "ok".into() },
            backpressure_level: backpressure_level(worst).into(),
            end_timestamp,
            subtasks,
        };
        HttpResponse::ok(&info)
    }

    /// `GET /jobs/<id>/checkpoints`.
    pub fn checkpoints(&self, job_id: JobId) -> HttpResponse {
        let Some(record) = self.history.get(job_id) else { return unknown_job(job_id) };
        let job = self.current(job_id);
        let pending = job.and_then(|_| self.checkpoints.pending_progress());
        let subtasks = job.map_or(0, |job| job.parallelism() * job.vertices().len() as u32);
        HttpResponse::ok(&record.checkpoints.statistics(pending, subtasks))
    }

    /// `GET /jobs/<id>/savepoints/<trigger-id>`, from the status the coordinator keeps.
    pub fn savepoint_status(&self, job_id: JobId, status: Option<SavepointStatus>) -> HttpResponse {
        if self.history.get(job_id).is_none() {
            return unknown_job(job_id);
        }
        let Some(status) = status else {
            return HttpResponse::error(404, "There is no savepoint operation with the given trigger id.");
        };
        let (id, operation) = match status {
            SavepointStatus::InProgress => ("IN_PROGRESS", None),
            SavepointStatus::Completed { location } => {
                ("COMPLETED", Some(SavepointOperation::Location(format!("file:{location}"))))
            }
            SavepointStatus::Failed { cause } => (
                "COMPLETED",
                Some(SavepointOperation::FailureCause(FailureCause {
                    class: "org.apache.flink.runtime.checkpoint.CheckpointException".into(),
                    stack_trace: cause,
                })),
            ),
        };
        HttpResponse::ok(&AsynchronousOperationResult { status: QueueStatus { id: id.into() }, operation })
    }
}

/// The job graph as `plan` shows it.
fn plan(job_id: JobId, parallelism: u32, vertices: &[Vertex]) -> Plan {
    let backpressure = vertices.contains(&Vertex::Backpressure);
    let nodes = vertices
        .iter()
        .map(|&vertex| PlanNode {
            id: vertex_id(vertex),
            parallelism,
            operator: String::new(),
            operator_strategy: String::new(),
            description: vertex.name().into(),
            inputs: vertex
                .upstream(backpressure)
                .zip(vertex.input_ship_strategy())
                .map(|(upstream, strategy)| PlanInput {
                    num: 0,
                    id: vertex_id(upstream),
                    ship_strategy: strategy.name().into(),
                    exchange: "pipelined_bounded".into(),
                })
                .into_iter()
                .collect(),
            optimizer_properties: BTreeMap::new(),
        })
        .collect();
    Plan { jid: job_id.to_string(), name: JOB_NAME.into(), nodes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(attempt: u128, back_pressured_ms: u64) -> TaskMetricsReport {
        busy_report(attempt, back_pressured_ms, 0)
    }

    fn busy_report(attempt: u128, back_pressured_ms: u64, busy_ms: u64) -> TaskMetricsReport {
        TaskMetricsReport {
            attempt_id: ExecutionAttemptId(attempt),
            records_in: 0,
            records_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            late_records_dropped: 0,
            current_input_watermark: None,
            output_queue_length: 0,
            output_pool_size: 4,
            input_exclusive_buffers_used: 0,
            input_exclusive_buffers: 0,
            input_floating_buffers_used: 0,
            input_floating_buffers: 0,
            back_pressured_ms,
            busy_ms,
        }
    }

    #[test]
    fn busy_blocked_and_idle_shares_split_the_time_between_two_reports() {
        let mut store = MetricStore::default();
        store.update(vec![busy_report(1, 0, 0)], 1000);
        store.update(vec![busy_report(1, 200, 700)], 2000);
        let sample = store.get(ExecutionAttemptId(1)).unwrap();
        assert_eq!((sample.back_pressure_ratio, sample.busy_ratio), (0.2, 0.7));
        assert!((sample.idle_ratio() - 0.1).abs() < 1e-9, "{}", sample.idle_ratio());
        // Rounded to ms, busy and blocked may add up to more than the interval: never over 1.
        store.update(vec![busy_report(1, 700, 1201)], 3000);
        let sample = store.get(ExecutionAttemptId(1)).unwrap();
        assert_eq!((sample.back_pressure_ratio, sample.busy_ratio, sample.idle_ratio()), (0.5, 0.5, 0.0));
    }

    #[test]
    fn the_back_pressure_ratio_is_the_blocked_share_between_two_reports() {
        let mut store = MetricStore::default();
        store.update(vec![report(1, 0)], 1000);
        assert_eq!(store.get(ExecutionAttemptId(1)).unwrap().back_pressure_ratio, 0.0);
        store.update(vec![report(1, 600)], 2000);
        assert_eq!(store.get(ExecutionAttemptId(1)).unwrap().back_pressure_ratio, 0.6);
        store.update(vec![report(1, 650)], 3000);
        assert_eq!(store.get(ExecutionAttemptId(1)).unwrap().back_pressure_ratio, 0.05);
        store.retain(|attempt| attempt != ExecutionAttemptId(1));
        assert!(store.get(ExecutionAttemptId(1)).is_none());
    }

    #[test]
    fn the_checkpoint_history_counts_and_keeps_the_last_ten() {
        let job = JobId(7);
        let mut history = JobHistory::default();
        history.observe(&Event::JobSubmitted { job_id: job }, 1000);
        for id in 1..=12u64 {
            let at = 1000 * id as i64;
            history.observe(&Event::CheckpointTriggered { job_id: job, checkpoint_id: id, timestamp_ms: at }, at);
            if id == 5 {
                let reason = crate::trace::CheckpointAbortReason::Expired;
                history.observe(&Event::CheckpointAborted { job_id: job, checkpoint_id: id, reason }, at + 10);
            } else {
                let completed = Event::CheckpointCompleted {
                    job_id: job,
                    checkpoint_id: id,
                    size_bytes: 100 * id,
                    duration: std::time::Duration::from_millis(20),
                    finalization: std::time::Duration::ZERO,
                };
                history.observe(&completed, at + 20);
            }
        }
        let stats = history.get(job).unwrap().checkpoints.statistics(None, 8);
        assert_eq!(stats.counts, CheckpointCounts { restored: 0, total: 12, in_progress: 0, completed: 11, failed: 1 });
        assert_eq!(stats.history.len(), CHECKPOINT_HISTORY);
        assert_eq!(stats.history[0].id, 12, "newest first");
        assert_eq!(stats.latest.failed.as_ref().map(|f| f.id), Some(5));
        assert_eq!(stats.latest.completed.as_ref().map(|c| (c.id, c.state_size)), Some((12, 1200)));
        assert_eq!(stats.summary.state_size, MinMaxAvg { min: 100, max: 1200, avg: 663 });
        assert_eq!(stats.summary.end_to_end_duration.max, 20);
        assert_eq!((stats.history[0].num_subtasks, stats.history[0].num_acknowledged_subtasks), (8, 8));
    }

    #[test]
    fn metrics_answer_the_ids_asked_for_in_order_and_leave_out_unknown_ones() {
        let available = vec![("a".to_owned(), "1".to_owned()), ("b".to_owned(), "2".to_owned())];
        let listed = metric_answer(&None, available.clone());
        assert_eq!(listed.body, serde_json::json!([{"id": "a"}, {"id": "b"}]));
        let asked = metric_answer(&Some(vec!["b".into(), "zzz".into(), "a".into()]), available);
        assert_eq!(asked.body, serde_json::json!([{"id": "b", "value": "2"}, {"id": "a", "value": "1"}]));
    }
}
