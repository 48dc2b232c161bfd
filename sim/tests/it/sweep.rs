//! Sweeps: a range with a known failing seed finds exactly it, shards merge back to the whole,
//! `max_failures` stops early, and a run leaves nothing of itself behind, so that a sweep's
//! memory stays flat.

use std::time::Duration;

use flinksim::Scenario;
use flinksim::sweep::{self, SeedRange, Shard, SweepScenario};
use flinksim::verdict::VerdictClass;

use crate::harness::{for_minutes, inline, replay, scenario};

/// The TaskManager killed at a time drawn from [1m, 2m] under the at-least-once sink, with no
/// copies allowed: a kill in the second or so between a window firing and the next checkpoint
/// completing makes the restored job write that window again. Whether a seed fails is decided by
/// its drawn kill time (the step-time stream, apart from the engine's draws).
fn kill_drawn() -> Scenario {
    let rest = r#"
[[step]]
at = { min = "1m", max = "2m" }
run = "docker-compose kill taskmanager"

[[step]]
at = "2m30s"
run = "docker-compose up -d taskmanager"

[expect]
duplicates = "none"
"#;
    inline("kill-drawn", "3m30s", "", "at-least-once", rest)
}

fn given(scenario: &Scenario) -> Vec<SweepScenario> {
    vec![SweepScenario { given: "kill-drawn.toml".into(), duration: None, scenario: scenario.clone() }]
}

const SEEDS: SeedRange = SeedRange { start: 20, end: 30 };

/// How far past the last window boundary (a multiple of 15 s) the seed's kill falls.
fn past_boundary(scenario: &Scenario, seed: u64) -> Duration {
    let kill = flinksim::run::step_times(scenario, seed)[0].expect("the kill is at a time, not anchored");
    Duration::from_micros((kill.as_micros() % 15_000_000) as u64)
}

#[test]
fn a_sweep_finds_exactly_the_failing_seed_across_shards() {
    let scenario = kill_drawn();
    // Seed 25's kill falls 0.66 s past 1:15, after that window fired and before the next
    // checkpoint; every other seed of the range kills at least 1.3 s past a boundary, once the
    // checkpoint after the firing has completed (seed 27: 1.32 s), or before the window fires.
    for seed in SEEDS.start..SEEDS.end {
        let past = past_boundary(&scenario, seed);
        if seed == 25 {
            assert!(past < Duration::from_secs(1), "seed 25 kills {past:?} after a boundary");
        } else {
            assert!(past > Duration::from_millis(1300), "seed {seed} kills {past:?} after a boundary");
        }
    }
    let shards: Vec<_> = (0..2)
        .map(|index| {
            let shard = Shard { index, count: 2 };
            sweep::sweep(&given(&scenario), SEEDS, shard, 2, None, |_, _, _| {}).unwrap()
        })
        .collect();
    assert_eq!(shards[0].totals().runs() + shards[1].totals().runs(), 10);
    let merged = sweep::merge(shards).unwrap();
    let failures = &merged.scenarios[0].failures;
    assert_eq!(failures.iter().map(|f| f.seed).collect::<Vec<_>>(), [25], "{failures:?}");
    assert_eq!(failures[0].verdict, VerdictClass::Correctness);
    assert!(failures[0].findings[0].message.contains("more than once"), "{:?}", failures[0].findings);
    assert_eq!(merged.totals().passed, 9);
    assert_eq!(merged.verdict(), VerdictClass::Correctness);
}

#[test]
fn a_sweep_stops_after_max_failures() {
    // Every seed fails: no recovery takes under a millisecond.
    let rest = r#"
[[step]]
at = "1m"
run = "docker-compose kill taskmanager"

[[step]]
at = "1m30s"
run = "docker-compose up -d taskmanager"

[expect]
duplicates = "allowed"
recovery_within = "1ms"
"#;
    let scenario = inline("never-in-time", "2m10s", "", "at-least-once", rest);
    let mut seen = 0;
    let report = sweep::sweep(&given(&scenario), SeedRange { start: 0, end: 40 }, Shard::WHOLE, 2, Some(2), |p, _, _| {
        seen = p.done;
    })
    .unwrap();
    let failed = report.totals().failed();
    assert!((2..=4).contains(&failed), "{failed} failures before stopping");
    assert_eq!(report.not_run, 40 - seen);
    assert!(report.not_run >= 36, "{} not run", report.not_run);
}

#[test]
fn a_run_leaves_nothing_of_itself_behind() {
    // A steady run, and one whose TaskManager is killed and started again (a restarted node, a
    // restored job): after each, the runtime is dropped and the run's trace must go with it.
    // Anything still holding it (a task pending when the run ended, a node's state in a
    // reference cycle) would stay for the rest of the process, once per seed of a sweep.
    let seed = 3;
    for scenario in [for_minutes(&scenario("steady-state"), 1), kill_drawn()] {
        let freed = flinksim::run::run_frees_its_memory(&scenario, seed).unwrap_or_else(|e| panic!("{e}"));
        assert!(freed, "the run's trace outlived its runtime\n{}", replay(&scenario, seed));
    }
}
