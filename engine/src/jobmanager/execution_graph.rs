//! The running job as the JobManager tracks it (docs/model/cluster.md#state-machines): its status
//! and one execution per subtask of every vertex, each moving through Flink's task states. Every
//! transition is checked against the state machine and logged in Flink's words. I/O-free:
//! transitions append their events to the caller's list, which the node writes to its trace.

use std::collections::BTreeMap;

use crate::protocol::ids::{ExecutionAttemptId, JobId};
use crate::protocol::job::{JobSubmission, Vertex};
use crate::protocol::states::{ExecutionState, JobStatus};
use crate::trace::Event;

use super::slot_pool::SlotId;

/// Where new job and attempt ids come from: the run's seeded RNG in the node; a counter in unit
/// tests, which run without a simulation (and so without its RNG).
#[derive(Debug)]
pub enum IdSource {
    /// `random()` from the simulation's seeded RNG, in the order the ids are needed.
    Seeded,
    /// 1, 2, 3, …: the last id handed out.
    Counter(u128),
}

impl IdSource {
    /// A fresh job id.
    pub fn job_id(&mut self) -> JobId {
        match self {
            IdSource::Seeded => JobId::random(),
            IdSource::Counter(last) => {
                *last += 1;
                JobId(*last)
            }
        }
    }

    /// A fresh execution attempt id.
    pub fn attempt_id(&mut self) -> ExecutionAttemptId {
        match self {
            IdSource::Seeded => ExecutionAttemptId::random(),
            IdSource::Counter(last) => {
                *last += 1;
                ExecutionAttemptId(*last)
            }
        }
    }
}

/// One attempt to run one subtask.
#[derive(Clone, Debug)]
pub struct Execution {
    /// The attempt's id.
    pub attempt_id: ExecutionAttemptId,
    /// 0 for the first attempt, +1 per restart.
    pub attempt_number: u32,
    /// Its state.
    pub state: ExecutionState,
    /// The slot it was given.
    pub slot: Option<SlotId>,
}

/// A submitted job and its executions.
#[derive(Debug)]
pub struct ExecutionGraph {
    /// The job's id.
    pub job_id: JobId,
    /// What was submitted.
    pub submission: JobSubmission,
    /// Number of key groups (fixed when the job first starts).
    pub max_parallelism: u32,
    /// The job's status.
    pub status: JobStatus,
    /// Bumped on every restart; tasks of older versions are ignored.
    pub version: u64,
    /// Restarts so far (Flink's `numRestarts`).
    pub restarts: u32,
    /// The executions, by vertex and subtask.
    pub executions: BTreeMap<(Vertex, u32), Execution>,
    /// When the current executions asked for slots.
    pub scheduled_at: Option<madsim::time::Instant>,
}

impl ExecutionGraph {
    /// A new job in state CREATED with one CREATED execution per subtask.
    pub fn new(
        job_id: JobId,
        submission: JobSubmission,
        max_parallelism: u32,
        ids: &mut IdSource,
    ) -> ExecutionGraph {
        let mut graph = ExecutionGraph {
            job_id,
            submission,
            max_parallelism,
            status: JobStatus::Created,
            version: 0,
            restarts: 0,
            executions: BTreeMap::new(),
            scheduled_at: None,
        };
        graph.create_executions(0, ids);
        graph
    }

    /// The job's vertices, sources first (`--backpressure` adds one).
    pub fn vertices(&self) -> &'static [Vertex] {
        Vertex::graph(self.submission.args.backpressure)
    }

    /// The job's parallelism (all vertices share it).
    pub fn parallelism(&self) -> u32 {
        self.submission.parallelism
    }

    fn create_executions(&mut self, attempt_number: u32, ids: &mut IdSource) {
        for &vertex in Vertex::graph(self.submission.args.backpressure) {
            for subtask in 0..self.parallelism() {
                let execution = Execution {
                    attempt_id: ids.attempt_id(),
                    attempt_number,
                    state: ExecutionState::Created,
                    slot: None,
                };
                self.executions.insert((vertex, subtask), execution);
            }
        }
    }

    /// Moves the job to `next`, logging as Flink does; an illegal move is refused.
    pub fn transition(&mut self, next: JobStatus, events: &mut Vec<Event>) -> bool {
        if !self.status.can_become(next) {
            return false;
        }
        events.push(Event::JobStatusChanged { job_id: self.job_id, from: self.status, to: next });
        self.status = next;
        true
    }

    /// Moves one execution to `next`, logging as Flink does; an illegal move is refused.
    pub fn transition_execution(
        &mut self,
        key: (Vertex, u32),
        next: ExecutionState,
        events: &mut Vec<Event>,
    ) -> bool {
        let parallelism = self.parallelism();
        let Some(execution) = self.executions.get_mut(&key) else { return false };
        if !execution.state.can_become(next) {
            return false;
        }
        events.push(Event::ExecutionStateChanged {
            task: format!("{} ({}/{})", key.0.name(), key.1 + 1, parallelism),
            attempt_id: execution.attempt_id,
            from: execution.state,
            to: next,
        });
        execution.state = next;
        true
    }

    /// The execution with this attempt id, if it belongs to the current graph.
    pub fn find(&self, attempt_id: ExecutionAttemptId) -> Option<(Vertex, u32)> {
        self.executions.iter().find(|(_, e)| e.attempt_id == attempt_id).map(|(key, _)| *key)
    }

    /// Starts a new version of the graph: fresh attempts, all CREATED.
    pub fn reset_for_restart(&mut self, ids: &mut IdSource) {
        let next_attempt = self.executions.values().map(|e| e.attempt_number).max().unwrap_or(0) + 1;
        self.version += 1;
        self.restarts += 1;
        self.create_executions(next_attempt, ids);
    }
}
