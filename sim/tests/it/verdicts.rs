//! Verdict classes from whole runs: a fault whose loss the job's own semantics explain is
//! `semantic`, with the late drops and their cause named; a required late drop or loss that never
//! comes is `correctness`; a job that never produces again is `liveness` (xtask's CLI tests: a
//! job without checkpointing that fails for good; liveness.rs: the fault-free tail); a
//! JobManager back without its job is `semantic` with its cause (graceful_stop.rs). Bad input is
//! exit 2 (xtask's CLI tests, scenario parsing).

use flinksim::oracle::{Required, Violation};
use flinksim::verdict::VerdictClass;

use crate::harness::{assert_passed, inline, replay, run, run_seeds, steps};

/// A 20 s broker outage, and taskmanager-2 (the second source, on its own TaskManager) cut off
/// from the broker 15 s longer: its partition is idle all that time, the counters' watermark
/// runs on with the other partition's backlog, and taskmanager-2's events then come in late
/// (faults.rs forces the same drops). Flink drops them too; with no loss allowed, the run fails
/// as `semantic`, naming the late drops and the idle partition, never as an engine bug.
#[test]
fn late_drops_after_a_broker_outage_fail_as_semantic_naming_the_idle_partition() {
    let steps = steps(&[("1m", "docker-compose kill kafka"), ("1m", "sim partition kafka taskmanager-2"), ("1m20s", "docker-compose up -d kafka"), ("1m35s", "sim heal kafka taskmanager-2")]);
    let scenario = inline("broker-outage-late", "3m", "taskmanagers = 2\nslots = 1", "exactly-once", &steps);
    for report in run_seeds(&scenario, &[1, 2, 3]) {
        let replay = replay(&scenario, report.seed);
        assert_eq!(report.oracle.verdict(), VerdictClass::Semantic, "{:?}\n{replay}", report.oracle.violations);
        let [Violation::DroppedAsLate { idle_before: Some(idle), .. }] = report.oracle.violations.as_slice() else {
            panic!("{:?}\n{replay}", report.oracle.violations);
        };
        assert!(idle.at.as_secs() >= 65, "idle 5 s after the outage began: {idle:?}\n{replay}");
        let message = report.oracle.violations[0].to_string();
        assert!(message.contains("dropped as late by the window operator"), "{message}");
        assert!(message.contains(&format!("marked partition {} idle", idle.partition)), "{message}");
    }
}

/// The real generator restarts at event time 0: what it sends again into windows that fired is
/// late and dropped. The oracle's recount of those windows doubles, and the counter's traced
/// drops account for exactly the difference, row by row; a scenario that requires late drops
/// passes: the job did what Flink does.
#[test]
fn a_generator_restarted_from_zero_is_late_not_an_engine_bug() {
    let steps = steps(&[("1m", "docker-compose kill clickevent-generator"), ("1m10s", "docker-compose up -d clickevent-generator")]);
    let generator = "[generator]\non_restart = \"from-zero\"";
    let strict = inline("generator-from-zero", "3m", "", "exactly-once", &format!("{generator}\n{steps}"));
    let report = run(&strict, 1);
    assert_eq!(report.oracle.verdict(), VerdictClass::Semantic, "{:?}", report.oracle.violations);
    assert!(matches!(report.oracle.violations.as_slice(), [Violation::DroppedAsLate { .. }]));
    let required = inline(
        "generator-from-zero",
        "3m",
        "",
        "exactly-once",
        &format!("{generator}\n{steps}\n[expect]\nlate = \"required\""),
    );
    let report = run(&required, 1);
    assert_passed(&report);
    for row in &report.oracle.rows {
        assert_eq!(row.counted + row.late, row.recount, "{row:?}\n{}", replay(&required, 1));
    }
    assert!(report.oracle.totals().late > 0);
}

/// A scenario that requires what the engine never does fails as `correctness`: a pitfall replay
/// whose late drops or loss do not happen means the engine is not faithful. An undisturbed run
/// drops and loses nothing, so requiring either fails it, naming what was required.
#[test]
fn required_late_drops_or_loss_that_never_come_fail_as_correctness() {
    for (key, what) in [("late", Required::LateDrops), ("loss", Required::Loss)] {
        let scenario = inline(&format!("requires-{key}"), "1m", "", "at-least-once", &format!("[expect]\n{key} = \"required\""));
        let report = run(&scenario, 1);
        let replay = replay(&scenario, 1);
        assert_eq!(report.oracle.verdict(), VerdictClass::Correctness, "{:?}\n{replay}", report.oracle.violations);
        assert_eq!(report.oracle.violations, vec![Violation::RequiredButAbsent { what }], "{replay}");
        assert_eq!(report.oracle.totals().unaccounted, 0, "{replay}");
    }
}
