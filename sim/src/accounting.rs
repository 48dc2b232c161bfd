//! What the trace says happened to input events besides being counted: the oracle's side of
//! the accounting `recount = counted + late + lost + unaccounted` (see [`crate::oracle`]).
//!
//! Read off typed trace events, never wording:
//! - **late**: the window operator traces its drops per (window, page) with the checkpoint its
//!   state covers; a later restore from a checkpoint at or below that one reads those events
//!   again, so such drops no longer count (and a restart with no checkpoint reads everything
//!   again);
//! - **lost in a transaction**: the sink traces each result with the transaction it went into;
//!   a transaction the broker aborted before the restored sink could commit it loses exactly
//!   those results;
//! - **lost with the job's state**: a job that ends without handing its state on (FAILED with
//!   no restart strategy, or gone with a JobManager that has no HA) loses what its open windows
//!   held. No node can trace what a killed node held, so the oracle bounds where that loss may
//!   lie ([`StateLost`]); see the oracle for how it judges the span.

use crate::timeline::clock;
use crate::liveness::JOBMANAGER;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use flinksim_engine::protocol::click_event::{PAGES, WINDOW_MS, window_start};
use flinksim_engine::protocol::ids::JobId;
use flinksim_engine::protocol::states::JobStatus;
use flinksim_engine::trace::{AbortCause, Event, SinkAbort, TraceEvent, TransactionHandle};
use serde::Serialize;
use smol_str::SmolStr;

/// One (window start, page).
pub type RowKey = (i64, SmolStr);

/// Why results may be missing or short, as the trace records it: what a report names next to
/// the rows concerned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Causes {
    /// Transactions a restored sink could not commit because the broker had aborted them.
    pub transactions_lost: Vec<TransactionLost>,
    /// Windows whose operator dropped late events that still count, by window start: the
    /// first such drop of each.
    pub late_windows: BTreeMap<i64, LateWindow>,
    /// Kafka partitions that went idle, in the order they did: why a watermark could run ahead.
    pub idle_partitions: Vec<IdlePartition>,
    /// Per (window, page): events dropped as late that no restore read again.
    pub late: BTreeMap<RowKey, u64>,
    /// Per (window, page): events counted in results that went into a lost transaction.
    pub lost_in_transactions: BTreeMap<RowKey, u64>,
    /// Per (window, page): results written in transactions that never committed (aborted, lost,
    /// timed out or open at the end). `read_committed` readers never see them; a
    /// `read_uncommitted` reader reads each as a copy (docs/oracle.md#the-reader).
    pub never_committed: BTreeMap<RowKey, u64>,
    /// Every moment a job's state was lost, with what the job had fired by then.
    pub states_lost: Vec<StateLost>,
    /// Per (window, page): the partial count a `flink stop --drain` fired for a window open at
    /// the stop, when a job later resumed from that savepoint: the window comes out a second
    /// time with the rest of its count (Flink's CLI warns against resuming after a drain).
    pub drained: BTreeMap<RowKey, u64>,
    /// Transactions that wrote results and never ended (no commit, abort, timeout or loss in
    /// the trace): their producer was gone when the run ended. Such a transaction holds the
    /// last stable offset of the partitions it wrote to until the broker's timeout aborts it.
    pub open_at_end: Vec<OpenTransaction>,
    /// Savepoints restored a second time by another job: the sources rewind to its offsets,
    /// and the windows the first resume committed come out again.
    pub rewinds: Vec<Rewind>,
    /// Stops whose savepoint's transactions the sinks committed before the job failed over to an
    /// older checkpoint: the windows those transactions held come out again.
    pub replayed_after_stops: Vec<ReplayedAfterStop>,
}

/// A transaction with results that was still open when the run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpenTransaction {
    /// The transaction.
    pub transaction: TransactionHandle,
    /// The sink subtask that wrote it (`ClickEventStatistics Sink (1/2)`).
    pub task: String,
    /// When it wrote its first result.
    pub first_write: Duration,
    /// The results it holds.
    pub results: u64,
    /// Set when a zombie wrote it: a task on a TaskManager the JobManager had declared lost
    /// (and that had neither heard of it nor registered again) when the first result went in,
    /// under an id no producer registered again afterwards (that must have aborted it).
    pub zombie: Option<Zombie>,
}

/// A TaskManager's tasks running on after the JobManager declared it lost, before they hear of
/// it (docs/model/cluster.md#failure-detection): the failed-over attempt runs elsewhere, so
/// what they write nobody restores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Zombie {
    /// The TaskManager's node.
    pub node: String,
    /// When the JobManager declared it lost.
    pub declared_lost_at: Duration,
}

/// A savepoint restored a second time, by another job than the first restore's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rewind {
    /// The savepoint's directory.
    pub location: String,
    /// The job that restored it first, and when.
    pub first: (JobId, Duration),
    /// The job that restored it again, and when.
    pub again: (JobId, Duration),
    /// Windows (by start) with a result written between the two restores: the ones the second
    /// restore may write again.
    pub windows: BTreeSet<i64>,
}

/// A `flink stop` whose savepoint completed, and whose sinks committed the transactions it
/// recorded, after which the job failed over before it FINISHED. A savepoint never becomes the
/// checkpoint a failover restores (in Flink as here), so the job restored an older checkpoint
/// and wrote the windows those transactions held a second time. Flink's stop fails with "… The
/// savepoint is consistent, but might have uncommitted transactions."
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReplayedAfterStop {
    /// The job stopped.
    pub job_id: JobId,
    /// The savepoint's checkpoint id.
    pub savepoint: u64,
    /// The older checkpoint the failover restored, and when.
    pub restored: (u64, Duration),
    /// Windows (by start) with results in the transactions the savepoint's commit committed.
    pub windows: BTreeSet<i64>,
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
    /// How long it had gone without records (the job's idleness timeout).
    pub idle_after: Duration,
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

/// A job failed for good: with no restart strategy (no checkpointing) nothing restores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JobFailedForGood {
    /// When it reached FAILED.
    pub at: Duration,
    /// When a job was next submitted, if ever.
    pub resubmitted: Option<Duration>,
}

/// A pending transaction the broker aborted before the restored sink could commit it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransactionLost {
    /// When the sink found out.
    pub at: Duration,
    /// The transaction.
    pub transaction: TransactionHandle,
    /// The checkpoint that recorded it as pending.
    pub checkpoint_id: u64,
    /// Whether the broker aborted it because of its transaction timeout.
    pub timed_out: bool,
    /// The results it held, as (window start, page, count).
    pub results: Vec<(i64, SmolStr, u64)>,
    /// Set when a sink that restored an older checkpoint than `checkpoint_id` aborted it, as
    /// lingering under its ids, after it began: an older attempt's late restore fenced what the
    /// newer attempt had written, as in Flink (docs/oracle.md#lost-to-an-older-restore). Its
    /// value is the checkpoint that sink restored.
    pub aborted_by_older_restore: Option<u64>,
}

/// A job's state was lost at `at`: windows open then lose what they held, and events read
/// after the last offset commit are read again by the next job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateLost {
    /// When the state was lost (the job FAILED, or the JobManager came back without it): an
    /// upper bound on when the job last read, so no window starting after it held anything.
    pub at: Duration,
    /// Why.
    pub why: StateLostWhy,
    /// Windows (by start) whose every page had a result written before `at`.
    pub fired_before: BTreeSet<i64>,
    /// When a job was next submitted, if ever.
    pub resubmitted: Option<Duration>,
}

/// Why a job's state was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum StateLostWhy {
    /// The job FAILED with no restart strategy (no checkpointing).
    FailedWithoutCheckpointing,
    /// The JobManager came back without the job (no HA).
    JobManagerLostTheJob,
}

impl StateLost {
    /// A loss at `at`, the job not (yet) submitted again.
    fn new(at: Duration, why: StateLostWhy, fired_before: BTreeSet<i64>) -> StateLost {
        StateLost { at, why, fired_before, resubmitted: None }
    }

    /// The latest window that could hold events the lost job had read: the one containing
    /// `at` past `origin_ms`, the generator's first event time (event time never runs ahead of
    /// simulated time from there).
    pub fn last_window(&self, origin_ms: i64) -> i64 {
        window_start((self.at.as_millis() as i64).saturating_add(origin_ms))
    }

    /// The latest window the loss reaches: [`last_window`](Self::last_window), or every window
    /// to the end when the JobManager lost the job and no job was submitted again (no job ran
    /// after it). A job that FAILED for good and was never submitted again accounts for
    /// nothing: its own state says FAILED, and the verdict is that it never recovered.
    fn reaches(&self, origin_ms: i64) -> i64 {
        match (self.why, self.resubmitted) {
            (StateLostWhy::JobManagerLostTheJob, None) => i64::MAX,
            (StateLostWhy::FailedWithoutCheckpointing, None) => i64::MIN,
            _ => self.last_window(origin_ms),
        }
    }
}

/// A transaction as the broker tells them apart: its id, producer id and epoch.
type TransactionKey = (SmolStr, i64, i16);

/// One late drop as traced, until a restore takes it back.
struct Drop {
    job_id: JobId,
    checkpoint_id: u64,
    key: RowKey,
    count: u64,
    first: LateWindow,
}

impl Causes {
    /// Reads the causes off a run's trace.
    pub fn from_trace(events: &[TraceEvent]) -> Causes {
        let mut causes = Causes::default();
        let mut job_ran = false;
        let mut drops: Vec<Drop> = Vec::new();
        // Jobs restarting, and whether a checkpoint was restored since.
        let mut restarting: BTreeMap<JobId, bool> = BTreeMap::new();
        // Results per transaction, for the ones the broker may abort.
        let mut in_transaction: BTreeMap<TransactionKey, Vec<(i64, SmolStr, u64)>> = BTreeMap::new();
        let mut committed: BTreeSet<TransactionKey> = BTreeSet::new();
        // When each transaction began, and every sink's abort of lingering transactions on start
        // (when, the ids, the checkpoint it restored).
        let mut began: BTreeMap<TransactionKey, Duration> = BTreeMap::new();
        let mut lingering_aborts: Vec<(Duration, &[SmolStr], u64)> = Vec::new();
        // Pages written per window, for what had fired before a state was lost.
        let mut written: BTreeMap<i64, BTreeSet<SmolStr>> = BTreeMap::new();
        // The drain under way (job, savepoint), and the drains done, with what each fired.
        let mut draining: Option<(JobId, u64, BTreeMap<RowKey, u64>)> = None;
        let mut drains: Vec<(JobId, u64, BTreeMap<RowKey, u64>)> = Vec::new();
        // Transactions with results and not ended yet, with their first write and result count.
        let mut open: BTreeMap<TransactionKey, OpenTransaction> = BTreeMap::new();
        // Each savepoint restored, by the first job that restored it; every result's time and window.
        let mut restored_first: BTreeMap<String, (JobId, Duration)> = BTreeMap::new();
        let mut results_at: Vec<(Duration, i64)> = Vec::new();
        // The savepoint of the stop under way, and the windows the commits its completion set
        // off committed, by the checkpoint that recorded each transaction.
        let mut stop: Option<(JobId, u64, BTreeMap<u64, BTreeSet<i64>>)> = None;
        // TaskManagers the JobManager has declared lost and not registered again, by node.
        let mut declared_lost: BTreeMap<String, Duration> = BTreeMap::new();
        let fired = |written: &BTreeMap<i64, BTreeSet<SmolStr>>| -> BTreeSet<i64> {
            written.iter().filter(|(_, pages)| pages.len() >= PAGES.len()).map(|(w, _)| *w).collect()
        };
        for event in events {
            match &event.event {
                Event::JobSubmitted { .. } => {
                    job_ran = true;
                    if let Some(lost) = causes.states_lost.last_mut()
                        && lost.resubmitted.is_none()
                    {
                        lost.resubmitted = Some(event.at);
                    }
                }
                Event::JobManagerStarted { .. } if job_ran => {
                    job_ran = false;
                    causes.states_lost.push(StateLost::new(event.at, StateLostWhy::JobManagerLostTheJob, fired(&written)));
                }
                Event::JobStatusChanged { job_id, to, .. } => match to {
                    JobStatus::Restarting => {
                        restarting.insert(*job_id, false);
                    }
                    JobStatus::Running => {
                        // A restart with no checkpoint to restore reads everything again.
                        let restored = restarting.remove(job_id);
                        if restored == Some(false) {
                            drops.retain(|d| d.job_id != *job_id);
                        }
                    }
                    JobStatus::Failed => {
                        let why = StateLostWhy::FailedWithoutCheckpointing;
                        causes.states_lost.push(StateLost::new(event.at, why, fired(&written)));
                    }
                    _ => {}
                },
                Event::Restoring { job_id, checkpoint_id, .. } => {
                    // The savepoint's completion commits every transaction it recorded and the ones
                    // before it; those of checkpoints after the one restored come out again.
                    if let Some((stopped, savepoint, committed)) = stop.take_if(|(j, _, _)| j == job_id) {
                        let windows: BTreeSet<i64> =
                            committed.range(checkpoint_id + 1..).flat_map(|(_, windows)| windows.iter().copied()).collect();
                        if !windows.is_empty() {
                            let restored = (*checkpoint_id, event.at);
                            causes.replayed_after_stops.push(ReplayedAfterStop { job_id: stopped, savepoint, restored, windows });
                        }
                    }
                    if let Some(restored) = restarting.get_mut(job_id) {
                        *restored = true;
                    }
                    drops.retain(|d| d.job_id != *job_id || d.checkpoint_id < *checkpoint_id);
                }
                Event::TaskManagerLost { name, .. } if event.node == JOBMANAGER => {
                    declared_lost.insert(name.clone(), event.at);
                }
                // Told it was declared lost, it drops its tasks at once: what it writes after is
                // no zombie's.
                Event::JobManagerDisconnected { .. } => {
                    declared_lost.remove(&event.node);
                }
                Event::TaskManagerRegistered { name, .. } if event.node == JOBMANAGER => {
                    declared_lost.remove(name);
                }
                Event::PartitionIdle { task, partition, idle_after } => {
                    causes.idle_partitions.push(IdlePartition {
                        at: event.at,
                        task: task.clone(),
                        partition: *partition,
                        idle_after: *idle_after,
                    });
                }
                Event::LateDropped { task, job_id, checkpoint_id, window_start_ms, page, count, watermark_ms, .. } => {
                    drops.push(Drop {
                        job_id: *job_id,
                        checkpoint_id: *checkpoint_id,
                        key: (*window_start_ms, page.clone()),
                        count: *count,
                        first: LateWindow { at: event.at, task: task.clone(), watermark_ms: *watermark_ms },
                    });
                }
                Event::SavepointTriggered { job_id, checkpoint_id, drain: true, .. } => {
                    draining = Some((*job_id, *checkpoint_id, BTreeMap::new()));
                }
                Event::SavepointCompleted { job_id, checkpoint_id, .. } => {
                    if let Some(drain) = draining.take_if(|(j, c, _)| j == job_id && c == checkpoint_id) {
                        drains.push(drain);
                    }
                    // From here on the stop's notification commits what the savepoint recorded.
                    stop = Some((*job_id, *checkpoint_id, BTreeMap::new()));
                }
                Event::SavepointFailed { .. } => draining = None,
                Event::RestoringFromSavepoint { job_id, savepoint_job_id, checkpoint_id, location, .. } => {
                    match restored_first.get(location) {
                        None => {
                            restored_first.insert(location.clone(), (*job_id, event.at));
                        }
                        // A job restored from a savepoint fails over to it again before its
                        // first checkpoint: the same line of restores, not a rewind.
                        Some((first, _)) if first == job_id => {}
                        Some(&(first, first_at)) if !causes.rewinds.iter().any(|r| r.again.0 == *job_id) => {
                            let from = results_at.partition_point(|(at, _)| *at < first_at);
                            causes.rewinds.push(Rewind {
                                location: location.clone(),
                                first: (first, first_at),
                                again: (*job_id, event.at),
                                windows: results_at[from..].iter().map(|(_, w)| *w).collect(),
                            });
                        }
                        Some(_) => {}
                    }
                    let resumed = drains.iter().position(|(j, c, _)| j == savepoint_job_id && c == checkpoint_id);
                    if let Some(i) = resumed {
                        causes.drained.extend(drains.remove(i).2);
                    }
                }
                Event::ResultWritten { task, statistics, transaction } => {
                    let s = statistics;
                    results_at.push((event.at, s.window_start_ms));
                    if let Some((_, _, fired)) = &mut draining {
                        fired.insert((s.window_start_ms, s.page.clone()), s.count);
                    }
                    written.entry(s.window_start_ms).or_default().insert(s.page.clone());
                    if let Some(t) = transaction {
                        in_transaction
                            .entry((t.transactional_id.clone(), t.producer_id, t.epoch))
                            .or_default()
                            .push((s.window_start_ms, s.page.clone(), s.count));
                        let key = (t.transactional_id.clone(), t.producer_id, t.epoch);
                        open.entry(key)
                            .or_insert_with(|| OpenTransaction {
                                transaction: t.clone(),
                                task: task.clone(),
                                first_write: event.at,
                                results: 0,
                                zombie: declared_lost.get(&event.node).map(|&declared_lost_at| Zombie {
                                    node: event.node.clone(),
                                    declared_lost_at,
                                }),
                            })
                            .results += 1;
                    }
                }
                Event::TransactionCommitted { transaction: t, checkpoint_id, .. } => {
                    open.remove(&(t.transactional_id.clone(), t.producer_id, t.epoch));
                    committed.insert((t.transactional_id.clone(), t.producer_id, t.epoch));
                    if let Some((_, savepoint, committed)) = &mut stop
                        && checkpoint_id <= savepoint
                        && let Some(results) = in_transaction.get(&(t.transactional_id.clone(), t.producer_id, t.epoch))
                    {
                        committed.entry(*checkpoint_id).or_default().extend(results.iter().map(|(window, _, _)| *window));
                    }
                }
                // The id registered again: the broker must have aborted what an older epoch of it
                // left open, so one still open then is no zombie's to excuse.
                Event::TransactionBegun { transaction: t, .. } => {
                    began.entry((t.transactional_id.clone(), t.producer_id, t.epoch)).or_insert(event.at);
                    for ((id, producer_id, epoch), older) in open.iter_mut() {
                        if *id == t.transactional_id && (*producer_id, *epoch) != (t.producer_id, t.epoch) {
                            older.zombie = None;
                        }
                    }
                }
                Event::TransactionsAborted { transactional_ids, why, .. } => {
                    if let SinkAbort::Lingering { restored_checkpoint } = why {
                        lingering_aborts.push((event.at, transactional_ids, *restored_checkpoint));
                    }
                    open.retain(|(id, _, _), _| !transactional_ids.contains(id));
                }
                Event::TransactionTimedOut { transactional_id, .. } => {
                    open.retain(|(id, _, _), _| id != transactional_id);
                }
                Event::TransactionLost { transaction, checkpoint_id, cause } => {
                    open.remove(&(transaction.transactional_id.clone(), transaction.producer_id, transaction.epoch));
                    // A restore that fails later finds the same transaction lost again.
                    if causes.transactions_lost.iter().any(|lost| lost.transaction == *transaction) {
                        continue;
                    }
                    let t = transaction;
                    let results = in_transaction
                        .get(&(t.transactional_id.clone(), t.producer_id, t.epoch))
                        .cloned()
                        .unwrap_or_default();
                    for (window, page, count) in &results {
                        *causes.lost_in_transactions.entry((*window, page.clone())).or_default() += count;
                    }
                    causes.transactions_lost.push(TransactionLost {
                        at: event.at,
                        transaction: transaction.clone(),
                        checkpoint_id: *checkpoint_id,
                        timed_out: *cause == Some(AbortCause::Timeout),
                        results,
                        aborted_by_older_restore: None,
                    });
                }
                _ => {}
            }
        }
        causes.open_at_end = open.into_values().collect();
        // A lost transaction an older restore aborted: looked up over the whole trace, since the
        // aborting sink traces its aborts once all are done, which may be after the loss.
        for lost in &mut causes.transactions_lost {
            let t = &lost.transaction;
            let Some(&began_at) = began.get(&(t.transactional_id.clone(), t.producer_id, t.epoch)) else { continue };
            lost.aborted_by_older_restore = lingering_aborts
                .iter()
                .filter(|(at, ids, restored)| *at >= began_at && *restored < lost.checkpoint_id && ids.contains(&t.transactional_id))
                .map(|(_, _, restored)| *restored)
                .next();
        }
        for (_, results) in in_transaction.iter().filter(|(key, _)| !committed.contains(*key)) {
            for (window, page, _) in results {
                *causes.never_committed.entry((*window, page.clone())).or_default() += 1;
            }
        }
        for drop in drops {
            *causes.late.entry(drop.key.clone()).or_default() += drop.count;
            causes.late_windows.entry(drop.key.0).or_insert(drop.first);
        }
        causes
    }

    /// Each time the JobManager started again after a job had run: the job was gone with it.
    pub fn jobs_lost(&self) -> Vec<JobLost> {
        let lost = self.states_lost.iter().filter(|l| l.why == StateLostWhy::JobManagerLostTheJob);
        lost.map(|l| JobLost { at: l.at, resubmitted: l.resubmitted }).collect()
    }

    /// Each time a job failed for good (no restart strategy): its state was gone.
    pub fn jobs_failed(&self) -> Vec<JobFailedForGood> {
        let failed = self.states_lost.iter().filter(|l| l.why == StateLostWhy::FailedWithoutCheckpointing);
        failed.map(|l| JobFailedForGood { at: l.at, resubmitted: l.resubmitted }).collect()
    }

    /// The state loss whose span holds `window`, if one does: windows after the last one the
    /// lost job had completed, up to the one containing the moment of the loss. `complete`
    /// says whether a window's results all came out with their full recount.
    pub fn state_lost_over(&self, window: i64, origin_ms: i64, complete: impl Fn(i64) -> bool) -> Option<&StateLost> {
        self.states_lost.iter().find(|lost| {
            let last = lost.last_window(origin_ms);
            let last_complete = lost.fired_before.iter().rev().find(|w| **w <= last && complete(**w));
            window <= lost.reaches(origin_ms) && last_complete.is_none_or(|last| window > *last)
        })
    }

    /// Whether all `lost` events of the row `key` went with transactions an older restore
    /// aborted ([`TransactionLost::aborted_by_older_restore`]): nothing else lost them.
    pub fn lost_to_older_restore(&self, key: &RowKey, lost: u64) -> bool {
        let mut by_older = 0;
        for t in &self.transactions_lost {
            let held: u64 = t.results.iter().filter(|(w, p, _)| (*w, p) == (key.0, &key.1)).map(|(_, _, c)| c).sum();
            if held == 0 {
                continue;
            }
            if t.aborted_by_older_restore.is_none() {
                return false;
            }
            by_older += held;
        }
        by_older > 0 && by_older == lost
    }

    /// The rewind that may write `window` again: a savepoint restored a second time, after the
    /// first restore's job had written a result for it.
    pub fn rewound_over(&self, window: i64) -> Option<&Rewind> {
        self.rewinds.iter().find(|r| r.windows.contains(&window))
    }

    /// The failed stop after which `window` came out again, if any.
    pub fn replayed_after_stop(&self, window: i64) -> Option<&ReplayedAfterStop> {
        self.replayed_after_stops.iter().find(|r| r.windows.contains(&window))
    }

    /// The state loss after which `window` may come out again with a partial count: events
    /// read after the last offset commit before the loss are read again by the next job. The
    /// commit is at most 5 s old (the Kafka client's auto-commit; a checkpoint's is 1 s), so
    /// this reaches two windows before the span, for a source that lagged.
    pub fn repeats_over(&self, window: i64, origin_ms: i64, complete: impl Fn(i64) -> bool + Copy) -> Option<&StateLost> {
        self.states_lost.iter().find(|lost| {
            let last = lost.last_window(origin_ms);
            let last_complete = lost.fired_before.iter().rev().find(|w| **w <= last && complete(**w));
            let from = last_complete.map_or(i64::MIN, |last| last - 2 * WINDOW_MS);
            window <= lost.reaches(origin_ms) && window > from
        })
    }
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

impl std::fmt::Display for JobFailedForGood {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the job FAILED at {} with no restart strategy (no checkpointing), and its window state with it",
            clock(self.at)
        )?;
        match self.resubmitted {
            Some(at) => write!(f, "; the job submitted again at {} started from the auto-committed offsets", clock(at)),
            None => f.write_str("; no job ran after that"),
        }
    }
}

impl std::fmt::Display for Rewind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "job {} restored savepoint {} at {}, which job {} had already restored at {} and written results from",
            self.again.0,
            self.location,
            clock(self.again.1),
            self.first.0,
            clock(self.first.1)
        )
    }
}

impl std::fmt::Display for ReplayedAfterStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the sinks committed savepoint {}'s transactions, then job {} failed before it FINISHED and \
             restored checkpoint {} at {}",
            self.savepoint,
            self.job_id,
            self.restored.0,
            clock(self.restored.1)
        )
    }
}

impl std::fmt::Display for OpenTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "transaction {} of {} ({} results), open since its first write at {}",
            self.transaction.transactional_id,
            self.task,
            self.results,
            clock(self.first_write)
        )?;
        match &self.zombie {
            Some(zombie) => write!(
                f,
                " by a zombie on {} (declared lost at {})",
                zombie.node,
                clock(zombie.declared_lost_at)
            ),
            None => Ok(()),
        }
    }
}

impl std::fmt::Display for TransactionLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let events: u64 = self.results.iter().map(|(_, _, count)| count).sum();
        write!(
            f,
            "transaction {} (recorded by checkpoint {}, {} results of {events} events): the broker aborted it{} before the restored job could commit it ({})",
            self.transaction.transactional_id,
            self.checkpoint_id,
            self.results.len(),
            if self.timed_out { " after its transaction timeout" } else { "" },
            clock(self.at)
        )?;
        match self.aborted_by_older_restore {
            Some(restored) => write!(f, "; a sink restoring the older checkpoint {restored} had fenced its id"),
            None => Ok(()),
        }
    }
}

impl std::fmt::Display for StateLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.why {
            StateLostWhy::FailedWithoutCheckpointing => {
                write!(f, "the job FAILED at {} without checkpointing", clock(self.at))
            }
            StateLostWhy::JobManagerLostTheJob => {
                write!(f, "the JobManager came back at {} without the job (no HA)", clock(self.at))
            }
        }
    }
}

impl std::fmt::Display for Causes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let jobs = self.jobs_lost().into_iter().map(|lost| lost.to_string());
        let failed = self.jobs_failed().into_iter().map(|failed| failed.to_string());
        let transactions = self.transactions_lost.iter().map(|t| format!("lost with {t}"));
        f.write_str(&jobs.chain(failed).chain(transactions).collect::<Vec<_>>().join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flinksim_engine::protocol::click_event::ClickEventStatistics;
    use flinksim_engine::trace::SinkAbort;

    fn at(ms: u64, event: Event) -> TraceEvent {
        TraceEvent { at: Duration::from_millis(ms), node: "n".into(), event }
    }

    fn drop(job: u128, checkpoint_id: u64, window: i64, count: u64) -> Event {
        Event::LateDropped {
            task: "ClickEvent Counter (1/2)".into(),
            job_id: JobId(job),
            checkpoint_id,
            window_start_ms: window,
            page: "/help".into(),
            count,
            watermark_ms: window + 20_000,
            dropped_so_far: count,
        }
    }

    fn status(job: u128, from: JobStatus, to: JobStatus) -> Event {
        Event::JobStatusChanged { job_id: JobId(job), from, to }
    }

    fn restoring(job: u128, checkpoint_id: u64) -> Event {
        Event::Restoring { job_id: JobId(job), checkpoint_id, timestamp_ms: 0, directory: "/x".into() }
    }

    #[test]
    fn late_drops_after_the_restored_checkpoint_are_read_again_and_no_longer_count() {
        let trace = vec![
            at(1, drop(1, 4, 0, 10)),  // before barrier 5: stays
            at(2, drop(1, 5, 0, 20)),  // after barrier 5: read again after a restore from 5
            at(3, drop(2, 5, 0, 40)),  // another job's: untouched
            at(4, status(1, JobStatus::Running, JobStatus::Restarting)),
            at(5, restoring(1, 5)),
            at(6, status(1, JobStatus::Restarting, JobStatus::Running)),
            at(7, drop(1, 5, 0, 1)),   // the restored attempt's own drop: stays
        ];
        let causes = Causes::from_trace(&trace);
        assert_eq!(causes.late[&(0, SmolStr::new("/help"))], 10 + 40 + 1);
        assert_eq!(causes.late_windows[&0].at, Duration::from_millis(1));
    }

    #[test]
    fn a_restart_with_no_checkpoint_reads_everything_again() {
        let trace = vec![
            at(1, drop(1, 0, 0, 10)),
            at(4, status(1, JobStatus::Running, JobStatus::Restarting)),
            at(6, status(1, JobStatus::Restarting, JobStatus::Running)),
        ];
        assert!(Causes::from_trace(&trace).late.is_empty());
    }

    fn written(window: i64, page: &str, count: u64, transaction: Option<TransactionHandle>) -> Event {
        let statistics = ClickEventStatistics {
            window_start_ms: window,
            window_end_ms: window + WINDOW_MS,
            page: page.into(),
            count,
        };
        Event::ResultWritten { task: "ClickEventStatistics Sink (1/2)".into(), statistics, transaction }
    }

    #[test]
    fn a_transaction_with_results_and_no_end_is_open_at_the_end() {
        let handle = |id: &str| TransactionHandle { transactional_id: id.into(), producer_id: 3, epoch: 0 };
        let task = "ClickEventStatistics Sink (1/2)".to_owned();
        let trace = vec![
            at(1_000, written(0, "/help", 1000, Some(handle("t-0-1")))),
            at(1_100, written(0, "/shop", 1000, Some(handle("t-0-2")))),
            at(1_200, written(0, "/news", 1000, Some(handle("t-0-3")))),
            at(1_300, written(0, "/jobs", 1000, Some(handle("t-0-4")))),
            at(1_400, written(0, "/about", 1000, Some(handle("t-0-5")))),
            at(2_000, Event::TransactionCommitted { task: task.clone(), transaction: handle("t-0-1"), checkpoint_id: 1, on_restore: false }),
            at(2_100, Event::TransactionsAborted { task, transactional_ids: vec!["t-0-2".into()], why: SinkAbort::Lingering { restored_checkpoint: 0 } }),
            at(2_200, Event::TransactionTimedOut { transactional_id: "t-0-3".into(), timeout: Duration::from_secs(60) }),
            at(2_300, Event::TransactionLost { transaction: handle("t-0-4"), checkpoint_id: 4, cause: None }),
        ];
        let open = Causes::from_trace(&trace).open_at_end;
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!((open[0].transaction.transactional_id.as_str(), open[0].first_write, open[0].results), ("t-0-5", Duration::from_millis(1_400), 1));
    }

    #[test]
    fn a_lost_transaction_an_older_restore_aborted_is_named_and_one_its_own_restore_aborted_is_not() {
        let handle = |id: &str| TransactionHandle { transactional_id: id.into(), producer_id: 3, epoch: 1 };
        let task = "ClickEventStatistics Sink (1/2)".to_owned();
        let begun = |id: &str, checkpoint_id| Event::TransactionBegun { task: task.clone(), transaction: handle(id), checkpoint_id };
        let aborted = |id: &str, restored_checkpoint| Event::TransactionsAborted {
            task: task.clone(),
            transactional_ids: vec![id.into()],
            why: SinkAbort::Lingering { restored_checkpoint },
        };
        let lost = |id: &str, checkpoint_id| Event::TransactionLost { transaction: handle(id), checkpoint_id, cause: None };
        let trace = vec![
            // The newer attempt's transaction for checkpoint 9; a sink restoring checkpoint 5
            // (an older attempt, late) aborts it; checkpoint 9 had recorded it.
            at(1_000, begun("t-0-9", 9)),
            at(1_100, written(0, "/help", 1000, Some(handle("t-0-9")))),
            // The loss is traced before the abort: the aborting sink traces its aborts at the end.
            at(3_000, lost("t-0-9", 9)),
            at(3_100, aborted("t-0-9", 5)),
            // A sink that restored checkpoint 12 itself aborting what 12 recorded: its own
            // restore's order, not an older attempt's.
            at(4_000, begun("t-0-12", 12)),
            at(4_100, written(15_000, "/help", 1000, Some(handle("t-0-12")))),
            at(5_000, aborted("t-0-12", 12)),
            at(5_100, lost("t-0-12", 12)),
            // An abort before the transaction began is another's.
            at(5_500, aborted("t-0-14", 5)),
            at(6_000, begun("t-0-14", 14)),
            at(6_100, written(30_000, "/help", 1000, Some(handle("t-0-14")))),
            at(7_000, lost("t-0-14", 14)),
        ];
        let causes = Causes::from_trace(&trace);
        let by_older: Vec<(&str, Option<u64>)> =
            causes.transactions_lost.iter().map(|t| (t.transaction.transactional_id.as_str(), t.aborted_by_older_restore)).collect();
        assert_eq!(by_older, [("t-0-9", Some(5)), ("t-0-12", None), ("t-0-14", None)]);
        assert!(causes.lost_to_older_restore(&(0, "/help".into()), 1000));
        assert!(!causes.lost_to_older_restore(&(15_000, "/help".into()), 1000));
        // More lost than those transactions held: something else lost the rest.
        assert!(!causes.lost_to_older_restore(&(0, "/help".into()), 1500));
        assert!(causes.transactions_lost[0].to_string().ends_with("a sink restoring the older checkpoint 5 had fenced its id"));
    }

    fn on(ms: u64, node: &str, event: Event) -> TraceEvent {
        TraceEvent { at: Duration::from_millis(ms), node: node.into(), event }
    }

    /// The JobManager's event declaring `name` lost to the heartbeat timeout.
    fn declared_lost(name: &str) -> Event {
        let resource_id = flinksim_engine::protocol::ids::ResourceId(7);
        Event::TaskManagerLost { resource_id, name: name.into(), heartbeat_timed_out: true, how: String::new() }
    }

    #[test]
    fn a_transaction_begun_on_a_taskmanager_declared_lost_and_not_back_is_a_zombies() {
        let handle = |id: &str| TransactionHandle { transactional_id: id.into(), producer_id: 3, epoch: 0 };
        let lost = declared_lost("taskmanager-2");
        let resource_id = flinksim_engine::protocol::ids::ResourceId(8);
        let registered = Event::TaskManagerRegistered { resource_id, name: "taskmanager-2".into() };
        let trace = vec![
            on(1_000, "taskmanager-2", written(0, "/help", 1000, Some(handle("t-0-1")))),
            on(2_000, "jobmanager", lost),
            on(2_500, "taskmanager-2", written(0, "/shop", 1000, Some(handle("t-0-2")))),
            on(2_600, "taskmanager-1", written(0, "/news", 1000, Some(handle("t-0-3")))),
            // Registered again: its next tasks are the job's own.
            on(2_700, "jobmanager", registered),
            on(3_000, "taskmanager-2", written(0, "/jobs", 1000, Some(handle("t-0-4")))),
        ];
        let causes = Causes::from_trace(&trace);
        let zombies: Vec<(&str, Option<&Zombie>)> =
            causes.open_at_end.iter().map(|t| (t.transaction.transactional_id.as_str(), t.zombie.as_ref())).collect();
        let zombie = Zombie { node: "taskmanager-2".into(), declared_lost_at: Duration::from_millis(2_000) };
        assert_eq!(zombies, [("t-0-1", None), ("t-0-2", Some(&zombie)), ("t-0-3", None), ("t-0-4", None)]);
    }

    #[test]
    fn a_taskmanager_told_it_was_declared_lost_writes_no_zombies_transaction() {
        let handle = TransactionHandle { transactional_id: "t-0-2".into(), producer_id: 3, epoch: 0 };
        let lost = declared_lost("taskmanager-2");
        let told = Event::JobManagerDisconnected { address: "10.0.0.1:6123".parse().unwrap(), shutting_down: false };
        let trace = vec![
            on(2_000, "jobmanager", lost),
            on(2_400, "taskmanager-2", told),
            // It must have dropped its tasks: a result after is an engine bug, not a zombie's.
            on(2_500, "taskmanager-2", written(0, "/shop", 1000, Some(handle))),
        ];
        assert_eq!(Causes::from_trace(&trace).open_at_end[0].zombie, None);
    }

    #[test]
    fn a_zombies_transaction_whose_id_was_registered_again_is_not_excused() {
        let handle = |epoch| TransactionHandle { transactional_id: "t-0-2".into(), producer_id: 3, epoch };
        let lost = declared_lost("taskmanager-2");
        let begun = Event::TransactionBegun { task: "ClickEventStatistics Sink (1/2)".into(), transaction: handle(1), checkpoint_id: 2 };
        let trace = vec![
            on(2_000, "jobmanager", lost),
            on(2_500, "taskmanager-2", written(0, "/shop", 1000, Some(handle(0)))),
            // The restored sink takes the id over: the zombie's transaction should have been
            // aborted, and one the broker left open is an engine bug.
            on(2_600, "taskmanager-1", begun),
        ];
        let open = Causes::from_trace(&trace).open_at_end;
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].zombie, None);
    }

    #[test]
    fn results_a_failed_stop_committed_come_out_again_after_an_older_checkpoint() {
        let handle = TransactionHandle { transactional_id: "t-0-60".into(), producer_id: 3, epoch: 0 };
        let committed = Event::TransactionCommitted {
            task: "ClickEventStatistics Sink (1/2)".into(),
            transaction: handle.clone(),
            checkpoint_id: 60,
            on_restore: false,
        };
        let completed = Event::SavepointCompleted { job_id: JobId(1), checkpoint_id: 62, location: "/s".into() };
        let trace = |restored| {
            vec![
                at(60_000, written(45_000, "/help", 1000, Some(handle.clone()))),
                at(68_000, completed.clone()),
                // The savepoint's notification commits what it and the checkpoints before it recorded.
                at(68_100, committed.clone()),
                at(70_000, restoring(1, restored)),
            ]
        };
        let replayed = Causes::from_trace(&trace(59)).replayed_after_stops;
        assert_eq!(replayed.len(), 1);
        assert_eq!((replayed[0].savepoint, replayed[0].restored.0), (62, 59));
        assert_eq!(replayed[0].windows, BTreeSet::from([45_000]));
        // Restored at or after the checkpoint that recorded them, the results are not written again.
        assert!(Causes::from_trace(&trace(60)).replayed_after_stops.is_empty());
    }

    fn from_savepoint(job: u128, location: &str) -> Event {
        Event::RestoringFromSavepoint {
            job_id: JobId(job),
            checkpoint_id: 9,
            timestamp_ms: 50_000,
            savepoint_job_id: JobId(1),
            location: location.into(),
        }
    }

    #[test]
    fn a_savepoint_restored_again_by_another_job_rewinds_the_windows_written_since_its_first_restore() {
        let trace = vec![
            at(40_000, written(15_000, "/help", 1000, None)),
            at(60_000, from_savepoint(2, "/sp-a")),
            at(61_000, from_savepoint(2, "/sp-a")), // a failover of job 2 before its first checkpoint
            at(75_000, written(45_000, "/help", 1000, None)),
            at(90_000, written(60_000, "/help", 1000, None)),
            at(120_000, from_savepoint(3, "/sp-a")),
            at(121_000, from_savepoint(3, "/sp-a")),
        ];
        let causes = Causes::from_trace(&trace);
        assert_eq!(causes.rewinds.len(), 1, "{:?}", causes.rewinds);
        let rewind = &causes.rewinds[0];
        assert_eq!((rewind.first.0, rewind.again.0), (JobId(2), JobId(3)));
        assert_eq!(rewind.windows.iter().copied().collect::<Vec<_>>(), [45_000, 60_000]);
        assert!(causes.rewound_over(15_000).is_none() && causes.rewound_over(45_000).is_some());
    }

    #[test]
    fn a_lost_transaction_loses_exactly_the_results_written_in_it() {
        let handle = |epoch| TransactionHandle { transactional_id: "click-event-count-0-7".into(), producer_id: 3, epoch };
        let trace = vec![
            at(1, written(0, "/help", 1000, Some(handle(0)))),
            at(2, written(0, "/shop", 1000, Some(handle(0)))),
            // The same id opened again after a restore: another transaction.
            at(3, written(15_000, "/help", 1000, Some(handle(1)))),
            at(4, Event::TransactionLost { transaction: handle(0), checkpoint_id: 7, cause: Some(AbortCause::Timeout) }),
            at(5, Event::TransactionLost { transaction: handle(0), checkpoint_id: 7, cause: Some(AbortCause::Timeout) }),
        ];
        let causes = Causes::from_trace(&trace);
        let lost: Vec<(RowKey, u64)> = causes.lost_in_transactions.into_iter().collect();
        assert_eq!(lost, vec![((0, "/help".into()), 1000), ((0, "/shop".into()), 1000)]);
        assert_eq!(causes.transactions_lost.len(), 1, "found lost twice, counted once");
        assert!(causes.transactions_lost[0].timed_out);
    }

    #[test]
    fn a_job_failed_for_good_bounds_the_windows_its_state_held() {
        let mut trace: Vec<TraceEvent> = Vec::new();
        for window in 0..8 {
            for page in PAGES {
                trace.push(at(window as u64 * 15_000 + 15_300, written(window * WINDOW_MS, page, 1000, None)));
            }
        }
        // Killed at 2:00, FAILED at 2:05: windows up to 1:45 had fired.
        trace.push(at(125_000, status(1, JobStatus::Failing, JobStatus::Failed)));
        // Never submitted again, it accounts for nothing: the job never recovered.
        assert_eq!(Causes::from_trace(&trace).state_lost_over(120_000, 0, |_| true), None);
        trace.push(at(190_000, Event::JobSubmitted { job_id: JobId(2) }));
        let causes = Causes::from_trace(&trace);
        let complete = |_| true;
        let span: Vec<i64> = (0..12).map(|w| w * WINDOW_MS).filter(|w| causes.state_lost_over(*w, 0, complete).is_some()).collect();
        assert_eq!(span, vec![120_000], "after the last complete window (1:45), up to the one holding 2:05");
        // Had window 1:45 come out short, the span would start there.
        let span: Vec<i64> = (0..12).map(|w| w * WINDOW_MS).filter(|w| causes.state_lost_over(*w, 0, |w| w < 105_000).is_some()).collect();
        assert_eq!(span, vec![105_000, 120_000]);
        let repeats: Vec<i64> = (0..12).map(|w| w * WINDOW_MS).filter(|w| causes.repeats_over(*w, 0, complete).is_some()).collect();
        assert_eq!(repeats, vec![90_000, 105_000, 120_000]);
    }
}
