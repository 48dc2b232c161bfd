//! `cargo xtask sweep`: many seeds of one or more scenarios on all cores, a progress bar, and a
//! table of verdicts with the failing seeds and their replay commands. The sweep itself is
//! `flinksim::sweep`; here are only the flags, the wall clock (rate and ETA) and the printing.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use flinksim::sweep::{self, Progress, Shard, SweepReport, SweepScenario};
use flinksim::verdict::VerdictClass;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tabled::{Table, Tabled, settings::Style};

use crate::console::{errln, outln};
use crate::flags::{Sweep, SweepCommand, SweepRun, SweepMerge};

impl Sweep {
    /// Runs the sweep or the merge; exits with the worst verdict class of any run.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Some(SweepCommand::Merge(merge)) => merge.run(),
            None => self.run.run(),
        }
    }
}

/// The machine's cores, the default `--jobs`.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl SweepRun {
    fn run(self) -> anyhow::Result<ExitCode> {
        let seeds = self.seeds.context("--seeds is required")?;
        let mut scenarios = Vec::new();
        for given in &self.scenarios {
            let (_, mut scenario) = crate::run_scenario::load(given, self.duration)?;
            scenario.plants = self.plant.plants();
            scenarios.push(SweepScenario { given: given.clone(), duration: self.duration, scenario });
        }
        let jobs = self.jobs.map_or_else(cores, |j| j as usize);
        let per_scenario = self.shard.len(seeds);
        outln!(
            "sweep: {}{} × seeds {seeds}{}: {} runs on {jobs} jobs",
            names(&self.scenarios),
            match self.plant.plants() {
                plants if plants.is_empty() => String::new(),
                plants => format!(" (planted: {plants})"),
            },
            if self.shard == Shard::WHOLE { String::new() } else { format!(" (shard {}: {per_scenario} seeds)", self.shard) },
            per_scenario * scenarios.len() as u64,
        )?;
        let started = Instant::now();
        let bar = bar(per_scenario * scenarios.len() as u64);
        let report = sweep::sweep(&scenarios, seeds, self.shard, jobs, self.max_failures, |progress, name, result| {
            show(&bar, progress);
            if result.verdict != VerdictClass::Passed {
                bar.suspend(|| {
                    errln!("{name} seed {}: {}", result.seed, result.verdict);
                });
            }
        })
        .map_err(|e| anyhow::Error::new(*e))?;
        bar.finish_and_clear();
        let wall = started.elapsed();
        let runs = report.totals().runs();
        outln!(
            "{runs} runs in {:.1} s: {:.2} runs/s on {jobs} jobs",
            wall.as_secs_f64(),
            runs as f64 / wall.as_secs_f64().max(1e-9)
        )?;
        print_report(&report)?;
        if let Some(path) = &self.json {
            write_json(path, &report)?;
        }
        Ok(ExitCode::from(report.verdict().exit_code()))
    }
}

impl SweepMerge {
    fn run(self) -> anyhow::Result<ExitCode> {
        let mut reports = Vec::new();
        for path in &self.reports {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let report: SweepReport = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a sweep's --json result", path.display()))?;
            reports.push(report);
        }
        let merged = sweep::merge(reports)?;
        let missing = merged.missing_shards();
        outln!(
            "sweep merge: {} × seeds {}: shards {} of {}",
            names(&merged.scenarios.iter().map(|s| s.given.clone()).collect::<Vec<_>>()),
            merged.seeds,
            merged.shards.iter().map(u32::to_string).collect::<Vec<_>>().join(", "),
            merged.shard_count
        )?;
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(|i| format!("{i}/{}", merged.shard_count)).collect();
            errln!("warning: no result for shard(s) {}: their seeds did not run", list.join(", "));
        }
        print_report(&merged)?;
        if let Some(path) = &self.json {
            write_json(path, &merged)?;
        }
        Ok(ExitCode::from(merged.verdict().exit_code()))
    }
}

fn names(given: &[String]) -> String {
    if given.len() == 1 { given[0].clone() } else { format!("{} scenarios", given.len()) }
}

/// A progress bar on stderr (drawn only on a terminal): runs done, failures, rate and ETA.
pub fn bar(total: u64) -> ProgressBar {
    let style = ProgressStyle::with_template("{pos}/{len} runs, {msg} [{wide_bar}] {per_sec}, ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(style).with_message("0 failed")
}

fn show(bar: &ProgressBar, progress: Progress) {
    bar.set_position(progress.done);
    bar.set_message(format!("{} failed", progress.failures));
}

#[derive(Tabled)]
struct CountRow {
    #[tabled(rename = "scenario")]
    scenario: String,
    #[tabled(rename = "runs")]
    runs: u64,
    #[tabled(rename = "passed")]
    passed: u64,
    #[tabled(rename = "semantic")]
    semantic: u64,
    #[tabled(rename = "liveness")]
    liveness: u64,
    #[tabled(rename = "correctness")]
    correctness: u64,
    #[tabled(rename = "panic")]
    panic: u64,
}

#[derive(Tabled)]
struct FailureRow {
    #[tabled(rename = "scenario")]
    scenario: String,
    #[tabled(rename = "seed")]
    seed: u64,
    #[tabled(rename = "verdict")]
    verdict: &'static str,
    #[tabled(rename = "violation")]
    violation: String,
}

/// How many failing seeds the table lists before it counts the rest.
const FAILURES_SHOWN: usize = 20;
/// How long a violation's text may be in the table.
const VIOLATION_CHARS: usize = 100;

fn print_report(report: &SweepReport) -> anyhow::Result<()> {
    let rows = report.scenarios.iter().map(|s| CountRow {
        scenario: s.name.clone(),
        runs: s.counts.runs(),
        passed: s.counts.passed,
        semantic: s.counts.semantic,
        liveness: s.counts.liveness,
        correctness: s.counts.correctness,
        panic: s.counts.panic,
    });
    outln!("{}", Table::new(rows).with(Style::psql()))?;
    let failures: Vec<(&flinksim::sweep::ScenarioResult, &flinksim::sweep::SeedResult)> =
        report.scenarios.iter().flat_map(|s| s.failures.iter().map(move |f| (s, f))).collect();
    if !failures.is_empty() {
        outln!()?;
        let rows = failures.iter().take(FAILURES_SHOWN).map(|(s, f)| FailureRow {
            scenario: s.name.clone(),
            seed: f.seed,
            verdict: f.verdict.name(),
            violation: violation(f),
        });
        outln!("{}", Table::new(rows).with(Style::psql()))?;
        if failures.len() > FAILURES_SHOWN {
            outln!("… and {} more failing runs (the --json file lists every one)", failures.len() - FAILURES_SHOWN)?;
        }
        outln!()?;
        let build = crate::run_scenario::build();
        for (s, f) in failures.iter().take(FAILURES_SHOWN) {
            outln!("replay:     {}   # {build}", replay(s, f.seed))?;
        }
    }
    if report.not_run > 0 {
        let max = report.max_failures.map_or(String::new(), |m| format!(" after {m} failing runs"));
        outln!("stopped early{max}: {} runs not made", report.not_run)?;
    }
    let verdict = report.verdict();
    outln!("verdict:    {}", if verdict == VerdictClass::Passed { "PASSED".to_owned() } else { verdict.to_string() })?;
    Ok(())
}

/// The first violation of a failing run, cut to fit the table, and how many more it had.
fn violation(result: &flinksim::sweep::SeedResult) -> String {
    let Some(first) = result.findings.first() else { return String::new() };
    let mut text: String = first.message.lines().next().unwrap_or_default().chars().take(VIOLATION_CHARS).collect();
    if text.len() < first.message.len() {
        text.push('…');
    }
    if result.findings.len() > 1 {
        text += &format!(" (+{} more)", result.findings.len() - 1);
    }
    text
}

/// The command that replays one failing seed of a sweep.
fn replay(scenario: &flinksim::sweep::ScenarioResult, seed: u64) -> String {
    let flags = crate::flags::RunScenario {
        scenario: scenario.given.clone(),
        seed,
        duration: scenario.duration,
        trace: false,
        windows: crate::flags::Windows::Problems,
        trace_out: None,
        report: None,
        plant: crate::flags::PlantFlags { bugs: scenario.plants.iter().collect() },
    };
    flags.replay_command()
}

fn write_json(path: &Path, report: &SweepReport) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report).context("cannot encode the sweep as JSON")?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    outln!("json:       {}", path.display())?;
    Ok(())
}
