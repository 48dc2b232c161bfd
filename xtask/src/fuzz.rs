//! `cargo xtask fuzz`: fault plans drawn and run on all cores, judged by the oracle, the first
//! failure shrunk and written as `scenarios/regressions/<name>.toml`. The fuzzing is
//! `flinksim::fuzz`; here are only the flags, the wall clock (schedules per second, ETA) and the
//! printing.

use std::process::ExitCode;
use std::time::Instant;

use flinksim::fuzz::{self, FuzzConfig, NarrowWindow, Progress};
use flinksim::scenario::format_duration;

use crate::console::{errln, outln};
use crate::flags::{Fuzz};

impl Fuzz {
    /// Runs the fuzz; exits 1 when a case failed (its regression file written), 0 otherwise.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let (_, mut base) = crate::run_scenario::load(&self.scenario, None)?;
        base.plants = self.plant.plants();
        let switches = crate::flags::PlantFlags::switches(base.plants);
        let jobs = self.jobs.map_or_else(crate::sweep::cores, |j| j as usize);
        let mut config = FuzzConfig::new(base, self.cases, jobs, self.seed);
        config.wall_clock = wall_clock();
        config.shrink_runs = self.shrink_runs;
        outln!("fuzz: {} × {} cases (seed {}{switches}) on {jobs} jobs", self.scenario, self.cases, self.seed)?;
        let started = Instant::now();
        let bar = crate::sweep::bar(u64::from(self.cases));
        let report = fuzz::fuzz(&config, &|progress| match progress {
            Progress::Case { done, failed } => {
                bar.set_position(u64::from(done));
                if failed {
                    bar.set_message("1 failed: shrinking once the cases in flight end");
                }
            }
            Progress::Shrink { runs, faults } => {
                bar.set_message(format!("shrinking: {runs} runs, {faults} fault(s) left"));
            }
        })?;
        bar.finish_and_clear();
        let wall = started.elapsed();
        outln!(
            "{} schedules in {:.1} s: {:.2} schedules/s on {jobs} jobs; {} passed, {} discarded",
            report.cases,
            wall.as_secs_f64(),
            f64::from(report.cases) / wall.as_secs_f64().max(1e-9),
            report.passed,
            report.discarded
        )?;
        if report.zombie_holds > 0 {
            outln!(
                "{} case(s) had zombies' transactions holding read_committed readers, as in Flink and Kafka; the \
                 oracle judged output past them (docs/oracle.md#held-by-zombies)",
                report.zombie_holds
            )?;
        }
        if report.shared_failures > 0 {
            outln!(
                "{} case(s) showed a failure Flink shares (a window written twice by a savepoint restored again or a \
                 stop that failed past its commits, or results lost to an older attempt's late restore), which the \
                 base accepts (docs/oracle.md#verdict-classes)",
                report.shared_failures
            )?;
        }
        outln!(
            "cost over the run itself: {:.1}% (drawing, rendering, parsing and judging a schedule)",
            report.overhead() * 100.0
        )?;
        outln!("coverage: {} faults applied; landed in", report.coverage.faults)?;
        for window in NarrowWindow::ALL {
            let n = report.coverage.in_window(window);
            let note = if n == 0 { "  (never reached)" } else { "" };
            outln!("  {window:<40} {n}{note}")?;
        }
        let Some(regression) = report.regression else {
            outln!("verdict:  PASSED (every case)")?;
            return Ok(ExitCode::SUCCESS);
        };
        // A failure found under a planted bug is no regression of the engine: it goes beside the
        // build, not into scenarios/regressions/, which the default suite replays and expects to pass.
        let dir = if switches.is_empty() {
            crate::project_root().join("scenarios")
        } else {
            crate::project_root().join("target/fuzz-planted")
        };
        let path = fuzz::write_regression(&regression, &dir)?;
        errln!("case {} (seed {}) failed: {}", regression.case, regression.seed, regression.failure);
        outln!(
            "shrunk from {} to {} fault(s) in {} runs, {:.1} s:",
            regression.found.faults.len(),
            regression.shrunk.faults.len(),
            regression.shrink_runs,
            regression.shrink_wall.as_secs_f64()
        )?;
        for fault in &regression.shrunk.faults {
            outln!("  {fault}")?;
        }
        outln!("written:  {}", path.display())?;
        outln!("trace:    hash {:016x}", regression.trace_hash)?;
        let scenario = if switches.is_empty() { regression.name.clone() } else { path.display().to_string() };
        outln!("replay:   cargo xtask run-scenario {scenario} --seed {}{switches}", regression.seed)?;
        outln!("verdict:  FAILED after {}", format_duration(std::time::Duration::from_millis(wall.as_millis() as u64)))?;
        Ok(ExitCode::from(1))
    }
}

/// The wall clock the fuzz's case timings read: time since the call.
pub fn wall_clock() -> flinksim::fuzz::WallClockFn {
    let origin = Instant::now();
    std::sync::Arc::new(move || origin.elapsed())
}
