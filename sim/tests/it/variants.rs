//! The playground job's variants (docs/model/job.md#the-flink-run-line): processing-time windows
//! (no `--event-time`), judged by conservation, over a few seeds each; 50 seeds each with
//! `--features flinksim/sweeps`.

use flinksim::Report;
use flinksim::conservation::Fire;
use flinksim::oracle::Violation;

use crate::harness::{assert_every_seed, assert_passed, run, scenario};

/// Seeds of the default suite, per scenario.
const SEEDS: std::ops::RangeInclusive<u64> = 1..=3;
/// Seeds of the sweep behind the `sweeps` feature.
#[cfg(feature = "sweeps")]
const SWEEP: std::ops::RangeInclusive<u64> = 1..=50;

/// Every result's fire is traced and matched its window, and the results come out once: the
/// exactly-once twin's committed results count each event read exactly once.
fn processing_time_holds(report: &Report, exactly_once: bool) -> bool {
    let fires = Fire::from_trace(&report.events);
    !fires.is_empty()
        && fires.iter().all(Fire::matches_its_window)
        && (!exactly_once || report.oracle.rows.iter().all(|row| row.counts.len() == 1))
}

#[test]
fn processing_time_windows_count_every_event_read_across_a_kill() {
    assert_every_seed("processing-time", &SEEDS.collect::<Vec<_>>(), |r| processing_time_holds(r, false));
}

#[test]
fn processing_time_windows_count_every_event_exactly_once_with_the_exactly_once_sink() {
    assert_every_seed("processing-time-exactly-once", &SEEDS.collect::<Vec<_>>(), |r| processing_time_holds(r, true));
}

#[test]
#[cfg(feature = "sweeps")]
fn processing_time_scenarios_pass_over_50_seeds() {
    let seeds: Vec<u64> = SWEEP.collect();
    assert_every_seed("processing-time", &seeds, |r| processing_time_holds(r, false));
    assert_every_seed("processing-time-exactly-once", &seeds, |r| processing_time_holds(r, true));
}

/// Counts are not 1000 any more: each window holds what its 15 s of the TaskManager's clock
/// handled, and the first window after the restore holds the backlog read again.
#[test]
fn processing_time_counts_follow_the_clock_not_the_events() {
    let report = run(&scenario("processing-time"), 7);
    assert_passed(&report);
    assert!(report.oracle.rows.iter().any(|row| row.counted != 1000), "{:?}", report.oracle.rows);
    let backlog = report.oracle.rows.iter().map(|row| row.counted).max().unwrap();
    assert!(backlog > 5000, "the minute the TaskManager was away is read in one window: {backlog}");
    assert!(!report.oracle.violations.iter().any(|v| matches!(v, Violation::NotConserved { .. })));
}
