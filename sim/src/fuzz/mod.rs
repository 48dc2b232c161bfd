//! Fault-timing fuzzing (docs/fuzzing.md): fault plans drawn by proptest strategies
//! ([`strategy`]) run against a base scenario (the exactly-once job by default) and judged by the
//! oracle; the first failing case is shrunk to a minimal plan, written as a scenario file with its
//! seed, which `cargo xtask run-scenario regressions/<name> --seed N` replays exactly.
//!
//! Case `k` of a fuzz under seed `s` is a pure function of (`s`, `k`): its plan comes from a
//! proptest runner seeded from both, its run seed too. Cases run on many threads; the verdict
//! of the whole is the lowest-numbered failing case, whatever the threads' timing. proptest's own
//! persistence of failures is not used: a failure is kept as a regression file instead.

pub mod coverage;
pub mod plan;
pub mod shrink;
pub mod strategy;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

pub use coverage::{Coverage, NarrowWindow};
pub use plan::{Family, Fault, FaultKind, FaultPlan, FaultTime, PlanError};
pub use strategy::Shape;

use crate::run::{Report, RunError};
use crate::scenario::{Scenario, ScenarioError};

/// Runs one scenario under one seed: [`crate::run::run`] by default. A fuzz that must run the
/// engine another way (with deliberate bugs switched on) passes its own.
pub type RunFn = Arc<dyn Fn(&Scenario, u64) -> Result<Report, RunError> + Send + Sync>;

/// Says whether a run failed: the oracle's verdict by default.
pub type JudgeFn = Arc<dyn Fn(&Report) -> bool + Send + Sync>;

/// Reads a wall clock (time since some fixed origin), for the command that measures what a case
/// costs: the simulator itself never reads one, so by default it reads zero.
pub type WallClockFn = Arc<dyn Fn() -> Duration + Send + Sync>;

/// One fuzz: what to run, how many cases, on how many threads.
#[derive(Clone)]
pub struct FuzzConfig {
    /// The scenario whose cluster, job and expectations every case keeps; its steps are replaced
    /// by each case's plan.
    pub base: Scenario,
    /// How many cases.
    pub cases: u32,
    /// Threads.
    pub jobs: usize,
    /// The fuzz's seed: the same seed draws the same plans and run seeds.
    pub seed: u64,
    /// The most runs shrinking a failure may take.
    pub shrink_runs: u32,
    /// How a case runs (with planted bugs, say).
    pub run: RunFn,
    /// Whether a run failed.
    pub judge: JudgeFn,
    /// The wall clock the case timings read (none by default: they read zero).
    pub wall_clock: WallClockFn,
}

impl FuzzConfig {
    /// A fuzz of `base` that runs [`crate::run::run`] and fails a case on the oracle's verdict or
    /// a broken invariant.
    pub fn new(base: Scenario, cases: u32, jobs: usize, seed: u64) -> FuzzConfig {
        FuzzConfig {
            base,
            cases,
            jobs,
            seed,
            shrink_runs: 300,
            run: Arc::new(crate::run::run),
            // A case fails on the oracle's verdict or on an invariant its trace breaks: the
            // invariants catch a commit-protocol mistake even where the faults spared the results.
            judge: Arc::new(|report| !report.passed() || !report.invariants.is_empty()),
            wall_clock: Arc::new(|| Duration::ZERO),
        }
    }
}

/// Why a fuzz could not run.
#[derive(Debug, thiserror::Error)]
pub enum FuzzError {
    /// The base scenario is too short to hold a fault and the fault-free tail after it.
    #[error(
        "{}: the base scenario is too short to fuzz: it must last at least {} (faults begin from {}, last up to {}, and {} of tail follow)",
        path.display(),
        crate::scenario::format_duration(*needed),
        crate::scenario::format_duration(strategy::EARLIEST),
        crate::scenario::format_duration(strategy::LASTS_MAX),
        crate::scenario::format_duration(crate::liveness::TAIL_MIN)
    )]
    TooShort {
        /// The base scenario's file.
        path: PathBuf,
        /// The shortest duration accepted.
        needed: Duration,
    },
    /// A plan written as a scenario did not read back: a bug in the fuzzer.
    #[error("a fault plan did not read back as a scenario: {0}")]
    Unreadable(Box<ScenarioError>),
    /// The regression file could not be written.
    #[error("cannot write {}: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

/// What one case did.
#[derive(Clone, Debug)]
pub struct CaseOutcome {
    /// The case's number.
    pub case: u32,
    /// Its run seed.
    pub seed: u64,
    /// Its plan.
    pub plan: FaultPlan,
    /// How it ended.
    pub verdict: CaseVerdict,
    /// Where its faults landed.
    pub coverage: Coverage,
    /// Wall time spent on the run itself.
    pub run_wall: Duration,
    /// Wall time spent on the case as a whole (drawing, rendering, running, judging).
    pub case_wall: Duration,
    /// Whether zombies' transactions held `read_committed` readers, and the oracle fenced them
    /// (docs/oracle.md#held-by-zombies).
    pub zombies_fenced: bool,
    /// Whether the base accepted a failure Flink shares that the oracle named
    /// ([`Violation::shared_with_flink`](crate::oracle::Violation::shared_with_flink)): a window
    /// written twice by a savepoint restored again or a stop that failed past its commits
    /// (`duplicates = "explained"`), or results lost with a transaction an older attempt's late
    /// restore aborted (`loss = "explained"`).
    pub shared_failure: bool,
}

/// How one case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseVerdict {
    /// The oracle accepted the run.
    Passed,
    /// The oracle rejected it (or the simulation panicked): the message says why.
    Failed(String),
    /// The plan broke the scenario rules (a fault left without its tail): not run.
    Discarded(String),
}

/// A failure shrunk and written out.
#[derive(Clone, Debug)]
pub struct Regression {
    /// The failing case.
    pub case: u32,
    /// Its run seed (also in the file).
    pub seed: u64,
    /// The plan first found.
    pub found: FaultPlan,
    /// The plan after shrinking.
    pub shrunk: FaultPlan,
    /// Runs spent shrinking.
    pub shrink_runs: u32,
    /// Wall time spent shrinking.
    pub shrink_wall: Duration,
    /// The shrunk plan's failure, as the oracle put it.
    pub failure: String,
    /// The shrunk run's trace hash: the regression file replays to it.
    pub trace_hash: u64,
    /// The scenario file's text.
    pub toml: String,
    /// Its name under scenarios/ (`regressions/<name>`), once written.
    pub name: String,
}

/// What a fuzz found.
#[derive(Clone, Debug, Default)]
pub struct FuzzReport {
    /// Cases run (discarded ones included).
    pub cases: u32,
    /// Cases the oracle accepted.
    pub passed: u32,
    /// Cases whose plan broke the scenario rules.
    pub discarded: u32,
    /// Cases where zombies' transactions held `read_committed` readers (behaviour the real
    /// systems share, which the base may accept).
    pub zombie_holds: u32,
    /// Passing cases that showed a failure Flink shares which the base accepts with
    /// `duplicates` or `loss = "explained"` ([`CaseOutcome::shared_failure`]).
    pub shared_failures: u32,
    /// Where the faults landed, over every case.
    pub coverage: Coverage,
    /// Wall time of the runs themselves, summed over cases.
    pub run_wall: Duration,
    /// Wall time of the cases as a whole, summed.
    pub case_wall: Duration,
    /// The lowest-numbered failing case, shrunk; `None` if every case passed.
    pub regression: Option<Regression>,
}

impl FuzzReport {
    /// The cost of drawing, rendering and judging a case over the run itself, as a fraction of
    /// the run's wall time (0.05 is 5%).
    pub fn overhead(&self) -> f64 {
        let run = self.run_wall.as_secs_f64();
        if run == 0.0 { 0.0 } else { (self.case_wall.as_secs_f64() - run) / run }
    }
}

/// Progress of a fuzz, for a command to show.
#[derive(Clone, Copy, Debug)]
pub enum Progress {
    /// A case ended.
    Case {
        /// Cases done so far.
        done: u32,
        /// Whether this one failed.
        failed: bool,
    },
    /// A shrinking run ended.
    Shrink {
        /// Shrinking runs so far.
        runs: u32,
        /// Faults in the smallest failing plan so far.
        faults: usize,
    },
}

/// The proptest runner that draws case `case`'s plan: seeded from the fuzz seed and the case.
fn case_runner(seed: u64, case: u32) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..12].copy_from_slice(&case.to_le_bytes());
    bytes[12..16].copy_from_slice(b"plan");
    TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Case `case`'s run seed, below 2^63 so that a scenario file's `seed` (a TOML integer) holds it.
pub fn case_seed(seed: u64, case: u32) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(&case.to_le_bytes(), seed) >> 1
}

/// Case `case`'s plan.
pub fn case_plan(shape: Shape, seed: u64, case: u32) -> FaultPlan {
    draw(shape, seed, case).current()
}

fn draw(shape: Shape, seed: u64, case: u32) -> Box<dyn ValueTree<Value = FaultPlan>> {
    let mut runner = case_runner(seed, case);
    // The strategies never reject a value, so drawing cannot fail.
    Box::new(strategy::plans(shape).new_tree(&mut runner).expect("fault-plan strategies reject nothing"))
}

/// The base scenario with the plan's steps, read back as a scenario file would be.
pub fn scenario_of(base: &Scenario, plan: &FaultPlan) -> Result<Scenario, FuzzError> {
    let mut scenario = Scenario::parse(&plan.to_toml(base), &base.path).map_err(|e| FuzzError::Unreadable(Box::new(e)))?;
    // Planted bugs are never in a file: they come from the command line, so the base carries them.
    scenario.plants = base.plants;
    Ok(scenario)
}

/// Why a run the judge failed is wrong: the oracle's violations, then where the trace first
/// broke an invariant.
fn failure_text(report: &Report) -> String {
    let why = report
        .oracle
        .violations
        .iter()
        .map(ToString::to_string)
        .chain(report.invariants.first().map(|finding| format!("first wrong at {finding}")))
        .collect::<Vec<_>>()
        .join("; ");
    if why.is_empty() { "judged failing".to_owned() } else { why }
}

/// Runs one plan; the verdict and the report (when it ran).
fn run_plan(config: &FuzzConfig, plan: &FaultPlan, seed: u64) -> Result<(CaseVerdict, Option<Report>), FuzzError> {
    let scenario = scenario_of(&config.base, plan)?;
    Ok(match (config.run)(&scenario, seed) {
        Ok(report) if (config.judge)(&report) => (CaseVerdict::Failed(failure_text(&report)), Some(report)),
        Ok(report) => (CaseVerdict::Passed, Some(report)),
        Err(RunError::BadInput(e)) => (CaseVerdict::Discarded(e.to_string()), None),
        Err(e @ RunError::Panicked { .. }) => (CaseVerdict::Failed(e.to_string()), None),
    })
}

/// Runs case `case`.
pub fn run_case(config: &FuzzConfig, shape: Shape, case: u32) -> Result<CaseOutcome, FuzzError> {
    let clock = &config.wall_clock;
    let started = clock();
    let plan = case_plan(shape, config.seed, case);
    let seed = case_seed(config.seed, case);
    let scenario = scenario_of(&config.base, &plan)?;
    let run_started = clock();
    let outcome = (config.run)(&scenario, seed);
    let run_wall = clock().saturating_sub(run_started);
    let (verdict, coverage, zombies_fenced, shared_failure) = match outcome {
        Ok(report) => {
            let coverage = Coverage::of(&report.events);
            let fenced = !report.oracle.fenced.is_empty();
            let shared = report.oracle.accepted.iter().any(crate::oracle::Violation::shared_with_flink);
            if (config.judge)(&report) {
                (CaseVerdict::Failed(failure_text(&report)), coverage, fenced, shared)
            } else {
                (CaseVerdict::Passed, coverage, fenced, shared)
            }
        }
        Err(RunError::BadInput(e)) => (CaseVerdict::Discarded(e.to_string()), Coverage::default(), false, false),
        Err(e @ RunError::Panicked { .. }) => (CaseVerdict::Failed(e.to_string()), Coverage::default(), false, false),
    };
    let case_wall = clock().saturating_sub(started);
    Ok(CaseOutcome { case, seed, plan, verdict, coverage, run_wall, case_wall, zombies_fenced, shared_failure })
}

/// Runs the fuzz: every case (no new one once a case failed), then shrinks the lowest-numbered
/// failure. The regression is not written here: see [`write_regression`].
pub fn fuzz(config: &FuzzConfig, progress: &(dyn Fn(Progress) + Sync)) -> Result<FuzzReport, FuzzError> {
    let shape = Shape::of(&config.base).ok_or_else(|| FuzzError::TooShort {
        path: config.base.path.clone(),
        needed: strategy::EARLIEST + Duration::from_secs(1) + crate::liveness::TAIL_MIN + strategy::LASTS_MAX
            + strategy::ANCHOR_DELAY_MAX
            + Duration::from_secs(1),
    })?;
    let stop = AtomicBool::new(false);
    let mut report = FuzzReport::default();
    let mut first_failure: Option<CaseOutcome> = None;
    let mut error = None;
    crate::sweep::parallel(
        config.cases as usize,
        config.jobs,
        &stop,
        |i| run_case(config, shape, i as u32),
        |outcome| {
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(e) => {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    error.get_or_insert(e);
                    return;
                }
            };
            report.cases += 1;
            report.coverage.add(&outcome.coverage);
            report.run_wall += outcome.run_wall;
            report.case_wall += outcome.case_wall;
            report.zombie_holds += u32::from(outcome.zombies_fenced);
            let passed = matches!(outcome.verdict, CaseVerdict::Passed);
            report.shared_failures += u32::from(outcome.shared_failure && passed);
            let failed = matches!(outcome.verdict, CaseVerdict::Failed(_));
            match outcome.verdict {
                CaseVerdict::Passed => report.passed += 1,
                CaseVerdict::Discarded(_) => report.discarded += 1,
                CaseVerdict::Failed(_) => {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    if first_failure.as_ref().is_none_or(|f| outcome.case < f.case) {
                        first_failure = Some(outcome);
                    }
                }
            }
            progress(Progress::Case { done: report.cases, failed });
        },
    );
    if let Some(e) = error {
        return Err(e);
    }
    if let Some(failure) = first_failure {
        report.regression = Some(shrink(config, &failure, progress)?);
    }
    Ok(report)
}

/// Shrinks a failing case ([`shrink::shrink`]): fewer faults, shorter, earlier; every candidate
/// runs under the case's own seed.
fn shrink(
    config: &FuzzConfig,
    failure: &CaseOutcome,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Regression, FuzzError> {
    let started = (config.wall_clock)();
    let shrunk = shrink::shrink(
        failure.plan.clone(),
        config.shrink_runs,
        |plan| Ok(matches!(run_plan(config, plan, failure.seed)?.0, CaseVerdict::Failed(_))),
        |plan, runs| progress(Progress::Shrink { runs, faults: plan.faults.len() }),
    )?;
    let (best, runs) = (shrunk.plan, shrunk.runs);
    // The regression file's own run: its failure and trace hash are what the file replays (the
    // trace names the scenario, so the run is of the file as written, under its name).
    let name = format!("{}-{}", config.base.name, failure.seed);
    let toml = regression_toml(&config.base, &best, &name, failure.seed, config.seed, failure.case);
    let path = config.base.path.with_file_name(format!("regressions/{name}.toml"));
    let mut scenario = Scenario::parse(&toml, &path).map_err(|e| FuzzError::Unreadable(Box::new(e)))?;
    scenario.plants = config.base.plants;
    let (failure_text, trace_hash) = match (config.run)(&scenario, failure.seed) {
        Ok(report) => (failure_text(&report), report.trace_hash),
        Err(e) => (e.to_string(), 0),
    };
    Ok(Regression {
        case: failure.case,
        seed: failure.seed,
        found: failure.plan.clone(),
        shrink_runs: runs,
        shrink_wall: (config.wall_clock)().saturating_sub(started),
        failure: failure_text,
        trace_hash,
        toml,
        shrunk: best,
        name: format!("regressions/{name}"),
    })
}

/// The regression file: the base scenario renamed, with the shrunk plan's steps and the seed.
fn regression_toml(base: &Scenario, plan: &FaultPlan, name: &str, seed: u64, fuzz_seed: u64, case: u32) -> String {
    let scenario = Scenario {
        name: name.to_owned(),
        description: format!(
            "Found by cargo xtask fuzz --scenario {} --seed {fuzz_seed} (case {case}), shrunk to {} fault(s); replays under its seed.",
            base.name,
            plan.faults.len()
        ),
        seed: Some(seed),
        ..base.clone()
    };
    format!(
        "# Replay: cargo xtask run-scenario regressions/{name} --seed {seed}\n{}",
        plan.to_toml(&scenario)
    )
}

/// Writes the regression under `scenarios_dir/regressions/`; returns its path.
pub fn write_regression(regression: &Regression, scenarios_dir: &Path) -> Result<PathBuf, FuzzError> {
    let path = scenarios_dir.join(format!("{}.toml", regression.name));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(path.parent().unwrap_or(scenarios_dir))?;
        std::fs::write(&path, &regression.toml)
    };
    write().map_err(|error| FuzzError::Write { path: path.clone(), error })?;
    Ok(path)
}
