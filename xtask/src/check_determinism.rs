//! `cargo xtask check-determinism`: every seed run twice in fresh runtimes, a sample of seeds once
//! more in a fresh process of this same executable, and their traces compared line by line; or
//! two trace files compared (`--trace-a/--trace-b`); or madsim's own check (`--madsim`). The
//! check is `flinksim::determinism`; here are the flags, the child process and the printing.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::Context;
use flinksim::Scenario;
use flinksim::determinism::{self, Attempt, Divergence, MadsimCheck, ScenarioSource, SeedCheck, SeedOutcome};
use flinksim::scenario::format_duration;
use flinksim::verdict::VerdictClass;
use serde::{Deserialize, Serialize};

use crate::console::{errln, outln};
use crate::flags::{Command as XtaskCommand, PlantFlags, Xtask};
use flinksim::plant::Plants;
use crate::flags::{CheckDeterminism, TraceRun};

/// What `trace-run` prints: one JSON line.
#[derive(Debug, Serialize, Deserialize)]
pub struct TraceRunOutput {
    /// The seed.
    pub seed: u64,
    /// The trace, one line per event.
    pub trace: Vec<String>,
}

const EXIT_NONDETERMINISM: u8 = VerdictClass::Nondeterminism.exit_code();

impl TraceRun {
    /// Runs the seed in this (fresh) process and prints its trace as one JSON line.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let (_, mut scenario) = crate::run_scenario::load(&self.scenario, self.duration)?;
        scenario.plants = self.plant.plants();
        let trace = determinism::runtime_trace(&scenario, self.seed).map_err(anyhow::Error::msg)?;
        let output = TraceRunOutput { seed: self.seed, trace };
        outln!("{}", serde_json::to_string(&output).context("cannot encode the trace")?)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Runs `seed` in a fresh process of this executable (`xtask trace-run`) and reads its trace.
fn process_trace(given: &str, duration: Option<Duration>, plants: Plants, seed: u64) -> Result<Vec<String>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let mut command = Command::new(&exe);
    command.args(["trace-run", given, "--seed", &seed.to_string()]);
    if let Some(duration) = duration {
        command.args(["--duration", &format_duration(duration).replace(' ', "")]);
    }
    for bug in plants.iter() {
        command.args(["--plant", bug.name()]);
    }
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("the fresh process exited with {}: {}", output.status, stderr.trim()));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|l| !l.trim().is_empty()).ok_or("the fresh process printed nothing")?;
    let parsed: TraceRunOutput =
        serde_json::from_str(line).map_err(|e| format!("cannot read the fresh process's trace: {e}"))?;
    Ok(parsed.trace)
}

impl CheckDeterminism {
    /// Runs the check; exits 0 when every run was alike, 6 (nondeterminism) otherwise.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        if let (Some(a), Some(b)) = (&self.trace_a, &self.trace_b) {
            return compare_files(a, b);
        }
        let given = self.scenario.clone().context("a scenario or --trace-a/--trace-b is required")?;
        let (_, mut scenario) = crate::run_scenario::load(&given, self.duration)?;
        scenario.plants = self.plant.plants();
        let seeds: Vec<u64> = (self.seeds.start..self.seeds.end).collect();
        if self.madsim {
            return self.run_madsim(&given, &seeds);
        }
        let jobs = self.jobs.map_or_else(crate::sweep::cores, |j| j as usize);
        let sample = determinism::process_sample(&seeds, self.process_sample);
        outln!(
            "check-determinism: {given}{}, seeds {}: 2 runs each in fresh runtimes{}, {jobs} jobs",
            if scenario.plants.is_empty() { String::new() } else { format!(" (planted: {})", scenario.plants) },
            self.seeds,
            if sample.is_empty() { String::new() } else { format!(", seeds {} again in a fresh process", list(&sample)) }
        )?;
        let (duration, plants) = (self.duration, scenario.plants);
        let run = |attempt: Attempt, seed: u64| match attempt {
            Attempt::Runtime(_) => determinism::runtime_trace(&scenario, seed),
            Attempt::Process => process_trace(&given, duration, plants, seed),
        };
        let bar = crate::sweep::bar(seeds.len() as u64);
        let mut differing = 0;
        let checks = determinism::check_seeds(&seeds, &sample, jobs, None, &run, |check| {
            bar.inc(1);
            differing += u64::from(!check.alike());
            bar.set_message(format!("{differing} failed"));
        });
        bar.finish_and_clear();
        for check in &checks {
            print_check(check)?;
        }
        let bad: Vec<&SeedCheck> = checks.iter().filter(|c| !c.alike()).collect();
        let runs: usize = checks.iter().map(|c| c.attempts.len()).sum();
        if bad.is_empty() {
            outln!("determinism: {} seeds alike ({runs} runs, {} in a fresh process)", checks.len(), sample.len())?;
            outln!("verdict:    PASSED")?;
            return Ok(ExitCode::SUCCESS);
        }
        outln!("determinism: {} of {} seeds differ", bad.len(), checks.len())?;
        outln!("verdict:    {}", VerdictClass::Nondeterminism)?;
        let build = crate::run_scenario::build();
        for check in bad {
            outln!("replay:     {}   # {build}", self.replay(&given, check.seed))?;
        }
        Ok(ExitCode::from(EXIT_NONDETERMINISM))
    }

    /// The command that checks one seed again.
    fn replay(&self, given: &str, seed: u64) -> String {
        let mut command = format!("cargo xtask check-determinism {given} --seeds {seed}");
        if let Some(duration) = self.duration {
            command += &format!(" --duration {}", format_duration(duration).replace(' ', ""));
        }
        if self.madsim {
            command += " --madsim";
        }
        command + &PlantFlags::switches(self.plant.plants())
    }

    fn run_madsim(&self, given: &str, seeds: &[u64]) -> anyhow::Result<ExitCode> {
        outln!("check-determinism: {given}, seeds {}: madsim's own check (random draws and their times)", self.seeds)?;
        let mut worst = VerdictClass::Passed;
        for &seed in seeds {
            let outcome = determinism::madsim_check::<FromCommandLine>(seed).map_err(anyhow::Error::new)?;
            match outcome {
                MadsimCheck::Alike { trace_hash } => {
                    outln!("seed {seed}: alike (madsim saw the same draws at the same times), hash {trace_hash:016x}")?
                }
                MadsimCheck::Differs { message } => {
                    worst = worst.max(VerdictClass::Nondeterminism);
                    outln!("seed {seed}: madsim: {message}")?;
                    outln!("replay:     {}   # {}", self.replay(given, seed), crate::run_scenario::build())?;
                }
                MadsimCheck::Panicked { message } => {
                    worst = worst.max(VerdictClass::Panic);
                    outln!("seed {seed}: FAILED (panic): {message}")?;
                }
            }
        }
        outln!("verdict:    {}", if worst == VerdictClass::Passed { "PASSED".to_owned() } else { worst.to_string() })?;
        Ok(ExitCode::from(worst.exit_code()))
    }
}

/// madsim builds each run from a plain function, so the scenario is read again from this
/// process's own command line (which never changes) rather than handed over in shared state.
struct FromCommandLine;

impl ScenarioSource for FromCommandLine {
    fn scenario() -> Scenario {
        let XtaskCommand::CheckDeterminism(flags) = <Xtask as clap::Parser>::parse().command else {
            unreachable!("only check-determinism runs madsim's check")
        };
        let given = flags.scenario.expect("checked before the check starts");
        let mut scenario = crate::run_scenario::load(&given, flags.duration).expect("loaded before the check starts").1;
        scenario.plants = flags.plant.plants();
        scenario
    }
}

fn list(seeds: &[u64]) -> String {
    seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

fn print_check(check: &SeedCheck) -> anyhow::Result<()> {
    let seed = check.seed;
    match &check.outcome {
        SeedOutcome::Alike { trace_hash, lines } => {
            let process = if check.attempts.contains(&Attempt::Process) { ", and in a fresh process" } else { "" };
            outln!("seed {seed}: alike in {} runs{process}: {lines} lines, hash {trace_hash:016x}", check.attempts.len())?;
        }
        SeedOutcome::Failed { attempt, message } => {
            outln!("seed {seed}: {attempt} failed: {message}")?;
        }
        SeedOutcome::Differs { first, second, hashes, divergence } => {
            outln!(
                "seed {seed}: {first} and {second} differ from trace line {} (hashes {:016x} and {:016x}):",
                divergence.line,
                hashes.0,
                hashes.1
            )?;
            print_divergence(divergence, &first.to_string(), &second.to_string())?;
        }
    }
    Ok(())
}

/// Both traces around their first differing line, that line marked `>`.
fn print_divergence(divergence: &Divergence, a: &str, b: &str) -> anyhow::Result<()> {
    for (name, excerpt) in [(a, &divergence.a), (b, &divergence.b)] {
        outln!("  {name} ({} lines):", excerpt.total)?;
        for (number, line) in &excerpt.lines {
            let mark = if *number == divergence.line { ">" } else { " " };
            outln!("  {mark} {number:>6}  {line}")?;
        }
        if excerpt.total < divergence.line {
            outln!("  > {:>6}  (the trace ends here)", divergence.line)?;
        }
    }
    Ok(())
}

fn compare_files(a: &Path, b: &Path) -> anyhow::Result<ExitCode> {
    let read = |path: &Path| -> anyhow::Result<Vec<String>> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the trace {}", path.display()))?;
        Ok(determinism::read_trace(&text))
    };
    let (lines_a, lines_b) = (read(a)?, read(b)?);
    for (path, lines) in [(a, &lines_a), (b, &lines_b)] {
        outln!("{}: {} lines, hash {:016x}", path.display(), lines.len(), flinksim::trace::hash(lines))?;
    }
    match determinism::first_divergence(&lines_a, &lines_b, determinism::CONTEXT_LINES) {
        None => {
            outln!("the traces are identical")?;
            outln!("verdict:    PASSED")?;
            Ok(ExitCode::SUCCESS)
        }
        Some(divergence) => {
            outln!("the traces differ from line {}:", divergence.line)?;
            print_divergence(&divergence, &a.display().to_string(), &b.display().to_string())?;
            outln!("verdict:    {}", VerdictClass::Nondeterminism)?;
            errln!("note: traces are comparable only between runs of the same scenario, seed and --duration");
            Ok(ExitCode::from(EXIT_NONDETERMINISM))
        }
    }
}
