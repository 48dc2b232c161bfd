//! The fuzz case of `cargo xtask bench`: fuzz cases on one job, with the wall time of the runs
//! themselves against the wall time of the cases as a whole (drawing, rendering, reading back,
//! running, judging), whose gap must stay within 10%; and the shrinking of a stand-in failure (any
//! TaskManager killed fails a run) to one fault, timed. It runs in its own child process
//! (`xtask bench-fuzz`).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use flinksim::fuzz::{self, FuzzConfig};
use serde::{Deserialize, Serialize};

use crate::console::outln;

/// `xtask bench-fuzz --cases N`: one fuzz and one shrink, timed in this process.
#[derive(Debug, clap::Args)]
pub struct BenchFuzz {
    /// Fuzz cases to run on one job.
    #[arg(long)]
    pub cases: u32,
}

/// What a `bench-fuzz` child reports, as one JSON line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FuzzMeasured {
    /// Cases run.
    pub cases: u32,
    /// Wall seconds of the whole fuzz.
    pub wall_secs: f64,
    /// Wall seconds of the runs themselves, summed.
    pub run_secs: f64,
    /// Wall seconds of the cases as a whole, summed.
    pub case_secs: f64,
    /// Wall seconds to find and shrink the stand-in failure.
    pub shrink_secs: f64,
    /// Runs the shrinking took.
    pub shrink_runs: u32,
    /// Faults left in the shrunk plan.
    pub shrunk_faults: usize,
}

impl BenchFuzz {
    /// Runs the fuzz and the shrink and prints a [`FuzzMeasured`] line.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let (_, base) = crate::run_scenario::load("fuzz-exactly-once", None)?;
        let mut config = FuzzConfig::new(base.clone(), self.cases, 1, 1);
        config.wall_clock = crate::fuzz::wall_clock();
        let started = Instant::now();
        let report = fuzz::fuzz(&config, &|_| {})?;
        let wall_secs = started.elapsed().as_secs_f64();
        let mut stand_in = FuzzConfig::new(base.with_duration(Duration::from_secs(60)), 20, 1, 7);
        stand_in.wall_clock = crate::fuzz::wall_clock();
        stand_in.judge =
            Arc::new(|report| report.steps.iter().any(|(_, step)| step.starts_with("docker-compose kill taskmanager")));
        let started = Instant::now();
        let shrunk = fuzz::fuzz(&stand_in, &|_| {})?.regression.context("no case of the stand-in fuzz failed")?;
        let measured = FuzzMeasured {
            cases: report.cases,
            wall_secs,
            run_secs: report.run_wall.as_secs_f64(),
            case_secs: report.case_wall.as_secs_f64(),
            shrink_secs: started.elapsed().as_secs_f64(),
            shrink_runs: shrunk.shrink_runs,
            shrunk_faults: shrunk.shrunk.faults.len(),
        };
        outln!("{}", serde_json::to_string(&measured).context("cannot encode the fuzz's result")?)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Runs the fuzz case in a child process and prints its figures.
pub fn measure(exe: &Path, root: &Path, quick: bool) -> anyhow::Result<FuzzMeasured> {
    let cases = if quick { 10 } else { 40 };
    crate::console::errln!("bench: fuzz of fuzz-exactly-once, {cases} cases on 1 job, then a stand-in failure shrunk");
    let args = ["bench-fuzz".to_owned(), "--cases".to_owned(), cases.to_string()];
    let measured: FuzzMeasured = crate::bench::child_result(exe, root, &args)?;
    let overhead = (measured.case_secs - measured.run_secs) / measured.run_secs.max(1e-9);
    outln!(
        "fuzz fuzz-exactly-once: {} schedules in {:.1} s on 1 job ({:.2} schedules/s); a schedule costs {:.1}% over its run (target ≤ 10%)",
        measured.cases,
        measured.wall_secs,
        f64::from(measured.cases) / measured.wall_secs.max(1e-9),
        100.0 * overhead
    )?;
    outln!(
        "fuzz shrink: a stand-in failure found and shrunk to {} fault(s) in {} runs, {:.1} s (target < 60 s)",
        measured.shrunk_faults, measured.shrink_runs, measured.shrink_secs
    )?;
    Ok(measured)
}
