//! Stop with a savepoint, restore, rescale (docs/model/cluster.md#the-flink-cli, the playground's "Upgrading & Rescaling a
//! Job"): the scenarios over a few seeds each, the CLI's output, and savepoints that cannot be
//! restored. The 200-seed sweep of every scenario runs with `--features flinksim/sweeps`.

use flinksim::Report;
use flinksim::timeline::timeline;
use flinksim::verdict::VerdictClass;

use flinksim::oracle::Violation;
use flinksim::scenario::DuplicatesExpectation;

use crate::harness::{assert_every_seed, assert_passed, inline, replay, run, run_seeds, scenario, steps, traced};

/// Seeds of the default suite, per scenario; each one's step times are drawn from it.
const SEEDS: std::ops::RangeInclusive<u64> = 1..=4;
/// Seeds of the sweep behind the `sweeps` feature.
#[cfg(feature = "sweeps")]
const SWEEP: std::ops::RangeInclusive<u64> = 1..=200;

const RUN: &str = "/opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing --event-time";

/// Every seed passes, every window counts 1000 per page, and the exactly-once sink writes each
/// result once.
fn passes(name: &str, seeds: std::ops::RangeInclusive<u64>) {
    let exactly_once = name.ends_with("exactly-once");
    assert_every_seed(name, &seeds.collect::<Vec<_>>(), |r| {
        r.oracle.rows.iter().all(|row| row.counts.iter().max() == Some(&1000) && (!exactly_once || row.counts.len() == 1))
    });
}

#[test]
fn upgrade_restores_the_unchanged_job_with_every_window_at_1000() {
    passes("upgrade", SEEDS);
}

#[test]
fn upgrade_exactly_once_writes_every_window_once() {
    passes("upgrade-exactly-once", SEEDS);
}

#[test]
fn rescale_to_p3_waits_for_slots_then_keeps_every_window_at_1000() {
    passes("rescale", SEEDS);
}

#[test]
fn rescale_to_p3_exactly_once_writes_every_window_once() {
    passes("rescale-exactly-once", SEEDS);
}

#[test]
fn rescale_p2_to_p3_to_p1_keeps_every_window_at_1000() {
    passes("rescale-down", SEEDS);
}

#[test]
fn rescale_p2_to_p3_to_p1_exactly_once_writes_every_window_once() {
    passes("rescale-down-exactly-once", SEEDS);
}

#[test]
#[cfg(feature = "sweeps")]
fn every_savepoint_scenario_passes_over_200_seeds() {
    for name in ["upgrade", "upgrade-exactly-once", "rescale", "rescale-exactly-once", "rescale-down", "rescale-down-exactly-once"] {
        passes(name, SWEEP);
    }
    restoring_an_older_savepoint_again(SWEEP);
}

#[test]
fn rescaling_beyond_the_slots_cycles_until_a_taskmanager_is_added() {
    let report = run(&scenario("rescale"), 8141);
    assert_passed(&report);
    let story: Vec<String> = timeline(&report.events).into_iter().map(|m| m.what).collect();
    let has = |text: &str| story.iter().any(|s| s.contains(text));
    assert!(has("savepoint completed at /tmp/flink-savepoints-directory/savepoint-"), "{story:#?}");
    assert!(has("FINISHED"), "{story:#?}");
    assert!(has("from a savepoint"), "{story:#?}");
    assert!(has("NoResourceAvailableException"), "{story:#?}");
    assert!(has("step: docker-compose scale taskmanager=2"), "{story:#?}");
    assert!(traced(&report, "ClickEvent Counter (3/3)"), "the job ran at -p 3");
}

/// The client's lines, with their simulated time.
fn client_lines(report: &Report) -> String {
    report
        .events
        .iter()
        .filter(|e| e.node == "client")
        .map(|e| format!("{:>8.3}  {}\n", e.at.as_secs_f64(), e.event))
        .collect()
}

#[test]
fn the_cli_prints_what_the_playground_prints() {
    let rest = steps(&[
        ("30s", "flink list"),
        ("40s", "flink stop $job"),
        ("50s", "flink list"),
        ("55s", &format!("flink run -d -p 2 -s $savepoint {RUN}")),
        ("1m", "flink list"),
        ("1m10s", "flink cancel $job"),
        ("1m20s", "flink list"),
        ("1m30s", "flink stop $job"),
    ]);
    let scenario = inline("cli", "2m", "taskmanagers = 1", "at-least-once", &rest);
    let report = run(&scenario, 42);
    insta::assert_snapshot!("cli_output_seed_42", client_lines(&report));
}

#[test]
fn a_missing_savepoint_fails_the_submission_naming_its_path_and_the_run_goes_on() {
    let missing = "/tmp/flink-savepoints-directory/savepoint-000000-000000000000";
    let rest = steps(&[("30s", &format!("flink run -d -s {missing} {RUN}"))]);
    let report = run(&inline("missing", "1m30s", "taskmanagers = 1", "at-least-once", &rest), 1);
    assert_passed(&report); // the first job runs on
    let lines = client_lines(&report);
    assert!(
        lines.contains(&format!(
            "The program finished with the following exception: Could not restore job from savepoint {missing}: \
             java.io.FileNotFoundException: Cannot find checkpoint or savepoint file/directory '{missing}' on file \
             system 'file'."
        )),
        "{lines}"
    );
}

#[test]
fn a_restore_above_the_max_parallelism_fails_with_flinks_error() {
    let rest = steps(&[
        ("30s", "flink stop $job"),
        ("45s", &format!("flink run -d -p 200 -s $savepoint {RUN}")),
        ("50s", &format!("flink run -d -s $savepoint {RUN}")),
    ]);
    let report = run(&inline("too-wide", "2m", "taskmanagers = 1", "at-least-once", &rest), 1);
    assert_passed(&report); // the second restore, at -p 2, runs
    let lines = client_lines(&report);
    assert!(
        lines.contains(
            "The state for task ClickEvent Source can not be restored. The maximum parallelism (128) of the \
             restored state is lower than the configured parallelism (200)."
        ),
        "{lines}"
    );
    assert!(lines.contains("Could not restore job from savepoint /tmp/flink-savepoints-directory/savepoint-"), "{lines}");
}

#[test]
fn a_drained_stop_fires_every_open_window_before_the_savepoint() {
    let rest = steps(&[("40s", "flink stop --drain $job")]);
    let report = run(&inline("drain", "1m", "taskmanagers = 1", "exactly-once", &rest), 1);
    let at_stop: Vec<_> = report.oracle.rows.iter().filter(|r| r.window_start_ms == 30_000).collect();
    assert_eq!(at_stop.len(), 6, "the window open at the stop came out for every page");
    assert!(at_stop.iter().all(|r| r.counts.iter().all(|&c| c < 1000)), "with a partial count: {at_stop:?}");
    assert!(traced(&report, "name='Terminate Savepoint', postCheckpointAction=TERMINATE"));
}

/// Resuming from a drained savepoint: the drain fired each window open at the stop with part of
/// its count, and the resumed job fires it again with the rest. The oracle judges each such row
/// by the sum of its two copies (every event accounted for) and names the split: semantic where
/// copies are not allowed, a note where they are.
#[test]
fn a_resume_after_a_drained_stop_splits_the_open_windows_and_the_oracle_names_it() {
    let rest = steps(&[
        ("40s", "flink stop --drain $job"),
        ("50s", "flink run -d -s $savepoint /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing --event-time"),
    ]);
    for (expect, verdict) in [("", VerdictClass::Semantic), ("[expect]\nduplicates = \"allowed\"", VerdictClass::Passed)] {
        let scenario = inline("drain-resume", "2m", "taskmanagers = 1", "exactly-once", &format!("{rest}\n{expect}"));
        let report = run(&scenario, 1);
        let replay = crate::harness::replay(&scenario, 1);
        assert_eq!(report.oracle.verdict(), verdict, "{:?}\n{replay}", report.oracle.violations);
        let split: Vec<_> = report.oracle.rows.iter().filter(|r| r.split_by_drain).collect();
        assert_eq!(split.len(), 6, "the window open at the stop, every page\n{replay}");
        for row in split {
            assert_eq!(row.counts.len(), 2, "{row:?}\n{replay}");
            assert_eq!(row.counts.iter().sum::<u64>(), row.recount, "{row:?}\n{replay}");
            assert_eq!((row.counted, row.unaccounted), (row.recount, 0), "{row:?}\n{replay}");
        }
        assert_eq!(report.oracle.totals().unaccounted, 0, "{replay}");
    }
}

/// Exactly-once, a savepoint restored a second time after the first resume had committed
/// results: nothing is lost, every window the first resume wrote comes out twice with its full
/// count, and the oracle names the second restore as the cause. Where the scenario allows no
/// copies, that is a semantic finding, not an engine bug.
fn restoring_an_older_savepoint_again(seeds: std::ops::RangeInclusive<u64>) {
    let name = "exactly-once-restore-older-savepoint-again";
    let mut strict = scenario(name);
    strict.expect.duplicates = DuplicatesExpectation::None;
    let seeds: Vec<u64> = seeds.collect();
    for report in run_seeds(&strict, &seeds) {
        let replay = replay(&scenario(name), report.seed);
        let [Violation::RewoundBySavepoint { rows, rewinds }] = report.oracle.violations.as_slice() else {
            panic!("{:?}\n{replay}", report.oracle.violations);
        };
        assert_eq!(report.oracle.verdict(), VerdictClass::Semantic, "{replay}");
        assert_eq!(rewinds.len(), 1, "{replay}");
        assert!(rows.len() >= 6 && rows.iter().all(|r| r.counts == [1000, 1000]), "{rows:?}\n{replay}");
        let totals = report.oracle.totals();
        assert_eq!((totals.lost, totals.unaccounted, totals.late), (0, 0, 0), "{replay}");
        assert!(report.oracle.rows.iter().all(|r| r.counted == r.recount), "{replay}");
    }
    assert_every_seed(name, &seeds, |r| r.oracle.rows.iter().any(|row| row.counts.len() > 1));
    // `duplicates = "explained"` (the fuzzer's base) accepts these copies, named, and breaks
    // no invariant over them.
    let mut explained = scenario(name);
    explained.expect.duplicates = DuplicatesExpectation::Explained;
    let report = crate::harness::run(&explained, seeds[0]);
    let replay = replay(&scenario(name), report.seed);
    assert!(report.passed(), "{:?}\n{replay}", report.oracle.violations);
    crate::harness::assert_no_invariant_broken(&report, &replay);
}

#[test]
fn restoring_an_older_savepoint_a_second_time_commits_its_windows_again_and_the_oracle_names_it() {
    restoring_an_older_savepoint_again(SEEDS);
}
