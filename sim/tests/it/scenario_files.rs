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
    let known = flinksim::Scenario::known(&scenarios_dir());
    let tested = [
        "backpressure",
        "exactly-once-restore-after-transaction-timeout",
        "exactly-once-resubmitted-at-lower-parallelism",
        "failure-recovery",
        "failure-recovery-exactly-once",
        "failure-recovery-exactly-once-partition",
        "failure-recovery-no-checkpointing",
        "pitfalls/at-least-once-duplicates",
        "pitfalls/at-least-once-duplicates-fixed",
        "pitfalls/generator-restart-from-zero",
        "pitfalls/generator-restart-from-zero-fixed",
        "pitfalls/idle-partition-late-drops",
        "pitfalls/idle-partition-late-drops-fixed",
        "pitfalls/no-checkpointing-loss",
        "pitfalls/no-checkpointing-loss-fixed",
        "pitfalls/no-partition-subtask-stall",
        "pitfalls/no-partition-subtask-stall-fixed",
        "pitfalls/transaction-timeout-loss",
        "pitfalls/transaction-timeout-loss-fixed",
        "pitfalls/twelve-hour-date-pattern",
        "pitfalls/twelve-hour-date-pattern-fixed",
        "processing-time",
        "processing-time-exactly-once",
        "rescale",
        "rescale-down",
        "rescale-down-exactly-once",
        "rescale-exactly-once",
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
