//! Job and task (execution) states with Flink's names and legal transitions
//! (docs/model/cluster.md#state-machines).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A job's status, printed as Flink prints it (`RUNNING`, `RESTARTING`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum JobStatus {
    /// The job is being set up.
    Initializing,
    /// Accepted, not yet scheduled.
    Created,
    /// Scheduling has started (tasks may still wait for slots).
    Running,
    /// Failing; no restart allowed.
    Failing,
    /// Failed for good.
    Failed,
    /// Being cancelled.
    Cancelling,
    /// Cancelled.
    Canceled,
    /// Every task finished.
    Finished,
    /// Waiting for the restart delay after a recoverable failure.
    Restarting,
    /// Suspended (the JobManager lost leadership).
    Suspended,
    /// Reconciling after a JobManager failover.
    Reconciling,
}

impl JobStatus {
    /// Whether the status is globally terminal (FAILED, CANCELED, FINISHED).
    pub fn is_globally_terminal(self) -> bool {
        matches!(self, JobStatus::Failed | JobStatus::Canceled | JobStatus::Finished)
    }

    /// Whether the state machine allows `self → next`.
    pub fn can_become(self, next: JobStatus) -> bool {
        use JobStatus::*;
        matches!(
            (self, next),
            (Initializing, Created)
                | (Created, Running)
                | (Running, Restarting | Failing | Cancelling | Finished | Suspended)
                | (Restarting, Running | Cancelling | Failing | Suspended)
                | (Failing, Failed | Restarting)
                | (Cancelling, Canceled)
                | (Created, Cancelling | Failing | Suspended)
        )
    }

    /// Flink's name for the status.
    pub fn name(self) -> &'static str {
        use JobStatus::*;
        match self {
            Initializing => "INITIALIZING",
            Created => "CREATED",
            Running => "RUNNING",
            Failing => "FAILING",
            Failed => "FAILED",
            Cancelling => "CANCELLING",
            Canceled => "CANCELED",
            Finished => "FINISHED",
            Restarting => "RESTARTING",
            Suspended => "SUSPENDED",
            Reconciling => "RECONCILING",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One execution attempt's state (note CANCELING with one L, as Flink spells it here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ExecutionState {
    /// Created, no slot requested yet.
    Created,
    /// A slot is requested.
    Scheduled,
    /// A slot is assigned and the deployment sent.
    Deploying,
    /// Restoring state on the TaskManager.
    Initializing,
    /// Processing.
    Running,
    /// Done.
    Finished,
    /// Being cancelled.
    Canceling,
    /// Cancelled.
    Canceled,
    /// Failed.
    Failed,
    /// Reconciling after a JobManager failover.
    Reconciling,
}

impl ExecutionState {
    /// Whether the attempt is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, ExecutionState::Finished | ExecutionState::Canceled | ExecutionState::Failed)
    }

    /// Whether the state machine allows `self → next`.
    pub fn can_become(self, next: ExecutionState) -> bool {
        use ExecutionState::*;
        if self.is_terminal() {
            return false;
        }
        matches!(
            (self, next),
            (_, Failed)
                | (Created, Scheduled | Canceled)
                | (Scheduled, Deploying | Canceled)
                | (Deploying, Initializing | Canceling)
                | (Initializing, Running | Canceling)
                | (Running, Finished | Canceling)
                | (Canceling, Canceled)
        )
    }

    /// Flink's name for the state.
    pub fn name(self) -> &'static str {
        use ExecutionState::*;
        match self {
            Created => "CREATED",
            Scheduled => "SCHEDULED",
            Deploying => "DEPLOYING",
            Initializing => "INITIALIZING",
            Running => "RUNNING",
            Finished => "FINISHED",
            Canceling => "CANCELING",
            Canceled => "CANCELED",
            Failed => "FAILED",
            Reconciling => "RECONCILING",
        }
    }
}

impl fmt::Display for ExecutionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_job_states_cannot_be_left() {
        for next in [JobStatus::Running, JobStatus::Restarting, JobStatus::Created] {
            assert!(!JobStatus::Failed.can_become(next));
            assert!(!JobStatus::Finished.can_become(next));
        }
        assert!(JobStatus::Running.can_become(JobStatus::Restarting));
        assert!(JobStatus::Restarting.can_become(JobStatus::Running));
    }

    #[test]
    fn tasks_walk_created_scheduled_deploying_initializing_running() {
        use ExecutionState::*;
        let path = [Created, Scheduled, Deploying, Initializing, Running, Finished];
        assert!(path.windows(2).all(|w| w[0].can_become(w[1])));
        assert!(!Created.can_become(Running));
        assert!(Scheduled.can_become(Canceled) && !Running.can_become(Canceled));
        assert_eq!(Canceling.name(), "CANCELING");
        assert_eq!(JobStatus::Cancelling.name(), "CANCELLING");
    }
}
