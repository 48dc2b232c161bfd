//! A run's verdict class: what kind of thing went wrong, each with its own exit code, so that a
//! sweep, a bisection or a shrinker can tell an engine bug from a job whose own semantics lost
//! data, or from a job that never recovered.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of outcome, from the best to the worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VerdictClass {
    /// The oracle accepted the run.
    Passed,
    /// Late drops, loss or copies with a recorded cause, or readers held by zombies'
    /// transactions, that the scenario did not allow: the job's own semantics (Flink's and
    /// Kafka's, faithfully modelled) lost, repeated or held back results.
    Semantic,
    /// The job did not recover in the fault-free tail (no results for expected windows), took
    /// longer to detect or recover than the scenario allows, or did not stall where it must.
    Liveness,
    /// Results that cannot be right whatever the job's semantics: events unaccounted for,
    /// copies where none are allowed, counts other than the input holds, malformed records.
    /// An engine bug.
    Correctness,
    /// The same seed gave two different runs (reserved for the determinism check).
    Nondeterminism,
    /// The scenario file or a flag is wrong; nothing ran.
    BadInput,
    /// The simulation panicked.
    Panic,
}

impl VerdictClass {
    /// The process exit code of a run with this verdict (README, "Exit codes").
    pub const fn exit_code(self) -> u8 {
        match self {
            VerdictClass::Passed => 0,
            VerdictClass::Correctness => 1,
            VerdictClass::BadInput => 2,
            VerdictClass::Panic => 3,
            VerdictClass::Semantic => 4,
            VerdictClass::Liveness => 5,
            VerdictClass::Nondeterminism => 6,
        }
    }

    /// Its short name, as a report tags a violation (`semantic`, `correctness`, …).
    pub fn name(self) -> &'static str {
        match self {
            VerdictClass::Passed => "passed",
            VerdictClass::Semantic => "semantic",
            VerdictClass::Liveness => "liveness",
            VerdictClass::Correctness => "correctness",
            VerdictClass::Nondeterminism => "nondeterminism",
            VerdictClass::BadInput => "bad input",
            VerdictClass::Panic => "panic",
        }
    }

    /// The verdict of a run with several findings: the worst one wins (panic, then
    /// nondeterminism, then correctness, then liveness, then semantic).
    pub fn worst(classes: impl IntoIterator<Item = VerdictClass>) -> VerdictClass {
        classes.into_iter().max().unwrap_or(VerdictClass::Passed)
    }
}

impl fmt::Display for VerdictClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerdictClass::Passed => "PASSED",
            VerdictClass::Semantic => "FAILED (semantic: results lost, held back or repeated for a reason the trace records, which the scenario does not allow)",
            VerdictClass::Liveness => "FAILED (liveness: the job did not recover, or not in time)",
            VerdictClass::Correctness => "FAILED (correctness: an engine bug)",
            VerdictClass::Nondeterminism => "FAILED (nondeterminism)",
            VerdictClass::BadInput => "bad input",
            VerdictClass::Panic => "FAILED (panic)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_finding_wins_and_each_class_has_its_own_exit_code() {
        use VerdictClass::*;
        assert_eq!(VerdictClass::worst([]), Passed);
        assert_eq!(VerdictClass::worst([Semantic, Liveness]), Liveness);
        assert_eq!(VerdictClass::worst([Semantic, Correctness, Liveness]), Correctness);
        assert_eq!(VerdictClass::worst([Correctness, Panic]), Panic);
        let all = [Passed, Semantic, Liveness, Correctness, Nondeterminism, BadInput, Panic];
        let mut codes: Vec<u8> = all.iter().map(|c| c.exit_code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6]);
    }
}
