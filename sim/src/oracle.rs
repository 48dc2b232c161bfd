//! The oracle (docs/oracle.md#what-correct-means): reads `input` and `output` back, recounts every
//! (window, page) from `input` independently, and accounts for every event of it: counted in the
//! result judged (the largest copy), dropped as late by the window operator, lost for a cause the
//! trace records, or unaccounted for. `recount = counted + late + lost + unaccounted` holds for
//! every row; unaccounted events are an engine bug, late drops and loss are judged against what the
//! scenario expects of each (`none`, `allowed`, `required`).

use crate::timeline::clock;
use std::collections::BTreeMap;
use std::time::Duration;

use flinksim_engine::kafka::{Consumer, ConsumerConfig, IsolationLevel, TopicPartition};
use flinksim_engine::kafka::transaction::{fence, list_transactions};
use flinksim_engine::protocol::kafka::TransactionState;
use flinksim_engine::protocol::click_event::{
    ClickEvent, ClickEventStatistics, DateReader, PAGES, WINDOW_MS, window_start,
};
use flinksim_engine::taskmanager::operator::kafka_source::GROUP;
use flinksim_engine::rpc::Rpc;
use serde::Serialize;
use smol_str::SmolStr;

pub use crate::accounting::{
    Causes, IdlePartition, JobFailedForGood, JobLost, LateWindow, OpenTransaction, Rewind, StateLost, TransactionLost,
};
use crate::scenario::{
    CountsExpectation, DuplicatesExpectation, Expect, LastStableOffsetExpectation, LateExpectation, LossExpectation,
};
use crate::liveness::LivenessViolation;
use crate::verdict::VerdictClass;

/// A window is expected in `output` when it ends at least this long before the latest event.
pub const EXPECTED_WINDOW_SLACK_MS: i64 = 2_000;

/// What the oracle read back from Kafka.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Per (window start, page): events in `input`.
    pub input_counts: BTreeMap<(i64, SmolStr), u64>,
    /// Records in `input`.
    pub input_events: u64,
    /// The latest event time in `input`.
    pub max_event_time: Option<i64>,
    /// The event time of the generator's first event (its `start_event_time`, 0 by default):
    /// expected windows begin with its window.
    pub first_event_time: i64,
    /// Per (window start, page): the count of every copy in `output`, in offset order.
    pub output_counts: BTreeMap<(i64, SmolStr), Vec<u64>>,
    /// Records in `output`.
    pub output_records: u64,
    /// Records of either topic that did not parse.
    pub malformed: Vec<MalformedRecord>,
    /// Records of `input` past the job's committed offsets when the oracle stopped waiting
    /// for it to read them (0 when it caught up).
    pub unread_at_end: u64,
    /// Each `output` partition's ends and what a reader at either isolation level reads of it.
    pub output_partitions: Vec<OutputPartition>,
    /// Transactional ids whose transaction was still open at the broker (`Ongoing`) when the
    /// oracle read.
    pub open_transactions: Vec<SmolStr>,
    /// When the run ended (its duration): how long a transaction open at the end had been.
    pub ended_at: Duration,
    /// Zombies' transactions that held the last stable offset and that the oracle fenced
    /// before it read `output` again for the verdict (see [`read_output_after_fencing`]).
    pub fenced: Vec<SmolStr>,
    /// Whether `output` was read at `read_uncommitted`, as the scenario's reader reads it
    /// ([`Scenario::reader_isolation`](crate::Scenario::reader_isolation)): such a reader also
    /// reads the results of transactions that never committed (docs/oracle.md#the-reader).
    pub read_uncommitted: bool,
}

/// A record the oracle read that did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedRecord {
    /// Its topic.
    pub topic: SmolStr,
    /// What is wrong with it.
    pub error: String,
}

impl std::fmt::Display for MalformedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.topic, self.error)
    }
}

/// One `output` partition as the oracle found it: its high watermark and last stable offset, and
/// the results a `read_uncommitted` and a `read_committed` reader read from it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutputPartition {
    /// The partition.
    pub partition: u32,
    /// The end a `read_uncommitted` reader reads to.
    pub high_watermark: u64,
    /// The end a `read_committed` reader reads to: the first offset of the oldest open
    /// transaction, or the high watermark.
    pub last_stable_offset: u64,
    /// Results a `read_uncommitted` reader reads (aborted transactions' included).
    pub read_uncommitted: u64,
    /// Results a `read_committed` reader reads.
    pub read_committed: u64,
}

/// `output` partitions whose last stable offset transactions left open hold back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StuckLastStableOffset {
    /// The partitions held (last stable offset below the high watermark).
    pub partitions: Vec<OutputPartition>,
    /// The transactions holding them, open at the broker, their producers gone.
    pub transactions: Vec<OpenTransaction>,
}

impl std::fmt::Display for StuckLastStableOffset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held: Vec<String> = self
            .partitions
            .iter()
            .map(|p| {
                format!(
                    "partition {} at offset {} of {} ({} results for read_committed, {} for read_uncommitted)",
                    p.partition, p.last_stable_offset, p.high_watermark, p.read_committed, p.read_uncommitted
                )
            })
            .collect();
        let by: Vec<String> = self.transactions.iter().map(ToString::to_string).collect();
        let held_by = if self.by_zombies() {
            "Held by zombies' transactions (tasks of a TaskManager the JobManager had declared lost, \
             writing on until they heard of it), which no restored sink fences: the real systems too \
             leave them to the broker's transaction timeout"
        } else {
            "Held by transactions whose producers are gone, which nothing aborts before the broker's \
             transaction timeout"
        };
        write!(
            f,
            "read_committed readers of output are stuck at the last stable offset of {}, while read_uncommitted \
             readers read on to the high watermark. {held_by}: {}",
            held.join(" and "),
            by.join("; ")
        )
    }
}

impl StuckLastStableOffset {
    /// Whether zombies wrote every transaction holding it ([`OpenTransaction::zombie`]).
    pub fn by_zombies(&self) -> bool {
        !self.transactions.is_empty() && self.transactions.iter().all(|t| t.zombie.is_some())
    }
}

impl std::fmt::Display for OutputPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "output partition {}: read_committed reads {} results to offset {} (the last stable offset), \
             read_uncommitted {} to {} (the high watermark)",
            self.partition, self.read_committed, self.last_stable_offset, self.read_uncommitted, self.high_watermark
        )
    }
}

/// How long a transaction must have been open at the end of a run, holding a partition's last
/// stable offset, to count as stuck: a live exactly-once sink commits every second.
pub const STUCK_AFTER: Duration = Duration::from_secs(10);

/// How one (window, page) came out: the first that applies, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RowStatus {
    /// No event of the window exists in `input` (the generator was down): nothing to count.
    EmptyAtSource,
    /// A copy counts more than `input` holds, or counted, late and lost add up to more.
    WrongCount,
    /// Expected but absent from `output`, with events nothing accounts for.
    Missing,
    /// A copy counts less than `input` holds, and nothing accounts for the difference.
    Short,
    /// Events lost for a cause the trace records (see [`Causes`]).
    Lost,
    /// Events dropped as late by the window operator.
    Late,
    /// More than one copy.
    Duplicated,
    /// One copy, counting what `input` holds.
    Ok,
}

impl RowStatus {
    /// The status as the window table prints it.
    pub fn name(self) -> &'static str {
        match self {
            RowStatus::EmptyAtSource => "empty at source",
            RowStatus::WrongCount => "WRONG COUNT",
            RowStatus::Missing => "MISSING",
            RowStatus::Short => "SHORT",
            RowStatus::Lost => "lost",
            RowStatus::Late => "late",
            RowStatus::Duplicated => "duplicated",
            RowStatus::Ok => "ok",
        }
    }
}

/// One row of the window table: where each event of the (window, page) went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WindowRow {
    /// Window start, ms of event time.
    pub window_start_ms: i64,
    /// The page.
    pub page: SmolStr,
    /// The counts of its copies in `output`, in offset order (empty if none).
    pub counts: Vec<u64>,
    /// The recount from `input`.
    pub recount: u64,
    /// The copy the row is judged by: the largest (0 without one). Smaller copies are partial
    /// (a rolled-back attempt's, or events read again after a lost state).
    pub counted: u64,
    /// Events the window operator dropped as late (drops a restore took back left out).
    pub late: u64,
    /// Events lost for a cause the trace records.
    pub lost: u64,
    /// `recount − counted − late − lost`: above 0, events nothing accounts for; below 0, more
    /// accounted for than `input` holds.
    pub unaccounted: i64,
    /// The verdict on the row.
    pub status: RowStatus,
    /// Whether a `flink stop --drain` fired the window early and a resume from that savepoint
    /// fired it again: its count is split between two copies, judged by their sum.
    pub split_by_drain: bool,
    /// Whether the scenario accepts what is off in the row (its late drops, loss or copies).
    pub expected: bool,
}

impl WindowRow {
    /// Whether some copy counts other than the one judged.
    pub fn has_partial_copies(&self) -> bool {
        self.counts.iter().any(|c| *c != self.counted)
    }
}

/// The oracle's findings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OracleReport {
    /// One row per (window, page), expected or emitted, in window then page order.
    pub rows: Vec<WindowRow>,
    /// Records in `input`.
    pub input_events: u64,
    /// Records in `output`.
    pub output_records: u64,
    /// Windows (by start) between the first and the last fired with no result at all.
    pub gaps: Vec<i64>,
    /// Windows (by start) whose input holds fewer than 1000 events for some page (the
    /// generator was down): missing at the source, not lost by the job.
    pub short_at_source: Vec<i64>,
    /// Everything that violates the scenario's expectations; empty means the run passed.
    pub violations: Vec<Violation>,
    /// Things worth knowing that the expectations accept (e.g. expected loss).
    pub notes: Vec<String>,
    /// The findings the scenario accepts, typed (each is also a note): what tools match on.
    pub accepted: Vec<Violation>,
    /// Why results may be missing, as the trace says.
    pub causes: Causes,
    /// What a `read_committed` and a `read_uncommitted` reader read of each `output` partition.
    pub output_partitions: Vec<OutputPartition>,
    /// Transactions left open that hold `read_committed` readers back, if any.
    pub stuck: Option<StuckLastStableOffset>,
    /// Zombies' transactional ids the oracle fenced before reading `output` for the rows
    /// ([`read_output_after_fencing`]).
    pub fenced: Vec<SmolStr>,
}

impl OracleReport {
    /// Whether the run met its expectations.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The run's verdict class: the worst of its violations' (see [`VerdictClass::worst`]).
    pub fn verdict(&self) -> VerdictClass {
        VerdictClass::worst(self.violations.iter().map(Violation::class))
    }

    /// The rows that are not simply right (every row but `Ok` and `EmptyAtSource`).
    pub fn rows_not_ok(&self) -> impl Iterator<Item = &WindowRow> {
        self.rows.iter().filter(|r| !matches!(r.status, RowStatus::Ok | RowStatus::EmptyAtSource))
    }

    /// Events of `input` that the judged copies did not count (late, lost and unaccounted).
    pub fn lost_events(&self) -> u64 {
        self.rows.iter().map(|r| r.recount.saturating_sub(r.counted)).sum()
    }

    /// Events of `input` over all rows: counted, late, lost and unaccounted.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for row in &self.rows {
            totals.recount += row.recount;
            totals.counted += row.counted;
            totals.late += row.late;
            totals.lost += row.lost;
            totals.unaccounted += row.unaccounted;
        }
        totals
    }
}

/// The accounting summed over every row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Events of `input` in the rows.
    pub recount: u64,
    /// Counted in the judged copies.
    pub counted: u64,
    /// Dropped as late.
    pub late: u64,
    /// Lost for a recorded cause.
    pub lost: u64,
    /// Unaccounted for (negative: accounted for more than once).
    pub unaccounted: i64,
}

/// One (window, page) a violation is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowRef {
    /// Window start, ms of event time.
    pub window_start_ms: i64,
    /// The page.
    pub page: SmolStr,
    /// The counts of its copies in `output`.
    pub counts: Vec<u64>,
    /// The recount from `input`.
    pub recount: u64,
    /// Events dropped as late.
    pub late: u64,
    /// Events lost for a recorded cause.
    pub lost: u64,
    /// Events nothing accounts for.
    pub unaccounted: i64,
}

impl From<&WindowRow> for RowRef {
    fn from(row: &WindowRow) -> RowRef {
        RowRef {
            window_start_ms: row.window_start_ms,
            page: row.page.clone(),
            counts: row.counts.clone(),
            recount: row.recount,
            late: row.late,
            lost: row.lost,
            unaccounted: row.unaccounted,
        }
    }
}

/// `hh:mm:ss` of event time, as window tables print a window's start.
pub fn event_clock(ms: i64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

impl std::fmt::Display for RowRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ", event_clock(self.window_start_ms), self.page)?;
        match self.counts.as_slice() {
            [] => write!(f, "missing (input holds {})", self.recount)?,
            counts => {
                let texts: Vec<String> = counts.iter().map(u64::to_string).collect();
                write!(f, "{} of {}", texts.join(", "), self.recount)?;
                let judged = counts.iter().max().copied().unwrap_or(0);
                if counts.iter().any(|c| *c != judged) {
                    write!(f, " (judged by {judged})")?;
                }
            }
        }
        let parts: Vec<String> = [(self.late, "late"), (self.lost, "lost")]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .chain((self.unaccounted != 0).then(|| format!("{} unaccounted", self.unaccounted)))
            .collect();
        if !parts.is_empty() {
            write!(f, ": {}", parts.join(", "))?;
        }
        Ok(())
    }
}

/// How many rows a violation's message lists; the rest are counted.
const ROWS_NAMED: usize = 3;

fn rows_named(rows: &[RowRef]) -> String {
    let mut named: Vec<String> = rows.iter().take(ROWS_NAMED).map(ToString::to_string).collect();
    if rows.len() > ROWS_NAMED {
        named.push(format!("and {} more", rows.len() - ROWS_NAMED));
    }
    named.join("; ")
}

/// What a scenario may require to happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Required {
    /// `late = "required"`: some events dropped as late.
    LateDrops,
    /// `loss = "required"`: some events lost for a recorded cause.
    Loss,
    /// `duplicates = "required"`: some (window, page) written more than once.
    Duplicates,
    /// `last_stable_offset = "stuck"`: a transaction left open holds `read_committed` readers.
    StuckLastStableOffset,
}

/// One kind of thing the run did that the scenario does not accept, with the rows it concerns.
/// Tools match on the variant and its [`class`](Violation::class); the report renders it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Violation {
    /// Nothing was expected or emitted: the run is too short, or nothing ran.
    NothingRan,
    /// Results count more than the input holds, or count events also dropped or lost.
    WrongCounts {
        /// The rows.
        rows: Vec<RowRef>,
    },
    /// More than one result for a (window, page) where one is required.
    Duplicated {
        /// The rows.
        rows: Vec<RowRef>,
    },
    /// Events neither counted, nor dropped as late, nor lost for a recorded cause: an engine
    /// bug.
    Unaccounted {
        /// The rows.
        rows: Vec<RowRef>,
        /// Windows with no result at all between the first and the last fired.
        gap_windows: usize,
    },
    /// Events dropped as late by the window operator (Flink's `numLateRecordsDropped`): the
    /// job's event-time semantics, not an engine bug.
    DroppedAsLate {
        /// The rows.
        rows: Vec<RowRef>,
        /// The first drop of each window concerned.
        windows: Vec<(i64, LateWindow)>,
        /// The last partition that went idle before the first of those drops, if one did.
        idle_before: Option<IdlePartition>,
    },
    /// Events lost for a cause the trace records (a transaction the broker aborted, a job's
    /// state lost with it).
    LostWithCause {
        /// The rows.
        rows: Vec<RowRef>,
        /// The causes.
        causes: Causes,
    },
    /// Events lost with transactions that a sink restoring an older checkpoint aborted after a
    /// newer attempt had written them (an older attempt's late restore fencing its ids): a
    /// later checkpoint recorded them, and the restored sink could not commit them. Flink's
    /// committer reports the same ("most likely data loss") (docs/oracle.md#lost-to-an-older-restore).
    LostToOlderRestore {
        /// The rows.
        rows: Vec<RowRef>,
        /// The transactions lost so.
        transactions: Vec<crate::accounting::TransactionLost>,
    },
    /// Windows a `flink stop --drain` fired with a partial count, fired again with the rest by
    /// the job resumed from that savepoint: two copies where one is expected (Flink's CLI warns
    /// against resuming after a drain).
    SplitByDrain {
        /// The rows.
        rows: Vec<RowRef>,
    },
    /// Results committed twice because a savepoint was restored a second time: the sources
    /// rewound to its offsets, and the first resume's committed transactions stay committed
    /// (exactly-once holds along one line of restores, not across a restore of an older
    /// savepoint).
    RewoundBySavepoint {
        /// The rows.
        rows: Vec<RowRef>,
        /// The restores that rewound.
        rewinds: Vec<Rewind>,
    },
    /// Results a `read_uncommitted` reader read more than once because the copies beyond one
    /// were written in transactions that never committed (aborted when a restored sink fenced
    /// its ids, or by the broker): `read_committed` readers never see them
    /// (docs/oracle.md#the-reader).
    ReadUncommitted {
        /// The rows.
        rows: Vec<RowRef>,
    },
    /// Results committed twice because a `flink stop` failed after its sinks had committed the
    /// savepoint's transactions, and the job restored an older checkpoint.
    ReplayedAfterFailedStop {
        /// The rows.
        rows: Vec<RowRef>,
        /// The failed stops.
        stops: Vec<crate::accounting::ReplayedAfterStop>,
    },
    /// `read_committed` readers of `output` are held at the last stable offset of some partitions
    /// by transactions whose producer is gone: they see nothing past it, while
    /// `read_uncommitted` readers read on to the high watermark, until the broker's transaction
    /// timeout aborts them.
    LastStableOffsetStuck(StuckLastStableOffset),
    /// No result from this window on, to the end of the run: the job never produced again.
    Stalled {
        /// The first window with no result.
        since_window_ms: i64,
        /// The rows.
        rows: Vec<RowRef>,
    },
    /// The scenario requires late drops or loss (a pitfall it replays) and the run shows none.
    RequiredButAbsent {
        /// What was required.
        what: Required,
    },
    /// A record of a topic that does not parse.
    Malformed {
        /// The topic and what is wrong.
        record: String,
    },
    /// A processing-time run whose results, summed per page, do not count what the job read
    /// (docs/oracle.md#processing-time-runs): events lost, or counted twice.
    NotConserved {
        /// The pages that do not add up.
        pages: Vec<crate::processing_time::PageBalance>,
    },
    /// Processing-time results whose window does not match when their events were handled, or
    /// that no Counter traced firing.
    WindowNotMatched {
        /// The results.
        results: Vec<crate::processing_time::WindowMismatch>,
    },
    /// A finding of the liveness phase (detection or recovery too slow, the tail not caught up,
    /// a job that should have stalled).
    Liveness(LivenessViolation),
    /// An answer to a `curl` step did not say what `[[expect.response]]` requires.
    Response(crate::responses::ResponseViolation),
}

impl Violation {
    /// Whether this is a failure the real systems share, named from the trace, that a fuzz base
    /// accepts with `"explained"`: a savepoint restored again, a stop that failed past its
    /// commits, transactions an older attempt's late restore aborted.
    pub fn shared_with_flink(&self) -> bool {
        matches!(
            self,
            Violation::RewoundBySavepoint { .. } | Violation::ReplayedAfterFailedStop { .. } | Violation::LostToOlderRestore { .. }
        )
    }

    /// What kind of failure it is.
    pub fn class(&self) -> VerdictClass {
        match self {
            // Zombies' transactions hold readers in the real systems too: Flink's semantics.
            Violation::LastStableOffsetStuck(stuck) if stuck.by_zombies() => VerdictClass::Semantic,
            Violation::NothingRan
            | Violation::Stalled { .. }
            | Violation::LastStableOffsetStuck(_)
            | Violation::Liveness(_) => VerdictClass::Liveness,
            Violation::DroppedAsLate { .. }
            | Violation::LostWithCause { .. }
            | Violation::LostToOlderRestore { .. }
            | Violation::SplitByDrain { .. }
            | Violation::RewoundBySavepoint { .. }
            | Violation::ReadUncommitted { .. }
            | Violation::ReplayedAfterFailedStop { .. } => VerdictClass::Semantic,
            Violation::WrongCounts { .. }
            | Violation::Duplicated { .. }
            | Violation::Unaccounted { .. }
            | Violation::RequiredButAbsent { .. }
            | Violation::NotConserved { .. }
            | Violation::WindowNotMatched { .. }
            | Violation::Malformed { .. }
            | Violation::Response(_) => VerdictClass::Correctness,
        }
    }
}

fn sum(rows: &[RowRef], of: impl Fn(&RowRef) -> i64) -> i64 {
    rows.iter().map(of).sum()
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::NothingRan => {
                f.write_str("no window was expected or emitted: the run is too short or nothing ran")
            }
            Violation::WrongCounts { rows } => write!(
                f,
                "{} (window, page) results count more than input holds, or count events also dropped or lost: {}",
                rows.len(),
                rows_named(rows)
            ),
            Violation::Duplicated { rows } => write!(
                f,
                "{} (window, page) results appear more than once: {}",
                rows.len(),
                rows_named(rows)
            ),
            Violation::Unaccounted { rows, gap_windows } => write!(
                f,
                "{} events of {} (window, page) rows are unaccounted for: not counted, not dropped as late, \
                 and nothing in the trace loses them ({gap_windows} windows missing between the first and the last fired): {}",
                sum(rows, |r| r.unaccounted),
                rows.len(),
                rows_named(rows)
            ),
            Violation::DroppedAsLate { rows, windows, idle_before } => {
                write!(
                    f,
                    "{} events of {} (window, page) rows dropped as late by the window operator: {}",
                    sum(rows, |r| r.late as i64),
                    rows.len(),
                    rows_named(rows)
                )?;
                for (start, late) in windows.iter().take(ROWS_NAMED) {
                    write!(
                        f,
                        "; window {} s had fired before them ({} at {}, watermark {})",
                        start / 1000,
                        late.task,
                        clock(late.at),
                        late.watermark_ms
                    )?;
                }
                if let Some(idle) = idle_before {
                    write!(
                        f,
                        ". Likely cause: {} marked partition {} idle at {} (no record for the {} s \
                         idleness timeout), so the other partitions' watermark ran ahead of its backlog",
                        idle.task,
                        idle.partition,
                        clock(idle.at),
                        idle.idle_after.as_secs_f64()
                    )?;
                }
                Ok(())
            }
            Violation::LostWithCause { rows, causes } => write!(
                f,
                "{} events of {} (window, page) rows lost: {}. Why: {causes}",
                sum(rows, |r| r.lost as i64),
                rows.len(),
                rows_named(rows)
            ),
            Violation::LostToOlderRestore { rows, transactions } => {
                let named: Vec<String> = transactions.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "{} events of {} (window, page) rows lost with transactions an older attempt's late restore \
                     aborted after the newer attempt wrote them, as in Flink: {}. Lost: {}",
                    sum(rows, |r| r.lost as i64),
                    rows.len(),
                    named.join("; "),
                    rows_named(rows)
                )
            }
            Violation::SplitByDrain { rows } => write!(
                f,
                "{} (window, page) results came out twice, split by `flink stop --drain` and the resume from its \
                 savepoint (the drain fired the windows open at the stop early; the resumed job fired them again \
                 with the rest of their count): {}",
                rows.len(),
                rows_named(rows)
            ),
            Violation::RewoundBySavepoint { rows, rewinds } => {
                write!(
                    f,
                    "{} (window, page) results were committed twice because a savepoint was restored a second time: ",
                    rows.len()
                )?;
                let named: Vec<String> = rewinds.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "{}. The sources rewind to the savepoint's offsets and write those windows again, while \
                     the first resume's transactions stay committed (exactly-once holds along one line of \
                     restores): {}",
                    named.join("; "),
                    rows_named(rows)
                )
            }
            Violation::ReadUncommitted { rows } => write!(
                f,
                "{} (window, page) results came out more than once to this read_uncommitted reader: the copies \
                 beyond one were written in transactions that never committed (aborted when a restored sink \
                 fenced their ids, or by the broker), which read_committed readers never see: {}",
                rows.len(),
                rows_named(rows)
            ),
            Violation::ReplayedAfterFailedStop { rows, stops } => {
                let named: Vec<String> = stops.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "{} (window, page) results were committed twice because a `flink stop` failed after its sinks \
                     had committed the savepoint's transactions: {}. A savepoint is never the checkpoint a failover \
                     restores, in Flink as here (its stop fails with \"The savepoint is consistent, but might have \
                     uncommitted transactions\"): {}",
                    rows.len(),
                    named.join("; "),
                    rows_named(rows)
                )
            }
            Violation::LastStableOffsetStuck(stuck) => stuck.fmt(f),
            Violation::Stalled { since_window_ms, rows } => write!(
                f,
                "no result from window {} s on to the end of the run: {} expected (window, page) results never came",
                since_window_ms / 1000,
                rows.len()
            ),
            Violation::RequiredButAbsent { what: Required::LateDrops } => f.write_str(
                "the scenario requires events dropped as late (`late = \"required\"`), and the window operator dropped none",
            ),
            Violation::RequiredButAbsent { what: Required::Duplicates } => f.write_str(
                "the scenario requires copies (`duplicates = \"required\"`), and every result came out once",
            ),
            Violation::RequiredButAbsent { what: Required::Loss } => f.write_str(
                "the scenario requires loss (`loss = \"required\"`), and no event was lost",
            ),
            Violation::RequiredButAbsent { what: Required::StuckLastStableOffset } => f.write_str(
                "the scenario requires a stuck last stable offset (`last_stable_offset = \"stuck\"`), and \
                 read_committed readers read every output partition to its end",
            ),
            Violation::Malformed { record } => write!(f, "malformed record: {record}"),
            Violation::NotConserved { pages } => {
                let named: Vec<String> = pages.iter().map(ToString::to_string).collect();
                write!(f, "results do not count what the job read, per page: {}", named.join("; "))
            }
            Violation::WindowNotMatched { results } => {
                let mut named: Vec<String> = results.iter().take(ROWS_NAMED).map(ToString::to_string).collect();
                if results.len() > ROWS_NAMED {
                    named.push(format!("and {} more", results.len() - ROWS_NAMED));
                }
                write!(
                    f,
                    "{} processing-time results do not match when their events were handled: {}",
                    results.len(),
                    named.join("; ")
                )
            }
            Violation::Liveness(violation) => violation.fmt(f),
            Violation::Response(violation) => violation.fmt(f),
        }
    }
}


/// The expected count of a complete window per page.
pub const EVENTS_PER_WINDOW_AND_PAGE: u64 = (WINDOW_MS / 15) as u64;

/// Judges what was observed against the expectations; `causes` account for what was not
/// counted.
pub fn judge(observed: &Observed, expect: &Expect, causes: &Causes) -> OracleReport {
    let expected_until = observed.max_event_time.map(|t| t - EXPECTED_WINDOW_SLACK_MS);
    // Every window that should have fired, and every window that did.
    let mut keys: BTreeMap<(i64, SmolStr), ()> = BTreeMap::new();
    if let Some(until) = expected_until {
        let mut start = window_start(observed.first_event_time);
        while start + WINDOW_MS <= until {
            for page in PAGES {
                keys.insert((start, SmolStr::new(page)), ());
            }
            start += WINDOW_MS;
        }
    }
    keys.extend(observed.output_counts.keys().map(|k| (k.clone(), ())));
    keys.extend(
        observed
            .input_counts
            .keys()
            .filter(|(start, _)| expected_until.is_some_and(|u| start + WINDOW_MS <= u))
            .map(|k| (k.clone(), ())),
    );
    let recount = |key: &(i64, SmolStr)| observed.input_counts.get(key).copied().unwrap_or(0);
    let copies = |key: &(i64, SmolStr)| observed.output_counts.get(key).cloned().unwrap_or_default();
    // Whether every page of a window came out with its full recount: where a lost state's
    // span begins.
    let mut complete: BTreeMap<i64, bool> = BTreeMap::new();
    for key in keys.keys() {
        let full = copies(key).iter().max().copied() == Some(recount(key));
        *complete.entry(key.0).or_insert(true) &= full;
    }
    let complete = |window: i64| complete.get(&window).copied().unwrap_or(false);
    let accepts_late = expect.late != LateExpectation::None;
    let accepts_loss = expect.loss.accepts_any_loss();
    let accepts_named_loss = expect.loss.accepts_named_loss();
    let accepts_copies = expect.duplicates.accepts_any_copies();
    let accepts_named_copies = expect.duplicates.accepts_named_copies();
    let reads_uncommitted = observed.read_uncommitted;
    let mut named = NamedCauses::default();
    let mut rows = Vec::new();
    for (window_start_ms, page) in keys.into_keys() {
        let key = (window_start_ms, page);
        let (recount, counts) = (recount(&key), copies(&key));
        // A window a drain fired early, and a resume fired again: the two copies split its count.
        let drained = causes.drained.get(&key).copied().filter(|d| *d < recount && counts.contains(d));
        let counted = match drained {
            Some(d) => {
                let mut rest = counts.clone();
                rest.remove(rest.iter().position(|c| *c == d).expect("checked above"));
                d + rest.iter().max().copied().unwrap_or(0)
            }
            None => counts.iter().max().copied().unwrap_or(0),
        };
        let late = causes.late.get(&key).copied().unwrap_or(0);
        // A read_uncommitted reader reads what lost transactions hold all the same, and each
        // result a transaction that never committed holds as a copy.
        let lost_in_transactions = if reads_uncommitted { 0 } else { causes.lost_in_transactions.get(&key).copied().unwrap_or(0) };
        let uncommitted_copies = if reads_uncommitted { causes.never_committed.get(&key).copied().unwrap_or(0) } else { 0 };
        if counts.len() > 1 && counts.len() as u64 <= uncommitted_copies + 1 {
            named.read_aborted.insert(key.clone());
        }
        let balance = recount as i64 - counted as i64 - late as i64 - lost_in_transactions as i64;
        // Within a lost state's span the shortfall is that loss; events read again there may
        // also be counted twice (once before the loss, once after).
        let (lost, unaccounted) = match causes.state_lost_over(window_start_ms, observed.first_event_time, complete) {
            Some(_) => (lost_in_transactions + balance.max(0) as u64, 0),
            None => (lost_in_transactions, balance),
        };
        if lost > 0 && causes.lost_to_older_restore(&key, lost) {
            named.lost_to_older.insert(key.clone());
        }
        let repeat_allowed = named.read_aborted.contains(&key)
            || causes.repeats_over(window_start_ms, observed.first_event_time, complete).is_some()
            || causes.rewound_over(window_start_ms).is_some()
            || causes.replayed_after_stop(window_start_ms).is_some();
        let status = if counts.is_empty() && recount == 0 {
            RowStatus::EmptyAtSource
        } else if counted > recount || unaccounted < 0 {
            RowStatus::WrongCount
        } else if unaccounted > 0 && counts.is_empty() {
            RowStatus::Missing
        } else if unaccounted > 0 {
            RowStatus::Short
        } else if lost > 0 {
            RowStatus::Lost
        } else if late > 0 {
            RowStatus::Late
        } else if counts.len() > 1 {
            RowStatus::Duplicated
        } else {
            RowStatus::Ok
        };
        let expected = unaccounted == 0
            && counted <= recount
            && (late == 0 || accepts_late)
            && (lost == 0 || accepts_loss || (accepts_named_loss && named.lost_to_older.contains(&key)))
            && (counts.len() <= 1 || accepts_copies || repeat_allowed);
        let (window_start_ms, page) = key;
        let split_by_drain = drained.is_some();
        rows.push(WindowRow {
            window_start_ms,
            page,
            counts,
            recount,
            counted,
            late,
            lost,
            unaccounted,
            status,
            split_by_drain,
            expected,
        });
    }
    let fired: Vec<i64> = observed.output_counts.keys().map(|(s, _)| *s).collect();
    let has_input = |start: i64| observed.input_counts.range((start, SmolStr::default())..).next().is_some_and(|((s, _), _)| *s == start);
    let gaps: Vec<i64> = match (fired.first(), fired.last()) {
        (Some(&first), Some(&last)) => (0..)
            .map(|n| first + n * WINDOW_MS)
            .take_while(|s| *s <= last)
            .filter(|s| !fired.contains(s) && has_input(*s))
            .collect(),
        _ => Vec::new(),
    };
    let short_at_source: Vec<i64> = rows
        .iter()
        .filter(|r| r.recount < EVENTS_PER_WINDOW_AND_PAGE)
        .map(|r| r.window_start_ms)
        .fold(Vec::new(), |mut v, s| {
            if v.last() != Some(&s) {
                v.push(s);
            }
            v
        });

    let mut violations: Vec<Violation> = Vec::new();
    let mut notes = Vec::new();
    let judged = classify(&rows, &gaps, causes, &named, observed.first_event_time, complete);
    let accepted = |violation: &Violation| match violation {
        Violation::WrongCounts { .. } => expect.counts == CountsExpectation::Any,
        Violation::Duplicated { .. } => accepts_copies,
        Violation::SplitByDrain { .. }
        | Violation::RewoundBySavepoint { .. }
        | Violation::ReadUncommitted { .. }
        | Violation::ReplayedAfterFailedStop { .. } => accepts_named_copies,
        Violation::LastStableOffsetStuck(stuck) => stuck_accepted(stuck, expect.last_stable_offset),
        Violation::DroppedAsLate { .. } => accepts_late,
        Violation::LostWithCause { .. } => accepts_loss,
        Violation::LostToOlderRestore { .. } => accepts_named_loss,
        Violation::Unaccounted { .. }
        | Violation::Stalled { .. }
        | Violation::NothingRan
        | Violation::RequiredButAbsent { .. }
        | Violation::Malformed { .. }
        | Violation::NotConserved { .. }
        | Violation::WindowNotMatched { .. }
        | Violation::Liveness(_)
        | Violation::Response(_) => false,
    };
    let mut accepted_findings = Vec::new();
    for violation in judged {
        if accepted(&violation) {
            notes.push(format!("{violation} (allowed by the scenario)"));
            accepted_findings.push(violation);
        } else {
            violations.push(violation);
        }
    }
    if expect.late == LateExpectation::Required && rows.iter().all(|r| r.late == 0) {
        violations.push(Violation::RequiredButAbsent { what: Required::LateDrops });
    }
    if expect.duplicates == DuplicatesExpectation::Required && rows.iter().all(|r| r.counts.len() <= 1) {
        violations.push(Violation::RequiredButAbsent { what: Required::Duplicates });
    }
    if expect.loss == LossExpectation::Required && rows.iter().all(|r| r.lost == 0) {
        violations.push(Violation::RequiredButAbsent { what: Required::Loss });
    }
    let stuck = judge_last_stable_offset(observed, expect, causes, &mut violations, &mut notes);
    for lost in &causes.states_lost {
        let span: Vec<i64> = rows
            .iter()
            .filter(|r| r.lost > 0 && causes.state_lost_over(r.window_start_ms, observed.first_event_time, complete) == Some(lost))
            .map(|r| r.window_start_ms)
            .collect();
        if let (Some(first), Some(last)) = (span.first(), span.last()) {
            let windows = if first == last {
                format!("window {}", event_clock(*first))
            } else {
                format!("windows {} to {}", event_clock(*first), event_clock(*last))
            };
            notes.push(format!(
                "{windows} lost what the job's window state held when {lost}; every window outside is judged exactly"
            ));
        }
    }
    let partial = rows.iter().filter(|r| r.has_partial_copies()).count();
    if partial > 0 {
        notes.push(format!(
            "{partial} rows have copies counting less than the largest, by which each is judged \
             (a rolled-back attempt's copy, or events read again after a lost state)"
        ));
    }
    if !short_at_source.is_empty() {
        notes.push(format!(
            "{} windows hold fewer than {EVENTS_PER_WINDOW_AND_PAGE} events per page in input (missing at the source)",
            short_at_source.len()
        ));
    }
    reading_problems(observed, &mut notes, &mut violations);
    OracleReport {
        rows,
        input_events: observed.input_events,
        output_records: observed.output_records,
        gaps,
        short_at_source,
        violations,
        notes,
        accepted: accepted_findings,
        causes: causes.clone(),
        output_partitions: observed.output_partitions.clone(),
        stuck,
        fenced: observed.fenced.clone(),
    }
}

/// Rows whose copies or loss the judge traced to a cause it names, worked out once per row and
/// read by [`classify`].
#[derive(Default)]
struct NamedCauses {
    /// Copies beyond one that a `read_uncommitted` reader read from transactions that never
    /// committed.
    read_aborted: std::collections::BTreeSet<(i64, SmolStr)>,
    /// Loss all of which went with transactions an older restore aborted.
    lost_to_older: std::collections::BTreeSet<(i64, SmolStr)>,
}

/// Sorts what is off in the rows into violations, one per kind: over-counts, copies, late
/// drops, recorded loss, the job never producing again, and events nothing accounts for.
fn classify(
    rows: &[WindowRow],
    gaps: &[i64],
    causes: &Causes,
    named: &NamedCauses,
    origin_ms: i64,
    complete: impl Fn(i64) -> bool + Copy,
) -> Vec<Violation> {
    let mut wrong = Vec::new();
    let mut duplicated = Vec::new();
    let mut unaccounted = Vec::new();
    let mut late = Vec::new();
    let mut lost = Vec::new();
    let mut stalled = Vec::new();
    let mut split = Vec::new();
    let mut rewound = Vec::new();
    let mut replayed = Vec::new();
    let mut uncommitted = Vec::new();
    let mut lost_to_older = Vec::new();
    let last_fired = rows.iter().filter(|r| !r.counts.is_empty()).map(|r| r.window_start_ms).max();
    for row in rows {
        if row.status == RowStatus::WrongCount {
            wrong.push(RowRef::from(row));
        }
        if row.split_by_drain && row.counts.len() == 2 {
            split.push(RowRef::from(row));
        } else if named.read_aborted.contains(&(row.window_start_ms, row.page.clone())) {
            uncommitted.push(RowRef::from(row));
        } else if row.counts.len() > 1 && causes.rewound_over(row.window_start_ms).is_some() {
            rewound.push(RowRef::from(row));
        } else if row.counts.len() > 1 && causes.replayed_after_stop(row.window_start_ms).is_some() {
            replayed.push(RowRef::from(row));
        } else if row.counts.len() > 1 && causes.repeats_over(row.window_start_ms, origin_ms, complete).is_none() {
            duplicated.push(RowRef::from(row));
        }
        if row.late > 0 {
            late.push(RowRef::from(row));
        }
        if named.lost_to_older.contains(&(row.window_start_ms, row.page.clone())) {
            lost_to_older.push(RowRef::from(row));
        } else if row.lost > 0 {
            lost.push(RowRef::from(row));
        }
        if row.unaccounted > 0 {
            if row.counts.is_empty() && last_fired.is_none_or(|last| row.window_start_ms > last) {
                stalled.push(RowRef::from(row));
            } else {
                unaccounted.push(RowRef::from(row));
            }
        }
    }
    let mut violations = Vec::new();
    if rows.is_empty() {
        violations.push(Violation::NothingRan);
    }
    if !wrong.is_empty() {
        violations.push(Violation::WrongCounts { rows: wrong });
    }
    if !duplicated.is_empty() {
        violations.push(Violation::Duplicated { rows: duplicated });
    }
    if !unaccounted.is_empty() {
        violations.push(Violation::Unaccounted { rows: unaccounted, gap_windows: gaps.len() });
    }
    if !late.is_empty() {
        let mut windows: Vec<(i64, LateWindow)> = Vec::new();
        for row in &late {
            if windows.last().is_none_or(|(w, _)| *w != row.window_start_ms)
                && let Some(first) = causes.late_windows.get(&row.window_start_ms)
            {
                windows.push((row.window_start_ms, first.clone()));
            }
        }
        let first_drop = windows.iter().map(|(_, late)| late.at).min();
        let idle_before = causes
            .idle_partitions
            .iter()
            .rev()
            .find(|idle| first_drop.is_some_and(|first| idle.at <= first))
            .cloned();
        violations.push(Violation::DroppedAsLate { rows: late, windows, idle_before });
    }
    if !lost.is_empty() {
        violations.push(Violation::LostWithCause { rows: lost, causes: causes.clone() });
    }
    if !lost_to_older.is_empty() {
        let transactions = causes.transactions_lost.iter().filter(|t| t.aborted_by_older_restore.is_some()).cloned().collect();
        violations.push(Violation::LostToOlderRestore { rows: lost_to_older, transactions });
    }
    if !split.is_empty() {
        violations.push(Violation::SplitByDrain { rows: split });
    }
    if !rewound.is_empty() {
        let rewinds = behind(&causes.rewinds, &rewound, |r| &r.windows);
        violations.push(Violation::RewoundBySavepoint { rows: rewound, rewinds });
    }
    if !uncommitted.is_empty() {
        violations.push(Violation::ReadUncommitted { rows: uncommitted });
    }
    if !replayed.is_empty() {
        let stops = behind(&causes.replayed_after_stops, &replayed, |r| &r.windows);
        violations.push(Violation::ReplayedAfterFailedStop { rows: replayed, stops });
    }
    if let Some(first) = stalled.first() {
        violations.push(Violation::Stalled { since_window_ms: first.window_start_ms, rows: stalled });
    }
    violations
}

/// The causes (each with the windows it repeats) behind some of `rows`.
fn behind<T: Clone>(causes: &[T], rows: &[RowRef], windows: impl Fn(&T) -> &std::collections::BTreeSet<i64>) -> Vec<T> {
    causes.iter().filter(|c| rows.iter().any(|row| windows(c).contains(&row.window_start_ms))).cloned().collect()
}

/// Judges `output`'s last stable offset against `[expect] last_stable_offset`, for event-time
/// and processing-time runs alike: a stuck one is a violation unless the scenario expects it,
/// and an expected one that is not there is one too. Returns what is stuck, if anything.
pub(crate) fn judge_last_stable_offset(
    observed: &Observed,
    expect: &Expect,
    causes: &Causes,
    violations: &mut Vec<Violation>,
    notes: &mut Vec<String>,
) -> Option<StuckLastStableOffset> {
    let stuck = stuck_last_stable_offset(observed, causes);
    if !observed.fenced.is_empty() {
        notes.push(format!(
            "output judged as read_committed readers read it once the zombies' transactions holding them are \
             aborted (by the broker's transaction timeout, or a new producer of their ids): the oracle fenced {} \
             before it read output again",
            observed.fenced.join(", ")
        ));
    }
    match &stuck {
        Some(stuck) if stuck_accepted(stuck, expect.last_stable_offset) => {
            notes.push(format!("{stuck} (the scenario expects it)"));
        }
        Some(stuck) => violations.push(Violation::LastStableOffsetStuck(stuck.clone())),
        None if expect.last_stable_offset == LastStableOffsetExpectation::Stuck => {
            violations.push(Violation::RequiredButAbsent { what: Required::StuckLastStableOffset });
        }
        None => {}
    }
    stuck
}

/// Whether `last_stable_offset = …` accepts this stuck last stable offset.
fn stuck_accepted(stuck: &StuckLastStableOffset, expect: LastStableOffsetExpectation) -> bool {
    match expect {
        LastStableOffsetExpectation::Advances => false,
        LastStableOffsetExpectation::Stuck => true,
        LastStableOffsetExpectation::ZombiesMayHold => stuck.by_zombies(),
    }
}

/// The transactional ids to fence before judging `output`: the transactions holding its last
/// stable offset, when zombies wrote every one of them (see [`read_output_after_fencing`]).
pub fn zombies_holding(observed: &Observed, causes: &Causes) -> Vec<SmolStr> {
    match stuck_last_stable_offset(observed, causes) {
        Some(stuck) if stuck.by_zombies() => {
            stuck.transactions.into_iter().map(|t| t.transaction.transactional_id).collect()
        }
        _ => Vec::new(),
    }
}

/// The `output` partitions whose last stable offset a transaction left open holds back: one
/// open at the broker when the oracle read, that had written its first result at least
/// [`STUCK_AFTER`] before the run ended.
fn stuck_last_stable_offset(observed: &Observed, causes: &Causes) -> Option<StuckLastStableOffset> {
    let partitions: Vec<OutputPartition> =
        observed.output_partitions.iter().filter(|p| p.last_stable_offset < p.high_watermark).cloned().collect();
    let transactions: Vec<OpenTransaction> = causes
        .open_at_end
        .iter()
        .filter(|t| observed.open_transactions.contains(&t.transaction.transactional_id))
        .filter(|t| observed.ended_at.saturating_sub(t.first_write) >= STUCK_AFTER)
        .cloned()
        .collect();
    (!partitions.is_empty() && !transactions.is_empty())
        .then_some(StuckLastStableOffset { partitions, transactions })
}

/// Reads both topics up to their current end, through a consumer on the oracle's own node, once
/// the job has read `input` and `settle` more has passed.
pub async fn observe(
    rpc: Rpc,
    broker: std::net::SocketAddr,
    input_topic: &str,
    output_topic: &str,
    isolation: IsolationLevel,
    settle: Duration,
) -> Observed {
    let mut observed =
        Observed { unread_at_end: wait_for_the_job(&rpc, broker, input_topic).await, ..Observed::default() };
    // Processing-time windows still open hold events the job has read: they fire within a window's
    // length, and their results commit with the next checkpoint.
    madsim::time::sleep(settle).await;
    let mut dates = DateReader::default();
    let mut tally = WindowTally::default();
    // Counted in locals and stored once at the end: per event, the `Option` of the newest
    // timestamp and the fields behind `observed` cost a few instructions each.
    let (mut input_events, mut max_event_time) = (0u64, i64::MIN);
    // Count as records arrive: an hour of input is 1.44 M records, too many to hold.
    read_topic(&rpc, broker, input_topic, IsolationLevel::ReadUncommitted, |_, value| {
        // The generator's records are read without making an event; anything else is parsed.
        let timestamp_ms = match ClickEvent::parse_generated(&mut dates, value) {
            Some((timestamp_ms, page)) => {
                tally.add_known_at(timestamp_ms, page, &mut observed.input_counts);
                timestamp_ms
            }
            None => match ClickEvent::parse_json_with(&mut dates, value) {
                Ok(event) => {
                    let timestamp_ms = event.timestamp_ms;
                    tally.add_at(timestamp_ms, Page::of(event), &mut observed.input_counts);
                    timestamp_ms
                }
                Err(error) => {
                    observed.malformed.push(MalformedRecord { topic: input_topic.into(), error: error.to_string() });
                    return;
                }
            },
        };
        input_events += 1;
        max_event_time = max_event_time.max(timestamp_ms);
    })
    .await;
    tally.flush(&mut observed.input_counts);
    observed.input_events = input_events;
    observed.max_event_time = (input_events > 0).then_some(max_event_time);
    observed.read_uncommitted = isolation == IsolationLevel::ReadUncommitted;
    let read = read_output(&rpc, broker, output_topic, isolation, &mut observed).await;
    // What a reader at the other isolation level reads, partition by partition.
    let other = match isolation {
        IsolationLevel::ReadCommitted => IsolationLevel::ReadUncommitted,
        IsolationLevel::ReadUncommitted => IsolationLevel::ReadCommitted,
    };
    let mut other_counts: BTreeMap<u32, u64> = BTreeMap::new();
    let other_read = read_topic(&rpc, broker, output_topic, other, |partition, _| {
        *other_counts.entry(partition).or_default() += 1;
    })
    .await;
    let (committed, uncommitted) = match isolation {
        IsolationLevel::ReadCommitted => (&read, &other_read),
        IsolationLevel::ReadUncommitted => (&other_read, &read),
    };
    observed.output_partitions = committed
        .iter()
        .zip(uncommitted)
        .map(|(c, u)| OutputPartition {
            partition: c.partition,
            high_watermark: u.end,
            last_stable_offset: c.end,
            read_committed: if isolation == IsolationLevel::ReadCommitted { c.records } else { other_counts.get(&c.partition).copied().unwrap_or(0) },
            read_uncommitted: if isolation == IsolationLevel::ReadUncommitted { u.records } else { other_counts.get(&u.partition).copied().unwrap_or(0) },
        })
        .collect();
    // Transactions still open at the broker (Kafka's kafka-transactions.sh list), by id.
    let listed = retry(|| list_transactions(&rpc, broker, "", false)).await;
    observed.open_transactions = listed
        .into_iter()
        .filter(|t| t.state.is_open() && t.state != TransactionState::Empty)
        .map(|t| t.transactional_id)
        .collect();
    observed
}

/// Reads `output`'s results into `observed` (counts per window and page, records, malformed
/// ones), copies in partition then offset order.
async fn read_output(
    rpc: &Rpc,
    broker: std::net::SocketAddr,
    output_topic: &str,
    isolation: IsolationLevel,
    observed: &mut Observed,
) -> Vec<PartitionRead> {
    read_topic(rpc, broker, output_topic, isolation, |_, value| match ClickEventStatistics::parse_json(value) {
        Ok(statistics) => {
            observed.output_records += 1;
            observed.output_counts.entry((statistics.window_start_ms, statistics.page)).or_default().push(statistics.count);
        }
        Err(error) => observed.malformed.push(MalformedRecord { topic: output_topic.into(), error: error.to_string() }),
    })
    .await
}

/// Fences `zombies`, the zombies' transactional ids holding `output`'s last stable offset (a
/// new producer of each id aborts its open transaction, as the broker's transaction timeout
/// would an hour on), then reads `output` again at `read_committed` into `observed`'s counts:
/// the results readers see once the zombies' transactions are gone. Whatever else a stuck
/// last stable offset holds back stays to be judged ([`zombies_holding`] fences only when
/// zombies wrote every holding transaction). If the broker refuses to fence one, `observed`
/// comes back as it was, and the hold is judged as it stands.
pub async fn read_output_after_fencing(
    rpc: Rpc,
    broker: std::net::SocketAddr,
    output_topic: &str,
    zombies: Vec<SmolStr>,
    mut observed: Observed,
) -> Observed {
    for id in &zombies {
        // `fence` itself waits out an unreachable broker; an answer that refuses, a few times
        // over, leaves the hold to be judged as it is.
        let mut fenced = false;
        for _ in 0..FENCE_TRIES {
            if fence(&rpc, broker, id, FENCE_TRANSACTION_TIMEOUT).await.is_ok() {
                fenced = true;
                break;
            }
            madsim::time::sleep(Duration::from_millis(200)).await;
        }
        if !fenced {
            return observed;
        }
    }
    observed.output_counts.clear();
    observed.output_records = 0;
    // The read again finds the malformed ones of the first read, and perhaps more past it.
    observed.malformed.retain(|m| m.topic != output_topic);
    read_output(&rpc, broker, output_topic, IsolationLevel::ReadCommitted, &mut observed).await;
    observed.fenced = zombies;
    observed
}

/// How many times the oracle asks the broker to fence a zombie's transactional id.
const FENCE_TRIES: u32 = 5;

/// The transaction timeout the oracle's fencing producer registers with (it opens no
/// transaction; the broker wants one).
const FENCE_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the oracle waits, once the job has read `input`, for a processing-time job's open
/// windows to fire and commit: a window's length, and a checkpoint interval and a half more.
pub const PROCESSING_TIME_SETTLE: Duration = Duration::from_millis(WINDOW_MS as u64 + 2_500);

/// How long the oracle waits for the job to read what `input` holds when the run ends.
pub const CATCH_UP_WAIT: Duration = Duration::from_secs(30);

/// Waits until the job's consumer group has committed every offset of `input` (or
/// [`CATCH_UP_WAIT`] passed), then a second more for what it read to pass the window operator:
/// events still in flight would be neither counted nor dropped yet, and the accounting would
/// call them unaccounted. Returns the records the job had not read when the wait ended.
async fn wait_for_the_job(rpc: &Rpc, broker: std::net::SocketAddr, topic: &str) -> u64 {
    let consumer = Consumer::new(rpc.clone(), ConsumerConfig::new(broker));
    let partitions = retry(|| consumer.partitions_for(topic)).await;
    let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition { topic: topic.into(), partition: p }).collect();
    let ends = retry(|| consumer.end_offsets(&tps)).await;
    let deadline = madsim::time::Instant::now() + CATCH_UP_WAIT;
    loop {
        let committed = retry(|| consumer.committed(GROUP, &tps)).await;
        let unread: u64 = ends.iter().zip(&committed).map(|(end, done)| end.saturating_sub(done.unwrap_or(0))).sum();
        if unread == 0 {
            madsim::time::sleep(Duration::from_secs(1)).await;
            return 0;
        }
        if madsim::time::Instant::now() >= deadline {
            return unread;
        }
        madsim::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The counts of one window, by page, before they go into the map: a partition's records come
/// in window order, so nearly every record finds its window here and skips the map's search.
#[derive(Default)]
struct WindowTally {
    window: Option<i64>,
    /// `window`'s start and end, when it is a whole window (its start a multiple of
    /// [`WINDOW_MS`]): a timestamp before the end and not before the start is in it, as
    /// [`window_start`] would say. An empty range (`(0, 0)`) otherwise: two plain bounds, where
    /// two `Option`s to match cost a few instructions an event.
    whole: (i64, i64),
    /// By place in [`PAGES`], for the generator's pages.
    known: [u64; PAGES.len()],
    /// Any other page.
    others: Vec<(SmolStr, u64)>,
}

/// An input event's page, as the tally counts it.
enum Page {
    /// One of the generator's, by its place in [`PAGES`].
    Known(usize),
    /// Any other page.
    Other(SmolStr),
}

impl Page {
    /// `event`'s page.
    fn of(event: ClickEvent) -> Page {
        match event.known_page_index() {
            Some(i) => Page::Known(i),
            None => Page::Other(event.page),
        }
    }
}

impl WindowTally {
    /// Counts an event of `page` at `timestamp_ms` in its window: the tally's own when the
    /// timestamp falls in it (nearly always), found by two comparisons where working the window
    /// out costs a division (a callgrind profile: 23 instructions an event).
    fn add_at(&mut self, timestamp_ms: i64, page: Page, counts: &mut BTreeMap<(i64, SmolStr), u64>) {
        let (start, end) = self.whole;
        let window = if start <= timestamp_ms && timestamp_ms < end { start } else { window_start(timestamp_ms) };
        self.add(window, page, counts);
    }

    /// [`add_at`](Self::add_at) for one of the generator's pages, by its place in [`PAGES`]:
    /// inlined into the reading loop, an event of the tally's window is one comparison pair and
    /// one increment, where the call with its `Page` cost about 40 instructions an event.
    #[inline]
    fn add_known_at(&mut self, timestamp_ms: i64, page: usize, counts: &mut BTreeMap<(i64, SmolStr), u64>) {
        let (start, end) = self.whole;
        if start <= timestamp_ms && timestamp_ms < end {
            self.known[page] += 1;
        } else {
            self.add(window_start(timestamp_ms), Page::Known(page), counts);
        }
    }

    /// Counts an event of `page` in the window starting at `window`.
    fn add(&mut self, window: i64, page: Page, counts: &mut BTreeMap<(i64, SmolStr), u64>) {
        if self.window != Some(window) {
            self.flush(counts);
            self.window = Some(window);
            self.whole = match window.checked_add(WINDOW_MS).filter(|_| window.rem_euclid(WINDOW_MS) == 0) {
                Some(end) => (window, end),
                None => (0, 0),
            };
        }
        let page = match page {
            Page::Known(i) => {
                self.known[i] += 1;
                return;
            }
            Page::Other(page) => page,
        };
        match self.others.iter_mut().find(|(p, _)| *p == page) {
            Some((_, count)) => *count += 1,
            None => self.others.push((page, 1)),
        }
    }

    /// Adds the window's counts to `counts` and empties the tally.
    fn flush(&mut self, counts: &mut BTreeMap<(i64, SmolStr), u64>) {
        let Some(window) = self.window.take() else {
            return;
        };
        self.whole = (0, 0);
        let known = PAGES.iter().zip(std::mem::take(&mut self.known));
        let known = known.filter(|(_, count)| *count > 0);
        let known = known.map(|(page, count)| (SmolStr::new_static(page), count));
        for (page, count) in known.chain(self.others.drain(..)) {
            *counts.entry((window, page)).or_insert(0) += count;
        }
    }
}

/// What reading the topics met, whatever the windows: input the job had not read when the oracle
/// stopped waiting (a note), and records that did not parse (violations).
pub(crate) fn reading_problems(observed: &Observed, notes: &mut Vec<String>, violations: &mut Vec<Violation>) {
    if observed.unread_at_end > 0 {
        notes.push(format!(
            "the job had not read {} events of input when the oracle stopped waiting for it",
            observed.unread_at_end
        ));
    }
    for problem in &observed.malformed {
        violations.push(Violation::Malformed { record: problem.to_string() });
    }
}

/// One partition as [`read_topic`] read it: the end it read to and the records it read.
struct PartitionRead {
    partition: u32,
    end: u64,
    records: u64,
}

/// Hands every record value of `topic` to `each` with its partition, partition by partition in
/// offset order, up to the end offsets (for `isolation`) seen at the start.
async fn read_topic(
    rpc: &Rpc,
    broker: std::net::SocketAddr,
    topic: &str,
    isolation: IsolationLevel,
    mut each: impl FnMut(u32, &[u8]),
) -> Vec<PartitionRead> {
    let mut config = ConsumerConfig::new(broker);
    config.isolation = isolation;
    config.max_wait = Duration::from_millis(100);
    let metadata = Consumer::new(rpc.clone(), config.clone());
    let partitions = retry(|| metadata.partitions_for(topic)).await;
    let mut reads = Vec::new();
    for partition in 0..partitions {
        let tp = TopicPartition { topic: topic.into(), partition };
        let mut consumer = Consumer::new(rpc.clone(), config.clone());
        let end = retry(|| consumer.end_offsets(std::slice::from_ref(&tp))).await[0];
        consumer.assign(vec![(tp.clone(), 0)]);
        let mut records = 0;
        while consumer.position(&tp).unwrap_or(0) < end {
            let Ok(fetched) = consumer.poll_batches().await else { continue };
            for record in fetched.records().filter(|r| r.offset < end) {
                records += 1;
                each(partition, record.value);
            }
        }
        reads.push(PartitionRead { partition, end, records });
    }
    reads
}

async fn retry<T, E, F, Fut>(mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    loop {
        if let Ok(value) = call().await {
            return value;
        }
        madsim::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::{StateLost, StateLostWhy, Zombie};
    use flinksim_engine::trace::TransactionHandle;

    fn observed_windows(windows: i64, copies: usize) -> Observed {
        let mut observed = Observed::default();
        for w in 0..windows {
            for page in PAGES {
                observed.input_counts.insert((w * WINDOW_MS, page.into()), 1000);
                observed.output_counts.insert((w * WINDOW_MS, page.into()), vec![1000; copies]);
            }
        }
        observed.input_events = windows as u64 * 6000;
        observed.max_event_time = Some(windows * WINDOW_MS + 5_000);
        observed
    }

    #[test]
    fn the_tally_adds_up_windows_that_come_back() {
        let mut counts = BTreeMap::new();
        let mut tally = WindowTally::default();
        let pages = [(0, "/a"), (0, "/help"), (0, "/a"), (15, "/a"), (0, "/a"), (15, "/help"), (0, "/help")];
        for (window, page) in pages {
            // "/help" as the generator makes it (its static string), "/a" as any other page.
            let known = PAGES.iter().find(|known| **known == page);
            let page = known.map_or(SmolStr::new(page), |known| SmolStr::new_static(known));
            tally.add(window, Page::of(ClickEvent { timestamp_ms: window, page }), &mut counts);
        }
        tally.flush(&mut counts);
        let expected = [((0, "/a"), 3), ((0, "/help"), 2), ((15, "/a"), 1), ((15, "/help"), 1)];
        assert_eq!(counts, expected.into_iter().map(|((w, p), c)| ((w, SmolStr::new(p)), c)).collect());
    }

    #[test]
    fn the_tally_finds_each_timestamps_window_as_window_start_does() {
        let w = WINDOW_MS;
        let stamps = [0, 1, w - 1, w, w + 1, 3 * w - 1, -1, -w, -w - 1, 2 * w, i64::MIN, i64::MIN + 1, i64::MIN + w - 1, i64::MAX, i64::MAX - w, 5];
        let (mut by_add_at, mut by_add, mut by_known) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        let (mut tally_at, mut tally, mut tally_known) =
            (WindowTally::default(), WindowTally::default(), WindowTally::default());
        for (i, ts) in stamps.into_iter().enumerate() {
            let page = i % PAGES.len();
            tally_at.add_at(ts, Page::Known(page), &mut by_add_at);
            tally.add(window_start(ts), Page::Known(page), &mut by_add);
            tally_known.add_known_at(ts, page, &mut by_known);
        }
        tally_at.flush(&mut by_add_at);
        tally.flush(&mut by_add);
        tally_known.flush(&mut by_known);
        assert_eq!(by_add_at, by_add);
        assert_eq!(by_known, by_add);
    }

    #[test]
    fn every_window_once_with_1000_passes() {
        let report = judge(&observed_windows(4, 1), &Expect::default(), &Causes::default());
        assert!(report.passed(), "{:?}", report.violations);
        assert_eq!(report.rows.len(), 24);
        assert_eq!(report.totals(), Totals { recount: 24_000, counted: 24_000, late: 0, lost: 0, unaccounted: 0 });
    }

    #[test]
    fn copies_fail_unless_duplicates_are_allowed() {
        let observed = observed_windows(4, 2);
        assert!(!judge(&observed, &Expect::default(), &Causes::default()).passed());
        let allowed = Expect { duplicates: DuplicatesExpectation::Allowed, ..Expect::default() };
        assert!(judge(&observed, &allowed, &Causes::default()).passed());
    }

    /// Output partition 1 held at offset 5 of 9 by a transaction that first wrote at `first_write`.
    fn held(first_write: Duration) -> (Observed, Causes) {
        let mut observed = observed_windows(4, 1);
        observed.ended_at = Duration::from_secs(180);
        observed.output_partitions = vec![
            OutputPartition { partition: 0, high_watermark: 12, last_stable_offset: 12, read_uncommitted: 12, read_committed: 12 },
            OutputPartition { partition: 1, high_watermark: 9, last_stable_offset: 5, read_uncommitted: 8, read_committed: 5 },
        ];
        observed.open_transactions = vec!["click-event-count-1-60".into()];
        let transaction = TransactionHandle { transactional_id: "click-event-count-1-60".into(), producer_id: 3, epoch: 0 };
        let open = OpenTransaction { transaction, task: "ClickEventStatistics Sink (2/2)".into(), first_write, results: 3, zombie: None };
        (observed, Causes { open_at_end: vec![open], ..Causes::default() })
    }

    #[test]
    fn a_transaction_left_open_for_long_is_a_stuck_last_stable_offset_unless_expected() {
        let (observed, causes) = held(Duration::from_secs(60));
        let report = judge(&observed, &Expect::default(), &causes);
        let [Violation::LastStableOffsetStuck(stuck)] = report.violations.as_slice() else {
            panic!("{:?}", report.violations)
        };
        assert_eq!(stuck.partitions.iter().map(|p| p.partition).collect::<Vec<_>>(), [1]);
        assert_eq!(report.verdict(), VerdictClass::Liveness);
        let expected = Expect { last_stable_offset: LastStableOffsetExpectation::Stuck, ..Expect::default() };
        let report = judge(&observed, &expected, &causes);
        assert!(report.passed(), "{:?}", report.violations);
        assert!(report.stuck.is_some() && report.notes.iter().any(|n| n.contains("stuck at the last stable offset")));
        // A transaction opened in the last seconds is a live sink's, not a stuck one.
        let (observed, causes) = held(Duration::from_secs(175));
        assert!(judge(&observed, &Expect::default(), &causes).passed());
        assert_eq!(
            judge(&observed, &expected, &causes).violations,
            [Violation::RequiredButAbsent { what: Required::StuckLastStableOffset }]
        );
    }

    #[test]
    fn zombies_holding_the_last_stable_offset_are_flinks_semantics_and_may_be_allowed() {
        let (observed, mut causes) = held(Duration::from_secs(60));
        let zombie = Zombie { node: "taskmanager-2".into(), declared_lost_at: Duration::from_secs(59) };
        causes.open_at_end[0].zombie = Some(zombie);
        assert_eq!(zombies_holding(&observed, &causes), [SmolStr::new("click-event-count-1-60")]);
        let report = judge(&observed, &Expect::default(), &causes);
        assert!(matches!(report.violations.as_slice(), [Violation::LastStableOffsetStuck(s)] if s.by_zombies()));
        assert_eq!(report.verdict(), VerdictClass::Semantic);
        let may_hold = Expect { last_stable_offset: LastStableOffsetExpectation::ZombiesMayHold, ..Expect::default() };
        let report = judge(&observed, &may_hold, &causes);
        assert!(report.passed(), "{:?}", report.violations);
        assert!(report.notes.iter().any(|n| n.contains("by a zombie on taskmanager-2")), "{:?}", report.notes);

        // One holder a zombie's and one not: nothing is fenced, and the hold is not allowed.
        let (mut observed, mut causes) = (observed, causes);
        observed.open_transactions.push("click-event-count-0-60".into());
        let mut other = causes.open_at_end[0].clone();
        other.transaction.transactional_id = "click-event-count-0-60".into();
        other.zombie = None;
        causes.open_at_end.push(other);
        assert!(zombies_holding(&observed, &causes).is_empty());
        let report = judge(&observed, &may_hold, &causes);
        assert_eq!(report.verdict(), VerdictClass::Liveness, "{:?}", report.violations);
    }

    #[test]
    fn copies_of_windows_a_savepoint_restored_again_rewound_are_named_as_such() {
        let observed = observed_windows(4, 2);
        let rewind = Rewind {
            location: "/tmp/flink-savepoints-directory/savepoint-000000-000000000001".into(),
            first: (flinksim_engine::protocol::ids::JobId(1), Duration::from_secs(80)),
            again: (flinksim_engine::protocol::ids::JobId(2), Duration::from_secs(150)),
            windows: (0..4).map(|w| w * WINDOW_MS).collect(),
        };
        let causes = Causes { rewinds: vec![rewind], ..Causes::default() };
        let report = judge(&observed, &Expect::default(), &causes);
        let [Violation::RewoundBySavepoint { rows, rewinds }] = report.violations.as_slice() else {
            panic!("{:?}", report.violations)
        };
        assert_eq!((rows.len(), rewinds.len()), (24, 1));
        assert_eq!(report.verdict(), VerdictClass::Semantic);
        let allowed = Expect { duplicates: DuplicatesExpectation::Allowed, ..Expect::default() };
        assert!(judge(&observed, &allowed, &causes).passed());
        // Copies of a window the first resume never wrote stay an engine bug.
        let mut causes = causes;
        causes.rewinds[0].windows.remove(&0);
        let report = judge(&observed, &Expect::default(), &causes);
        assert!(report.violations.iter().any(|v| matches!(v, Violation::Duplicated { rows } if rows.len() == 6)));
    }

    #[test]
    fn copies_after_a_stop_that_failed_past_its_commits_are_named_as_such() {
        let observed = observed_windows(4, 2);
        let replayed = crate::accounting::ReplayedAfterStop {
            job_id: flinksim_engine::protocol::ids::JobId(1),
            savepoint: 62,
            restored: (59, Duration::from_secs(70)),
            windows: (1..4).map(|w| w * WINDOW_MS).collect(),
        };
        let causes = Causes { replayed_after_stops: vec![replayed], ..Causes::default() };
        let report = judge(&observed, &Expect::default(), &causes);
        let replayed_rows = report.violations.iter().find_map(|v| match v {
            Violation::ReplayedAfterFailedStop { rows, stops } => Some((rows.len(), stops.len())),
            _ => None,
        });
        assert_eq!(replayed_rows, Some((18, 1)), "{:?}", report.violations);
        // Copies of a window the stop's commits never held stay an engine bug.
        assert!(report.violations.iter().any(|v| matches!(v, Violation::Duplicated { rows } if rows.len() == 6)));
        assert_eq!(report.verdict(), VerdictClass::Correctness);
        let allowed = Expect { duplicates: DuplicatesExpectation::Allowed, ..Expect::default() };
        assert!(judge(&observed, &allowed, &causes).passed());
        // `explained` accepts the named copies and not the others.
        let explained = Expect { duplicates: DuplicatesExpectation::Explained, ..Expect::default() };
        let report = judge(&observed, &explained, &causes);
        assert!(matches!(report.violations.as_slice(), [Violation::Duplicated { rows }] if rows.len() == 6), "{:?}", report.violations);
        let named_only = observed_windows(4, 2)
            .output_counts
            .into_iter()
            .map(|(key, counts)| if key.0 == 0 { (key, vec![1000]) } else { (key, counts) })
            .collect();
        let observed = Observed { output_counts: named_only, ..observed };
        assert!(judge(&observed, &explained, &causes).passed());
        assert_eq!(judge(&observed, &Expect::default(), &causes).verdict(), VerdictClass::Semantic);
    }

    #[test]
    fn windows_empty_at_the_source_are_not_missing() {
        let mut observed = observed_windows(4, 1);
        for page in PAGES {
            observed.output_counts.remove(&(WINDOW_MS, page.into()));
            observed.input_counts.remove(&(WINDOW_MS, page.into()));
        }
        let report = judge(&observed, &Expect::default(), &Causes::default());
        assert!(report.passed(), "{:?}", report.violations);
        assert!(report.rows.iter().any(|r| r.status == RowStatus::EmptyAtSource));
        assert!(report.gaps.is_empty());
    }

    fn lose(observed: &mut Observed, window: i64) {
        for page in PAGES {
            observed.output_counts.remove(&(window * WINDOW_MS, page.into()));
        }
    }

    fn row<'a>(report: &'a OracleReport, window: i64, page: &str) -> &'a WindowRow {
        report.rows.iter().find(|r| r.window_start_ms == window * WINDOW_MS && r.page == page).expect("a row")
    }

    /// Late drops of `count` events per page of `window`, as the trace would give them.
    fn late_in(window: i64, count: u64) -> Causes {
        let late = LateWindow { at: Duration::from_secs(100), task: "ClickEvent Counter (1/2)".into(), watermark_ms: 99_000 };
        Causes {
            late_windows: [(window * WINDOW_MS, late)].into(),
            late: PAGES.iter().map(|p| ((window * WINDOW_MS, SmolStr::new(p)), count)).collect(),
            ..Causes::default()
        }
    }

    #[test]
    fn every_event_is_counted_dropped_lost_or_unaccounted() {
        let mut observed = observed_windows(6, 1);
        // Window 2: 300 events per page dropped as late, the rest counted.
        for page in PAGES {
            observed.output_counts.insert((2 * WINDOW_MS, page.into()), vec![700]);
        }
        // Window 3, /help: 1 event nobody accounts for.
        observed.output_counts.insert((3 * WINDOW_MS, "/help".into()), vec![999]);
        let expect = Expect { late: LateExpectation::Allowed, ..Expect::default() };
        let report = judge(&observed, &expect, &late_in(2, 300));
        let late = row(&report, 2, "/shop");
        assert_eq!((late.recount, late.counted, late.late, late.lost, late.unaccounted), (1000, 700, 300, 0, 0));
        assert_eq!((late.status, late.expected), (RowStatus::Late, true));
        let short = row(&report, 3, "/help");
        assert_eq!((short.status, short.unaccounted), (RowStatus::Short, 1));
        assert!(matches!(report.violations.as_slice(), [Violation::Unaccounted { rows, .. }] if rows.len() == 1));
        let totals = report.totals();
        assert_eq!(totals.recount, totals.counted + totals.late + totals.lost + totals.unaccounted as u64);

        // Events both counted and dropped: more accounted for than input holds.
        let report = judge(&observed_windows(6, 1), &expect, &late_in(2, 300));
        assert_eq!(row(&report, 2, "/help").status, RowStatus::WrongCount);
        assert_eq!(report.verdict(), VerdictClass::Correctness);
    }

    #[test]
    fn late_and_loss_are_judged_against_none_allowed_and_required() {
        let mut observed = observed_windows(6, 1);
        for page in PAGES {
            observed.output_counts.insert((2 * WINDOW_MS, page.into()), vec![700]);
        }
        let verdict = |late, observed: &Observed, causes: &Causes| {
            judge(observed, &Expect { late, ..Expect::default() }, causes).verdict()
        };
        assert_eq!(verdict(LateExpectation::None, &observed, &late_in(2, 300)), VerdictClass::Semantic);
        assert_eq!(verdict(LateExpectation::Allowed, &observed, &late_in(2, 300)), VerdictClass::Passed);
        assert_eq!(verdict(LateExpectation::Required, &observed, &late_in(2, 300)), VerdictClass::Passed);
        // A pitfall that must show late drops fails on an engine that drops nothing.
        let clean = observed_windows(6, 1);
        let report = judge(&clean, &Expect { late: LateExpectation::Required, ..Expect::default() }, &Causes::default());
        assert_eq!(report.violations, vec![Violation::RequiredButAbsent { what: Required::LateDrops }]);
        assert_eq!(report.verdict(), VerdictClass::Correctness);
        let report = judge(&clean, &Expect { loss: LossExpectation::Required, ..Expect::default() }, &Causes::default());
        assert_eq!(report.violations, vec![Violation::RequiredButAbsent { what: Required::Loss }]);
    }

    #[test]
    fn a_read_uncommitted_reader_reads_what_never_committed_as_copies_and_nothing_else_is_excused() {
        let key = (2 * WINDOW_MS, SmolStr::from("/help"));
        let mut observed = observed_windows(6, 1);
        observed.output_counts.insert(key.clone(), vec![1000, 1000]);
        let mut causes = Causes::default();
        causes.never_committed.insert(key.clone(), 1);
        let allowed = Expect { duplicates: DuplicatesExpectation::Allowed, ..Expect::default() };
        // Read at read_committed, the reader never saw the aborted copy: a second copy is an
        // engine's.
        let report = judge(&observed, &Expect::default(), &causes);
        assert_eq!(report.verdict(), VerdictClass::Correctness, "{:?}", report.violations);
        // At read_uncommitted the copy that never committed is this reader's semantics.
        observed.read_uncommitted = true;
        let report = judge(&observed, &Expect::default(), &causes);
        assert!(matches!(report.violations.as_slice(), [Violation::ReadUncommitted { rows }] if rows.len() == 1), "{:?}", report.violations);
        assert_eq!(report.verdict(), VerdictClass::Semantic);
        assert!(judge(&observed, &allowed, &causes).passed());
        // A third copy is one more than the transactions that never committed explain.
        observed.output_counts.insert(key.clone(), vec![1000, 1000, 1000]);
        assert_eq!(judge(&observed, &allowed, &causes).verdict(), VerdictClass::Passed);
        let report = judge(&observed, &Expect::default(), &causes);
        assert!(matches!(report.violations.as_slice(), [Violation::Duplicated { .. }]), "{:?}", report.violations);
        // What a lost transaction held, this reader reads all the same: nothing is lost.
        observed.output_counts.insert(key.clone(), vec![1000]);
        let mut lost = Causes::default();
        lost.lost_in_transactions.insert(key.clone(), 1000);
        lost.never_committed.insert(key, 1);
        assert!(judge(&observed, &Expect::default(), &lost).passed());
    }

    #[test]
    fn loss_an_older_restore_caused_is_named_and_explained_accepts_only_it() {
        let key = (2 * WINDOW_MS, SmolStr::from("/help"));
        let mut observed = observed_windows(6, 1);
        observed.output_counts.remove(&key);
        let lost = |aborted_by_older_restore| crate::accounting::TransactionLost {
            at: Duration::from_secs(40),
            transaction: flinksim_engine::trace::TransactionHandle { transactional_id: "t-0-9".into(), producer_id: 3, epoch: 1 },
            checkpoint_id: 9,
            timed_out: false,
            results: vec![(key.0, key.1.clone(), 1000)],
            aborted_by_older_restore,
        };
        let mut causes = Causes { transactions_lost: vec![lost(Some(5))], ..Causes::default() };
        causes.lost_in_transactions.insert(key.clone(), 1000);
        let explained = Expect { loss: LossExpectation::Explained, ..Expect::default() };
        let report = judge(&observed, &Expect::default(), &causes);
        assert!(matches!(report.violations.as_slice(), [Violation::LostToOlderRestore { rows, transactions }] if rows.len() == 1 && transactions.len() == 1), "{:?}", report.violations);
        assert_eq!(report.verdict(), VerdictClass::Semantic);
        assert!(judge(&observed, &explained, &causes).passed());
        // The same loss by the sink's own restore is not excused by `explained`.
        causes.transactions_lost = vec![lost(None)];
        let report = judge(&observed, &explained, &causes);
        assert!(matches!(report.violations.as_slice(), [Violation::LostWithCause { .. }]), "{:?}", report.violations);
    }

    #[test]
    fn a_lost_transaction_accounts_for_exactly_its_results() {
        let mut observed = observed_windows(6, 1);
        observed.output_counts.remove(&(2 * WINDOW_MS, "/help".into()));
        let mut causes = Causes::default();
        causes.lost_in_transactions.insert((2 * WINDOW_MS, "/help".into()), 1000);
        let report = judge(&observed, &Expect::default(), &causes);
        let lost = row(&report, 2, "/help");
        assert_eq!((lost.status, lost.lost, lost.unaccounted), (RowStatus::Lost, 1000, 0));
        assert!(matches!(report.violations.as_slice(), [Violation::LostWithCause { rows, .. }] if rows.len() == 1));
        let allowed = Expect { loss: LossExpectation::Allowed, ..Expect::default() };
        assert!(judge(&observed, &allowed, &causes).passed());
        // A second row missing beside it is not that transaction's: an engine bug.
        observed.output_counts.remove(&(2 * WINDOW_MS, "/shop".into()));
        let report = judge(&observed, &allowed, &causes);
        assert_eq!(report.verdict(), VerdictClass::Correctness, "{:?}", report.violations);
    }

    fn failed_at(ms: u64, fired: impl IntoIterator<Item = i64>) -> Causes {
        let lost = StateLost {
            at: Duration::from_millis(ms),
            why: StateLostWhy::FailedWithoutCheckpointing,
            fired_before: fired.into_iter().map(|w| w * WINDOW_MS).collect(),
            resubmitted: Some(Duration::from_secs(70)),
        };
        Causes { states_lost: vec![lost], ..Causes::default() }
    }

    #[test]
    fn a_lost_state_may_lose_only_the_windows_open_at_the_failure() {
        // The job FAILED at 0:50 having fired windows 0 and 1; window 2 (open) comes out short
        // after the resubmission, window 1 a second time with a partial count.
        let mut observed = observed_windows(8, 1);
        for page in PAGES {
            observed.output_counts.insert((2 * WINDOW_MS, page.into()), vec![400]);
            observed.output_counts.insert((WINDOW_MS, page.into()), vec![1000, 200]);
        }
        let expect = Expect {
            loss: LossExpectation::Required,
            duplicates: DuplicatesExpectation::None,
            ..Expect::default()
        };
        let report = judge(&observed, &expect, &failed_at(50_000, [0, 1]));
        assert!(report.passed(), "{:?}", report.violations);
        let open = row(&report, 2, "/help");
        assert_eq!((open.status, open.lost, open.unaccounted, open.expected), (RowStatus::Lost, 600, 0, true));
        assert!(row(&report, 1, "/help").has_partial_copies());
        assert!(report.notes.iter().any(|n| n.starts_with("window 00:00:30 lost what the job's window state held when the job FAILED at 0:50.000")), "{:?}", report.notes);

        // The same shortfall in a window after the failure: nothing loses it there.
        let mut later = observed.clone();
        later.output_counts.insert((5 * WINDOW_MS, "/help".into()), vec![400]);
        let report = judge(&later, &expect, &failed_at(50_000, [0, 1]));
        assert!(matches!(report.violations.as_slice(), [Violation::Unaccounted { rows, .. }] if rows[0].window_start_ms == 5 * WINDOW_MS));
        // And a copy of a window long before it is a duplicate.
        let mut early = observed_windows(8, 1);
        early.output_counts.insert((0, "/help".into()), vec![1000, 1000]);
        let report = judge(&early, &expect, &failed_at(110_000, 0..7));
        assert!(matches!(report.violations.as_slice(), [Violation::Duplicated { .. }, Violation::RequiredButAbsent { .. }]), "{:?}", report.violations);
    }

    #[test]
    fn each_kind_of_finding_has_its_verdict_class() {
        let nothing = Causes::default();
        let verdict = |observed: &Observed, causes: &Causes| judge(observed, &Expect::default(), causes).verdict();

        assert_eq!(verdict(&observed_windows(6, 1), &nothing), VerdictClass::Passed);

        // A short count or a hole nothing explains: an engine bug.
        let mut short = observed_windows(6, 1);
        short.output_counts.insert((2 * WINDOW_MS, "/help".into()), vec![999]);
        assert_eq!(verdict(&short, &nothing), VerdictClass::Correctness);
        let mut hole = observed_windows(6, 1);
        lose(&mut hole, 2);
        let report = judge(&hole, &Expect::default(), &nothing);
        assert!(matches!(report.violations.as_slice(), [Violation::Unaccounted { rows, gap_windows: 1 }] if rows.len() == 6));
        assert_eq!(verdict(&observed_windows(6, 2), &nothing), VerdictClass::Correctness, "copies");

        // The hole, its events all dropped as late: the job's event-time semantics.
        let report = judge(&hole, &Expect::default(), &late_in(2, 1000));
        assert!(matches!(report.violations.as_slice(), [Violation::DroppedAsLate { rows, windows, idle_before: None }] if rows.len() == 6 && windows.len() == 1));
        assert!(report.violations[0].to_string().starts_with("6000 events of 6 (window, page) rows dropped as late"), "{}", report.violations[0]);
        assert_eq!(report.verdict(), VerdictClass::Semantic);

        // Nothing after some window, to the end: the job never recovered.
        let mut stall = observed_windows(6, 1);
        lose(&mut stall, 4);
        lose(&mut stall, 5);
        let report = judge(&stall, &Expect::default(), &nothing);
        assert!(matches!(report.violations.as_slice(), [Violation::Stalled { since_window_ms: 60_000, rows }] if rows.len() == 12));
        assert_eq!(report.verdict(), VerdictClass::Liveness);

        // Several findings: the worst wins.
        let mut both = stall.clone();
        both.output_counts.insert((0, "/help".into()), vec![1]);
        assert_eq!(verdict(&both, &nothing), VerdictClass::Correctness);

        // What the scenario allows is a note, not a violation.
        let lossy = Expect { late: LateExpectation::Allowed, ..Expect::default() };
        let report = judge(&hole, &lossy, &late_in(2, 1000));
        assert!(report.passed() && report.notes.iter().any(|n| n.ends_with("(allowed by the scenario)")));
    }
}
