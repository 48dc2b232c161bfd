//! Fault schedules as data (docs/fuzzing.md#fault-plans): a [`FaultPlan`] is a list of faults,
//! each a kind, a time (fixed, or anchored to a traced event) and how long it lasts. A plan
//! renders to the steps of a scenario file ([`FaultPlan::steps`]), two per fault (the fault, then
//! its heal), and reads back from a scenario's steps ([`FaultPlan::from_scenario`]).

use std::fmt;
use std::time::Duration;

use crate::scenario::{
    Anchor, Command, ComposeCommand, FlinkCommand, Scenario, Service, SimCommand, StepTime, format_duration,
};

/// The faults of one fuzz case, in the order the scenario file lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The faults.
    pub faults: Vec<Fault>,
}

/// One fault: what, when, for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// What the fault does and what heals it.
    pub kind: FaultKind,
    /// When it begins.
    pub at: FaultTime,
    /// How long until the step that heals it.
    pub lasts: Duration,
}

/// When a fault begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultTime {
    /// At this simulated time.
    At(Duration),
    /// `delay` after the `n`-th occurrence of `anchor`, or after `by` if it has not happened
    /// by then (docs/scenarios.md#anchored-step-times).
    After {
        /// The traced event.
        anchor: Anchor,
        /// Its occurrence, from 1.
        n: u32,
        /// The delay after it.
        delay: Duration,
        /// When the step stops waiting for it.
        by: Duration,
    },
}

/// What a fault does; each kind has a step that heals it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// `docker-compose kill <service>`, healed by `docker-compose up -d <service>`. A
    /// TaskManager killed where a spare runs is a failover to the spare.
    Kill(Service),
    /// `docker-compose stop <service>`, healed by `docker-compose start <service>`.
    Stop(Service),
    /// `sim partition <a> <b>`, healed by `sim heal <a> <b>`.
    Partition(String, String),
    /// `sim link <from> -> <to> delay <min>..<max> loss <p>`, healed by `... clear`.
    Link {
        /// The sending node.
        from: String,
        /// The receiving node.
        to: String,
        /// The shortest extra delay per message, in milliseconds.
        delay_min_ms: u64,
        /// The longest extra delay per message, in milliseconds.
        delay_max_ms: u64,
        /// Messages lost, in percent.
        loss_percent: u32,
    },
    /// `flink stop $job` (a savepoint), healed by `flink run -p <parallelism> -s $savepoint`.
    Savepoint {
        /// The parallelism the job is restored at.
        parallelism: u32,
    },
    /// `docker-compose scale taskmanager=<to>`, healed by scaling back to the scenario's count.
    Scale {
        /// The TaskManagers that run meanwhile.
        to: u32,
    },
}

/// Why a scenario's steps are not a fault plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The steps do not come in pairs of a fault and its heal.
    #[error("step {index} (`{run}`) is not followed by the step that heals it")]
    Unpaired {
        /// The 0-based index of the step.
        index: usize,
        /// Its `run` line.
        run: String,
    },
    /// A step's time cannot be a fault's, or its heal's time does not follow from it.
    #[error("step {index}: its time {at} is not a fault plan's")]
    Time {
        /// The 0-based index of the step.
        index: usize,
        /// The time as the scenario prints it.
        at: String,
    },
}

impl FaultKind {
    /// The `run` lines of the fault and of its heal, for a scenario whose job is submitted with
    /// `run` and which starts `taskmanagers` TaskManagers.
    pub fn lines(&self, run: &str, taskmanagers: u32) -> (String, String) {
        match self {
            FaultKind::Kill(s) => (format!("docker-compose kill {s}"), format!("docker-compose up -d {s}")),
            FaultKind::Stop(s) => (format!("docker-compose stop {s}"), format!("docker-compose start {s}")),
            FaultKind::Partition(a, b) => (format!("sim partition {a} {b}"), format!("sim heal {a} {b}")),
            FaultKind::Link { from, to, delay_min_ms, delay_max_ms, loss_percent } => {
                let loss = match loss_percent {
                    0 => String::new(),
                    p => format!(" loss {}", f64::from(*p) / 100.0),
                };
                (
                    format!("sim link {from} -> {to} delay {delay_min_ms}ms..{delay_max_ms}ms{loss}"),
                    format!("sim link {from} -> {to} clear"),
                )
            }
            FaultKind::Savepoint { parallelism } => {
                let rest = run.trim_start().strip_prefix("flink run").unwrap_or(run).trim_start();
                let rest = rest.strip_prefix("-d ").unwrap_or(rest);
                ("flink stop $job".to_owned(), format!("flink run -d -p {parallelism} -s $savepoint {rest}"))
            }
            FaultKind::Scale { to } => (
                format!("docker-compose scale taskmanager={to}"),
                format!("docker-compose scale taskmanager={taskmanagers}"),
            ),
        }
    }

    /// The fault a pair of steps (the fault, its heal) stands for.
    fn from_commands(fault: &Command, heal: &Command) -> Option<FaultKind> {
        use ComposeCommand::{Kill, Scale, Start, Stop, Up};
        Some(match (fault, heal) {
            (Command::Compose(Kill(a)), Command::Compose(Up(b))) if a == b => FaultKind::Kill(*a),
            (Command::Compose(Stop(a)), Command::Compose(Start(b))) if a == b => FaultKind::Stop(*a),
            (Command::Sim(SimCommand::Partition(a, b)), Command::Sim(SimCommand::Heal(c, d))) if (a, b) == (c, d) => {
                FaultKind::Partition(a.clone(), b.clone())
            }
            (
                Command::Sim(SimCommand::Link { from, to, delay, loss }),
                Command::Sim(SimCommand::ClearLink { from: f, to: t }),
            ) if (from, to) == (f, t) => {
                let delay = delay.clone().unwrap_or_default();
                FaultKind::Link {
                    from: from.clone(),
                    to: to.clone(),
                    delay_min_ms: u64::try_from(delay.start.as_millis()).ok()?,
                    delay_max_ms: u64::try_from(delay.end.as_millis()).ok()?,
                    loss_percent: (loss.unwrap_or(0.0) * 100.0).round() as u32,
                }
            }
            (Command::Flink(FlinkCommand::Stop { .. }), Command::Flink(FlinkCommand::Run { submission, .. }))
                if submission.savepoint_path.is_some() =>
            {
                FaultKind::Savepoint { parallelism: submission.parallelism }
            }
            (Command::Compose(Scale { taskmanagers }), Command::Compose(Scale { .. })) => {
                FaultKind::Scale { to: *taskmanagers }
            }
            _ => return None,
        })
    }

    /// The kind's family, for the swarm's choice of enabled kinds and for reports.
    pub fn family(&self) -> Family {
        match self {
            FaultKind::Kill(Service::Kafka) => Family::BrokerOutage,
            FaultKind::Kill(Service::Storage) => Family::StorageOutage,
            FaultKind::Kill(_) => Family::KillTaskManager,
            FaultKind::Stop(_) => Family::StopTaskManager,
            FaultKind::Partition(..) => Family::Partition,
            FaultKind::Link { .. } => Family::SlowLink,
            FaultKind::Savepoint { .. } => Family::Savepoint,
            FaultKind::Scale { .. } => Family::Scale,
        }
    }
}

/// A family of fault kinds: a swarm case enables some of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// A TaskManager killed, brought back later (a spare takes its work meanwhile).
    KillTaskManager,
    /// A TaskManager stopped gracefully, started later.
    StopTaskManager,
    /// The broker killed, started later.
    BrokerOutage,
    /// The checkpoint storage killed, started later.
    StorageOutage,
    /// Two nodes cut apart, healed later.
    Partition,
    /// A link delayed and lossy, cleared later.
    SlowLink,
    /// A stop with a savepoint, the job restored at another parallelism.
    Savepoint,
    /// TaskManagers scaled to another count, and back.
    Scale,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 8] = [
        Family::KillTaskManager,
        Family::StopTaskManager,
        Family::BrokerOutage,
        Family::StorageOutage,
        Family::Partition,
        Family::SlowLink,
        Family::Savepoint,
        Family::Scale,
    ];
}

impl FaultTime {
    /// The step times of the fault and of its heal, `lasts` later.
    pub fn step_times(self, lasts: Duration) -> (StepTime, StepTime) {
        match self {
            FaultTime::At(at) => (StepTime::At(at), StepTime::At(at + lasts)),
            FaultTime::After { anchor, n, delay, by } => {
                let at = |d| StepTime::After { anchor, n, delay_min: d, delay_max: d, by };
                (at(delay), at(delay + lasts))
            }
        }
    }

    /// The fault time and duration a pair of step times stand for.
    fn from_step_times(fault: StepTime, heal: StepTime) -> Option<(FaultTime, Duration)> {
        match (fault, heal) {
            (StepTime::At(a), StepTime::At(b)) if b >= a => Some((FaultTime::At(a), b - a)),
            (
                StepTime::After { anchor, n, delay_min, delay_max, by },
                StepTime::After { anchor: a2, n: n2, delay_min: h, delay_max: h2, by: by2 },
            ) if delay_min == delay_max && h == h2 && (anchor, n, by) == (a2, n2, by2) && h >= delay_min => {
                Some((FaultTime::After { anchor, n, delay: delay_min, by }, h - delay_min))
            }
            _ => None,
        }
    }
}

impl FaultPlan {
    /// The plan as a scenario's steps: each fault, then its heal.
    pub fn steps(&self, base: &Scenario) -> Vec<(StepTime, String)> {
        let mut steps = Vec::with_capacity(self.faults.len() * 2);
        for fault in &self.faults {
            let (apply, heal) = fault.kind.lines(&base.job.run, base.cluster.taskmanagers);
            let (apply_at, heal_at) = fault.at.step_times(fault.lasts);
            steps.push((apply_at, apply));
            steps.push((heal_at, heal));
        }
        steps
    }

    /// The plan as a whole scenario file: `base` with the plan's steps.
    pub fn to_toml(&self, base: &Scenario) -> String {
        base.to_toml_with_steps(&self.steps(base))
    }

    /// The plan a scenario's steps are: pairs of a fault and its heal.
    pub fn from_scenario(scenario: &Scenario) -> Result<FaultPlan, PlanError> {
        let mut faults = Vec::new();
        let mut steps = scenario.steps.iter().enumerate();
        while let Some((index, apply)) = steps.next() {
            let unpaired = || PlanError::Unpaired { index, run: apply.command.to_string() };
            let (_, heal) = steps.next().ok_or_else(unpaired)?;
            let kind = FaultKind::from_commands(&apply.command, &heal.command).ok_or_else(unpaired)?;
            let (at, lasts) = FaultTime::from_step_times(apply.at, heal.at)
                .ok_or_else(|| PlanError::Time { index, at: apply.at.to_string() })?;
            faults.push(Fault { kind, at, lasts });
        }
        Ok(FaultPlan { faults })
    }
}

impl fmt::Display for Fault {
    /// `docker-compose kill taskmanager-1 at 20ms after checkpoint-completed #3 (by 1m30s), for 5s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (apply, _) = self.kind.lines("flink run -d <job>", 0);
        let at = self.at.step_times(self.lasts).0;
        write!(f, "{apply} at {at}, for {}", format_duration(self.lasts))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;
    use crate::fuzz::strategy::{Shape, plans};

    fn base() -> Scenario {
        let text = r#"
name = "base"
duration = "2m30s"

[cluster]
taskmanagers = 2
slots = 2

[generator]
jitter = "200ms"

[job]
run = "flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing --event-time"
sink = "exactly-once"
"#;
        Scenario::parse(text, Path::new("scenarios/base.toml")).unwrap()
    }

    proptest! {
        /// A plan written as a scenario file reads back to the same plan.
        #[test]
        fn a_plan_renders_to_a_scenario_file_and_parses_back(plan in plans(Shape::of(&base()).unwrap())) {
            let base = base();
            let text = plan.to_toml(&base);
            let scenario = Scenario::parse(&text, &base.path).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(FaultPlan::from_scenario(&scenario).unwrap(), plan);
        }
    }

    #[test]
    fn an_anchored_kill_reads_as_written() {
        let plan = FaultPlan {
            faults: vec![Fault {
                kind: FaultKind::Kill(Service::TaskManager(1)),
                at: FaultTime::After {
                    anchor: Anchor::CheckpointCompleted,
                    n: 3,
                    delay: Duration::from_millis(20),
                    by: Duration::from_secs(90),
                },
                lasts: Duration::from_secs(5),
            }],
        };
        let text = plan.to_toml(&base());
        assert!(
            text.contains(
                "at = { after = \"checkpoint-completed\", n = 3, delay = \"20ms\", by = \"1m 30s\" }\nrun = \"docker-compose kill taskmanager-1\""
            ),
            "{text}"
        );
        assert!(text.contains("delay = \"5s 20ms\""), "{text}");
    }

    #[test]
    fn steps_that_are_not_fault_and_heal_pairs_are_refused() {
        let mut scenario = base();
        let text = "\n[[step]]\nat = \"1m\"\nrun = \"docker-compose kill kafka\"\n";
        let with_step = scenario.to_toml().replace("\n[expect]", &format!("{text}\n[expect]"));
        scenario = Scenario::parse(&with_step, &scenario.path).unwrap();
        assert_eq!(
            FaultPlan::from_scenario(&scenario),
            Err(PlanError::Unpaired { index: 0, run: "docker-compose kill kafka".into() })
        );
    }
}
