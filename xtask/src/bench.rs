//! `cargo xtask bench`: how fast the simulator runs, against the floor.
//!
//! The command measures the build it runs from: as `cargo xtask bench`, the dev profile's build
//! that `cargo xtask run-scenario` and `cargo test` share, so its figures are the speed of what
//! users run (the table's heading names the executable and its profile). Each repetition of
//! each case runs in its own child process, `xtask bench-case <case> --reps 1`, because peak
//! resident memory only grows within a process; the child times the run outside the simulation's
//! runtime and prints one JSON line ([`CaseResult`]). Repetitions run in rounds, every case once
//! per round, so that a noisy spell on the machine slows all cases alike rather than all the
//! repetitions of one. The parent prints the table, the linearity and the
//! targets. The targets only report: the command fails only when a child crashes.
//!
//! Two floors run side by side: ours (the engine's codec and date caches, what the simulator
//! itself does per record) and the same loop written with serde_json, which is what the
//! 80 ms floor measures. The "× floor" column is against ours; one target is against serde_json's.
//! A third floor is madsim's own cost per message ([`flinksim::floor::floor_madsim`]): the bench
//! sets it against the speed case's messages, to split its wall time into the simulator's share
//! and the engine's, beside what the two floor targets allow. The speed case also runs at twice
//! the playground's event rate: about the same messages and twice the events, so the two runs
//! split its wall time into a cost per event and a cost per message ([`Split`]).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use flinksim::Scenario;
use flinksim::scenario::format_duration;
use serde::{Deserialize, Serialize};
use tabled::{Table, Tabled, settings::Style};

use crate::console::{errln, outln};
use crate::child::child_result;
use crate::flags::{Bench, BenchCase, Case};

/// Exit code: every case ran (whatever the targets say).
pub const EXIT_OK: u8 = 0;
/// Exit code: a case's child process crashed (the simulation panicked, or the floor miscounted).
pub const EXIT_CRASHED: u8 = 3;

/// The seed of every benchmarked run.
const SEED: u64 = 1;
/// The scenarios benchmarked, in table order.
const SCENARIOS: [&str; 3] = ["steady-state", "failure-recovery", "failure-recovery-exactly-once"];
/// The scenario the speed targets are for: the exactly-once job killed and recovered.
const SPEED_CASE: &str = "failure-recovery-exactly-once";
/// The job with `--backpressure`, measured for 10 minutes.
const BACKPRESSURE: &str = "backpressure";
/// The start-up run: its wall time is the fixed cost subtracted for the linearity.
const STARTUP: Duration = Duration::from_secs(10);
/// The short run.
const SHORT: Duration = Duration::from_secs(10 * 60);
/// The long run.
const LONG: Duration = Duration::from_secs(60 * 60);
/// The generator's rate: 6 pages × 1000 clicks per 15 s window.
const EVENTS_PER_SECOND: u64 = 400;
/// The generator's pace at that rate, the playground's.
const PLAYGROUND_PACE: Duration = Duration::from_micros(2500);
/// The generator's pace for twice that rate.
const DOUBLE_RATE_PACE: Duration = Duration::from_micros(1250);

/// The speed and memory targets. Speed is marginal: the hour minus the ten minutes, so that
/// start-up cancels; `--quick` runs no hour and reports the ten minutes instead.
const TARGET_REAL_TIME: f64 = 3000.0;
/// The speed case's wall time over the engine-codec floor's, for the same events.
const TARGET_FLOOR: f64 = 12.0;
/// The speed case's wall time over the serde_json floor's, for the same events.
const TARGET_SERDE_JSON_FLOOR: f64 = 3.0;
const TARGET_LINEARITY: f64 = 6.5;
/// Peak resident memory of an hour, for both sink modes.
const TARGET_PEAK_MB: f64 = 150.0;

impl Case {
    /// The floor with as many events as `duration` of the generator produces.
    fn floor_for(duration: Duration) -> Case {
        Case::Floor { events: duration.as_secs() * EVENTS_PER_SECOND }
    }

    /// The serde_json floor with as many events as `duration` of the generator produces.
    fn floor_serde_json_for(duration: Duration) -> Case {
        Case::FloorSerdeJson { events: duration.as_secs() * EVENTS_PER_SECOND }
    }

    /// The madsim floor with about as many messages as `duration` of the speed case carries
    /// (about one per event); the bench uses its cost per message.
    fn floor_madsim_for(duration: Duration) -> Case {
        Case::FloorMadsim { messages: duration.as_secs() * EVENTS_PER_SECOND }
    }
}

/// What a `bench-case` child reports, as one JSON line on stdout.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case, as given on the command line.
    pub case: String,
    /// The scenario's name, `floor`, `floor (serde_json)` or `floor (madsim)`.
    pub scenario: String,
    /// Simulated seconds one run covered (none for the floor).
    pub simulated_secs: Option<f64>,
    /// Click events in one run (the `input` topic's, for a scenario; none for the madsim floor).
    pub events: u64,
    /// Messages the simulated network carried in one run (for a scenario, and the madsim floor's).
    #[serde(default)]
    pub messages: Option<u64>,
    /// Wall seconds of each repetition, in order.
    pub wall_secs: Vec<f64>,
    /// Peak resident memory of the child process (`VmHWM`), in KiB.
    pub peak_rss_kib: u64,
    /// Repetitions whose oracle rejected the run (measured all the same).
    pub oracle_failures: u32,
}

impl BenchCase {
    /// Runs the case `reps` times in this process and prints a [`CaseResult`] as one JSON line.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let mut result = CaseResult {
            case: self.case.to_string(),
            scenario: String::new(),
            simulated_secs: None,
            events: 0,
            messages: None,
            wall_secs: Vec::new(),
            peak_rss_kib: 0,
            oracle_failures: 0,
        };
        match &self.case {
            Case::Scenario { name, duration, pace } => {
                let path = Scenario::resolve(name, &crate::project_root().join("scenarios"))?;
                // Steps after the new end are dropped: the 10 s start-up run of failure-recovery
                // stays 10 s instead of reaching its 3m step.
                let mut scenario = Scenario::load(&path)?.with_duration(*duration);
                result.scenario = scenario.name.clone();
                if let Some(pace) = pace {
                    scenario.generator.pace = *pace;
                    result.scenario = format!("{} (pace {})", scenario.name, format_duration(*pace));
                }
                for _ in 0..self.reps {
                    // flinksim::run starts the runtime on its own thread: this clock is the wall's.
                    let started = Instant::now();
                    let report = match flinksim::run(&scenario, SEED) {
                        Ok(report) => report,
                        Err(flinksim::RunError::BadInput(error)) => return Err((*error).into()),
                        Err(error) => {
                            errln!("bench-case {}: FAILED (panic): {error}", self.case);
                            let flags = crate::flags::RunScenario {
                                scenario: name.clone(),
                                seed: SEED,
                                duration: Some(*duration),
                                trace: false,
                                windows: crate::flags::Windows::Problems,
                                trace_out: None,
                                report: None,
                plant: Default::default(),
                            };
                            let paced = pace.map_or(String::new(), |p| format!(" with [generator] pace = \"{}\"", format_duration(p)));
                            errln!("replay: {}{paced}", crate::run_scenario::replay(&flags));
                            return Ok(ExitCode::from(EXIT_CRASHED));
                        }
                    };
                    result.wall_secs.push(started.elapsed().as_secs_f64());
                    result.simulated_secs = Some(report.simulated.as_secs_f64());
                    result.events = report.oracle.input_events;
                    result.messages = Some(report.messages);
                    result.oracle_failures += u32::from(!report.passed());
                }
            }
            &Case::Floor { events } | &Case::FloorSerdeJson { events } => {
                let (scenario, floor): (_, fn(u64) -> _) = match self.case {
                    Case::FloorSerdeJson { .. } => ("floor (serde_json)", flinksim::floor::floor_serde_json),
                    _ => ("floor", flinksim::floor::floor),
                };
                result.scenario = scenario.into();
                result.events = events;
                for _ in 0..self.reps {
                    let started = Instant::now();
                    let counts = floor(events);
                    let whole = counts.len() as u64 == events / 1000 && counts.values().all(|&c| c == 1000);
                    result.wall_secs.push(started.elapsed().as_secs_f64());
                    if !whole {
                        errln!("bench-case {}: FAILED: the floor did not count 1000 per window and page", self.case);
                        return Ok(ExitCode::from(EXIT_CRASHED));
                    }
                }
            }
            &Case::FloorMadsim { messages } => {
                result.scenario = "floor (madsim)".into();
                result.messages = Some(messages);
                for _ in 0..self.reps {
                    let started = Instant::now();
                    let delivered = flinksim::floor::floor_madsim(messages);
                    result.wall_secs.push(started.elapsed().as_secs_f64());
                    if delivered != messages {
                        errln!("bench-case {}: FAILED: the madsim floor delivered {delivered} messages", self.case);
                        return Ok(ExitCode::from(EXIT_CRASHED));
                    }
                }
            }
        }
        result.peak_rss_kib = peak_rss_kib()?;
        outln!("{}", serde_json::to_string(&result).context("cannot encode the case's result")?)?;
        Ok(ExitCode::from(EXIT_OK))
    }
}

/// This process's peak resident memory so far, in KiB (`VmHWM` in /proc/self/status).
fn peak_rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("cannot read /proc/self/status for the peak resident memory")?;
    let line =
        status.lines().find_map(|line| line.strip_prefix("VmHWM:")).context("/proc/self/status has no VmHWM line")?;
    line.trim()
        .strip_suffix("kB")
        .and_then(|kib| kib.trim().parse().ok())
        .with_context(|| format!("cannot read VmHWM `{}` as kB", line.trim()))
}

/// One case's measurements and what the parent derives from them.
#[derive(Clone, Debug, Serialize)]
struct Measured {
    #[serde(skip)]
    kind: Case,
    case: String,
    scenario: String,
    simulated_secs: Option<f64>,
    events: u64,
    messages: Option<u64>,
    wall_secs: Vec<f64>,
    wall_secs_median: f64,
    simulated_per_wall: Option<f64>,
    events_per_wall_sec: f64,
    /// Wall time over our floor's wall time for the same number of events.
    ratio_to_floor: Option<f64>,
    peak_rss_mb: f64,
    oracle_failures: u32,
}

/// A pass/fail marker for one of the targets.
#[derive(Clone, Debug, Serialize)]
struct Target {
    target: String,
    value: Option<f64>,
    limit: String,
    pass: Option<bool>,
}

/// The linearity of one scenario: (60-minute wall − start-up) / (10-minute wall − start-up).
#[derive(Clone, Debug, Serialize)]
struct Linearity {
    scenario: String,
    startup_wall_secs: f64,
    ratio: Option<f64>,
}

/// The `--json` file.
#[derive(Serialize)]
struct JsonReport<'a> {
    seed: u64,
    reps: u32,
    quick: bool,
    rows: &'a [Measured],
    linearity: &'a [Linearity],
    /// The speed case's marginal wall time split into madsim's floor and the rest.
    account: Option<&'a Account>,
    /// The same wall time as a cost per event and a cost per message.
    split: Option<&'a Split>,
    targets: &'a [Target],
    skipped: &'a [String],
    crashed: &'a [String],
    sweep: Option<&'a crate::bench_sweep::SweepBench>,
    /// The fuzz case: a schedule's cost over its run, and a shrink timed.
    fuzz: Option<&'a crate::bench_fuzz::FuzzMeasured>,
}

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "scenario")]
    scenario: String,
    #[tabled(rename = "simulated")]
    simulated: String,
    #[tabled(rename = "events")]
    events: String,
    #[tabled(rename = "messages")]
    messages: String,
    #[tabled(rename = "wall (median)")]
    wall: String,
    #[tabled(rename = "simulated/wall")]
    speed: String,
    #[tabled(rename = "events/wall s")]
    throughput: String,
    #[tabled(rename = "× floor")]
    floor: String,
    #[tabled(rename = "peak RSS (MB)")]
    peak: String,
}

impl Bench {
    /// Runs every case in a child process of this executable, prints the table and markers.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let reps = self.reps.unwrap_or(if self.quick { 1 } else { 5 });
        let root = crate::project_root();
        let exe = std::env::current_exe().context("cannot find this executable's path")?;
        outln!("build: {} ({})", exe.display(), profile_of(&exe))?;
        let plan = plan(self.quick);

        // A scenario that is not in this checkout is skipped (and said so), not a crash.
        let mut skipped = Vec::new();
        let mut missing = Vec::new();
        for name in SCENARIOS {
            let loaded = Scenario::resolve(name, &root.join("scenarios")).and_then(|path| Scenario::load(&path));
            if let Err(error) = loaded {
                errln!("bench: skipping {name}: {error}");
                skipped.push(format!("{name}: {error}"));
                missing.push(name);
            }
        }
        let plan: Vec<Case> = plan
            .into_iter()
            .filter(|case| match case {
                Case::Scenario { name, .. } => !missing.contains(&name.as_str()),
                Case::Floor { .. } | Case::FloorSerdeJson { .. } | Case::FloorMadsim { .. } => true,
            })
            .collect();

        // Round by round, every case once per round: a noisy spell on the machine then slows
        // every case alike instead of all the repetitions of one (the linearity compares cases).
        let mut results: Vec<Result<Option<CaseResult>, String>> = plan.iter().map(|_| Ok(None)).collect();
        for round in 1..=reps.max(1) {
            for (i, case) in plan.iter().enumerate() {
                let Ok(so_far) = &mut results[i] else { continue };
                errln!("bench: round {round}/{reps}: [{}/{}] {case}", i + 1, plan.len());
                match run_one_child(&exe, &root, case) {
                    Ok(run) => *so_far = Some(merge(so_far.take(), run)),
                    Err(error) => {
                        errln!("bench: {case} CRASHED: {error:#}");
                        results[i] = Err(format!("{case}: {error:#}"));
                    }
                }
            }
        }
        let mut measured = Vec::new();
        let mut crashed = Vec::new();
        for (case, result) in plan.iter().zip(results) {
            match result {
                Ok(Some(result)) => measured.push(measure(case, result)),
                Ok(None) => {}
                Err(error) => crashed.push(error),
            }
        }
        let floors: Vec<Measured> = measured.iter().filter(|m| matches!(m.kind, Case::Floor { .. })).cloned().collect();
        for m in measured.iter_mut().filter(|m| !matches!(m.kind, Case::FloorMadsim { .. })) {
            let floor = floors.iter().find(|f| m.events.abs_diff(f.events) <= f.events / 100);
            m.ratio_to_floor = floor.map(|f| m.wall_secs_median / f.wall_secs_median);
        }

        outln!("{}", Table::new(measured.iter().map(row)).with(Style::psql()))?;
        outln!("seed {SEED}; median of {reps} repetition(s), each in its own process, in rounds of every case; × floor: wall time over")?;
        outln!("the plain loop's (serialize, parse, count per window and page) for the same number of events, with the")?;
        outln!("engine's codec and date caches; floor (serde_json): the same loop with serde_json and uncached dates;")?;
        outln!("floor (madsim): only madsim's timer and task poll per message, as many messages as its row says.")?;
        let linearity = linearity(&measured);
        for l in &linearity {
            match l.ratio {
                Some(ratio) => outln!(
                    "linearity {}: (60m wall − start-up) / (10m wall − start-up) = {ratio:.2}× (start-up: {:.3} s for 10s)",
                    l.scenario, l.startup_wall_secs
                )?,
                None => outln!("linearity {}: n/a (10m wall not above start-up)", l.scenario)?,
            }
        }
        if let (Some(bp), Some(steady)) = (find(&measured, BACKPRESSURE, SHORT), find(&measured, "steady-state", SHORT)) {
            let per_minute = |m: &Measured| 1000.0 * m.wall_secs_median / (SHORT.as_secs_f64() / 60.0);
            outln!(
                "backpressure variant: {:.1} ms of wall time per simulated minute (steady-state: {:.1} ms), {:.2}×",
                per_minute(bp),
                per_minute(steady),
                bp.wall_secs_median / steady.wall_secs_median
            )?;
        }
        let account = account(&measured);
        if let Some(a) = &account {
            outln!(
                "{SPEED_CASE} {}: {:.3} s of wall time for {} messages; madsim's floor for them {:.3} s \
                 ({:.0} ns a message), the engine's own {:.3} s; 12× the floor allows {}, 3× the serde_json floor {}",
                a.span,
                a.wall_secs,
                thousands(a.messages),
                a.madsim_secs,
                a.madsim_ns_per_message,
                a.engine_secs,
                a.floor_allows_secs.map_or("n/a".into(), |s| format!("{s:.3} s")),
                a.serde_json_floor_allows_secs.map_or("n/a".into(), |s| format!("{s:.3} s")),
            )?;
        }
        let split = split(&measured);
        if let Some(s) = &split {
            outln!(
                "{SPEED_CASE} per event and per message (solved from its runs at 400 and 800 events/s, pace {} \
                 and {}): an event costs {:.0} ns ({:.1}× the engine-codec floor's {:.0} ns, {:.2}× serde_json's {:.0} ns), \
                 a message {:.0} ns; at 400 events/s the run carries {:.2} messages an event, and {:.0}% of its wall time \
                 is per message; at 800 events/s it runs at {:.1}× the engine-codec floor and {:.2}× serde_json's",
                format_duration(PLAYGROUND_PACE),
                format_duration(DOUBLE_RATE_PACE),
                s.per_event_ns,
                s.per_event_ns / s.floor_ns_per_event,
                s.floor_ns_per_event,
                s.per_event_ns / s.serde_json_floor_ns_per_event,
                s.serde_json_floor_ns_per_event,
                s.per_message_ns,
                s.messages_per_event,
                100.0 * s.per_message_share,
                s.double_rate_floor_ratio,
                s.double_rate_serde_json_ratio,
            )?;
        }
        let targets = targets(&measured, &linearity, self.quick);
        outln!("targets (reported only):")?;
        for t in &targets {
            let mark = match t.pass {
                Some(true) => "PASS",
                Some(false) => "FAIL",
                None => "n/a ",
            };
            outln!("  [{mark}] {} {}", t.target, t.limit)?;
        }
        for m in measured.iter().filter(|m| m.oracle_failures > 0) {
            outln!("note: {}: the oracle rejected {} of {reps} repetition(s)", m.case, m.oracle_failures)?;
        }
        let sweep = match crate::bench_sweep::measure(&exe, &root, self.quick) {
            Ok(sweep) => Some(sweep),
            Err(error) => {
                crashed.push(format!("sweep: {error:#}"));
                None
            }
        };
        let fuzz = match crate::bench_fuzz::measure(&exe, &root, self.quick) {
            Ok(fuzz) => Some(fuzz),
            Err(error) => {
                crashed.push(format!("fuzz: {error:#}"));
                None
            }
        };
        for s in &skipped {
            outln!("skipped: {s}")?;
        }
        for c in &crashed {
            outln!("CRASHED: {c}")?;
        }

        if let Some(path) = &self.json {
            let report = JsonReport {
                seed: SEED,
                reps,
                quick: self.quick,
                rows: &measured,
                linearity: &linearity,
                account: account.as_ref(),
                split: split.as_ref(),
                targets: &targets,
                skipped: &skipped,
                crashed: &crashed,
                sweep: sweep.as_ref(),
                fuzz: fuzz.as_ref(),
            };
            let text = serde_json::to_string_pretty(&report).context("cannot encode the benchmark as JSON")?;
            std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))?;
            outln!("json: {}", path.display())?;
        }
        Ok(ExitCode::from(if crashed.is_empty() { EXIT_OK } else { EXIT_CRASHED }))
    }
}

/// The cases, in the order they run and appear in the table.
fn plan(quick: bool) -> Vec<Case> {
    let durations: &[Duration] = if quick { &[SHORT] } else { &[STARTUP, SHORT, LONG] };
    let mut plan = Vec::new();
    for name in SCENARIOS {
        for &duration in durations {
            plan.push(Case::Scenario { name: name.into(), duration, pace: None });
        }
    }
    // The speed case at twice the playground's event rate, beside it: the two together split
    // its wall time into a cost per event and a cost per message (see `account`).
    if !quick {
        for duration in [SHORT, LONG] {
            plan.push(Case::Scenario { name: SPEED_CASE.into(), duration, pace: Some(DOUBLE_RATE_PACE) });
        }
    }
    // The --backpressure variant, for its cost per simulated minute against steady-state's.
    plan.push(Case::Scenario { name: BACKPRESSURE.into(), duration: SHORT, pace: None });
    plan.push(Case::floor_for(SHORT));
    plan.push(Case::floor_serde_json_for(SHORT));
    if !quick {
        plan.push(Case::floor_for(LONG));
        plan.push(Case::floor_serde_json_for(LONG));
    }
    // About as many messages as the speed case's span carries: the hour minus the ten minutes.
    plan.push(Case::floor_madsim_for(if quick { SHORT } else { LONG - SHORT }));
    plan
}

/// The cargo profile an executable was built with, from its directory under target/.
fn profile_of(exe: &Path) -> &'static str {
    match exe.parent().and_then(|dir| dir.file_name()).and_then(|name| name.to_str()) {
        Some("debug") => "the dev profile: what `cargo xtask` and `cargo test` run",
        Some("release") => "the release profile",
        _ => "a profile of your own",
    }
}

/// Adds one repetition's result to a case's: each repetition runs in its own child process,
/// because the allocator keeps what a finished repetition freed, so later repetitions in one
/// process would report a peak that no single run reaches. Wall times are gathered; the peak is
/// the largest single run's.
fn merge(so_far: Option<CaseResult>, run: CaseResult) -> CaseResult {
    match so_far {
        None => run,
        Some(mut all) => {
            all.wall_secs.extend(run.wall_secs);
            all.peak_rss_kib = all.peak_rss_kib.max(run.peak_rss_kib);
            all.oracle_failures += run.oracle_failures;
            all
        }
    }
}

/// Runs one repetition of a case in a child process and reads its JSON line.
fn run_one_child(exe: &Path, root: &Path, case: &Case) -> anyhow::Result<CaseResult> {
    child_result(exe, root, &["bench-case".into(), case.to_string(), "--reps".into(), "1".into()])
}

/// The median of some wall times.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn measure(case: &Case, result: CaseResult) -> Measured {
    let wall = median(&result.wall_secs);
    Measured {
        kind: case.clone(),
        case: result.case,
        scenario: result.scenario,
        simulated_secs: result.simulated_secs,
        events: result.events,
        messages: result.messages,
        simulated_per_wall: result.simulated_secs.map(|s| s / wall),
        events_per_wall_sec: result.events as f64 / wall,
        wall_secs: result.wall_secs,
        wall_secs_median: wall,
        ratio_to_floor: None,
        peak_rss_mb: result.peak_rss_kib as f64 / 1024.0,
        oracle_failures: result.oracle_failures,
    }
}

fn row(m: &Measured) -> Row {
    Row {
        scenario: m.scenario.clone(),
        simulated: match m.simulated_secs {
            Some(secs) => humantime::format_duration(Duration::from_secs(secs.round() as u64)).to_string(),
            None => "-".into(),
        },
        events: if m.events == 0 { "-".into() } else { thousands(m.events) },
        messages: m.messages.map_or("-".into(), thousands),
        wall: format!("{:.3} s", m.wall_secs_median),
        speed: m.simulated_per_wall.map_or("-".into(), |r| format!("{}×", thousands(r.round() as u64))),
        throughput: if m.events == 0 { "-".into() } else { thousands(m.events_per_wall_sec.round() as u64) },
        floor: m.ratio_to_floor.map_or("-".into(), |r| format!("{r:.2}×")),
        peak: format!("{:.1}", m.peak_rss_mb),
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A scenario case's measurements, if it ran.
fn find<'a>(measured: &'a [Measured], scenario: &str, duration: Duration) -> Option<&'a Measured> {
    find_paced(measured, scenario, duration, None)
}

/// The run of `scenario` for `duration` at the generator's `pace` (`None`: the scenario's own).
fn find_paced<'a>(
    measured: &'a [Measured],
    scenario: &str,
    duration: Duration,
    pace: Option<Duration>,
) -> Option<&'a Measured> {
    measured.iter().find(
        |m| matches!(&m.kind, Case::Scenario { name, duration: d, pace: p } if name == scenario && *d == duration && *p == pace),
    )
}

fn linearity(measured: &[Measured]) -> Vec<Linearity> {
    SCENARIOS
        .iter()
        .filter_map(|&scenario| {
            let startup = find(measured, scenario, STARTUP)?.wall_secs_median;
            let short = find(measured, scenario, SHORT)?.wall_secs_median - startup;
            let long = find(measured, scenario, LONG)?.wall_secs_median - startup;
            Some(Linearity {
                scenario: scenario.into(),
                startup_wall_secs: startup,
                ratio: (short > 0.0).then(|| long / short),
            })
        })
        .collect()
}

/// The speed case's marginal figures: (simulated seconds per wall second, wall over the floor's,
/// wall over the serde_json floor's), from the hour minus the ten minutes, or from the ten
/// minutes alone when no hour ran.
/// The wall time of the floor of `kind` run for `events` (within 1%), if it ran.
fn floor_wall(measured: &[Measured], kind: fn(&Case) -> bool, events: u64) -> Option<f64> {
    measured.iter().find(|f| kind(&f.kind) && events.abs_diff(f.events) <= f.events / 100).map(|f| f.wall_secs_median)
}

fn is_floor(case: &Case) -> bool {
    matches!(case, Case::Floor { .. })
}

fn is_serde_json_floor(case: &Case) -> bool {
    matches!(case, Case::FloorSerdeJson { .. })
}

fn speed_case(measured: &[Measured]) -> (Option<f64>, Option<f64>, Option<f64>, &'static str) {
    let floor_wall = |kind, events| floor_wall(measured, kind, events);
    let is_serde = is_serde_json_floor;
    let short = find(measured, SPEED_CASE, SHORT);
    match (short, find(measured, SPEED_CASE, LONG)) {
        (Some(short), Some(long)) => {
            let wall = long.wall_secs_median - short.wall_secs_median;
            let simulated = (LONG - SHORT).as_secs_f64();
            let floor = |kind| Some(floor_wall(kind, long.events)? - floor_wall(kind, short.events)?);
            (
                (wall > 0.0).then(|| simulated / wall),
                floor(is_floor).map(|f| wall / f),
                floor(is_serde).map(|f| wall / f),
                "1h − 10m",
            )
        }
        (Some(short), None) => (
            short.simulated_per_wall,
            floor_wall(is_floor, short.events).map(|f| short.wall_secs_median / f),
            floor_wall(is_serde, short.events).map(|f| short.wall_secs_median / f),
            "10m",
        ),
        _ => (None, None, None, "not run"),
    }
}

/// The speed case's marginal wall time, split into madsim's floor for its messages and the
/// rest (the engine's own code), beside the wall time the two floor targets allow.
#[derive(Clone, Debug, Serialize)]
struct Account {
    span: &'static str,
    wall_secs: f64,
    messages: u64,
    madsim_ns_per_message: f64,
    madsim_secs: f64,
    engine_secs: f64,
    floor_allows_secs: Option<f64>,
    serde_json_floor_allows_secs: Option<f64>,
}

/// The [`Account`] of the speed case, if it ran with its messages counted and the madsim floor ran.
fn account(measured: &[Measured]) -> Option<Account> {
    let madsim = measured.iter().find(|m| matches!(m.kind, Case::FloorMadsim { .. }))?;
    let ns_per_message = 1e9 * madsim.wall_secs_median / madsim.messages? as f64;
    let (_, floor, serde_json_floor, span) = speed_case(measured);
    let short = find(measured, SPEED_CASE, SHORT)?;
    let (wall, messages) = match find(measured, SPEED_CASE, LONG) {
        Some(long) => (long.wall_secs_median - short.wall_secs_median, long.messages? - short.messages?),
        None => (short.wall_secs_median, short.messages?),
    };
    let madsim_secs = ns_per_message * messages as f64 / 1e9;
    // The floors' wall time for the span: the ratio's denominator, recovered from it.
    let allows = |ratio: Option<f64>, target: f64| ratio.map(|r| wall / r * target);
    Some(Account {
        span,
        wall_secs: wall,
        messages,
        madsim_ns_per_message: ns_per_message,
        madsim_secs,
        engine_secs: wall - madsim_secs,
        floor_allows_secs: allows(floor, TARGET_FLOOR),
        serde_json_floor_allows_secs: allows(serde_json_floor, TARGET_SERDE_JSON_FLOOR),
    })
}

/// The speed case's marginal wall time as a cost per event and a cost per message, solved from
/// two runs of it that carry about the same messages and different events: the playground's
/// rate and twice it (`wall = events × per event + messages × per message` for each).
#[derive(Clone, Debug, Serialize)]
struct Split {
    /// Wall nanoseconds each event adds.
    per_event_ns: f64,
    /// Wall nanoseconds each message adds (madsim's own cost included).
    per_message_ns: f64,
    /// The engine-codec and serde_json floors' nanoseconds per event, in the same run.
    floor_ns_per_event: f64,
    serde_json_floor_ns_per_event: f64,
    /// Messages per event at the playground's rate.
    messages_per_event: f64,
    /// The share of the marginal wall time that is per message, at the playground's rate.
    per_message_share: f64,
    /// At twice the rate: wall over the engine-codec floor's, and over serde_json's.
    double_rate_floor_ratio: f64,
    double_rate_serde_json_ratio: f64,
}

/// The [`Split`], if the speed case ran for 10 and 60 minutes at both rates, with both floors.
fn split(measured: &[Measured]) -> Option<Split> {
    // (wall, events, messages) of the hour minus the ten minutes.
    let marginal = |pace| {
        let short = find_paced(measured, SPEED_CASE, SHORT, pace)?;
        let long = find_paced(measured, SPEED_CASE, LONG, pace)?;
        Some((
            long.wall_secs_median - short.wall_secs_median,
            (long.events - short.events) as f64,
            (long.messages? - short.messages?) as f64,
        ))
    };
    let (wall, events, messages) = marginal(None)?;
    let (wall_2, events_2, messages_2) = marginal(Some(DOUBLE_RATE_PACE))?;
    let determinant = events_2 * messages - events * messages_2;
    if determinant <= 0.0 || events <= 0.0 || messages <= 0.0 {
        return None;
    }
    let per_event = (wall_2 * messages - wall * messages_2) / determinant;
    let per_message = (wall - events * per_event) / messages;
    // A floor's cost per event: its hour's run less its ten minutes', over the events between.
    let floor_per_event = |kind| {
        let (short, long) = (SHORT.as_secs() * EVENTS_PER_SECOND, LONG.as_secs() * EVENTS_PER_SECOND);
        Some((floor_wall(measured, kind, long)? - floor_wall(measured, kind, short)?) / (long - short) as f64)
    };
    let floor = floor_per_event(is_floor)?;
    let serde_json = floor_per_event(is_serde_json_floor)?;
    Some(Split {
        per_event_ns: per_event * 1e9,
        per_message_ns: per_message * 1e9,
        floor_ns_per_event: floor * 1e9,
        serde_json_floor_ns_per_event: serde_json * 1e9,
        messages_per_event: messages / events,
        per_message_share: messages * per_message / wall,
        double_rate_floor_ratio: wall_2 / (events_2 * floor),
        double_rate_serde_json_ratio: wall_2 / (events_2 * serde_json),
    })
}

fn targets(measured: &[Measured], linearity: &[Linearity], quick: bool) -> Vec<Target> {
    let check = |value: Option<f64>, ok: &dyn Fn(f64) -> bool| value.map(ok);
    let not_run = if quick { " (not run with --quick)" } else { " (not run)" };
    let mut targets = Vec::new();
    let (speed, floor, serde_json_floor, span) = speed_case(measured);
    targets.push(Target {
        target: format!(
            "{SPEED_CASE} {span}: {} real time",
            speed.map_or("n/a".into(), |s| format!("{}×", thousands(s.round() as u64)))
        ),
        value: speed,
        limit: format!("(≥ {TARGET_REAL_TIME}×)"),
        pass: check(speed, &|s| s >= TARGET_REAL_TIME),
    });
    targets.push(Target {
        target: format!("{SPEED_CASE} {span}: {} the floor", floor.map_or("n/a".into(), |r| format!("{r:.2}×"))),
        value: floor,
        limit: format!("(≤ {TARGET_FLOOR}×)"),
        pass: check(floor, &|r| r <= TARGET_FLOOR),
    });
    targets.push(Target {
        target: format!(
            "{SPEED_CASE} {span}: {} the serde_json floor",
            serde_json_floor.map_or("n/a".into(), |r| format!("{r:.2}×"))
        ),
        value: serde_json_floor,
        limit: format!("(≤ {TARGET_SERDE_JSON_FLOOR}×)"),
        pass: check(serde_json_floor, &|r| r <= TARGET_SERDE_JSON_FLOOR),
    });
    for scenario in SCENARIOS {
        let ratio = linearity.iter().find(|l| l.scenario == scenario).and_then(|l| l.ratio);
        targets.push(Target {
            target: format!(
                "{scenario}: 60m cost {} the 10m after start-up",
                ratio.map_or("n/a".into(), |r| format!("{r:.2}×"))
            ),
            value: ratio,
            limit: format!("(≤ {TARGET_LINEARITY}×){}", if ratio.is_none() { not_run } else { "" }),
            pass: check(ratio, &|r| r <= TARGET_LINEARITY),
        });
    }
    for scenario in SCENARIOS {
        let peak = find(measured, scenario, LONG).map(|m| m.peak_rss_mb);
        targets.push(Target {
            target: format!("{scenario} 60m: peak RSS {}", peak.map_or("n/a".into(), |p| format!("{p:.1} MB"))),
            value: peak,
            limit: format!("(≤ {TARGET_PEAK_MB} MB){}", if peak.is_none() { not_run } else { "" }),
            pass: check(peak, &|p| p <= TARGET_PEAK_MB),
        });
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_parse_and_print_back() {
        for text in [
            "steady-state:10m",
            "failure-recovery:1h",
            "steady-state:10s",
            "floor:240000",
            "floor-serde_json:240000",
            "floor-madsim:1000",
            "failure-recovery-exactly-once:1h@1.25ms",
        ] {
            assert_eq!(text.parse::<Case>().unwrap().to_string(), text);
        }
        assert_eq!("floor:1_440_000".parse::<Case>().unwrap(), Case::Floor { events: 1_440_000 });
        assert_eq!("floor-serde_json:240000".parse::<Case>().unwrap(), Case::FloorSerdeJson { events: 240_000 });
        assert!("floor:1000".parse::<Case>().is_err());
        assert!("floor-serde_json:1000".parse::<Case>().is_err());
        assert!("floor-serde_json:0".parse::<Case>().is_err());
        assert_eq!("floor-madsim:1_200_000".parse::<Case>().unwrap(), Case::FloorMadsim { messages: 1_200_000 });
        assert!("floor-madsim:0".parse::<Case>().is_err());
        assert!("floor-madsim:many".parse::<Case>().is_err());
        assert!("steady-state".parse::<Case>().is_err());
        assert!("steady-state:soon".parse::<Case>().is_err());
        assert!("steady-state:0s".parse::<Case>().is_err());
        assert!("steady-state:10M".parse::<Case>().is_err());
        assert!(":10m".parse::<Case>().is_err());
        assert_eq!(
            "steady-state:10m@1.25ms".parse::<Case>().unwrap(),
            Case::Scenario { name: "steady-state".into(), duration: SHORT, pace: Some(DOUBLE_RATE_PACE) }
        );
        assert!("steady-state:10m@0s".parse::<Case>().is_err());
        assert!("steady-state:10m@fast".parse::<Case>().is_err());
    }

    /// A run of the speed case (or a floor) whose wall time is made of `per_event` seconds per
    /// event and `per_message` per message.
    fn made_of(case: Case, events: u64, messages: Option<u64>, per_event: f64, per_message: f64) -> Measured {
        let wall = events as f64 * per_event + messages.unwrap_or(0) as f64 * per_message;
        let result = CaseResult {
            case: case.to_string(),
            scenario: String::new(),
            simulated_secs: None,
            events,
            messages,
            wall_secs: vec![wall],
            peak_rss_kib: 0,
            oracle_failures: 0,
        };
        measure(&case, result)
    }

    #[test]
    fn two_rates_split_the_wall_time_into_per_event_and_per_message_costs() {
        let run = |duration: Duration, pace, events, messages| {
            made_of(Case::Scenario { name: SPEED_CASE.into(), duration, pace }, events, Some(messages), 120e-9, 600e-9)
        };
        let floor = |events| made_of(Case::Floor { events }, events, None, 35e-9, 0.0);
        let serde_json = |events| made_of(Case::FloorSerdeJson { events }, events, None, 175e-9, 0.0);
        let measured = vec![
            run(SHORT, None, 240_000, 243_000),
            run(LONG, None, 1_440_000, 1_483_000),
            run(SHORT, Some(DOUBLE_RATE_PACE), 480_000, 244_000),
            run(LONG, Some(DOUBLE_RATE_PACE), 2_880_000, 1_493_000),
            floor(240_000),
            floor(1_440_000),
            serde_json(240_000),
            serde_json(1_440_000),
        ];
        let s = split(&measured).expect("every run the split needs is there");
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6 * b.abs().max(1.0);
        assert!(close(s.per_event_ns, 120.0) && close(s.per_message_ns, 600.0), "{s:?}");
        assert!(close(s.floor_ns_per_event, 35.0) && close(s.serde_json_floor_ns_per_event, 175.0), "{s:?}");
        assert!(close(s.messages_per_event, 1_240_000.0 / 1_200_000.0), "{s:?}");
        let double_rate = (2_400_000.0 * 120.0 + 1_249_000.0 * 600.0) / (2_400_000.0 * 35.0);
        assert!(close(s.double_rate_floor_ratio, double_rate), "{s:?}");
        // Without the runs at twice the rate there is nothing to solve.
        assert!(split(&measured[..2]).is_none());
    }

    #[test]
    fn medians_and_thousands() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_440_000), "1,440,000");
    }
}
