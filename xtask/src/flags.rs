//! The command line of `cargo xtask`: one subcommand per task, a doc line per flag.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use flinksim::scenario::format_duration;
use flinksim::plant::{PlantedBug, Plants};

/// flinksim's project commands.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
pub struct Xtask {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one scenario under one seed and print the window counts, the verdict and the trace hash.
    RunScenario(RunScenario),
    /// Benchmark the simulator against its floors: plain loops and madsim alone (this build, a child process per case).
    Bench(Bench),
    /// One benchmark case in this process, reported as one JSON line (run by `bench`).
    #[command(hide = true)]
    BenchCase(BenchCase),
    /// Run seeds twice in fresh runtimes (some again in a fresh process) and compare their traces.
    CheckDeterminism(crate::check_determinism::CheckDeterminism),
    /// One run's trace as a JSON line (run by `check-determinism` in a fresh process).
    #[command(hide = true)]
    TraceRun(crate::check_determinism::TraceRun),
    /// One sweep timed in this process, reported as one JSON line (run by `bench`).
    #[command(hide = true)]
    BenchSweep(crate::bench_sweep::BenchSweep),
    /// Run many seeds of scenarios on all cores and tabulate the verdicts; `sweep merge` combines shards.
    Sweep(crate::sweep::Sweep),
    /// Find where a failing run first went wrong: the first invariant its trace breaks, the chain of faults to it; `--git` for `git bisect run`.
    Bisect(crate::bisect::Bisect),
    /// Write a run's HTML report and render it with headless Chromium to a PNG, to look at it.
    ReportScreenshot(crate::report_screenshot::ReportScreenshot),
    /// Run generated fault plans against a scenario, shrink the first failure to a regression file.
    Fuzz(crate::fuzz::Fuzz),
    /// One fuzz and one shrink timed in this process, reported as one JSON line (run by `bench`).
    #[command(hide = true)]
    BenchFuzz(crate::bench_fuzz::BenchFuzz),
}

/// `cargo xtask run-scenario <scenario> [--seed N] [--duration 10m]`.
#[derive(Debug, clap::Args)]
pub struct RunScenario {
    /// A scenario name (a file in scenarios/, without .toml) or a path to a scenario file.
    pub scenario: String,
    /// The seed: the same seed replays the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated time to run, overriding the file's `duration` (e.g. 90s, 10m, 1h; the file's rules: above 0, at most 30 days, no months or years).
    #[arg(long, value_parser = flinksim::scenario::parse_run_duration)]
    pub duration: Option<Duration>,
    /// Print the whole trace, one line per significant event.
    #[arg(long)]
    pub trace: bool,
    /// Which window rows to print: `problems` (the default: only rows that are not ok, and a
    /// one-line summary) or `all` (one row per window and page).
    #[arg(long, value_enum, default_value_t = Windows::Problems)]
    pub windows: Windows,
    /// Also write the trace to PATH, one line per event (for `check-determinism --trace-a/--trace-b`).
    #[arg(long, value_name = "PATH")]
    pub trace_out: Option<PathBuf>,
    /// Also write the run's report to PATH: one self-contained HTML page with the timeline and the window table.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Bugs planted in the engine.
    #[command(flatten)]
    pub plant: PlantFlags,
}

/// `--plant <bug>`, repeatable: switches on a deliberate engine bug for this run
/// (docs/planted-bugs.md). The only way to plant one: a scenario file cannot.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct PlantFlags {
    /// Switch on a planted engine bug (repeatable), to see the testbed catch it; see docs/planted-bugs.md for the names.
    #[arg(long = "plant", value_name = "BUG")]
    pub bugs: Vec<PlantedBug>,
}

impl PlantFlags {
    /// The flags' set of bugs.
    pub fn plants(&self) -> Plants {
        Plants::of(self.bugs.iter().copied())
    }

    /// ` --plant a --plant b` for a replay line: one switch per bug of `plants`, in a fixed
    /// order; empty when none is planted.
    pub fn switches(plants: Plants) -> String {
        plants.iter().map(|bug| format!(" --plant {bug}")).collect()
    }
}

/// `--windows`: which rows of the window table to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Windows {
    /// Only the rows that are not ok, after a one-line summary.
    Problems,
    /// Every (window, page) row.
    All,
}

impl RunScenario {
    /// The command that replays this run: the scenario as given and every flag that changes the
    /// run. The only place a replay line is built; the destructuring makes a new flag choose.
    pub fn replay_command(&self) -> String {
        let RunScenario { scenario, seed, duration, trace: _, windows: _, trace_out: _, report: _, plant } = self;
        let mut command = format!("cargo xtask run-scenario {} --seed {seed}", shell_word(scenario));
        if let Some(duration) = duration {
            // One word, `2m30s`: it reads back the same and needs no quotes.
            command += &format!(" --duration {}", format_duration(*duration).replace(' ', ""));
        }
        command + &PlantFlags::switches(plant.plants())
    }
}

/// `word` as one shell word: as is when it is plain, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=@+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `cargo xtask bench [--reps N] [--quick] [--json PATH]`.
#[derive(Debug, clap::Args)]
pub struct Bench {
    /// Repetitions of each case; the table quotes the median [default: 5, or 1 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub reps: Option<u32>,
    /// Smoke test: one repetition, and only the 10-minute cases and their floor.
    #[arg(long)]
    pub quick: bool,
    /// Also write the table, the linearity and the targets as JSON to PATH (for CI to keep).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
}

/// `xtask bench-case <case> [--reps N]`: one case, timed in this process.
#[derive(Debug, clap::Args)]
pub struct BenchCase {
    /// The case: `<scenario>:<simulated time>` (e.g. `steady-state:10m`), `floor:<events>` or `floor-serde_json:<events>`.
    pub case: crate::bench::Case,
    /// Repetitions, each timed on its own.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub reps: u32,
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use clap::error::ErrorKind;

    use super::*;

    fn run_scenario(args: &[&str]) -> Result<RunScenario, clap::Error> {
        let args = ["xtask", "run-scenario", "steady-state"].iter().chain(args);
        match Xtask::try_parse_from(args)?.command {
            Command::RunScenario(flags) => Ok(flags),
            other => panic!("{other:?}"),
        }
    }

    /// The replay line left out `--duration`, and so replayed another run.
    #[test]
    fn replay_command_carries_every_flag_that_changes_the_run() {
        let flags = run_scenario(&["--seed", "8141", "--duration", "2m 30s", "--trace"]).unwrap();
        assert_eq!(flags.replay_command(), "cargo xtask run-scenario steady-state --seed 8141 --duration 2m30s");
        assert_eq!(run_scenario(&[]).unwrap().replay_command(), "cargo xtask run-scenario steady-state --seed 1");
        let replayed = flags.replay_command();
        let words: Vec<&str> = replayed.split(' ').skip(2).collect();
        let again = match Xtask::try_parse_from(["xtask"].iter().chain(&words)).unwrap().command {
            Command::RunScenario(flags) => flags,
            other => panic!("{other:?}"),
        };
        assert_eq!((again.seed, again.duration), (flags.seed, flags.duration));
        assert_eq!(shell_word("my scenarios/it's.toml"), r"'my scenarios/it'\''s.toml'");
    }

    /// A run with a planted bug replays only with the same switches.
    #[test]
    fn replay_command_carries_every_planted_bug_and_an_unknown_one_is_bad_input() {
        let flags = run_scenario(&["--plant", "watermark-max-of-inputs", "--plant", "barriers-not-aligned"]).unwrap();
        assert_eq!(
            flags.replay_command(),
            "cargo xtask run-scenario steady-state --seed 1 --plant barriers-not-aligned --plant watermark-max-of-inputs"
        );
        let error = run_scenario(&["--plant", "no-such-bug"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        let rendered = error.to_string();
        assert!(rendered.contains("unknown planted bug `no-such-bug`: expected one of source-restore-offset-skew,"), "{rendered}");
    }

    /// `--duration 0s` ran (and failed the oracle, exit 1) while `duration = "0s"` in a file is
    /// refused as bad input.
    #[test]
    fn duration_flag_follows_the_file_rules_and_is_bad_input() {
        assert_eq!(run_scenario(&["--duration", "90s"]).unwrap().duration, Some(Duration::from_secs(90)));
        for (text, message) in [
            ("0s", "`duration` must be greater than 0"),
            ("10M", "bad duration `10M`: `M` means months"),
            ("999h", "duration `999h` is too long: at most 30 days of simulated time"),
            ("10 minutes", "bad duration `10 minutes`: expected e.g. 200ms, 1s, 10m"),
        ] {
            let error = run_scenario(&["--duration", text]).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ValueValidation, "{text}");
            assert_eq!(error.exit_code(), 2, "{text}");
            let rendered = error.to_string();
            assert!(rendered.contains(&format!("for '--duration <DURATION>': {message}")), "{rendered}");
        }
    }
}
