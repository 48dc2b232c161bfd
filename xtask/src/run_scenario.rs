//! `cargo xtask run-scenario`: runs a scenario from a seed and reports what the oracle found.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;
use flinksim::{Report, RunError, Scenario, liveness};
use flinksim::scenario::{Step, StepTime, format_duration};
use flinksim::oracle::{OracleReport, RowStatus, WindowRow, event_clock};
use flinksim::verdict::VerdictClass;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tabled::{Table, Tabled, settings::Style};

use crate::console::{errln, outln};
use crate::flags::{RunScenario, Windows};

/// Exit code: the scenario file or a flag is wrong ([`VerdictClass::BadInput`]).
pub const EXIT_BAD_INPUT: u8 = VerdictClass::BadInput.exit_code();
/// Exit code: the simulation itself panicked ([`VerdictClass::Panic`]).
pub const EXIT_PANIC: u8 = VerdictClass::Panic.exit_code();

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "window")]
    window: String,
    #[tabled(rename = "page")]
    page: String,
    #[tabled(rename = "copies")]
    count: String,
    #[tabled(rename = "input")]
    recount: u64,
    #[tabled(rename = "counted")]
    counted: u64,
    #[tabled(rename = "late")]
    late: u64,
    #[tabled(rename = "lost")]
    lost: u64,
    #[tabled(rename = "unaccounted")]
    unaccounted: i64,
    #[tabled(rename = "status")]
    status: String,
}


impl RunScenario {
    /// Runs the command; the exit code says pass, oracle failure or panic.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let (path, mut scenario) = load(&self.scenario, self.duration)?;
        scenario.plants = self.plant.plants();
        // The banner: the effective scenario, itself a valid scenario file (a planted bug is
        // not part of it, so a comment names them).
        if !scenario.plants.is_empty() {
            outln!("# planted bugs: {} (--plant; docs/planted-bugs.md)", scenario.plants)?;
        }
        outln!("{}", scenario.to_toml())?;
        let (report, wall) = match run_showing_progress(&scenario, self.seed) {
            Ok(done) => done,
            Err(RunError::BadInput(error)) => return Err((*error).into()),
            Err(error) => {
                errln!("FAILED (panic): {error}");
                errln!("replay: {}", replay(&self));
                return Ok(ExitCode::from(EXIT_PANIC));
            }
        };
        if let Some(path) = &self.trace_out {
            let text: String = report.trace.iter().map(|line| format!("{line}\n")).collect();
            std::fs::write(path, text).with_context(|| format!("cannot write the trace to {}", path.display()))?;
        }
        if let Some(path) = &self.report {
            std::fs::write(path, flinksim::report_html::render(&report))
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
        }
        if self.trace {
            for line in &report.trace {
                outln!("{line}")?;
            }
            outln!()?;
        }
        let timeline = flinksim::timeline::timeline(&report.events);
        if !timeline.is_empty() {
            outln!("timeline:")?;
            for moment in &timeline {
                let s = moment.at_ms / 1000;
                outln!("  {:02}:{:02}.{:03}  {}", s / 60, s % 60, moment.at_ms % 1000, moment.what)?;
            }
            outln!()?;
        }
        let oracle = &report.oracle;
        outln!("{}", summary(oracle))?;
        let shown: Vec<&WindowRow> = match self.windows {
            Windows::All => oracle.rows.iter().collect(),
            Windows::Problems => oracle.rows_not_ok().collect(),
        };
        if !shown.is_empty() {
            let capped = self.windows == Windows::Problems && shown.len() > ROWS_SHOWN;
            let rows: Vec<Row> = shown.iter().take(if capped { ROWS_SHOWN } else { shown.len() }).map(|r| row(r)).collect();
            outln!("{}", Table::new(rows).with(Style::psql()))?;
            if capped {
                outln!("… and {} more rows that are not ok (--windows all prints every row)", shown.len() - ROWS_SHOWN)?;
            }
        }
        outln!()?;
        outln!("scenario:   {} ({})", report.scenario, path.display())?;
        outln!("seed:       {}", report.seed)?;
        if !scenario.plants.is_empty() {
            outln!("planted:    {}", scenario.plants)?;
        }
        outln!("simulated:  {:.1?}   wall: {:.3?}", report.simulated, wall)?;
        outln!("events:     {} in input, {} results in output", oracle.input_events, oracle.output_records)?;
        outln!("network:    {} messages", report.messages)?;
        // The two isolation levels read different things while a transaction is open, or where
        // aborted transactions hold results.
        if oracle.output_partitions.iter().any(|p| p.last_stable_offset < p.high_watermark || p.read_committed != p.read_uncommitted) {
            for partition in &oracle.output_partitions {
                outln!("readers:    {partition}")?;
            }
        }
        outln!("trace:      {} lines, hash {}", report.trace.len(), report.trace_hash_hex())?;
        for detection in &report.liveness.detections {
            outln!("detection:  {detection}")?;
        }
        for recovery in &report.liveness.recoveries {
            outln!("recovery:   {recovery}")?;
        }
        if let Some(tail) = &report.liveness.tail {
            outln!("tail:       {tail}")?;
        }
        for note in &oracle.notes {
            outln!("note:       {note}")?;
        }
        for violation in &oracle.violations {
            outln!("violation:  [{}] {violation}", violation.class().name())?;
        }
        // Where the trace first went wrong; `cargo xtask bisect` prints the chain of events to it.
        if let Some(first) = report.invariants.first() {
            outln!("wrong from: {first} ({} findings in all; cargo xtask bisect shows the chain)", report.invariants.len())?;
        }
        if let Some(pitfall) = &scenario.pitfall {
            outln!("pitfall:    {}", pitfall.what)?;
            outln!("  why:      {}", pitfall.why)?;
            outln!("  shown:    {}", flinksim::pitfall::shown(&report))?;
            outln!("  fix:      {}", pitfall.fix)?;
            outln!("  see:      {}", pitfall.reference)?;
        }
        let verdict = oracle.verdict();
        outln!("verdict:    {verdict}")?;
        if verdict != VerdictClass::Passed {
            outln!("replay:     {}", replay(&self))?;
        }
        Ok(ExitCode::from(verdict.exit_code()))
    }
}

/// Loads a scenario by name or path for a command, shortened by `--duration`: steps dropped by it
/// are warned about on stderr, and a fault left without its heal is refused with the duration
/// that works.
pub fn load(given: &str, duration: Option<Duration>) -> anyhow::Result<(std::path::PathBuf, Scenario)> {
    let root = crate::project_root();
    let path = Scenario::resolve(given, &root.join("scenarios"))?;
    let mut scenario = Scenario::load(&path)?;
    let whole = scenario.clone();
    if let Some(duration) = duration {
        // The run goes on without them, and the banner leaves them out: say so.
        for step in scenario.steps_after(duration) {
            errln!("warning: {}", step_after_end(&path, step, duration));
        }
        scenario = scenario.with_duration(duration);
    }
    if let Err(error) = liveness::check_tail(&scenario) {
        // Shortened, a scenario may lose the heal of a fault it still runs.
        if let Some(duration) = duration
            && liveness::check_tail(&whole).is_ok()
        {
            anyhow::bail!(
                "{error}\n(the scenario heals it after the end of a {} run: use --duration {} or longer, or one \
                 that ends at or before its first fault)",
                format_duration(duration),
                format_duration(liveness::shortest_duration(&whole))
            );
        }
        return Err(error.into());
    }
    Ok((path, scenario))
}

/// How many rows that are not ok a run prints before it counts the rest.
const ROWS_SHOWN: usize = 30;

fn row(r: &WindowRow) -> Row {
    let expected = r.expected && !matches!(r.status, RowStatus::Ok | RowStatus::EmptyAtSource);
    Row {
        window: format!("{}-{}", event_clock(r.window_start_ms), event_clock(r.window_start_ms + 15_000)),
        page: r.page.to_string(),
        count: match r.counts.as_slice() {
            [] => "-".into(),
            counts => counts.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        },
        recount: r.recount,
        counted: r.counted,
        late: r.late,
        lost: r.lost,
        unaccounted: r.unaccounted,
        status: if expected { format!("{} (expected)", r.status.name()) } else { r.status.name().into() },
    }
}

/// One line over the whole table: `40 windows × 6 pages: all 1000, once`, or how many rows are
/// not ok and of what kind.
fn summary(oracle: &OracleReport) -> String {
    let windows: std::collections::BTreeSet<i64> = oracle.rows.iter().map(|r| r.window_start_ms).collect();
    let pages: std::collections::BTreeSet<&str> = oracle.rows.iter().map(|r| r.page.as_str()).collect();
    let head = format!("windows:    {} windows × {} pages", windows.len(), pages.len());
    let not_ok: Vec<&WindowRow> = oracle.rows_not_ok().collect();
    let empty_rows = oracle.rows.iter().filter(|r| r.status == RowStatus::EmptyAtSource).count();
    let empty = if empty_rows > 0 { format!(" ({empty_rows} rows empty at the source)") } else { String::new() };
    if not_ok.is_empty() {
        let full = oracle.rows.iter().filter(|r| r.status == RowStatus::Ok).all(|r| r.counts == [1000]);
        let what = if full { "all 1000, once" } else { "all as input holds them, once" };
        return format!("{head}: {what}{empty}");
    }
    let count = |status| not_ok.iter().filter(|r| r.status == status).count();
    let kinds: Vec<String> = [
        RowStatus::WrongCount,
        RowStatus::Missing,
        RowStatus::Short,
        RowStatus::Lost,
        RowStatus::Late,
        RowStatus::Duplicated,
    ]
    .into_iter()
    .filter(|status| count(*status) > 0)
    .map(|status| format!("{} {}", count(status), status.name().to_lowercase()))
    .collect();
    let ok = oracle.rows.len() - not_ok.len() - empty_rows;
    let t = oracle.totals();
    format!(
        "{head}: {ok} rows ok, {}{empty}\naccounting: {} events in input = {} counted + {} late + {} lost + {} unaccounted",
        kinds.join(", "),
        t.recount,
        t.counted,
        t.late,
        t.lost,
        t.unaccounted
    )
}

/// How long a run goes before its progress shows: a shorter run prints nothing more.
const PROGRESS_AFTER: Duration = Duration::from_secs(2);

/// Runs the scenario on a thread of its own, while this one shows on stderr, once the run has
/// taken [`PROGRESS_AFTER`] of wall time, the simulated time reached against the duration (one
/// line redrawn in place; indicatif draws only on a terminal). Wall time is read here, outside
/// the simulation, which reports only its simulated time.
/// Runs the scenario, showing its progress; returns the report and the wall time it took (only
/// xtask reads the wall clock: the run itself knows simulated time only).
fn run_showing_progress(scenario: &Scenario, seed: u64) -> Result<(Report, Duration), RunError> {
    let progress = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let (done, finished) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let run = scope.spawn({
            let progress = progress.clone();
            move || {
                let outcome = flinksim::run_with_progress(scenario, seed, progress);
                drop(done);
                outcome
            }
        });
        let mut bar: Option<ProgressBar> = None;
        while let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(Duration::from_millis(100)) {
            if bar.is_none() && started.elapsed() >= PROGRESS_AFTER {
                let style = ProgressStyle::with_template("{msg} [{wide_bar}] {percent:>3}%")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                let total = scenario.duration.as_millis() as u64;
                bar = Some(ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(style));
            }
            if let Some(bar) = &bar {
                let reached_ms = progress.load(Ordering::Relaxed);
                bar.set_position(reached_ms);
                bar.set_message(progress_message(reached_ms, scenario.duration));
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let outcome = run.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        outcome.map(|report| (report, started.elapsed()))
    })
}

/// `simulated 3m 10s of 10m`: whole seconds reached, against the duration; past the end, the
/// oracle reads the topics back.
fn progress_message(reached_ms: u64, duration: Duration) -> String {
    let reached = Duration::from_secs(reached_ms / 1000);
    if reached >= duration {
        return format!("simulated {0} of {0}, the oracle reading the topics back", format_duration(duration));
    }
    format!("simulated {} of {}", format_duration(reached), format_duration(duration))
}

/// The replay line's text: the command, then the build it replays on.
pub fn replay(flags: &RunScenario) -> String {
    format!("{}   # {}", flags.replay_command(), build())
}

/// The build a replay needs: `build <commit>` (with `-dirty` when tracked files have changes), or
/// `unknown build` when git cannot say. Read at run time: `cargo xtask` rebuilds first, so the
/// tree is the build. Untracked files are left out: notes lying around do not change a build.
pub fn build() -> String {
    let git = |args: &[&str]| {
        let output = std::process::Command::new("git").arg("-C").arg(crate::project_root()).args(args).output().ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) if !commit.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            format!("build {commit}{}", if dirty { "-dirty" } else { "" })
        }
        _ => "unknown build".to_owned(),
    }
}

/// Why a step will not run under `--duration end`, as `<file>:<line>: step <command> at <time>
/// will not run: it is after the end (--duration <end>)` with the command in backquotes.
fn step_after_end(path: &Path, step: &Step, end: Duration) -> String {
    let why = match step.at {
        StepTime::At(at) if at == end => "it is at the end",
        StepTime::At(_) => "it is after the end",
        StepTime::Between { .. } | StepTime::After { .. } => "it may fall at or after the end",
    };
    format!(
        "{}:{}: step `{}` at {} will not run: {why} (--duration {})",
        path.display(),
        step.line,
        step.command,
        step.at,
        format_duration(end)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_simulated_time_against_the_duration() {
        let ten_minutes = Duration::from_secs(600);
        assert_eq!(progress_message(0, ten_minutes), "simulated 0s of 10m");
        assert_eq!(progress_message(190_999, ten_minutes), "simulated 3m 10s of 10m");
        // The oracle reads after the end; its time is not the run's.
        assert_eq!(
            progress_message(610_000, ten_minutes),
            "simulated 10m of 10m, the oracle reading the topics back"
        );
    }

    #[test]
    fn build_names_the_commit_or_says_unknown() {
        let build = build();
        assert!(build == "unknown build" || build.starts_with("build "), "{build}");
        assert!(!build.contains('\n'), "{build}");
    }

    /// A `--duration` shorter than a step's time dropped the step without a word.
    #[test]
    fn steps_after_a_shorter_duration_are_named_with_line_time_and_command() {
        let root = crate::project_root();
        let path = Scenario::resolve("failure-recovery", &root.join("scenarios")).unwrap();
        let scenario = Scenario::load(&path).unwrap();
        let end = Duration::from_secs(150);
        let warnings: Vec<String> = scenario.steps_after(end).map(|step| step_after_end(&path, step, end)).collect();
        assert_eq!(
            warnings,
            [format!(
                "{}:{}: step `docker-compose up -d taskmanager` at 3m will not run: it is after the end \
                 (--duration 2m 30s)",
                path.display(),
                scenario.steps[1].line
            )]
        );
        let ranged = Scenario::load(&root.join("scenarios/failure-recovery-exactly-once.toml")).unwrap();
        let step = &ranged.steps[0];
        assert!(
            step_after_end(&path, step, Duration::from_secs(90))
                .ends_with("at between 1m and 2m will not run: it may fall at or after the end (--duration 1m 30s)")
        );
    }
}
