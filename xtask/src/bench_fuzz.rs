//! The fuzz case of `cargo xtask bench`: fuzz cases on one job, with the wall time of the runs
//! themselves against the wall time of the cases as a whole (drawing, rendering, reading back,
//! running, judging), whose gap must stay within 10%; and a planted bug found and its failure
//! shrunk, timed (`watermark-max-of-inputs`: of the thirteen, the one whose shrinking takes the
//! most runs). It runs in its own child process (`xtask bench-fuzz`).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use flinksim::fuzz::{self, FuzzConfig};
use flinksim::plant::{PlantedBug, Plants};

/// The planted bug whose failure the bench shrinks.
const SHRUNK_BUG: PlantedBug = PlantedBug::WatermarkMaxOfInputs;
use serde::{Deserialize, Serialize};

use crate::console::outln;
use crate::flags::{BenchFuzz};

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
    /// Wall seconds to find the planted bug.
    pub found_secs: f64,
    /// Wall seconds to shrink its failure.
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
        let mut planted = base;
        planted.plants = Plants::of([SHRUNK_BUG]);
        let mut planted = FuzzConfig::new(planted, 100, 1, 1);
        planted.wall_clock = crate::fuzz::wall_clock();
        let started = Instant::now();
        let shrunk = fuzz::fuzz(&planted, &|_| {})?.regression.with_context(|| format!("the fuzz did not find {SHRUNK_BUG}"))?;
        let found_secs = started.elapsed().as_secs_f64() - shrunk.shrink_wall.as_secs_f64();
        let measured = FuzzMeasured {
            cases: report.cases,
            wall_secs,
            run_secs: report.run_wall.as_secs_f64(),
            case_secs: report.case_wall.as_secs_f64(),
            found_secs,
            shrink_secs: shrunk.shrink_wall.as_secs_f64(),
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
    crate::console::errln!("bench: fuzz of fuzz-exactly-once, {cases} cases on 1 job, then {SHRUNK_BUG} found and shrunk");
    let args = ["bench-fuzz".to_owned(), "--cases".to_owned(), cases.to_string()];
    let measured: FuzzMeasured = crate::child::child_result(exe, root, &args)?;
    let overhead = (measured.case_secs - measured.run_secs) / measured.run_secs.max(1e-9);
    outln!(
        "fuzz fuzz-exactly-once: {} schedules in {:.1} s on 1 job ({:.2} schedules/s); a schedule costs {:.1}% over its run (target ≤ 10%)",
        measured.cases,
        measured.wall_secs,
        f64::from(measured.cases) / measured.wall_secs.max(1e-9),
        100.0 * overhead
    )?;
    outln!(
        "fuzz shrink: --plant {SHRUNK_BUG} found in {:.1} s, shrunk to {} fault(s) in {} runs, {:.1} s (target < 60 s)",
        measured.found_secs, measured.shrunk_faults, measured.shrink_runs, measured.shrink_secs
    )?;
    Ok(measured)
}
