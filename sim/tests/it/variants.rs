//! The playground job's variants (docs/model/job.md#the-flink-run-line): processing-time windows
//! (no `--event-time`), judged by conservation, and `--backpressure`, over a few seeds each; 50
//! seeds each with `--features flinksim/sweeps`.

use flinksim::Report;
use flinksim::processing_time::Fire;
use flinksim::oracle::Violation;
use flinksim::timeline::timeline;
use flinksim_engine::trace::Event;

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

/// `--backpressure` (docs/model/job.md#backpressure): in every even minute of the TaskManager's
/// clock the map's input fills and `Timestamps/Watermarks` waits for credit (backpressure rising);
/// in every odd minute the backlog drains and it falls. Every window still counts 1000 per page.
fn backpressure_rises_and_falls_each_minute(report: &Report) -> bool {
    let minutes = report.simulated.as_secs() / 60;
    let moments: Vec<(u64, bool)> = report
        .events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Backpressure { task, blocked, .. } if task.starts_with("Timestamps/Watermarks") => {
                Some((e.at.as_secs() / 60, *blocked))
            }
            _ => None,
        })
        .collect();
    let exact = report.oracle.rows.iter().all(|row| row.counts == [1000]);
    let story: Vec<String> = timeline(&report.events).into_iter().map(|m| m.what).collect();
    let told = story.iter().any(|s| s.starts_with("backpressure rising"))
        && story.iter().any(|s| s.starts_with("backpressure falling"));
    exact
        && told
        && (0..minutes).all(|minute| moments.contains(&(minute, minute % 2 == 0)))
        && moments.iter().all(|(minute, blocked)| !blocked || minute % 2 == 0)
}

#[test]
fn backpressure_rises_in_even_minutes_and_falls_in_odd_ones_with_exact_counts() {
    assert_every_seed("backpressure", &SEEDS.collect::<Vec<_>>(), backpressure_rises_and_falls_each_minute);
}

#[test]
#[cfg(feature = "sweeps")]
fn backpressure_passes_over_50_seeds() {
    assert_every_seed("backpressure", &SWEEP.collect::<Vec<_>>(), backpressure_rises_and_falls_each_minute);
}

/// processing-time-exactly-once with its TaskManager gone for good while a transaction holds
/// results (the stuck-last-stable-offset pitfall, with processing-time windows): the oracle names
/// the stuck last stable offset for processing-time runs too.
fn processing_time_left_open(last_stable_offset: &str) -> flinksim::scenario::Scenario {
    let text = format!(
        r#"
name = "processing-time-exactly-once-left-open"
duration = "3m"
[cluster]
startup_period = "0s"
[job]
run = "flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing"
sink = "exactly-once"
transaction_timeout = "1h"
[[step]]
at = "30s"
run = "sim link jobmanager -> taskmanager-1 delay 800ms..800ms"
[[step]]
at = "61s"
run = "docker-compose kill taskmanager"
[[step]]
at = "62s"
run = "sim link jobmanager -> taskmanager-1 clear"
[expect]
counts = "any"
duplicates = "none"
loss = "allowed"
liveness = "stall"
last_stable_offset = "{last_stable_offset}"
"#
    );
    flinksim::scenario::Scenario::parse(&text, std::path::Path::new("processing-time-exactly-once-left-open.toml"))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_processing_time_exactly_once_run_that_leaves_a_transaction_open_is_a_stuck_last_stable_offset() {
    let stuck = processing_time_left_open("advances");
    for seed in SEEDS {
        let report = run(&stuck, seed);
        assert!(
            report.oracle.violations.iter().any(|v| matches!(v, Violation::LastStableOffsetStuck(_))),
            "no stuck last stable offset named: {:?}\n{}",
            report.oracle.violations,
            crate::harness::replay(&stuck, seed)
        );
    }
    // Expected, it is a note and the run passes.
    let expected = processing_time_left_open("stuck");
    crate::harness::assert_passed_as(&expected, &run(&expected, 1));
}
