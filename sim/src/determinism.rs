//! The determinism check: one seed run several times (in fresh runtimes, and in a fresh process
//! through a runner the caller gives) must give byte-identical traces. Where two runs differ, the
//! check names the first differing trace line, with a few lines of context from each run.
//!
//! Also madsim's own check ([`madsim_check`]): madsim logs every draw of its random generator,
//! with the simulated time, and a second run must draw alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::Scenario;
use crate::run::RunError;
use crate::sweep;

/// Lines of context shown before and after the first differing line.
pub const CONTEXT_LINES: usize = 3;

/// How one run of a check was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Attempt {
    /// The n-th run in a fresh runtime on a fresh thread of this process (from 1).
    Runtime(u8),
    /// A run in a fresh process of the same executable.
    Process,
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attempt::Runtime(n) => write!(f, "run {n} (fresh runtime)"),
            Attempt::Process => f.write_str("run in a fresh process"),
        }
    }
}

/// A few numbered lines of one trace around the first difference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excerpt {
    /// (line number from 1, text), the differing line among them unless the trace ended first.
    pub lines: Vec<(usize, String)>,
    /// How many lines the whole trace has.
    pub total: usize,
}

/// Where two traces first differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// The first line (numbered from 1) that differs, or that one trace lacks.
    pub line: usize,
    /// Trace A around it.
    pub a: Excerpt,
    /// Trace B around it.
    pub b: Excerpt,
}

/// The first line where `a` and `b` differ (one ending early counts), with `context` lines
/// either side; `None` when they are identical.
pub fn first_divergence(a: &[String], b: &[String], context: usize) -> Option<Divergence> {
    let index = match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => i,
        None if a.len() == b.len() => return None,
        None => a.len().min(b.len()),
    };
    let excerpt = |trace: &[String]| {
        let from = index.saturating_sub(context);
        let to = (index + context + 1).min(trace.len());
        Excerpt {
            lines: (from..to).map(|i| (i + 1, trace[i].clone())).collect(),
            total: trace.len(),
        }
    };
    Some(Divergence { line: index + 1, a: excerpt(a), b: excerpt(b) })
}

/// A trace file as lines: what `run-scenario --trace-out` writes, one event a line.
pub fn read_trace(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

/// One seed's check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedCheck {
    /// The seed.
    pub seed: u64,
    /// The runs made, in order.
    pub attempts: Vec<Attempt>,
    /// What they showed.
    pub outcome: SeedOutcome,
}

/// What the runs of one seed showed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeedOutcome {
    /// Every run gave the same trace.
    Alike {
        /// Its hash.
        trace_hash: u64,
        /// Its length in lines.
        lines: usize,
    },
    /// Two runs differ.
    Differs {
        /// The reference run.
        first: Attempt,
        /// The run that differs from it.
        second: Attempt,
        /// Their trace hashes.
        hashes: (u64, u64),
        /// Where.
        divergence: Divergence,
    },
    /// A run could not complete (a panic, or the fresh process failed).
    Failed {
        /// The run.
        attempt: Attempt,
        /// Why.
        message: String,
    },
}

impl SeedCheck {
    /// Whether every run gave the same trace.
    pub fn alike(&self) -> bool {
        matches!(self.outcome, SeedOutcome::Alike { .. })
    }
}

/// Makes one run of a seed and returns its trace lines, or why it could not.
pub type Runner<'a> = dyn Fn(Attempt, u64) -> Result<Vec<String>, String> + Sync + 'a;

/// The trace of one run of `scenario` under `seed` in a fresh runtime ([`crate::run()`]).
pub fn runtime_trace(scenario: &Scenario, seed: u64) -> Result<Vec<String>, String> {
    match crate::run(scenario, seed) {
        Ok(report) => Ok(report.trace),
        Err(RunError::BadInput(error)) => Err(error.to_string()),
        Err(error) => Err(error.to_string()),
    }
}

/// Runs `seed` once per attempt, in order, and compares each trace with the first; stops at the
/// first run that differs or fails.
pub fn check_seed(seed: u64, attempts: &[Attempt], run: &Runner<'_>) -> SeedCheck {
    let mut done = Vec::new();
    let mut reference: Option<(Attempt, Vec<String>, u64)> = None;
    for &attempt in attempts {
        done.push(attempt);
        let trace = match run(attempt, seed) {
            Ok(trace) => trace,
            Err(message) => {
                return SeedCheck { seed, attempts: done, outcome: SeedOutcome::Failed { attempt, message } };
            }
        };
        let hash = crate::trace::hash(&trace);
        match &reference {
            None => reference = Some((attempt, trace, hash)),
            Some((first, lines, first_hash)) => {
                if let Some(divergence) = first_divergence(lines, &trace, CONTEXT_LINES) {
                    let outcome =
                        SeedOutcome::Differs { first: *first, second: attempt, hashes: (*first_hash, hash), divergence };
                    return SeedCheck { seed, attempts: done, outcome };
                }
            }
        }
    }
    let (trace_hash, lines) = reference.map_or((0, 0), |(_, lines, hash)| (hash, lines.len()));
    SeedCheck { seed, attempts: done, outcome: SeedOutcome::Alike { trace_hash, lines } }
}

/// The seeds of `seeds` that also run in a fresh process: `count` of them, spread evenly
/// (always the first), so that the sample is the same every time.
pub fn process_sample(seeds: &[u64], count: usize) -> Vec<u64> {
    if count == 0 || seeds.is_empty() {
        return Vec::new();
    }
    let count = count.min(seeds.len());
    (0..count).map(|i| seeds[i * seeds.len() / count]).collect()
}

/// Checks every seed on `jobs` threads: two runs in fresh runtimes each, and a third in a fresh
/// process for the seeds in `in_process`. Stops taking new seeds after `max_differences` seeds
/// that differ or fail. `on_check` sees each seed's check as it ends (in the order they end);
/// the result is in seed order.
pub fn check_seeds(
    seeds: &[u64],
    in_process: &[u64],
    jobs: usize,
    max_differences: Option<usize>,
    run: &Runner<'_>,
    mut on_check: impl FnMut(&SeedCheck),
) -> Vec<SeedCheck> {
    let stop = AtomicBool::new(false);
    let mut differing = 0;
    let mut checks = Vec::new();
    sweep::parallel(
        seeds.len(),
        jobs,
        &stop,
        |i| {
            let seed = seeds[i];
            let mut attempts = vec![Attempt::Runtime(1), Attempt::Runtime(2)];
            if in_process.contains(&seed) {
                attempts.push(Attempt::Process);
            }
            check_seed(seed, &attempts, run)
        },
        |check| {
            on_check(&check);
            if !check.alike() {
                differing += 1;
                if max_differences.is_some_and(|max| differing >= max) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            checks.push(check);
        },
    );
    checks.sort_by_key(|c| c.seed);
    checks
}

/// Gives madsim's check the scenario to run: madsim takes a plain function (no captures), which
/// builds each run's future, so the scenario comes from a type's function instead of a closure.
pub trait ScenarioSource {
    /// The scenario to run; called once per run, and must give the same scenario each time.
    fn scenario() -> Scenario;
}

/// What madsim's own check found for one seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MadsimCheck {
    /// The second run drew from the random generator as the first did; its trace hash.
    Alike {
        /// The trace hash of the second run.
        trace_hash: u64,
    },
    /// madsim saw the second run draw differently (`non-determinism detected at <time>`).
    Differs {
        /// madsim's message.
        message: String,
    },
    /// A run panicked for another reason.
    Panicked {
        /// The panic's message.
        message: String,
    },
}

fn madsim_run<S: ScenarioSource>() -> Pin<Box<dyn Future<Output = u64>>> {
    let scenario = S::scenario();
    Box::pin(async move {
        let seed = madsim::runtime::Handle::current().seed();
        let (_, events) = crate::run::simulate(scenario, seed, Arc::default()).await;
        crate::trace::hash(&crate::trace::lines(&events))
    })
}

/// Runs `S`'s scenario under `seed` with madsim's own determinism check
/// (`madsim::runtime::Runtime::check_determinism`): a first run logs every random draw with the
/// simulated time, a second run must draw alike. It sees only draws and their timing, so it is
/// a complement to comparing traces, not a replacement.
pub fn madsim_check<S: ScenarioSource>(seed: u64) -> Result<MadsimCheck, RunError> {
    crate::liveness::check_tail(&S::scenario()).map_err(|e| RunError::BadInput(Box::new(e)))?;
    // madsim re-raises a run's panic; a thread of our own catches it.
    let outcome = std::thread::Builder::new()
        .name(format!("madsim-check-{seed}"))
        .spawn(move || {
            madsim::runtime::Runtime::check_determinism(seed, madsim::Config::default(), madsim_run::<S>)
        })
        .expect("the OS can start a thread")
        .join();
    Ok(match outcome {
        Ok(trace_hash) => MadsimCheck::Alike { trace_hash },
        Err(panic) => {
            let message = crate::run::panic_message(panic.as_ref());
            if message.starts_with("non-determinism detected") {
                MadsimCheck::Differs { message }
            } else {
                MadsimCheck::Panicked { message }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn the_first_differing_line_comes_with_its_context() {
        let a = lines("a b c d e f g h");
        let b = lines("a b c d X f g h");
        let d = first_divergence(&a, &b, 2).unwrap();
        assert_eq!(d.line, 5);
        assert_eq!(d.a.lines, [(3, "c".into()), (4, "d".into()), (5, "e".into()), (6, "f".into()), (7, "g".into())]);
        assert_eq!(d.b.lines[2], (5, "X".into()));
        assert_eq!(first_divergence(&a, &a.clone(), 2), None);
        // A trace that stops early differs at the first line it lacks.
        let short = lines("a b c");
        let d = first_divergence(&a, &short, 1).unwrap();
        assert_eq!((d.line, d.b.total), (4, 3));
        assert_eq!(d.b.lines, [(3, "c".into())]);
    }

    #[test]
    fn the_process_sample_is_spread_and_stable() {
        let seeds: Vec<u64> = (0..100).collect();
        assert_eq!(process_sample(&seeds, 4), [0, 25, 50, 75]);
        assert_eq!(process_sample(&seeds[..2], 4), [0, 1]);
        assert_eq!(process_sample(&seeds, 0), Vec::<u64>::new());
    }

    #[test]
    fn a_run_that_differs_stops_the_seed_with_both_hashes() {
        let run = |attempt: Attempt, _seed: u64| -> Result<Vec<String>, String> {
            Ok(if attempt == Attempt::Runtime(2) { lines("a b X") } else { lines("a b c") })
        };
        let check = check_seed(7, &[Attempt::Runtime(1), Attempt::Runtime(2), Attempt::Process], &run);
        let SeedOutcome::Differs { first, second, divergence, .. } = check.outcome else { panic!("{check:?}") };
        assert_eq!((first, second, divergence.line), (Attempt::Runtime(1), Attempt::Runtime(2), 3));
        assert_eq!(check.attempts.len(), 2);
    }
}
