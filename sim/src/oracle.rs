//! The oracle (spec §18): reads `input` and `output` back, recounts every (window, page) from
//! `input` independently, and checks the job's results against the scenario's expectations:
//! counts, copies, and windows missing between the first and the last fired.

use std::collections::BTreeMap;
use std::time::Duration;

use flinksim_engine::kafka::{Consumer, ConsumerConfig, IsolationLevel, TopicPartition};
use flinksim_engine::playground::click_event::{
    ClickEvent, ClickEventStatistics, DateReader, PAGES, WINDOW_MS, window_start,
};
use flinksim_engine::protocol::job::SinkMode;
use flinksim_engine::rpc::Rpc;
use flinksim_engine::trace::{AbortCause, Event, TraceEvent};
use serde::Serialize;
use smol_str::SmolStr;

use crate::liveness::LivenessViolation;
use crate::scenario::{CountsExpectation, DuplicatesExpectation, Expect, LossExpectation};
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
    /// Per (window start, page): the count of every copy in `output`, in offset order.
    pub output_counts: BTreeMap<(i64, SmolStr), Vec<u64>>,
    /// Records in `output`.
    pub output_records: u64,
    /// Records of either topic that did not parse.
    pub malformed: Vec<String>,
}

/// How one (window, page) came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RowStatus {
    /// One copy (or equal copies where allowed), counting what `input` holds.
    Ok,
    /// Equal copies, where none are allowed.
    Duplicated,
    /// A copy counts other than the recount from `input`.
    WrongCount,
    /// Expected but absent from `output`.
    Missing,
    /// No event of the window exists in `input` (the generator was down): nothing to count.
    EmptyAtSource,
}

/// One row of the window table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WindowRow {
    /// Window start, ms of event time.
    pub window_start_ms: i64,
    /// The page.
    pub page: SmolStr,
    /// The counts of its copies in `output` (empty if none).
    pub counts: Vec<u64>,
    /// The recount from `input`.
    pub recount: u64,
    /// The verdict on the row.
    pub status: RowStatus,
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
    /// Events of `input` that no copy of their window's result counted (missing results count
    /// their whole recount; a short result counts the difference).
    pub lost_events: u64,
    /// Everything that violates the scenario's expectations; empty means the run passed.
    pub violations: Vec<Violation>,
    /// Things worth knowing that the expectations accept (e.g. expected loss).
    pub notes: Vec<String>,
    /// Why results may be missing, as the trace says.
    pub causes: Causes,
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
}

impl From<&WindowRow> for RowRef {
    fn from(row: &WindowRow) -> RowRef {
        RowRef {
            window_start_ms: row.window_start_ms,
            page: row.page.clone(),
            counts: row.counts.clone(),
            recount: row.recount,
        }
    }
}

impl std::fmt::Display for RowRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.window_start_ms / 1000;
        write!(f, "{:02}:{:02}:{:02} {} ", s / 3600, s / 60 % 60, s % 60, self.page)?;
        match self.counts.as_slice() {
            [] => write!(f, "missing (input holds {})", self.recount),
            counts => {
                let counts: Vec<String> = counts.iter().map(u64::to_string).collect();
                write!(f, "{} of {}", counts.join(", "), self.recount)
            }
        }
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

/// Events of `input` that the rows' results did not count.
fn events_short(rows: &[RowRef]) -> u64 {
    rows.iter().map(|r| r.recount.saturating_sub(r.counts.iter().copied().max().unwrap_or(0))).sum()
}

/// One kind of thing the run did that the scenario does not accept, with the rows it concerns.
/// Tools match on the variant and its [`class`](Violation::class); the report renders it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Violation {
    /// Nothing was expected or emitted: the run is too short, or nothing ran.
    NothingRan,
    /// Results count other than the input holds, in windows where no late drop was traced.
    WrongCounts {
        /// The rows.
        rows: Vec<RowRef>,
    },
    /// More than one result for a (window, page) where one is required.
    Duplicated {
        /// The rows.
        rows: Vec<RowRef>,
    },
    /// Results missing with no cause in the trace: their events are unaccounted for.
    Unaccounted {
        /// The rows.
        rows: Vec<RowRef>,
        /// Windows with no result at all between the first and the last fired.
        gap_windows: usize,
    },
    /// Results short or missing in windows whose operator dropped late events (Flink's
    /// `numLateRecordsDropped`): the job's event-time semantics, not an engine bug.
    DroppedAsLate {
        /// The rows.
        rows: Vec<RowRef>,
        /// The first drop of each window concerned.
        windows: Vec<(i64, LateWindow)>,
        /// The last partition that went idle before the first of those drops, if one did.
        idle_before: Option<IdlePartition>,
    },
    /// Results missing for a cause the trace records (a JobManager back without its job, a
    /// transaction the broker aborted).
    LostWithCause {
        /// The rows.
        rows: Vec<RowRef>,
        /// The causes.
        causes: Causes,
    },
    /// No result from this window on, to the end of the run: the job never produced again.
    Stalled {
        /// The first window with no result.
        since_window_ms: i64,
        /// The rows.
        rows: Vec<RowRef>,
    },
    /// A record of a topic that does not parse.
    Malformed {
        /// The topic and what is wrong.
        record: String,
    },
    /// A finding of the liveness phase (detection or recovery too slow, the tail not caught up,
    /// a job that should have stalled).
    Liveness(LivenessViolation),
}

impl Violation {
    /// What kind of failure it is.
    pub fn class(&self) -> VerdictClass {
        match self {
            Violation::NothingRan | Violation::Stalled { .. } | Violation::Liveness(_) => VerdictClass::Liveness,
            Violation::DroppedAsLate { .. } | Violation::LostWithCause { .. } => VerdictClass::Semantic,
            Violation::WrongCounts { .. }
            | Violation::Duplicated { .. }
            | Violation::Unaccounted { .. }
            | Violation::Malformed { .. } => VerdictClass::Correctness,
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::NothingRan => {
                f.write_str("no window was expected or emitted: the run is too short or nothing ran")
            }
            Violation::WrongCounts { rows } => write!(
                f,
                "{} (window, page) results count other than the recount from input: {}",
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
                "{} expected (window, page) results are missing and nothing in the trace accounts for \
                 their {} events ({gap_windows} windows missing between the first and the last fired): {}",
                rows.len(),
                events_short(rows),
                rows_named(rows)
            ),
            Violation::DroppedAsLate { rows, windows, idle_before } => {
                write!(
                    f,
                    "{} events of {} (window, page) results dropped as late by the window operator: {}",
                    events_short(rows),
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
                        ". Likely cause: {} marked partition {} idle at {} (no record for the 5 s \
                         idleness timeout), so the other partitions' watermark ran ahead of its backlog",
                        idle.task,
                        idle.partition,
                        clock(idle.at)
                    )?;
                }
                Ok(())
            }
            Violation::LostWithCause { rows, causes } => write!(
                f,
                "{} expected (window, page) results are missing ({} events): {}. Why: {causes}",
                rows.len(),
                events_short(rows),
                rows_named(rows)
            ),
            Violation::Stalled { since_window_ms, rows } => write!(
                f,
                "no result from window {} s on to the end of the run: {} expected (window, page) results never came",
                since_window_ms / 1000,
                rows.len()
            ),
            Violation::Malformed { record } => write!(f, "malformed record: {record}"),
            Violation::Liveness(violation) => violation.fmt(f),
        }
    }
}

/// Why results may be missing, as the trace records it (typed events, not wording): what a
/// report names next to the missing windows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Causes {
    /// Each time the JobManager started again after a job had run: the job was gone with it.
    pub jobs_lost: Vec<JobLost>,
    /// Transactions a restored sink could not commit because the broker had aborted them.
    pub transactions_lost: Vec<TransactionLost>,
    /// Windows whose operator dropped late events, by window start: the first drop of each.
    pub late_windows: BTreeMap<i64, LateWindow>,
    /// Kafka partitions that went idle, in the order they did: why a watermark could run ahead.
    pub idle_partitions: Vec<IdlePartition>,
}

/// A Kafka partition that went without records for the idleness timeout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdlePartition {
    /// When.
    pub at: Duration,
    /// Which task marked it (`Timestamps/Watermarks (1/2)`).
    pub task: String,
    /// The partition.
    pub partition: u32,
}

/// The first late drop of a window, as the window operator traced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LateWindow {
    /// When.
    pub at: Duration,
    /// Which task (`ClickEvent Counter (1/2)`).
    pub task: String,
    /// The operator's watermark then, ms of event time.
    pub watermark_ms: i64,
}

/// The JobManager came back without its job (the playground runs without HA).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobLost {
    /// When the JobManager started again.
    pub at: Duration,
    /// When a job was next submitted, if ever.
    pub resubmitted: Option<Duration>,
}

/// A pending transaction the broker aborted before the restored sink could commit it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransactionLost {
    /// When the sink found out.
    pub at: Duration,
    /// The transactional id.
    pub transactional_id: SmolStr,
    /// The checkpoint that recorded it as pending.
    pub checkpoint_id: u64,
    /// Whether the broker aborted it because of its transaction timeout.
    pub timed_out: bool,
}

impl Causes {
    /// Reads the causes off a run's trace.
    pub fn from_trace(events: &[TraceEvent]) -> Causes {
        let mut causes = Causes::default();
        let mut job_ran = false;
        for event in events {
            match &event.event {
                Event::JobSubmitted { .. } => {
                    job_ran = true;
                    if let Some(lost) = causes.jobs_lost.last_mut()
                        && lost.resubmitted.is_none()
                    {
                        lost.resubmitted = Some(event.at);
                    }
                }
                Event::JobManagerStarted { .. } if job_ran => {
                    job_ran = false;
                    causes.jobs_lost.push(JobLost { at: event.at, resubmitted: None });
                }
                Event::PartitionIdle { task, partition, .. } => {
                    causes.idle_partitions.push(IdlePartition {
                        at: event.at,
                        task: task.clone(),
                        partition: *partition,
                    });
                }
                Event::LateDropped { task, window_start_ms, watermark_ms, .. } => {
                    causes.late_windows.entry(*window_start_ms).or_insert(LateWindow {
                        at: event.at,
                        task: task.clone(),
                        watermark_ms: *watermark_ms,
                    });
                }
                Event::TransactionLost { transactional_id, checkpoint_id, cause } => {
                    causes.transactions_lost.push(TransactionLost {
                        at: event.at,
                        transactional_id: transactional_id.clone(),
                        checkpoint_id: *checkpoint_id,
                        timed_out: *cause == Some(AbortCause::Timeout),
                    });
                }
                _ => {}
            }
        }
        causes
    }

    /// Whether the trace names no cause of loss (late drops aside: they are judged per window).
    pub fn is_empty(&self) -> bool {
        self.jobs_lost.is_empty() && self.transactions_lost.is_empty()
    }
}

fn clock(at: Duration) -> String {
    let ms = at.as_millis();
    format!("{}:{:02}.{:03}", ms / 60_000, ms / 1000 % 60, ms % 1000)
}

impl std::fmt::Display for JobLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the JobManager came back at {} without the job (no HA in the playground)", clock(self.at))?;
        match self.resubmitted {
            Some(at) => write!(f, "; no job ran until it was submitted again at {}", clock(at)),
            None => f.write_str("; no job ran after that (submit it again with `flink run`)"),
        }
    }
}

impl std::fmt::Display for TransactionLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lost with transaction {} (recorded by checkpoint {}): the broker aborted it{} before the restored job could commit it ({})",
            self.transactional_id,
            self.checkpoint_id,
            if self.timed_out { " after its transaction timeout" } else { "" },
            clock(self.at)
        )
    }
}

impl std::fmt::Display for Causes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let jobs = self.jobs_lost.iter().map(ToString::to_string);
        let transactions = self.transactions_lost.iter().map(ToString::to_string);
        f.write_str(&jobs.chain(transactions).collect::<Vec<_>>().join("; "))
    }
}

/// The expected count of a complete window per page.
pub const EVENTS_PER_WINDOW_AND_PAGE: u64 = (WINDOW_MS / 15) as u64;

/// Judges what was observed against the expectations; `causes` explain missing results.
pub fn judge(observed: &Observed, expect: &Expect, causes: &Causes) -> OracleReport {
    let mut rows = Vec::new();
    let mut violations: Vec<Violation> = Vec::new();
    let mut notes = Vec::new();
    let expected_until = observed.max_event_time.map(|t| t - EXPECTED_WINDOW_SLACK_MS);
    // Every window that should have fired, and every window that did.
    let mut keys: BTreeMap<(i64, SmolStr), ()> = BTreeMap::new();
    if let Some(until) = expected_until {
        let mut start = 0;
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
    for (window_start_ms, page) in keys.into_keys() {
        let recount = observed.input_counts.get(&(window_start_ms, page.clone())).copied().unwrap_or(0);
        let counts = observed.output_counts.get(&(window_start_ms, page.clone())).cloned().unwrap_or_default();
        let status = if counts.is_empty() && recount == 0 {
            RowStatus::EmptyAtSource
        } else if counts.is_empty() {
            RowStatus::Missing
        } else if counts.iter().any(|&c| c != recount) {
            RowStatus::WrongCount
        } else if counts.len() > 1 {
            RowStatus::Duplicated
        } else {
            RowStatus::Ok
        };
        rows.push(WindowRow { window_start_ms, page, counts, recount, status });
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

    let judged = classify(&rows, &gaps, causes);
    let accepted = |violation: &Violation| match violation {
        Violation::WrongCounts { .. } => expect.counts == CountsExpectation::Any,
        Violation::Duplicated { .. } => expect.duplicates == DuplicatesExpectation::Allowed,
        Violation::DroppedAsLate { .. } => {
            expect.counts == CountsExpectation::Any || expect.loss == LossExpectation::Expected
        }
        Violation::Unaccounted { .. } | Violation::LostWithCause { .. } | Violation::Stalled { .. } => {
            expect.loss == LossExpectation::Expected
        }
        Violation::NothingRan | Violation::Malformed { .. } | Violation::Liveness(_) => false,
    };
    for violation in judged {
        if accepted(&violation) {
            notes.push(format!("{violation} (allowed by the scenario)"));
        } else {
            violations.push(violation);
        }
    }
    if !short_at_source.is_empty() {
        notes.push(format!(
            "{} windows hold fewer than {EVENTS_PER_WINDOW_AND_PAGE} events per page in input (missing at the source)",
            short_at_source.len()
        ));
    }
    let lost_events: u64 = rows
        .iter()
        .map(|r| r.recount.saturating_sub(r.counts.iter().copied().max().unwrap_or(0)))
        .sum();
    for problem in &observed.malformed {
        violations.push(Violation::Malformed { record: problem.clone() });
    }
    OracleReport {
        rows,
        input_events: observed.input_events,
        output_records: observed.output_records,
        gaps,
        short_at_source,
        lost_events,
        violations,
        notes,
        causes: causes.clone(),
    }
}

/// Sorts the rows that are not right into violations, by what explains them: late drops traced
/// in their window, a recorded cause of loss, the job never producing again, or nothing (an
/// engine bug).
fn classify(rows: &[WindowRow], gaps: &[i64], causes: &Causes) -> Vec<Violation> {
    let mut wrong = Vec::new();
    let mut duplicated = Vec::new();
    let mut unaccounted = Vec::new();
    let mut late = Vec::new();
    let mut with_cause = Vec::new();
    let mut stalled = Vec::new();
    let last_fired = rows.iter().filter(|r| !r.counts.is_empty()).map(|r| r.window_start_ms).max();
    for row in rows {
        let late_here = causes.late_windows.contains_key(&row.window_start_ms);
        match row.status {
            RowStatus::Ok | RowStatus::EmptyAtSource => {}
            RowStatus::Duplicated => duplicated.push(RowRef::from(row)),
            RowStatus::WrongCount if late_here => late.push(RowRef::from(row)),
            RowStatus::WrongCount => wrong.push(RowRef::from(row)),
            RowStatus::Missing if late_here => late.push(RowRef::from(row)),
            RowStatus::Missing if !causes.is_empty() => with_cause.push(RowRef::from(row)),
            RowStatus::Missing if last_fired.is_none_or(|last| row.window_start_ms > last) => {
                stalled.push(RowRef::from(row))
            }
            RowStatus::Missing => unaccounted.push(RowRef::from(row)),
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
            if windows.last().is_none_or(|(w, _)| *w != row.window_start_ms) {
                windows.push((row.window_start_ms, causes.late_windows[&row.window_start_ms].clone()));
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
    if !with_cause.is_empty() {
        violations.push(Violation::LostWithCause { rows: with_cause, causes: causes.clone() });
    }
    if let Some(first) = stalled.first() {
        violations.push(Violation::Stalled { since_window_ms: first.window_start_ms, rows: stalled });
    }
    violations
}

/// Reads both topics up to their current end, through a consumer on the oracle's own node.
pub async fn observe(
    rpc: Rpc,
    broker: std::net::SocketAddr,
    input_topic: &str,
    output_topic: &str,
    sink_mode: SinkMode,
) -> Observed {
    let mut observed = Observed::default();
    let mut dates = DateReader::default();
    let mut tally = WindowTally::default();
    // Count as records arrive: an hour of input is 1.44 M records, too many to hold.
    read_topic(&rpc, broker, input_topic, IsolationLevel::ReadUncommitted, |value| {
        match ClickEvent::parse_json_with(&mut dates, value) {
            Ok(event) => {
                observed.input_events += 1;
                observed.max_event_time =
                    Some(observed.max_event_time.map_or(event.timestamp_ms, |m| m.max(event.timestamp_ms)));
                tally.add(window_start(event.timestamp_ms), event, &mut observed.input_counts);
            }
            Err(error) => observed.malformed.push(format!("{input_topic}: {error}")),
        }
    })
    .await;
    tally.flush(&mut observed.input_counts);
    let isolation = match sink_mode {
        SinkMode::AtLeastOnce => IsolationLevel::ReadUncommitted,
        SinkMode::ExactlyOnce => IsolationLevel::ReadCommitted,
    };
    // Output copies are kept in partition then offset order.
    read_topic(&rpc, broker, output_topic, isolation, |value| match ClickEventStatistics::parse_json(value) {
        Ok(statistics) => {
            observed.output_records += 1;
            observed
                .output_counts
                .entry((statistics.window_start_ms, statistics.page))
                .or_default()
                .push(statistics.count);
        }
        Err(error) => observed.malformed.push(format!("{output_topic}: {error}")),
    })
    .await;
    observed
}

/// The counts of one window, by page, before they go into the map: a partition's records come
/// in window order, so nearly every record finds its window here and skips the map's search.
#[derive(Default)]
struct WindowTally {
    window: Option<i64>,
    /// By place in [`PAGES`], for the generator's pages.
    known: [u64; PAGES.len()],
    /// Any other page.
    others: Vec<(SmolStr, u64)>,
}

impl WindowTally {
    /// Counts `event` in the window starting at `window`.
    fn add(&mut self, window: i64, event: ClickEvent, counts: &mut BTreeMap<(i64, SmolStr), u64>) {
        if self.window != Some(window) {
            self.flush(counts);
            self.window = Some(window);
        }
        if let Some(i) = event.known_page_index() {
            self.known[i] += 1;
            return;
        }
        match self.others.iter_mut().find(|(p, _)| *p == event.page) {
            Some((_, count)) => *count += 1,
            None => self.others.push((event.page, 1)),
        }
    }

    /// Adds the window's counts to `counts` and empties the tally.
    fn flush(&mut self, counts: &mut BTreeMap<(i64, SmolStr), u64>) {
        let Some(window) = self.window.take() else {
            return;
        };
        let known = PAGES.iter().zip(std::mem::take(&mut self.known));
        let known = known.filter(|(_, count)| *count > 0);
        let known = known.map(|(page, count)| (SmolStr::new_static(page), count));
        for (page, count) in known.chain(self.others.drain(..)) {
            *counts.entry((window, page)).or_insert(0) += count;
        }
    }
}

/// Hands every record value of `topic` to `each`, partition by partition in offset order, up to
/// the end offsets seen at the start.
async fn read_topic(
    rpc: &Rpc,
    broker: std::net::SocketAddr,
    topic: &str,
    isolation: IsolationLevel,
    mut each: impl FnMut(&[u8]),
) {
    let mut config = ConsumerConfig::new(broker);
    config.isolation = isolation;
    config.max_wait = Duration::from_millis(100);
    let metadata = Consumer::new(rpc.clone(), config.clone());
    let partitions = retry(|| metadata.partitions_for(topic)).await;
    for partition in 0..partitions {
        let tp = TopicPartition { topic: topic.into(), partition };
        let mut consumer = Consumer::new(rpc.clone(), config.clone());
        let end = retry(|| consumer.end_offsets(std::slice::from_ref(&tp))).await[0];
        consumer.assign(vec![(tp.clone(), 0)]);
        while consumer.position(&tp).unwrap_or(0) < end {
            let Ok(fetched) = consumer.poll_batches().await else { continue };
            for record in fetched.records().filter(|r| r.offset < end) {
                each(record.value);
            }
        }
    }
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
            tally.add(window, ClickEvent { timestamp_ms: window, page }, &mut counts);
        }
        tally.flush(&mut counts);
        let expected = [((0, "/a"), 3), ((0, "/help"), 2), ((15, "/a"), 1), ((15, "/help"), 1)];
        assert_eq!(counts, expected.into_iter().map(|((w, p), c)| ((w, SmolStr::new(p)), c)).collect());
    }

    #[test]
    fn every_window_once_with_1000_passes() {
        let report = judge(&observed_windows(4, 1), &Expect::default(), &Causes::default());
        assert!(report.passed(), "{:?}", report.violations);
        assert_eq!(report.rows.len(), 24);
    }

    #[test]
    fn copies_fail_unless_duplicates_are_allowed() {
        let observed = observed_windows(4, 2);
        assert!(!judge(&observed, &Expect::default(), &Causes::default()).passed());
        let allowed = Expect { duplicates: DuplicatesExpectation::Allowed, ..Expect::default() };
        assert!(judge(&observed, &allowed, &Causes::default()).passed());
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

    #[test]
    fn a_gap_and_a_wrong_count_are_violations() {
        let mut observed = observed_windows(4, 1);
        for page in PAGES {
            observed.output_counts.remove(&(WINDOW_MS, page.into()));
        }
        observed.output_counts.insert((2 * WINDOW_MS, "/help".into()), vec![999]);
        let report = judge(&observed, &Expect::default(), &Causes::default());
        assert_eq!(report.gaps, vec![WINDOW_MS]);
        assert_eq!(report.violations.len(), 2, "{:?}", report.violations);
        let lossy = Expect { loss: LossExpectation::Expected, ..Expect::default() };
        assert_eq!(judge(&observed, &lossy, &Causes::default()).violations.len(), 1);
    }

    fn lose(observed: &mut Observed, window: i64) {
        for page in PAGES {
            observed.output_counts.remove(&(window * WINDOW_MS, page.into()));
        }
    }

    fn late_in(window: i64) -> Causes {
        let late = LateWindow { at: Duration::from_secs(100), task: "ClickEvent Counter (1/2)".into(), watermark_ms: 99_000 };
        Causes { late_windows: [(window * WINDOW_MS, late)].into(), ..Causes::default() }
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

        // The same short count and hole in a window whose operator dropped late events: the
        // job's event-time semantics.
        assert_eq!(verdict(&short, &late_in(2)), VerdictClass::Semantic);
        let report = judge(&hole, &Expect::default(), &late_in(2));
        assert!(matches!(report.violations.as_slice(), [Violation::DroppedAsLate { rows, windows, idle_before: None }] if rows.len() == 6 && windows.len() == 1));
        assert!(report.violations[0].to_string().starts_with("6000 events of 6 (window, page) results dropped as late"), "{}", report.violations[0]);

        // A hole with a recorded cause of loss.
        let job_lost = Causes { jobs_lost: vec![JobLost { at: Duration::from_secs(30), resubmitted: None }], ..Causes::default() };
        assert_eq!(verdict(&hole, &job_lost), VerdictClass::Semantic);

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
        let lossy = Expect { loss: LossExpectation::Expected, ..Expect::default() };
        let report = judge(&stall, &lossy, &nothing);
        assert!(report.passed() && report.notes.iter().any(|n| n.ends_with("(allowed by the scenario)")));
    }

}
