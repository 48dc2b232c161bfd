//! The sweep case of `cargo xtask bench`: the same seeds swept on one job and on every core, so
//! that the runner's overhead shows as the gap between the parallel throughput and cores ÷ one
//! run's wall time; and a long sweep of short runs whose resident memory is sampled as it goes,
//! which must stay flat. Each sweep runs in its own child process (`xtask bench-sweep`).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use flinksim::scenario::format_duration;
use flinksim::sweep::{self, SeedRange, Shard, SweepScenario};
use serde::{Deserialize, Serialize};

use crate::console::outln;
use crate::flags::{BenchSweep};

/// What a `bench-sweep` child reports, as one JSON line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepMeasured {
    /// Runs made.
    pub runs: u64,
    /// Runs at once.
    pub jobs: usize,
    /// Wall seconds of the whole sweep.
    pub wall_secs: f64,
    /// (runs done, resident KiB) sampled at every hundredth of the sweep.
    pub rss_kib: Vec<(u64, u64)>,
    /// Runs the oracle rejected.
    pub failed: u64,
}

/// This process's resident memory now, in KiB (`VmRSS`).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

impl BenchSweep {
    /// Sweeps seeds 1..=N on `jobs` threads and prints a [`SweepMeasured`] line.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let (_, scenario) = crate::run_scenario::load(&self.scenario, Some(self.duration))?;
        let scenarios = [SweepScenario { given: self.scenario.clone(), duration: Some(self.duration), scenario }];
        let every = (self.seeds / 100).max(1);
        let mut rss = vec![(0, rss_kib())];
        let started = Instant::now();
        let report = sweep::sweep(
            &scenarios,
            SeedRange { start: 1, end: self.seeds + 1 },
            Shard::WHOLE,
            self.jobs,
            None,
            |progress, _, _| {
                if progress.done.is_multiple_of(every) {
                    rss.push((progress.done, rss_kib()));
                }
            },
        )
        .map_err(|e| anyhow::Error::new(*e))?;
        let wall_secs = started.elapsed().as_secs_f64();
        let totals = report.totals();
        let measured = SweepMeasured { runs: totals.runs(), jobs: self.jobs, wall_secs, rss_kib: rss, failed: totals.failed() };
        outln!("{}", serde_json::to_string(&measured).context("cannot encode the sweep's result")?)?;
        Ok(ExitCode::SUCCESS)
    }
}

fn child(exe: &Path, root: &Path, scenario: &str, duration: Duration, seeds: u64, jobs: usize) -> anyhow::Result<SweepMeasured> {
    let duration = format_duration(duration).replace(' ', "");
    let args = ["bench-sweep", scenario, "--duration", &duration, "--seeds", &seeds.to_string(), "--jobs", &jobs.to_string()];
    crate::child::child_result(exe, root, &args.map(String::from))
}

/// The sweep case's figures, for the `--json` file.
#[derive(Clone, Debug, Serialize)]
pub struct SweepBench {
    /// The throughput case's scenario and simulated time.
    pub case: String,
    /// The machine's cores (the parallel sweep's jobs).
    pub cores: usize,
    /// The same seeds on one job.
    pub serial: SweepMeasured,
    /// The same seeds on every core.
    pub parallel: SweepMeasured,
    /// One run's mean wall time, from the serial sweep.
    pub one_run_secs: f64,
    /// Runs per wall second on every core.
    pub runs_per_sec: f64,
    /// cores ÷ one run's wall time.
    pub ideal_runs_per_sec: f64,
    /// The memory case: many short runs, memory sampled as it went.
    pub memory: SweepMeasured,
    /// The memory case's scenario and simulated time.
    pub memory_case: String,
}

/// The throughput target: within 10% of cores ÷ one run's wall time.
const TARGET_THROUGHPUT: f64 = 0.9;
/// Memory is flat when the last fifth's resident memory is within this of the fifth after warm-up.
const TARGET_MEMORY_GROWTH: f64 = 1.10;

/// Runs the sweep case and prints its lines; `quick` makes it smaller.
pub fn measure(exe: &Path, root: &Path, quick: bool) -> anyhow::Result<SweepBench> {
    let cores = crate::sweep::cores();
    let duration = Duration::from_secs(600);
    let seeds = if quick { 2 * cores as u64 } else { 8 * cores as u64 };
    crate::console::errln!("bench: sweep of failure-recovery:10m, {seeds} seeds on 1 job, then on {cores}");
    let serial = child(exe, root, "failure-recovery", duration, seeds, 1)?;
    let parallel = child(exe, root, "failure-recovery", duration, seeds, cores)?;
    // Long enough for a leak to show: a run that left even 10 KB behind would add 20 MB over
    // 2,000 seeds, well past the 10% allowed on the ~30 MB a sweep holds
    // (docs/determinism.md#a-run-leaves-nothing-behind).
    let memory_seeds = if quick { 500 } else { 2000 };
    let memory_duration = Duration::from_secs(10);
    crate::console::errln!("bench: sweep of steady-state:10s, {memory_seeds} seeds on {cores} jobs, memory sampled");
    let memory = child(exe, root, "steady-state", memory_duration, memory_seeds, cores)?;
    let one_run_secs = serial.wall_secs / serial.runs as f64;
    let bench = SweepBench {
        case: "failure-recovery:10m".into(),
        cores,
        runs_per_sec: parallel.runs as f64 / parallel.wall_secs,
        ideal_runs_per_sec: cores as f64 / one_run_secs,
        one_run_secs,
        serial,
        parallel,
        memory,
        memory_case: "steady-state:10s".into(),
    };
    let ratio = bench.runs_per_sec / bench.ideal_runs_per_sec;
    outln!(
        "sweep {}: {} seeds: one run {:.3} s (1 job, mean); on {cores} jobs {:.2} runs/s against cores ÷ one run = {:.2}: {:.0}%",
        bench.case,
        bench.parallel.runs,
        one_run_secs,
        bench.runs_per_sec,
        bench.ideal_runs_per_sec,
        100.0 * ratio
    )?;
    let samples = &bench.memory.rss_kib;
    // The first tenth warms the allocator and the thread stacks; compare the last fifth with the
    // fifth after it. A sample catches the runs in flight at some point of their lives and the
    // allocator before or after it returns pages (steady-state:10s ranged from 18 to 37 MB from
    // sample to sample over a flat sweep), so each fifth is the median of its 20 samples.
    let runs = bench.memory.runs;
    let warm = median_mb(samples, runs / 10, 3 * runs / 10);
    let last = median_mb(samples, 8 * runs / 10, runs);
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0) as f64 / 1024.0;
    outln!(
        "sweep {}: {} seeds in {:.1} s; resident {:.1} MB after warm-up, {:.1} MB in the last fifth (medians), peak {:.1} MB",
        bench.memory_case,
        bench.memory.runs,
        bench.memory.wall_secs,
        warm,
        last,
        peak
    )?;
    let mark = |ok: bool| if ok { "PASS" } else { "FAIL" };
    outln!("  [{}] sweep throughput {:.0}% of cores ÷ one run's wall time (≥ {:.0}%)", mark(ratio >= TARGET_THROUGHPUT), 100.0 * ratio, 100.0 * TARGET_THROUGHPUT)?;
    outln!(
        "  [{}] sweep memory flat: {:.1} MB in the last fifth against {:.1} MB after warm-up (≤ {:.0}% more)",
        mark(last <= warm * TARGET_MEMORY_GROWTH),
        last,
        warm,
        100.0 * (TARGET_MEMORY_GROWTH - 1.0)
    )?;
    Ok(bench)
}

/// The median resident memory, in MB, of the samples taken after more than `from` and at most
/// `to` runs (0 if none).
fn median_mb(samples: &[(u64, u64)], from: u64, to: u64) -> f64 {
    let mut kib: Vec<u64> = samples.iter().filter(|(done, _)| (from + 1..=to).contains(done)).map(|s| s.1).collect();
    kib.sort_unstable();
    kib.get(kib.len() / 2).map_or(0.0, |&k| k as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stretch_of_the_sweep_is_the_median_of_its_samples() {
        let samples: Vec<(u64, u64)> = (0..=100).map(|done| (done, if done % 2 == 0 { 1024 } else { 4096 })).collect();
        // Runs 11..=20: five samples of 4 MB, five of 1 MB; the upper median is 4 MB.
        assert_eq!(median_mb(&samples, 10, 20), 4.0);
        assert_eq!(median_mb(&[(50, 2048), (95, 3072)], 90, 100), 3.0);
        assert_eq!(median_mb(&samples, 200, 300), 0.0);
    }
}
