//! Planted bugs (docs/planted-bugs.md): each deliberate engine bug, switched on with `--plant`,
//! is caught by today's scenarios and oracle, and the same run without it passes. Each test
//! names the scenario and seed that catch its bug, the verdict class and the violation; the
//! README's table lists the same. One bug only jittered input reveals says why (the fuzzer,
//! whose test in `fuzz.rs` finds all thirteen, brings that input).

use flinksim::Report;
use flinksim::liveness::LivenessViolation;
use flinksim::oracle::Violation;
use flinksim::plant::{PlantedBug, Plants};
use flinksim::verdict::VerdictClass;

use crate::harness::{assert_passed, run, scenario};

/// What the oracle must report for a planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Finding {
    Unaccounted,
    Duplicated,
    DroppedAsLate,
    DetectedLate,
}

fn found(violation: &Violation) -> Option<Finding> {
    Some(match violation {
        Violation::Unaccounted { .. } => Finding::Unaccounted,
        Violation::Duplicated { .. } => Finding::Duplicated,
        Violation::DroppedAsLate { .. } => Finding::DroppedAsLate,
        Violation::Liveness(LivenessViolation::DetectedLate { .. }) => Finding::DetectedLate,
        _ => return None,
    })
}

fn replay(report: &Report, bug: Option<PlantedBug>) -> String {
    let plant = bug.map(|b| format!(" --plant {b}")).unwrap_or_default();
    format!("replay: cargo xtask run-scenario {} --seed {}{plant}", report.scenario, report.seed)
}

/// Runs `name` under `seed` with `bug` planted: the verdict is `class`, with `finding` among the
/// violations; then the same run without the plant passes.
fn caught(bug: PlantedBug, name: &str, seed: u64, class: VerdictClass, finding: Finding) {
    let mut planted = scenario(name);
    planted.plants = Plants::of([bug]);
    let report = run(&planted, seed);
    let findings: Vec<Finding> = report.oracle.violations.iter().filter_map(found).collect();
    assert_eq!(
        report.oracle.verdict(),
        class,
        "{bug} was not caught as {class:?}: {:?}\n{}",
        report.oracle.violations,
        replay(&report, Some(bug))
    );
    assert!(findings.contains(&finding), "{bug}: no {finding:?} in {:?}\n{}", report.oracle.violations, replay(&report, Some(bug)));
    assert_passed(&run(&scenario(name), seed));
}

#[test]
fn a_source_restoring_skewed_offsets_loses_one_event_per_partition() {
    caught(PlantedBug::SourceRestoreOffsetSkew, "failure-recovery-exactly-once", 1, VerdictClass::Correctness, Finding::Unaccounted);
}

#[test]
fn window_state_left_out_of_snapshots_loses_the_open_windows() {
    caught(PlantedBug::WindowStateNotSnapshotted, "failure-recovery-exactly-once", 1, VerdictClass::Correctness, Finding::Unaccounted);
}

#[test]
fn barriers_not_aligned_leave_in_flight_records_out_of_the_snapshot() {
    caught(PlantedBug::BarriersNotAligned, "failure-recovery-exactly-once", 1, VerdictClass::Correctness, Finding::Unaccounted);
}

/// Needs a kill between the sink's commit and the checkpoint's completion: the purpose-written
/// scenario slows the snapshot writes to stretch that window.
#[test]
fn a_sink_committing_before_the_checkpoint_completes_writes_results_twice() {
    caught(PlantedBug::SinkCommitsBeforeCheckpoint, "exactly-once-slow-checkpoint-messages", 3, VerdictClass::Correctness, Finding::Duplicated);
}

#[test]
fn timers_lost_on_restore_never_fire_the_restored_windows() {
    caught(PlantedBug::TimersLostOnRestore, "failure-recovery-exactly-once", 1, VerdictClass::Correctness, Finding::Unaccounted);
}

#[test]
fn the_wrong_key_groups_on_rescale_split_a_window_in_two() {
    caught(PlantedBug::WrongKeyGroupOnRescale, "rescale-exactly-once", 1, VerdictClass::Correctness, Finding::Duplicated);
}

#[test]
fn an_ignored_heartbeat_timeout_detects_the_lost_taskmanager_too_late() {
    caught(PlantedBug::HeartbeatTimeoutIgnored, "failure-recovery-exactly-once", 1, VerdictClass::Liveness, Finding::DetectedLate);
}

#[test]
fn a_savepoint_without_draining_loses_the_records_its_barrier_overtook() {
    caught(PlantedBug::SavepointWithoutDrain, "upgrade-exactly-once", 1, VerdictClass::Correctness, Finding::Unaccounted);
}

#[test]
fn a_checkpoint_completed_before_every_acknowledgement_restores_no_window_state() {
    caught(PlantedBug::CheckpointCompletesEarly, "failure-recovery", 1, VerdictClass::Correctness, Finding::Unaccounted);
}

/// Needs a transaction with results aborted: the purpose-written scenario kills the TaskManager
/// just after a window fired, before its transaction commits.
#[test]
fn a_read_committed_fetch_returning_aborted_records_shows_results_twice() {
    caught(PlantedBug::ReadCommittedShowsAborted, "exactly-once-slow-checkpoint-messages", 2, VerdictClass::Correctness, Finding::Duplicated);
}

#[test]
fn the_max_of_the_input_watermarks_drops_the_slower_channels_events_as_late() {
    caught(PlantedBug::WatermarkMaxOfInputs, "failure-recovery", 1, VerdictClass::Semantic, Finding::DroppedAsLate);
}

/// Needs a kill after a checkpoint holding results completed and before the sink heard of it:
/// the purpose-written scenario slows the commit notices to stretch that window.
#[test]
fn a_sink_aborting_its_restored_transactions_loses_their_results() {
    caught(PlantedBug::SinkAbortsRestoredTransactions, "exactly-once-slow-checkpoint-messages", 1, VerdictClass::Correctness, Finding::Unaccounted);
}

/// No scenario with in-order input reveals this one: the generator writes each partition in
/// timestamp order and every partition has its own watermark generator, so no event is ever older
/// than its partition's newest one and the bound is never needed (a scenario may even set
/// `out_of_orderness = "0s"`). The fuzzer's jittered base reveals it (`fuzz.rs`). The run below
/// shows the plant is live (the trace differs) and still passes on in-order input.
#[test]
fn a_watermark_without_the_out_of_orderness_bound_is_not_revealed_by_in_order_input() {
    let bug = PlantedBug::WatermarkWithoutBound;
    let mut planted = scenario("failure-recovery-exactly-once");
    planted.plants = Plants::of([bug]);
    let report = run(&planted, 1);
    assert_passed(&report);
    let faithful = run(&scenario("failure-recovery-exactly-once"), 1);
    assert_ne!(report.trace_hash, faithful.trace_hash, "{bug} changed nothing: {}", replay(&report, Some(bug)));
}
