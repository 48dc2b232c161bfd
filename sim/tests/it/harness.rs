//! What the tests share: loading scenarios, running seeds on all cores, and the window table.

use std::path::PathBuf;
use std::time::Duration;

use flinksim::oracle::{RowStatus, WindowRow};
use flinksim::{Report, Scenario};

/// The repository's scenarios/ folder.
pub fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// Loads `scenarios/<name>.toml`.
pub fn scenario(name: &str) -> Scenario {
    let path = Scenario::resolve(name, &scenarios_dir()).expect("the scenario exists");
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs one seed; a panic inside the simulation fails the test with the replay command.
pub fn run(scenario: &Scenario, seed: u64) -> Report {
    flinksim::run(scenario, seed).unwrap_or_else(|e| {
        panic!("{e}\nreplay: cargo xtask run-scenario {} --seed {seed}", scenario.name)
    })
}

/// Runs many seeds spread over the machine's cores, one fresh runtime (and thread) per seed.
pub fn run_seeds(scenario: &Scenario, seeds: &[u64]) -> Vec<Report> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(seeds.len().max(1));
    let chunks: Vec<Vec<u64>> = (0..workers)
        .map(|w| seeds.iter().copied().skip(w).step_by(workers).collect())
        .collect();
    let mut reports: Vec<Report> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| scope.spawn(|| chunk.iter().map(|&seed| run(scenario, seed)).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a worker thread panicked")).collect()
    });
    reports.sort_by_key(|r| r.seed);
    reports
}

/// Asserts the oracle accepted the run, naming the seed that replays it otherwise.
pub fn assert_passed(report: &Report) {
    assert!(
        report.passed(),
        "the oracle failed the run: {:?}\nreplay: cargo xtask run-scenario {} --seed {}",
        report.oracle.violations,
        report.scenario,
        report.seed
    );
    assert_no_invariant_broken(report, &format!("cargo xtask run-scenario {} --seed {}", report.scenario, report.seed));
}

/// Asserts a passing run's trace breaks no invariant (docs/oracle.md#invariants-over-the-trace):
/// every test that accepts a run also checks that the invariants raise no false alarm on it.
pub fn assert_no_invariant_broken(report: &Report, replay: &str) {
    assert!(
        report.invariants.is_empty(),
        "a passing run breaks invariants: {:?}\nreplay: {replay}",
        report.invariants
    );
}

/// A scenario written inline, as a user writes the file: `duration` of simulated time,
/// `cluster` keys (the start-up period is 0 s), the playground's checkpointed job with `sink`,
/// then `rest` (more tables, the steps and `[expect]`).
pub fn inline(name: &str, duration: &str, cluster: &str, sink: &str, rest: &str) -> Scenario {
    let text = format!(
        r#"
name = "{name}"
duration = "{duration}"
[cluster]
startup_period = "0s"
{cluster}
[job]
run = "flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing --event-time"
sink = "{sink}"
{rest}
"#
    );
    Scenario::parse(&text, std::path::Path::new(&format!("{name}.toml"))).unwrap_or_else(|e| panic!("{e}"))
}

/// `[[step]]` tables, one per (at, run), in the scenario format.
pub fn steps(steps: &[(&str, &str)]) -> String {
    steps.iter().map(|(at, run)| format!("\n[[step]]\nat = \"{at}\"\nrun = \"{run}\"\n")).collect()
}

/// The command that replays `seed` of `scenario`. A scenario written inline in a test has no
/// file: its text comes first, to be saved under its name.
pub fn replay(scenario: &Scenario, seed: u64) -> String {
    let name = &scenario.name;
    if scenarios_dir().join(format!("{name}.toml")).exists() {
        format!("replay: cargo xtask run-scenario {name} --seed {seed}")
    } else {
        let text = scenario.to_toml();
        format!("{text}\nreplay (the scenario above saved as {name}.toml): cargo xtask run-scenario {name}.toml --seed {seed}")
    }
}

/// [`assert_passed`] for a run of `scenario`, replayed by [`replay`] (inline scenarios too).
pub fn assert_passed_as(scenario: &Scenario, report: &Report) {
    let replay = replay(scenario, report.seed);
    assert!(report.passed(), "the oracle failed the run: {:?}\n{replay}", report.oracle.violations);
    assert_no_invariant_broken(report, &replay);
}

/// Whether some line of the run's trace contains `text`.
pub fn traced(report: &Report, text: &str) -> bool {
    report.trace.iter().any(|line| line.contains(text))
}

/// The window results as comparable text: one line per (window, page) with its copies' counts.
pub fn window_table(rows: &[WindowRow]) -> String {
    rows.iter()
        .map(|r| {
            let counts: Vec<String> = r.counts.iter().map(u64::to_string).collect();
            format!(
                "{:>7} {:<7} count {:<11} input {} counted {} late {} lost {} unaccounted {} {:?}{}",
                r.window_start_ms / 1000,
                r.page,
                counts.join(","),
                r.recount,
                r.counted,
                r.late,
                r.lost,
                r.unaccounted,
                r.status,
                if r.expected && !matches!(r.status, RowStatus::Ok | RowStatus::EmptyAtSource) { " (expected)" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A copy of `scenario` running `minutes` of simulated time.
pub fn for_minutes(scenario: &Scenario, minutes: u64) -> Scenario {
    scenario.clone().with_duration(Duration::from_secs(60 * minutes))
}

/// Runs scenario file `name` over `seeds` and fails, listing every failing seed with its
/// violations and the command that replays it, unless each run passes, breaks no invariant, and
/// `holds` for it.
pub fn assert_every_seed(name: &str, seeds: &[u64], holds: impl Fn(&Report) -> bool) {
    let reports = run_seeds(&scenario(name), seeds);
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed() || !r.invariants.is_empty() || !holds(r))
        .map(|r| format!("seed {}: {:?} {:?}", r.seed, r.oracle.violations, r.invariants))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} seeds failed (replay: cargo xtask run-scenario {name} --seed N):\n{}",
        failed.len(),
        reports.len(),
        failed.join("\n")
    );
}
