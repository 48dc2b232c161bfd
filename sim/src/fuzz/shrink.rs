//! Shrinking a failing fault plan (docs/fuzzing.md#shrinking): passes over the plan's own
//! structure, each candidate judged by running it. First the plan without faults, then one fault
//! removed at a time until no removal still fails, then each fault shorter and earlier (a smaller
//! `n`, a shorter delay, an earlier time), each number by bisection towards its least value.
//!
//! proptest draws the plans but does not shrink them: its value tree shrinks the swarm's choice
//! of fault families first, and each such step draws a whole new plan, so a four-fault plan took
//! the 300-run budget without losing a fault (measured on the planted bugs: 40 runs left
//! `heartbeat-timeout-ignored` at 4 faults; these passes take it to 1 in 13). Bisection is not
//! exact where failure is not monotone in a number; it always ends on a plan that fails.

use std::time::Duration;

use super::plan::{FaultPlan, FaultTime};
use super::strategy::{EARLIEST, LASTS_MIN};

/// What shrinking came to: the smallest failing plan found and the runs it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shrunk {
    /// The plan.
    pub plan: FaultPlan,
    /// Candidates run.
    pub runs: u32,
}

/// Shrinks `failing` (a plan that fails) with at most `budget` runs of `fails`, which says
/// whether a candidate still fails; `on_smaller` hears of each smaller failing plan.
pub fn shrink<E>(
    failing: FaultPlan,
    budget: u32,
    mut fails: impl FnMut(&FaultPlan) -> Result<bool, E>,
    mut on_smaller: impl FnMut(&FaultPlan, u32),
) -> Result<Shrunk, E> {
    let mut best = failing;
    let mut runs = 0;
    let mut try_plan = |candidate: FaultPlan, best: &mut FaultPlan, runs: &mut u32| -> Result<bool, E> {
        if *runs >= budget || candidate == *best {
            return Ok(false);
        }
        *runs += 1;
        let failed = fails(&candidate)?;
        if failed {
            *best = candidate;
            on_smaller(best, *runs);
        }
        Ok(failed)
    };

    // Fewest faults: none at all (a bug that shows in any run), then one removed at a time.
    if try_plan(FaultPlan { faults: Vec::new() }, &mut best, &mut runs)? {
        return Ok(Shrunk { plan: best, runs });
    }
    let mut removed = true;
    while removed && best.faults.len() > 1 {
        removed = false;
        for i in 0..best.faults.len() {
            let mut candidate = best.clone();
            candidate.faults.remove(i);
            if try_plan(candidate, &mut best, &mut runs)? {
                removed = true;
                break;
            }
        }
    }

    // Shortest, then earliest: each number bisected towards its least value.
    for i in 0..best.faults.len() {
        let lasts = best.faults[i].lasts;
        let shortest = bisect(ms(LASTS_MIN), ms(lasts), 100, |v| {
            let mut candidate = best.clone();
            candidate.faults[i].lasts = Duration::from_millis(v);
            try_plan(candidate, &mut best, &mut runs)
        })?;
        best.faults[i].lasts = Duration::from_millis(shortest);
        match best.faults[i].at {
            FaultTime::At(at) => {
                let earliest = bisect(ms(EARLIEST), ms(at), 100, |v| {
                    let mut candidate = best.clone();
                    candidate.faults[i].at = FaultTime::At(Duration::from_millis(v));
                    try_plan(candidate, &mut best, &mut runs)
                })?;
                best.faults[i].at = FaultTime::At(Duration::from_millis(earliest));
            }
            FaultTime::After { n, .. } => {
                let with = |best: &FaultPlan, n_to: Option<u32>, delay_to: Option<Duration>| {
                    let mut candidate = best.clone();
                    if let FaultTime::After { n, delay, .. } = &mut candidate.faults[i].at {
                        *n = n_to.unwrap_or(*n);
                        *delay = delay_to.unwrap_or(*delay);
                    }
                    candidate
                };
                let first = bisect(1, u64::from(n), 1, |v| {
                    let candidate = with(&best, Some(v as u32), None);
                    try_plan(candidate, &mut best, &mut runs)
                })?;
                best = with(&best, Some(first as u32), None);
                let FaultTime::After { delay, .. } = best.faults[i].at else { unreachable!("an anchored fault stays anchored") };
                let least = bisect(0, delay.as_micros() as u64, 1_000, |v| {
                    let candidate = with(&best, None, Some(Duration::from_micros(v)));
                    try_plan(candidate, &mut best, &mut runs)
                })?;
                best = with(&best, None, Some(Duration::from_micros(least)));
            }
        }
    }
    Ok(Shrunk { plan: best, runs })
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// The least value in `least..=failing` for which `fails` holds, found by bisection to within
/// `step`: `least` itself first, then halving the gap. `failing` is known to fail.
fn bisect<E>(least: u64, failing: u64, step: u64, mut fails: impl FnMut(u64) -> Result<bool, E>) -> Result<u64, E> {
    if failing <= least {
        return Ok(failing);
    }
    if fails(least)? {
        return Ok(least);
    }
    let (mut passing, mut failing) = (least, failing);
    while failing - passing > step {
        let mid = passing + (failing - passing) / 2;
        if fails(mid)? {
            failing = mid;
        } else {
            passing = mid;
        }
    }
    Ok(failing)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::fuzz::plan::{Fault, FaultKind};
    use crate::scenario::{Anchor, Service};

    fn kill(tm: u32, at: FaultTime, lasts_ms: u64) -> Fault {
        Fault { kind: FaultKind::Kill(Service::TaskManager(tm)), at, lasts: Duration::from_millis(lasts_ms) }
    }

    fn anchored(n: u32, delay_ms: u64) -> FaultTime {
        FaultTime::After { anchor: Anchor::CheckpointCompleted, n, delay: Duration::from_millis(delay_ms), by: Duration::from_secs(90) }
    }

    #[test]
    fn a_bug_that_shows_without_faults_shrinks_to_no_fault_in_one_run() {
        let plan = FaultPlan { faults: vec![kill(1, FaultTime::At(Duration::from_secs(30)), 5_000)] };
        let shrunk = shrink(plan, 300, |_| Ok::<_, Infallible>(true), |_, _| {}).unwrap();
        assert_eq!(shrunk, Shrunk { plan: FaultPlan { faults: Vec::new() }, runs: 1 });
    }

    /// The bug needs taskmanager-2 killed for at least 7 s, at or after checkpoint 40 plus 20 ms.
    #[test]
    fn the_fault_the_bug_needs_is_kept_alone_shortest_and_earliest() {
        let needed = |plan: &FaultPlan| {
            Ok::<_, Infallible>(plan.faults.iter().any(|f| {
                matches!(f.kind, FaultKind::Kill(Service::TaskManager(2)))
                    && f.lasts >= Duration::from_secs(7)
                    && matches!(f.at, FaultTime::After { n, delay, .. } if n >= 40 && delay >= Duration::from_millis(20))
            }))
        };
        let plan = FaultPlan {
            faults: vec![
                kill(1, FaultTime::At(Duration::from_secs(30)), 5_000),
                kill(2, anchored(77, 45), 19_000),
                kill(1, anchored(3, 10), 300),
            ],
        };
        let mut smaller = 0;
        let shrunk = shrink(plan, 300, needed, |_, _| smaller += 1).unwrap();
        assert_eq!(shrunk.plan.faults.len(), 1);
        let fault = &shrunk.plan.faults[0];
        assert!(fault.lasts >= Duration::from_secs(7) && fault.lasts <= Duration::from_millis(7_100), "{fault:?}");
        assert!(matches!(fault.at, FaultTime::After { n: 40, .. }), "{fault:?}");
        let FaultTime::After { delay, .. } = fault.at else { unreachable!() };
        assert!(delay >= Duration::from_millis(20) && delay <= Duration::from_millis(21), "{delay:?}");
        assert!(shrunk.runs <= 60, "{} runs", shrunk.runs);
        assert!(smaller > 0);
    }

    #[test]
    fn shrinking_stops_at_its_budget_with_a_plan_that_fails() {
        let plan = FaultPlan {
            faults: vec![kill(1, FaultTime::At(Duration::from_secs(30)), 5_000), kill(2, FaultTime::At(Duration::from_secs(40)), 5_000)],
        };
        let mut calls = 0;
        let shrunk = shrink(plan, 3, |p: &FaultPlan| {
            calls += 1;
            Ok::<_, Infallible>(!p.faults.is_empty())
        }, |_, _| {})
        .unwrap();
        assert_eq!((shrunk.runs, calls), (3, 3));
        assert_eq!(shrunk.plan.faults.len(), 1);
    }
}
