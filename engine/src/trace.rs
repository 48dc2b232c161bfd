//! Significant events, recorded by the nodes as they happen (spec: "every significant event lands
//! in the trace"). The simulator owns the sink, formats the lines and hashes them.
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
use crate::protocol::states::{ExecutionState, JobStatus};
pub use crate::protocol::kafka::AbortCause;
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
        /// The transactional id.
        transactional_id: SmolStr,
        /// The checkpoint that recorded it as pending.
        checkpoint_id: u64,
        /// Why the broker aborted it, if it says.
        cause: Option<AbortCause>,
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
    /// The JobManager told a TaskManager it is going away.
    JobManagerDisconnected {
        /// The JobManager's address.
        address: SocketAddr,
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
    /// A sink subtask wrote one window result to the output topic.
    ResultWritten {
        /// The subtask, as Flink displays it.
        task: String,
        /// The record, as written.
        json: String,
    },
    /// The dispatcher accepted a job.
    JobSubmitted {
        /// The job's id.
        job_id: JobId,
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
    /// The window operator dropped the first late event of a window (allowed lateness 0):
    /// the window had fired, its watermark had passed. Later drops of the window add to
    /// Flink's `numLateRecordsDropped` without a line of their own.
    LateDropped {
        /// The task, as Flink displays it (`ClickEvent Counter (1/2)`).
        task: String,
        /// The window's start, ms of event time.
        window_start_ms: i64,
        /// The operator's watermark then.
        watermark_ms: i64,
        /// The operator's `numLateRecordsDropped` so far.
        dropped_so_far: u64,
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
            Event::TransactionLost { transactional_id, checkpoint_id, cause } => {
                write!(
                    f,
                    "Unable to commit transaction {transactional_id} recorded by checkpoint \
                     {checkpoint_id}: the broker aborted it"
                )?;
                if let Some(cause) = cause {
                    write!(f, " after {cause}")?;
                }
                f.write_str("; its records are lost (most likely data loss), continuing")
            }
            Event::ShutdownStarted { grace } => {
                write!(f, "received SIGTERM: shutting down ({} s until SIGKILL)", grace.as_secs())
            }
            Event::ShutdownCompleted => f.write_str("shut down completed"),
            Event::TaskManagerDisconnected { name } => write!(
                f,
                "Disconnect TaskExecutor {name} because: The TaskExecutor is shutting down."
            ),
            Event::JobManagerDisconnected { address } => write!(
                f,
                "JobManager {address} disconnected: the JobManager is shutting down."
            ),
            Event::JobManagerStarted { address, session } => {
                write!(f, "JobManager started at {address} as {session}")
            }
            Event::PartitionIdle { task, partition, idle_after } => write!(
                f,
                "{task} marks partition {partition} idle: no record for {} ms",
                idle_after.as_millis()
            ),
            Event::LateDropped { task, window_start_ms, watermark_ms, dropped_so_far } => write!(
                f,
                "{task} drops late events of window [{window_start_ms}, {}) behind watermark \
                 {watermark_ms}: numLateRecordsDropped={dropped_so_far}",
                window_start_ms + 15_000
            ),
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
            Event::ResultWritten { task, json } => write!(f, "{task} wrote {json}"),
            Event::JobSubmitted { job_id } => {
                write!(f, "Received JobGraph submission '{}' ({job_id}).", crate::protocol::job::JOB_NAME)
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
}

impl Trace {
    /// A new, empty trace whose clock starts now (simulated time); made inside a runtime.
    pub fn new() -> Self {
        let clock = Clock::current();
        Trace { start: clock.now(), clock, events: Arc::default() }
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
