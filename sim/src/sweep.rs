//! A sweep: many seeds of one or more scenarios, each in its own runtime, spread over threads.
//! Its result keeps counts per verdict class and only the failing seeds, so memory stays flat
//! however many seeds run. A range splits into shards ([`Shard`]) for several machines, and
//! their results merge back ([`merge`]).

use flinksim_engine::plant::Plants;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Scenario;
use crate::run::RunError;
use crate::scenario::ScenarioError;
use crate::verdict::VerdictClass;

/// Runs `work(i)` for i in `0..count` on `jobs` threads, handing each result to `on_done` on the
/// calling thread as it ends. Workers take no new index once `stop` is set. At most `jobs`
/// results wait for `on_done`, so memory stays bounded.
pub fn parallel<R: Send>(
    count: usize,
    jobs: usize,
    stop: &AtomicBool,
    work: impl Fn(usize) -> R + Sync,
    mut on_done: impl FnMut(R),
) {
    let next = AtomicUsize::new(0);
    let jobs = jobs.clamp(1, count.max(1));
    let (done, results) = mpsc::sync_channel(jobs);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let done = done.clone();
            let (next, work) = (&next, &work);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count || done.send(work(i)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        for result in results {
            on_done(result);
        }
    });
}

/// A range of seeds, `start..end` (end excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedRange {
    /// The first seed.
    pub start: u64,
    /// One past the last seed.
    pub end: u64,
}

impl SeedRange {
    /// How many seeds it holds.
    pub fn len(self) -> u64 {
        self.end - self.start
    }

    /// Whether it holds none.
    pub fn is_empty(self) -> bool {
        self.end == self.start
    }
}

impl FromStr for SeedRange {
    type Err = String;

    fn from_str(text: &str) -> Result<SeedRange, String> {
        let usage = "expected `<first>..<end>` with the end excluded (e.g. `0..100`), or one seed";
        let number = |s: &str| s.trim().replace('_', "").parse::<u64>().map_err(|e| format!("bad seed `{s}` ({e}): {usage}"));
        let (start, end) = match text.split_once("..") {
            Some((start, end)) if end.starts_with('=') => {
                let last = number(&end[1..])?;
                (number(start)?, last.checked_add(1).ok_or_else(|| format!("`{text}` ends past the last seed"))?)
            }
            Some((start, end)) => (number(start)?, number(end)?),
            None => {
                let seed = number(text)?;
                (seed, seed.checked_add(1).ok_or_else(|| format!("`{text}` ends past the last seed"))?)
            }
        };
        if start >= end {
            return Err(format!("`{text}` holds no seed: {usage}"));
        }
        Ok(SeedRange { start, end })
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// One of `count` parts of a range (`index` from 0): the seeds whose offset from the range's start
/// leaves `index` modulo `count`. Interleaved, so that each part gets seeds from the whole range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This part, from 0.
    pub index: u32,
    /// How many parts.
    pub count: u32,
}

impl Shard {
    /// The whole range as one part.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// This part's seeds of `range`, in order.
    pub fn seeds(self, range: SeedRange) -> impl Iterator<Item = u64> {
        (range.start.saturating_add(u64::from(self.index))..range.end).step_by(self.count as usize)
    }

    /// How many seeds of `range` this part holds.
    pub fn len(self, range: SeedRange) -> u64 {
        range.len().saturating_sub(u64::from(self.index)).div_ceil(u64::from(self.count))
    }

    /// The `n`-th seed of this part of `range`.
    fn nth(self, range: SeedRange, n: u64) -> u64 {
        range.start + u64::from(self.index) + n * u64::from(self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let usage = "expected `<index>/<count>` with the index from 0 (e.g. `0/4` … `3/4`)";
        let (index, count) = text.split_once('/').ok_or_else(|| format!("bad shard `{text}`: {usage}"))?;
        let index: u32 = index.trim().parse().map_err(|e| format!("bad shard index `{index}` ({e}): {usage}"))?;
        let count: u32 = count.trim().parse().map_err(|e| format!("bad shard count `{count}` ({e}): {usage}"))?;
        if count == 0 {
            return Err(format!("bad shard `{text}`: the count must be at least 1"));
        }
        if index >= count {
            return Err(format!("bad shard `{text}`: the index must be below {count} (shards are numbered from 0)"));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A scenario to sweep, and how the command line named it (for the replay command).
#[derive(Clone, Debug)]
pub struct SweepScenario {
    /// The name or path as given.
    pub given: String,
    /// The `--duration` override, if any (already applied to `scenario`).
    pub duration: Option<Duration>,
    /// The scenario as it runs.
    pub scenario: Scenario,
}

/// Runs per verdict class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// The oracle accepted the run.
    pub passed: u64,
    /// Failed: semantic.
    pub semantic: u64,
    /// Failed: liveness.
    pub liveness: u64,
    /// Failed: correctness.
    pub correctness: u64,
    /// The simulation panicked.
    pub panic: u64,
}

impl Counts {
    /// Counts one run of `class`.
    pub fn add(&mut self, class: VerdictClass) {
        match class {
            VerdictClass::Passed => self.passed += 1,
            VerdictClass::Semantic => self.semantic += 1,
            VerdictClass::Liveness => self.liveness += 1,
            VerdictClass::Correctness => self.correctness += 1,
            // A single run has neither; count them with the panics rather than drop them.
            VerdictClass::Panic | VerdictClass::Nondeterminism | VerdictClass::BadInput => self.panic += 1,
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, other: Counts) {
        self.passed += other.passed;
        self.semantic += other.semantic;
        self.liveness += other.liveness;
        self.correctness += other.correctness;
        self.panic += other.panic;
    }

    /// Runs counted.
    pub fn runs(self) -> u64 {
        self.passed + self.failed()
    }

    /// Runs that failed.
    pub fn failed(self) -> u64 {
        self.semantic + self.liveness + self.correctness + self.panic
    }
}

/// One violation of a failing run: its class and its text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The class of the violation.
    pub class: VerdictClass,
    /// The violation as the report prints it.
    pub message: String,
}

/// One seed's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// The run's verdict class.
    pub verdict: VerdictClass,
    /// What it broke (empty when it passed).
    pub findings: Vec<Finding>,
    /// The trace hash (none after a panic).
    pub trace_hash: Option<u64>,
}

/// Runs `scenario` under `seed` and keeps only its verdict, findings and hash.
pub fn run_seed(scenario: &Scenario, seed: u64) -> SeedResult {
    match crate::run(scenario, seed) {
        Ok(report) => SeedResult {
            seed,
            verdict: report.oracle.verdict(),
            findings: report
                .oracle
                .violations
                .iter()
                .map(|v| Finding { class: v.class(), message: v.to_string() })
                .collect(),
            trace_hash: Some(report.trace_hash),
        },
        Err(error) => {
            let class = match error {
                RunError::BadInput(_) => VerdictClass::BadInput,
                RunError::Panicked { .. } => VerdictClass::Panic,
            };
            SeedResult { seed, verdict: class, findings: vec![Finding { class, message: error.to_string() }], trace_hash: None }
        }
    }
}

/// One scenario's part of a sweep.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// The scenario's name.
    pub name: String,
    /// The name or path as the command line gave it.
    pub given: String,
    /// The `--duration` override, if any.
    pub duration: Option<Duration>,
    /// The bugs planted in the engine (`--plant`, docs/planted-bugs.md); none in older results.
    #[serde(default, skip_serializing_if = "Plants::is_empty")]
    pub plants: Plants,
    /// Runs per verdict class.
    pub counts: Counts,
    /// The failing seeds, in seed order.
    pub failures: Vec<SeedResult>,
}

/// What a sweep (or a merge of shards' sweeps) found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepReport {
    /// The whole range the shards split.
    pub seeds: SeedRange,
    /// Into how many shards.
    pub shard_count: u32,
    /// The shards this report covers, in order.
    pub shards: Vec<u32>,
    /// Per scenario, in the command line's order.
    pub scenarios: Vec<ScenarioResult>,
    /// Runs not made because the sweep stopped after `max_failures`.
    pub not_run: u64,
    /// The failures after which the sweep stops, if set.
    pub max_failures: Option<u64>,
}

impl SweepReport {
    /// Every failing run's class, the worst first wins: the sweep's verdict.
    pub fn verdict(&self) -> VerdictClass {
        VerdictClass::worst(self.scenarios.iter().flat_map(|s| s.failures.iter().map(|f| f.verdict)))
    }

    /// Runs per class over every scenario.
    pub fn totals(&self) -> Counts {
        let mut totals = Counts::default();
        for scenario in &self.scenarios {
            totals.merge(scenario.counts);
        }
        totals
    }

    /// The shards of the range no report covered.
    pub fn missing_shards(&self) -> Vec<u32> {
        (0..self.shard_count).filter(|i| !self.shards.contains(i)).collect()
    }
}

/// One run as it ends, for a progress display.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Runs ended so far.
    pub done: u64,
    /// Runs in the sweep.
    pub total: u64,
    /// Failing runs so far.
    pub failures: u64,
}

/// Runs every scenario under every seed of `shard` of `seeds` on `jobs` threads, one fresh
/// runtime per run, and stops taking new runs after `max_failures` failing ones. Scenarios that
/// break the tail rule are refused before anything runs. `on_progress` is called on this thread
/// after each run.
pub fn sweep(
    scenarios: &[SweepScenario],
    seeds: SeedRange,
    shard: Shard,
    jobs: usize,
    max_failures: Option<u64>,
    mut on_progress: impl FnMut(Progress, &str, &SeedResult),
) -> Result<SweepReport, Box<ScenarioError>> {
    for s in scenarios {
        crate::liveness::check_tail(&s.scenario).map_err(Box::new)?;
    }
    let per_scenario = shard.len(seeds);
    let total = per_scenario * scenarios.len() as u64;
    let mut results: Vec<ScenarioResult> = scenarios
        .iter()
        .map(|s| ScenarioResult {
            name: s.scenario.name.clone(),
            given: s.given.clone(),
            duration: s.duration,
            plants: s.scenario.plants,
            counts: Counts::default(),
            failures: Vec::new(),
        })
        .collect();
    let stop = AtomicBool::new(false);
    let mut progress = Progress { done: 0, total, failures: 0 };
    // Seed-major: with --max-failures, every scenario gets its early seeds before any its late.
    let count = usize::try_from(total).expect("a sweep's runs fit in memory's index");
    let which = |i: usize| (i % scenarios.len(), shard.nth(seeds, (i / scenarios.len()) as u64));
    parallel(
        count,
        jobs,
        &stop,
        |i| {
            let (s, seed) = which(i);
            (s, run_seed(&scenarios[s].scenario, seed))
        },
        |(s, result)| {
            progress.done += 1;
            results[s].counts.add(result.verdict);
            if result.verdict != VerdictClass::Passed {
                progress.failures += 1;
                if max_failures.is_some_and(|max| progress.failures >= max) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            on_progress(progress, &results[s].name, &result);
            if result.verdict != VerdictClass::Passed {
                results[s].failures.push(result);
            }
        },
    );
    for result in &mut results {
        result.failures.sort_by_key(|f| f.seed);
    }
    Ok(SweepReport {
        seeds,
        shard_count: shard.count,
        shards: vec![shard.index],
        scenarios: results,
        not_run: total - progress.done,
        max_failures,
    })
}

/// Why shards' reports cannot merge.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no report to merge")]
    Empty,
    /// The reports split different ranges, or into a different number of shards.
    #[error("report {index} covers seeds {seeds} in {count} shards, the first covers {first_seeds} in {first_count}")]
    OtherRange {
        /// Its place among the reports (from 1).
        index: usize,
        /// Its range.
        seeds: SeedRange,
        /// Its shard count.
        count: u32,
        /// The first report's range.
        first_seeds: SeedRange,
        /// The first report's shard count.
        first_count: u32,
    },
    /// The reports swept different scenarios.
    #[error("report {index} swept {theirs:?}, the first swept {first:?}")]
    OtherScenarios {
        /// Its place among the reports (from 1).
        index: usize,
        /// Its scenarios.
        theirs: Vec<String>,
        /// The first report's.
        first: Vec<String>,
    },
    /// A shard is in two reports.
    #[error("shard {shard}/{count} is in two reports (the second is report {index})")]
    Overlap {
        /// The shard.
        shard: u32,
        /// The shard count.
        count: u32,
        /// Its second report's place (from 1).
        index: usize,
    },
}

/// Combines shards' reports of one range into one: counts added, failures joined in seed order.
/// Shards missing are allowed ([`SweepReport::missing_shards`] names them); a shard twice is not.
pub fn merge(reports: Vec<SweepReport>) -> Result<SweepReport, MergeError> {
    let mut reports = reports.into_iter();
    let mut merged = reports.next().ok_or(MergeError::Empty)?;
    let key = |r: &SweepReport| r.scenarios.iter().map(|s| (s.name.clone(), s.duration, s.plants)).collect::<Vec<_>>();
    let names = |r: &SweepReport| r.scenarios.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    for (i, report) in reports.enumerate() {
        let index = i + 2;
        if (report.seeds, report.shard_count) != (merged.seeds, merged.shard_count) {
            return Err(MergeError::OtherRange {
                index,
                seeds: report.seeds,
                count: report.shard_count,
                first_seeds: merged.seeds,
                first_count: merged.shard_count,
            });
        }
        if key(&report) != key(&merged) {
            return Err(MergeError::OtherScenarios { index, theirs: names(&report), first: names(&merged) });
        }
        if let Some(&shard) = report.shards.iter().find(|s| merged.shards.contains(s)) {
            return Err(MergeError::Overlap { shard, count: merged.shard_count, index });
        }
        merged.shards.extend(&report.shards);
        merged.not_run += report.not_run;
        for (mine, theirs) in merged.scenarios.iter_mut().zip(report.scenarios) {
            mine.counts.merge(theirs.counts);
            mine.failures.extend(theirs.failures);
        }
    }
    merged.shards.sort_unstable();
    for scenario in &mut merged.scenarios {
        scenario.failures.sort_by_key(|f| f.seed);
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_shards_parse_and_print_back() {
        assert_eq!("0..100".parse::<SeedRange>().unwrap(), SeedRange { start: 0, end: 100 });
        assert_eq!("5..=7".parse::<SeedRange>().unwrap(), SeedRange { start: 5, end: 8 });
        assert_eq!("42".parse::<SeedRange>().unwrap(), SeedRange { start: 42, end: 43 });
        assert_eq!("0..10_000".parse::<SeedRange>().unwrap().to_string(), "0..10000");
        for bad in ["5..5", "9..3", "a..b", "..", "1..x"] {
            assert!(bad.parse::<SeedRange>().is_err(), "{bad}");
        }
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard { index: 2, count: 4 });
        assert_eq!("2/4".parse::<Shard>().unwrap().to_string(), "2/4");
        let error = "4/4".parse::<Shard>().unwrap_err();
        assert!(error.contains("below 4 (shards are numbered from 0)"), "{error}");
        for bad in ["0/0", "1", "x/2", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_cover_a_range_exactly_once() {
        for (range, count) in [(SeedRange { start: 0, end: 100 }, 4), (SeedRange { start: 7, end: 30 }, 5), (SeedRange { start: 3, end: 5 }, 4)] {
            let mut seen: Vec<u64> = Vec::new();
            for index in 0..count {
                let shard = Shard { index, count };
                let seeds: Vec<u64> = shard.seeds(range).collect();
                assert_eq!(seeds.len() as u64, shard.len(range));
                assert_eq!(seeds.iter().enumerate().map(|(n, _)| shard.nth(range, n as u64)).collect::<Vec<_>>(), seeds);
                seen.extend(seeds);
            }
            seen.sort_unstable();
            assert_eq!(seen, (range.start..range.end).collect::<Vec<_>>());
        }
    }

    #[test]
    fn parallel_hands_every_result_back_and_stops_when_told() {
        let stop = AtomicBool::new(false);
        let mut got = Vec::new();
        parallel(50, 3, &stop, |i| i * 2, |r| got.push(r));
        got.sort_unstable();
        assert_eq!(got, (0..50).map(|i| i * 2).collect::<Vec<_>>());
        let stop = AtomicBool::new(false);
        let mut seen = 0;
        parallel(1000, 2, &stop, |i| i, |_| {
            seen += 1;
            if seen == 5 {
                stop.store(true, Ordering::Relaxed);
            }
        });
        assert!((5..=5 + 2 + 2).contains(&seen), "{seen}");
    }

    fn report(shard: u32, failing: &[u64]) -> SweepReport {
        let mut counts = Counts { passed: 10 - failing.len() as u64, ..Counts::default() };
        counts.liveness = failing.len() as u64;
        SweepReport {
            seeds: SeedRange { start: 0, end: 20 },
            shard_count: 2,
            shards: vec![shard],
            scenarios: vec![ScenarioResult {
                name: "x".into(),
                given: "x".into(),
                duration: None,
                plants: Plants::NONE,
                counts,
                failures: failing
                    .iter()
                    .map(|&seed| SeedResult { seed, verdict: VerdictClass::Liveness, findings: vec![], trace_hash: Some(1) })
                    .collect(),
            }],
            not_run: 0,
            max_failures: None,
        }
    }

    #[test]
    fn merge_adds_counts_and_refuses_overlaps_and_other_ranges() {
        let merged = merge(vec![report(1, &[3, 11]), report(0, &[4])]).unwrap();
        assert_eq!(merged.shards, [0, 1]);
        assert_eq!(merged.scenarios[0].failures.iter().map(|f| f.seed).collect::<Vec<_>>(), [3, 4, 11]);
        assert_eq!(merged.totals().runs(), 20);
        assert_eq!(merged.verdict(), VerdictClass::Liveness);
        assert!(merged.missing_shards().is_empty());
        assert_eq!(merge(vec![report(1, &[])]).unwrap().missing_shards(), [0]);
        assert!(matches!(merge(vec![report(0, &[]), report(0, &[])]), Err(MergeError::Overlap { shard: 0, .. })));
        let mut other = report(1, &[]);
        other.seeds.end = 30;
        assert!(matches!(merge(vec![report(0, &[]), other]), Err(MergeError::OtherRange { index: 2, .. })));
        assert_eq!(merge(vec![]), Err(MergeError::Empty));
        let json = serde_json::to_string(&merged).unwrap();
        assert_eq!(serde_json::from_str::<SweepReport>(&json).unwrap(), merged);
    }
}
