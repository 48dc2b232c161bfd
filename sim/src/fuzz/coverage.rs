//! Where a run's faults landed (docs/fuzzing.md#coverage): how many began inside each narrow
//! window of the commit protocol the strategies aim at, read from the trace, so that a fuzz that
//! never reached a window says so.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use flinksim_engine::trace::{Event, TraceEvent};

/// How long after a window's first result a fault still counts as landing "right after it fired".
pub const AFTER_WINDOW: Duration = Duration::from_millis(50);

/// A narrow window of the commit protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NarrowWindow {
    /// Between a checkpoint's trigger (its barriers injected) and its completion.
    BarrierToCompletion,
    /// Between a checkpoint's completion and the last of its sink commits.
    CompletionToCommit,
    /// Within [`AFTER_WINDOW`] after a window's first result was written.
    AfterWindowFired,
}

impl NarrowWindow {
    /// Every window, in report order.
    pub const ALL: [NarrowWindow; 3] =
        [NarrowWindow::BarrierToCompletion, NarrowWindow::CompletionToCommit, NarrowWindow::AfterWindowFired];
}

impl fmt::Display for NarrowWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NarrowWindow::BarrierToCompletion => "barrier -> checkpoint completed",
            NarrowWindow::CompletionToCommit => "checkpoint completed -> sink committed",
            NarrowWindow::AfterWindowFired => "0-50 ms after a window fired",
        })
    }
}

/// Faults counted, and how many landed in each narrow window (a fault may land in two).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Faults applied.
    pub faults: u64,
    /// Of them, those that began inside each window.
    pub landed: BTreeMap<NarrowWindow, u64>,
}

impl Coverage {
    /// The coverage of one run, from its trace.
    pub fn of(events: &[TraceEvent]) -> Coverage {
        let mut triggered: BTreeMap<u64, Duration> = BTreeMap::new();
        let mut completed: BTreeMap<u64, Duration> = BTreeMap::new();
        let mut committed: BTreeMap<u64, Duration> = BTreeMap::new();
        let mut spans: Vec<(NarrowWindow, Duration, Duration)> = Vec::new();
        let mut windows = std::collections::BTreeSet::new();
        let mut faults = Vec::new();
        for event in events {
            match &event.event {
                Event::CheckpointTriggered { checkpoint_id, .. } => {
                    triggered.insert(*checkpoint_id, event.at);
                }
                Event::CheckpointCompleted { checkpoint_id, .. } => {
                    completed.insert(*checkpoint_id, event.at);
                }
                Event::TransactionCommitted { checkpoint_id, .. } => {
                    committed.insert(*checkpoint_id, event.at); // the last commit wins
                }
                Event::ResultWritten { statistics, .. } if windows.insert(statistics.window_start_ms) => {
                    spans.push((NarrowWindow::AfterWindowFired, event.at, event.at + AFTER_WINDOW));
                }
                Event::StepRun { applied, .. } if !applied.is_empty() => faults.push(event.at),
                _ => {}
            }
        }
        for (id, done) in &completed {
            if let Some(start) = triggered.get(id) {
                spans.push((NarrowWindow::BarrierToCompletion, *start, *done));
            }
            if let Some(commit) = committed.get(id) {
                spans.push((NarrowWindow::CompletionToCommit, *done, *commit));
            }
        }
        let mut coverage = Coverage { faults: faults.len() as u64, landed: BTreeMap::new() };
        for at in faults {
            for window in NarrowWindow::ALL {
                if spans.iter().any(|(w, from, to)| *w == window && *from <= at && at <= *to) {
                    *coverage.landed.entry(window).or_default() += 1;
                }
            }
        }
        coverage
    }

    /// Adds another run's coverage.
    pub fn add(&mut self, other: &Coverage) {
        self.faults += other.faults;
        for (window, n) in &other.landed {
            *self.landed.entry(*window).or_default() += n;
        }
    }

    /// Faults that landed in `window`.
    pub fn in_window(&self, window: NarrowWindow) -> u64 {
        self.landed.get(&window).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flinksim_engine::trace::Fault;

    fn at(ms: u64, event: Event) -> TraceEvent {
        TraceEvent { at: Duration::from_millis(ms), node: "x".into(), event }
    }

    fn kill(ms: u64) -> TraceEvent {
        let applied = vec![Fault::NodeDown { node: "taskmanager-1".into() }];
        at(ms, Event::StepRun { command: "docker-compose kill taskmanager-1".into(), applied, healed: vec![], removed: vec![] })
    }

    #[test]
    fn a_kill_between_trigger_and_completion_lands_in_that_window_only() {
        let job_id = flinksim_engine::protocol::ids::JobId(1);
        let events = vec![
            at(1000, Event::CheckpointTriggered { job_id, checkpoint_id: 1, timestamp_ms: 1000 }),
            kill(1010),
            at(
                1030,
                Event::CheckpointCompleted { job_id, checkpoint_id: 1, size_bytes: 0, duration: Duration::ZERO, finalization: Duration::ZERO },
            ),
            kill(5000),
        ];
        let coverage = Coverage::of(&events);
        assert_eq!(coverage.faults, 2);
        assert_eq!(coverage.in_window(NarrowWindow::BarrierToCompletion), 1);
        assert_eq!(coverage.in_window(NarrowWindow::CompletionToCommit), 0);
        assert_eq!(coverage.in_window(NarrowWindow::AfterWindowFired), 0);
    }
}
