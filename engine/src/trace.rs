//! Significant events, recorded by the nodes as they happen: every significant event lands in
//! the trace (docs/determinism.md#the-trace). The simulator owns the sink, formats the lines and
//! hashes them.
//!
//! An event is a typed [`Event`]: the timeline, the oracle and the tools match on its values,
//! and its line is its `Display`. Events that nothing reads back yet are [`Event::Log`] lines,
//! worded like Flink's and Kafka's own logs.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::time::Instant;
use smol_str::SmolStr;

use crate::protocol::ids::{ExecutionAttemptId, JobId, ResourceId};
use crate::protocol::cluster::RestoreRefused;
use crate::protocol::states::{ExecutionState, JobStatus};
pub use crate::protocol::kafka::{AbortCause, TransactionHandle};
use crate::protocol::click_event::{ClickEventStatistics, WINDOW_MS};
use crate::timer::Clock;

/// One significant event: when (simulated time since the run started), where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// Simulated time since the start of the run.
    pub at: Duration,
    /// The node that recorded it (`jobmanager`, `taskmanager-1`, ...).
    pub node: String,
    /// What happened.
    pub event: Event,
}

impl TraceEvent {
    /// The event's line, as the trace prints it.
    pub fn message(&self) -> String {
        self.event.to_string()
    }
}

/// A fault a scenario's step puts on the cluster or takes off it: a node down, or a link cut or
/// degraded. Node names are the cluster's (`taskmanager-1`, `kafka`, …).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// The node is down (killed or stopped).
    NodeDown {
        /// The node.
        node: String,
    },
    /// No message passes between the two nodes, either way; `a` sorts before `b`.
    Partition {
        /// One node.
        a: String,
        /// The other.
        b: String,
    },
    /// Messages from one node to the other are delayed or dropped.
    LinkDegraded {
        /// The sender.
        from: String,
        /// The receiver.
        to: String,
    },
}

impl Fault {
    /// A partition between two nodes, in either order.
    pub fn partition(a: &str, b: &str) -> Fault {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        Fault::Partition { a: a.to_owned(), b: b.to_owned() }
    }

    /// Whether the fault takes `node` away from `other` (it is down, or the link between them is cut).
    pub fn separates(&self, node: &str, other: &str) -> bool {
        match self {
            Fault::NodeDown { node: down } => down == node,
            Fault::Partition { a, b } => (a == node && b == other) || (a == other && b == node),
            Fault::LinkDegraded { .. } => false,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::NodeDown { node } => write!(f, "{node} down"),
            Fault::Partition { a, b } => write!(f, "{a} cut from {b}"),
            Fault::LinkDegraded { from, to } => write!(f, "link {from} -> {to} degraded"),
        }
    }
}

/// What happened, as a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A line no tool reads back (yet), worded like the real systems' logs.
    Log(String),
    /// The simulator ran a scenario step: the command as the file writes it, and the faults it
    /// put on the cluster and took off it.
    StepRun {
        /// The step's `run` line, as the scenario prints it.
        command: String,
        /// The faults the step applied (a kill, a stop, a partition, a degraded link).
        applied: Vec<Fault>,
        /// The faults the step healed (an `up`, a `start`, a `scale`, a `heal`, a `clear`),
        /// whether or not they were in place.
        healed: Vec<Fault>,
        /// The TaskManagers a `scale` removed: a reconfiguration, not a fault, so their loss
        /// that follows answers no earlier fault.
        removed: Vec<String>,
    },
    /// The broker aborted a transaction open longer than its timeout.
    TransactionTimedOut {
        /// The transactional id.
        transactional_id: SmolStr,
        /// Its `transaction.timeout.ms`.
        timeout: Duration,
    },
    /// A restored sink could not commit a transaction its checkpoint recorded as pending: the
    /// broker had aborted it, so its results are lost (Flink logs it and goes on).
    TransactionLost {
        /// The transaction (its id, producer id and epoch: the results written in it are lost).
        transaction: TransactionHandle,
        /// The checkpoint that recorded it as pending.
        checkpoint_id: u64,
        /// Why the broker aborted it, if it says.
        cause: Option<AbortCause>,
    },
    /// An exactly-once sink subtask began the transaction whose records checkpoint
    /// `checkpoint_id` will commit.
    TransactionBegun {
        /// The subtask, as Flink displays it.
        task: String,
        /// The transaction.
        transaction: TransactionHandle,
        /// The checkpoint that will commit it.
        checkpoint_id: u64,
    },
    /// An exactly-once sink subtask committed a transaction.
    TransactionCommitted {
        /// The subtask, as Flink displays it.
        task: String,
        /// The transaction.
        transaction: TransactionHandle,
        /// The checkpoint whose completion commits it.
        checkpoint_id: u64,
        /// Whether a restored sink committed it from its checkpoint's record (the job had
        /// failed before the completion notice arrived).
        on_restore: bool,
    },
    /// An exactly-once sink subtask aborted transactions.
    TransactionsAborted {
        /// The subtask, as Flink displays it.
        task: String,
        /// The transactional ids.
        transactional_ids: Vec<SmolStr>,
        /// Why.
        why: SinkAbort,
    },
    /// A task could not read the state of the checkpoint it restores: it fails, and the job
    /// with it.
    RestoreFailed {
        /// The subtask, as Flink displays it.
        task: String,
        /// The checkpoint.
        checkpoint_id: u64,
        /// Why, as the task's error says.
        reason: String,
    },
    /// A node was asked to stop (SIGTERM) and began shutting down.
    ShutdownStarted {
        /// How long it has before it is killed.
        grace: Duration,
    },
    /// A node finished shutting down by itself, within its grace period.
    ShutdownCompleted,
    /// A TaskManager told the JobManager it is going away.
    TaskManagerDisconnected {
        /// Its node name.
        name: String,
    },
    /// The JobManager told a TaskManager it is going away, or that it declared the TaskManager
    /// lost.
    JobManagerDisconnected {
        /// The JobManager's address.
        address: SocketAddr,
        /// Whether the JobManager is shutting down (else it stopped hearing the TaskManager).
        shutting_down: bool,
    },
    /// The JobManager process started; it holds no job (the playground runs without HA).
    JobManagerStarted {
        /// Its address.
        address: SocketAddr,
        /// Its session id, as printed.
        session: String,
    },
    /// The job moved from one state to another (Flink's JobStatus).
    JobStatusChanged {
        /// The job.
        job_id: JobId,
        /// Its state before.
        from: JobStatus,
        /// Its state now.
        to: JobStatus,
    },
    /// The job failed; the restart strategy decides what comes next.
    JobFailed {
        /// The job.
        job_id: JobId,
        /// Why, as Flink words it (`NoResourceAvailableException: …`, a task's failure, …).
        cause: String,
        /// Whether it failed for want of slots (the restart cycle while a TaskManager is missing).
        no_resource_available: bool,
    },
    /// One execution attempt of a subtask moved from one state to another.
    ExecutionStateChanged {
        /// The subtask, as Flink displays it (`ClickEvent Source (1/2)`).
        task: String,
        /// The attempt.
        attempt_id: ExecutionAttemptId,
        /// Its state before.
        from: ExecutionState,
        /// Its state now.
        to: ExecutionState,
    },
    /// The resource manager registered a TaskManager.
    TaskManagerRegistered {
        /// The TaskManager's incarnation.
        resource_id: ResourceId,
        /// Its node name.
        name: String,
    },
    /// The resource manager lost a TaskManager: its slots go, and its tasks fail.
    TaskManagerLost {
        /// The TaskManager's incarnation.
        resource_id: ResourceId,
        /// Its node name.
        name: String,
        /// Whether its heartbeats timed out (otherwise `how` says what happened).
        heartbeat_timed_out: bool,
        /// How, as Flink words it, when not by heartbeat timeout.
        how: String,
    },
    /// The job master restores the job's latest completed checkpoint.
    Restoring {
        /// The job.
        job_id: JobId,
        /// The checkpoint.
        checkpoint_id: u64,
        /// When the checkpoint was triggered (ms of simulated time).
        timestamp_ms: i64,
        /// Where it lies.
        directory: String,
    },
    /// The checkpoint coordinator triggered a checkpoint at the sources.
    CheckpointTriggered {
        /// The job.
        job_id: JobId,
        /// The checkpoint.
        checkpoint_id: u64,
        /// Its timestamp (ms of simulated time), carried by its barriers.
        timestamp_ms: i64,
    },
    /// The checkpoint coordinator could not trigger a checkpoint: some task is not RUNNING.
    CheckpointNotTriggered {
        /// The job.
        job_id: JobId,
    },
    /// Every task acknowledged a checkpoint and its `_metadata` is written: it is the latest.
    CheckpointCompleted {
        /// The job.
        job_id: JobId,
        /// The checkpoint.
        checkpoint_id: u64,
        /// The snapshots' and the metadata's bytes (Flink's `lastCheckpointSize`).
        size_bytes: u64,
        /// From trigger to completion (Flink's `checkpointDuration`).
        duration: Duration,
        /// Writing the metadata (Flink's `finalizationTime`).
        finalization: Duration,
    },
    /// The checkpoint coordinator gave up a pending checkpoint.
    CheckpointAborted {
        /// The job.
        job_id: JobId,
        /// The checkpoint.
        checkpoint_id: u64,
        /// Why.
        reason: CheckpointAbortReason,
    },
    /// A sink subtask wrote one window result to the output topic.
    ResultWritten {
        /// The subtask, as Flink displays it.
        task: String,
        /// The result (the line shows it as the JSON written).
        statistics: ClickEventStatistics,
        /// The exactly-once sink's open transaction it was written in (none at-least-once):
        /// the oracle finds the results a lost transaction held by it.
        transaction: Option<TransactionHandle>,
    },
    /// The dispatcher accepted a job.
    JobSubmitted {
        /// The job's id.
        job_id: JobId,
    },
    /// The checkpoint coordinator triggered the savepoint of `flink stop`.
    SavepointTriggered {
        /// The job.
        job_id: JobId,
        /// The savepoint's checkpoint id.
        checkpoint_id: u64,
        /// Its timestamp (ms of simulated time).
        timestamp_ms: i64,
        /// `--drain`: every open window fires first.
        drain: bool,
    },
    /// Every task acknowledged the savepoint and its `_metadata` is written: the job finishes.
    SavepointCompleted {
        /// The job.
        job_id: JobId,
        /// The savepoint's checkpoint id.
        checkpoint_id: u64,
        /// Its directory.
        location: String,
    },
    /// A savepoint of `flink stop` failed: the job runs on and checkpoints resume.
    SavepointFailed {
        /// The job.
        job_id: JobId,
        /// Why, as Flink words it.
        cause: String,
    },
    /// A job starts from a savepoint (`flink run -s`), or a job restored from one fails over
    /// before its own first checkpoint.
    RestoringFromSavepoint {
        /// The job restoring.
        job_id: JobId,
        /// The savepoint's checkpoint id.
        checkpoint_id: u64,
        /// When the savepoint was triggered (ms of simulated time).
        timestamp_ms: i64,
        /// The job that took it.
        savepoint_job_id: JobId,
        /// Its directory.
        location: String,
    },
    /// A `curl` typed on the client got its answer, or none (docs/model/rest.md#curl).
    CurlExchange {
        /// The command line as typed.
        line: String,
        /// The request sent, variables expanded (`None`: a variable named nothing, so nothing
        /// was sent).
        request: Option<crate::protocol::rest_api::HttpRequest>,
        /// The answer, or curl's failure.
        outcome: crate::protocol::rest_api::CurlOutcome,
    },
    /// The dispatcher refused a submission: its savepoint cannot be restored (missing,
    /// corrupt, not matching the job, above its max parallelism).
    SubmissionRejected {
        /// Why; its text is Flink's error, naming the savepoint's path.
        refused: RestoreRefused,
    },
    /// A Kafka partition went without records for the idleness timeout: its watermark leaves
    /// the minimum, so the other partitions' watermark may run ahead of its backlog.
    PartitionIdle {
        /// The task, as Flink displays it (`Timestamps/Watermarks (1/2)`).
        task: String,
        /// The Kafka partition.
        partition: u32,
        /// How long it had been without records.
        idle_after: Duration,
    },
    /// The window operator dropped late events of one (window, page) (allowed lateness 0: the
    /// window had fired, its watermark had passed): one event per page and window for each
    /// input buffer, so the oracle can account for every dropped event (Flink's
    /// `numLateRecordsDropped`, per window and page).
    LateDropped {
        /// The task, as Flink displays it (`ClickEvent Counter (1/2)`).
        task: String,
        /// The job the task belongs to.
        job_id: JobId,
        /// The latest checkpoint the operator's state covers (the restored one, or the last
        /// barrier it passed; 0 before any): a restore from a checkpoint at or below it reads
        /// these events again, so the drop no longer counts.
        checkpoint_id: u64,
        /// The window's start, ms of event time.
        window_start_ms: i64,
        /// The page.
        page: SmolStr,
        /// Events dropped.
        count: u64,
        /// The operator's watermark then.
        watermark_ms: i64,
        /// The operator's `numLateRecordsDropped` so far.
        dropped_so_far: u64,
    },
    /// A processing-time window fired (a job without `--event-time`, docs/model/job.md#processing-time):
    /// what the oracle needs to check that its events were handled while the window was open.
    ProcessingTimeWindowFired {
        /// The task, as Flink displays it (`ClickEvent Counter (1/2)`).
        task: String,
        /// The job the task belongs to.
        job_id: JobId,
        /// The window's start, ms of the TaskManager's clock.
        window_start_ms: i64,
        /// The page.
        page: SmolStr,
        /// The count emitted.
        count: u64,
        /// Of the count, events restored from a checkpoint (handled by an earlier attempt).
        restored: u64,
        /// When this attempt handled the window's first and last event, ms of the TaskManager's
        /// clock; `None` when every event was restored.
        handled_ms: Option<(i64, i64)>,
        /// When it fired, ms of the TaskManager's clock.
        fired_ms: i64,
    },
    /// A task's output started or stopped waiting for buffers or credit
    /// (docs/model/network.md#credits-and-backpressure): backpressure rising or falling.
    Backpressure {
        /// The task whose output is blocked (the producer), as Flink displays it.
        task: String,
        /// The job the task belongs to.
        job_id: JobId,
        /// `true` when it began waiting, `false` when it could write again.
        blocked: bool,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Log(line) => f.write_str(line),
            Event::StepRun { command, .. } => write!(f, "step: {command}"),
            Event::TransactionTimedOut { transactional_id, timeout } => write!(
                f,
                "aborted transaction {transactional_id} after its timeout ({} ms)",
                timeout.as_millis()
            ),
            Event::TransactionLost { transaction, checkpoint_id, cause } => {
                write!(
                    f,
                    "Unable to commit transaction {} recorded by checkpoint {checkpoint_id}: the \
                     broker aborted it",
                    transaction.transactional_id
                )?;
                if let Some(cause) = cause {
                    write!(f, " after {cause}")?;
                }
                f.write_str("; its records are lost (most likely data loss), continuing")
            }
            Event::TransactionBegun { task, transaction, checkpoint_id } => write!(
                f,
                "{task} began transaction {} (producer {}, epoch {}) for checkpoint {checkpoint_id}",
                transaction.transactional_id, transaction.producer_id, transaction.epoch
            ),
            Event::TransactionCommitted { task, transaction, checkpoint_id, on_restore } => {
                if *on_restore {
                    write!(f, "{task} committed transaction {} recorded by the checkpoint", transaction.transactional_id)
                } else {
                    write!(
                        f,
                        "{task} committed transaction {} of checkpoint {checkpoint_id}",
                        transaction.transactional_id
                    )
                }
            }
            Event::TransactionsAborted { task, transactional_ids, why } => match why {
                SinkAbort::Lingering { .. } => write!(f, "{task} aborted lingering transactions {transactional_ids:?}"),
                SinkAbort::Cancelled => write!(
                    f,
                    "{task} aborted its open transaction {} on cancellation",
                    transactional_ids.first().map(SmolStr::as_str).unwrap_or_default()
                ),
            },
            Event::RestoreFailed { task, checkpoint_id, reason } => {
                write!(f, "{task} failed to restore checkpoint {checkpoint_id}: {reason}")
            }
            Event::ShutdownStarted { grace } => {
                write!(f, "received SIGTERM: shutting down ({} s until SIGKILL)", grace.as_secs())
            }
            Event::ShutdownCompleted => f.write_str("shut down completed"),
            Event::TaskManagerDisconnected { name } => write!(
                f,
                "Disconnect TaskExecutor {name} because: The TaskExecutor is shutting down."
            ),
            Event::JobManagerDisconnected { address, shutting_down: true } => write!(
                f,
                "JobManager {address} disconnected: the JobManager is shutting down."
            ),
            Event::JobManagerDisconnected { address, shutting_down: false } => write!(
                f,
                "JobManager {address} disconnected: it declared this TaskManager lost (heartbeat timed out)."
            ),
            Event::JobManagerStarted { address, session } => {
                write!(f, "JobManager started at {address} as {session}")
            }
            Event::PartitionIdle { task, partition, idle_after } => write!(
                f,
                "{task} marks partition {partition} idle: no record for {} ms",
                idle_after.as_millis()
            ),
            Event::LateDropped { task, window_start_ms, page, count, watermark_ms, dropped_so_far, .. } => {
                write!(
                    f,
                    "{task} dropped {count} late events of {page} in window [{window_start_ms}, {}) \
                     behind watermark {watermark_ms}: numLateRecordsDropped={dropped_so_far}",
                    window_start_ms + WINDOW_MS
                )
            }
            Event::ProcessingTimeWindowFired { task, window_start_ms, page, count, restored, handled_ms, fired_ms, .. } => {
                write!(
                    f,
                    "{task} fired processing-time window [{window_start_ms}, {}) of {page} at {fired_ms}: \
                     count {count}",
                    window_start_ms + WINDOW_MS
                )?;
                if let Some((first, last)) = handled_ms {
                    write!(f, ", handled from {first} to {last}")?;
                }
                if *restored > 0 {
                    write!(f, ", {restored} restored")?;
                }
                Ok(())
            }
            Event::Backpressure { task, blocked, .. } => {
                if *blocked {
                    write!(f, "{task} is backpressured: its output waits for buffers")
                } else {
                    write!(f, "{task} is no longer backpressured")
                }
            }
            Event::JobStatusChanged { job_id, from, to } => write!(
                f,
                "Job {} ({job_id}) switched from state {from} to {to}.",
                crate::protocol::job::JOB_NAME
            ),
            Event::JobFailed { job_id, cause, .. } => {
                write!(f, "Job {} ({job_id}) failed: {cause}", crate::protocol::job::JOB_NAME)
            }
            Event::ExecutionStateChanged { task, attempt_id, from, to } => {
                write!(f, "{task} ({attempt_id}) switched from {from} to {to}.")
            }
            Event::TaskManagerRegistered { resource_id, name } => write!(
                f,
                "Registering TaskManager with ResourceID {resource_id} ({name}) at ResourceManager"
            ),
            Event::TaskManagerLost { resource_id, name, heartbeat_timed_out, how } => {
                if *heartbeat_timed_out {
                    write!(f, "Heartbeat of TaskManager with id {resource_id} timed out. ({name})")
                } else {
                    write!(f, "TaskManager with id {resource_id} {how}. ({name})")
                }
            }
            Event::Restoring { job_id, checkpoint_id, timestamp_ms, directory } => write!(
                f,
                "Restoring job {job_id} from Checkpoint {checkpoint_id} @ {timestamp_ms} for {job_id} located at file:{directory}."
            ),
            Event::CheckpointTriggered { job_id, checkpoint_id, timestamp_ms } => write!(
                f,
                "Triggering checkpoint {checkpoint_id} (type=CHECKPOINT) @ {timestamp_ms} for job {job_id}."
            ),
            Event::CheckpointNotTriggered { job_id } => write!(
                f,
                "Failed to trigger checkpoint for job {job_id} since Not all required tasks are currently running."
            ),
            Event::CheckpointCompleted { job_id, checkpoint_id, size_bytes, duration, finalization } => write!(
                f,
                "Completed checkpoint {checkpoint_id} for job {job_id} ({size_bytes} bytes, \
                 checkpointDuration={} ms, finalizationTime={} ms).",
                duration.as_millis(),
                finalization.as_millis()
            ),
            Event::CheckpointAborted { job_id, checkpoint_id, reason } => {
                write!(f, "Checkpoint {checkpoint_id} of job {job_id} {reason}")
            }
            Event::ResultWritten { task, statistics, .. } => {
                let mut json = Vec::with_capacity(128);
                statistics.write_json(&mut json);
                write!(f, "{task} wrote {}", String::from_utf8_lossy(&json))
            }
            Event::JobSubmitted { job_id } => {
                write!(f, "Received JobGraph submission '{}' ({job_id}).", crate::protocol::job::JOB_NAME)
            }
            Event::SavepointTriggered { job_id, checkpoint_id, timestamp_ms, drain } => {
                let (name, action) = if *drain { ("Terminate", "TERMINATE") } else { ("Suspend", "SUSPEND") };
                write!(
                    f,
                    "Triggering checkpoint {checkpoint_id} (type=SavepointType{{name='{name} Savepoint', \
                     postCheckpointAction={action}, formatType=CANONICAL}}) @ {timestamp_ms} for job {job_id}."
                )
            }
            Event::SavepointCompleted { job_id, checkpoint_id, location } => {
                write!(f, "Completed savepoint {checkpoint_id} for job {job_id} at file:{location}.")
            }
            Event::SavepointFailed { job_id, cause } => {
                write!(f, "Stop-with-savepoint of job {job_id} failed: {cause} The job keeps running.")
            }
            Event::RestoringFromSavepoint { job_id, checkpoint_id, timestamp_ms, savepoint_job_id, location } => write!(
                f,
                "Restoring job {job_id} from Savepoint {checkpoint_id} @ {timestamp_ms} for {savepoint_job_id} located at file:{location}."
            ),
            Event::SubmissionRejected { refused } => write!(f, "Submission rejected: {refused}"),
            Event::CurlExchange { outcome, .. } => write!(f, "{outcome}"),
        }
    }
}

/// Why an exactly-once sink aborted transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkAbort {
    /// On start, what its transactional ids had left open (Flink's KafkaSink does it on every
    /// start, for every subtask index it answers for).
    Lingering {
        /// The checkpoint the sink restored (0: none): a transaction a later checkpoint recorded
        /// that this abort ends was written by a newer attempt, which an older one's late
        /// restore fenced (docs/oracle.md#lost-to-an-older-restore).
        restored_checkpoint: u64,
    },
    /// Cancelled, its open transaction (Flink's KafkaWriter closes it so).
    Cancelled,
}

/// Why the checkpoint coordinator gave up a pending checkpoint; its `Display` ends the trace line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointAbortReason {
    /// The job is failing over: its tasks and their barriers are gone.
    FailingOver,
    /// Not complete within `execution.checkpointing.timeout`.
    Expired,
    /// A task declined it, saying why.
    Declined(String),
    /// A source did not accept the trigger.
    SourceNotTriggered,
    /// Its `_metadata` could not be written to checkpoint storage.
    MetadataNotWritten(String),
}

impl fmt::Display for CheckpointAbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointAbortReason::FailingOver => f.write_str("aborted: the job is failing over."),
            CheckpointAbortReason::Expired => f.write_str("expired before completing."),
            CheckpointAbortReason::Declined(reason) => write!(f, "failed: declined by a task: {reason}"),
            CheckpointAbortReason::SourceNotTriggered => f.write_str("failed: a source could not be triggered"),
            CheckpointAbortReason::MetadataNotWritten(error) => {
                write!(f, "failed: cannot write its metadata: {error}")
            }
        }
    }
}

/// The run's event sink, shared by all nodes of one simulation.
#[derive(Clone, Debug)]
pub struct Trace {
    start: Instant,
    /// Held, because nodes read the elapsed time per request (see [`Clock`]).
    clock: Clock,
    events: Arc<Mutex<Vec<TraceEvent>>>,
    /// Woken on every event recorded, for a watcher waiting for one (a step anchored to an event).
    recorded: Arc<tokio::sync::Notify>,
}

/// Tells, after a run, whether every handle of its trace is gone: every node, task and timer
/// holds one, so a trace still alive means something of the run outlived its runtime.
#[derive(Clone, Debug)]
pub struct TraceProbe(std::sync::Weak<Mutex<Vec<TraceEvent>>>);

impl TraceProbe {
    /// Whether the trace has been freed.
    pub fn freed(&self) -> bool {
        self.0.strong_count() == 0
    }
}

impl Trace {
    /// A new, empty trace whose clock starts now (simulated time); made inside a runtime.
    pub fn new() -> Self {
        let clock = Clock::current();
        Trace { start: clock.now(), clock, events: Arc::default(), recorded: Arc::default() }
    }

    /// A probe that tells later whether this trace was freed.
    pub fn probe(&self) -> TraceProbe {
        TraceProbe(Arc::downgrade(&self.events))
    }

    /// The events recorded from index `from` on (those a watcher has not seen yet).
    pub fn events_since(&self, from: usize) -> Vec<TraceEvent> {
        let events = self.events.lock().unwrap();
        events.get(from..).map(<[TraceEvent]>::to_vec).unwrap_or_default()
    }

    /// Completes once an event is recorded after the call: take the future before reading
    /// [`Trace::events_since`], then await it, and no event is missed.
    pub fn recorded(&self) -> tokio::sync::futures::OwnedNotified {
        self.recorded.clone().notified_owned()
    }

    /// A handle that records events under `node`'s name.
    pub fn for_node(&self, node: impl Into<String>) -> NodeTrace {
        NodeTrace { node: node.into(), trace: self.clone() }
    }

    /// Simulated time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.clock.now() - self.start
    }

    /// Everything recorded so far, in the order it happened.
    pub fn events(&self) -> Vec<TraceEvent> {
        self.events.lock().unwrap().clone()
    }

    fn record(&self, node: &str, event: Event) {
        let at = self.elapsed();
        self.events.lock().unwrap().push(TraceEvent { at, node: node.to_owned(), event });
        self.recorded.notify_waiters();
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}

/// A node's handle on the trace.
#[derive(Clone, Debug)]
pub struct NodeTrace {
    node: String,
    trace: Trace,
}

impl NodeTrace {
    /// Records a log line as happening now on this node.
    pub fn event(&self, message: impl Into<String>) {
        self.trace.record(&self.node, Event::Log(message.into()));
    }

    /// Records a typed event as happening now on this node.
    pub fn record(&self, event: Event) {
        self.trace.record(&self.node, event);
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Simulated time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.trace.elapsed()
    }
}
