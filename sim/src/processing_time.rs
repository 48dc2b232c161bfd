//! A processing-time run's windows as the trace records them, and what conservation
//! (docs/oracle.md#processing-time-runs) finds wrong with its results: the windows a Counter
//! traced firing, a page whose results do not count what the job read, and a result whose window
//! does not match when its events were handled. Plain values below the oracle: its violations
//! carry them, and [`conservation`](crate::conservation) makes them.

use flinksim_engine::protocol::click_event::WINDOW_MS;
use flinksim_engine::trace::{Event, TraceEvent};
use serde::Serialize;
use smol_str::SmolStr;

/// One processing-time window a Counter fired, as the trace records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fire {
    /// The window's start, ms of the TaskManager's clock.
    pub window_start_ms: i64,
    /// The page.
    pub page: SmolStr,
    /// The count emitted.
    pub count: u64,
    /// When the attempt that fired it handled its first and last event (`None`: all restored).
    pub handled_ms: Option<(i64, i64)>,
    /// When it fired.
    pub fired_ms: i64,
}

impl Fire {
    /// Every fire the trace records, in order.
    pub fn from_trace(events: &[TraceEvent]) -> Vec<Fire> {
        events
            .iter()
            .filter_map(|e| match &e.event {
                Event::ProcessingTimeWindowFired { window_start_ms, page, count, handled_ms, fired_ms, .. } => {
                    Some(Fire {
                        window_start_ms: *window_start_ms,
                        page: page.clone(),
                        count: *count,
                        handled_ms: *handled_ms,
                        fired_ms: *fired_ms,
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// Whether its events were handled while its window was open, and it fired at its end − 1
    /// or later.
    pub fn matches_its_window(&self) -> bool {
        let end = self.window_start_ms + WINDOW_MS;
        let handled_inside =
            self.handled_ms.is_none_or(|(first, last)| self.window_start_ms <= first && first <= last && last < end);
        handled_inside && self.fired_ms >= end - 1
    }
}

/// Per page: events the job read against events its results count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PageBalance {
    /// The page.
    pub page: SmolStr,
    /// Events of the page in `input`.
    pub read: u64,
    /// The sum of the page's counts over every result in `output`.
    pub counted: u64,
}

impl std::fmt::Display for PageBalance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (read, counted) = (self.read as i64, self.counted as i64);
        let what = if counted < read { "lost" } else { "counted twice" };
        write!(f, "{} read {read}, counted {counted} ({} {what})", self.page, (counted - read).abs())
    }
}

/// A result whose window does not match when its events were handled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WindowMismatch {
    /// The window's start, ms.
    pub window_start_ms: i64,
    /// The page.
    pub page: SmolStr,
    /// The count.
    pub count: u64,
    /// The fire the trace records for it, if any.
    pub fire: Option<Fire>,
}

impl std::fmt::Display for WindowMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (start, page, count) = (self.window_start_ms, &self.page, self.count);
        write!(f, "[{start}, {}) {page} count {count}: ", start + WINDOW_MS)?;
        match &self.fire {
            None => f.write_str("no Counter traced firing it"),
            Some(Fire { handled_ms: Some((first, last)), fired_ms, .. }) => {
                write!(f, "its events were handled from {first} to {last}, and it fired at {fired_ms}")
            }
            Some(Fire { fired_ms, .. }) => write!(f, "it fired at {fired_ms}, before its window ended"),
        }
    }
}
