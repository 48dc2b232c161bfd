//! One deployed subtask: its lifecycle (INITIALIZING → RUNNING → FINISHED/FAILED,
//! docs/model/cluster.md#state-machines), the operator it runs, and the state changes it reports
//! to the JobManager ([`task_context`](super::task_context) has what the operator is given).

use std::net::SocketAddr;
use std::sync::Arc;

use crate::protocol::data::ChannelId;
use crate::protocol::deployment::TaskDeploymentDescriptor;
use crate::protocol::job::{ShipStrategy, Vertex};
use crate::protocol::states::ExecutionState;
use crate::trace::Event;
use crate::plant::Plants;

use super::control::ControlReceiver;
use super::metrics::TaskMetrics;
use super::network::{ChannelTarget, GateKey, GateRegistry, InputGate, Partitioner, RecordWriter};
use super::operator;
use super::task_context::{TaskContext, TaskError, TaskServices, report};

/// Opens the task's input gate (before the task runs, so early deliveries find it), counting
/// what it receives into `metrics`.
pub fn open_input(
    tdd: &TaskDeploymentDescriptor,
    gates: &GateRegistry,
    plants: Plants,
    metrics: &Arc<TaskMetrics>,
) -> Option<InputGate> {
    (tdd.input_channels > 0)
        .then(|| gates.open_gate(gate_key(tdd), tdd.input_channels).planted(plants).observed_by(metrics.clone()))
}

/// The key of the task's own input gate.
pub fn gate_key(tdd: &TaskDeploymentDescriptor) -> GateKey {
    GateKey::of_channel(&ChannelId {
        job_id: tdd.job_id,
        graph_version: tdd.graph_version,
        consumer: tdd.vertex,
        consumer_subtask: tdd.subtask,
        producer_subtask: 0,
        input_index: 0,
    })
}

/// Builds the task's record writer: one channel per consumer subtask it sends to.
fn open_output(tdd: &TaskDeploymentDescriptor, services: &TaskServices) -> Option<RecordWriter> {
    let consumer = tdd.vertex.downstream(tdd.submission.args.backpressure)?;
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
        input_index: match strategy {
            ShipStrategy::Forward => 0,
            ShipStrategy::Hash => tdd.subtask,
        },
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
    let tracer = super::network::BackpressureTracer::new(services.trace.clone(), tdd.display_name(), tdd.job_id);
    Some(RecordWriter::new(targets, partitioner).with_tracer(tracer))
}

/// Runs a deployed task to its end and reports each state change to the JobManager. The
/// operator reports RUNNING itself once it has restored its state (see [`TaskContext::running`]).
pub async fn run(
    tdd: TaskDeploymentDescriptor,
    services: TaskServices,
    input: Option<InputGate>,
    control: ControlReceiver,
    metrics: Arc<TaskMetrics>,
) {
    report(&services.rpc, &tdd, ExecutionState::Initializing, None).await;
    let output = open_output(&tdd, &services).map(|writer| writer.observed_by(metrics.clone()));
    let context = TaskContext::new(tdd.clone(), services.clone(), input, output, control, metrics);
    let result = match tdd.vertex {
        Vertex::Source => operator::kafka_source::run(context).await,
        Vertex::TimestampsWatermarks => operator::timestamps_watermarks::run(context).await,
        Vertex::Backpressure => operator::backpressure_map::run(context).await,
        Vertex::Counter => operator::window_counter::run(context).await,
        Vertex::Sink => operator::kafka_sink::run(context).await,
    };
    services.gates.close_gate(gate_key(&tdd));
    match result {
        Ok(()) => report(&services.rpc, &tdd, ExecutionState::Finished, None).await,
        // The JobManager asked for it, or the TaskManager is going away: nothing to report.
        Err(TaskError::Canceled) => {}
        Err(error) => {
            if let TaskError::Restore { checkpoint_id, reason } = &error {
                services.trace.record(Event::RestoreFailed {
                    task: tdd.display_name(),
                    checkpoint_id: *checkpoint_id,
                    reason: reason.clone(),
                });
            }
            let error = error.to_string();
            report(&services.rpc, &tdd, ExecutionState::Failed, Some(error)).await
        }
    }
}

