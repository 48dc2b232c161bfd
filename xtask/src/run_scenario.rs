//! `cargo xtask run-scenario`: runs a scenario from a seed and reports what the oracle found.

use std::process::ExitCode;

use flinksim::Scenario;
use flinksim::oracle::RowStatus;
use tabled::{Table, Tabled, settings::Style};

use crate::flags::RunScenario;

/// Exit code: the oracle accepted the run.
pub const EXIT_PASSED: u8 = 0;
/// Exit code: the oracle found a violation.
pub const EXIT_ORACLE: u8 = 1;
/// Exit code: the scenario file or a flag is wrong.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: the simulation itself panicked.
pub const EXIT_PANIC: u8 = 3;

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "window")]
    window: String,
    #[tabled(rename = "page")]
    page: String,
    #[tabled(rename = "count")]
    count: String,
    #[tabled(rename = "expected")]
    expected: u64,
    #[tabled(rename = "copies")]
    copies: usize,
    #[tabled(rename = "status")]
    status: String,
}

/// `mm:ss` of event time since epoch 0.
fn clock(ms: i64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

impl RunScenario {
    /// Runs the command; the exit code says pass, oracle failure or panic.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let root = crate::project_root();
        let path = Scenario::resolve(&self.scenario, &root.join("scenarios"))?;
        let mut scenario = Scenario::load(&path)?;
        if let Some(duration) = self.duration {
            scenario = scenario.with_duration(duration);
        }
        // The banner: the effective scenario, itself a valid scenario file.
        println!("{}", scenario.to_toml());
        let report = match flinksim::run(&scenario, self.seed) {
            Ok(report) => report,
            Err(error) => {
                eprintln!("FAILED (panic): {error}");
                eprintln!("replay: cargo xtask run-scenario {} --seed {}", self.scenario, self.seed);
                return Ok(ExitCode::from(EXIT_PANIC));
            }
        };
        if self.trace {
            for line in &report.trace {
                println!("{line}");
            }
            println!();
        }
        let timeline = flinksim::timeline::timeline(&report.events);
        if !timeline.is_empty() {
            println!("timeline:");
            for moment in &timeline {
                let s = moment.at_ms / 1000;
                println!("  {:02}:{:02}.{:03}  {}", s / 60, s % 60, moment.at_ms % 1000, moment.what);
            }
            println!();
        }
        let rows: Vec<Row> = report
            .oracle
            .rows
            .iter()
            .map(|r| Row {
                window: format!("{}-{}", clock(r.window_start_ms), clock(r.window_start_ms + 15_000)),
                page: r.page.to_string(),
                count: match r.counts.as_slice() {
                    [] => "-".into(),
                    counts => counts.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
                },
                expected: r.recount,
                copies: r.counts.len(),
                status: match r.status {
                    RowStatus::Ok => "ok",
                    RowStatus::Duplicated => "duplicated",
                    RowStatus::WrongCount => "WRONG COUNT",
                    RowStatus::Missing => "MISSING",
                    RowStatus::EmptyAtSource => "empty at source",
                }
                .into(),
            })
            .collect();
        println!("{}", Table::new(rows).with(Style::psql()));
        println!();
        let oracle = &report.oracle;
        println!("scenario:   {} ({})", report.scenario, path.display());
        println!("seed:       {}", report.seed);
        println!("simulated:  {:.1?}   wall: {:.3?}", report.simulated, report.wall);
        println!("events:     {} in input, {} results in output", oracle.input_events, oracle.output_records);
        println!("network:    {} messages", report.messages);
        println!("trace:      {} lines, hash {}", report.trace.len(), report.trace_hash_hex());
        for note in &oracle.notes {
            println!("note:       {note}");
        }
        if report.passed() {
            println!("verdict:    PASSED");
            Ok(ExitCode::from(EXIT_PASSED))
        } else {
            for violation in &oracle.violations {
                println!("violation:  {violation}");
            }
            println!("verdict:    FAILED (oracle)");
            println!("replay:     cargo xtask run-scenario {} --seed {}", self.scenario, self.seed);
            Ok(ExitCode::from(EXIT_ORACLE))
        }
    }
}
