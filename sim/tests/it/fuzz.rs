//! The fuzzer: a bounded fuzz under a fixed seed passes on the engine as it is; a failure shrinks
//! to a minimal plan whose regression file replays to the same trace; every planted bug is found
//! and shrunk.

use std::sync::Arc;
use std::time::Duration;

use flinksim::Scenario;
use flinksim::fuzz::{self, FaultKind, FuzzConfig, NarrowWindow, Progress};
use flinksim::plant::{PlantedBug, Plants};
use flinksim::scenario::Service;

use crate::harness::scenario;

/// The default suite's fuzz budget: this many cases under this seed, on two threads (CI's cores).
/// `cargo xtask fuzz --cases 10000` runs more.
const CI_CASES: u32 = 12;
const CI_SEED: u64 = 1;

fn quiet(_: Progress) {}

#[test]
fn a_bounded_fuzz_of_the_exactly_once_job_passes_and_reaches_the_narrow_windows() {
    let config = FuzzConfig::new(scenario("fuzz-exactly-once"), CI_CASES, 2, CI_SEED);
    let report = fuzz::fuzz(&config, &quiet).unwrap();
    if let Some(regression) = &report.regression {
        panic!(
            "case {} failed: {}\nshrunk plan:\n{}\nreplay: cargo xtask fuzz --cases {CI_CASES} --seed {CI_SEED}",
            regression.case, regression.failure, regression.toml
        );
    }
    assert_eq!(report.cases, CI_CASES);
    assert_eq!(report.passed + report.discarded, CI_CASES);
    assert!(report.discarded < CI_CASES / 2, "most plans must be runnable: {} discarded", report.discarded);
    // The strategies aim at the windows: a fuzz this size lands faults in each.
    for window in NarrowWindow::ALL {
        assert!(report.coverage.in_window(window) > 0, "no fault landed in {window}: {:?}", report.coverage);
    }
}

/// A case whose windows come out twice for a cause Flink shares (here every case runs the
/// savepoint restored a second time, whatever its plan) passes the base's `duplicates =
/// "explained"` and is counted, so that a long fuzz goes on past it.
#[test]
fn cases_with_copies_flink_shares_pass_the_base_and_are_counted() {
    let mut rewound = scenario("exactly-once-restore-older-savepoint-again");
    rewound.expect.duplicates = scenario("fuzz-exactly-once").expect.duplicates;
    let mut config = FuzzConfig::new(scenario("fuzz-exactly-once"), 2, 2, CI_SEED);
    config.run = Arc::new(move |_, seed| flinksim::run(&rewound, seed));
    let report = fuzz::fuzz(&config, &quiet).unwrap();
    assert!(report.regression.is_none(), "{:?}", report.regression.map(|r| r.failure));
    assert_eq!((report.passed, report.shared_failures), (2, 2));
}

/// A stand-in bug (any TaskManager killed fails the run) found, shrunk to a single kill that
/// lasts the shortest time a fault may, written, and replayed from the file.
#[test]
fn a_failure_shrinks_to_one_short_fault_whose_file_replays_to_the_same_trace() {
    // A minute is the shortest base that holds a fault and its tail: shrinking runs many times.
    let base = scenario("fuzz-exactly-once").with_duration(Duration::from_secs(60));
    let mut config = FuzzConfig::new(base, 20, 2, 7);
    config.judge = Arc::new(|report| report.steps.iter().any(|(_, step)| step.starts_with("docker-compose kill taskmanager")));
    let report = fuzz::fuzz(&config, &quiet).unwrap();
    let regression = report.regression.expect("some case kills a TaskManager");
    let faults = &regression.shrunk.faults;
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert!(matches!(faults[0].kind, FaultKind::Kill(Service::TaskManager(_))), "{faults:?}");
    assert_eq!(faults[0].lasts, Duration::from_millis(200), "shrunk to the shortest fault");
    assert!(regression.found.faults.len() >= faults.len());

    let dir = std::env::temp_dir().join(format!("flinksim-fuzz-{}", std::process::id()));
    let path = fuzz::write_regression(&regression, &dir).unwrap();
    let replayed = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}\n{}", regression.toml));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(replayed.seed, Some(regression.seed));
    assert_eq!(fuzz::FaultPlan::from_scenario(&replayed).unwrap(), regression.shrunk);
    let report = flinksim::run(&replayed, regression.seed).unwrap();
    assert_eq!(report.trace_hash, regression.trace_hash, "the file replays the shrunk run exactly");
}

/// `cargo xtask fuzz`'s default budget: a planted bug must show within this many cases.
const DEFAULT_CASES: u32 = 100;

/// The fuzzer finds every planted bug (docs/planted-bugs.md) within its default budget, on the
/// exactly-once base, and shrinks the failure to at most three faults: the README's table of
/// planted bugs lists the cases each took and the plan it shrank to.
#[test]
fn the_fuzzer_finds_every_planted_bug_within_its_default_budget_and_shrinks_it_to_three_faults_at_most() {
    let mut missed = Vec::new();
    for bug in PlantedBug::ALL {
        let mut base = scenario("fuzz-exactly-once");
        base.plants = Plants::of([bug]);
        let replay = format!("replay: cargo xtask fuzz --plant {bug} --cases {DEFAULT_CASES} --seed {CI_SEED}");
        let report = fuzz::fuzz(&FuzzConfig::new(base, DEFAULT_CASES, 2, CI_SEED), &quiet).unwrap();
        match &report.regression {
            None => missed.push(format!("{bug}: not found in {} cases\n{replay}", report.cases)),
            Some(regression) if regression.shrunk.faults.len() > 3 => missed.push(format!(
                "{bug}: shrunk to {} faults, not 3 at most\n{}\n{replay}",
                regression.shrunk.faults.len(),
                regression.toml
            )),
            Some(_) => {}
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n\n"));
}
