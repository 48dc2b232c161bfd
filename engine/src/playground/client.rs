//! The `client` node (docs/model/cluster.md#nodes, docs/model/cluster.md#the-flink-cli): the Flink CLI. It runs the commands the scenario types
//! into it, in order, and prints what the CLI prints: `flink run`, `flink stop`, `flink list`
//! and `flink cancel`; and `curl` against the REST API (docs/model/rest.md#curl). It remembers
//! the last job it submitted (`$job`), the last savepoint it stopped one with (`$savepoint`),
//! and from REST answers the last trigger id (`$trigger`) and uploaded jar (`$jar`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};

use crate::protocol::cluster::{SubmitJob, SubmitJobResponse};
use crate::protocol::ids::JobId;
use crate::protocol::job::{JOB_NAME, JobSubmission};
use crate::protocol::rest::{CancelJob, GetSavepointStatus, ListJobs, SavepointStatus, StopJob};
use crate::protocol::rest_api::REST_PORT;
use crate::trace::Event;

use super::curl::{self, CurlCommand};
use crate::protocol::rest_api::CurlOutcome;
use crate::rpc::{Network, Rpc};
use crate::trace::NodeTrace;

/// The word a step writes for the current job's id.
pub const CURRENT_JOB: &str = "$job";
/// The word a step writes for the last savepoint's path.
pub const LAST_SAVEPOINT: &str = "$savepoint";

/// Which job a command names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobRef {
    /// `$job`: the last job this client submitted.
    Current,
    /// A job id as typed.
    Id(JobId),
}

/// A command typed on the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCommand {
    /// `flink run …` (`-s $savepoint` is the last savepoint's path).
    Run(JobSubmission),
    /// `flink stop [--drain] <job>`.
    Stop {
        /// The job.
        job: JobRef,
        /// `--drain`.
        drain: bool,
    },
    /// `flink list`.
    List,
    /// `flink cancel <job>`.
    Cancel(JobRef),
    /// `curl …` against the REST API.
    Curl(CurlCommand),
}

/// The client's terminal: the commands still to run (kept across restarts of the node).
pub type Terminal = Arc<Mutex<mpsc::UnboundedReceiver<ClientCommand>>>;

/// What the user saw printed, for the `$job` and `$savepoint` of later commands (kept across
/// restarts of the node, as a shell's history is).
#[derive(Clone, Debug, Default)]
pub struct Memory(Arc<std::sync::Mutex<Remembered>>);

#[derive(Debug, Default)]
struct Remembered {
    job: Option<JobId>,
    savepoint: Option<String>,
    trigger: Option<String>,
    jar: Option<String>,
}

/// How the client node is set up.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Its own address.
    pub address: SocketAddr,
    /// The JobManager's address.
    pub jobmanager: SocketAddr,
    /// Where its commands come from.
    pub terminal: Terminal,
    /// `$job` and `$savepoint`.
    pub memory: Memory,
    /// The simulated network the node is bound on (the simulator injects its faults there).
    pub network: Network,
    /// The node's trace.
    pub trace: NodeTrace,
}

/// How long one request to the JobManager waits before it is sent again.
const ATTEMPT: Duration = Duration::from_secs(2);
/// How often `flink stop` asks whether its savepoint is done.
const POLL: Duration = Duration::from_millis(500);

/// The node's main: runs commands as they come.
pub async fn run(config: ClientConfig) {
    let rpc = Rpc::bind(config.address, config.network.clone());
    loop {
        let command = config.terminal.lock().await.recv().await;
        match command {
            Some(ClientCommand::Run(submission)) => {
                submit(&rpc, &config, submission).await;
            }
            Some(ClientCommand::Stop { job, drain }) => stop(&rpc, &config, job, drain).await,
            Some(ClientCommand::List) => list(&rpc, &config).await,
            Some(ClientCommand::Cancel(job)) => cancel(&rpc, &config, job).await,
            Some(ClientCommand::Curl(command)) => run_curl(&rpc, &config, command).await,
            None => return,
        }
    }
}

/// Prints Flink's CLI error block.
fn exception(config: &ClientConfig, cause: &str) {
    config.trace.event(format!("The program finished with the following exception: {cause}"));
}

/// The job id a command names, or the CLI's complaint.
fn resolve(config: &ClientConfig, job: JobRef) -> Option<JobId> {
    match job {
        JobRef::Id(id) => Some(id),
        JobRef::Current => {
            let id = config.memory.0.lock().unwrap().job;
            if id.is_none() {
                exception(config, "no job has been submitted from this client: `$job` names none");
            }
            id
        }
    }
}

/// Sends `request` until the JobManager answers.
async fn ask<R: crate::rpc::Request + Clone>(rpc: &Rpc, config: &ClientConfig, request: R) -> R::Response {
    loop {
        match rpc.call(config.jobmanager, request.clone(), ATTEMPT).await {
            Ok(answer) => return answer,
            Err(_) => madsim::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// `flink run -d …`: submits the job, retrying until the JobManager answers.
async fn submit(rpc: &Rpc, config: &ClientConfig, mut submission: JobSubmission) -> Option<JobId> {
    if submission.savepoint_path.as_deref() == Some(LAST_SAVEPOINT) {
        let Some(path) = config.memory.0.lock().unwrap().savepoint.clone() else {
            exception(config, "no savepoint has been taken from this client: `$savepoint` names none");
            return None;
        };
        submission.savepoint_path = Some(path);
    }
    config.trace.event("Starting execution of program");
    // Reading a savepoint takes the JobManager a storage round trip or more: wait longer than
    // for a plain submission, so that a slow answer is not taken for a lost one.
    let attempt = if submission.savepoint_path.is_some() { 15 * ATTEMPT } else { ATTEMPT };
    loop {
        let request = SubmitJob { submission: submission.clone() };
        match rpc.call(config.jobmanager, request, attempt).await {
            Ok(SubmitJobResponse::Submitted(job_id)) => {
                config.trace.event(format!("Job has been submitted with JobID {job_id}"));
                config.memory.0.lock().unwrap().job = Some(job_id);
                return Some(job_id);
            }
            Ok(SubmitJobResponse::Rejected(reason)) => {
                exception(config, &reason);
                return None;
            }
            Err(_) => madsim::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// `flink stop [--drain] <job>`: triggers the savepoint and waits for it, as the CLI does.
async fn stop(rpc: &Rpc, config: &ClientConfig, job: JobRef, drain: bool) {
    let Some(job_id) = resolve(config, job) else { return };
    config.trace.event(format!("Suspending job \"{job_id}\" with a savepoint."));
    let trigger_id = match ask(rpc, config, StopJob { job_id, drain }).await {
        Ok(trigger_id) => trigger_id,
        Err(cause) => {
            exception(config, &format!("Could not stop with a savepoint job \"{job_id}\". {cause}"));
            return;
        }
    };
    loop {
        madsim::time::sleep(POLL).await;
        match ask(rpc, config, GetSavepointStatus { job_id, trigger_id }).await {
            Some(SavepointStatus::InProgress) => {}
            Some(SavepointStatus::Completed { location }) => {
                config.trace.event(format!("Savepoint completed. Path: file:{location}"));
                config.memory.0.lock().unwrap().savepoint = Some(location);
                return;
            }
            Some(SavepointStatus::Failed { cause }) => {
                exception(config, &format!("Could not stop with a savepoint job \"{job_id}\". {cause}"));
                return;
            }
            None => {
                // The JobManager lost the job (it restarted without HA).
                exception(config, &format!("Could not stop with a savepoint job \"{job_id}\". Job not found."));
                return;
            }
        }
    }
}

/// `flink list`: the running and restarting jobs, then the scheduled ones (none: the
/// playground's jobs start at once).
async fn list(rpc: &Rpc, config: &ClientConfig) {
    config.trace.event("Waiting for response...");
    let jobs = ask(rpc, config, ListJobs).await;
    if jobs.is_empty() {
        config.trace.event("No running jobs.");
    } else {
        config.trace.event("------------------ Running/Restarting Jobs -------------------");
        for job in jobs {
            let start = list_date(job.start_time_ms);
            config.trace.event(format!("{start} : {} : {JOB_NAME} ({})", job.job_id, job.status.name()));
        }
        config.trace.event("--------------------------------------------------------------");
    }
    config.trace.event("No scheduled jobs.");
}

/// `flink cancel <job>`.
async fn cancel(rpc: &Rpc, config: &ClientConfig, job: JobRef) {
    let Some(job_id) = resolve(config, job) else { return };
    config.trace.event(format!("Cancelling job {job_id}."));
    match ask(rpc, config, CancelJob { job_id }).await {
        Ok(()) => config.trace.event(format!("Cancelled job {job_id}.")),
        Err(cause) => exception(config, &format!("Could not cancel job {job_id}. {cause}")),
    }
}

/// `curl …`: one request to the JobManager's port 8081, sent again as `--retry` allows (after a
/// timeout or a transient status, waiting 1 s, then 2 s, …); what it prints is traced.
async fn run_curl(rpc: &Rpc, config: &ClientConfig, command: CurlCommand) {
    let lookup = |variable: &str| {
        let memory = config.memory.0.lock().unwrap();
        match variable {
            "$job" => memory.job.map(|id| id.to_string()),
            "$trigger" => memory.trigger.clone(),
            "$savepoint" => memory.savepoint.clone(),
            "$jar" => memory.jar.clone(),
            _ => None,
        }
    };
    let line = command.line.clone();
    let request = match command.request(lookup) {
        Ok(request) => request,
        Err(variable) => {
            let message = format!(
                "curl: ({}) URL rejected: {variable} names nothing yet (no earlier answer set it)",
                curl::EXIT_URL_MALFORMAT
            );
            let outcome = CurlOutcome::Failed { exit_code: curl::EXIT_URL_MALFORMAT, message };
            config.trace.record(Event::CurlExchange { line, request: None, outcome });
            return;
        }
    };
    let endpoint = SocketAddr::new(config.jobmanager.ip(), REST_PORT);
    let mut delay = curl::RETRY_DELAY;
    let mut retries_left = command.retries;
    let outcome = loop {
        let outcome = match rpc.call(endpoint, request.clone(), command.attempt_timeout()).await {
            Ok(response) => CurlOutcome::Response(response),
            Err(_) => CurlOutcome::Failed { exit_code: curl::EXIT_TIMEOUT, message: command.timeout_message() },
        };
        let problem = match &outcome {
            CurlOutcome::Response(response) if curl::retried_status(response.status) => {
                format!("HTTP error {}", response.status)
            }
            CurlOutcome::Response(_) => break outcome,
            CurlOutcome::Failed { .. } => "timeout".to_owned(),
        };
        if retries_left == 0 {
            break outcome;
        }
        let plural = if retries_left == 1 { "retry" } else { "retries" };
        config.trace.event(format!(
            "Warning: Problem : {problem}. Will retry in {} seconds. {retries_left} {plural} left.",
            delay.as_secs()
        ));
        madsim::time::sleep(delay).await;
        delay *= 2;
        retries_left -= 1;
    };
    if let CurlOutcome::Response(response) = &outcome {
        let mut memory = config.memory.0.lock().unwrap();
        for (variable, value) in curl::variables_set_by(response) {
            match variable {
                "$job" => memory.job = u128::from_str_radix(&value, 16).ok().map(JobId),
                "$trigger" => memory.trigger = Some(value),
                "$savepoint" => memory.savepoint = Some(value),
                _ => memory.jar = Some(value),
            }
        }
    }
    config.trace.record(Event::CurlExchange { line, request: Some(request), outcome });
}

/// `dd.MM.yyyy HH:mm:ss` of simulated time, which starts at the epoch.
fn list_date(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!("{day:02}.{month:02}.{year:04} {:02}:{:02}:{:02}", of_day / 3600, of_day / 60 % 60, of_day % 60)
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_dates_read_as_flinks() {
        assert_eq!(list_date(1_500), "01.01.1970 00:00:01");
        assert_eq!(list_date((31 + 28) * 86_400_000 + 3_723_000), "01.03.1970 01:02:03");
    }
}
