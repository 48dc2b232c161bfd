//! Flink-style ids: 16 random bytes printed as 32 lowercase hex characters
//! (docs/model/cluster.md#ids), drawn from the run's seeded RNG so that a replay prints the same
//! ids.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub u128);

        impl $name {
            /// A fresh id from the simulation's seeded RNG.
            pub fn random() -> Self {
                $name(madsim::rand::random::<u128>())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:032x}", self.0)
            }
        }
    };
}

hex_id!(
    /// Identifies one submitted job.
    JobId
);
hex_id!(
    /// Identifies one attempt to run one subtask.
    ExecutionAttemptId
);
hex_id!(
    /// Identifies one incarnation of a TaskManager (a restarted TaskManager gets a new one).
    ResourceId
);
hex_id!(
    /// Identifies one savepoint request of the REST API (`flink stop` polls it).
    TriggerId
);
hex_id!(
    /// Identifies one run of the JobManager's leadership, so stale messages can be told apart.
    JobMasterId
);
