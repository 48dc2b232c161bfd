//! The command line of `cargo xtask`: one subcommand per task, a doc line per flag.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

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
    /// Benchmark the simulator against the plain-loop floor (release build, a child process per case).
    Bench(Bench),
    /// One benchmark case in this process, reported as one JSON line (run by `bench`).
    #[command(hide = true)]
    BenchCase(BenchCase),
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
