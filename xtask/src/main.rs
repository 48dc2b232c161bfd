//! flinksim's project commands (the cargo-xtask convention): `cargo xtask <command>`.
//!
//! The workspace's `.cargo/config.toml` sets `--cfg madsim` for every build, so these commands
//! and `cargo test` need no environment variables.

mod allocator;
mod bench;
mod bench_fuzz;
mod bench_sweep;
mod bisect;
mod check_determinism;
mod child;
mod console;
mod flags;
mod report_screenshot;
mod fuzz;
mod run_scenario;
mod sweep;

use clap::Parser;
use console::errln;

#[global_allocator]
static ALLOCATOR: allocator::MiMalloc = allocator::MiMalloc;

fn main() -> std::process::ExitCode {
    allocator::without_huge_pages();
    let flags = flags::Xtask::parse();
    let result = match flags.command {
        flags::Command::RunScenario(command) => command.run(),
        flags::Command::Bench(command) => command.run(),
        flags::Command::BenchCase(command) => command.run(),
        flags::Command::CheckDeterminism(command) => command.run(),
        flags::Command::TraceRun(command) => command.run(),
        flags::Command::Sweep(command) => command.run(),
        flags::Command::BenchSweep(command) => command.run(),
        flags::Command::Bisect(command) => command.run(),
        flags::Command::ReportScreenshot(command) => command.run(),
        flags::Command::Fuzz(command) => command.run(),
        flags::Command::BenchFuzz(command) => command.run(),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            errln!("error: {error:#}");
            std::process::ExitCode::from(run_scenario::EXIT_BAD_INPUT)
        }
    }
}

/// The repository's root (xtask lives one level below it).
fn project_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_path_buf()
}
