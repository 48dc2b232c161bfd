//! The `client` node (spec §1, §13): submits the job with `flink run` as the playground's client
//! container does, prints what the CLI prints, and exits.

use std::net::SocketAddr;
use std::time::Duration;

use crate::protocol::cluster::{SubmitJob, SubmitJobResponse};
use crate::protocol::ids::JobId;
use crate::protocol::job::JobSubmission;
use crate::rpc::{LinkFaults, Rpc};
use crate::trace::NodeTrace;

/// How the client node is set up.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Its own address.
    pub address: SocketAddr,
    /// The JobManager's address.
    pub jobmanager: SocketAddr,
    /// The parsed `flink run` line.
    pub submission: JobSubmission,
    /// The simulator's link faults.
    pub faults: LinkFaults,
    /// The node's trace.
    pub trace: NodeTrace,
}

/// The node's main: submits the job (retrying until the JobManager answers) and returns its id.
pub async fn run(config: ClientConfig) -> Option<JobId> {
    let rpc = Rpc::bind(config.address, config.faults.clone()).await.ok()?;
    config.trace.event("Starting execution of program");
    loop {
        let request = SubmitJob { submission: config.submission.clone() };
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
