//! The product's core promise: a run is a pure function of (build, scenario, seed).

use flinksim::Report;

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

/// Different seeds must reorder the run itself, not only rename it: ids (job, attempts,
/// ResourceIDs, the JobManager's session) are drawn from the seed too, so traces that differ only
/// in them would prove nothing. The interleavings compared are the trace lines (time, node,
/// event) with every id masked, less the banner line that names the seed.
#[test]
fn different_seeds_interleave_differently_yet_count_the_same() {
    let scenario = for_minutes(&scenario("steady-state"), 3);
    let seeds = [1, 2, 3, 4, 5, 6];
    let reports = run_seeds(&scenario, &seeds);
    let expected = window_table(&reports[0].oracle.rows);
    for report in &reports {
        crate::harness::assert_passed(report);
        assert_eq!(window_table(&report.oracle.rows), expected, "seed {}", report.seed);
    }
    let interleavings: Vec<(u64, u64)> =
        reports.iter().map(|r| (r.seed, flinksim::trace::hash(&interleaving(r)))).collect();
    let replay = |seed: u64| {
        format!("replay: cargo xtask run-scenario {} --seed {seed} --duration 3m --trace", scenario.name)
    };
    for (i, (a, hash_a)) in interleavings.iter().enumerate() {
        for (b, hash_b) in &interleavings[i + 1..] {
            let alike = format!("seeds {a} and {b} interleave alike (ids masked)");
            assert_ne!(hash_a, hash_b, "{alike}\n{}\n{}", replay(*a), replay(*b));
        }
    }
}

/// The trace without its banner (`scenario <name> seed <seed>`), every id (32 lowercase hex
/// characters, docs/model/cluster.md#ids) replaced by `<id>`.
fn interleaving(report: &Report) -> Vec<String> {
    let banner = format!("scenario {} seed {}", report.scenario, report.seed);
    report.trace.iter().filter(|line| !line.ends_with(&banner)).map(|line| mask_ids(line)).collect()
}

/// `line` with each run of exactly 32 lowercase hex characters replaced by `<id>`.
fn mask_ids(line: &str) -> String {
    let is_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    let mut masked = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find(is_hex) {
        let run = rest[start..].find(|c: char| !is_hex(c)).map_or(rest.len(), |n| start + n);
        masked.push_str(&rest[..start]);
        masked.push_str(if run - start == 32 { "<id>" } else { &rest[start..run] });
        rest = &rest[run..];
    }
    masked.push_str(rest);
    masked
}

#[test]
fn ids_are_masked_and_nothing_else() {
    assert_eq!(
        mask_ids("  1.004087  jobmanager  Job Click Event Count (4e201435646d38b302c948a5483ed598) switched"),
        "  1.004087  jobmanager  Job Click Event Count (<id>) switched"
    );
    // A run of hex characters of another length is not an id.
    assert_eq!(mask_ids("deadbeef checkpoint 12 @ 1489"), "deadbeef checkpoint 12 @ 1489");
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

/// The default suite's determinism check: every scenario file, seeds 1 and 2, each run twice in
/// fresh runtimes, traces compared line by line.
#[test]
fn every_scenario_gives_the_same_trace_twice_for_a_few_seeds() {
    use flinksim::determinism::{self, SeedOutcome};

    let names = flinksim::Scenario::known(&crate::harness::scenarios_dir());
    let scenarios: Vec<flinksim::Scenario> = names.iter().map(|name| scenario(name)).collect();
    // One pool over every (scenario, seed): the check's own runner picks the scenario by seed.
    let seeds: Vec<u64> = (0..scenarios.len() as u64 * 2).collect();
    let run = |_: determinism::Attempt, key: u64| determinism::runtime_trace(&scenarios[key as usize / 2], key % 2 + 1);
    let checks = determinism::check_seeds(&seeds, &[], 2, None, &run, |_| {});
    for check in checks {
        let (name, seed) = (&names[check.seed as usize / 2], check.seed % 2 + 1);
        match &check.outcome {
            SeedOutcome::Alike { lines, .. } => assert!(*lines > 100, "{name} seed {seed}: {lines} lines"),
            other => panic!("{name} seed {seed}: {other:?}\nreplay: cargo xtask check-determinism {name} --seeds {seed}"),
        }
    }
}

/// A planted nondeterminism: the second run's kill comes 1 ms later, as a wall-clock read in the
/// step scheduling would make it. The check names the first line where the runs part.
#[test]
fn a_planted_nondeterminism_is_caught_at_its_first_differing_line() {
    use flinksim::determinism::{self, Attempt, SeedOutcome};
    use std::time::Duration;

    let scenario = scenario("failure-recovery").with_duration(Duration::from_secs(210));
    let mut planted = scenario.clone();
    planted.steps[0].at = flinksim::scenario::StepTime::At(Duration::from_millis(120_001));
    let run = |attempt: Attempt, seed: u64| match attempt {
        Attempt::Runtime(2) => determinism::runtime_trace(&planted, seed),
        _ => determinism::runtime_trace(&scenario, seed),
    };
    let check = determinism::check_seed(8141, &[Attempt::Runtime(1), Attempt::Runtime(2)], &run);
    let SeedOutcome::Differs { first, second, divergence, hashes } = check.outcome else { panic!("{check:?}") };
    assert_eq!((first, second), (Attempt::Runtime(1), Attempt::Runtime(2)));
    assert_ne!(hashes.0, hashes.1);
    let reference = run(Attempt::Runtime(1), 8141).unwrap();
    let kill = reference.iter().position(|l| l.ends_with("step: docker-compose kill taskmanager")).unwrap();
    // Up to the kill both runs are the same; the first difference is at the kill or within the
    // millisecond after it.
    assert!(divergence.line > kill.saturating_sub(5) && divergence.line <= kill + 1, "{divergence:?}");
    let marked = |e: &flinksim::determinism::Excerpt| e.lines.iter().find(|(n, _)| *n == divergence.line).cloned();
    let (a, b) = (marked(&divergence.a).unwrap(), marked(&divergence.b).unwrap());
    assert_ne!(a.1, b.1);
    assert!(a.1.starts_with("   120.") && b.1.starts_with("   120."), "{a:?} {b:?}");
    assert_eq!(divergence.a.lines.len(), 2 * flinksim::determinism::CONTEXT_LINES + 1);
}

/// The madsim mode: madsim's own check passes a real scenario and catches a planted difference.
#[test]
fn madsims_own_check_passes_a_scenario_and_catches_a_planted_difference() {
    use flinksim::determinism::{MadsimCheck, ScenarioSource, madsim_check};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    struct Steady;
    impl ScenarioSource for Steady {
        fn scenario() -> flinksim::Scenario {
            scenario("steady-state").with_duration(Duration::from_secs(60))
        }
    }
    let MadsimCheck::Alike { trace_hash } = madsim_check::<Steady>(8141).unwrap() else { panic!() };
    assert_eq!(trace_hash, run(&Steady::scenario(), 8141).trace_hash);

    // Test-only: the second run builds its scenario with the kill 1 ms later.
    static BUILT: AtomicU32 = AtomicU32::new(0);
    struct Planted;
    impl ScenarioSource for Planted {
        fn scenario() -> flinksim::Scenario {
            let mut scenario = scenario("failure-recovery").with_duration(Duration::from_secs(210));
            if BUILT.fetch_add(1, Ordering::Relaxed) % 3 == 2 {
                scenario.steps[0].at = flinksim::scenario::StepTime::At(Duration::from_millis(120_001));
            }
            scenario
        }
    }
    match madsim_check::<Planted>(8141).unwrap() {
        MadsimCheck::Differs { message } => assert!(message.starts_with("non-determinism detected at"), "{message}"),
        other => panic!("{other:?}"),
    }
}
