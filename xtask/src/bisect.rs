//! `cargo xtask bisect <scenario> --seed N [--strict] [--git]`: where a failing run first went
//! wrong (the library's [`flinksim::bisect`]), or, with `--git`, a good/bad/skip exit code for
//! `git bisect run`.

use std::process::ExitCode;

use flinksim::RunError;
use flinksim::bisect::{self, Bisection};

use crate::console::{errln, outln};
use crate::flags::{Bisect};

/// `git bisect run`: the commit is good.
pub const GIT_GOOD: u8 = 0;
/// `git bisect run`: the commit is bad.
pub const GIT_BAD: u8 = 1;
/// `git bisect run`: the commit cannot be judged (the scenario cannot be loaded or run).
pub const GIT_SKIP: u8 = 125;

impl Bisect {
    /// Runs the command.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let loaded = crate::run_scenario::load(&self.scenario, self.duration);
        let scenario = match loaded {
            Ok((_, scenario)) => scenario,
            Err(error) if self.git => {
                errln!("skip: the scenario cannot be run by this build: {error:#}");
                return Ok(ExitCode::from(GIT_SKIP));
            }
            Err(error) => return Err(error),
        };
        let scenario = if self.strict { bisect::strict(&scenario) } else { scenario };
        let report = match flinksim::run(&scenario, self.seed) {
            Ok(report) => report,
            Err(RunError::BadInput(error)) if self.git => {
                errln!("skip: the scenario cannot be run by this build: {error}");
                return Ok(ExitCode::from(GIT_SKIP));
            }
            Err(RunError::BadInput(error)) => return Err((*error).into()),
            Err(error @ RunError::Panicked { .. }) => {
                errln!("bad: {error}");
                return Ok(ExitCode::from(if self.git { GIT_BAD } else { crate::run_scenario::EXIT_PANIC }));
            }
        };
        let found = bisect::bisect(&report);
        if self.git {
            return Ok(ExitCode::from(git_verdict(&found)));
        }
        outln!("{}", bisect::render(&found, &report).trim_end())?;
        let verdict = found.verdict;
        if found.is_bad() {
            outln!("replay:     {}", self.replay_command())?;
        }
        // A run the oracle accepts whose trace breaks an invariant is an engine bug.
        let code = if verdict == flinksim::verdict::VerdictClass::Passed && found.is_bad() {
            flinksim::verdict::VerdictClass::Correctness.exit_code()
        } else {
            verdict.exit_code()
        };
        Ok(ExitCode::from(code))
    }
}

impl Bisect {
    /// The command that bisects this run again, with every flag that changes the run.
    fn replay_command(&self) -> String {
        let Bisect { scenario, seed, duration, strict, git: _ } = self;
        let mut command = format!("cargo xtask bisect {scenario} --seed {seed}");
        if let Some(duration) = duration {
            command += &format!(" --duration {}", flinksim::scenario::format_duration(*duration).replace(' ', ""));
        }
        if *strict {
            command += " --strict";
        }
        command
    }
}

/// The one line and the exit code of `--git`.
fn git_verdict(found: &Bisection) -> u8 {
    let seed = found.seed;
    if !found.is_bad() {
        outln_quiet(format!("good: seed {seed} passed, and its trace breaks no invariant"));
        return GIT_GOOD;
    }
    let verdict = if found.verdict == flinksim::verdict::VerdictClass::Passed {
        "the oracle accepted it, but its trace breaks an invariant".to_owned()
    } else {
        found.verdict.to_string()
    };
    match &found.first {
        Some(first) => outln_quiet(format!(
            "bad: seed {seed} ({verdict}): first wrong at {:.3} s: [{}] {}",
            first.at.as_secs_f64(),
            first.breach.name(),
            first.breach
        )),
        None => outln_quiet(format!("bad: seed {seed} ({verdict})")),
    }
    GIT_BAD
}

/// A line for `git bisect run`'s log; a closed pipe must not change the exit code.
fn outln_quiet(line: String) {
    let _ = outln!("{line}");
}
