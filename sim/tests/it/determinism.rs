//! The product's core promise: a run is a pure function of (build, scenario, seed).

use crate::harness::{for_minutes, run, run_seeds, scenario, window_table};

#[test]
fn the_same_seed_twice_gives_a_byte_identical_trace() {
    let scenario = for_minutes(&scenario("steady-state"), 3);
    let first = run(&scenario, 8141);
    let second = run(&scenario, 8141);
    assert_eq!(first.trace_hash, second.trace_hash);
    assert_eq!(first.trace, second.trace);
    assert_eq!(window_table(&first.oracle.rows), window_table(&second.oracle.rows));
}

#[test]
fn different_seeds_interleave_differently_yet_count_the_same() {
    let scenario = for_minutes(&scenario("steady-state"), 3);
    let reports = run_seeds(&scenario, &[1, 2, 3, 4, 5, 6]);
    let expected = window_table(&reports[0].oracle.rows);
    for report in &reports {
        crate::harness::assert_passed(report);
        assert_eq!(window_table(&report.oracle.rows), expected, "seed {}", report.seed);
    }
    let mut hashes: Vec<u64> = reports.iter().map(|r| r.trace_hash).collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), reports.len(), "two seeds gave the same trace");
}

/// Progress is read off the simulated clock by a task the run already has: the trace is the same
/// with or without someone watching.
#[test]
fn run_with_progress_reports_simulated_time_and_keeps_the_trace() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    let scenario = scenario("steady-state").with_duration(Duration::from_secs(25));
    let progress = Arc::new(AtomicU64::new(0));
    let watched = flinksim::run_with_progress(&scenario, 8141, progress.clone()).unwrap();
    let reached_ms = progress.load(Ordering::Relaxed);
    assert!((20_000..=30_000).contains(&reached_ms), "progress {reached_ms} ms");
    assert_eq!(run(&scenario, 8141).trace, watched.trace);
}
