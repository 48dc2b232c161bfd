//! One test per file in scenarios/: it loads, runs under a fixed seed, meets its own
//! expectations, and its window counts match snapshots/<name>.snap.

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
        "exactly-once-restore-after-transaction-timeout",
        "exactly-once-resubmitted-at-lower-parallelism",
        "failure-recovery",
        "failure-recovery-exactly-once",
        "failure-recovery-exactly-once-partition",
        "failure-recovery-no-checkpointing",
        "steady-state",
    ];
    assert_eq!(known, tested.map(String::from).to_vec(), "add a test below for each new scenario file");
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
