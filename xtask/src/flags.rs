//! The command line of `cargo xtask`: one subcommand per task, a doc line per flag.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use flinksim::scenario::format_duration;
use flinksim::sweep::{SeedRange, Shard};
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
    CheckDeterminism(CheckDeterminism),
    /// One run's trace as a JSON line (run by `check-determinism` in a fresh process).
    #[command(hide = true)]
    TraceRun(TraceRun),
    /// One sweep timed in this process, reported as one JSON line (run by `bench`).
    #[command(hide = true)]
    BenchSweep(BenchSweep),
    /// Run many seeds of scenarios on all cores and tabulate the verdicts; `sweep merge` combines shards.
    Sweep(Sweep),
    /// Find where a failing run first went wrong: the first invariant its trace breaks, the chain of faults to it; `--git` for `git bisect run`.
    Bisect(Bisect),
    /// Write a run's HTML report and render it with headless Chromium to a PNG, to look at it.
    ReportScreenshot(ReportScreenshot),
    /// Run generated fault plans against a scenario, shrink the first failure to a regression file.
    Fuzz(Fuzz),
    /// One fuzz and one shrink timed in this process, reported as one JSON line (run by `bench`).
    #[command(hide = true)]
    BenchFuzz(BenchFuzz),
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
    pub case: Case,
    /// Repetitions, each timed on its own.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub reps: u32,
}

/// `xtask bench-fuzz --cases N`: one fuzz and one shrink, timed in this process.
#[derive(Debug, clap::Args)]
pub struct BenchFuzz {
    /// Fuzz cases to run on one job.
    #[arg(long)]
    pub cases: u32,
}

/// `xtask bench-sweep <scenario> --duration D --seeds N --jobs J`: one sweep, timed in this process.
#[derive(Debug, clap::Args)]
pub struct BenchSweep {
    /// The scenario.
    pub scenario: String,
    /// Simulated time of each run.
    #[arg(long, value_parser = flinksim::scenario::parse_run_duration)]
    pub duration: Duration,
    /// Seeds 1..=N.
    #[arg(long)]
    pub seeds: u64,
    /// Runs at once.
    #[arg(long)]
    pub jobs: usize,
}

/// `cargo xtask bisect`.
#[derive(Debug, clap::Args)]
pub struct Bisect {
    /// A scenario name (a file in scenarios/, without .toml) or a path to a scenario file.
    pub scenario: String,
    /// The seed of the failing run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated time to run, overriding the file's `duration`.
    #[arg(long, value_parser = flinksim::scenario::parse_run_duration)]
    pub duration: Option<Duration>,
    /// Judge with the strictest expectations (exact counts, no copies, no late drops, no loss):
    /// what a pitfall scenario accepts becomes a failure to bisect.
    #[arg(long)]
    pub strict: bool,
    /// Exit as `git bisect run` expects: 0 good, 1 bad (the oracle failed the run, the trace
    /// broke an invariant, or the simulation panicked), 125 skip (the scenario cannot be loaded
    /// or run by this build).
    #[arg(long)]
    pub git: bool,
}

/// `cargo xtask check-determinism <scenario> [--seeds A..B] [--process-sample N] [--jobs N]
/// [--duration D] [--madsim]`, or `cargo xtask check-determinism --trace-a A --trace-b B`.
#[derive(Debug, clap::Args)]
pub struct CheckDeterminism {
    /// A scenario name (a file in scenarios/, without .toml) or a path to a scenario file.
    #[arg(required_unless_present = "trace_a", conflicts_with = "trace_a")]
    pub scenario: Option<String>,
    /// The seeds: `A..B` (B excluded), `A..=B`, or one seed.
    #[arg(long, value_name = "A..B", default_value = "1..4")]
    pub seeds: SeedRange,
    /// How many seeds (spread over the range) run a third time in a fresh process.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub process_sample: usize,
    /// Seeds checked at once [default: the machine's cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// Simulated time to run, overriding the file's `duration` (as run-scenario's --duration).
    #[arg(long, value_parser = flinksim::scenario::parse_run_duration)]
    pub duration: Option<Duration>,
    /// Use madsim's own check instead: a second run must draw from the random generator as the first.
    #[arg(long, conflicts_with = "process_sample")]
    pub madsim: bool,
    /// Compare this trace file (`run-scenario --trace-out`) with --trace-b instead of running.
    #[arg(long, value_name = "PATH", requires = "trace_b")]
    pub trace_a: Option<PathBuf>,
    /// The trace file to compare with --trace-a.
    #[arg(long, value_name = "PATH", requires = "trace_a")]
    pub trace_b: Option<PathBuf>,
    /// Bugs planted in the engine, in every run (the fresh processes' too).
    #[command(flatten)]
    pub plant: PlantFlags,
}

/// `xtask trace-run <scenario> --seed N [--duration D]`: one run, printed as a [`TraceRunOutput`](crate::check_determinism::TraceRunOutput).
#[derive(Debug, clap::Args)]
pub struct TraceRun {
    /// The scenario, as check-determinism was given it.
    pub scenario: String,
    /// The seed.
    #[arg(long)]
    pub seed: u64,
    /// The `--duration` override, if any.
    #[arg(long, value_parser = flinksim::scenario::parse_run_duration)]
    pub duration: Option<Duration>,
    /// The planted bugs, as check-determinism was given them.
    #[command(flatten)]
    pub plant: PlantFlags,
}

/// `cargo xtask fuzz [--scenario S] --cases N [--jobs J] [--seed S]`.
#[derive(Debug, clap::Args)]
pub struct Fuzz {
    /// The base scenario: its cluster, job and expectations; each case replaces its steps.
    #[arg(long, default_value = "fuzz-exactly-once")]
    pub scenario: String,
    /// How many fault plans to run.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub cases: u32,
    /// Runs at once, each on its own thread and runtime [default: the machine's cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// The fuzz's seed: the same seed draws the same plans.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The most runs shrinking a failure may take.
    #[arg(long, value_name = "RUNS", default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..))]
    pub shrink_runs: u32,
    /// Bugs planted in the engine for every case (docs/planted-bugs.md).
    #[command(flatten)]
    pub plant: PlantFlags,
}

/// `cargo xtask report-screenshot`.
#[derive(Debug, clap::Args)]
pub struct ReportScreenshot {
    /// A scenario name (a file in scenarios/, without .toml) or a path to a scenario file.
    pub scenario: String,
    /// The seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the screenshot (PNG); the report goes beside it, as .html.
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// The browser window's width and height in pixels, e.g. 1280x1100.
    #[arg(long, default_value = "1280x1100")]
    pub window: String,
}

/// `cargo xtask sweep <scenario…> --seeds A..B [--jobs N] [--shard i/n] [--json PATH]
/// [--max-failures N] [--duration D]`, or `cargo xtask sweep merge <json…>`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Sweep {
    /// `merge`: combine shards' JSON results.
    #[command(subcommand)]
    pub command: Option<SweepCommand>,
    /// The sweep to run.
    #[command(flatten)]
    pub run: SweepRun,
}

/// `sweep`'s own subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SweepCommand {
    /// Combine shards' `--json` results into one summary (and one JSON file with --json).
    Merge(SweepMerge),
}

/// The flags of a sweep.
#[derive(Debug, clap::Args)]
pub struct SweepRun {
    /// Scenario names (files in scenarios/, without .toml) or paths to scenario files.
    #[arg(required = true, value_name = "SCENARIO")]
    pub scenarios: Vec<String>,
    /// The seeds: `A..B` (B excluded), `A..=B`, or one seed.
    #[arg(long, required = true, value_name = "A..B")]
    pub seeds: Option<SeedRange>,
    /// Runs at once, each on its own thread and runtime [default: the machine's cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// Run only part `i` of `n` of the range (from 0): for n machines, one part each.
    #[arg(long, value_name = "i/n", default_value_t = Shard::WHOLE)]
    pub shard: Shard,
    /// Also write the results as JSON to PATH (for `sweep merge`).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Stop taking new seeds after this many failing runs.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_failures: Option<u64>,
    /// Simulated time to run, overriding each file's `duration` (as run-scenario's --duration).
    #[arg(long, value_parser = flinksim::scenario::parse_run_duration)]
    pub duration: Option<Duration>,
    /// Bugs planted in the engine, in every run.
    #[command(flatten)]
    pub plant: PlantFlags,
}

/// `sweep merge <json…> [--json PATH]`.
#[derive(Debug, clap::Args)]
pub struct SweepMerge {
    /// The shards' JSON files.
    #[arg(required = true, value_name = "JSON")]
    pub reports: Vec<PathBuf>,
    /// Also write the merged results as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
}

/// One benchmark case: a scenario for a simulated time, or a floor for a number of events.
#[derive(Clone, Debug, PartialEq)]
pub enum Case {
    /// A scenario from scenarios/ (or a path), simulated for `duration`.
    Scenario {
        /// The scenario's name or path.
        name: String,
        /// Simulated time to run.
        duration: Duration,
        /// The generator's pace instead of the scenario's (`@1.25ms`: twice the playground's rate).
        pace: Option<Duration>,
    },
    /// The plain loop of [`flinksim::floor::floor`] over `events` clicks.
    Floor {
        /// Clicks to serialize, parse and count: a whole number of windows (a multiple of 6000).
        events: u64,
    },
    /// The serde_json loop of [`flinksim::floor::floor_serde_json`] over `events` clicks.
    FloorSerdeJson {
        /// Clicks to serialize, parse and count: a whole number of windows (a multiple of 6000).
        events: u64,
    },
    /// madsim's own cost of `messages` messages ([`flinksim::floor::floor_madsim`]).
    FloorMadsim {
        /// Messages to deliver, each a timer and a task poll.
        messages: u64,
    },
}

impl FromStr for Case {
    type Err = String;

    fn from_str(text: &str) -> Result<Case, String> {
        let usage = "expected `<scenario>:<simulated time>` (e.g. `steady-state:10m`), optionally with the \
                     generator's pace (`steady-state:10m@1.25ms`), `floor:<events>`, `floor-serde_json:<events>` \
                     or `floor-madsim:<messages>`";
        let Some((name, amount)) = text.rsplit_once(':') else {
            return Err(format!("bad case `{text}`: {usage}"));
        };
        if name == "floor-madsim" {
            let messages: u64 = amount
                .replace('_', "")
                .parse()
                .map_err(|e| format!("bad message count `{amount}` in `{text}` ({e}): {usage}"))?;
            if messages == 0 {
                return Err(format!("bad message count 0 in `{text}`: the madsim floor needs a message or more"));
            }
            return Ok(Case::FloorMadsim { messages });
        }
        if name == "floor" || name == "floor-serde_json" {
            let events: u64 = amount
                .replace('_', "")
                .parse()
                .map_err(|e| format!("bad event count `{amount}` in `{text}` ({e}): {usage}"))?;
            if events == 0 || !events.is_multiple_of(6000) {
                return Err(format!(
                    "bad event count {events} in `{text}`: the floor counts whole windows, a multiple of 6000"
                ));
            }
            return Ok(if name == "floor" { Case::Floor { events } } else { Case::FloorSerdeJson { events } });
        }
        if name.is_empty() {
            return Err(format!("bad case `{text}`: no scenario: {usage}"));
        }
        let (amount, pace) = match amount.split_once('@') {
            Some((amount, pace)) => (amount, Some(pace)),
            None => (amount, None),
        };
        // The same rules as `run-scenario --duration` and a file's `duration`.
        let duration = flinksim::scenario::parse_run_duration(amount)
            .map_err(|e| format!("bad simulated time `{amount}` in `{text}` ({e}): {usage}"))?;
        let pace = pace
            .map(|pace| match flinksim::scenario::parse_run_duration(pace) {
                Ok(pace) if !pace.is_zero() => Ok(pace),
                Ok(_) => Err(format!("bad pace `{pace}` in `{text}`: the generator's pace must be above 0")),
                Err(e) => Err(format!("bad pace `{pace}` in `{text}` ({e}): {usage}")),
            })
            .transpose()?;
        Ok(Case::Scenario { name: name.to_string(), duration, pace })
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Case::Scenario { name, duration, pace: None } => write!(f, "{name}:{}", format_duration(*duration)),
            Case::Scenario { name, duration, pace: Some(pace) } => {
                write!(f, "{name}:{}@{}", format_duration(*duration), format_duration(*pace))
            }
            Case::Floor { events } => write!(f, "floor:{events}"),
            Case::FloorSerdeJson { events } => write!(f, "floor-serde_json:{events}"),
            Case::FloorMadsim { messages } => write!(f, "floor-madsim:{messages}"),
        }
    }
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
