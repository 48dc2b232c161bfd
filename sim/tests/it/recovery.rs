//! Checkpoints and failure recovery: kill the TaskManager, bring it back,
//! lose nothing; without checkpointing, the loss the playground teaches.

use flinksim::oracle::RowStatus;
use flinksim::timeline::timeline;

use crate::harness::{assert_every_seed, assert_passed, run, scenario};

/// Seeds for the sweeps; each one's fault times are drawn from it.
const SWEEP: std::ops::RangeInclusive<u64> = 1..=200;

#[test]
fn killing_the_taskmanager_restores_the_latest_checkpoint_and_loses_nothing() {
    let report = run(&scenario("failure-recovery"), 8141);
    assert_passed(&report);
    let story: Vec<String> = timeline(&report.events).into_iter().map(|m| m.what).collect();
    let has = |prefix: &str| story.iter().any(|s| s.starts_with(prefix));
    assert!(has("step: docker-compose kill taskmanager"), "{story:#?}");
    assert!(story.iter().any(|s| s.starts_with("detected: Heartbeat") && s.contains("(5.0 s after the fault)")), "{story:#?}");
    assert!(has("job RUNNING → RESTARTING"), "{story:#?}");
    assert!(has("restart cycle: "), "{story:#?}");
    assert!(has("tasks SCHEDULED"), "{story:#?}");
    assert!(has("re-registration: taskmanager-1"), "{story:#?}");
    assert!(has("restore from checkpoint "), "{story:#?}");
    let catch_up = story.iter().find(|s| s.starts_with("catch-up: ")).expect("a catch-up line");
    let first_minute: u32 = catch_up["catch-up: ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!(first_minute > 24, "catch-up must beat the steady 24 results per minute: {catch_up}");
    for row in &report.oracle.rows {
        assert!(row.counts.iter().all(|&c| c == 1000), "{row:?} (seed 8141)");
    }
}

#[test]
fn without_checkpointing_the_job_fails_and_the_oracle_shows_the_loss() {
    let report = run(&scenario("failure-recovery-no-checkpointing"), 8141);
    assert_passed(&report); // the scenario expects loss
    assert!(report.oracle.totals().lost > 0, "the playground's lesson: data is lost (seed 8141)");
    // Only in the windows open at the failure (2:00): every other window is exact.
    for row in &report.oracle.rows {
        let open_at_the_failure = (105_000..=120_000).contains(&row.window_start_ms);
        assert!(row.status == RowStatus::Ok || open_at_the_failure, "{row:?} (seed 8141)");
        assert_eq!(row.unaccounted, 0, "{row:?} (seed 8141)");
    }
    assert!(report.trace.iter().any(|l| l.contains("switched from state FAILING to FAILED.")));
}

#[test]
fn exactly_once_survives_a_kill_at_200_seeded_times_with_no_duplicate_and_no_loss() {
    sweep("failure-recovery-exactly-once");
}

#[test]
fn exactly_once_survives_a_partition_from_the_jobmanager_at_200_seeded_times() {
    sweep("failure-recovery-exactly-once-partition");
}

fn sweep(name: &str) {
    let seeds: Vec<u64> = SWEEP.collect();
    assert_every_seed(name, &seeds, |r| r.oracle.rows.iter().all(|row| row.counts.len() == 1));
}
