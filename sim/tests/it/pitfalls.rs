//! The pitfall gallery (scenarios/pitfalls/): every pitfall shows its mechanism, and its fix
//! passes, on a few seeds; `--features flinksim/sweeps` runs 20 seeds each.

use flinksim::{Report, pitfall};
use flinksim_engine::protocol::cluster::RestoreRefused;
use flinksim_engine::trace::Event;

use crate::harness::{run_seeds, scenario};

/// Seeds per scenario: two in the default suite, twenty behind the `sweeps` feature.
fn seeds() -> Vec<u64> {
    if cfg!(feature = "sweeps") { (1..=20).collect() } else { vec![1, 2] }
}

/// Runs `pitfalls/<name>` on [`seeds`]: each run passes its own `[expect]`, and the report's
/// pitfall line says `shown`.
fn check(name: &str, shown: &str) -> Vec<Report> {
    let scenario = scenario(&format!("pitfalls/{name}"));
    assert!(scenario.pitfall.is_some(), "{name} has no [pitfall] table");
    let reports = run_seeds(&scenario, &seeds());
    for report in &reports {
        let replay = format!("replay: cargo xtask run-scenario pitfalls/{name} --seed {}", report.seed);
        assert!(report.passed(), "{:?}\n{replay}", report.oracle.violations);
        crate::harness::assert_no_invariant_broken(report, &replay);
        let line = pitfall::shown(report);
        assert!(line.contains(shown), "{line}\n{replay}");
    }
    reports
}

const CLEAN: &str = "no late drop, no loss, no copy, no stall";

#[test]
fn twelve_hour_date_pattern_drops_everything_after_noon_as_late() {
    for report in check("twelve-hour-date-pattern", "events dropped as late") {
        // Every event from 12:00 on reads back into a window at 00:00-00:02.
        let after_noon = report.oracle.rows.iter().filter(|r| r.window_start_ms < 3_600_000);
        assert!(after_noon.clone().count() > 0 && after_noon.clone().all(|r| r.counts.is_empty() && r.late == r.recount));
    }
    check("twelve-hour-date-pattern-fixed", CLEAN);
}

#[test]
fn idleness_after_a_partition_drops_the_backlog_and_idleness_off_loses_nothing() {
    check("idle-partition-late-drops", "went idle before them");
    check("idle-partition-late-drops-fixed", CLEAN);
}

#[test]
fn idleness_off_above_the_partition_count_stalls_and_an_idleness_timeout_does_not() {
    for report in check("no-partition-subtask-stall", "the job stalled") {
        assert_eq!(report.oracle.output_records, 0, "seed {}", report.seed);
    }
    check("no-partition-subtask-stall-fixed", CLEAN);
}

#[test]
fn a_job_down_longer_than_the_transaction_timeout_loses_the_pending_results() {
    check("transaction-timeout-loss", "events lost for a recorded cause");
    check("transaction-timeout-loss-fixed", CLEAN);
}

#[test]
fn the_at_least_once_sink_duplicates_after_a_kill_and_exactly_once_does_not() {
    for report in check("at-least-once-duplicates", "written more than once") {
        for row in &report.oracle.rows {
            assert!(row.counts.iter().all(|&c| c == 1000), "{row:?} (seed {})", report.seed);
        }
    }
    check("at-least-once-duplicates-fixed", CLEAN);
}

#[test]
fn a_read_uncommitted_reader_of_the_exactly_once_sink_reads_the_aborted_copies_and_read_committed_does_not() {
    for report in check("read-uncommitted-duplicates", "written more than once") {
        let copied: Vec<_> = report.oracle.rows.iter().filter(|row| row.counts.len() > 1).collect();
        assert!(!copied.is_empty(), "no copies (seed {})", report.seed);
        for row in copied {
            // Each copy beyond one is a result of a transaction that never committed.
            let never_committed = report.oracle.causes.never_committed.get(&(row.window_start_ms, row.page.clone()));
            assert!(never_committed.is_some_and(|&n| n + 1 >= row.counts.len() as u64), "{row:?} (seed {})", report.seed);
            assert!(row.counts.iter().all(|&c| c == 1000), "{row:?} (seed {})", report.seed);
        }
    }
    check("read-uncommitted-duplicates-fixed", CLEAN);
}

#[test]
fn without_checkpointing_a_kill_loses_data_and_with_it_nothing() {
    check("no-checkpointing-loss", "events lost for a recorded cause");
    for report in check("no-checkpointing-loss-fixed", "") {
        assert_eq!(report.oracle.totals().lost, 0, "seed {}", report.seed);
    }
}

#[test]
fn a_generator_restarted_from_zero_sends_only_late_events_and_a_resumed_one_does_not() {
    check("generator-restart-from-zero", "events dropped as late");
    check("generator-restart-from-zero-fixed", CLEAN);
}

#[test]
fn a_resume_after_a_drained_stop_splits_the_open_windows_and_a_plain_stop_does_not() {
    for report in check("drain-then-resume", "split in two by `flink stop --drain`") {
        let split: Vec<_> = report.oracle.rows.iter().filter(|r| r.split_by_drain).collect();
        // One window was open at the stop: its six pages come out twice, the two copies adding up.
        assert_eq!(split.len(), 6, "seed {}", report.seed);
        for row in split {
            assert_eq!(row.counts.len(), 2, "{row:?} (seed {})", report.seed);
            assert_eq!(row.counts.iter().sum::<u64>(), row.recount, "{row:?} (seed {})", report.seed);
        }
        let copies = report.oracle.rows.iter().filter(|r| r.counts.len() > 1 && !r.split_by_drain).count();
        assert_eq!(copies, 0, "only the drained windows come out twice (seed {})", report.seed);
    }
    check("drain-then-resume-fixed", CLEAN);
}

#[test]
fn a_restore_above_the_max_parallelism_is_refused_and_one_within_it_is_not() {
    for report in check("restore-above-max-parallelism", "the restore at -p 200 was refused") {
        let refused: Vec<_> = report
            .events
            .iter()
            .filter_map(|e| match &e.event {
                Event::SubmissionRejected { refused } => Some(refused.clone()),
                _ => None,
            })
            .collect();
        assert!(
            matches!(
                refused.as_slice(),
                [RestoreRefused::AboveMaxParallelism { max_parallelism: 128, parallelism: 200, .. }]
            ),
            "{refused:?} (seed {})",
            report.seed
        );
        assert!(refused[0].to_string().contains("The maximum parallelism (128) of the restored state is lower than the configured parallelism (200)"));
    }
    check("restore-above-max-parallelism-fixed", CLEAN);
}

#[test]
fn a_transaction_left_open_holds_read_committed_readers_and_a_transaction_timeout_frees_them() {
    for report in check("stuck-last-stable-offset", "read_committed readers stuck at the last stable offset") {
        // Every window before the one held in the open transactions came out, once.
        let before: Vec<_> = report.oracle.rows.iter().filter(|r| r.window_start_ms < 45_000).collect();
        assert!(before.len() == 18 && before.iter().all(|r| r.counts == [1000]), "{before:?} (seed {})", report.seed);
        let stuck = report.oracle.stuck.as_ref().expect("named by the oracle");
        assert!(!stuck.transactions.is_empty(), "seed {}", report.seed);
        for partition in &stuck.partitions {
            // The open transaction's results are there for read_uncommitted readers only.
            assert!(partition.last_stable_offset < partition.high_watermark, "{partition:?} (seed {})", report.seed);
            assert!(partition.read_committed < partition.read_uncommitted, "{partition:?} (seed {})", report.seed);
        }
    }
    for report in check("stuck-last-stable-offset-fixed", "the broker aborted") {
        assert_eq!(report.oracle.stuck, None, "seed {}", report.seed);
        for partition in &report.oracle.output_partitions {
            assert_eq!(partition.last_stable_offset, partition.high_watermark, "{partition:?} (seed {})", report.seed);
        }
    }
}

#[test]
fn a_zombies_transaction_holds_read_committed_readers_and_a_transaction_timeout_frees_them() {
    for report in check("zombie-transaction", "held by 2 transactions left open by zombies") {
        let stuck = report.oracle.stuck.as_ref().expect("named by the oracle");
        let on = |t: &flinksim::accounting::OpenTransaction| t.zombie.as_ref().map(|z| z.node.clone());
        assert!(
            stuck.transactions.iter().all(|t| on(t).as_deref() == Some("taskmanager-1")),
            "{:?} (seed {})",
            stuck.transactions,
            report.seed
        );
        // Fenced by the oracle, the zombies' results are gone, and the restored job's are there once.
        assert_eq!(report.oracle.fenced.len(), 2, "seed {}", report.seed);
        assert!(report.oracle.rows.iter().all(|r| r.counts == [1000]), "seed {}", report.seed);
    }
    for report in check("zombie-transaction-fixed", "the broker aborted") {
        assert_eq!(report.oracle.stuck, None, "seed {}", report.seed);
        assert!(report.oracle.fenced.is_empty(), "seed {}", report.seed);
    }
}
