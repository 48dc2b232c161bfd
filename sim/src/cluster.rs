//! The simulated playground cluster (docs/model/cluster.md#nodes): one madsim node per container,
//! named as in docker-compose, each with a fixed address and an `init` that is its `main`, so a
//! restart re-runs it with empty memory while its disk (madsim's per-node files) survives.
//!
//! | node | address |
//! |---|---|
//! | `jobmanager` | 10.0.0.1:6123 |
//! | `kafka` | 10.0.0.2:9092 |
//! | `clickevent-generator` | 10.0.0.3:7000 |
//! | `client` | 10.0.0.4:7000 |
//! | `storage` (the shared checkpoint/savepoint volume) | 10.0.0.5:7000 |
//! | `oracle` (flinksim's reader of the topics) | 10.0.0.100:7000 |
//! | `taskmanager-<i>`, i from 1 to 255 | `10.0.1.<i>:6122` |
//! | `taskmanager-<i>`, i from 256 to [`TASKMANAGERS_MAX`] | 10.1.<i / 256>.<i % 256>:6122 |

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use flinksim_engine::jobmanager::{self, JobManagerConfig};
use flinksim_engine::kafka::TopicSpec;
use flinksim_engine::kafka::broker::{self, BrokerConfig};
use flinksim_engine::lifecycle::{STOP_GRACE, Shutdown};
use flinksim_engine::playground::client::{self, ClientCommand, ClientConfig};
use flinksim_engine::playground::generator::{self, GeneratorConfig};
use flinksim_engine::rpc::Network;
use flinksim_engine::storage::{self, StorageConfig};
use flinksim_engine::taskmanager::{self, TaskManagerConfig};
use flinksim_engine::trace::Trace;
use madsim::runtime::Handle;
use madsim::task::NodeId;
use madsim::time::Instant;

use crate::scenario::{OnRestart, Scenario};

/// When the client types the scenario's `flink run`: the playground's client container starts
/// after the cluster's, once the TaskManagers have registered.
pub const CLIENT_SUBMITS_AT: std::time::Duration = std::time::Duration::from_secs(1);

/// Partitions of `input` and `output` (docs/README.md#defaults-at-a-glance).
pub const TOPIC_PARTITIONS: u32 = 2;

pub use crate::scenario::TASKMANAGERS_MAX;

/// The address of a node by name, if it is one of the cluster's.
pub fn address_of(name: &str) -> Option<SocketAddr> {
    let ip = |d: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, d));
    Some(match name {
        "jobmanager" => SocketAddr::new(ip(1), 6123),
        "kafka" => SocketAddr::new(ip(2), 9092),
        "clickevent-generator" => SocketAddr::new(ip(3), 7000),
        "client" => SocketAddr::new(ip(4), 7000),
        "storage" => SocketAddr::new(ip(5), 7000),
        "oracle" => SocketAddr::new(ip(100), 7000),
        other => {
            let i: u32 = other.strip_prefix("taskmanager-")?.parse().ok()?;
            let ip = match i {
                // The first 255 keep the addresses they always had, so existing traces stay the same.
                1..=255 => Ipv4Addr::new(10, 0, 1, i as u8),
                256..=TASKMANAGERS_MAX => Ipv4Addr::new(10, 1, (i / 256) as u8, (i % 256) as u8),
                _ => return None,
            };
            SocketAddr::new(IpAddr::V4(ip), 6122)
        }
    })
}

/// The running cluster: its nodes by name, and whether each is up.
pub struct Cluster {
    handle: Handle,
    nodes: BTreeMap<String, NodeId>,
    running: BTreeMap<String, bool>,
    scenario: Scenario,
    /// The run's trace.
    pub trace: Trace,
    /// The run's simulated network, where its link faults are injected.
    pub network: Network,
    generator_start: Instant,
    jitter_seed: u64,
    terminal: tokio::sync::mpsc::UnboundedSender<ClientCommand>,
    /// The SIGTERM line of each node that handles it (JobManager, TaskManagers, broker).
    shutdowns: BTreeMap<String, Shutdown>,
    /// Tasks spawned on the runtime's main node, which no kill reaches: aborted by
    /// [`Cluster::tear_down`].
    supervisor_tasks: Vec<madsim::task::AbortHandle>,
}

impl Cluster {
    /// Starts every node of the scenario's cluster; the client submits the job at once.
    /// `jitter_seed` seeds the generator's timestamp jitter, if the scenario turns it on.
    pub fn start(scenario: &Scenario, trace: Trace, network: Network, jitter_seed: u64) -> Cluster {
        let (terminal, commands) = tokio::sync::mpsc::unbounded_channel();
        let mut cluster = Cluster {
            handle: Handle::current(),
            nodes: BTreeMap::new(),
            running: BTreeMap::new(),
            scenario: scenario.clone(),
            trace,
            network,
            generator_start: Instant::now(),
            jitter_seed,
            terminal,
            shutdowns: BTreeMap::new(),
            supervisor_tasks: Vec::new(),
        };
        cluster.add_storage();
        cluster.add_kafka();
        cluster.add_jobmanager();
        for i in 1..=scenario.cluster.taskmanagers {
            cluster.add_taskmanager(i);
        }
        cluster.add_generator();
        cluster.add_client(std::sync::Arc::new(tokio::sync::Mutex::new(commands)));
        cluster
    }

    /// Types the scenario's `flink run` on the client, at [`CLIENT_SUBMITS_AT`].
    pub fn submit_job_later(&mut self) {
        let terminal = self.terminal.clone();
        let submission = self.scenario.job.submission.clone();
        let task = madsim::task::spawn(async move {
            madsim::time::sleep(CLIENT_SUBMITS_AT).await;
            let _ = terminal.send(ClientCommand::Run(submission));
        });
        self.supervise(task.abort_handle());
    }

    /// Has [`Cluster::tear_down`] end `task`, spawned on the runtime's main node.
    pub fn supervise(&mut self, task: madsim::task::AbortHandle) {
        self.supervisor_tasks.push(task);
    }

    /// Types a CLI command on the client node.
    pub fn type_on_client(&self, command: ClientCommand) {
        let _ = self.terminal.send(command);
    }

    fn add_storage(&mut self) {
        let config = StorageConfig {
            addr: address_of("storage").unwrap(),
            network: self.network.clone(),
            trace: self.trace.for_node("storage"),
        };
        self.add_node("storage", move || storage::run(config.clone()));
    }

    fn add_node<F, Fut>(&mut self, name: &str, main: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let address = address_of(name).expect("every node in the table has an address");
        let node = self.handle.create_node().name(name).ip(address.ip()).init(main).build();
        self.nodes.insert(name.to_owned(), node.id());
        self.running.insert(name.to_owned(), true);
    }

    fn add_kafka(&mut self) {
        let topics = [&self.scenario.job.submission.args.input_topic, &self.scenario.job.submission.args.output_topic]
            .map(|name| TopicSpec { name: name.clone(), partitions: TOPIC_PARTITIONS })
            .to_vec();
        let mut config = BrokerConfig::new(
            address_of("kafka").unwrap(),
            topics,
            self.network.clone(),
            self.trace.for_node("kafka"),
        );
        config.shutdown = self.shutdown_line("kafka");
        config.transaction_max_timeout = self.scenario.kafka.transaction_max_timeout;
        config.plants = self.scenario.plants;
        self.add_node("kafka", move || broker::run(config.clone()));
    }

    fn add_jobmanager(&mut self) {
        let mut config = JobManagerConfig::new(
            address_of("jobmanager").unwrap(),
            address_of("storage").unwrap(),
            self.network.clone(),
            self.trace.for_node("jobmanager"),
        );
        config.startup_period = self.scenario.cluster.startup_period;
        config.job_defaults = Some(self.scenario.job.submission.clone());
        config.shutdown = self.shutdown_line("jobmanager");
        config.plants = self.scenario.plants;
        self.add_node("jobmanager", move || jobmanager::run(config.clone()));
    }

    fn add_taskmanager(&mut self, i: u32) {
        let name = format!("taskmanager-{i}");
        let config = TaskManagerConfig {
            name: name.clone(),
            address: address_of(&name).unwrap(),
            jobmanager: address_of("jobmanager").unwrap(),
            broker: address_of("kafka").unwrap(),
            slots: self.scenario.cluster.slots,
            heartbeat_timeout: std::time::Duration::from_millis(5000),
            network: self.network.clone(),
            trace: self.trace.for_node(&name),
            shutdown: self.shutdown_line(&name),
            plants: self.scenario.plants,
        };
        self.add_node(&name, move || taskmanager::run(config.clone()));
    }

    fn add_generator(&mut self) {
        let spec = &self.scenario.generator;
        let config = GeneratorConfig {
            rpc_addr: address_of("clickevent-generator").unwrap(),
            broker: address_of("kafka").unwrap(),
            topic: self.scenario.job.submission.args.input_topic.clone(),
            pace: spec.pace,
            start: self.generator_start,
            on_restart: match spec.on_restart {
                OnRestart::Resume => generator::OnRestart::Resume,
                OnRestart::FromZero => generator::OnRestart::FromZero,
            },
            start_event_time: spec.start_event_time,
            jitter: spec.jitter,
            jitter_seed: self.jitter_seed,
            network: self.network.clone(),
            trace: self.trace.for_node("clickevent-generator"),
        };
        self.add_node("clickevent-generator", move || generator::run(config.clone()));
    }

    fn add_client(&mut self, terminal: client::Terminal) {
        let config = ClientConfig {
            address: address_of("client").unwrap(),
            jobmanager: address_of("jobmanager").unwrap(),
            terminal,
            memory: client::Memory::default(),
            network: self.network.clone(),
            trace: self.trace.for_node("client"),
        };
        self.add_node("client", move || client::run(config.clone()));
    }

    /// The madsim id of a node.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.nodes.get(name).copied()
    }

    /// Whether the node exists in this cluster.
    pub fn has_node(&self, name: &str) -> bool {
        self.nodes.contains_key(name)
    }

    fn shutdown_line(&mut self, name: &str) -> Shutdown {
        self.shutdowns.entry(name.to_owned()).or_default().clone()
    }

    /// `docker-compose stop`: SIGTERM to every named node that runs, then SIGKILL to each once
    /// it has shut down by itself or [`STOP_GRACE`] has passed, as Docker does; returns when
    /// all are down (the command returns then, too). A node without a SIGTERM handler (the
    /// generator, a JVM without a shutdown hook) exits at once.
    pub async fn stop(&mut self, names: &[String]) {
        let signalled: Vec<(String, Shutdown)> = names
            .iter()
            .filter(|name| self.running.get(*name).copied().unwrap_or(false))
            .filter_map(|name| Some((name.clone(), self.shutdowns.get(name)?.clone())))
            .collect();
        for name in names {
            if !signalled.iter().any(|(n, _)| n == name) {
                self.kill(name);
            }
        }
        for (_, shutdown) in &signalled {
            shutdown.request();
        }
        let deadline = Instant::now() + STOP_GRACE;
        for (name, shutdown) in signalled {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = madsim::time::timeout(left, shutdown.completed()).await;
            self.kill(&name);
        }
    }

    /// `docker-compose kill`: the node loses its memory and its connections.
    pub fn kill(&mut self, name: &str) {
        if let (Some(id), Some(running)) = (self.node_id(name), self.running.get_mut(name))
            && *running
        {
            self.handle.kill(id);
            *running = false;
        }
    }

    /// `docker-compose up -d`: a stopped node starts again (same name, empty memory, disk kept).
    /// A running node is left alone, as docker-compose does.
    pub fn up(&mut self, name: &str) {
        if !self.has_node(name) {
            if let Some(i) = name.strip_prefix("taskmanager-").and_then(|i| i.parse().ok()) {
                self.add_taskmanager(i);
            }
            return;
        }
        if let (Some(id), Some(running)) = (self.node_id(name), self.running.get_mut(name))
            && !*running
        {
            if let Some(shutdown) = self.shutdowns.get(name) {
                shutdown.reset(); // a new incarnation
            }
            self.handle.restart(id);
            *running = true;
        }
    }

    /// Whether the node exists and runs (it was not killed or stopped since it last started).
    pub fn is_running(&self, name: &str) -> bool {
        self.running.get(name).copied().unwrap_or(false)
    }

    /// The names of the TaskManagers that exist, running or not.
    pub fn taskmanagers(&self) -> Vec<String> {
        self.nodes.keys().filter(|n| n.starts_with("taskmanager-")).cloned().collect()
    }

    /// Kills every node and aborts the supervisor's own tasks, so that madsim drops every task
    /// of the run before the runtime goes (after one more step of simulated time). madsim frees
    /// a task only when its future ends or is dropped by a kill or an abort: a task still pending
    /// when the runtime is dropped holds itself (its future owns its task record, which owns the
    /// task's waker), and everything its future holds, for the rest of the process
    /// (docs/determinism.md#a-run-leaves-nothing-behind).
    pub fn tear_down(&mut self) {
        let ids: Vec<NodeId> = self.nodes.values().copied().collect();
        for id in ids {
            self.handle.kill(id);
        }
        for task in self.supervisor_tasks.drain(..) {
            task.abort();
        }
        for running in self.running.values_mut() {
            *running = false;
        }
    }

    /// Creates the oracle's node, which reads the topics back.
    pub fn add_oracle(&mut self) -> madsim::runtime::NodeHandle {
        let address = address_of("oracle").unwrap();
        self.handle.create_node().name("oracle").ip(address.ip()).build()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `address_of` took the TaskManager's index as a `u8`: 256 TaskManagers panicked the run.
    #[test]
    fn every_taskmanager_up_to_the_maximum_has_its_own_address() {
        let fixed = ["jobmanager", "kafka", "clickevent-generator", "client", "storage", "oracle"];
        let names = fixed.map(String::from).into_iter().chain((1..=TASKMANAGERS_MAX).map(|i| format!("taskmanager-{i}")));
        let mut seen = BTreeSet::new();
        for name in names {
            let address = address_of(&name).unwrap_or_else(|| panic!("{name} has no address"));
            assert!(seen.insert(address.ip()), "{name} shares {address}");
        }
        assert_eq!(address_of("taskmanager-1").unwrap().to_string(), "10.0.1.1:6122");
        assert_eq!(address_of("taskmanager-255").unwrap().to_string(), "10.0.1.255:6122");
        assert_eq!(address_of("taskmanager-300").unwrap().to_string(), "10.1.1.44:6122");
        assert_eq!(address_of("taskmanager-0"), None);
        assert_eq!(address_of(&format!("taskmanager-{}", TASKMANAGERS_MAX + 1)), None);
    }
}
