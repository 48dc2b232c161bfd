//! What a run of a pitfall scenario (one with a `[pitfall]` table) showed, in the terms of the
//! mechanism the table explains: late drops and the idle partitions behind them, loss, copies, a
//! stall. The run's report prints it next to the outcome; the oracle's notes give the details.

use flinksim_engine::protocol::cluster::RestoreRefused;
use flinksim_engine::trace::Event;

use crate::Report;
use crate::scenario::{LivenessExpectation, format_duration};

/// What the run showed of the mechanisms a pitfall explains: late drops (with the partitions that
/// went idle), loss, copies, a stall; the notes above give each one's details.
pub fn shown(report: &Report) -> String {
    let totals = report.oracle.totals();
    let mut shown = Vec::new();
    for event in &report.events {
        if let Event::SubmissionRejected { refused } = &event.event {
            shown.push(match refused {
                RestoreRefused::AboveMaxParallelism { max_parallelism, parallelism, .. } => format!(
                    "the restore at -p {parallelism} was refused: the savepoint's state is split into \
                     {max_parallelism} key groups (its max parallelism), fewer than {parallelism} subtasks"
                ),
                other => format!("a restore was refused: {other}"),
            });
        }
    }
    if totals.late > 0 {
        let idle: std::collections::BTreeSet<u32> = report
            .events
            .iter()
            .filter_map(|e| match &e.event {
                Event::PartitionIdle { partition, .. } => Some(*partition),
                _ => None,
            })
            .collect();
        let named: Vec<String> = idle.iter().map(u32::to_string).collect();
        let idle = match named.len() {
            0 => String::new(),
            1 => format!(" (partition {} went idle before them)", named[0]),
            _ => format!(" (partitions {} went idle before them)", named.join(" and ")),
        };
        shown.push(format!("{} events dropped as late by the window operator{idle}", totals.late));
    }
    if totals.lost > 0 {
        shown.push(format!("{} events lost for a recorded cause (see the notes)", totals.lost));
    }
    let split = report.oracle.rows.iter().filter(|r| r.split_by_drain).count();
    if split > 0 {
        shown.push(format!(
            "{split} (window, page) results split in two by `flink stop --drain` and the resume from its savepoint"
        ));
    }
    let copies = report.oracle.rows.iter().filter(|r| r.counts.len() > 1 && !r.split_by_drain).count();
    if copies > 0 {
        shown.push(format!("{copies} (window, page) results written more than once"));
    }
    if let Some(stuck) = &report.oracle.stuck {
        let held: Vec<String> = stuck
            .partitions
            .iter()
            .map(|p| format!("{} ({} results, {} for read_uncommitted)", p.partition, p.read_committed, p.read_uncommitted))
            .collect();
        shown.push(format!(
            "read_committed readers stuck at the last stable offset of output partition{} {}, held by {} \
             transaction{} left open{}",
            if held.len() == 1 { "" } else { "s" },
            held.join(" and "),
            stuck.transactions.len(),
            if stuck.transactions.len() == 1 { "" } else { "s" },
            if stuck.by_zombies() { " by zombies" } else { "" },
        ));
    }
    let timed_out = report.events.iter().filter(|e| matches!(e.event, Event::TransactionTimedOut { .. })).count();
    if timed_out > 0 && report.oracle.stuck.is_none() && totals.lost == 0 {
        shown.push(format!(
            "the broker aborted {timed_out} transaction{} left open after the transaction timeout: read_committed \
             readers read every output partition to its end",
            if timed_out == 1 { "" } else { "s" }
        ));
    }
    if let Some(tail) = &report.liveness.tail
        && tail.expect == LivenessExpectation::Stall
        && tail.new_result_at.is_none()
    {
        shown.push(format!("the job stalled: no new window after {}", format_duration(tail.watched_from)));
    }
    if shown.is_empty() {
        return "no late drop, no loss, no copy, no stall: every window as input holds it".into();
    }
    shown.join("; ")
}

