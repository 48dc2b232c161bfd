//! One deployed subtask: its lifecycle (INITIALIZING → RUNNING → FINISHED/FAILED, spec §10),
//! the operator it runs, and its reports to the JobManager.

use std::net::SocketAddr;
use std::time::Duration;

use crate::protocol::data::ChannelId;
use crate::protocol::deployment::{TaskDeploymentDescriptor, UpdateTaskExecutionState};
use crate::protocol::job::{ShipStrategy, Vertex};
use crate::protocol::states::ExecutionState;
use crate::rpc::Rpc;
use crate::trace::NodeTrace;

use super::network::{
    ChannelClosed, ChannelTarget, GateKey, GateRegistry, InputGate, Partitioner, RecordWriter,
};
use super::operator;

/// What a running task may use of its TaskManager.
#[derive(Clone)]
pub struct TaskServices {
    /// The TaskManager's endpoint.
    pub rpc: Rpc,
    /// The TaskManager's own address (to tell local consumers from remote ones).
    pub local_address: SocketAddr,
    /// Where local deliveries land.
    pub gates: GateRegistry,
    /// The Kafka broker's address.
    pub broker: SocketAddr,
    /// The TaskManager's trace.
    pub trace: NodeTrace,
}

/// Why a task stopped before its input ended.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// A downstream consumer disappeared.
    #[error(transparent)]
    Output(#[from] ChannelClosed),
    /// Kafka could not be reached or refused a request.
    #[error("kafka: {0}")]
    Kafka(String),
}

/// Everything an operator's loop gets: its descriptor, input and output.
pub struct TaskContext {
    /// The deployment.
    pub tdd: TaskDeploymentDescriptor,
    /// The TaskManager's services.
    pub services: TaskServices,
    /// The input gate; `None` for the source.
    pub input: Option<InputGate>,
    /// The output; `None` for the sink.
    pub output: Option<RecordWriter>,
}

impl TaskContext {
    /// Records a trace event prefixed with the task's display name.
    pub fn trace(&self, message: impl AsRef<str>) {
        self.services.trace.event(format!("{} {}", self.tdd.display_name(), message.as_ref()));
    }
}

/// Opens the task's input gate (before the task runs, so early deliveries find it).
pub fn open_input(tdd: &TaskDeploymentDescriptor, gates: &GateRegistry) -> Option<InputGate> {
    (tdd.input_channels > 0).then(|| gates.open_gate(gate_key(tdd), tdd.input_channels))
}

/// The key of the task's own input gate.
pub fn gate_key(tdd: &TaskDeploymentDescriptor) -> GateKey {
    GateKey::of_channel(&ChannelId {
        job_id: tdd.job_id,
        graph_version: tdd.graph_version,
        consumer: tdd.vertex,
        consumer_subtask: tdd.subtask,
        producer_subtask: 0,
    })
}

/// Builds the task's record writer: one channel per consumer subtask it sends to.
fn open_output(tdd: &TaskDeploymentDescriptor, services: &TaskServices) -> Option<RecordWriter> {
    let consumer = tdd.vertex.downstream()?;
    let strategy = consumer.input_ship_strategy().expect("a downstream vertex has an input");
    let target = |address: SocketAddr| {
        if address == services.local_address {
            ChannelTarget::Local(services.gates.clone())
        } else {
            ChannelTarget::Remote { rpc: services.rpc.clone(), address }
        }
    };
    let channel = |consumer_subtask: u32| ChannelId {
        job_id: tdd.job_id,
        graph_version: tdd.graph_version,
        consumer,
        consumer_subtask,
        producer_subtask: tdd.subtask,
    };
    let (targets, partitioner) = match strategy {
        ShipStrategy::Forward => {
            let address = tdd.consumers[tdd.subtask as usize];
            (vec![(channel(tdd.subtask), target(address))], Partitioner::Forward)
        }
        ShipStrategy::Hash => {
            let targets = (0..tdd.consumers.len() as u32)
                .map(|i| (channel(i), target(tdd.consumers[i as usize])))
                .collect();
            (targets, Partitioner::Hash { max_parallelism: tdd.max_parallelism })
        }
    };
    Some(RecordWriter::new(targets, partitioner))
}

/// Runs a deployed task to its end and reports each state change to the JobManager.
pub async fn run(tdd: TaskDeploymentDescriptor, services: TaskServices, input: Option<InputGate>) {
    report(&services.rpc, &tdd, ExecutionState::Initializing, None).await;
    let output = open_output(&tdd, &services);
    let context = TaskContext { tdd: tdd.clone(), services: services.clone(), input, output };
    report(&services.rpc, &tdd, ExecutionState::Running, None).await;
    let result = match tdd.vertex {
        Vertex::Source => operator::kafka_source::run(context).await,
        Vertex::TimestampsWatermarks => operator::timestamps_watermarks::run(context).await,
        Vertex::Counter => operator::window_counter::run(context).await,
        Vertex::Sink => operator::kafka_sink::run(context).await,
    };
    services.gates.close_gate(gate_key(&tdd));
    match result {
        Ok(()) => report(&services.rpc, &tdd, ExecutionState::Finished, None).await,
        Err(error) => {
            let error = error.to_string();
            report(&services.rpc, &tdd, ExecutionState::Failed, Some(error)).await
        }
    }
}

/// Tells the JobManager about a state change, retrying a few times if it does not answer.
pub async fn report(
    rpc: &Rpc,
    tdd: &TaskDeploymentDescriptor,
    state: ExecutionState,
    error: Option<String>,
) {
    let update = UpdateTaskExecutionState {
        job_id: tdd.job_id,
        attempt_id: tdd.attempt_id,
        state,
        error,
    };
    for _ in 0..5 {
        if rpc.call(tdd.jobmanager, update.clone(), Duration::from_secs(1)).await.is_ok() {
            return;
        }
    }
}
