//! The command line of `cargo xtask`: one subcommand per task, a doc line per flag.

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
}

/// `cargo xtask run-scenario <scenario> [--seed N] [--duration 10m]`.
#[derive(Debug, clap::Args)]
pub struct RunScenario {
    /// A scenario name (a file in scenarios/, without .toml) or a path to a scenario file.
    pub scenario: String,
    /// The seed: the same seed replays the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated time to run, overriding the file's `duration` (e.g. 90s, 10m, 1h).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Print the whole trace, one line per significant event.
    #[arg(long)]
    pub trace: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("bad duration `{text}` ({e}): expected e.g. 200ms, 90s, 10m"))
}
