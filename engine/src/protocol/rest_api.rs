//! The JobManager's REST API on port 8081 (docs/model/rest.md): an HTTP request as `curl` sends
//! it, the route it names, and the JSON shapes of the answers, as serde types whose field order
//! is the JSON's. The CLI's own requests (stop, list, cancel) are in [`super::rest`]; both are
//! served by the dispatcher. No I/O here.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::ids::{JobId, TriggerId};
use super::job::Vertex;

/// The REST endpoint's port on the JobManager node.
pub const REST_PORT: u16 = 8081;

/// An HTTP method `curl` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HttpMethod {
    /// `GET` (curl's default).
    Get,
    /// `POST` (`-X POST`, or implied by `-d` / `-F`).
    Post,
    /// `PATCH` (`-X PATCH`).
    Patch,
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Patch => "PATCH",
        })
    }
}

/// What a request carries besides its path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpBody {
    /// Nothing.
    Empty,
    /// `-d '<json>'`: the text as typed (the server parses it: a malformed one is a 400).
    Json(String),
    /// `-F "jarfile=@<path>"`: a multipart upload of a file from the client's disk.
    JarFile(String),
}

/// One HTTP request to the REST endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// The method.
    pub method: HttpMethod,
    /// The path with its query, e.g. `/jobs/<id>/metrics?get=lastCheckpointSize`.
    pub path: String,
    /// The body.
    pub body: HttpBody,
}
crate::request!(HttpRequest => HttpResponse);

/// The answer: a status code and a JSON document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// 200, 202, 400, 404, 405 or 500.
    pub status: u16,
    /// The body, rendered from one of this module's types.
    pub body: serde_json::Value,
}

impl HttpResponse {
    /// A 200 with `body`.
    pub fn ok(body: &impl Serialize) -> HttpResponse {
        HttpResponse::with_status(200, body)
    }

    /// `status` with `body`.
    pub fn with_status(status: u16, body: &impl Serialize) -> HttpResponse {
        HttpResponse { status, body: serde_json::to_value(body).expect("REST bodies are plain data") }
    }

    /// `status` with `{"errors":[message]}`, as Flink answers every error.
    pub fn error(status: u16, message: impl Into<String>) -> HttpResponse {
        HttpResponse::with_status(status, &Errors { errors: vec![message.into()] })
    }
}

/// `{"errors":[…]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    /// The messages.
    pub errors: Vec<String>,
}

/// A job vertex's id: like Flink's, a hash of the graph's shape, so the same job graph has the
/// same vertex ids in every submission (and in every run).
pub fn vertex_id(vertex: Vertex) -> String {
    let name = vertex.name().as_bytes();
    let half = |salt: u64| {
        name.iter().fold(0xcbf2_9ce4_8422_2325u64 ^ salt, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
    };
    format!("{:016x}{:016x}", half(0), half(0x9e37_79b9_7f4a_7c15))
}

/// The vertex a vertex id names.
pub fn vertex_of_id(id: &str) -> Option<Vertex> {
    Vertex::ALL.into_iter().find(|v| vertex_id(*v) == id)
}

/// What a request asks for, read off its method and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /overview`.
    Overview,
    /// `GET /jobs`.
    Jobs,
    /// `GET /jobs/<id>`.
    Job(JobId),
    /// `GET /jobs/<id>/metrics[?get=a,b]`.
    JobMetrics {
        /// The job.
        job: JobId,
        /// The metrics asked for; `None` lists the ids.
        get: Option<Vec<String>>,
    },
    /// `GET /jobs/<id>/vertices/<vid>/metrics[?get=a,b]`.
    VertexMetrics {
        /// The job.
        job: JobId,
        /// The vertex.
        vertex: Vertex,
        /// The metrics asked for; `None` lists the ids.
        get: Option<Vec<String>>,
    },
    /// `GET /jobs/<id>/vertices/<vid>/backpressure`.
    Backpressure {
        /// The job.
        job: JobId,
        /// The vertex.
        vertex: Vertex,
    },
    /// `GET /jobs/<id>/checkpoints`.
    Checkpoints(JobId),
    /// `POST /jobs/<id>/stop` with `{"drain": bool}`.
    Stop {
        /// The job.
        job: JobId,
        /// Emit the maximum watermark first.
        drain: bool,
    },
    /// `PATCH /jobs/<id>`: cancel.
    Cancel(JobId),
    /// `GET /jobs/<id>/savepoints/<trigger-id>`.
    SavepointStatus {
        /// The job.
        job: JobId,
        /// What the stop answered.
        trigger: TriggerId,
    },
    /// `POST /jars/upload` with a jar file.
    JarUpload {
        /// The uploaded file's path on the client.
        file: String,
    },
    /// `POST /jars/<jar-id>/run`.
    JarRun {
        /// The uploaded jar.
        jar_id: String,
        /// The request's body.
        body: JarRunRequest,
    },
}

/// Why a request names no route: Flink's status and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteError {
    /// 400, 404 or 405.
    pub status: u16,
    /// Flink's message.
    pub message: String,
}

impl RouteError {
    fn not_found() -> RouteError {
        RouteError { status: 404, message: "Not found: the requested resource does not exist.".into() }
    }

    fn bad_request(message: impl Into<String>) -> RouteError {
        RouteError { status: 400, message: message.into() }
    }

    /// As an HTTP response.
    pub fn response(&self) -> HttpResponse {
        HttpResponse::error(self.status, &self.message)
    }
}

/// `POST /jobs/<id>/stop`'s body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopRequest {
    /// `drain`.
    #[serde(default)]
    pub drain: bool,
    /// `targetDirectory` (flinksim writes to the playground's savepoint directory).
    #[serde(default, rename = "targetDirectory")]
    pub target_directory: Option<String>,
}

/// `POST /jars/<jar-id>/run`'s body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JarRunRequest {
    /// `parallelism`.
    #[serde(default)]
    pub parallelism: Option<u32>,
    /// `programArgs`: the program's arguments in one string.
    #[serde(default, rename = "programArgs")]
    pub program_args: Option<String>,
    /// `savepointPath`.
    #[serde(default, rename = "savepointPath")]
    pub savepoint_path: Option<String>,
    /// `allowNonRestoredState`.
    #[serde(default, rename = "allowNonRestoredState")]
    pub allow_non_restored_state: Option<bool>,
}

impl JarRunRequest {
    /// The `flink run` line the request stands for, so that the CLI's parser checks it.
    pub fn run_line(&self, jar: &str) -> String {
        let mut line = String::from("flink run -d");
        if let Some(p) = self.parallelism {
            line += &format!(" -p {p}");
        }
        if let Some(path) = &self.savepoint_path {
            line += &format!(" -s {path}");
        }
        if self.allow_non_restored_state == Some(true) {
            line += " --allowNonRestoredState";
        }
        line += &format!(" {jar}");
        if let Some(args) = &self.program_args {
            line += &format!(" {args}");
        }
        line
    }
}

fn job_id(word: &str) -> Result<JobId, RouteError> {
    match u128::from_str_radix(word, 16) {
        Ok(id) if word.len() == 32 => Ok(JobId(id)),
        _ => Err(RouteError::bad_request(format!(
            "Bad request, could not parse parameters: Cannot parse path parameter jobid: {word} is not a valid job id"
        ))),
    }
}

fn trigger_id(word: &str) -> Result<TriggerId, RouteError> {
    match u128::from_str_radix(word, 16) {
        Ok(id) if word.len() == 32 => Ok(TriggerId(id)),
        _ => Err(RouteError::bad_request(format!(
            "Bad request, could not parse parameters: Cannot parse path parameter triggerid: {word} is not a valid trigger id"
        ))),
    }
}

fn vertex(word: &str) -> Result<Vertex, RouteError> {
    if word.len() != 32 || u128::from_str_radix(word, 16).is_err() {
        return Err(RouteError::bad_request(format!(
            "Bad request, could not parse parameters: Cannot parse path parameter vertexid: {word} is not a valid vertex id"
        )));
    }
    vertex_of_id(word).ok_or_else(|| RouteError { status: 404, message: format!("No vertex with id {word} exists.") })
}

/// Reads a JSON body, or says why not (a 400).
fn json<T: serde::de::DeserializeOwned + Default>(body: &HttpBody) -> Result<T, RouteError> {
    match body {
        HttpBody::Empty => Ok(T::default()),
        HttpBody::Json(text) if text.trim().is_empty() => Ok(T::default()),
        HttpBody::Json(text) => serde_json::from_str(text)
            .map_err(|e| RouteError::bad_request(format!("Bad request received. Request did not match expected format: {e}"))),
        HttpBody::JarFile(_) => Err(RouteError::bad_request("Bad request received. Expected a JSON body, got a file upload.")),
    }
}

impl Route {
    /// The route `request` names, or Flink's error for it.
    pub fn of(request: &HttpRequest) -> Result<Route, RouteError> {
        let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
        let mut get = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key == "get" {
                get = Some(value.split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect());
            }
        }
        let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|p| !p.is_empty()).collect();
        use HttpMethod::{Get, Patch, Post};
        let route = match (request.method, parts.as_slice()) {
            (Get, ["overview"]) => Route::Overview,
            (Get, ["jobs"]) => Route::Jobs,
            (Get, ["jobs", id]) => Route::Job(job_id(id)?),
            (Patch, ["jobs", id]) => Route::Cancel(job_id(id)?),
            (Get, ["jobs", id, "metrics"]) => Route::JobMetrics { job: job_id(id)?, get },
            (Get, ["jobs", id, "checkpoints"]) => Route::Checkpoints(job_id(id)?),
            (Get, ["jobs", id, "vertices", vid, "metrics"]) => {
                Route::VertexMetrics { job: job_id(id)?, vertex: vertex(vid)?, get }
            }
            (Get, ["jobs", id, "vertices", vid, "backpressure"]) => {
                Route::Backpressure { job: job_id(id)?, vertex: vertex(vid)? }
            }
            (Post, ["jobs", id, "stop"]) => {
                let job = job_id(id)?;
                let body: StopRequest = json(&request.body)?;
                Route::Stop { job, drain: body.drain }
            }
            (Get, ["jobs", id, "savepoints", trigger]) => {
                Route::SavepointStatus { job: job_id(id)?, trigger: trigger_id(trigger)? }
            }
            (Post, ["jars", "upload"]) => match &request.body {
                HttpBody::JarFile(file) => Route::JarUpload { file: file.clone() },
                _ => {
                    return Err(RouteError::bad_request(
                        "Bad request received. Exactly 1 file must be sent, received 0.",
                    ));
                }
            },
            (Post, ["jars", jar_id, "run"]) => Route::JarRun { jar_id: (*jar_id).to_owned(), body: json(&request.body)? },
            (_, ["overview"] | ["jobs"] | ["jobs", _] | ["jobs", _, "metrics" | "checkpoints" | "stop"])
            | (_, ["jobs", _, "vertices", _, "metrics" | "backpressure"] | ["jobs", _, "savepoints", _])
            | (_, ["jars", "upload"] | ["jars", _, "run"]) => {
                return Err(RouteError { status: 405, message: format!("Method {} not allowed on {path}.", request.method) });
            }
            _ => return Err(RouteError::not_found()),
        };
        Ok(route)
    }
}

/// `GET /jobs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobsList {
    /// Every job the dispatcher knows.
    pub jobs: Vec<JobIdWithStatus>,
}

/// One entry of `GET /jobs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobIdWithStatus {
    /// The job id.
    pub id: String,
    /// Its status (`RUNNING`).
    pub status: String,
}

/// `GET /jobs/<id>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDetails {
    /// The job id.
    pub jid: String,
    /// `Click Event Count`.
    pub name: String,
    /// Whether the job's sources can be stopped without a savepoint (never, for Kafka sources).
    #[serde(rename = "isStoppable")]
    pub is_stoppable: bool,
    /// Its status.
    pub state: String,
    /// When it was submitted (ms).
    #[serde(rename = "start-time")]
    pub start_time: i64,
    /// When it reached a globally terminal state; -1 until then.
    #[serde(rename = "end-time")]
    pub end_time: i64,
    /// ms from start to end (or to now).
    pub duration: i64,
    /// The job's max parallelism (key groups).
    #[serde(rename = "maxParallelism")]
    pub max_parallelism: i64,
    /// When the answer was made (ms).
    pub now: i64,
    /// When the job last entered each status (ms), 0 for one it never entered.
    pub timestamps: BTreeMap<String, i64>,
    /// The vertices, sources first.
    pub vertices: Vec<VertexDetails>,
    /// How many subtasks are in each execution state.
    #[serde(rename = "status-counts")]
    pub status_counts: BTreeMap<String, u32>,
    /// The job graph.
    pub plan: Plan,
}

/// One vertex of `GET /jobs/<id>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VertexDetails {
    /// The vertex id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its max parallelism.
    #[serde(rename = "maxParallelism")]
    pub max_parallelism: u32,
    /// Its parallelism.
    pub parallelism: u32,
    /// The state its subtasks are in, the least advanced first.
    pub status: String,
    /// When its first subtask was deployed (ms), -1 before.
    #[serde(rename = "start-time")]
    pub start_time: i64,
    /// When its last subtask ended (ms), -1 while any runs.
    #[serde(rename = "end-time")]
    pub end_time: i64,
    /// ms from start to end (or to now), -1 before start.
    pub duration: i64,
    /// Subtasks per execution state.
    pub tasks: BTreeMap<String, u32>,
    /// Its I/O counters, summed over its subtasks.
    pub metrics: VertexIoMetrics,
}

/// A vertex's I/O counters in `GET /jobs/<id>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct VertexIoMetrics {
    /// Bytes received over the network.
    pub read_bytes: u64,
    /// Whether every subtask has reported.
    pub read_bytes_complete: bool,
    /// Bytes sent over the network.
    pub write_bytes: u64,
    /// Whether every subtask has reported.
    pub write_bytes_complete: bool,
    /// Records received from upstream vertices (0 for the source).
    pub read_records: u64,
    /// Whether every subtask has reported.
    pub read_records_complete: bool,
    /// Records sent to downstream vertices (0 for the sink).
    pub write_records: u64,
    /// Whether every subtask has reported.
    pub write_records_complete: bool,
}

/// The job graph in `GET /jobs/<id>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The job id.
    pub jid: String,
    /// The job's name.
    pub name: String,
    /// The vertices.
    pub nodes: Vec<PlanNode>,
}

/// A vertex in the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanNode {
    /// The vertex id.
    pub id: String,
    /// Its parallelism.
    pub parallelism: u32,
    /// Empty for streaming jobs.
    pub operator: String,
    /// Empty for streaming jobs.
    pub operator_strategy: String,
    /// The vertex's name.
    pub description: String,
    /// Its input edges (none for the source).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub inputs: Vec<PlanInput>,
    /// Empty for streaming jobs.
    pub optimizer_properties: BTreeMap<String, String>,
}

/// An edge into a plan node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanInput {
    /// The input's index.
    pub num: u32,
    /// The upstream vertex id.
    pub id: String,
    /// `FORWARD` or `HASH`.
    pub ship_strategy: String,
    /// `pipelined_bounded`.
    pub exchange: String,
}

/// One entry of a metrics answer: with `get`, the id and its value (always a string, as
/// Flink's); without, the id alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metric {
    /// The metric id.
    pub id: String,
    /// Its value.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub value: Option<String>,
}

/// `GET /jobs/<id>/vertices/<vid>/backpressure`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackpressureInfo {
    /// `ok` once the TaskManagers have reported, `deprecated` before.
    pub status: String,
    /// The worst subtask's level.
    #[serde(rename = "backpressure-level")]
    pub backpressure_level: String,
    /// When the levels were measured (ms).
    #[serde(rename = "end-timestamp")]
    pub end_timestamp: i64,
    /// Each subtask's level.
    pub subtasks: Vec<SubtaskBackpressure>,
}

/// One subtask of [`BackpressureInfo`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubtaskBackpressure {
    /// The subtask index.
    pub subtask: u32,
    /// Its attempt number.
    #[serde(rename = "attempt-number")]
    pub attempt_number: u32,
    /// `ok` (ratio ≤ 0.10), `low` (≤ 0.5) or `high`.
    #[serde(rename = "backpressure-level")]
    pub backpressure_level: String,
    /// Share of the last interval its output was blocked.
    pub ratio: f64,
    /// Share of the last interval it was idle (waiting for input): the rest of 1 not blocked
    /// or busy.
    #[serde(rename = "idleRatio")]
    pub idle_ratio: f64,
    /// Share of the last interval it was busy processing its input.
    #[serde(rename = "busyRatio")]
    pub busy_ratio: f64,
}

/// The level Flink's web UI shows for a back-pressure ratio.
pub fn backpressure_level(ratio: f64) -> &'static str {
    if ratio <= 0.10 {
        "ok"
    } else if ratio <= 0.5 {
        "low"
    } else {
        "high"
    }
}

/// `GET /jobs/<id>/checkpoints`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointingStatistics {
    /// The counts.
    pub counts: CheckpointCounts,
    /// Min/max/avg over completed checkpoints.
    pub summary: CheckpointSummary,
    /// The latest of each kind.
    pub latest: LatestCheckpoints,
    /// The latest checkpoints, newest first (Flink keeps 10).
    pub history: Vec<CheckpointEntry>,
}

/// Checkpoint counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointCounts {
    /// Restores from a checkpoint or savepoint.
    pub restored: u64,
    /// Triggered.
    pub total: u64,
    /// Pending now.
    pub in_progress: u64,
    /// Completed.
    pub completed: u64,
    /// Failed (aborted).
    pub failed: u64,
}

/// Min, max and average of a statistic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinMaxAvg {
    /// Smallest.
    pub min: u64,
    /// Largest.
    pub max: u64,
    /// Average (rounded down).
    pub avg: u64,
}

/// The summary of completed checkpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointSummary {
    /// Bytes.
    pub state_size: MinMaxAvg,
    /// ms from trigger to completion.
    pub end_to_end_duration: MinMaxAvg,
}

/// The latest completed, savepoint, failed and restored checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestCheckpoints {
    /// The latest completed checkpoint.
    pub completed: Option<CheckpointEntry>,
    /// The latest completed savepoint.
    pub savepoint: Option<CheckpointEntry>,
    /// The latest failed one.
    pub failed: Option<CheckpointEntry>,
    /// What the job last restored from.
    pub restored: Option<RestoredCheckpoint>,
}

/// One checkpoint in the statistics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointEntry {
    /// Its id.
    pub id: u64,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`.
    pub status: String,
    /// A savepoint (of `stop`).
    pub is_savepoint: bool,
    /// When it was triggered (ms).
    pub trigger_timestamp: i64,
    /// When it completed or failed (ms), or the last acknowledgement so far.
    pub latest_ack_timestamp: i64,
    /// Bytes of all snapshots plus the metadata (0 until complete).
    pub state_size: u64,
    /// ms from trigger to completion or failure.
    pub end_to_end_duration: i64,
    /// Subtasks that take part.
    pub num_subtasks: u32,
    /// Subtasks that acknowledged.
    pub num_acknowledged_subtasks: u32,
    /// Where it lies once complete.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub external_path: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub failure_message: Option<String>,
}

/// What a job restored from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredCheckpoint {
    /// The checkpoint's id.
    pub id: u64,
    /// When the restore happened (ms).
    pub restore_timestamp: i64,
    /// A savepoint (`-s`) or the job's own checkpoint (a failover).
    pub is_savepoint: bool,
    /// Its directory.
    pub external_path: String,
}

/// `POST /jobs/<id>/stop`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerResponse {
    /// The trigger id to poll.
    #[serde(rename = "request-id")]
    pub request_id: String,
}

/// `GET /jobs/<id>/savepoints/<trigger-id>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsynchronousOperationResult {
    /// `IN_PROGRESS` or `COMPLETED`.
    pub status: QueueStatus,
    /// Once completed: the location or the failure.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub operation: Option<SavepointOperation>,
}

/// `{"id":"IN_PROGRESS"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStatus {
    /// The status.
    pub id: String,
}

/// A completed savepoint operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SavepointOperation {
    /// Where the savepoint lies.
    #[serde(rename = "location")]
    Location(String),
    /// Why it failed.
    #[serde(rename = "failure-cause")]
    FailureCause(FailureCause),
}

/// A serialized Java exception, as Flink's REST API sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCause {
    /// The exception class.
    pub class: String,
    /// Its message and trace (the message alone here).
    #[serde(rename = "stack-trace")]
    pub stack_trace: String,
}

/// `POST /jars/upload`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JarUploadResponse {
    /// Where the jar was stored: `/tmp/flink-web-<uuid>/flink-web-upload/<jar-id>`.
    pub filename: String,
    /// `success`.
    pub status: String,
}

/// `POST /jars/<jar-id>/run`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JarRunResponse {
    /// The new job's id.
    pub jobid: String,
}

/// `GET /overview`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClusterOverview {
    /// Registered TaskManagers.
    pub taskmanagers: u32,
    /// Their slots.
    pub slots_total: u32,
    /// Slots not allocated to a job.
    pub slots_available: u32,
    /// Jobs not yet in a globally terminal state.
    pub jobs_running: u32,
    /// FINISHED jobs.
    pub jobs_finished: u32,
    /// CANCELED jobs.
    pub jobs_cancelled: u32,
    /// FAILED jobs.
    pub jobs_failed: u32,
    /// The Flink version the playground pins.
    pub flink_version: String,
    /// Its commit.
    pub flink_commit: String,
}

/// What became of a curl command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CurlOutcome {
    /// An answer came (curl exits 0 whatever its status, without `--fail`).
    Response(HttpResponse),
    /// None came, or the command could not be sent: curl's exit code and message.
    Failed {
        /// curl's exit code.
        exit_code: u8,
        /// What curl printed.
        message: String,
    },
}

impl fmt::Display for CurlOutcome {
    /// What curl prints: the body, or its error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CurlOutcome::Response(response) => f.write_str(&response.body.to_string()),
            CurlOutcome::Failed { message, .. } => f.write_str(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> HttpRequest {
        HttpRequest { method: HttpMethod::Get, path: path.into(), body: HttpBody::Empty }
    }

    fn post(path: &str, body: &str) -> HttpRequest {
        HttpRequest { method: HttpMethod::Post, path: path.into(), body: HttpBody::Json(body.into()) }
    }

    const JOB: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn every_row_of_the_api_names_its_route() {
        let job = JobId(0x0123456789abcdef0123456789abcdef);
        let counter = vertex_id(Vertex::Counter);
        assert_eq!(Route::of(&get("/overview")), Ok(Route::Overview));
        assert_eq!(Route::of(&get("/jobs")), Ok(Route::Jobs));
        assert_eq!(Route::of(&get(&format!("/jobs/{JOB}"))), Ok(Route::Job(job)));
        assert_eq!(Route::of(&get(&format!("/jobs/{JOB}/metrics"))), Ok(Route::JobMetrics { job, get: None }));
        assert_eq!(
            Route::of(&get(&format!("/jobs/{JOB}/metrics?get=lastCheckpointSize,numRestarts"))),
            Ok(Route::JobMetrics { job, get: Some(vec!["lastCheckpointSize".into(), "numRestarts".into()]) })
        );
        assert_eq!(
            Route::of(&get(&format!("/jobs/{JOB}/vertices/{counter}/metrics?get=0.numRecordsIn"))),
            Ok(Route::VertexMetrics { job, vertex: Vertex::Counter, get: Some(vec!["0.numRecordsIn".into()]) })
        );
        assert_eq!(
            Route::of(&get(&format!("/jobs/{JOB}/vertices/{counter}/backpressure"))),
            Ok(Route::Backpressure { job, vertex: Vertex::Counter })
        );
        assert_eq!(Route::of(&get(&format!("/jobs/{JOB}/checkpoints"))), Ok(Route::Checkpoints(job)));
        assert_eq!(Route::of(&post(&format!("/jobs/{JOB}/stop"), r#"{"drain": false}"#)), Ok(Route::Stop { job, drain: false }));
        assert_eq!(Route::of(&post(&format!("/jobs/{JOB}/stop"), r#"{"drain": true}"#)), Ok(Route::Stop { job, drain: true }));
        assert_eq!(
            Route::of(&get(&format!("/jobs/{JOB}/savepoints/{JOB}"))),
            Ok(Route::SavepointStatus { job, trigger: TriggerId(job.0) })
        );
        let upload = HttpRequest {
            method: HttpMethod::Post,
            path: "/jars/upload".into(),
            body: HttpBody::JarFile("/opt/ClickCountJob.jar".into()),
        };
        assert_eq!(Route::of(&upload), Ok(Route::JarUpload { file: "/opt/ClickCountJob.jar".into() }));
        let run = post("/jars/x_ClickCountJob.jar/run", r#"{"parallelism":3,"programArgs":"--checkpointing","savepointPath":"/sp"}"#);
        let Ok(Route::JarRun { jar_id, body }) = Route::of(&run) else { panic!() };
        assert_eq!(jar_id, "x_ClickCountJob.jar");
        assert_eq!(body.run_line("/opt/ClickCountJob.jar"), "flink run -d -p 3 -s /sp /opt/ClickCountJob.jar --checkpointing");
    }

    #[test]
    fn malformed_ids_and_bodies_are_400_and_unknown_paths_404() {
        assert_eq!(Route::of(&get("/jobs/xyz")).unwrap_err().status, 400);
        assert_eq!(Route::of(&post(&format!("/jobs/{JOB}/stop"), "{drain: false")).unwrap_err().status, 400);
        assert_eq!(Route::of(&post(&format!("/jobs/{JOB}/stop"), r#"{"drain": "no"}"#)).unwrap_err().status, 400);
        assert_eq!(Route::of(&post("/jars/a/run", r#"{"parallelism": -1}"#)).unwrap_err().status, 400);
        assert_eq!(Route::of(&get("/nothing/here")).unwrap_err().status, 404);
        let unknown_vertex = format!("/jobs/{JOB}/vertices/{JOB}/metrics");
        assert_eq!(Route::of(&get(&unknown_vertex)).unwrap_err().status, 404);
        assert_eq!(Route::of(&post("/jobs", "")).unwrap_err().status, 405);
        let error = Route::of(&get("/nothing")).unwrap_err().response();
        assert_eq!(error.body, serde_json::json!({"errors": ["Not found: the requested resource does not exist."]}));
    }

    #[test]
    fn vertex_ids_are_32_hex_distinct_and_stable() {
        let ids: Vec<String> = Vertex::ALL.into_iter().map(vertex_id).collect();
        assert!(ids.iter().all(|id| id.len() == 32 && u128::from_str_radix(id, 16).is_ok()));
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), Vertex::ALL.len());
        assert_eq!(vertex_of_id(&ids[3]), Some(Vertex::Counter));
        assert_eq!(vertex_of_id(&ids[2]), Some(Vertex::Backpressure));
    }

    #[test]
    fn backpressure_levels_follow_flinks_thresholds() {
        assert_eq!(backpressure_level(0.0), "ok");
        assert_eq!(backpressure_level(0.10), "ok");
        assert_eq!(backpressure_level(0.11), "low");
        assert_eq!(backpressure_level(0.5), "low");
        assert_eq!(backpressure_level(0.51), "high");
    }
}
