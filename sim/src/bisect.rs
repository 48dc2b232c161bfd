//! Where a failing run first went wrong (docs/oracle.md#bisect-the-first-wrong-moment): the
//! earliest [`invariant`](crate::invariant) finding of its trace, the faults before it, the
//! causal chain that led there (fault → detection → restore → the wrong result), and the trace
//! around it. [`render`] prints it; `cargo xtask bisect` is its command line.

use crate::timeline::clock;
use std::time::Duration;

use flinksim_engine::protocol::states::JobStatus;
use flinksim_engine::trace::{Event, Fault, TraceEvent};

use crate::Report;
use crate::invariant::Finding;
use crate::scenario::{CountsExpectation, DuplicatesExpectation, Expect, LateExpectation, LossExpectation, Scenario};
use crate::verdict::VerdictClass;

/// Trace lines shown before the first wrong moment.
pub const LINES_BEFORE: usize = 12;
/// Trace lines shown after it.
pub const LINES_AFTER: usize = 4;

/// What a bisection of one run found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bisection {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The oracle's verdict on the whole run.
    pub verdict: VerdictClass,
    /// The earliest finding: the first moment the run was already wrong (none when no
    /// invariant broke: the run passed, or it failed on liveness alone).
    pub first: Option<Finding>,
    /// Findings after the first.
    pub later: Vec<Finding>,
    /// Faults the steps applied before the first wrong moment, in order.
    pub faults_before: Vec<AppliedFault>,
    /// From the last fault before it to the wrong result.
    pub chain: Vec<Link>,
    /// Trace lines around the first wrong moment: (index, line).
    pub window: Vec<(usize, String)>,
}

/// A fault a step applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedFault {
    /// When.
    pub at: Duration,
    /// The step's command.
    pub command: String,
    /// The faults it applied.
    pub faults: Vec<Fault>,
}

/// One link of the causal chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Its part in the chain.
    pub role: Role,
    /// Its index in the trace.
    pub index: usize,
    /// The event.
    pub event: TraceEvent,
}

/// A link's part in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The step that put the fault on the cluster.
    Fault,
    /// The cluster noticed, first after the fault (a TaskManager declared lost, the job
    /// failing, the JobManager back without its job, a partition marked idle, a transaction
    /// timed out).
    Detection,
    /// The job came back: the last checkpoint or savepoint restored, or job submitted again,
    /// before the wrong moment.
    Restore,
    /// Where the run was first wrong.
    Wrong,
}

impl Role {
    /// The role as the report names it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Fault => "fault",
            Role::Detection => "detection",
            Role::Restore => "restore",
            Role::Wrong => "wrong",
        }
    }
}

impl Bisection {
    /// Whether the run is bad for `git bisect run`: the oracle failed it, or its trace broke an
    /// invariant.
    pub fn is_bad(&self) -> bool {
        self.verdict != VerdictClass::Passed || self.first.is_some()
    }
}

/// The scenario judged with the strictest expectations (exact counts, no copies, no late
/// drops, no loss), its liveness bounds kept: what a pitfall replays becomes a failure to bisect.
pub fn strict(scenario: &Scenario) -> Scenario {
    let expect = Expect {
        counts: CountsExpectation::Exact,
        duplicates: DuplicatesExpectation::None,
        late: LateExpectation::None,
        loss: LossExpectation::None,
        ..scenario.expect.clone()
    };
    Scenario { expect, ..scenario.clone() }
}

fn detects(event: &Event) -> bool {
    matches!(
        event,
        Event::TaskManagerLost { .. }
            | Event::TaskManagerDisconnected { .. }
            | Event::JobFailed { .. }
            | Event::JobManagerStarted { .. }
            | Event::TransactionTimedOut { .. }
            | Event::PartitionIdle { .. }
            | Event::JobStatusChanged { to: JobStatus::Restarting | JobStatus::Failing | JobStatus::Failed, .. }
    )
}

fn restores(event: &Event) -> bool {
    matches!(
        event,
        Event::Restoring { .. } | Event::RestoringFromSavepoint { .. } | Event::JobSubmitted { .. } | Event::RestoreFailed { .. }
    )
}

/// Bisects a finished run: its first wrong moment, the chain to it and the trace around it.
pub fn bisect(report: &Report) -> Bisection {
    let events = &report.events;
    let first = report.invariants.first().cloned();
    let later = report.invariants.iter().skip(1).cloned().collect();
    let end = first.as_ref().map_or(events.len(), |f| f.index);
    let faults_before: Vec<AppliedFault> = events[..end]
        .iter()
        .filter_map(|e| match &e.event {
            Event::StepRun { command, applied, .. } if !applied.is_empty() => {
                Some(AppliedFault { at: e.at, command: command.clone(), faults: applied.clone() })
            }
            _ => None,
        })
        .collect();
    let mut chain = Vec::new();
    let mut window = Vec::new();
    if let Some(first) = &first {
        let link = |role, index: usize| Link { role, index, event: events[index].clone() };
        let fault = events[..end]
            .iter()
            .rposition(|e| matches!(&e.event, Event::StepRun { applied, .. } if !applied.is_empty()));
        if let Some(fault) = fault {
            chain.push(link(Role::Fault, fault));
            let detection = (fault + 1..end).find(|&i| detects(&events[i].event));
            if let Some(detection) = detection {
                chain.push(link(Role::Detection, detection));
            }
            let from = detection.unwrap_or(fault) + 1;
            // The last restore before it: a job cycling for slots restores on every attempt.
            if let Some(restore) = (from..end).rev().find(|&i| restores(&events[i].event)) {
                chain.push(link(Role::Restore, restore));
            }
        }
        chain.push(link(Role::Wrong, first.index));
        let lines = crate::trace::lines(events);
        let from = first.index.saturating_sub(LINES_BEFORE);
        let to = (first.index + LINES_AFTER + 1).min(lines.len());
        window = (from..to).map(|i| (i, lines[i].clone())).collect();
    }
    Bisection {
        scenario: report.scenario.clone(),
        seed: report.seed,
        verdict: report.oracle.verdict(),
        first,
        later,
        faults_before,
        chain,
        window,
    }
}


/// The bisection as text: the first wrong moment, the chain, the faults before it, the trace
/// around it, and what else broke later.
pub fn render(bisection: &Bisection, report: &Report) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!("scenario:   {}   seed: {}   verdict: {}", bisection.scenario, bisection.seed, bisection.verdict));
    let Some(first) = &bisection.first else {
        if bisection.verdict == VerdictClass::Passed {
            line("no invariant broke and the oracle accepted the run: nothing to bisect".into());
        } else {
            line("no result or state change broke an invariant; the run fails on:".into());
            for violation in &report.oracle.violations {
                line(format!("  [{}] {violation}", violation.class().name()));
            }
        }
        return out;
    };
    line(format!(
        "first wrong at {} (trace line {}): [{}] {}",
        clock(first.at),
        first.index + 1,
        first.breach.name(),
        first.breach
    ));
    line(String::new());
    line("causal chain:".into());
    for link in &bisection.chain {
        line(format!(
            "  {:<10} {}  {:<22} {}",
            link.role.name(),
            clock(link.event.at),
            link.event.node,
            link.event.event
        ));
    }
    line(String::new());
    if bisection.faults_before.is_empty() {
        line("faults before it: none".into());
    } else {
        line("faults before it:".into());
        for fault in &bisection.faults_before {
            let faults: Vec<String> = fault.faults.iter().map(Fault::to_string).collect();
            line(format!("  {}  {} ({})", clock(fault.at), fault.command, faults.join(", ")));
        }
    }
    line(String::new());
    line("trace around it:".into());
    for (index, text) in &bisection.window {
        let mark = if *index == first.index { ">>" } else { "  " };
        line(format!("{mark} {:>6} {text}", index + 1));
    }
    if !bisection.later.is_empty() {
        line(String::new());
        line(format!("{} later findings; the first of each kind:", bisection.later.len()));
        let mut kinds = std::collections::BTreeSet::new();
        for finding in &bisection.later {
            if kinds.insert(finding.breach.name()) {
                line(format!("  {finding}"));
            }
        }
    }
    out
}
