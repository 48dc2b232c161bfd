//! One test per file in scenarios/: it loads, runs under a fixed seed, meets its own
//! expectations, and its window counts match snapshots/<name>.snap.

use std::time::Duration;

use flinksim::Scenario;

use crate::harness::{assert_passed, run, scenario, scenarios_dir, window_table};

fn check(name: &str) {
    let scenario = scenario(name);
    let report = run(&scenario, 42);
    assert_passed(&report);
    let again = run(&scenario, 42);
    assert_eq!(report.trace_hash, again.trace_hash, "{name}: seed 42 twice gave two traces");
    insta::with_settings!({
        snapshot_path => scenarios_dir().join("../snapshots"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
        description => format!("window counts of scenarios/{name}.toml, seed 42"),
    }, {
        insta::assert_snapshot!(name, window_table(&report.oracle.rows));
    });
}

#[test]
fn every_scenario_file_is_covered_here() {
    // The fuzzer's regression files are replayed by `every_regression_file_replays_and_passes`.
    let known: Vec<String> = flinksim::Scenario::known(&scenarios_dir())
        .into_iter()
        .filter(|name| !name.starts_with("regressions/"))
        .collect();
    let tested = [
        "backpressure",
        "exactly-once-restore-after-transaction-timeout",
        "exactly-once-restore-older-savepoint-again",
        "exactly-once-resubmitted-at-lower-parallelism",
        "exactly-once-slow-checkpoint-messages",
        "failure-recovery",
        "failure-recovery-exactly-once",
        "failure-recovery-exactly-once-partition",
        "failure-recovery-no-checkpointing",
        "fuzz-exactly-once",
        "metrics",
        "pitfalls/at-least-once-duplicates",
        "pitfalls/at-least-once-duplicates-fixed",
        "pitfalls/drain-then-resume",
        "pitfalls/drain-then-resume-fixed",
        "pitfalls/generator-restart-from-zero",
        "pitfalls/generator-restart-from-zero-fixed",
        "pitfalls/idle-partition-late-drops",
        "pitfalls/idle-partition-late-drops-fixed",
        "pitfalls/no-checkpointing-loss",
        "pitfalls/no-checkpointing-loss-fixed",
        "pitfalls/no-partition-subtask-stall",
        "pitfalls/no-partition-subtask-stall-fixed",
        "pitfalls/read-uncommitted-duplicates",
        "pitfalls/read-uncommitted-duplicates-fixed",
        "pitfalls/restore-above-max-parallelism",
        "pitfalls/restore-above-max-parallelism-fixed",
        "pitfalls/stuck-last-stable-offset",
        "pitfalls/stuck-last-stable-offset-fixed",
        "pitfalls/transaction-timeout-loss",
        "pitfalls/transaction-timeout-loss-fixed",
        "pitfalls/twelve-hour-date-pattern",
        "pitfalls/twelve-hour-date-pattern-fixed",
        "pitfalls/zombie-transaction",
        "pitfalls/zombie-transaction-fixed",
        "processing-time",
        "processing-time-exactly-once",
        "rescale",
        "rescale-down",
        "rescale-down-exactly-once",
        "rescale-exactly-once",
        "rest-api",
        "rest-request-partitioned",
        "steady-state",
        "upgrade",
        "upgrade-exactly-once",
    ];
    assert_eq!(known, tested.map(String::from).to_vec(), "add a test below for each new scenario file");
}

/// `--duration` shorter than a file's steps printed a banner that no longer loaded: its late
/// steps were after its end.
#[test]
fn every_scenario_shortened_to_30s_prints_a_banner_that_loads_back() {
    for name in Scenario::known(&scenarios_dir()) {
        let shortened = scenario(&name).with_duration(Duration::from_secs(30));
        let banner = shortened.to_toml();
        let again = Scenario::parse(&banner, &shortened.path).unwrap_or_else(|e| panic!("{e}\n{banner}"));
        assert_eq!(again, shortened, "{name}");
        assert_eq!(again.to_toml(), banner, "{name}");
    }
}

#[test]
fn backpressure() {
    check("backpressure");
}

#[test]
fn processing_time() {
    check("processing-time");
}

#[test]
fn processing_time_exactly_once() {
    check("processing-time-exactly-once");
}

#[test]
fn steady_state() {
    check("steady-state");
}

/// The fuzzer's base: without faults, the jittered timestamps leave every window exact and no
/// event late.
#[test]
fn fuzz_exactly_once() {
    check("fuzz-exactly-once");
}

/// Each file the fuzzer wrote to scenarios/regressions/ replays under its own seed, and passes:
/// the bug it found stays fixed.
#[test]
fn every_regression_file_replays_and_passes() {
    let dir = scenarios_dir().join("regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default();
    files.retain(|path| path.extension().is_some_and(|e| e == "toml"));
    files.sort();
    for path in files {
        let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let seed = scenario.seed.unwrap_or_else(|| panic!("{}: a regression file names its `seed`", path.display()));
        let report = run(&scenario, seed);
        assert_passed(&report);
    }
}

#[test]
fn failure_recovery() {
    check("failure-recovery");
}

#[test]
fn failure_recovery_exactly_once() {
    check("failure-recovery-exactly-once");
}

#[test]
fn failure_recovery_exactly_once_partition() {
    check("failure-recovery-exactly-once-partition");
}

#[test]
fn failure_recovery_no_checkpointing() {
    check("failure-recovery-no-checkpointing");
}

#[test]
fn exactly_once_resubmitted_at_lower_parallelism() {
    check("exactly-once-resubmitted-at-lower-parallelism");
}

/// Written for two planted bugs (docs/planted-bugs.md): without them it passes.
#[test]
fn exactly_once_slow_checkpoint_messages() {
    check("exactly-once-slow-checkpoint-messages");
}

#[test]
fn exactly_once_restore_after_transaction_timeout() {
    check("exactly-once-restore-after-transaction-timeout");
}

#[test]
fn pitfall_at_least_once_duplicates() {
    check("pitfalls/at-least-once-duplicates");
}

#[test]
fn pitfall_at_least_once_duplicates_fixed() {
    check("pitfalls/at-least-once-duplicates-fixed");
}

#[test]
fn pitfall_generator_restart_from_zero() {
    check("pitfalls/generator-restart-from-zero");
}

#[test]
fn pitfall_generator_restart_from_zero_fixed() {
    check("pitfalls/generator-restart-from-zero-fixed");
}

#[test]
fn pitfall_idle_partition_late_drops() {
    check("pitfalls/idle-partition-late-drops");
}

#[test]
fn pitfall_idle_partition_late_drops_fixed() {
    check("pitfalls/idle-partition-late-drops-fixed");
}

#[test]
fn pitfall_no_checkpointing_loss() {
    check("pitfalls/no-checkpointing-loss");
}

#[test]
fn pitfall_no_checkpointing_loss_fixed() {
    check("pitfalls/no-checkpointing-loss-fixed");
}

#[test]
fn pitfall_no_partition_subtask_stall() {
    check("pitfalls/no-partition-subtask-stall");
}

#[test]
fn pitfall_no_partition_subtask_stall_fixed() {
    check("pitfalls/no-partition-subtask-stall-fixed");
}

#[test]
fn pitfall_transaction_timeout_loss() {
    check("pitfalls/transaction-timeout-loss");
}

#[test]
fn pitfall_transaction_timeout_loss_fixed() {
    check("pitfalls/transaction-timeout-loss-fixed");
}

#[test]
fn pitfall_twelve_hour_date_pattern() {
    check("pitfalls/twelve-hour-date-pattern");
}

#[test]
fn pitfall_twelve_hour_date_pattern_fixed() {
    check("pitfalls/twelve-hour-date-pattern-fixed");
}

#[test]
fn pitfall_read_uncommitted_duplicates() {
    check("pitfalls/read-uncommitted-duplicates");
}

#[test]
fn pitfall_read_uncommitted_duplicates_fixed() {
    check("pitfalls/read-uncommitted-duplicates-fixed");
}

#[test]
fn pitfall_zombie_transaction() {
    check("pitfalls/zombie-transaction");
}

#[test]
fn pitfall_zombie_transaction_fixed() {
    check("pitfalls/zombie-transaction-fixed");
}

#[test]
fn upgrade() {
    check("upgrade");
}

#[test]
fn upgrade_exactly_once() {
    check("upgrade-exactly-once");
}

#[test]
fn rescale() {
    check("rescale");
}

#[test]
fn rescale_exactly_once() {
    check("rescale-exactly-once");
}

#[test]
fn rescale_down() {
    check("rescale-down");
}

#[test]
fn rescale_down_exactly_once() {
    check("rescale-down-exactly-once");
}

#[test]
fn pitfall_drain_then_resume() {
    check("pitfalls/drain-then-resume");
}

#[test]
fn pitfall_drain_then_resume_fixed() {
    check("pitfalls/drain-then-resume-fixed");
}

#[test]
fn pitfall_restore_above_max_parallelism() {
    check("pitfalls/restore-above-max-parallelism");
}

#[test]
fn pitfall_restore_above_max_parallelism_fixed() {
    check("pitfalls/restore-above-max-parallelism-fixed");
}

#[test]
fn pitfall_stuck_last_stable_offset() {
    check("pitfalls/stuck-last-stable-offset");
}

#[test]
fn pitfall_stuck_last_stable_offset_fixed() {
    check("pitfalls/stuck-last-stable-offset-fixed");
}

#[test]
fn exactly_once_restore_older_savepoint_again() {
    check("exactly-once-restore-older-savepoint-again");
}

#[test]
fn metrics() {
    check("metrics");
}

#[test]
fn rest_api() {
    check("rest-api");
}

#[test]
fn rest_request_partitioned() {
    check("rest-request-partitioned");
}
