//! Scenario files (docs/scenarios.md#the-file): a TOML file that names the cluster, the job's
//! submission, the steps a playground user would type and what the oracle should expect.
//! [`Scenario::load`] reads and checks one; every mistake is a [`ScenarioError`] naming the file,
//! line and column. The format is described in the README (section "Scenario files").

mod command;
mod error;
mod file;
mod layout;
mod response;

use flinksim_engine::plant::Plants;
use std::fmt::{self, Write as _};
use std::ops::Range;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use flinksim_engine::protocol::kafka::IsolationLevel;
use flinksim_engine::protocol::job::{DEFAULT_IDLENESS, JobSubmission, RunCommandError, SinkMode};
use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use command::{Command, ComposeCommand, FlinkCommand, Service, SimCommand};
pub use error::{Location, ScenarioError, ScenarioErrorKind};
pub use response::{ResponseCheck, ResponseExpectation};

use command::Names;
use error::SpannedError;
pub use file::{DURATION_MAX, format_duration};

use file::{AtFile, DelayFile, ScenarioFile, parse_duration};

/// A checked scenario: everything the simulator needs to run it from a seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The file's stem, e.g. `steady-state`.
    pub name: String,
    /// One or two sentences on what the scenario shows.
    pub description: String,
    /// How long to simulate.
    pub duration: Duration,
    /// The known pitfall the scenario replays, or its fix, explained (`[pitfall]`).
    pub pitfall: Option<Pitfall>,
    /// Nodes and their resources.
    pub cluster: ClusterSpec,
    /// The ClickEvent generator.
    pub generator: GeneratorSpec,
    /// The Kafka broker.
    pub kafka: KafkaSpec,
    /// The job submitted at start.
    pub job: JobSpec,
    /// How the consumer of `output` reads it (`[reader]`): the oracle judges what it reads.
    pub reader: ReaderSpec,
    /// What happens when, in file order.
    pub steps: Vec<Step>,
    /// What the oracle accepts.
    pub expect: Expect,
    /// The seed the scenario replays under (`seed`): set in a regression file the fuzzer wrote
    /// (docs/fuzzing.md#regression-files).
    pub seed: Option<u64>,
    /// The file the scenario came from, for messages.
    pub path: PathBuf,
    /// Bugs planted in the engine for this run (docs/planted-bugs.md). Never read from a file:
    /// only the command line's `--plant` sets them, and the file rendering leaves them out.
    pub plants: Plants,
}

/// The most TaskManagers a scenario may have, at start (`[cluster] taskmanagers`) or after a
/// `docker-compose scale`: far more than the playground ever runs, and a bound that keeps a typo
/// (`taskmanagers = 40000`) from starting tens of thousands of nodes. The cluster's addresses
/// (`crate::cluster::address_of`) cover every one.
pub const TASKMANAGERS_MAX: u32 = 4096;

/// `[cluster]`: the nodes and their resources; defaults from docs/README.md#defaults-at-a-glance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    /// TaskManagers at start, `taskmanager-1` … `taskmanager-N`.
    pub taskmanagers: u32,
    /// Task slots per TaskManager.
    pub slots: u32,
    /// The resource manager's start-up period: slot requests wait instead of failing
    /// (docs/model/cluster.md#failure-detection-and-restarts).
    pub startup_period: Duration,
}

impl Default for ClusterSpec {
    fn default() -> ClusterSpec {
        ClusterSpec { taskmanagers: 1, slots: 2, startup_period: Duration::from_secs(5 * 60) }
    }
}

/// `[pitfall]`: a known way a Flink or Kafka pipeline loses or duplicates data, explained as
/// data so that the run's report can print it next to the outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pitfall {
    /// What the user sees happen.
    pub what: String,
    /// The mechanism that makes it happen.
    pub why: String,
    /// Where Flink's or Kafka's documentation (or JIRA) describes it.
    pub reference: String,
    /// What a user changes to avoid it.
    pub fix: String,
}

/// `[generator]`: the ClickEvent generator (docs/model/job.md#the-generator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratorSpec {
    /// Simulated time between two events (2.5 ms makes event time track simulated time).
    pub pace: Duration,
    /// Where a restarted generator begins.
    pub on_restart: OnRestart,
    /// The event time of the first event (0: 1970-01-01 00:00:00 UTC).
    pub start_event_time: Duration,
    /// Timestamp jitter (docs/scenarios.md#timestamp-jitter): each event's timestamp moved back
    /// by up to this much, never more than the job's out-of-orderness bound. Zero is off.
    pub jitter: Duration,
}

impl Default for GeneratorSpec {
    fn default() -> GeneratorSpec {
        GeneratorSpec {
            pace: Duration::from_micros(2500),
            on_restart: OnRestart::Resume,
            start_event_time: Duration::ZERO,
            jitter: Duration::ZERO,
        }
    }
}

/// `[kafka]`: the broker's settings (docs/model/kafka.md#overview).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSpec {
    /// The broker's `transaction.max.timeout.ms`: the longest `transaction.timeout.ms` a
    /// transactional producer may ask for; a producer asking for more fails at initialisation.
    pub transaction_max_timeout: Duration,
}

/// flinksim's default `transaction.max.timeout.ms`: one hour, not Kafka's 15 minutes, because
/// Flink's docs tell exactly-once users to raise the broker's cap to at least the sink's timeout
/// (1 h), and the playground's broker is taken as configured that way.
pub const TRANSACTION_MAX_TIMEOUT_DEFAULT: Duration =
    flinksim_engine::kafka::broker::DEFAULT_TRANSACTION_MAX_TIMEOUT;

/// Flink's KafkaSink default `transaction.timeout.ms`: one hour (docs/model/kafka.md#overview).
pub const TRANSACTION_TIMEOUT_DEFAULT: Duration =
    flinksim_engine::protocol::job::DEFAULT_SINK_TRANSACTION_TIMEOUT;

impl Default for KafkaSpec {
    fn default() -> KafkaSpec {
        KafkaSpec { transaction_max_timeout: TRANSACTION_MAX_TIMEOUT_DEFAULT }
    }
}

/// `[reader]`: the consumer of `output` whose view the oracle judges (docs/oracle.md#the-reader).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderSpec {
    /// Its `isolation.level`; `None`: what the sink promises readers who read as its docs say
    /// (`read_committed` for the exactly-once sink, `read_uncommitted`, Kafka's default, for the
    /// at-least-once sink, whose writes are not transactional).
    pub isolation: Option<ReaderIsolation>,
}

/// A consumer's `isolation.level` in a scenario file, spelt as Kafka spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReaderIsolation {
    /// Committed records only, up to the last stable offset.
    ReadCommitted,
    /// Every record, of open and aborted transactions too (Kafka's default, and the
    /// playground's `kafka-console-consumer`).
    ReadUncommitted,
}

impl ReaderIsolation {
    /// The engine's isolation level.
    pub fn level(self) -> IsolationLevel {
        match self {
            ReaderIsolation::ReadCommitted => IsolationLevel::ReadCommitted,
            ReaderIsolation::ReadUncommitted => IsolationLevel::ReadUncommitted,
        }
    }

    /// As a file spells it.
    pub fn name(self) -> &'static str {
        match self {
            ReaderIsolation::ReadCommitted => "read_committed",
            ReaderIsolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

impl Scenario {
    /// The isolation level the oracle reads `output` at: the scenario's `[reader] isolation`,
    /// else the one the sink's readers use ([`ReaderSpec::isolation`]).
    pub fn reader_isolation(&self) -> IsolationLevel {
        match (self.reader.isolation, self.job.submission.sink_mode) {
            (Some(isolation), _) => isolation.level(),
            (None, SinkMode::ExactlyOnce) => IsolationLevel::ReadCommitted,
            (None, SinkMode::AtLeastOnce) => IsolationLevel::ReadUncommitted,
        }
    }
}

/// Where a restarted generator begins (docs/model/job.md#the-generator).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnRestart {
    /// At the event due now (docs/model/job.md#the-generator): events due while it
    /// was down are never produced.
    #[default]
    Resume,
    /// At event time 0, as the real generator does: every event is then late and dropped.
    FromZero,
}

/// `[job]`: the playground's submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    /// The `flink run` line as written in the file.
    pub run: String,
    /// The line parsed, with `sink`, `idleness`, `out_of_orderness` and `transaction_timeout`
    /// filled in (the exactly-once sink
    /// producer's `transaction.timeout.ms`: the broker aborts a transaction left open longer,
    /// docs/model/kafka.md#overview; above the broker's cap it is not refused here: the producer
    /// fails at initialisation, as Kafka's does).
    pub submission: JobSubmission,
}

/// One `[[step]]`.
///
/// Two steps are equal when they do the same thing at the same time: `line` says where a step was
/// written, not what it does, so it is left out of the comparison (a scenario printed by
/// [`Scenario::to_toml`] and read back equals the original).
#[derive(Clone, Debug)]
pub struct Step {
    /// When the step runs.
    pub at: StepTime,
    /// What it does.
    pub command: Command,
    /// The 1-based line of the step's `[[step]]` header in the file, for messages.
    pub line: usize,
}

impl PartialEq for Step {
    fn eq(&self, other: &Step) -> bool {
        self.at == other.at && self.command == other.command
    }
}

/// When a step runs, in simulated time since the start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepTime {
    /// At this time.
    At(Duration),
    /// At a time drawn from the seed, uniformly in `[min, max]`.
    Between {
        /// The earliest time.
        min: Duration,
        /// The latest time.
        max: Duration,
    },
    /// `delay` after the `n`-th occurrence of a traced event, or after `by` if the event has not
    /// happened by then (docs/scenarios.md#anchored-step-times).
    After {
        /// The event.
        anchor: Anchor,
        /// Which occurrence, from 1.
        n: u32,
        /// The shortest delay after it.
        delay_min: Duration,
        /// The longest delay after it (the seed draws between the two, from the step's own stream).
        delay_max: Duration,
        /// The time at which the step stops waiting for the event.
        by: Duration,
    },
}

/// The most occurrences an anchored step time counts (`n`).
pub const ANCHOR_COUNT_MAX: u32 = 100_000;

/// A traced event a step time can be anchored to (docs/scenarios.md#anchored-step-times): the
/// moments around which the commit protocol's narrow windows lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Anchor {
    /// `checkpoint-triggered`: the checkpoint coordinator injected a checkpoint's barriers at
    /// the sources.
    CheckpointTriggered,
    /// `checkpoint-completed`: every task acknowledged a checkpoint and its metadata is written.
    CheckpointCompleted,
    /// `sink-committed`: an exactly-once sink subtask committed a transaction.
    SinkCommitted,
    /// `window-fired`: the first result of a window not written before.
    WindowFired,
    /// `results-checkpointed`: the checkpoint holding a window's first results has completed (or
    /// a later one that subsumes it): the checkpoint the exactly-once sink's transaction was
    /// begun for, else the first one triggered after the window fired. Its transactions hold
    /// those results, which are at stake until the sink commits them.
    ResultsCheckpointed,
}

impl Anchor {
    /// Every anchor, in the order the file names list them.
    pub const ALL: [Anchor; 5] = [
        Anchor::CheckpointTriggered,
        Anchor::CheckpointCompleted,
        Anchor::SinkCommitted,
        Anchor::WindowFired,
        Anchor::ResultsCheckpointed,
    ];

    /// The name a file writes.
    pub fn name(self) -> &'static str {
        match self {
            Anchor::CheckpointTriggered => "checkpoint-triggered",
            Anchor::CheckpointCompleted => "checkpoint-completed",
            Anchor::SinkCommitted => "sink-committed",
            Anchor::WindowFired => "window-fired",
            Anchor::ResultsCheckpointed => "results-checkpointed",
        }
    }

    /// The anchor a file names.
    pub fn from_name(name: &str) -> Option<Anchor> {
        Anchor::ALL.into_iter().find(|a| a.name() == name)
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for StepTime {
    /// `2m`, `between 1m and 2m` for a range, `20ms after checkpoint-completed #3 (by 2m)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepTime::At(at) => f.write_str(&format_duration(*at)),
            StepTime::Between { min, max } => {
                write!(f, "between {} and {}", format_duration(*min), format_duration(*max))
            }
            StepTime::After { anchor, n, delay_min, delay_max, by } => {
                if delay_min == delay_max {
                    write!(f, "{}", format_duration(*delay_min))?;
                } else {
                    write!(f, "{}..{}", format_duration(*delay_min), format_duration(*delay_max))?;
                }
                write!(f, " after {anchor} #{n} (by {})", format_duration(*by))
            }
        }
    }
}

impl StepTime {
    /// The earliest time the step can run.
    pub fn earliest(self) -> Duration {
        match self {
            StepTime::At(at) => at,
            StepTime::Between { min, .. } => min,
            StepTime::After { delay_min, .. } => delay_min,
        }
    }

    /// Whether a step at this time can never run before one at `other`: its earliest time is at
    /// or after `other`'s latest, or both wait for the same occurrence of the same event and this
    /// one's shortest delay is at least `other`'s longest.
    pub fn never_before(self, other: StepTime) -> bool {
        match (self, other) {
            (
                StepTime::After { anchor, n, delay_min, by, .. },
                StepTime::After { anchor: a, n: m, delay_max, by: b, .. },
            ) if (anchor, n, by) == (a, m, b) => delay_min >= delay_max,
            _ => self.earliest() >= other.latest(),
        }
    }

    /// The latest time the step can run: for an anchored step, its delay after `by`.
    pub fn latest(self) -> Duration {
        match self {
            StepTime::At(at) => at,
            StepTime::Between { max, .. } => max,
            StepTime::After { delay_max, by, .. } => by + delay_max,
        }
    }
}

/// `[expect]`: what the oracle accepts, on the three axes of docs/oracle.md#what-correct-means,
/// docs/scenarios.md#the-file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expect {
    /// Whether every window must count exactly.
    pub counts: CountsExpectation,
    /// Whether a (window, page) may come out more than once.
    pub duplicates: DuplicatesExpectation,
    /// Whether events may be dropped as late by the window operator.
    pub late: LateExpectation,
    /// Whether events may be lost for a cause the trace records.
    pub loss: LossExpectation,
    /// Whether the job must catch up after the last fault heals, or stall for good.
    pub liveness: LivenessExpectation,
    /// Whether `read_committed` readers of `output` must reach the end of the topic, or must be
    /// held for good by a transaction left open (a stuck last stable offset).
    pub last_stable_offset: LastStableOffsetExpectation,
    /// The longest the JobManager may take to declare a TaskManager lost after a step took it
    /// away (killed, stopped, or cut off from the JobManager).
    #[serde(deserialize_with = "detection_within", serialize_with = "bound", skip_serializing_if = "Option::is_none")]
    pub detection_within: Option<Duration>,
    /// The longest from slots being available again after a TaskManager was lost to every task
    /// RUNNING and the first result written.
    #[serde(deserialize_with = "recovery_within", serialize_with = "bound", skip_serializing_if = "Option::is_none")]
    pub recovery_within: Option<Duration>,
    /// `[[expect.response]]`: what the answers to `curl` steps must say.
    #[serde(rename = "response", skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<ResponseExpectation>,
}

/// `liveness`: what the job must do once the faults are over (docs/oracle.md#what-correct-means).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LivenessExpectation {
    /// Every fault heals, at least 30 s before the end, and the job catches up in that tail.
    #[default]
    Recover,
    /// A fault never heals, and the job must stall: no result for a new window after it.
    Stall,
}

impl fmt::Display for LivenessExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LivenessExpectation::Recover => "recover",
            LivenessExpectation::Stall => "stall",
        })
    }
}

/// `last_stable_offset`: whether a transaction left open may hold `read_committed` readers of
/// `output` back (docs/oracle.md#a-stuck-last-stable-offset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LastStableOffsetExpectation {
    /// No transaction holds the last stable offset of an `output` partition for long: a
    /// `read_committed` reader reads to the high watermark.
    #[default]
    Advances,
    /// A transaction left open (its producer gone, not aborted) must hold it to the end.
    Stuck,
    /// Only zombies' transactions may hold it (written by tasks of a TaskManager the JobManager
    /// had declared lost, which the real systems leave to the transaction timeout too); the
    /// oracle judges `output` as `read_committed` readers read it once those are aborted.
    ZombiesMayHold,
}

impl fmt::Display for LastStableOffsetExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LastStableOffsetExpectation::Advances => "advances",
            LastStableOffsetExpectation::Stuck => "stuck",
            LastStableOffsetExpectation::ZombiesMayHold => "zombies-may-hold",
        })
    }
}

/// Reads `detection_within`, a duration above 0.
fn detection_within<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    time_bound(d, "detection_within")
}

/// Reads `recovery_within`, a duration above 0.
fn recovery_within<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    time_bound(d, "recovery_within")
}

fn time_bound<'de, D: serde::Deserializer<'de>>(d: D, key: &'static str) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    positive_duration(&text, key).map(Some).map_err(serde::de::Error::custom)
}

/// Writes a time bound as a file does (`"7s"`).
fn bound<S: serde::Serializer>(bound: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match bound {
        Some(d) => s.serialize_str(&format_duration(*d)),
        None => s.serialize_none(),
    }
}

/// `counts`: how window counts are checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CountsExpectation {
    /// Every count equals the recount from `input` (1000 for a complete window).
    #[default]
    Exact,
    /// Counts are not checked (e.g. processing time).
    Any,
}

/// `duplicates`: whether copies of a result are accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DuplicatesExpectation {
    /// Exactly one result per (window, page).
    #[default]
    None,
    /// Equal copies are accepted (the at-least-once sink after a restore).
    Allowed,
    /// The run must show copies (a pitfall it replays): an engine that writes each once fails.
    Required,
    /// Only copies the oracle names a cause for that Flink shares are accepted (a drained stop's
    /// split, a savepoint restored again, a stop that failed past its commits, a
    /// `read_uncommitted` reader): any other copy fails, as with `none`
    /// (docs/oracle.md#expectations).
    Explained,
}

impl DuplicatesExpectation {
    /// Whether copies the oracle names a cause Flink shares for are accepted.
    pub fn accepts_named_copies(self) -> bool {
        self != DuplicatesExpectation::None
    }

    /// Whether any copy is accepted, one nothing explains included.
    pub fn accepts_any_copies(self) -> bool {
        matches!(self, DuplicatesExpectation::Allowed | DuplicatesExpectation::Required)
    }
}

/// `late`: whether events dropped as late by the window operator (Flink's
/// `numLateRecordsDropped`) fail the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LateExpectation {
    /// A late drop fails the run (as `semantic`).
    #[default]
    None,
    /// Late drops are reported, not failed.
    Allowed,
    /// The run must show late drops (a pitfall it replays): an engine that drops none fails.
    Required,
}

/// `loss`: whether events lost for a cause the trace records (a job's state lost without
/// checkpointing or with its JobManager, a transaction the broker aborted) fail the run.
/// Events nothing accounts for always fail it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossExpectation {
    /// Loss fails the run (as `semantic`).
    #[default]
    None,
    /// Loss is reported, not failed. `expected` is read as `allowed`.
    #[serde(alias = "expected")]
    Allowed,
    /// The run must show loss (a pitfall it replays): an engine that loses nothing fails.
    Required,
    /// Only loss the oracle names a cause Flink shares for is accepted (transactions an older
    /// attempt's late restore aborted): any other loss fails, as with `none`
    /// (docs/oracle.md#expectations).
    Explained,
}

impl LossExpectation {
    /// Whether loss the oracle names a cause Flink shares for is accepted.
    pub fn accepts_named_loss(self) -> bool {
        self != LossExpectation::None
    }

    /// Whether any loss with a recorded cause is accepted.
    pub fn accepts_any_loss(self) -> bool {
        matches!(self, LossExpectation::Allowed | LossExpectation::Required)
    }
}

impl fmt::Display for OnRestart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnRestart::Resume => "resume",
            OnRestart::FromZero => "from-zero",
        })
    }
}

impl fmt::Display for CountsExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CountsExpectation::Exact => "exact",
            CountsExpectation::Any => "any",
        })
    }
}

impl fmt::Display for DuplicatesExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DuplicatesExpectation::None => "none",
            DuplicatesExpectation::Allowed => "allowed",
            DuplicatesExpectation::Required => "required",
            DuplicatesExpectation::Explained => "explained",
        })
    }
}

impl fmt::Display for LateExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LateExpectation::None => "none",
            LateExpectation::Allowed => "allowed",
            LateExpectation::Required => "required",
        })
    }
}

impl fmt::Display for LossExpectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LossExpectation::None => "none",
            LossExpectation::Allowed => "allowed",
            LossExpectation::Required => "required",
            LossExpectation::Explained => "explained",
        })
    }
}

/// The smallest `[generator] pace`: 100 µs, 10,000 events per second of simulated time, 25 times
/// the playground's rate. The generator emits one event per pace and every event costs the
/// simulator real work (about a microsecond), so at `1ns` a run would never finish and its
/// memory would grow without bound.
pub const PACE_MIN: Duration = Duration::from_micros(100);

/// Reads a scenario's duration as `--duration` gives it, by the same rules as the file's
/// `duration` key (and with the same errors): a duration of at most [`DURATION_MAX`], above 0.
pub fn parse_run_duration(text: &str) -> Result<Duration, ScenarioErrorKind> {
    positive_duration(text, "duration")
}

/// A duration that must be greater than 0; `key` names it in the error.
fn positive_duration(text: &str, key: &'static str) -> Result<Duration, ScenarioErrorKind> {
    match parse_duration(text)? {
        zero if zero.is_zero() => Err(ScenarioErrorKind::Zero { key }),
        d => Ok(d),
    }
}

/// The `.toml` files in a directory, sorted, to name in an error; none if it cannot be read.
fn toml_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<String> = entries
        .filter_map(|entry| Some(entry.ok()?.file_name().to_string_lossy().into_owned()))
        .filter(|name| name.ends_with(".toml"))
        .collect();
    files.sort();
    files
}

/// The sink mode as a file spells it.
fn sink_name(mode: SinkMode) -> &'static str {
    match mode {
        SinkMode::AtLeastOnce => "at-least-once",
        SinkMode::ExactlyOnce => "exactly-once",
    }
}

/// `[job] idleness = "off"`: no idleness timeout (Flink's default without `withIdleness`).
const IDLENESS_OFF: &str = "off";

/// The only broker the playground has (docs/model/kafka.md#overview).
const BOOTSTRAP_SERVERS: &str = "kafka:9092";

impl Scenario {
    /// Reads and checks the scenario file at `path`.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let kind = match e.kind() {
                ErrorKind::NotFound => ScenarioErrorKind::NoSuchFile { nor: None },
                ErrorKind::IsADirectory => ScenarioErrorKind::IsADirectory { files: toml_files(path) },
                _ => ScenarioErrorKind::Read(e),
            };
            ScenarioError { path: path.to_owned(), location: None, kind }
        })?;
        Scenario::parse(&text, path)
    }

    /// Checks a scenario's text; `path` names it in errors and its stem must equal `name`.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let file: ScenarioFile = toml::from_str(text).map_err(|e| {
            // The toml crate's message lists the valid keys or values; its span is the offending
            // key or value (the whole document when a required key is missing). Two of its
            // messages say too little, and the file's layout tells them apart: a duplicate key
            // (named here with its first line) and `[step]` for `[[step]]`.
            let span = e.span().unwrap_or(0..0);
            let layout = layout::scan(text);
            let first_line = |offset| Location::of_offset(text, offset).line;
            let kind = match layout.duplicate {
                Some(d) if d.span.start == span.start && d.table => {
                    ScenarioErrorKind::DuplicateTable { table: d.path, first_line: first_line(d.first) }
                }
                Some(d) if d.span.start == span.start => {
                    ScenarioErrorKind::DuplicateKey { key: d.path, first_line: first_line(d.first) }
                }
                _ if layout.tables.iter().any(|(table, at)| table == "step" && at.start == span.start) => {
                    ScenarioErrorKind::StepNotArray
                }
                _ => ScenarioErrorKind::Toml(e.message().trim().to_owned()),
            };
            SpannedError::new(span, kind).in_file(text, path)
        })?;
        Checker { text }.scenario(file, path).map_err(|e| e.in_file(text, path))
    }

    /// The file for a scenario named on the command line (a name or a path):
    ///
    /// - a name (relative, without `.toml`, `.` or `..`) is looked up in `scenarios_dir` first:
    ///   `steady-state` is `scenarios_dir/steady-state.toml`, and a name with a folder such as
    ///   `pitfalls/foo` is `scenarios_dir/pitfalls/foo.toml`; a name that is not there is then
    ///   taken as a path, if a file has it;
    /// - anything else (`my.toml`, `/tmp/x`, `./x`) is a path.
    ///
    /// A missing file, a directory, or an unknown name is an error saying which.
    pub fn resolve(name_or_path: &str, scenarios_dir: &Path) -> Result<PathBuf, ScenarioError> {
        let as_path = Path::new(name_or_path);
        let is_name = !name_or_path.is_empty()
            && !name_or_path.ends_with(".toml")
            && !name_or_path.contains('\\')
            && as_path.components().all(|c| matches!(c, Component::Normal(_)));
        let error = |path: &Path, kind| Err(ScenarioError { path: path.to_owned(), location: None, kind });
        let directory = |path: &Path| ScenarioErrorKind::IsADirectory { files: toml_files(path) };
        if !is_name {
            return match as_path {
                path if path.is_file() => Ok(path.to_owned()),
                path if path.is_dir() => error(path, directory(path)),
                path => error(path, ScenarioErrorKind::NoSuchFile { nor: None }),
            };
        }
        let candidate = scenarios_dir.join(format!("{name_or_path}.toml"));
        if candidate.is_file() {
            return Ok(candidate);
        }
        if as_path.is_file() {
            return Ok(as_path.to_owned());
        }
        let folder = scenarios_dir.join(name_or_path);
        if candidate.is_dir() || folder.is_dir() {
            let dir = if candidate.is_dir() { candidate } else { folder };
            let kind = directory(&dir);
            return error(&dir, kind);
        }
        if name_or_path.contains('/') {
            return error(&candidate, ScenarioErrorKind::NoSuchFile { nor: Some(as_path.to_owned()) });
        }
        let kind = ScenarioErrorKind::UnknownScenario {
            name: name_or_path.to_owned(),
            known: Scenario::known(scenarios_dir),
        };
        error(&candidate, kind)
    }

    /// The names of the scenarios in `scenarios_dir` (the stems of its `.toml` files) and in its
    /// subfolders (`pitfalls/<stem>`), sorted: each is a name [`Scenario::resolve`] takes.
    pub fn known(scenarios_dir: &Path) -> Vec<String> {
        let stems = |dir: &Path| -> Vec<(String, bool)> {
            let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
            entries
                .filter_map(|entry| Some(entry.ok()?.path()))
                .filter_map(|path| {
                    let is_dir = path.is_dir();
                    if is_dir {
                        return Some((path.file_name()?.to_string_lossy().into_owned(), true));
                    }
                    let toml = path.extension().is_some_and(|e| e == "toml");
                    toml.then(|| Some((path.file_stem()?.to_string_lossy().into_owned(), false)))?
                })
                .collect()
        };
        let mut known = Vec::new();
        for (name, is_dir) in stems(scenarios_dir) {
            if !is_dir {
                known.push(name);
                continue;
            }
            let inner = stems(&scenarios_dir.join(&name));
            known.extend(inner.into_iter().filter(|(_, dir)| !dir).map(|(stem, _)| format!("{name}/{stem}")));
        }
        known.sort();
        known
    }

    /// The same scenario simulated for `duration` instead (the `--duration` override). The steps
    /// that may fall at or after the new end (see [`Scenario::steps_after`]) are dropped, so that
    /// the result is itself a valid scenario, as its banner ([`Scenario::to_toml`]) must be. The
    /// steps left keep their file order, and so the times the seed draws for them, as long as no
    /// dropped range comes before them in the file. Whether the faults left still heal in time is
    /// [`crate::liveness::check_tail`]'s to say.
    pub fn with_duration(self, duration: Duration) -> Scenario {
        let mut scenario = Scenario { duration, ..self };
        scenario.steps.retain(|step| step.at.latest() < duration);
        // An assertion on the answer of a step that no longer runs goes with it.
        let steps = &scenario.steps;
        let runs = |request: &str| steps.iter().any(|step| matches!(&step.command, Command::Curl(c) if c.line == request.trim()));
        scenario.expect.responses.retain(|expectation| runs(expectation.request.get_ref()));
        scenario
    }

    /// The steps that may fall at or after `end`, in file order: due then or later, or drawn from
    /// a range that reaches it. A run shortened to `end` drops them: a step at the very end of a
    /// shortened run (the playground's kill at 2m under `--duration 2m`) would leave nothing to
    /// see after it.
    pub fn steps_after(&self, end: Duration) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(move |step| step.at.latest() >= end)
    }

    /// The effective scenario as a file, every default written out: printable as a banner, and
    /// itself a valid scenario file that [`Scenario::parse`] reads back to an equal scenario.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_toml(&mut out);
        out
    }

    /// The scenario as a file ([`Scenario::to_toml`]) with these steps (a time and a `run`
    /// line each) instead of its own: how the fuzzer writes a plan as a scenario.
    pub fn to_toml_with_steps(&self, steps: &[(StepTime, String)]) -> String {
        let mut out = String::new();
        let _ = self.write_toml_with(&mut out, steps);
        out
    }

    fn write_toml(&self, out: &mut String) -> fmt::Result {
        let steps: Vec<(StepTime, String)> = self.steps.iter().map(|s| (s.at, s.command.to_string())).collect();
        self.write_toml_with(out, &steps)
    }

    fn write_toml_with(&self, out: &mut String, steps: &[(StepTime, String)]) -> fmt::Result {
        let string = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let duration = |d: Duration| string(&format_duration(d));
        writeln!(out, "name = {}", string(&self.name))?;
        writeln!(out, "description = {}", string(&self.description))?;
        writeln!(out, "duration = {}", duration(self.duration))?;
        if let Some(seed) = self.seed {
            writeln!(out, "seed = {seed}")?;
        }
        if let Some(pitfall) = &self.pitfall {
            writeln!(out, "\n[pitfall]")?;
            writeln!(out, "what = {}", string(&pitfall.what))?;
            writeln!(out, "why = {}", string(&pitfall.why))?;
            writeln!(out, "reference = {}", string(&pitfall.reference))?;
            writeln!(out, "fix = {}", string(&pitfall.fix))?;
        }
        let cluster = &self.cluster;
        writeln!(out, "\n[cluster]")?;
        writeln!(out, "taskmanagers = {}", cluster.taskmanagers)?;
        writeln!(out, "slots = {}", cluster.slots)?;
        writeln!(out, "startup_period = {}", duration(cluster.startup_period))?;
        writeln!(out, "\n[generator]")?;
        writeln!(out, "pace = {}", duration(self.generator.pace))?;
        writeln!(out, "on_restart = {}", string(&self.generator.on_restart.to_string()))?;
        writeln!(out, "start_event_time = {}", duration(self.generator.start_event_time))?;
        if !self.generator.jitter.is_zero() {
            writeln!(out, "jitter = {}", duration(self.generator.jitter))?;
        }
        writeln!(out, "\n[kafka]")?;
        writeln!(out, "transaction_max_timeout = {}", duration(self.kafka.transaction_max_timeout))?;
        writeln!(out, "\n[job]")?;
        writeln!(out, "run = {}", string(&self.job.run))?;
        writeln!(out, "sink = {}", string(sink_name(self.job.submission.sink_mode)))?;
        writeln!(out, "transaction_timeout = {}", duration(self.job.submission.transaction_timeout))?;
        let idleness = self.job.submission.idleness.map_or_else(|| string(IDLENESS_OFF), duration);
        writeln!(out, "idleness = {idleness}")?;
        writeln!(out, "out_of_orderness = {}", duration(self.job.submission.out_of_orderness))?;
        if let Some(isolation) = self.reader.isolation {
            writeln!(out, "\n[reader]")?;
            writeln!(out, "isolation = {}", string(isolation.name()))?;
        }
        for (at, run) in steps {
            writeln!(out, "\n[[step]]")?;
            match *at {
                StepTime::At(at) => writeln!(out, "at = {}", duration(at))?,
                StepTime::Between { min, max } => {
                    writeln!(out, "at = {{ min = {}, max = {} }}", duration(min), duration(max))?;
                }
                StepTime::After { anchor, n, delay_min, delay_max, by } => {
                    let delay = if delay_min == delay_max {
                        duration(delay_min)
                    } else {
                        format!("{{ min = {}, max = {} }}", duration(delay_min), duration(delay_max))
                    };
                    let (anchor, by) = (string(anchor.name()), duration(by));
                    writeln!(out, "at = {{ after = {anchor}, n = {n}, delay = {delay}, by = {by} }}")?;
                }
            }
            writeln!(out, "run = {}", string(run))?;
        }
        let expect = &self.expect;
        writeln!(out, "\n[expect]")?;
        writeln!(out, "counts = {}", string(&expect.counts.to_string()))?;
        writeln!(out, "duplicates = {}", string(&expect.duplicates.to_string()))?;
        writeln!(out, "late = {}", string(&expect.late.to_string()))?;
        writeln!(out, "loss = {}", string(&expect.loss.to_string()))?;
        writeln!(out, "liveness = {}", string(&expect.liveness.to_string()))?;
        writeln!(out, "last_stable_offset = {}", string(&expect.last_stable_offset.to_string()))?;
        if let Some(bound) = expect.detection_within {
            writeln!(out, "detection_within = {}", duration(bound))?;
        }
        if let Some(bound) = expect.recovery_within {
            writeln!(out, "recovery_within = {}", duration(bound))?;
        }
        for expectation in &expect.responses {
            write!(out, "{}", response::to_toml(expectation, string))?;
        }
        Ok(())
    }
}

/// Checks the values serde cannot, pointing errors at their spans in `text`.
struct Checker<'a> {
    text: &'a str,
}

impl Checker<'_> {
    fn scenario(&self, file: ScenarioFile, path: &Path) -> Result<Scenario, SpannedError> {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if *file.name.get_ref() != stem {
            let kind = ScenarioErrorKind::NameMismatch { name: file.name.get_ref().clone(), stem };
            return Err(SpannedError::new(file.name.span(), kind));
        }
        let duration = self.positive_duration(&file.duration, "duration")?;

        let defaults = ClusterSpec::default();
        if let Some(count) = &file.cluster.taskmanagers
            && *count.get_ref() > TASKMANAGERS_MAX
        {
            let kind = ScenarioErrorKind::TooManyTaskManagers { count: *count.get_ref() };
            return Err(SpannedError::new(count.span(), kind));
        }
        let cluster = ClusterSpec {
            taskmanagers: self.positive(file.cluster.taskmanagers, "taskmanagers", defaults.taskmanagers)?,
            slots: self.positive(file.cluster.slots, "slots", defaults.slots)?,
            startup_period: match &file.cluster.startup_period {
                Some(period) => self.duration(period)?,
                None => defaults.startup_period,
            },
        };
        let generator = GeneratorSpec {
            pace: match &file.generator.pace {
                Some(pace) => match self.positive_duration(pace, "pace")? {
                    too_small if too_small < PACE_MIN => {
                        return Err(SpannedError::new(pace.span(), ScenarioErrorKind::PaceTooSmall));
                    }
                    pace => pace,
                },
                None => GeneratorSpec::default().pace,
            },
            on_restart: file.generator.on_restart.unwrap_or_default(),
            start_event_time: match &file.generator.start_event_time {
                Some(start) => self.duration(start)?,
                None => Duration::ZERO,
            },
            jitter: match &file.generator.jitter {
                Some(jitter) => self.duration(jitter)?,
                None => Duration::ZERO,
            },
        };

        let run = &file.job.run;
        let mut submission = JobSubmission::parse_run_command(run.get_ref())
            .map_err(|e| SpannedError::new(self.run_error_span(run, &e), e.into()))?;
        if submission.args.bootstrap_servers != BOOTSTRAP_SERVERS {
            let servers = submission.args.bootstrap_servers.to_string();
            let span = self.word_span(run, &servers);
            return Err(SpannedError::new(span, ScenarioErrorKind::UnknownBootstrapServer(servers)));
        }
        if let Some((flag, reason)) = submission.unsupported_variant() {
            let span = self.word_span(run, flag);
            return Err(SpannedError::new(span, ScenarioErrorKind::UnsupportedVariant(reason)));
        }
        submission.sink_mode = file.job.sink;
        if submission.sink_mode == SinkMode::ExactlyOnce && !submission.args.checkpointing {
            let kind = ScenarioErrorKind::ExactlyOnceWithoutCheckpointing { in_step: false };
            return Err(SpannedError::new(self.inner_span(run.span(), 0..0), kind));
        }
        submission.transaction_timeout = match &file.job.transaction_timeout {
            Some(timeout) => self.positive_duration(timeout, "transaction_timeout")?,
            None => TRANSACTION_TIMEOUT_DEFAULT,
        };
        submission.idleness = match &file.job.idleness {
            Some(off) if off.get_ref() == IDLENESS_OFF => None,
            Some(timeout) => Some(self.positive_duration(timeout, "idleness")?),
            None => Some(DEFAULT_IDLENESS),
        };
        if let Some(bound) = &file.job.out_of_orderness {
            submission.out_of_orderness = self.duration(bound)?;
        }
        let jitter_max = submission.out_of_orderness.min(flinksim_engine::playground::generator::JITTER_MAX);
        if let Some(jitter) = &file.generator.jitter
            && generator.jitter > jitter_max
        {
            let kind = ScenarioErrorKind::JitterTooLarge { jitter: jitter.get_ref().clone(), max: format_duration(jitter_max) };
            return Err(SpannedError::new(jitter.span(), kind));
        }
        let job = JobSpec { run: run.get_ref().clone(), submission };
        let kafka = KafkaSpec {
            transaction_max_timeout: match &file.kafka.transaction_max_timeout {
                Some(timeout) => self.positive_duration(timeout, "transaction_max_timeout")?,
                None => TRANSACTION_MAX_TIMEOUT_DEFAULT,
            },
        };

        // `taskmanager-3` is a valid name anywhere in a file that scales to 3 TaskManagers.
        let scaled = file.steps.iter().filter_map(|s| command::scale_target(s.get_ref().run.get_ref())).max();
        let names = Names { taskmanagers_max: scaled.unwrap_or(0).max(cluster.taskmanagers) };
        let mut steps = Vec::with_capacity(file.steps.len());
        for spanned in &file.steps {
            let step = spanned.get_ref();
            let at = self.step_time(&step.at)?;
            if at.latest() > duration {
                let kind = ScenarioErrorKind::StepAfterEnd {
                    at: format_duration(at.latest()),
                    duration: format_duration(duration),
                };
                return Err(SpannedError::new(step.at.span(), kind));
            }
            let command = command::parse(step.run.get_ref(), names)
                .map_err(|e| SpannedError::new(self.inner_span(step.run.span(), e.span), e.kind))?;
            // A step's `flink run` takes the [job] sink mode, so the same rule holds for it.
            if let Command::Flink(FlinkCommand::Run { submission, .. }) = &command
                && job.submission.sink_mode == SinkMode::ExactlyOnce
                && !submission.args.checkpointing
            {
                let kind = ScenarioErrorKind::ExactlyOnceWithoutCheckpointing { in_step: true };
                return Err(SpannedError::new(self.inner_span(step.run.span(), 0..0), kind));
            }
            let line = Location::of_offset(self.text, spanned.span().start).line;
            steps.push(Step { at, command, line });
        }
        // Each response assertion names a `curl` step by its line.
        for expectation in &file.expect.responses {
            let request = expectation.request.get_ref().trim();
            let curls: Vec<String> = steps
                .iter()
                .filter_map(|step| match &step.command {
                    Command::Curl(curl) => Some(curl.line.clone()),
                    _ => None,
                })
                .collect();
            if !curls.iter().any(|line| line == request) {
                let kind = ScenarioErrorKind::ResponseOfNoStep { request: request.to_owned(), known: curls };
                return Err(SpannedError::new(expectation.request.span(), kind));
            }
        }

        Ok(Scenario {
            name: file.name.into_inner(),
            description: file.description,
            duration,
            pitfall: file.pitfall,
            cluster,
            generator,
            kafka,
            job,
            reader: ReaderSpec { isolation: file.reader.isolation },
            steps,
            expect: file.expect,
            seed: file.seed,
            path: path.to_owned(),
            plants: Plants::NONE,
        })
    }

    fn duration(&self, value: &Spanned<String>) -> Result<Duration, SpannedError> {
        parse_duration(value.get_ref()).map_err(|kind| SpannedError::new(value.span(), kind))
    }

    fn positive_duration(
        &self,
        value: &Spanned<String>,
        key: &'static str,
    ) -> Result<Duration, SpannedError> {
        positive_duration(value.get_ref(), key).map_err(|kind| SpannedError::new(value.span(), kind))
    }

    fn positive(
        &self,
        value: Option<Spanned<u32>>,
        key: &'static str,
        default: u32,
    ) -> Result<u32, SpannedError> {
        match value {
            None => Ok(default),
            Some(n) if *n.get_ref() == 0 => Err(SpannedError::new(n.span(), ScenarioErrorKind::Zero { key })),
            Some(n) => Ok(n.into_inner()),
        }
    }

    fn step_time(&self, at: &Spanned<AtFile>) -> Result<StepTime, SpannedError> {
        match at.get_ref() {
            AtFile::At(text) => parse_duration(text)
                .map(StepTime::At)
                .map_err(|kind| SpannedError::new(at.span(), kind)),
            AtFile::Between { min: min_text, max: max_text } => {
                let (min, max) = (self.duration(min_text)?, self.duration(max_text)?);
                if min > max {
                    let kind = ScenarioErrorKind::EmptyRange {
                        min: min_text.get_ref().clone(),
                        max: max_text.get_ref().clone(),
                    };
                    return Err(SpannedError::new(at.span(), kind));
                }
                Ok(StepTime::Between { min, max })
            }
            AtFile::After { after, n, delay, by } => {
                let anchor = Anchor::from_name(after.get_ref()).ok_or_else(|| {
                    let kind = ScenarioErrorKind::UnknownAnchor {
                        name: after.get_ref().clone(),
                        known: Anchor::ALL.iter().map(|a| a.name()).collect(),
                    };
                    SpannedError::new(after.span(), kind)
                })?;
                let count = match u32::try_from(*n.get_ref()) {
                    Ok(count @ 1..=ANCHOR_COUNT_MAX) => count,
                    _ => {
                        let kind = ScenarioErrorKind::BadAnchorCount { n: *n.get_ref(), max: ANCHOR_COUNT_MAX };
                        return Err(SpannedError::new(n.span(), kind));
                    }
                };
                let at_delay = |text: &str| parse_duration(text).map_err(|kind| SpannedError::new(delay.span(), kind));
                let (delay_min, delay_max) = match delay.get_ref() {
                    DelayFile::At(text) => {
                        let d = at_delay(text)?;
                        (d, d)
                    }
                    DelayFile::Between { min, max } => {
                        let (lo, hi) = (at_delay(min)?, at_delay(max)?);
                        if lo > hi {
                            let kind = ScenarioErrorKind::EmptyRange { min: min.clone(), max: max.clone() };
                            return Err(SpannedError::new(delay.span(), kind));
                        }
                        (lo, hi)
                    }
                };
                let by = self.duration(by)?;
                Ok(StepTime::After { anchor, n: count, delay_min, delay_max, by })
            }
        }
    }

    /// The span in the file of `inner`, a byte range of the string value at `value`: exact for a
    /// one-line string without escapes, else the whole value.
    fn inner_span(&self, value: Range<usize>, inner: Range<usize>) -> Range<usize> {
        let raw = &self.text[value.clone()];
        let plain = (raw.starts_with('"') && !raw.starts_with("\"\"\"") && !raw.contains('\\'))
            || (raw.starts_with('\'') && !raw.starts_with("'''"));
        if plain { value.start + 1 + inner.start..value.start + 1 + inner.end } else { value }
    }

    /// The span of the first word `word` of the string value `value`, or its end if absent.
    fn word_span(&self, value: &Spanned<String>, word: &str) -> Range<usize> {
        let line = value.get_ref();
        let inner = line
            .split_whitespace()
            .find(|w| *w == word)
            .map(|w| {
                let start = w.as_ptr() as usize - line.as_ptr() as usize;
                start..start + w.len()
            })
            .unwrap_or(line.trim_end().len()..line.trim_end().len());
        self.inner_span(value.span(), inner)
    }

    /// Points a `flink run` error at the word it names.
    fn run_error_span(&self, run: &Spanned<String>, error: &RunCommandError) -> Range<usize> {
        match error {
            RunCommandError::UnknownOption(word)
            | RunCommandError::BadParallelism(word)
            | RunCommandError::UnknownJar(word)
            | RunCommandError::OptionBeforeJar(word) => self.word_span(run, word),
            RunCommandError::MissingValue(_) | RunCommandError::MissingJar => self.word_span(run, ""),
            RunCommandError::NotFlinkRun(_) => self.inner_span(run.span(), 0..0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str =
        "flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing --event-time";

    /// A minimal valid file named `scenarios/x.toml`, followed by `rest`.
    fn file(rest: &str) -> String {
        format!("name = \"x\"\nduration = \"10m\"\n\n[job]\nrun = \"{RUN}\"\n{rest}")
    }

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(text, Path::new("scenarios/x.toml"))
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(scenario) => panic!("parsed: {scenario:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn steady_state_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/steady-state.toml")
    }

    #[test]
    fn steady_state_file_loads_with_the_playground_defaults() {
        let scenario = Scenario::load(&steady_state_path()).unwrap();
        assert_eq!(scenario.name, "steady-state");
        assert_eq!(scenario.duration, Duration::from_secs(600));
        assert_eq!(scenario.cluster, ClusterSpec::default());
        assert_eq!(scenario.generator, GeneratorSpec::default());
        assert_eq!(scenario.job.run, RUN);
        let submission = &scenario.job.submission;
        assert_eq!(submission.parallelism, 2);
        assert!(submission.detached && submission.args.checkpointing && submission.args.event_time);
        assert_eq!(submission.sink_mode, SinkMode::AtLeastOnce);
        assert!(scenario.steps.is_empty());
        assert_eq!(scenario.expect, Expect::default());
    }

    #[test]
    fn minimal_file_takes_every_default() {
        let scenario = parse(&file("")).unwrap();
        assert_eq!(scenario.description, "");
        assert_eq!(scenario.cluster, ClusterSpec::default());
        assert_eq!(scenario.generator.pace, Duration::from_micros(2500));
        assert_eq!(scenario.generator.on_restart, OnRestart::Resume);
        assert_eq!(scenario.job.submission.sink_mode, SinkMode::AtLeastOnce);
        assert_eq!(scenario.job.submission.transaction_timeout, Duration::from_secs(3600));
        assert_eq!(scenario.kafka, KafkaSpec::default());
        assert_eq!(scenario.kafka.transaction_max_timeout, Duration::from_secs(3600));
        assert_eq!(scenario.expect, Expect::default());
    }

    #[test]
    fn the_reader_reads_as_its_sink_asks_unless_the_file_says_otherwise() {
        let at_least_once = parse(&file("")).unwrap();
        assert_eq!((at_least_once.reader.isolation, at_least_once.reader_isolation()), (None, IsolationLevel::ReadUncommitted));
        let exactly_once = parse(&file("sink = \"exactly-once\"\n")).unwrap();
        assert_eq!(exactly_once.reader_isolation(), IsolationLevel::ReadCommitted);
        let uncommitted = parse(&file("sink = \"exactly-once\"\n[reader]\nisolation = \"read_uncommitted\"\n")).unwrap();
        assert_eq!(uncommitted.reader_isolation(), IsolationLevel::ReadUncommitted);
        // The banner keeps the reader and reads back the same.
        let printed = uncommitted.to_toml();
        assert!(printed.contains("[reader]\nisolation = \"read_uncommitted\"\n"), "{printed}");
        assert_eq!(parse(&printed).unwrap().reader, uncommitted.reader);
        assert!(!at_least_once.to_toml().contains("[reader]"));
        assert_eq!(
            err(&file("[reader]\nisolation = \"committed\"\n")),
            "scenarios/x.toml:7:13: unknown variant `committed`, expected `read_committed` or `read_uncommitted`"
        );
    }

    #[test]
    fn transaction_timeouts_are_read_with_the_duration_rules() {
        let scenario =
            parse(&file("transaction_timeout = \"20m\"\n[kafka]\ntransaction_max_timeout = \"2h\"\n")).unwrap();
        assert_eq!(scenario.job.submission.transaction_timeout, Duration::from_secs(20 * 60));
        assert_eq!(scenario.kafka.transaction_max_timeout, Duration::from_secs(2 * 3600));
        assert_eq!(
            err(&file("transaction_timeout = \"0s\"\n")),
            "scenarios/x.toml:6:23: `transaction_timeout` must be greater than 0"
        );
        assert_eq!(
            err(&file("\n[kafka]\ntransaction_max_timeout = \"soon\"\n")),
            "scenarios/x.toml:8:27: bad duration `soon`: expected e.g. 200ms, 1s, 10m"
        );
        assert_eq!(
            err(&file("\n[kafka]\ntransaction_timeout = \"1h\"\n")),
            "scenarios/x.toml:8:1: unknown field `transaction_timeout`, expected `transaction_max_timeout`"
        );
    }

    /// A producer asking for more than the broker's cap is a pitfall the engine shows (the
    /// producer fails at initialisation, as Kafka's does), not a mistake in the file.
    #[test]
    fn producer_timeout_above_the_broker_cap_loads() {
        let scenario = parse(&file(
            "sink = \"exactly-once\"\ntransaction_timeout = \"1h\"\n\
             [kafka]\ntransaction_max_timeout = \"15m\"\n",
        ))
        .unwrap();
        assert!(scenario.job.submission.transaction_timeout > scenario.kafka.transaction_max_timeout);
    }

    #[test]
    fn steps_with_times_and_ranges_parse_in_file_order() {
        let scenario = parse(&file(
            "\n[[step]]\nat = \"2m\"\nrun = \"docker-compose kill taskmanager\"\n\
             \n[[step]]\nat = { min = \"3m\", max = \"4m 30s\" }\n\
             run = \"docker-compose up -d taskmanager\"\n",
        ))
        .unwrap();
        let [kill, up] = scenario.steps.as_slice() else { panic!("{:?}", scenario.steps) };
        assert_eq!(kill.at, StepTime::At(Duration::from_secs(120)));
        assert_eq!(kill.command, Command::Compose(ComposeCommand::Kill(Service::TaskManagers)));
        assert_eq!(kill.line, 7);
        assert_eq!(up.at, StepTime::Between { min: Duration::from_secs(180), max: Duration::from_secs(270) });
        assert_eq!(up.command, Command::Compose(ComposeCommand::Up(Service::TaskManagers)));
        assert_eq!(up.line, 11);
    }

    #[test]
    fn job_variants_not_modelled_yet_are_refused_not_run_as_something_else() {
        let text = "name = \"x\"\nduration = \"1m\"\n[job]\n\
            run = \"flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing\"\n";
        // Processing time (no --event-time) is modelled.
        assert!(parse(text).is_ok());
        let error = parse(&text.replace("--checkpointing", "--event-time --chaining")).unwrap_err().to_string();
        assert!(error.starts_with("scenarios/x.toml:4:"), "{error}");
        assert!(error.contains("--chaining is refused"), "{error}");
    }

    #[test]
    fn to_toml_reads_back_to_the_same_scenario() {
        let text = "# every section, every kind of step\n\
            name = \"x\"\n\
            description = \"a \\\"quoted\\\" word\\nand a second line\"\n\
            duration = \"12m 30s\"\n\
            \n[pitfall]\nwhat = \"a \\\"what\\\"\"\nwhy = \"why\"\nreference = \"FLINK-1\"\nfix = \"fix\"\n\
            \n[cluster]\ntaskmanagers = 2\nslots = 3\nstartup_period = \"0s\"\n\
            \n[generator]\npace = \"1.25ms\"\non_restart = \"from-zero\"\nstart_event_time = \"11h58m\"\n\
            \n[kafka]\ntransaction_max_timeout = \"15m\"\n\
            \n[job]\n\
            run = 'flink run -p 3 -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing --event-time'\n\
            sink = \"exactly-once\"\n\
            transaction_timeout = \"90s\"\n\
            idleness = \"off\"\nout_of_orderness = \"1s\"\n\
            \n[[step]]\nat = { min = \"1m\", max = \"1m\" }\nrun = \"docker-compose kill taskmanager-2\"\n\
            \n[[step]]\nat = \"2m\"\nrun = \"docker-compose scale taskmanager=4\"\n\
            \n[[step]]\nat = \"3m\"\nrun = \"sim partition jobmanager taskmanager-4\"\n\
            \n[[step]]\nat = \"4m\"\nrun = \"sim link kafka -> taskmanager-1 delay 2.5ms..1s loss 0.125\"\n\
            \n[[step]]\nat = \"5m\"\nrun = \"sim link kafka -> taskmanager-1 clear\"\n\
            \n[[step]]\nat = \"6m\"\nrun = \"sim heal taskmanager-4 jobmanager\"\n\
            \n[expect]\ncounts = \"any\"\nduplicates = \"allowed\"\nlate = \"required\"\nloss = \"allowed\"\n\
            liveness = \"stall\"\nlast_stable_offset = \"stuck\"\ndetection_within = \"7s\"\nrecovery_within = \"1m 30s\"\n";
        let scenario = parse(text).unwrap();
        let printed = scenario.to_toml();
        let again = parse(&printed).unwrap_or_else(|e| panic!("{e}\n{printed}"));
        assert_eq!(again, scenario);
        assert_eq!(again.to_toml(), printed);
        assert!(printed.contains("pace = \"1.25ms\"\n"), "{printed}");
        assert!(printed.contains("transaction_max_timeout = \"15m\"\n"), "{printed}");
        assert!(printed.contains("transaction_timeout = \"1m 30s\"\n"), "{printed}");
        assert!(printed.contains("at = { min = \"1m\", max = \"1m\" }\n"), "{printed}");
        assert_eq!(scenario.expect.liveness, LivenessExpectation::Stall);
        assert_eq!(scenario.expect.detection_within, Some(Duration::from_secs(7)));
        assert_eq!(scenario.expect.last_stable_offset, LastStableOffsetExpectation::Stuck);
        assert!(
            printed.ends_with(
                "liveness = \"stall\"\nlast_stable_offset = \"stuck\"\ndetection_within = \"7s\"\nrecovery_within = \"1m 30s\"\n"
            ),
            "{printed}"
        );
    }

    #[test]
    fn pitfall_table_and_watermark_settings_are_read_and_pointed_at() {
        let pitfall = "\n[pitfall]\nwhat = \"w\"\nwhy = \"y\"\nreference = \"r\"\nfix = \"f\"\n";
        let scenario = parse(&file(&format!("idleness = \"off\"\nout_of_orderness = \"1s\"\n{pitfall}"))).unwrap();
        assert_eq!(scenario.pitfall.as_ref().map(|p| p.fix.as_str()), Some("f"));
        assert_eq!(scenario.job.submission.idleness, None);
        assert_eq!(scenario.job.submission.out_of_orderness, Duration::from_secs(1));
        assert_eq!(parse(&file("")).unwrap().job.submission.idleness, Some(Duration::from_secs(5)));
        let error = err(&file(&format!("{pitfall}see = \"x\"\n")));
        assert!(error.starts_with("scenarios/x.toml:12:1: unknown field `see`"), "{error}");
        assert_eq!(
            err(&file("idleness = \"0s\"\n")),
            "scenarios/x.toml:6:12: `idleness` must be greater than 0"
        );
        assert_eq!(
            err(&file("\n[generator]\nstart_event_time = \"noon\"\n")),
            "scenarios/x.toml:8:20: bad duration `noon`: expected e.g. 200ms, 1s, 10m"
        );
    }

    #[test]
    fn time_bounds_are_durations_above_zero_pointed_at() {
        assert_eq!(
            err(&file("\n[expect]\ndetection_within = \"7 s\"\n")),
            "scenarios/x.toml:8:20: bad duration `7 s`: expected e.g. 200ms, 1s, 10m"
        );
        assert_eq!(
            err(&file("\n[expect]\nrecovery_within = \"0s\"\n")),
            "scenarios/x.toml:8:19: `recovery_within` must be greater than 0"
        );
        assert!(
            err(&file("\n[expect]\nlast_stable_offset = \"frozen\"\n"))
                .starts_with("scenarios/x.toml:8:22: unknown variant `frozen`, expected one of `advances`, `stuck`, `zombies-may-hold`"),
            "{}",
            err(&file("\n[expect]\nlast_stable_offset = \"frozen\"\n"))
        );
        assert!(
            err(&file("\n[expect]\nliveness = \"stalled\"\n")).starts_with("scenarios/x.toml:8:12: unknown variant `stalled`"),
            "{}",
            err(&file("\n[expect]\nliveness = \"stalled\"\n"))
        );
    }

    #[test]
    fn steady_state_prints_every_default() {
        let scenario = Scenario::load(&steady_state_path()).unwrap();
        let expected = format!(
            "name = \"steady-state\"\n\
             description = {}\n\
             duration = \"10m\"\n\
             \n[cluster]\ntaskmanagers = 1\nslots = 2\nstartup_period = \"5m\"\n\
             \n[generator]\npace = \"2.5ms\"\non_restart = \"resume\"\nstart_event_time = \"0s\"\n\
             \n[kafka]\ntransaction_max_timeout = \"1h\"\n\
             \n[job]\nrun = \"{RUN}\"\nsink = \"at-least-once\"\ntransaction_timeout = \"1h\"\n\
             idleness = \"5s\"\nout_of_orderness = \"200ms\"\n\
             \n[expect]\ncounts = \"exact\"\nduplicates = \"none\"\nlate = \"none\"\nloss = \"none\"\nliveness = \"recover\"\n\
             last_stable_offset = \"advances\"\n",
            toml::Value::String(scenario.description.clone()),
        );
        assert_eq!(scenario.to_toml(), expected);
    }

    #[test]
    fn with_duration_overrides_only_the_duration() {
        let scenario = parse(&file("")).unwrap();
        let shorter = scenario.clone().with_duration(Duration::from_secs(60));
        assert_eq!(shorter.duration, Duration::from_secs(60));
        assert_eq!(Scenario { duration: scenario.duration, ..shorter }, scenario);
    }

    /// A shortened scenario kept its late steps, and its banner was no longer a valid file.
    #[test]
    fn with_duration_drops_the_steps_that_may_fall_at_or_after_the_end() {
        let scenario = parse(&file(
            "\n[[step]]\nat = \"1m\"\nrun = \"docker-compose kill kafka\"\n\
             \n[[step]]\nat = { min = \"1m\", max = \"3m\" }\nrun = \"docker-compose up -d kafka\"\n\
             \n[[step]]\nat = \"2m\"\nrun = \"docker-compose kill taskmanager\"\n\
             \n[[step]]\nat = \"2m 1s\"\nrun = \"docker-compose up -d taskmanager\"\n",
        ))
        .unwrap();
        let end = Duration::from_secs(120);
        let after: Vec<(usize, String)> =
            scenario.steps_after(end).map(|step| (step.line, step.at.to_string())).collect();
        // A step at the very end goes too: nothing would be left to see after it.
        assert_eq!(after, [(11, "between 1m and 3m".to_owned()), (15, "2m".to_owned()), (19, "2m 1s".to_owned())]);
        let shorter = scenario.clone().with_duration(end);
        assert_eq!(shorter.steps, [scenario.steps[0].clone()]);
        let printed = shorter.to_toml();
        assert_eq!(parse(&printed).unwrap_or_else(|e| panic!("{e}\n{printed}")), shorter);
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_valid_keys() {
        assert_eq!(
            err(&file("\n[cluster]\ntaskmanager = 2\n")),
            "scenarios/x.toml:8:1: unknown field `taskmanager`, expected one of `taskmanagers`, `slots`, \
             `startup_period`"
        );
        assert_eq!(
            err(&file(
                "\n[[step]]\nat = { min = \"1m\", mx = \"2m\" }\nrun = \"docker-compose kill kafka\"\n"
            )),
            "scenarios/x.toml:8:6: unknown field `mx`, expected one of `min`, `max`, `after`, `n`, `delay`, `by`"
        );
        assert_eq!(
            err(&file("sink = \"at-most-once\"\n")),
            "scenarios/x.toml:6:8: unknown variant `at-most-once`, expected `at-least-once` or `exactly-once`"
        );
    }

    #[test]
    fn missing_key_points_at_its_table() {
        assert_eq!(err(&file("\n[[step]]\nat = \"1m\"\n")), "scenarios/x.toml:7:1: missing field `run`");
    }

    #[test]
    fn bad_duration_says_what_a_duration_looks_like() {
        assert_eq!(
            err(&file("").replace("\"10m\"", "\"10 minutes\"")),
            "scenarios/x.toml:2:12: bad duration `10 minutes`: expected e.g. 200ms, 1s, 10m"
        );
        assert_eq!(
            err(&file("\n[generator]\npace = \"fast\"\n")),
            "scenarios/x.toml:8:8: bad duration `fast`: expected e.g. 200ms, 1s, 10m"
        );
        assert_eq!(
            err(&file(
                "\n[[step]]\nat = { min = \"1m\", max = \"2\" }\nrun = \"docker-compose kill kafka\"\n"
            )),
            "scenarios/x.toml:8:26: bad duration `2`: expected e.g. 200ms, 1s, 10m"
        );
    }

    #[test]
    fn range_with_min_above_max_is_an_error() {
        assert_eq!(
            err(&file(
                "\n[[step]]\nat = { min = \"4m\", max = \"1m\" }\nrun = \"docker-compose kill kafka\"\n"
            )),
            "scenarios/x.toml:8:6: empty range: min 4m is greater than max 1m"
        );
    }

    #[test]
    fn unknown_service_names_the_word_and_lists_the_services() {
        assert_eq!(
            err(&file("\n[[step]]\nat = \"2m\"\nrun = \"docker-compose kill taskmanger\"\n")),
            "scenarios/x.toml:9:28: unknown service `taskmanger` (known: jobmanager, taskmanager, \
             taskmanager-1, kafka, clickevent-generator, client, storage)"
        );
    }

    #[test]
    fn killing_taskmanager_2_of_one_fails_naming_its_line() {
        let step = "\n[[step]]\nat = \"2m\"\nrun = \"docker-compose kill taskmanager-2\"\n";
        assert_eq!(
            err(&file(step)),
            "scenarios/x.toml:9:28: unknown service `taskmanager-2` (known: jobmanager, taskmanager, \
             taskmanager-1, kafka, clickevent-generator, client, storage)"
        );
        // A file that scales to two TaskManagers may name the second anywhere.
        let scaled = format!("{step}\n[[step]]\nat = \"1m\"\nrun = \"docker-compose scale taskmanager=2\"\n");
        assert_eq!(
            parse(&file(&scaled)).unwrap().steps[0].command,
            Command::Compose(ComposeCommand::Kill(Service::TaskManager(2)))
        );
    }

    #[test]
    fn unknown_node_lists_the_nodes() {
        assert_eq!(
            err(&file("\n[[step]]\nat = \"2m\"\nrun = \"sim partition jobmanager zookeeper\"\n")),
            "scenarios/x.toml:9:33: unknown node `zookeeper` (known: jobmanager, taskmanager-1, kafka, \
             clickevent-generator, client, storage)"
        );
    }

    #[test]
    fn malformed_command_says_what_was_expected() {
        assert_eq!(
            err(&file("\n[[step]]\nat = \"2m\"\nrun = \"docker-compose kill\"\n")),
            "scenarios/x.toml:9:27: incomplete command: expected `docker-compose kill <service>`"
        );
        assert_eq!(
            err(&file("\n[[step]]\nat = \"2m\"\nrun = \"sim link kafka => client loss 0.5\"\n")),
            "scenarios/x.toml:9:23: unexpected `=>`: expected `sim link <node> -> <node> \
             [delay <min>..<max>] [loss <p>] | clear`"
        );
        assert_eq!(
            err(&file("\n[[step]]\nat = \"2m\"\nrun = \"flink list --all\"\n")),
            "scenarios/x.toml:9:19: unexpected `--all`: expected `flink list`"
        );
        assert_eq!(
            err(&file("\n[[step]]\nat = \"2m\"\nrun = \"curl -X DELETE localhost:8081/jobs\"\n")),
            "scenarios/x.toml:9:16: bad `curl` line: unknown method `DELETE`: expected GET, POST or PATCH"
        );
    }

    #[test]
    fn a_response_assertion_must_name_a_curl_step_and_check_something() {
        let step = "\n[[step]]\nat = \"2m\"\nrun = \"curl localhost:8081/jobs\"\n";
        let scenario = parse(&file(&format!(
            "{step}\n[[expect.response]]\nrequest = \"curl localhost:8081/jobs\"\nfield = \"/jobs/0/status\"\nequals = \"RUNNING\"\n"
        )))
        .unwrap();
        assert_eq!(
            scenario.expect.responses[0].checks,
            vec![ResponseCheck::Equals { field: "/jobs/0/status".into(), value: "RUNNING".into() }]
        );
        let again = parse(&scenario.to_toml()).unwrap();
        assert_eq!(again, scenario, "the banner reads back");
        assert_eq!(
            err(&file(&format!("{step}\n[[expect.response]]\nrequest = \"curl localhost:8081/overview\"\nstatus = 200\n"))),
            "scenarios/x.toml:12:11: `curl localhost:8081/overview` is no `curl` step of this file \
             (its curl steps: curl localhost:8081/jobs)"
        );
        let no_check = err(&file(&format!("{step}\n[[expect.response]]\nrequest = \"curl localhost:8081/jobs\"\n")));
        assert!(no_check.starts_with("scenarios/x.toml:11:1: nothing to check"), "{no_check}");
        let bad_pointer = err(&file(&format!(
            "{step}\n[[expect.response]]\nrequest = \"curl localhost:8081/jobs\"\nfield = \"state\"\nequals = 1\n"
        )));
        assert!(bad_pointer.contains("bad field `state`: expected a JSON pointer"), "{bad_pointer}");
    }

    #[test]
    fn command_in_an_escaped_string_points_at_the_value() {
        assert_eq!(
            err(&file("\n[[step]]\nat = \"2m\"\nrun = \"docker-compose\\tkill kafak\"\n")),
            "scenarios/x.toml:9:7: unknown service `kafak` (known: jobmanager, taskmanager, \
             taskmanager-1, kafka, clickevent-generator, client, storage)"
        );
    }

    #[test]
    fn bad_flink_run_line_points_at_the_offending_word() {
        let bad = |run: &str| err(&file("").replace(RUN, run));
        assert_eq!(
            bad("flink run -d /opt/ClickCountJob.jar --checkpionting"),
            "scenarios/x.toml:5:44: bad `flink run` line: unknown option `--checkpionting`"
        );
        assert_eq!(
            bad("flink run -p 0 /opt/ClickCountJob.jar"),
            "scenarios/x.toml:5:21: bad `flink run` line: bad parallelism `0`: expected a whole number \
             from 1 to 32768"
        );
        assert_eq!(
            bad("flink run -d"),
            "scenarios/x.toml:5:20: bad `flink run` line: no jar file given: write `flink run -d \
             /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing --event-time`"
        );
        // The jar left out: `--checkpointing` was reported as an unknown option.
        assert_eq!(
            bad("flink run -d --checkpointing --event-time"),
            "scenarios/x.toml:5:21: bad `flink run` line: `--checkpointing` is the program's option and \
             comes after the jar: write `flink run -d /opt/ClickCountJob.jar --bootstrap.servers \
             kafka:9092 --checkpointing --event-time`"
        );
        assert_eq!(
            bad("docker-compose up -d"),
            "scenarios/x.toml:5:8: bad `flink run` line: expected `flink run ...`, got `docker-compose up -d`"
        );
    }

    /// An exactly-once sink without `--checkpointing` ran and never committed anything.
    #[test]
    fn exactly_once_sink_without_checkpointing_is_refused_naming_the_run_line() {
        let no_checkpoints = "flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --event-time";
        assert_eq!(
            err(&file("sink = \"exactly-once\"\n").replace(RUN, no_checkpoints)),
            "scenarios/x.toml:5:8: the exactly-once sink needs `--checkpointing`: it commits only when \
             a checkpoint completes, so nothing would ever be committed (add `--checkpointing` to the \
             `flink run` line, or use sink = \"at-least-once\")"
        );
        let step = format!("sink = \"exactly-once\"\n\n[[step]]\nat = \"3m\"\nrun = \"{no_checkpoints}\"\n");
        assert_eq!(
            err(&file(&step)),
            "scenarios/x.toml:10:8: this `flink run` has no `--checkpointing`, but the scenario's sink \
             ([job] sink) is exactly-once, which commits only when a checkpoint completes, so nothing \
             would ever be committed (add `--checkpointing` to the line, or use sink = \"at-least-once\" \
             in [job])"
        );
        // At least once, neither needs checkpoints.
        assert!(parse(&file(&step.replace("exactly-once", "at-least-once")).replace(RUN, no_checkpoints)).is_ok());
    }

    #[test]
    fn bootstrap_servers_must_be_the_playground_broker() {
        assert_eq!(
            err(&file("").replace("kafka:9092", "localhost:9092")),
            "scenarios/x.toml:5:64: unknown bootstrap server `localhost:9092`: the playground's broker \
             is kafka:9092"
        );
    }

    #[test]
    fn name_must_equal_the_file_stem() {
        assert_eq!(
            err(&file("").replace("\"x\"", "\"steady-state\"")),
            "scenarios/x.toml:1:8: name `steady-state` does not match the file name: expected `x`"
        );
    }

    #[test]
    fn zero_taskmanagers_slots_duration_or_pace_are_errors() {
        assert_eq!(
            err(&file("\n[cluster]\ntaskmanagers = 0\n")),
            "scenarios/x.toml:8:16: `taskmanagers` must be greater than 0"
        );
        assert_eq!(
            err(&file("\n[cluster]\nslots = 0\n")),
            "scenarios/x.toml:8:9: `slots` must be greater than 0"
        );
        assert_eq!(
            err(&file("").replace("\"10m\"", "\"0s\"")),
            "scenarios/x.toml:2:12: `duration` must be greater than 0"
        );
        assert_eq!(
            err(&file("\n[generator]\npace = \"0ms\"\n")),
            "scenarios/x.toml:8:8: `pace` must be greater than 0"
        );
        assert_eq!(
            err(&file("\n[cluster]\nslots = -1\n")),
            "scenarios/x.toml:8:9: invalid value: integer `-1`, expected u32"
        );
    }

    #[test]
    fn durations_in_months_or_above_thirty_days_and_tiny_paces_are_located_errors() {
        assert_eq!(
            err(&file("").replace("\"10m\"", "\"10M\"")),
            "scenarios/x.toml:2:12: bad duration `10M`: `M` means months, which have no fixed length \
             (accepted units: ns, us, ms, s, m, h, d, and their long forms such as min, hours, days; `m` \
             is minutes)"
        );
        assert_eq!(
            err(&file("").replace("\"10m\"", "\"999h\"")),
            "scenarios/x.toml:2:12: duration `999h` is too long: at most 30 days of simulated time"
        );
        assert!(
            err(&file("\n[[step]]\nat = \"1y\"\nrun = \"docker-compose kill kafka\"\n"))
                .starts_with("scenarios/x.toml:8:6: bad duration `1y`: `y` means years")
        );
        assert_eq!(
            err(&file("\n[[step]]\nat = \"1m\"\nrun = \"sim link kafka -> client delay 1ms..2M\"\n")),
            "scenarios/x.toml:9:44: bad duration `2M`: `M` means months, which have no fixed length \
             (accepted units: ns, us, ms, s, m, h, d, and their long forms such as min, hours, days; `m` \
             is minutes)"
        );
        assert_eq!(
            err(&file("\n[generator]\npace = \"1ns\"\n")),
            "scenarios/x.toml:8:8: `pace` must be at least 100us: the generator emits one event per \
             pace, and a smaller one (more than 10000 events per second of simulated time) would not finish"
        );
        assert_eq!(parse(&file("\n[generator]\npace = \"100us\"\n")).unwrap().generator.pace, PACE_MIN);
    }

    #[test]
    fn run_duration_follows_the_file_rules() {
        assert_eq!(parse_run_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_run_duration("0s").unwrap_err().to_string(), "`duration` must be greater than 0");
        assert!(matches!(parse_run_duration("10M"), Err(ScenarioErrorKind::CalendarUnit { .. })));
        assert!(matches!(parse_run_duration("999h"), Err(ScenarioErrorKind::TooLong { .. })));
        assert!(matches!(parse_run_duration("10 minutes"), Err(ScenarioErrorKind::BadDuration(_))));
    }

    /// 256 TaskManagers panicked the run: their addresses were `10.0.1.<i>` with `i` a `u8`.
    #[test]
    fn hundreds_of_taskmanagers_load_up_to_the_documented_maximum() {
        let scenario = parse(&file(
            "\n[cluster]\ntaskmanagers = 300\n\n[[step]]\nat = \"1m\"\nrun = \"docker-compose kill taskmanager-300\"\n\
             \n[[step]]\nat = \"2m\"\nrun = \"docker-compose scale taskmanager=4096\"\n",
        ))
        .unwrap();
        assert_eq!(scenario.cluster.taskmanagers, 300);
        assert_eq!(
            scenario.steps[0].command,
            Command::Compose(ComposeCommand::Kill(Service::TaskManager(300)))
        );
        assert_eq!(
            err(&file("\n[cluster]\ntaskmanagers = 4097\n")),
            "scenarios/x.toml:8:16: 4097 TaskManagers are too many: at most 4096"
        );
        assert_eq!(
            err(&file("\n[[step]]\nat = \"1m\"\nrun = \"docker-compose scale taskmanager=256000\"\n")),
            "scenarios/x.toml:9:29: 256000 TaskManagers are too many: at most 4096"
        );
        // Scaling to none is a valid step: every TaskManager is removed.
        assert!(parse(&file("\n[[step]]\nat = \"1m\"\nrun = \"docker-compose scale taskmanager=0\"\n")).is_ok());
    }

    #[test]
    fn anchored_step_times_parse_print_and_point_at_mistakes() {
        let step = |at: &str| file(&format!("\n[[step]]\nat = {at}\nrun = \"docker-compose kill kafka\"\n\n[[step]]\nat = \"9m\"\nrun = \"docker-compose up -d kafka\"\n"));
        let scenario = parse(&step(r#"{ after = "checkpoint-completed", n = 3, delay = { min = "0ms", max = "50ms" }, by = "2m" }"#)).unwrap();
        assert_eq!(
            scenario.steps[0].at,
            StepTime::After {
                anchor: Anchor::CheckpointCompleted,
                n: 3,
                delay_min: Duration::ZERO,
                delay_max: Duration::from_millis(50),
                by: Duration::from_secs(120),
            }
        );
        assert_eq!(scenario.steps[0].at.to_string(), "0s..50ms after checkpoint-completed #3 (by 2m)");
        assert_eq!(scenario.steps[0].at.latest(), Duration::from_millis(120_050));
        let again = Scenario::parse(&scenario.to_toml(), &scenario.path).unwrap();
        assert_eq!(again, scenario);
        assert_eq!(
            err(&step(r#"{ after = "checkpoint-done", n = 3, delay = "1ms", by = "2m" }"#)),
            "scenarios/x.toml:8:16: unknown event `checkpoint-done` to anchor a step to (known: \
             checkpoint-triggered, checkpoint-completed, sink-committed, window-fired, results-checkpointed)"
        );
        assert_eq!(
            err(&step(r#"{ after = "window-fired", n = 0, delay = "1ms", by = "2m" }"#)),
            "scenarios/x.toml:8:36: `n` must be a whole number from 1 to 100000, the occurrence of the \
             event counted from 1: got 0"
        );
        assert!(err(&step(r#"{ after = "window-fired", n = 1, delay = "1ms" }"#)).contains("missing field `by`"));
        assert!(err(&step(r#"{ min = "1m", max = "2m", by = "2m" }"#)).contains("`by` belongs to an anchored time"));
        assert_eq!(
            err(&step(r#"{ after = "window-fired", n = 1, delay = "1ms", by = "10m" }"#)),
            "scenarios/x.toml:8:6: step at 10m 1ms is after the end of the scenario (duration = \"10m\")"
        );
    }

    #[test]
    fn jitter_is_off_by_default_and_at_most_the_out_of_orderness_bound() {
        assert_eq!(parse(&file("")).unwrap().generator.jitter, Duration::ZERO);
        let jittered = parse(&file("\n[generator]\njitter = \"200ms\"\n")).unwrap();
        assert_eq!(jittered.generator.jitter, Duration::from_millis(200));
        assert_eq!(Scenario::parse(&jittered.to_toml(), &jittered.path).unwrap(), jittered);
        assert_eq!(
            err(&file("\n[generator]\njitter = \"201ms\"\n")),
            "scenarios/x.toml:8:10: `jitter` 201ms is too large: at most 200ms (the job's out-of-orderness \
             bound, within which no event is late)"
        );
    }

    #[test]
    fn step_after_the_duration_is_an_error() {
        assert_eq!(
            err(&file("\n[[step]]\nat = \"11m\"\nrun = \"docker-compose kill kafka\"\n")),
            "scenarios/x.toml:8:6: step at 11m is after the end of the scenario (duration = \"10m\")"
        );
        assert_eq!(
            err(&file(
                "\n[[step]]\nat = { min = \"9m\", max = \"10m 1s\" }\nrun = \"docker-compose kill kafka\"\n"
            )),
            "scenarios/x.toml:8:6: step at 10m 1s is after the end of the scenario (duration = \"10m\")"
        );
        // A step at the very end is allowed.
        assert!(parse(&file("\n[[step]]\nat = \"10m\"\nrun = \"docker-compose kill kafka\"\n")).is_ok());
    }

    #[test]
    fn malformed_toml_names_the_line() {
        assert_eq!(
            err("name = \"x\"\nduration = \"10m\n"),
            "scenarios/x.toml:2:16: invalid basic string, expected `\"`"
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = Scenario::load(Path::new("scenarios/no-such-scenario.toml")).unwrap_err();
        assert!(e.location.is_none());
        assert_eq!(e.to_string(), "scenarios/no-such-scenario.toml: no such file");
    }

    /// A scratch folder of scenario files for `resolve`, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("flinksim-scenarios-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            for file in ["steady-state.toml", "failure-recovery.toml", "notes.md", "pitfalls/foo.toml", "pitfalls/bar.toml"] {
                let path = dir.join(file);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, "").unwrap();
            }
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn resolve_takes_a_name_or_a_path_and_lists_known_names() {
        let scratch = Scratch::new("names");
        let dir = &scratch.0;
        let path = dir.join("steady-state.toml");
        assert_eq!(Scenario::resolve("steady-state", dir).unwrap(), path);
        assert_eq!(Scenario::resolve(path.to_str().unwrap(), Path::new("elsewhere")).unwrap(), path);
        let e = Scenario::resolve("stedy-state", dir).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: unknown scenario `stedy-state` (known: failure-recovery, pitfalls/bar, pitfalls/foo, steady-state)",
                dir.join("stedy-state.toml").display()
            )
        );
    }

    /// A missing file, a directory and a path outside scenarios/ were all `unknown scenario`.
    #[test]
    fn resolve_says_what_is_wrong_with_a_path() {
        let scratch = Scratch::new("paths");
        let dir = &scratch.0;
        let e = Scenario::resolve("other/steady-state.toml", dir).unwrap_err();
        assert_eq!(e.to_string(), "other/steady-state.toml: no such file");
        let folder = dir.join("pitfalls");
        let e = Scenario::resolve(folder.to_str().unwrap(), Path::new("elsewhere")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: is a directory, not a scenario file (scenario files in it: bar.toml, foo.toml)",
                folder.display()
            )
        );
        let e = Scenario::load(&folder).unwrap_err();
        assert!(e.to_string().ends_with(": is a directory, not a scenario file (scenario files in it: bar.toml, foo.toml)"));
        let e = Scenario::resolve("pitfalls", dir).unwrap_err();
        assert!(e.to_string().ends_with("pitfalls: is a directory, not a scenario file (scenario files in it: bar.toml, foo.toml)"), "{e}");
    }

    /// Scenarios in subfolders (scenarios/pitfalls/, scenarios/regressions/) are named
    /// `pitfalls/foo` on the command line.
    #[test]
    fn a_name_with_a_folder_resolves_under_scenarios_first() {
        let scratch = Scratch::new("folders");
        let dir = &scratch.0;
        assert_eq!(Scenario::resolve("pitfalls/foo", dir).unwrap(), dir.join("pitfalls/foo.toml"));
        let e = Scenario::resolve("pitfalls/baz", dir).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}: no such file (nor a file `pitfalls/baz`)", dir.join("pitfalls/baz.toml").display())
        );
        // Not under scenarios/: then the name is a path.
        let elsewhere = dir.join("pitfalls/foo.toml");
        let without_extension = dir.join("pitfalls/plain");
        std::fs::write(&without_extension, "").unwrap();
        assert_eq!(Scenario::resolve(without_extension.to_str().unwrap(), Path::new("elsewhere")).unwrap(), without_extension);
        assert_eq!(Scenario::resolve(elsewhere.to_str().unwrap(), Path::new("elsewhere")).unwrap(), elsewhere);
    }

    /// toml said only "duplicate key".
    #[test]
    fn duplicate_key_or_table_names_it_and_its_first_line() {
        assert_eq!(
            err(&file("\n[cluster]\nslots = 2\nslots = 3\n")),
            "scenarios/x.toml:9:1: duplicate key `cluster.slots`: already set on line 8"
        );
        assert_eq!(
            err(&file("").replace("duration = \"10m\"\n", "duration = \"10m\"\nduration = \"5m\"\n")),
            "scenarios/x.toml:3:1: duplicate key `duration`: already set on line 2"
        );
        assert_eq!(
            err(&file("\n[[step]]\nat = { min = \"1m\", min = \"2m\" }\nrun = \"docker-compose kill kafka\"\n")),
            "scenarios/x.toml:8:20: duplicate key `step.at.min`: already set on line 8"
        );
        assert_eq!(
            err(&file("\n[job]\nsink = \"exactly-once\"\n")),
            "scenarios/x.toml:7:2: duplicate table `[job]`: already opened on line 4 (write each table once)"
        );
    }

    #[test]
    fn step_written_as_a_single_table_says_to_write_two_brackets() {
        assert_eq!(
            err(&file("\n[step]\nat = \"1m\"\nrun = \"docker-compose kill kafka\"\n")),
            "scenarios/x.toml:7:1: `[step]` is a single table: write `[[step]]`, with two brackets, above each step"
        );
    }
}
