//! The restart strategy (docs/model/cluster.md#failure-detection-and-restarts): with checkpointing,
//! fixed delay of 1 s and unlimited attempts; without, none (the job fails for good).

use std::time::Duration;

use crate::protocol::job::JobSubmission;

/// When and how often a failed job restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartStrategy {
    /// Wait between failure and restart.
    pub delay: Duration,
    /// Restarts allowed (`None`: unlimited).
    pub max_attempts: Option<u32>,
}

impl RestartStrategy {
    /// The playground's strategy for this submission.
    pub fn for_job(submission: &JobSubmission) -> RestartStrategy {
        if submission.args.checkpointing {
            RestartStrategy { delay: Duration::from_secs(1), max_attempts: None }
        } else {
            RestartStrategy { delay: Duration::ZERO, max_attempts: Some(0) }
        }
    }

    /// Whether one more restart is allowed after `restarts` so far.
    pub fn allows_restart(&self, restarts: u32) -> bool {
        self.max_attempts.is_none_or(|max| restarts < max)
    }
}
