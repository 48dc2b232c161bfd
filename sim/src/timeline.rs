//! The run's story in a few lines, read off the trace: steps, failure detection, the restart
//! cycle, re-registration, the checkpoint restored, and the catch-up (docs/model/cluster.md#failure-detection-and-restarts); a
//! graceful stop and its disconnects, a JobManager that came back without its job, and
//! transactions the broker aborted; savepoints of `flink stop`, the jobs restored from them, and
//! submissions refused. Typed events are matched by value, the steps too ([`Event::StepRun`]).

use std::collections::BTreeMap;

use flinksim_engine::protocol::job::Vertex;
use flinksim_engine::protocol::states::{ExecutionState, JobStatus};
use flinksim_engine::protocol::rest_api::CurlOutcome;
use flinksim_engine::trace::{Event, Fault, SinkAbort, TraceEvent};

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moment {
    /// Simulated time, in ms since the start.
    pub at_ms: u64,
    /// What happened.
    pub what: String,
}

/// Simulated time as the reports print it: `m:ss.mmm` since the start.
pub fn clock(at: std::time::Duration) -> String {
    let ms = at.as_millis();
    format!("{}:{:02}.{:03}", ms / 60_000, ms / 1000 % 60, ms % 1000)
}

fn at_ms(event: &TraceEvent) -> u64 {
    event.at.as_millis() as u64
}

/// The typed events' part of the story.
fn typed_moment(event: &TraceEvent, state: &mut Story) -> Option<String> {
    let node = event.node.as_str();
    Some(match &event.event {
        Event::ShutdownStarted { grace } => {
            format!("{node}: SIGTERM, shutting down gracefully (SIGKILL after {} s)", grace.as_secs())
        }
        Event::ShutdownCompleted => {
            let took = state.fault_at.map(|f| format!(" ({:.3} s after SIGTERM)", (at_ms(event) - f) as f64 / 1000.0));
            format!("{node}: shut down by itself{}", took.unwrap_or_default())
        }
        Event::TaskManagerDisconnected { name } => {
            let after = state.fault_at.map(|f| format!(" ({:.3} s after the stop)", (at_ms(event) - f) as f64 / 1000.0));
            format!(
                "detected: {name} disconnected while shutting down: its tasks fail at once, no heartbeat timeout{}",
                after.unwrap_or_default()
            )
        }
        Event::JobManagerDisconnected { shutting_down: true, .. } => {
            format!("{node}: the JobManager said goodbye: tasks dropped at once, registering again")
        }
        Event::JobManagerDisconnected { shutting_down: false, .. } => {
            format!("{node}: told by the JobManager it was declared lost: tasks dropped at once, registering again")
        }
        Event::JobManagerStarted { .. } => {
            let had_job = state.job_submitted;
            state.jobmanager_starts += 1;
            if state.jobmanager_starts == 1 {
                return None;
            }
            state.job_submitted = false;
            if had_job {
                "jobmanager started again WITHOUT the job: the playground runs without HA, so the job \
                 is gone until `flink run` submits it again"
                    .to_owned()
            } else {
                "jobmanager started again".to_owned()
            }
        }
        Event::JobSubmitted { job_id } => {
            state.job_submitted = true;
            if at_ms(event) <= 60_000 {
                return None;
            }
            if state.restored_jobs.contains(job_id) {
                format!("job submitted again as {job_id}, from a savepoint")
            } else {
                format!("job submitted again as {job_id}: a fresh start (no checkpoint to restore)")
            }
        }
        Event::SavepointTriggered { checkpoint_id, drain, .. } => {
            let drain = if *drain { " --drain: every open window fires first" } else { "" };
            format!("flink stop{drain}: savepoint {checkpoint_id} triggered, sources hold after its barrier")
        }
        Event::SavepointCompleted { location, .. } => format!("savepoint completed at {location}: the job FINISHES"),
        Event::SavepointFailed { cause, .. } => format!("savepoint FAILED ({cause}): the job keeps running"),
        Event::RestoringFromSavepoint { job_id, checkpoint_id, savepoint_job_id, location, .. } => {
            // A job cycling for slots restores on every restart: the first one tells it.
            if !state.restore_told.insert(*job_id) {
                return None;
            }
            format!("job {job_id} restores savepoint {checkpoint_id} of job {savepoint_job_id} ({location})")
        }
        Event::SubmissionRejected { refused } => format!("submission REFUSED: {refused}"),
        // A REST request that got no answer is a fault the user sees; answers are in the trace.
        Event::CurlExchange { line, outcome: CurlOutcome::Failed { message, .. }, .. } => {
            format!("`{line}` got no answer: {message}")
        }
        Event::CurlExchange { .. } => return None,
        Event::JobStatusChanged { job_id, to: JobStatus::Finished, .. } => format!("job {job_id} FINISHED"),
        Event::JobStatusChanged { job_id, to: JobStatus::Canceled, .. } => format!("job {job_id} CANCELED"),
        Event::TransactionTimedOut { transactional_id, timeout } => format!(
            "kafka aborted transaction {transactional_id}: open longer than its transaction.timeout.ms ({} s)",
            timeout.as_secs()
        ),
        Event::TransactionLost { transaction, checkpoint_id, cause } => format!(
            "{node}: transaction {} recorded by checkpoint {checkpoint_id} could not be \
             committed: the broker aborted it{}; its results are lost",
            transaction.transactional_id,
            cause.map(|c| format!(" after {c}")).unwrap_or_default()
        ),
        Event::LateDropped { task, window_start_ms, watermark_ms, dropped_so_far, .. } => {
            // One moment per window: its first drop.
            if !state.late_windows.insert(*window_start_ms) {
                return None;
            }
            let shown = state.late_windows.len();
            if shown > LATE_WINDOWS_SHOWN {
                return None;
            }
            format!(
                "late drops: {task} drops events of window {} s, which fired already (watermark {watermark_ms}; numLateRecordsDropped={dropped_so_far}){}",
                window_start_ms / 1000,
                if shown == LATE_WINDOWS_SHOWN { "; later windows with late drops are counted below" } else { "" }
            )
        }
        Event::PartitionIdle { task, partition, idle_after } => format!(
            "{task}: partition {partition} idle (no record for {} s): its watermark leaves the minimum",
            idle_after.as_secs()
        ),
        Event::RestoreFailed { task, checkpoint_id, reason } => {
            format!("restore FAILED: {task} could not read checkpoint {checkpoint_id} ({reason}); the job fails again")
        }
        Event::TransactionsAborted { task, transactional_ids, why: SinkAbort::Lingering { .. } } => format!(
            "{task} aborted {} lingering transactions its ids had left open",
            transactional_ids.len()
        ),
        Event::Backpressure { task, blocked: true, .. } => {
            format!("backpressure rising: {task} waits for credit, its output is full")
        }
        Event::Backpressure { task, blocked: false, .. } => {
            format!("backpressure falling: {task} writes freely again")
        }
        Event::Log(_)
        | Event::ProcessingTimeWindowFired { .. }
        | Event::TransactionBegun { .. }
        | Event::TransactionCommitted { .. }
        | Event::TransactionsAborted { why: SinkAbort::Cancelled, .. }
        | Event::StepRun { .. }
        | Event::JobStatusChanged { .. }
        | Event::JobFailed { .. }
        | Event::ExecutionStateChanged { .. }
        | Event::TaskManagerRegistered { .. }
        | Event::TaskManagerLost { .. }
        | Event::Restoring { .. }
        | Event::CheckpointTriggered { .. }
        | Event::CheckpointNotTriggered { .. }
        | Event::CheckpointCompleted { .. }
        | Event::CheckpointAborted { .. }
        | Event::ResultWritten { .. } => return None,
    })
}

/// How many windows with late drops the timeline shows one by one.
const LATE_WINDOWS_SHOWN: usize = 5;

/// What the story remembers between events.
#[derive(Default)]
struct Story {
    /// Windows with late drops so far, by start.
    late_windows: std::collections::BTreeSet<i64>,
    fault_at: Option<u64>,
    job_submitted: bool,
    jobmanager_starts: u32,
    /// Jobs submitted with `-s` (their restore follows their submission in the trace).
    restored_jobs: std::collections::BTreeSet<flinksim_engine::protocol::ids::JobId>,
    /// Jobs whose restore from a savepoint is told.
    restore_told: std::collections::BTreeSet<flinksim_engine::protocol::ids::JobId>,
}

/// The timeline of a run, from its trace.
pub fn timeline(trace: &[TraceEvent]) -> Vec<Moment> {
    let mut moments = Vec::new();
    let mut push = |at_ms, what: String| moments.push(Moment { at_ms, what });
    let restored_jobs = trace
        .iter()
        .filter_map(|e| match &e.event {
            Event::RestoringFromSavepoint { job_id, .. } => Some(*job_id),
            _ => None,
        })
        .collect();
    let mut story = Story { restored_jobs, ..Story::default() };
    let mut registered_once = BTreeMap::new();
    let mut restarts = 0u32;
    let mut no_resource = 0u32;
    let mut cycle_start: Option<u64> = None;
    let mut scheduled_reported = false;
    let mut restoring: Option<(u64, String)> = None;
    let mut recovered_at: Option<u64> = None;
    for event in trace {
        let at_ms = at_ms(event);
        if let Some(what) = typed_moment(event, &mut story) {
            push(at_ms, what);
            continue;
        }
        let on_jobmanager = event.node == "jobmanager";
        match &event.event {
            step @ Event::StepRun { applied, .. } => {
                // A degraded link is not something the JobManager detects.
                if applied.iter().any(|f| matches!(f, Fault::NodeDown { .. } | Fault::Partition { .. })) {
                    story.fault_at = Some(at_ms);
                }
                push(at_ms, step.to_string());
            }
            lost @ Event::TaskManagerLost { heartbeat_timed_out: true, .. } => {
                let after = story.fault_at.map(|k| format!(" ({:.1} s after the fault)", (at_ms - k) as f64 / 1000.0));
                push(at_ms, format!("detected: {lost}{}", after.unwrap_or_default()));
            }
            Event::JobStatusChanged { from: JobStatus::Running, to: JobStatus::Restarting, .. } => {
                restarts += 1;
                if cycle_start.is_none() {
                    cycle_start = Some(at_ms);
                    scheduled_reported = false;
                    recovered_at = None;
                    push(at_ms, "job RUNNING → RESTARTING (fixed-delay restart strategy, 1 s)".into());
                }
            }
            Event::JobStatusChanged { from: JobStatus::Running, to: JobStatus::Failing, .. } => {
                push(at_ms, "job RUNNING → FAILING → FAILED (no restart strategy without checkpointing)".into());
            }
            Event::JobFailed { no_resource_available: true, .. } => no_resource += 1,
            Event::ExecutionStateChanged { from: ExecutionState::Created, to: ExecutionState::Scheduled, .. }
                if on_jobmanager && cycle_start.is_some() && !scheduled_reported =>
            {
                scheduled_reported = true;
                push(at_ms, "tasks SCHEDULED, waiting for slots (the job shows RUNNING)".into());
            }
            Event::TaskManagerRegistered { name, .. } => {
                let count = registered_once.entry(name.clone()).or_insert(0);
                *count += 1;
                if *count > 1 {
                    push(at_ms, format!("re-registration: {name}"));
                }
            }
            Event::Restoring { checkpoint_id, .. } => restoring = Some((at_ms, checkpoint_id.to_string())),
            Event::ExecutionStateChanged { task, from: ExecutionState::Initializing, to: ExecutionState::Running, .. }
                if on_jobmanager && cycle_start.is_some() && recovered_at.is_none() && is_source(task) =>
            {
                recovered_at = Some(at_ms);
                if restarts > 1 {
                    push(cycle_start.unwrap(), format!(
                        "restart cycle: {restarts} restarts, {no_resource} of them NoResourceAvailableException"
                    ));
                }
                if let Some((_, checkpoint)) = &restoring {
                    push(at_ms, format!("restore from checkpoint {checkpoint}: tasks RUNNING again"));
                }
                cycle_start = None;
                restarts = 0;
                no_resource = 0;
            }
            _ => {}
        }
    }
    // A cycle that never ended: say so, and why, when it was for want of slots.
    if let Some(start) = cycle_start {
        let why = if no_resource > 0 {
            format!(
                ", {no_resource} of them NoResourceAvailableException: the TaskManagers offer fewer slots than the job's parallelism needs"
            )
        } else {
            String::new()
        };
        push(start, format!("restart cycle: {restarts} restarts{why}; the job never ran again"));
    }
    // Catch-up: results per minute after the recovery, against the steady 24 per minute.
    if let Some(recovered) = recovered_at_any(trace) {
        let mut per_minute: BTreeMap<u64, u32> = BTreeMap::new();
        for event in trace {
            let at_ms = at_ms(event);
            if at_ms >= recovered && matches!(event.event, Event::ResultWritten { .. }) {
                *per_minute.entry((at_ms - recovered) / 60_000).or_default() += 1;
            }
        }
        if let Some((_, first)) = per_minute.iter().next() {
            let after: Vec<String> = per_minute.values().skip(1).take(3).map(u32::to_string).collect();
            moments.push(Moment {
                at_ms: recovered,
                what: format!(
                    "catch-up: {first} results in the first minute after recovery (steady state: 24 per minute); then {}",
                    if after.is_empty() { "-".into() } else { after.join(", ") }
                ),
            });
        }
    }
    if story.late_windows.len() > LATE_WINDOWS_SHOWN {
        let last = trace.iter().rev().find(|e| matches!(e.event, Event::LateDropped { .. })).map(at_ms);
        moments.push(Moment {
            at_ms: last.unwrap_or_default(),
            what: format!("late drops in {} more windows", story.late_windows.len() - LATE_WINDOWS_SHOWN),
        });
    }
    moments.sort_by_key(|m| m.at_ms);
    moments
}

/// When the sources ran again after the last failure, if there was one.
fn recovered_at_any(trace: &[TraceEvent]) -> Option<u64> {
    let mut failed = false;
    let mut recovered = None;
    for event in trace.iter().filter(|e| e.node == "jobmanager") {
        match &event.event {
            Event::JobStatusChanged { to: JobStatus::Restarting | JobStatus::Failing, .. } => failed = true,
            Event::ExecutionStateChanged { task, from: ExecutionState::Initializing, to: ExecutionState::Running, .. }
                if failed && is_source(task) =>
            {
                recovered = Some(at_ms(event));
                failed = false;
            }
            _ => {}
        }
    }
    recovered
}

/// Whether a task display name is one of the source's subtasks.
fn is_source(task: &str) -> bool {
    task.starts_with(Vertex::Source.name())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn typed(at_us: u64, node: &str, event: Event) -> TraceEvent {
        TraceEvent { at: Duration::from_micros(at_us), node: node.into(), event }
    }

    /// A step that takes `node` down (`applied`) or brings it back.
    fn step(at_us: u64, command: &str, node: &str, applied: bool) -> TraceEvent {
        let fault = vec![Fault::NodeDown { node: node.into() }];
        let (applied, healed) = if applied { (fault, vec![]) } else { (vec![], fault) };
        typed(at_us, "sim", Event::StepRun { command: command.into(), applied, healed, removed: vec![] })
    }

    #[test]
    fn a_kill_and_recovery_read_as_a_story() {
        use flinksim_engine::protocol::ids::{ExecutionAttemptId, JobId, ResourceId};
        let job_id = JobId(1);
        let jm = |at, event| typed(at, "jobmanager", event);
        let job = |at, from, to| jm(at, Event::JobStatusChanged { job_id, from, to });
        let task = |at, name: &str, from, to| {
            jm(at, Event::ExecutionStateChanged { task: name.into(), attempt_id: ExecutionAttemptId(2), from, to })
        };
        let registered = |at, id| jm(at, Event::TaskManagerRegistered { resource_id: ResourceId(id), name: "taskmanager-1".into() });
        let no_slots = Event::JobFailed { job_id, cause: "NoResourceAvailableException: …".into(), no_resource_available: true };
        let lost = Event::TaskManagerLost { resource_id: ResourceId(3), name: "taskmanager-1".into(), heartbeat_timed_out: true, how: "timed out".into() };
        let restoring = Event::Restoring { job_id, checkpoint_id: 119, timestamp_ms: 119_175, directory: "/x".into() };
        let statistics = flinksim_engine::protocol::click_event::ClickEventStatistics {
            window_start_ms: 165_000,
            window_end_ms: 180_000,
            page: "/help".into(),
            count: 1000,
        };
        let written = Event::ResultWritten { task: "ClickEventStatistics Sink (1/2)".into(), statistics, transaction: None };
        let trace = vec![
            registered(10_000, 3),
            step(120_000_000, "docker-compose kill taskmanager", "taskmanager-1", true),
            jm(125_002_002, lost),
            job(125_002_002, JobStatus::Running, JobStatus::Restarting),
            task(126_002_002, "ClickEvent Source (1/2)", ExecutionState::Created, ExecutionState::Scheduled),
            jm(126_002_002, no_slots),
            job(126_002_002, JobStatus::Running, JobStatus::Restarting),
            step(180_000_000, "docker-compose up -d taskmanager", "taskmanager-1", false),
            registered(180_012_477, 4),
            jm(181_002_013, restoring),
            task(181_050_000, "ClickEvent Source (1/2)", ExecutionState::Initializing, ExecutionState::Running),
            typed(181_241_298, "taskmanager-1", written),
        ];
        let story: Vec<String> = timeline(&trace).into_iter().map(|m| m.what).collect();
        assert_eq!(story[0], "step: docker-compose kill taskmanager");
        assert!(story[1].starts_with("detected: Heartbeat") && story[1].ends_with("(5.0 s after the fault)"), "{story:?}");
        assert!(story.iter().any(|s| s == "restart cycle: 2 restarts, 1 of them NoResourceAvailableException"));
        assert!(story.iter().any(|s| s == "re-registration: taskmanager-1"));
        assert!(story.iter().any(|s| s == "restore from checkpoint 119: tasks RUNNING again"));
        assert!(story.iter().any(|s| s.starts_with("catch-up: 1 results")));
    }

    #[test]
    fn a_jobmanager_back_without_its_job_is_told() {
        let address = "10.0.0.1:6123".parse().unwrap();
        let started = |at| typed(at, "jobmanager", Event::JobManagerStarted { address, session: "s".into() });
        let job_id = flinksim_engine::protocol::ids::JobId(1);
        let trace = vec![
            started(0),
            typed(1_000_000, "jobmanager", Event::JobSubmitted { job_id }),
            step(120_000_000, "docker-compose kill jobmanager", "jobmanager", true),
            step(180_000_000, "docker-compose up -d jobmanager", "jobmanager", false),
            started(180_000_000),
        ];
        let story: Vec<String> = timeline(&trace).into_iter().map(|m| m.what).collect();
        assert!(story.last().unwrap().starts_with("jobmanager started again WITHOUT the job"), "{story:?}");
        assert_eq!(story.len(), 3, "the first start and submission are not news: {story:?}");
    }

    #[test]
    fn a_graceful_stop_shows_the_disconnect_at_once() {
        let trace = vec![
            step(120_000_000, "docker-compose stop taskmanager", "taskmanager-1", true),
            typed(120_000_000, "taskmanager-1", Event::ShutdownStarted { grace: Duration::from_secs(10) }),
            typed(120_020_000, "jobmanager", Event::TaskManagerDisconnected { name: "taskmanager-1".into() }),
            typed(120_021_000, "taskmanager-1", Event::ShutdownCompleted),
        ];
        let story: Vec<String> = timeline(&trace).into_iter().map(|m| m.what).collect();
        assert_eq!(story[1], "taskmanager-1: SIGTERM, shutting down gracefully (SIGKILL after 10 s)");
        assert!(story[2].starts_with("detected: taskmanager-1 disconnected") && story[2].ends_with("(0.020 s after the stop)"), "{story:?}");
        assert_eq!(story[3], "taskmanager-1: shut down by itself (0.021 s after SIGTERM)");
    }

    #[test]
    fn a_job_short_of_slots_cycles_to_the_end_and_a_failed_restore_is_told() {
        use flinksim_engine::protocol::ids::JobId;
        let job_id = JobId(1);
        let jm = |at, event| typed(at, "jobmanager", event);
        let restarting = || Event::JobStatusChanged { job_id, from: JobStatus::Running, to: JobStatus::Restarting };
        let no_slots = || Event::JobFailed { job_id, cause: "NoResourceAvailableException: …".into(), no_resource_available: true };
        let restore_failed = Event::RestoreFailed {
            task: "ClickEvent Counter (1/2)".into(),
            checkpoint_id: 7,
            reason: "/chk-7/counter-0 is corrupt".into(),
        };
        let trace = vec![
            jm(60_000_000, restarting()),
            typed(61_000_000, "taskmanager-1", restore_failed),
            jm(62_000_000, no_slots()),
            jm(62_000_000, restarting()),
            jm(63_000_000, no_slots()),
            jm(63_000_000, restarting()),
        ];
        let story: Vec<String> = timeline(&trace).into_iter().map(|m| m.what).collect();
        assert!(story.iter().any(|s| s.starts_with("restore FAILED: ClickEvent Counter (1/2) could not read checkpoint 7")), "{story:?}");
        assert!(
            story.iter().any(|s| s == "restart cycle: 3 restarts, 2 of them NoResourceAvailableException: the TaskManagers \
                offer fewer slots than the job's parallelism needs; the job never ran again"),
            "{story:?}"
        );
    }
}
