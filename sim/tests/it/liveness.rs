//! The liveness phase from whole runs: a fault that never heals is refused
//! unless the scenario says the job must stall, and then the job must stall; detection and
//! recovery times are measured and held to `[expect]`'s bounds. Seeds 1 and 2, each run two
//! simulated minutes or less.

use std::time::Duration;

use flinksim::RunError;
use flinksim::liveness::{LivenessViolation, check_tail};
use flinksim::oracle::Violation;
use flinksim::verdict::VerdictClass;

use crate::harness::{assert_passed_as, inline, replay, run, run_seeds, steps};

/// The broker killed at 1m and never back: the job's sources read nothing more, so no new
/// window comes. Declared as a stall, the run passes (the broker's log is read back from disk).
#[test]
fn a_broker_down_for_good_passes_where_the_job_must_stall() {
    let kill = steps(&[("1m", "docker-compose kill kafka")]);
    let scenario = inline("broker-gone", "1m40s", "", "at-least-once", &format!("{kill}\n[expect]\nliveness = \"stall\""));
    for report in run_seeds(&scenario, &[1, 2]) {
        assert_passed_as(&scenario, &report);
        let tail = report.liveness.tail.as_ref().expect("a run with a fault has a tail");
        assert_eq!(tail.from.as_millis(), 60_000);
        assert_eq!(tail.new_result_at, None, "{tail}\n{}", replay(&scenario, report.seed));
    }
}

/// The only TaskManager killed for good: the input grows on while no window comes out, and
/// those missing windows are what a stall means: a note, not a violation.
#[test]
fn a_taskmanager_down_for_good_leaves_missing_windows_as_a_note_where_the_job_must_stall() {
    let kill = steps(&[("30s", "docker-compose kill taskmanager")]);
    let scenario = inline("taskmanager-gone", "1m10s", "", "at-least-once", &format!("{kill}\n[expect]\nliveness = \"stall\""));
    let report = run(&scenario, 1);
    assert_passed_as(&scenario, &report);
    assert!(
        report.oracle.notes.iter().any(|n| n.starts_with("no result from window") && n.ends_with("(the scenario expects the job to stall)")),
        "{:?}\n{}",
        report.oracle.notes,
        replay(&scenario, 1)
    );
}

/// The same fault, with the job expected to recover (the default): refused before anything runs.
#[test]
fn a_fault_that_never_heals_is_refused_unless_the_job_must_stall() {
    let kill = steps(&[("1m", "docker-compose kill kafka")]);
    let scenario = inline("broker-gone", "1m40s", "", "exactly-once", &kill);
    let error = check_tail(&scenario).unwrap_err().to_string();
    assert!(
        error.starts_with("broker-gone.toml:11:1: `docker-compose kill kafka` at 1m leaves kafka down until the end"),
        "{error}"
    );
    assert!(error.contains("declare `liveness = \"stall\"` in [expect]"), "{error}");
    assert!(matches!(flinksim::run(&scenario, 1), Err(RunError::BadInput(_))));
}

/// A fault the job does not care about (the broker cut off from the client, which only submits
/// the job): the job runs on, so a scenario that says it must stall fails for liveness.
#[test]
fn a_job_that_runs_on_where_it_must_stall_fails_for_liveness() {
    let cut = steps(&[("30s", "sim partition kafka client")]);
    let scenario = inline("client-cut", "1m10s", "", "at-least-once", &format!("{cut}\n[expect]\nliveness = \"stall\""));
    let report = run(&scenario, 1);
    assert_eq!(report.oracle.verdict(), VerdictClass::Liveness, "{:?}\n{}", report.oracle.violations, replay(&scenario, 1));
    let [Violation::Liveness(LivenessViolation::DidNotStall { since, new_result_at })] = report.oracle.violations.as_slice() else {
        panic!("{:?}\n{}", report.oracle.violations, replay(&scenario, 1));
    };
    assert_eq!(since.as_millis(), 30_000);
    assert!(*new_result_at > Duration::from_secs(40), "after the 10 s grace: {new_result_at:?}");
}

/// A TaskManager killed at 30s and back at 45s: the JobManager notices after the heartbeat
/// timeout (4 to 6 s), which a 2 s bound refuses, naming both times; the recovery after the
/// TaskManager is back is measured and well within 10 s.
#[test]
fn detection_slower_than_its_bound_is_a_liveness_violation_naming_both_times() {
    let kill = steps(&[("30s", "docker-compose kill taskmanager"), ("45s", "docker-compose up -d taskmanager")]);
    let expect = "[expect]\ndetection_within = \"2s\"\nrecovery_within = \"10s\"";
    let scenario = inline("slow-detection", "1m20s", "", "exactly-once", &format!("{kill}\n{expect}"));
    for report in run_seeds(&scenario, &[1, 2]) {
        let replay = replay(&scenario, report.seed);
        let [Violation::Liveness(LivenessViolation::DetectedLate { taskmanager, measured: Some(measured), allowed, .. })] =
            report.oracle.violations.as_slice()
        else {
            panic!("{:?}\n{replay}", report.oracle.violations);
        };
        assert_eq!((taskmanager.as_str(), *allowed), ("taskmanager-1", Duration::from_secs(2)));
        assert!((Duration::from_secs(4)..=Duration::from_secs(6)).contains(measured), "{measured:?}\n{replay}");
        let message = report.oracle.violations[0].to_string();
        assert!(message.contains("after it was taken away at 0:30.000: detection_within allows 2s"), "{message}");
        assert_eq!(report.oracle.verdict(), VerdictClass::Liveness);
        let [recovery] = report.liveness.recoveries.as_slice() else { panic!("{:?}\n{replay}", report.liveness.recoveries) };
        assert!(recovery.slots_at >= Duration::from_secs(45), "{recovery}\n{replay}");
        assert!(recovery.measured().is_some_and(|m| m < Duration::from_secs(10)), "{recovery}\n{replay}");
        assert!(report.liveness.tail.as_ref().is_some_and(|t| t.caught_up()), "{:?}\n{replay}", report.liveness.tail);
    }
}
