//! proptest strategies over fault plans (docs/fuzzing.md#strategies), swarm-style: each case
//! first picks which families of faults it enables, then draws up to [`FAULTS_MAX`] faults of
//! those. Three faults in four are anchored to a traced event with a delay of at most 50 ms, to
//! land in the narrow windows of the commit protocol; the rest fall at a time anywhere in the run.
//! Shrinking removes faults, then moves them earlier (smaller `n`, smaller delays and times) and
//! makes them shorter.

use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::{select, subsequence};

use super::plan::{Family, Fault, FaultKind, FaultPlan, FaultTime};
use crate::liveness::TAIL_MIN;
use crate::scenario::{Anchor, Scenario, Service};

/// The most faults in one plan.
pub const FAULTS_MAX: usize = 4;

/// The earliest a fault begins: after the job has run its first checkpoints.
pub const EARLIEST: Duration = Duration::from_secs(5);

/// The shortest a fault lasts.
pub const LASTS_MIN: Duration = Duration::from_millis(200);

/// The longest a fault lasts.
pub const LASTS_MAX: Duration = Duration::from_secs(20);

/// The longest delay after an anchor event: the narrow windows are tens of milliseconds wide.
pub const ANCHOR_DELAY_MAX: Duration = Duration::from_millis(50);

/// What the strategies need of the base scenario.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// TaskManagers at start.
    pub taskmanagers: u32,
    /// Slots per TaskManager.
    pub slots: u32,
    /// The highest parallelism a restore may ask for: every slot, but with idleness off no more
    /// than the input's partitions, or a subtask without a partition holds the watermark back for
    /// good (the no-partition-subtask-stall pitfall, not an engine bug).
    pub parallelism_max: u32,
    /// The latest a fault begins, and the `by` of anchored faults: late enough for the run's
    /// fault-free tail to follow the longest fault.
    pub by: Duration,
}

impl Shape {
    /// The shape of `base`; `None` if it is too short to hold a fault and its tail.
    pub fn of(base: &Scenario) -> Option<Shape> {
        let by = base.duration.checked_sub(TAIL_MIN + LASTS_MAX + ANCHOR_DELAY_MAX + Duration::from_secs(1))?;
        let slots = (base.cluster.taskmanagers * base.cluster.slots).max(1);
        let parallelism_max = match base.job.submission.idleness {
            None => slots.min(crate::cluster::TOPIC_PARTITIONS),
            Some(_) => slots,
        };
        (by > EARLIEST).then_some(Shape {
            taskmanagers: base.cluster.taskmanagers,
            slots: base.cluster.slots,
            parallelism_max,
            by,
        })
    }
}

/// Fault plans for a base scenario of this shape.
pub fn plans(shape: Shape) -> BoxedStrategy<FaultPlan> {
    subsequence(Family::ALL.to_vec(), 1..=Family::ALL.len())
        .prop_flat_map(move |families| proptest::collection::vec(fault(shape, families), 1..=FAULTS_MAX))
        .prop_map(|faults| FaultPlan { faults })
        .boxed()
}

/// One fault of one of `families`.
fn fault(shape: Shape, families: Vec<Family>) -> impl Strategy<Value = Fault> {
    let lasts = (LASTS_MIN.as_millis() as u64..=LASTS_MAX.as_millis() as u64).prop_map(Duration::from_millis);
    (select(families).prop_flat_map(move |family| kind(shape, family)), time(shape), lasts)
        .prop_map(|(kind, at, lasts)| Fault { kind, at, lasts })
}

/// When a fault begins: mostly just after an anchor event.
fn time(shape: Shape) -> impl Strategy<Value = FaultTime> {
    let by = shape.by;
    let fixed = (EARLIEST.as_millis() as u64..=by.as_millis() as u64).prop_map(|ms| FaultTime::At(Duration::from_millis(ms)));
    let anchored = select(Anchor::ALL.to_vec()).prop_flat_map(move |anchor| {
        // Windows fire every 15 s; checkpoints complete about once a second, each commits twice.
        let most = match anchor {
            Anchor::WindowFired | Anchor::ResultsCheckpointed => 8u32,
            Anchor::SinkCommitted => 200,
            Anchor::CheckpointTriggered | Anchor::CheckpointCompleted => 100,
        };
        (1..=most, 0u64..=ANCHOR_DELAY_MAX.as_micros() as u64).prop_map(move |(n, delay)| FaultTime::After {
            anchor,
            n,
            delay: Duration::from_micros(delay),
            by,
        })
    });
    prop_oneof![1 => fixed, 3 => anchored]
}

/// Faults of one family.
fn kind(shape: Shape, family: Family) -> BoxedStrategy<FaultKind> {
    let tms = shape.taskmanagers.max(1);
    let tm = move || 1..=tms;
    match family {
        Family::KillTaskManager => tm().prop_map(|i| FaultKind::Kill(Service::TaskManager(i))).boxed(),
        Family::StopTaskManager => tm().prop_map(|i| FaultKind::Stop(Service::TaskManager(i))).boxed(),
        Family::BrokerOutage => Just(FaultKind::Kill(Service::Kafka)).boxed(),
        Family::StorageOutage => Just(FaultKind::Kill(Service::Storage)).boxed(),
        Family::Partition => (0..3usize, tm())
            .prop_map(|(which, i)| {
                let tm = format!("taskmanager-{i}");
                let other = ["jobmanager", "kafka", "storage"][which];
                FaultKind::Partition(other.to_owned(), tm)
            })
            .boxed(),
        // The links that stretch the protocol: a TaskManager's snapshots to storage, the
        // JobManager's notifications to a TaskManager, one source's fetches (an uneven input).
        Family::SlowLink => (0..4usize, tm(), 0u64..500, 1u64..2000, 0u32..=20)
            .prop_map(|(route, i, min, extra, loss)| {
                let tm = format!("taskmanager-{i}");
                let (from, to) = match route {
                    0 => (tm, "storage".to_owned()),
                    1 => ("jobmanager".to_owned(), tm),
                    2 => ("kafka".to_owned(), tm),
                    _ => (tm, "jobmanager".to_owned()),
                };
                FaultKind::Link { from, to, delay_min_ms: min, delay_max_ms: min + extra, loss_percent: loss }
            })
            .boxed(),
        Family::Savepoint => {
            (1..=shape.parallelism_max).prop_map(|parallelism| FaultKind::Savepoint { parallelism }).boxed()
        }
        Family::Scale => (1..=tms + 1).prop_map(|to| FaultKind::Scale { to }).boxed(),
    }
}
