//! Planted bugs (docs/planted-bugs.md): deliberate mistakes the engine can switch on at run time,
//! to show that the testbed's oracle and liveness checks catch them. Each is a small change of
//! behaviour at the real code path, guarded by a check read once when a node or task starts.
//! Never on by default, never set by a scenario file: only `--plant <bug>` on the command line,
//! carried in each node's configuration like any other setting.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One deliberate bug. The kebab-case name is stable: it is the `--plant` switch and appears in
/// replay commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlantedBug {
    /// The source reads each restored offset as the last record read, not the next to read, and
    /// skips one record per partition on every restore.
    SourceRestoreOffsetSkew,
    /// The window operator snapshots no window state: a restore starts its open windows empty.
    WindowStateNotSnapshotted,
    /// The input gate forwards a barrier on its first channel and blocks nothing, so records
    /// after the barrier on one channel land in the state snapshotted for it.
    BarriersNotAligned,
    /// The exactly-once sink commits its transaction when the barrier passes, before the
    /// checkpoint completes.
    SinkCommitsBeforeCheckpoint,
    /// The window operator restores its window state without the timers that fire it.
    TimersLostOnRestore,
    /// On restore each keyed subtask takes the key groups its index owned at the checkpoint's
    /// parallelism, not at its own: on rescale state lands where its keys never arrive.
    WrongKeyGroupOnRescale,
    /// The JobManager never declares a silent TaskManager lost: only its re-registration ends it.
    HeartbeatTimeoutIgnored,
    /// The source sends a savepoint's barrier ahead of the records still in its output buffers
    /// and drops them, as an unaligned barrier would without storing the overtaken data.
    SavepointWithoutDrain,
    /// The checkpoint coordinator completes a checkpoint once the tasks it triggered (the sources)
    /// have acknowledged, without waiting for the others.
    CheckpointCompletesEarly,
    /// The broker leaves the aborted-transaction index out of `read_committed` fetches, so those
    /// readers see aborted records.
    ReadCommittedShowsAborted,
    /// The input gate combines its channels' watermarks by their maximum instead of their minimum.
    WatermarkMaxOfInputs,
    /// On restore the exactly-once sink aborts the transactions its checkpoint recorded as
    /// pending instead of committing them.
    SinkAbortsRestoredTransactions,
    /// The watermark generator leaves out the out-of-orderness bound (watermark = max − 1).
    WatermarkWithoutBound,
}

impl PlantedBug {
    /// Every planted bug, in a fixed order.
    pub const ALL: [PlantedBug; 13] = [
        PlantedBug::SourceRestoreOffsetSkew,
        PlantedBug::WindowStateNotSnapshotted,
        PlantedBug::BarriersNotAligned,
        PlantedBug::SinkCommitsBeforeCheckpoint,
        PlantedBug::TimersLostOnRestore,
        PlantedBug::WrongKeyGroupOnRescale,
        PlantedBug::HeartbeatTimeoutIgnored,
        PlantedBug::SavepointWithoutDrain,
        PlantedBug::CheckpointCompletesEarly,
        PlantedBug::ReadCommittedShowsAborted,
        PlantedBug::WatermarkMaxOfInputs,
        PlantedBug::SinkAbortsRestoredTransactions,
        PlantedBug::WatermarkWithoutBound,
    ];

    /// The stable kebab-case name (`--plant <name>`).
    pub fn name(self) -> &'static str {
        match self {
            PlantedBug::SourceRestoreOffsetSkew => "source-restore-offset-skew",
            PlantedBug::WindowStateNotSnapshotted => "window-state-not-snapshotted",
            PlantedBug::BarriersNotAligned => "barriers-not-aligned",
            PlantedBug::SinkCommitsBeforeCheckpoint => "sink-commits-before-checkpoint",
            PlantedBug::TimersLostOnRestore => "timers-lost-on-restore",
            PlantedBug::WrongKeyGroupOnRescale => "wrong-key-group-on-rescale",
            PlantedBug::HeartbeatTimeoutIgnored => "heartbeat-timeout-ignored",
            PlantedBug::SavepointWithoutDrain => "savepoint-without-drain",
            PlantedBug::CheckpointCompletesEarly => "checkpoint-completes-early",
            PlantedBug::ReadCommittedShowsAborted => "read-committed-shows-aborted",
            PlantedBug::WatermarkMaxOfInputs => "watermark-max-of-inputs",
            PlantedBug::SinkAbortsRestoredTransactions => "sink-aborts-restored-transactions",
            PlantedBug::WatermarkWithoutBound => "watermark-without-bound",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for PlantedBug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no planted bug.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown planted bug `{given}`: expected one of {}", PlantedBug::ALL.map(PlantedBug::name).join(", "))]
pub struct UnknownPlantedBug {
    /// What was given.
    pub given: String,
}

impl FromStr for PlantedBug {
    type Err = UnknownPlantedBug;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PlantedBug::ALL.into_iter().find(|bug| bug.name() == s).ok_or_else(|| UnknownPlantedBug { given: s.to_owned() })
    }
}

/// The bugs planted in a run: a small ordered set, empty by default. `Copy`, so every node and
/// task keeps its own and a check is a bit test. Stored as the list of names.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "Vec<PlantedBug>", from = "Vec<PlantedBug>")]
pub struct Plants(u16);

impl From<Plants> for Vec<PlantedBug> {
    fn from(plants: Plants) -> Vec<PlantedBug> {
        plants.iter().collect()
    }
}

impl From<Vec<PlantedBug>> for Plants {
    fn from(bugs: Vec<PlantedBug>) -> Plants {
        Plants::of(bugs)
    }
}

impl Plants {
    /// No bug planted (the default).
    pub const NONE: Plants = Plants(0);

    /// The set of `bugs`.
    pub fn of(bugs: impl IntoIterator<Item = PlantedBug>) -> Plants {
        bugs.into_iter().fold(Plants::NONE, |plants, bug| plants.with(bug))
    }

    /// This set and `bug`.
    pub fn with(self, bug: PlantedBug) -> Plants {
        Plants(self.0 | bug.bit())
    }

    /// Whether `bug` is planted.
    pub fn has(self, bug: PlantedBug) -> bool {
        self.0 & bug.bit() != 0
    }

    /// Whether no bug is planted.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The planted bugs, in [`PlantedBug::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = PlantedBug> {
        PlantedBug::ALL.into_iter().filter(move |bug| self.has(*bug))
    }
}

impl fmt::Debug for Plants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// `a, b` or `none`.
impl fmt::Display for Plants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.iter().map(PlantedBug::name).collect();
        f.write_str(&names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bug_reads_back_from_its_name_and_serializes_as_it() {
        for bug in PlantedBug::ALL {
            assert_eq!(bug.name().parse::<PlantedBug>(), Ok(bug));
            assert_eq!(serde_json::to_string(&bug).unwrap(), format!("\"{}\"", bug.name()));
        }
        let names: std::collections::BTreeSet<&str> = PlantedBug::ALL.iter().map(|b| b.name()).collect();
        assert_eq!(names.len(), PlantedBug::ALL.len(), "names are distinct");
    }

    #[test]
    fn an_unknown_name_is_refused_with_every_valid_one() {
        let error = "barriers-unaligned".parse::<PlantedBug>().unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("unknown planted bug `barriers-unaligned`: expected one of "), "{message}");
        for bug in PlantedBug::ALL {
            assert!(message.contains(bug.name()), "{message}");
        }
    }

    #[test]
    fn a_set_is_empty_by_default_and_lists_its_bugs_in_a_fixed_order() {
        assert!(Plants::default().is_empty());
        assert_eq!(Plants::default().to_string(), "none");
        let plants = Plants::of([PlantedBug::WatermarkWithoutBound, PlantedBug::BarriersNotAligned]);
        assert!(plants.has(PlantedBug::BarriersNotAligned) && !plants.has(PlantedBug::TimersLostOnRestore));
        assert_eq!(plants.to_string(), "barriers-not-aligned, watermark-without-bound");
        assert_eq!(plants.with(PlantedBug::BarriersNotAligned), plants);
        let json = serde_json::to_string(&plants).unwrap();
        assert_eq!(json, r#"["barriers-not-aligned","watermark-without-bound"]"#);
        assert_eq!(serde_json::from_str::<Plants>(&json).unwrap(), plants);
    }
}
