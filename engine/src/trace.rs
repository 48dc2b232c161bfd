//! Significant events, recorded by the nodes as they happen (spec: "every significant event lands
//! in the trace"). The simulator owns the sink, formats the lines and hashes them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::time::Instant;

use crate::timer::Clock;

/// One significant event: when (simulated time since the run started), where, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    /// Simulated time since the start of the run.
    pub at: Duration,
    /// The node that recorded it (`jobmanager`, `taskmanager-1`, ...).
    pub node: String,
    /// The event, worded like Flink's and Kafka's own logs where they have a line for it.
    pub message: String,
}

/// The run's event sink, shared by all nodes of one simulation.
#[derive(Clone, Debug)]
pub struct Trace {
    start: Instant,
    /// Held, because nodes read the elapsed time per request (see [`Clock`]).
    clock: Clock,
    events: Arc<Mutex<Vec<TraceEvent>>>,
}

impl Trace {
    /// A new, empty trace whose clock starts now (simulated time); made inside a runtime.
    pub fn new() -> Self {
        let clock = Clock::current();
        Trace { start: clock.now(), clock, events: Arc::default() }
    }

    /// A handle that records events under `node`'s name.
    pub fn for_node(&self, node: impl Into<String>) -> NodeTrace {
        NodeTrace { node: node.into(), trace: self.clone() }
    }

    /// Simulated time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.clock.now() - self.start
    }

    /// Everything recorded so far, in the order it happened.
    pub fn events(&self) -> Vec<TraceEvent> {
        self.events.lock().unwrap().clone()
    }

    fn record(&self, node: &str, message: String) {
        let at = self.elapsed();
        self.events.lock().unwrap().push(TraceEvent { at, node: node.to_owned(), message });
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}

/// A node's handle on the trace.
#[derive(Clone, Debug)]
pub struct NodeTrace {
    node: String,
    trace: Trace,
}

impl NodeTrace {
    /// Records `message` as happening now on this node.
    pub fn event(&self, message: impl Into<String>) {
        self.trace.record(&self.node, message.into());
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Simulated time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.trace.elapsed()
    }
}
