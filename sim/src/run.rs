//! One run: a scenario, a seed, a fresh madsim runtime on a fresh thread. The run is a pure
//! function of (build, scenario, seed): the same inputs give the same trace, hash and results.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flinksim_engine::rpc::{LinkFault, Rpc};
use flinksim_engine::trace::{Event, Trace, TraceEvent};
use madsim::rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::cluster::{Cluster, address_of};
use crate::invariant::{self, Finding};
use crate::conservation;
use crate::liveness::{self, LivenessReport};
use crate::oracle::{self, OracleReport, Violation};
use crate::scenario::{
    Anchor, Command, ComposeCommand, FlinkCommand, LivenessExpectation, Scenario, ScenarioError, SimCommand, Step,
    StepTime,
};
use flinksim_engine::playground::client::ClientCommand;
use crate::trace;

/// Everything a run produced.
#[derive(Clone, Debug)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Simulated time the run covered.
    pub simulated: Duration,
    /// The trace, one line per significant event.
    pub trace: Vec<String>,
    /// The same events as values, for the timeline and the tools.
    pub events: Vec<TraceEvent>,
    /// Hash of the trace.
    pub trace_hash: u64,
    /// When each step ran (its time drawn from the seed where the file gives a range).
    pub steps: Vec<(Duration, String)>,
    /// The oracle's findings, the liveness phase's violations among them.
    pub oracle: OracleReport,
    /// What the liveness phase measured: detection and recovery times, and the tail.
    pub liveness: LivenessReport,
    /// The invariants the trace breaks, earliest first: where the run first went wrong
    /// (none on a passing run).
    pub invariants: Vec<Finding>,
    /// Messages the simulated network carried before the oracle started reading.
    pub messages: u64,
}

impl Report {
    /// Whether the oracle accepted the run.
    pub fn passed(&self) -> bool {
        self.oracle.passed()
    }

    /// The trace hash as 16 hex digits.
    pub fn trace_hash_hex(&self) -> String {
        format!("{:016x}", self.trace_hash)
    }
}

/// Why a run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scenario breaks the tail rule (see [`liveness::check_tail`]); nothing ran.
    #[error(transparent)]
    BadInput(Box<ScenarioError>),
    /// The simulation panicked (a bug in flinksim: the seed replays it).
    #[error("the simulation panicked under seed {seed}: {message}")]
    Panicked {
        /// The seed.
        seed: u64,
        /// The panic's message.
        message: String,
    },
}

/// Independent random streams derived from the seed, so that (for example) step times stay the
/// same when the engine's own use of randomness changes.
#[derive(Clone, Copy, Debug)]
enum Stream {
    StepTimes = 1,
    /// The generator's timestamp jitter.
    Jitter = 2,
}

fn stream(seed: u64, which: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(which as u64);
    rng
}

/// A 64-bit seed for a purpose that draws by hashing (the generator's jitter), from its stream.
fn stream_seed(seed: u64, which: Stream) -> u64 {
    stream(seed, which).next_u64()
}

/// The seed of one step's own stream: a hash of the run's seed, the step as written and how many
/// identical steps come before it in the file. Adding or removing another step leaves it alone,
/// so a shrunk plan keeps the draws of the faults it keeps (docs/scenarios.md#faults-draw-from-their-own-streams).
pub fn step_seed(seed: u64, step: &Step, twin: u32) -> u64 {
    let text = format!("{}\n{}\n{twin}", step.at, step.command);
    xxhash_rust::xxh3::xxh3_64_with_seed(text.as_bytes(), seed)
}

/// For each step, how many identical steps (same time, same command) come before it in the file.
fn twins(scenario: &Scenario) -> Vec<u32> {
    let mut seen: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut twins = Vec::with_capacity(scenario.steps.len());
    for step in &scenario.steps {
        let count = seen.entry((step.at.to_string(), step.command.to_string())).or_default();
        twins.push(*count);
        *count += 1;
    }
    twins
}

/// A duration drawn uniformly in `[min, max]` in whole microseconds.
fn draw_between(rng: &mut ChaCha8Rng, min: Duration, max: Duration) -> Duration {
    let span = (max - min).as_micros() as u64;
    min + Duration::from_micros(rng.gen_range(0..=span))
}

/// When each step runs, drawn from the seed where the file gives a range. A step anchored to an
/// event has no time before the run: its entry is `None` (its delay is drawn from the step's
/// own stream when the event happens; see [`anchored_delay`]).
pub fn step_times(scenario: &Scenario, seed: u64) -> Vec<Option<Duration>> {
    let mut rng = stream(seed, Stream::StepTimes);
    scenario
        .steps
        .iter()
        .map(|step| match step.at {
            StepTime::At(at) => Some(at),
            StepTime::Between { min, max } => Some(draw_between(&mut rng, min, max)),
            StepTime::After { .. } => None,
        })
        .collect()
}

/// The delay an anchored step waits after its event, from the step's own stream.
pub fn anchored_delay(seed: u64, step: &Step, twin: u32) -> Duration {
    match step.at {
        StepTime::After { delay_min, delay_max, .. } => {
            let mut rng = ChaCha8Rng::seed_from_u64(step_seed(seed, step, twin));
            draw_between(&mut rng, delay_min, delay_max)
        }
        other => other.earliest(),
    }
}

/// Counts the traced events steps can be anchored to, as the run records them.
#[derive(Debug, Default)]
pub struct AnchorCounter {
    seen: BTreeMap<Anchor, Vec<Duration>>,
    windows: std::collections::BTreeSet<i64>,
    /// A window fired outside any transaction (an at-least-once sink) since the last checkpoint
    /// was triggered: the next one carries its results.
    results_pending: bool,
    /// Checkpoints with results to carry, not yet completed (or subsumed).
    carrying: std::collections::BTreeSet<u64>,
    /// The checkpoint each exactly-once sink transaction was begun for, by producer id and epoch.
    transactions: BTreeMap<(i64, i16), u64>,
}

impl AnchorCounter {
    /// Counts one event: each anchor it is an occurrence of.
    pub fn count(&mut self, event: &TraceEvent) {
        let mut seen = |anchor| self.seen.entry(anchor).or_default().push(event.at);
        match &event.event {
            Event::CheckpointTriggered { checkpoint_id, .. } => {
                seen(Anchor::CheckpointTriggered);
                if std::mem::take(&mut self.results_pending) {
                    self.carrying.insert(*checkpoint_id);
                }
            }
            Event::CheckpointCompleted { checkpoint_id, .. } => {
                seen(Anchor::CheckpointCompleted);
                // A completed checkpoint subsumes the failed ones before it: their transactions
                // commit with its own.
                let carried = self.carrying.range(..=*checkpoint_id).count() > 0;
                self.carrying.retain(|id| id > checkpoint_id);
                if carried {
                    seen(Anchor::ResultsCheckpointed);
                }
            }
            Event::TransactionCommitted { transaction, .. } => {
                seen(Anchor::SinkCommitted);
                self.transactions.remove(&(transaction.producer_id, transaction.epoch));
            }
            Event::TransactionBegun { transaction, checkpoint_id, .. } => {
                self.transactions.insert((transaction.producer_id, transaction.epoch), *checkpoint_id);
            }
            Event::ResultWritten { statistics, transaction, .. } if self.windows.insert(statistics.window_start_ms) => {
                seen(Anchor::WindowFired);
                // In a transaction, the results are the checkpoint's it was begun for: with
                // triggers slowed on their way, that can be a checkpoint triggered before the
                // window fired.
                match transaction.as_ref().and_then(|t| self.transactions.get(&(t.producer_id, t.epoch))) {
                    Some(&checkpoint_id) => {
                        self.carrying.insert(checkpoint_id);
                    }
                    None => self.results_pending = true,
                }
            }
            _ => {}
        }
    }

    /// When the `n`-th occurrence (from 1) of `anchor` happened, if it has.
    pub fn nth(&self, anchor: Anchor, n: u32) -> Option<Duration> {
        self.seen.get(&anchor)?.get(usize::try_from(n).ok()?.checked_sub(1)?).copied()
    }
}

/// Runs the scenario's steps at their times, fixed, drawn, or anchored to traced events; returns
/// when each ran. Steps due after the end (a shortened `--duration`) never run; steps due at the
/// same time run in file order.
async fn run_steps(cluster: &mut Cluster, scenario: &Scenario, seed: u64, trace: &Trace) -> Vec<(Duration, String)> {
    let sim = trace.for_node("sim");
    let twins = twins(scenario);
    let mut due: Vec<Option<Duration>> = step_times(scenario, seed);
    let mut done = vec![false; scenario.steps.len()];
    let mut anchors = AnchorCounter::default();
    let mut cursor = 0;
    let mut steps_run = Vec::new();
    loop {
        // Take the future before reading the trace, so that no event recorded in between is missed.
        let recorded = trace.recorded();
        let new = trace.events_since(cursor);
        cursor += new.len();
        for event in &new {
            anchors.count(event);
        }
        let now = trace.elapsed();
        let mut waiting = false;
        for (i, step) in scenario.steps.iter().enumerate() {
            if let (StepTime::After { anchor, n, by, .. }, None) = (step.at, due[i]) {
                match anchors.nth(anchor, n).filter(|at| *at < by) {
                    Some(at) => due[i] = Some(at + anchored_delay(seed, step, twins[i])),
                    None if now >= by => due[i] = Some(by + anchored_delay(seed, step, twins[i])),
                    None => waiting = true,
                }
            }
        }
        let next = (0..scenario.steps.len())
            .filter(|&i| !done[i])
            .filter_map(|i| Some((due[i]?, i)))
            .filter(|(at, _)| *at <= scenario.duration)
            .min();
        // An anchored step not yet placed wakes the loop at its `by` at the latest.
        let deadline = scenario
            .steps
            .iter()
            .zip(&due)
            .filter_map(|(step, due)| match (step.at, due) {
                (StepTime::After { by, .. }, None) => Some(by),
                _ => None,
            })
            .min();
        let wake = match (next.map(|(at, _)| at), deadline) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => break,
        };
        // Sleep even for a step due now (a zero sleep yields, as the steps always have), so a
        // scenario's trace does not depend on how its steps' times were found.
        let sleep = madsim::time::sleep(wake.saturating_sub(now));
        let timer = if waiting {
            tokio::select! {
                biased;
                _ = sleep => true,
                _ = recorded => false,
            }
        } else {
            sleep.await;
            true
        };
        let Some((at, i)) = next.filter(|(at, _)| timer && *at == wake) else { continue };
        let step = &scenario.steps[i];
        done[i] = true;
        let effect = liveness::effect(&step.command, &cluster.taskmanagers());
        let command = step.command.to_string();
        sim.record(Event::StepRun { command, applied: effect.applied, healed: effect.healed, removed: effect.removed });
        execute(cluster, scenario, &step.command, step_seed(seed, step, twins[i])).await;
        steps_run.push((at, step.command.to_string()));
    }
    steps_run
}

/// Runs the scenario under `seed` on its own thread with a fresh runtime.
pub fn run(scenario: &Scenario, seed: u64) -> Result<Report, RunError> {
    run_with_progress(scenario, seed, Arc::default())
}

/// Runs the scenario as [`run`] does, and every 10 s of simulated time stores in `progress` the
/// simulated time reached, in milliseconds, for another thread to show. Only simulated time is
/// read, and nothing is traced: the run, its trace and its hash are exactly [`run`]'s.
pub fn run_with_progress(scenario: &Scenario, seed: u64, progress: Arc<AtomicU64>) -> Result<Report, RunError> {
    liveness::check_tail(scenario).map_err(|e| RunError::BadInput(Box::new(e)))?;
    let scenario = scenario.clone();
    let (mut report, events) = on_fresh_runtime(seed, move |runtime| runtime.block_on(simulate(scenario, seed, progress)))?;
    report.trace = trace::lines(&events);
    report.trace_hash = trace::hash(&report.trace);
    report.events = events;
    Ok(report)
}

/// Runs the scenario as [`run`] does, on a runtime that is dropped before this returns, and
/// tells whether the run's trace went with it: `false` if anything of the run (a task, a timer,
/// a node's state) outlived its runtime, which a long sweep would pay for once per run
/// (docs/determinism.md#a-run-leaves-nothing-behind).
pub fn run_frees_its_memory(scenario: &Scenario, seed: u64) -> Result<bool, RunError> {
    liveness::check_tail(scenario).map_err(|e| RunError::BadInput(Box::new(e)))?;
    let scenario = scenario.clone();
    on_fresh_runtime(seed, move |runtime| {
        let probe = runtime.block_on(async move {
            let trace = Trace::new();
            let probe = trace.probe();
            simulate_on(trace, scenario, seed, Arc::default()).await;
            probe
        });
        drop(runtime);
        probe.freed()
    })
}

/// A panic's message, whatever its payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// Runs `body` with a fresh runtime seeded with `seed`, on a thread of its own: madsim's
/// std-HashMap seeding is only per-seed-stable for the first runtime on a thread (madsim issue
/// #240). The runtime is gone when this returns; a panic comes back as [`RunError::Panicked`].
fn on_fresh_runtime<T: Send + 'static>(
    seed: u64,
    body: impl FnOnce(madsim::runtime::Runtime) -> T + Send + 'static,
) -> Result<T, RunError> {
    std::thread::Builder::new()
        .name(format!("seed-{seed}"))
        .spawn(move || body(madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default())))
        .expect("the OS can start a thread")
        .join()
        .map_err(|panic| RunError::Panicked { seed, message: panic_message(&*panic) })
}

#[doc(hidden)]
pub async fn simulate(scenario: Scenario, seed: u64, progress: Arc<AtomicU64>) -> (Report, Vec<TraceEvent>) {
    simulate_on(Trace::new(), scenario, seed, progress).await
}

/// [`simulate`] recording into `trace`, a new one.
async fn simulate_on(trace: Trace, scenario: Scenario, seed: u64, progress: Arc<AtomicU64>) -> (Report, Vec<TraceEvent>) {
    let sim = trace.for_node("sim");
    sim.event(format!("scenario {} seed {seed}", scenario.name));
    let mut cluster = Cluster::start(&scenario, trace.clone(), Default::default(), stream_seed(seed, Stream::Jitter));
    cluster.submit_job_later();
    // madsim keeps a record of every finished task until its task metrics are read; the engine
    // spawns a task per request, so read them now and then to keep long runs small. The same
    // task reports progress, so that no task or timer is added to the run.
    let clock = trace.clone();
    let metrics_reader = madsim::task::spawn(async move {
        loop {
            madsim::time::sleep(Duration::from_secs(10)).await;
            madsim::runtime::Handle::current().metrics().num_tasks();
            progress.store(clock.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
    });
    cluster.supervise(metrics_reader.abort_handle());

    let steps_run = run_steps(&mut cluster, &scenario, seed, &trace).await;
    madsim::time::sleep(scenario.duration.saturating_sub(trace.elapsed())).await;
    let simulated = trace.elapsed();
    let messages = cluster.network.messages();
    // The input stops here, so that the oracle's read of `input` holds every event the job can
    // ever count. Left running, the generator kept producing while the oracle read, and a window
    // that fired meanwhile counted events appended after the oracle had read their partition.
    cluster.kill("clickevent-generator");
    sim.event("duration reached: generator stopped; reading input and output back");
    if !cluster.is_running("kafka") {
        // A broker down for good (a stall) still has its log on disk: the oracle reads it from a
        // broker started again, with the job's nodes stopped first so that nothing writes meanwhile.
        cluster.kill("jobmanager");
        for node in cluster.taskmanagers() {
            cluster.kill(&node);
        }
        cluster.up("kafka");
        sim.event("kafka started again for the oracle's read, the job's nodes killed first");
    }

    let oracle_node = cluster.add_oracle();
    let submission = scenario.job.submission.clone();
    let isolation = scenario.reader_isolation();
    let network = cluster.network.clone();
    let mut observed = oracle_node
        .spawn(async move {
            let rpc = Rpc::bind(address_of("oracle").unwrap(), network);
            oracle::observe(
                rpc,
                address_of("kafka").unwrap(),
                &submission.args.input_topic,
                &submission.args.output_topic,
                isolation,
                if submission.args.event_time { Duration::ZERO } else { oracle::PROCESSING_TIME_SETTLE },
            )
            .await
        })
        .await
        .expect("the oracle's node is never killed");
    observed.first_event_time = i64::try_from(scenario.generator.start_event_time.as_millis()).unwrap_or(i64::MAX);
    observed.ended_at = simulated;
    // Zombies' transactions holding read_committed readers are what the real systems do too:
    // fenced, they leave output as readers will read it after the broker's timeout, which the
    // oracle then judges for everything else.
    let events = trace.events();
    let causes = oracle::Causes::from_trace(&events);
    let zombies = oracle::zombies_holding(&observed, &causes);
    if !zombies.is_empty() {
        let network = cluster.network.clone();
        let output_topic = scenario.job.submission.args.output_topic.clone();
        observed = oracle_node
            .spawn(async move {
                let rpc = Rpc::bind(address_of("oracle").unwrap(), network);
                oracle::read_output_after_fencing(rpc, address_of("kafka").unwrap(), &output_topic, zombies, observed)
                    .await
            })
            .await
            .expect("the oracle's node is never killed");
    }
    cluster.tear_down();
    madsim::runtime::Handle::current().kill(oracle_node.id());
    // One step of simulated time lets the executor drop the killed nodes' tasks and the aborted
    // ones: none may outlive the runtime (docs/determinism.md#a-run-leaves-nothing-behind).
    madsim::time::sleep(Duration::from_millis(1)).await;
    let mut oracle = if scenario.job.submission.args.event_time {
        oracle::judge(&observed, &scenario.expect, &causes)
    } else {
        conservation::judge(&observed, &scenario.expect, &causes, &crate::processing_time::Fire::from_trace(&events))
    };
    let liveness = liveness::judge(&events, &scenario.expect, simulated);
    if scenario.expect.liveness == LivenessExpectation::Stall {
        // The scenario says the job must stall: results missing to the end are what it expects.
        let (stalled, others) = std::mem::take(&mut oracle.violations)
            .into_iter()
            .partition(|v| matches!(v, Violation::Stalled { .. } | Violation::NothingRan));
        oracle.violations = others;
        let stalled: Vec<Violation> = stalled;
        oracle.notes.extend(stalled.iter().map(|v| format!("{v} (the scenario expects the job to stall)")));
    }
    oracle.violations.extend(liveness.violations.iter().cloned().map(Violation::Liveness));
    oracle.violations.extend(crate::responses::judge(&events, &scenario.expect.responses).into_iter().map(Violation::Response));
    let invariants = invariant::check(&events, &oracle, scenario.job.submission.sink_mode, &scenario.expect);
    let report = Report {
        scenario: scenario.name.clone(),
        seed,
        simulated,
        trace: Vec::new(),
        events: Vec::new(),
        trace_hash: 0,
        steps: steps_run,
        oracle,
        liveness,
        invariants,
        messages,
    };
    (report, events)
}

/// Carries out one step on the cluster; returns when the command would return (a
/// `docker-compose stop` once its services are down).
async fn execute(cluster: &mut Cluster, scenario: &Scenario, command: &Command, step_seed: u64) {
    let nodes = |cluster: &Cluster, service: &crate::scenario::Service| {
        use crate::scenario::Service;
        match service {
            Service::TaskManagers => cluster.taskmanagers(),
            other => vec![other.to_string()],
        }
    };
    match command {
        Command::Compose(ComposeCommand::Kill(service)) => {
            for node in nodes(cluster, service) {
                cluster.kill(&node);
            }
        }
        Command::Compose(ComposeCommand::Stop(service)) => {
            let names = nodes(cluster, service);
            cluster.stop(&names).await;
        }
        Command::Compose(ComposeCommand::Up(service) | ComposeCommand::Start(service)) => {
            for node in nodes(cluster, service) {
                cluster.up(&node);
            }
        }
        Command::Compose(ComposeCommand::Scale { taskmanagers }) => {
            for i in 1..=*taskmanagers {
                cluster.up(&format!("taskmanager-{i}"));
            }
            for node in cluster.taskmanagers() {
                let i: u32 = node["taskmanager-".len()..].parse().unwrap_or(0);
                if i > *taskmanagers {
                    cluster.kill(&node);
                }
            }
        }
        Command::Flink(FlinkCommand::Run { submission, .. }) => {
            let mut submission = submission.clone();
            submission.sink_mode = scenario.job.submission.sink_mode;
            submission.transaction_timeout = scenario.job.submission.transaction_timeout;
            submission.idleness = scenario.job.submission.idleness;
            submission.out_of_orderness = scenario.job.submission.out_of_orderness;
            cluster.type_on_client(ClientCommand::Run(submission));
        }
        Command::Flink(FlinkCommand::Stop { job, drain, .. }) => {
            cluster.type_on_client(ClientCommand::Stop { job: *job, drain: *drain });
        }
        Command::Flink(FlinkCommand::List { .. }) => cluster.type_on_client(ClientCommand::List),
        Command::Flink(FlinkCommand::Cancel { job, .. }) => cluster.type_on_client(ClientCommand::Cancel(*job)),
        Command::Curl(curl) => cluster.type_on_client(ClientCommand::Curl(curl.clone())),
        Command::Sim(SimCommand::Partition(a, b)) => {
            if let (Some(a), Some(b)) = (address_of(a), address_of(b)) {
                cluster.network.partition(a.ip(), b.ip());
            }
        }
        Command::Sim(SimCommand::Heal(a, b)) => {
            if let (Some(a), Some(b)) = (address_of(a), address_of(b)) {
                cluster.network.heal(a.ip(), b.ip());
            }
        }
        Command::Sim(SimCommand::Link { from, to, delay, loss }) => {
            if let (Some(from), Some(to)) = (address_of(from), address_of(to)) {
                let fault = LinkFault { delay: delay.clone(), loss_probability: loss.unwrap_or(0.0), seed: step_seed };
                cluster.network.set(from.ip(), to.ip(), Some(fault));
            }
        }
        Command::Sim(SimCommand::ClearLink { from, to }) => {
            if let (Some(from), Some(to)) = (address_of(from), address_of(to)) {
                cluster.network.set(from.ip(), to.ip(), None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flinksim_engine::protocol::click_event::{ClickEventStatistics, WINDOW_MS};
    use flinksim_engine::protocol::ids::JobId;
    use flinksim_engine::trace::TransactionHandle;

    fn at(ms: u64, event: Event) -> TraceEvent {
        TraceEvent { at: Duration::from_millis(ms), node: "n".into(), event }
    }

    fn triggered(checkpoint_id: u64) -> Event {
        Event::CheckpointTriggered { job_id: JobId(1), checkpoint_id, timestamp_ms: 0 }
    }

    fn completed(checkpoint_id: u64) -> Event {
        let zero = Duration::ZERO;
        Event::CheckpointCompleted { job_id: JobId(1), checkpoint_id, size_bytes: 0, duration: zero, finalization: zero }
    }

    fn handle(producer_id: i64) -> TransactionHandle {
        TransactionHandle { transactional_id: format!("t-0-{producer_id}").into(), producer_id, epoch: 0 }
    }

    fn written(window: i64, transaction: Option<TransactionHandle>) -> Event {
        let statistics = ClickEventStatistics { window_start_ms: window, window_end_ms: window + WINDOW_MS, page: "/help".into(), count: 1000 };
        Event::ResultWritten { task: "ClickEventStatistics Sink (1/2)".into(), statistics, transaction }
    }

    #[test]
    fn results_are_checkpointed_by_the_checkpoint_their_transaction_was_begun_for() {
        let begun = |checkpoint_id| Event::TransactionBegun { task: "s".into(), transaction: handle(7), checkpoint_id };
        let mut anchors = AnchorCounter::default();
        // Checkpoint 5's trigger is slow on its way: the window fires before its barrier reaches
        // the sink, into the transaction begun for checkpoint 5.
        for event in [at(1_000, begun(5)), at(1_100, triggered(5)), at(1_500, written(0, Some(handle(7)))), at(2_100, triggered(6))] {
            anchors.count(&event);
        }
        anchors.count(&at(2_300, completed(5)));
        assert_eq!(anchors.nth(Anchor::ResultsCheckpointed, 1), Some(Duration::from_millis(2_300)));
        anchors.count(&at(3_300, completed(6)));
        assert_eq!(anchors.nth(Anchor::ResultsCheckpointed, 2), None, "checkpoint 6 carries nothing");
    }

    #[test]
    fn results_outside_transactions_are_checkpointed_by_the_next_trigger() {
        let mut anchors = AnchorCounter::default();
        for event in [at(1_100, triggered(5)), at(1_500, written(0, None)), at(2_100, triggered(6)), at(2_300, completed(5))] {
            anchors.count(&event);
        }
        assert_eq!(anchors.nth(Anchor::ResultsCheckpointed, 1), None, "checkpoint 5 was triggered before the window fired");
        anchors.count(&at(3_300, completed(6)));
        assert_eq!(anchors.nth(Anchor::ResultsCheckpointed, 1), Some(Duration::from_millis(3_300)));
        assert_eq!(anchors.nth(Anchor::WindowFired, 1), Some(Duration::from_millis(1_500)));
    }
}
