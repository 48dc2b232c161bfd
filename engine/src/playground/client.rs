//! The `client` node (docs/model/cluster.md#nodes, docs/model/cluster.md#the-flink-cli): the Flink
//! CLI. It runs the commands the scenario types into it, in order, and prints what the CLI prints;
//! the first is the playground's `flink run`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};

use crate::protocol::cluster::{SubmitJob, SubmitJobResponse};
use crate::protocol::ids::JobId;
use crate::protocol::job::JobSubmission;
use crate::rpc::{Network, Rpc};
use crate::trace::NodeTrace;

/// A command typed on the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCommand {
    /// `flink run …`.
    Run(JobSubmission),
}

/// The client's terminal: the commands still to run (kept across restarts of the node).
pub type Terminal = Arc<Mutex<mpsc::UnboundedReceiver<ClientCommand>>>;

/// How the client node is set up.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Its own address.
    pub address: SocketAddr,
    /// The JobManager's address.
    pub jobmanager: SocketAddr,
    /// Where its commands come from.
    pub terminal: Terminal,
    /// The simulated network the node is bound on (the simulator injects its faults there).
    pub network: Network,
    /// The node's trace.
    pub trace: NodeTrace,
}

/// The node's main: runs commands as they come.
pub async fn run(config: ClientConfig) {
    let rpc = Rpc::bind(config.address, config.network.clone());
    loop {
        let command = config.terminal.lock().await.recv().await;
        match command {
            Some(ClientCommand::Run(submission)) => {
                submit(&rpc, &config, submission).await;
            }
            None => return,
        }
    }
}

/// `flink run -d …`: submits the job, retrying until the JobManager answers.
async fn submit(rpc: &Rpc, config: &ClientConfig, submission: JobSubmission) -> Option<JobId> {
    config.trace.event("Starting execution of program");
    loop {
        let request = SubmitJob { submission: submission.clone() };
        match rpc.call(config.jobmanager, request, Duration::from_secs(2)).await {
            Ok(SubmitJobResponse::Submitted(job_id)) => {
                config.trace.event(format!("Job has been submitted with JobID {job_id}"));
                return Some(job_id);
            }
            Ok(SubmitJobResponse::Rejected(reason)) => {
                config.trace.event(format!("The program finished with the following exception: {reason}"));
                return None;
            }
            Err(_) => madsim::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
