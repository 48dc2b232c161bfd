//! Invariants checked over a run's typed trace (docs/oracle.md#invariants-over-the-trace): each
//! finding names the first event at which the run was already wrong — a result that can no
//! longer match the recount of its window, a second visible copy where one is allowed, a
//! restore behind results already committed, a commit before its checkpoint completed, loss or
//! late drops the scenario does not accept.
//!
//! The oracle judges the run at its end; these checks say *when* it went wrong. Row-level
//! findings are raised only for rows the oracle does not accept, and the two trace-level ones
//! hold for every run of a correct engine, so a passing run has none.

use std::collections::BTreeMap;
use std::time::Duration;

use flinksim_engine::protocol::click_event::WINDOW_MS;
use flinksim_engine::protocol::ids::JobId;
use flinksim_engine::protocol::job::SinkMode;
use flinksim_engine::protocol::states::JobStatus;
use flinksim_engine::trace::{Event, TraceEvent};
use serde::Serialize;
use smol_str::SmolStr;

use crate::accounting::{Causes, RowKey};
use crate::oracle::{OracleReport, RowStatus, WindowRow, event_clock};
use crate::scenario::{CountsExpectation, DuplicatesExpectation, Expect, LateExpectation, LossExpectation};

/// One invariant the run broke, at one event of its trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Simulated time of the event.
    pub at: Duration,
    /// The event's index in the trace.
    pub index: usize,
    /// What is wrong.
    pub breach: Breach,
}

/// What a finding says is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Breach {
    /// A result counts more than `input` holds for its (window, page): no later copy can make
    /// the row right.
    CountAboveRecount {
        /// The window's start, ms of event time.
        window_start_ms: i64,
        /// The page.
        page: SmolStr,
        /// The result's count.
        count: u64,
        /// The recount from `input`.
        recount: u64,
    },
    /// The result the row is judged by (no larger copy came later) counts less than `input`
    /// holds, and nothing (late drops, recorded loss) accounts for the difference.
    ShortResult {
        /// The window's start, ms of event time.
        window_start_ms: i64,
        /// The page.
        page: SmolStr,
        /// The result's count.
        count: u64,
        /// The recount from `input`.
        recount: u64,
        /// Events nothing accounts for.
        unaccounted: i64,
    },
    /// The page's next window fired while this one never did: its events are gone, and
    /// nothing the trace records lost them.
    WindowSkipped {
        /// The skipped window's start, ms of event time.
        window_start_ms: i64,
        /// The page.
        page: SmolStr,
        /// The window that fired (its start).
        later_window_ms: i64,
        /// Events of the skipped window in `input`.
        recount: u64,
    },
    /// A second copy of a result became visible (written at-least-once, committed
    /// exactly-once) where the scenario allows one.
    SecondCopy {
        /// The window's start, ms of event time.
        window_start_ms: i64,
        /// The page.
        page: SmolStr,
        /// The counts of the visible copies, this one last.
        counts: Vec<u64>,
        /// Whether the copy became visible by a transaction's commit (the exactly-once sink).
        committed: bool,
    },
    /// A job restored a checkpoint older than its latest completed one: its sources rewind
    /// behind events of results the later checkpoint already committed.
    RestoreBehindLatest {
        /// The job.
        job_id: JobId,
        /// The checkpoint restored.
        restored: u64,
        /// The job's latest completed checkpoint then.
        latest_completed: u64,
    },
    /// An exactly-once sink committed a transaction before the checkpoint that owns it (or a
    /// later one, which subsumes it) completed: a failure now would restore an earlier checkpoint
    /// and commit its results again.
    CommitBeforeCompletion {
        /// The subtask.
        task: String,
        /// The checkpoint named by the commit.
        checkpoint_id: u64,
    },
    /// Results were lost (a transaction the broker aborted, a job's state lost) where the
    /// scenario expects no loss.
    LossNotAccepted {
        /// The events lost, over every row.
        events: u64,
        /// The rows with loss.
        rows: usize,
    },
    /// The window operator dropped events as late where the scenario expects none.
    LateNotAccepted {
        /// The window's start, ms of event time.
        window_start_ms: i64,
        /// The page.
        page: SmolStr,
        /// The task that dropped them.
        task: String,
        /// Events this drop dropped.
        count: u64,
    },
}

impl Breach {
    /// The invariant's short name, as a report tags it.
    pub fn name(&self) -> &'static str {
        match self {
            Breach::CountAboveRecount { .. } => "count above recount",
            Breach::ShortResult { .. } => "short result",
            Breach::WindowSkipped { .. } => "window skipped",
            Breach::SecondCopy { .. } => "second copy",
            Breach::RestoreBehindLatest { .. } => "restore behind latest",
            Breach::CommitBeforeCompletion { .. } => "commit before completion",
            Breach::LossNotAccepted { .. } => "loss not accepted",
            Breach::LateNotAccepted { .. } => "late drops not accepted",
        }
    }
}


impl std::fmt::Display for Finding {
    /// `m:ss.mmm  [kind] what is wrong`, as the reports list findings.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}  [{}] {}", crate::timeline::clock(self.at), self.breach.name(), self.breach)
    }
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Breach::CountAboveRecount { window_start_ms, page, count, recount } => write!(
                f,
                "result {} {page} counts {count}, more than the {recount} events input holds",
                event_clock(*window_start_ms)
            ),
            Breach::ShortResult { window_start_ms, page, count, recount, unaccounted } => write!(
                f,
                "result {} {page} counts {count} of {recount}, and no larger copy follows: {unaccounted} events nothing accounts for",
                event_clock(*window_start_ms)
            ),
            Breach::WindowSkipped { window_start_ms, page, later_window_ms, recount } => write!(
                f,
                "window {} {page} never fired ({recount} events in input), and the page's window {} did",
                event_clock(*window_start_ms),
                event_clock(*later_window_ms)
            ),
            Breach::SecondCopy { window_start_ms, page, counts, committed } => {
                let counts: Vec<String> = counts.iter().map(u64::to_string).collect();
                write!(
                    f,
                    "a second copy of {} {page} became visible ({}; copies {})",
                    event_clock(*window_start_ms),
                    if *committed { "committed" } else { "written" },
                    counts.join(", ")
                )
            }
            Breach::RestoreBehindLatest { job_id, restored, latest_completed } => write!(
                f,
                "job {job_id} restored checkpoint {restored}, behind its latest completed checkpoint {latest_completed}"
            ),
            Breach::CommitBeforeCompletion { task, checkpoint_id } => {
                write!(f, "{task} committed the transaction of checkpoint {checkpoint_id} before the checkpoint completed")
            }
            Breach::LossNotAccepted { events, rows } => {
                write!(f, "{events} events of {rows} (window, page) rows lost, and the scenario expects no loss")
            }
            Breach::LateNotAccepted { window_start_ms, page, task, count } => write!(
                f,
                "{task} dropped {count} events of {} {page} as late, and the scenario expects no late drops",
                event_clock(*window_start_ms)
            ),
        }
    }
}

/// One copy of a result as the trace shows it.
struct Copy {
    count: u64,
    written: usize,
    /// When it became visible in `output`: at its write at-least-once, at its transaction's
    /// commit exactly-once (never, if the transaction was not committed).
    visible: Option<usize>,
}

/// Every finding of a run, earliest first (by trace index).
pub fn check(events: &[TraceEvent], report: &OracleReport, sink: SinkMode, expect: &Expect) -> Vec<Finding> {
    let mut findings = trace_findings(events, sink);
    findings.extend(row_findings(events, report, sink, expect));
    findings.sort_by_key(|f| f.index);
    findings
}

/// The invariants of a correct engine whatever the scenario expects: restores never go behind
/// the latest completed checkpoint, and transactions commit only after their checkpoint.
fn trace_findings(events: &[TraceEvent], sink: SinkMode) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut latest: BTreeMap<JobId, u64> = BTreeMap::new();
    // The newest checkpoint (or savepoint) completed over every job: ids grow across a resume
    // from a savepoint, so an id completed by an earlier job is no false alarm. A completed
    // checkpoint subsumes the older ones that failed: their transactions, still pending in the
    // sink's state, commit with it (Flink commits every pending transaction up to the id it is
    // notified of).
    let mut newest_completed: Option<u64> = None;
    for (index, event) in events.iter().enumerate() {
        let mut found = |breach| findings.push(Finding { at: event.at, index, breach });
        match &event.event {
            Event::CheckpointCompleted { job_id, checkpoint_id, .. } => {
                latest.insert(*job_id, *checkpoint_id);
                newest_completed = newest_completed.max(Some(*checkpoint_id));
            }
            Event::SavepointCompleted { checkpoint_id, .. } => {
                newest_completed = newest_completed.max(Some(*checkpoint_id));
            }
            Event::Restoring { job_id, checkpoint_id, .. } => {
                if let Some(&newest) = latest.get(job_id)
                    && *checkpoint_id < newest
                {
                    found(Breach::RestoreBehindLatest { job_id: *job_id, restored: *checkpoint_id, latest_completed: newest });
                }
            }
            Event::TransactionCommitted { task, checkpoint_id, .. }
                if sink == SinkMode::ExactlyOnce && newest_completed.is_none_or(|newest| newest < *checkpoint_id) =>
            {
                found(Breach::CommitBeforeCompletion { task: task.clone(), checkpoint_id: *checkpoint_id })
            }
            _ => {}
        }
    }
    findings
}

/// Every copy of every result, by row, in trace order.
fn copies(events: &[TraceEvent], sink: SinkMode) -> BTreeMap<RowKey, Vec<Copy>> {
    let mut copies: BTreeMap<RowKey, Vec<Copy>> = BTreeMap::new();
    let mut open: BTreeMap<(SmolStr, i64, i16), Vec<(RowKey, usize)>> = BTreeMap::new();
    for (index, event) in events.iter().enumerate() {
        match &event.event {
            Event::ResultWritten { statistics, transaction, .. } => {
                let key = (statistics.window_start_ms, statistics.page.clone());
                let row = copies.entry(key.clone()).or_default();
                let visible = match (sink, transaction) {
                    (SinkMode::ExactlyOnce, Some(t)) => {
                        let t = (t.transactional_id.clone(), t.producer_id, t.epoch);
                        open.entry(t).or_default().push((key, row.len()));
                        None
                    }
                    _ => Some(index),
                };
                row.push(Copy { count: statistics.count, written: index, visible });
            }
            Event::TransactionCommitted { transaction, .. } => {
                let t = (transaction.transactional_id.clone(), transaction.producer_id, transaction.epoch);
                for (key, n) in open.remove(&t).unwrap_or_default() {
                    if let Some(copy) = copies.get_mut(&key).and_then(|row| row.get_mut(n)) {
                        copy.visible = Some(index);
                    }
                }
            }
            _ => {}
        }
    }
    copies
}

/// Where each row the oracle does not accept first went wrong.
fn row_findings(events: &[TraceEvent], report: &OracleReport, sink: SinkMode, expect: &Expect) -> Vec<Finding> {
    let copies = copies(events, sink);
    let at = |index: usize| Finding { at: events[index].at, index, breach: Breach::LossNotAccepted { events: 0, rows: 0 } };
    let mut findings = Vec::new();
    let none = Vec::new();
    for row in report.rows.iter().filter(|r| !r.expected) {
        let key = (row.window_start_ms, row.page.clone());
        let row_copies = copies.get(&key).unwrap_or(&none);
        let page = row.page.clone();
        let window_start_ms = row.window_start_ms;
        if row.status == RowStatus::WrongCount {
            if expect.counts == CountsExpectation::Any {
                continue;
            }
            // The first copy counting more than input holds; else (counted, late and lost add
            // up to more) the copy judged.
            let copy = row_copies
                .iter()
                .find(|c| c.count > row.recount)
                .or_else(|| row_copies.iter().find(|c| c.count == row.counted));
            if let Some(copy) = copy {
                findings.push(Finding {
                    breach: Breach::CountAboveRecount { window_start_ms, page, count: copy.count, recount: row.recount },
                    ..at(copy.written)
                });
            }
        } else if row.unaccounted > 0 {
            findings.extend(short_or_skipped(row, row_copies, &copies, events));
        } else if row.counts.len() > 1 && !row.split_by_drain && second_copy_breaks(expect.duplicates, row) {
            let mut visible: Vec<(usize, u64)> = row_copies.iter().filter_map(|c| c.visible.map(|v| (v, c.count))).collect();
            visible.sort();
            if let Some(&(index, _)) = visible.get(1) {
                let counts = visible.iter().take(2).map(|(_, c)| *c).collect();
                findings.push(Finding {
                    breach: Breach::SecondCopy { window_start_ms, page, counts, committed: sink == SinkMode::ExactlyOnce },
                    ..at(index)
                });
            }
        }
    }
    if expect.late == LateExpectation::None {
        findings.extend(late_findings(events, report));
    }
    match expect.loss {
        LossExpectation::None => findings.extend(loss_finding(events, report, |_| true)),
        // Loss an older restore caused is accepted (the row is expected); any other breaks.
        LossExpectation::Explained => findings.extend(loss_finding(events, report, |row| !row.expected)),
        LossExpectation::Allowed | LossExpectation::Required => {}
    }
    findings
}

/// Whether a row's second copy breaks the run's invariants under `duplicates`: always under
/// `none`; under `explained` unless the oracle named a cause Flink shares for its copies (the
/// row is then expected); never where copies are accepted.
fn second_copy_breaks(duplicates: DuplicatesExpectation, row: &WindowRow) -> bool {
    match duplicates {
        DuplicatesExpectation::None => true,
        DuplicatesExpectation::Explained => !row.expected,
        DuplicatesExpectation::Allowed | DuplicatesExpectation::Required => false,
    }
}

/// A row short of its recount: the copy it is judged by, or, with none, the page's later
/// window that fired past it.
fn short_or_skipped(row: &WindowRow, row_copies: &[Copy], copies: &BTreeMap<RowKey, Vec<Copy>>, events: &[TraceEvent]) -> Option<Finding> {
    let (window_start_ms, page) = (row.window_start_ms, row.page.clone());
    if let Some(copy) = row_copies.iter().filter(|c| c.visible.is_some()).find(|c| c.count == row.counted) {
        return Some(Finding {
            at: events[copy.written].at,
            index: copy.written,
            breach: Breach::ShortResult {
                window_start_ms,
                page,
                count: copy.count,
                recount: row.recount,
                unaccounted: row.unaccounted,
            },
        });
    }
    // Pages are keys: one subtask fires every window of a page in order, so a later window
    // of the page fired means this one's watermark had passed.
    let later = copies
        .range((window_start_ms + WINDOW_MS, page.clone())..)
        .filter(|((_, p), _)| *p == page)
        .flat_map(|((start, _), cs)| cs.iter().filter(|c| c.visible.is_some()).map(move |c| (c.written, *start)))
        .min()?;
    Some(Finding {
        at: events[later.0].at,
        index: later.0,
        breach: Breach::WindowSkipped { window_start_ms, page, later_window_ms: later.1, recount: row.recount },
    })
}

/// The first late drop of each row whose late events still count.
fn late_findings(events: &[TraceEvent], report: &OracleReport) -> Vec<Finding> {
    let late_rows: BTreeMap<RowKey, ()> =
        report.rows.iter().filter(|r| r.late > 0).map(|r| ((r.window_start_ms, r.page.clone()), ())).collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut findings = Vec::new();
    for (index, event) in events.iter().enumerate() {
        if let Event::LateDropped { task, window_start_ms, page, count, .. } = &event.event {
            let key = (*window_start_ms, page.clone());
            if late_rows.contains_key(&key) && seen.insert(key) {
                findings.push(Finding {
                    at: event.at,
                    index,
                    breach: Breach::LateNotAccepted {
                        window_start_ms: *window_start_ms,
                        page: page.clone(),
                        task: task.clone(),
                        count: *count,
                    },
                });
            }
        }
    }
    findings
}

/// The first event that lost results, when some row that `counts` has loss: a transaction the
/// restored sink could not commit, or the moment a job's state was lost.
fn loss_finding(events: &[TraceEvent], report: &OracleReport, counts: impl Fn(&WindowRow) -> bool) -> Option<Finding> {
    let lossy: Vec<&WindowRow> = report.rows.iter().filter(|r| r.lost > 0 && counts(r)).collect();
    if lossy.is_empty() {
        return None;
    }
    let first = first_loss(&report.causes)?;
    let index = events.iter().position(|e| e.at >= first && is_loss(&e.event)).or_else(|| events.iter().position(|e| e.at >= first))?;
    Some(Finding {
        at: events[index].at,
        index,
        breach: Breach::LossNotAccepted { events: lossy.iter().map(|r| r.lost).sum(), rows: lossy.len() },
    })
}

fn first_loss(causes: &Causes) -> Option<Duration> {
    let transactions = causes.transactions_lost.iter().map(|t| t.at);
    let states = causes.states_lost.iter().map(|s| s.at);
    transactions.chain(states).min()
}

/// Events that lose results: what [`Causes`] reads a loss from.
fn is_loss(event: &Event) -> bool {
    matches!(
        event,
        Event::TransactionLost { .. }
            | Event::JobStatusChanged { to: JobStatus::Failed, .. }
            | Event::JobManagerStarted { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use flinksim_engine::protocol::click_event::ClickEventStatistics;
    use flinksim_engine::trace::TransactionHandle;

    fn event(at_ms: u64, event: Event) -> TraceEvent {
        TraceEvent { at: Duration::from_millis(at_ms), node: "taskmanager-1".into(), event }
    }

    fn result(at_ms: u64, start: i64, count: u64, transaction: Option<&str>) -> TraceEvent {
        event(
            at_ms,
            Event::ResultWritten {
                task: "Sink (1/1)".into(),
                statistics: ClickEventStatistics {
                    window_start_ms: start,
                    window_end_ms: start + WINDOW_MS,
                    page: "/help".into(),
                    count,
                },
                transaction: transaction.map(handle),
            },
        )
    }

    fn handle(id: &str) -> TransactionHandle {
        TransactionHandle { transactional_id: id.into(), producer_id: 1, epoch: 0 }
    }

    fn completed(at_ms: u64, checkpoint_id: u64) -> TraceEvent {
        event(at_ms, Event::CheckpointCompleted {
            job_id: job(),
            checkpoint_id,
            size_bytes: 1,
            duration: Duration::ZERO,
            finalization: Duration::ZERO,
        })
    }

    fn commit(at_ms: u64, id: &str, checkpoint_id: u64) -> TraceEvent {
        event(
            at_ms,
            Event::TransactionCommitted { task: "Sink (1/1)".into(), transaction: handle(id), checkpoint_id, on_restore: false },
        )
    }

    fn row(start: i64, counts: &[u64], recount: u64, status: RowStatus) -> WindowRow {
        let counted = counts.iter().max().copied().unwrap_or(0);
        WindowRow {
            window_start_ms: start,
            page: "/help".into(),
            counts: counts.to_vec(),
            recount,
            counted,
            late: 0,
            lost: 0,
            unaccounted: recount as i64 - counted as i64,
            status,
            split_by_drain: false,
            expected: status == RowStatus::Ok,
        }
    }

    fn report(rows: Vec<WindowRow>) -> OracleReport {
        OracleReport {
            rows,
            input_events: 0,
            output_records: 0,
            gaps: Vec::new(),
            short_at_source: Vec::new(),
            violations: Vec::new(),
            notes: Vec::new(),
            accepted: Vec::new(),
            causes: Causes::default(),
            output_partitions: Vec::new(),
            stuck: None,
            fenced: Vec::new(),
        }
    }

    fn job() -> JobId {
        JobId(7)
    }

    #[test]
    fn a_result_above_its_recount_is_wrong_when_written() {
        let events = vec![result(1_000, 0, 1000, None), result(16_000, 15_000, 1001, None)];
        let rows = vec![row(0, &[1000], 1000, RowStatus::Ok), row(15_000, &[1001], 1000, RowStatus::WrongCount)];
        let findings = check(&events, &report(rows), SinkMode::AtLeastOnce, &Expect::default());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!((findings[0].index, findings[0].at), (1, Duration::from_secs(16)));
        assert!(matches!(findings[0].breach, Breach::CountAboveRecount { count: 1001, recount: 1000, .. }));
    }

    #[test]
    fn an_exactly_once_copy_counts_at_its_commit_and_an_uncommitted_one_never() {
        let events = vec![
            result(1_000, 0, 1000, Some("t-0-1")),
            commit(2_000, "t-0-1", 1),
            result(3_000, 0, 1000, Some("t-0-2")), // rolled back: never committed
            result(4_000, 0, 1000, Some("t-0-3")),
            commit(5_000, "t-0-3", 2),
        ];
        let mut events = events;
        events.insert(1, completed(1_500, 1));
        events.insert(5, completed(4_500, 2));
        let mut duplicated = row(0, &[1000, 1000], 1000, RowStatus::Duplicated);
        duplicated.expected = false;
        let findings = check(&events, &report(vec![duplicated.clone()]), SinkMode::ExactlyOnce, &Expect::default());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].index, 6, "the second commit, not the second write");
        assert!(matches!(&findings[0].breach, Breach::SecondCopy { committed: true, counts, .. } if counts == &[1000, 1000]));
        // Copies the scenario allows are no finding.
        let allowed = Expect { duplicates: DuplicatesExpectation::Allowed, ..Expect::default() };
        duplicated.expected = true;
        assert!(check(&events, &report(vec![duplicated]), SinkMode::ExactlyOnce, &allowed).is_empty());
    }

    #[test]
    fn a_restore_behind_the_latest_completed_checkpoint_and_an_early_commit_are_wrong_whatever_is_expected() {
        let restoring = |at_ms, id| {
            event(at_ms, Event::Restoring { job_id: job(), checkpoint_id: id, timestamp_ms: 0, directory: String::new() })
        };
        let events = vec![
            completed(1_000, 1),
            completed(2_000, 2),
            restoring(3_000, 2), // the latest: right
            restoring(4_000, 1), // behind it: wrong
            commit(5_000, "t-0-3", 3),
        ];
        let findings = check(&events, &report(Vec::new()), SinkMode::ExactlyOnce, &Expect::default());
        assert_eq!(findings.iter().map(|f| f.index).collect::<Vec<_>>(), [3, 4], "{findings:?}");
        assert!(matches!(findings[0].breach, Breach::RestoreBehindLatest { restored: 1, latest_completed: 2, .. }));
        assert!(matches!(findings[1].breach, Breach::CommitBeforeCompletion { checkpoint_id: 3, .. }));
        // At-least-once has no transactions to commit early.
        assert_eq!(check(&events, &report(Vec::new()), SinkMode::AtLeastOnce, &Expect::default()).len(), 1);
    }

    #[test]
    fn the_transactions_of_failed_checkpoints_commit_with_the_next_completed_one() {
        // Checkpoints 2 and 3 failed (storage was down); 4 completes and subsumes them.
        let events = vec![
            completed(1_000, 1),
            commit(1_100, "t-0-1", 1),
            completed(5_000, 4),
            commit(5_100, "t-0-2", 2),
            commit(5_200, "t-0-3", 3),
            commit(5_300, "t-0-4", 4),
            commit(5_400, "t-0-5", 5), // checkpoint 5 has not completed: wrong
        ];
        let findings = check(&events, &report(Vec::new()), SinkMode::ExactlyOnce, &Expect::default());
        assert_eq!(findings.iter().map(|f| f.index).collect::<Vec<_>>(), [6], "{findings:?}");
        assert!(matches!(findings[0].breach, Breach::CommitBeforeCompletion { checkpoint_id: 5, .. }));
    }

    #[test]
    fn a_window_that_never_fired_is_wrong_when_the_pages_next_window_fires() {
        let events = vec![result(1_000, 0, 1000, None), result(31_000, 30_000, 1000, None)];
        let rows = vec![
            row(0, &[1000], 1000, RowStatus::Ok),
            row(15_000, &[], 1000, RowStatus::Missing),
            row(30_000, &[1000], 1000, RowStatus::Ok),
        ];
        let findings = check(&events, &report(rows), SinkMode::AtLeastOnce, &Expect::default());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].index, 1);
        assert!(matches!(findings[0].breach, Breach::WindowSkipped { window_start_ms: 15_000, later_window_ms: 30_000, .. }));
    }

    #[test]
    fn a_short_result_is_wrong_at_the_copy_it_is_judged_by() {
        let events = vec![result(1_000, 0, 400, None), result(2_000, 0, 900, None)];
        let rows = vec![row(0, &[400, 900], 1000, RowStatus::Short)];
        let findings = check(&events, &report(rows), SinkMode::AtLeastOnce, &Expect::default());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].index, 1);
        assert!(matches!(findings[0].breach, Breach::ShortResult { count: 900, unaccounted: 100, .. }));
    }
}
