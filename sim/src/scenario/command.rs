//! A step's `run` line, written as the playground's user types it (docs/model/cluster.md#nodes), or as a `sim` verb of
//! the same shape for faults that have no playground command (docs/scenarios.md#the-file). `flink run`, `stop`,
//! `list` and `cancel` are the Flink CLI's; `curl …` lines go to the REST API (docs/model/rest.md#curl).

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use flinksim_engine::playground::client::{CURRENT_JOB, JobRef};
use flinksim_engine::playground::curl::CurlCommand;
use flinksim_engine::protocol::ids::JobId;
use flinksim_engine::protocol::job::{JobSubmission, RunCommandError};

use super::ClusterSpec;
use super::TASKMANAGERS_MAX;
use super::error::ScenarioErrorKind;
use super::file::{format_duration, parse_duration};

/// What a step does.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// A `docker-compose` command, as in the playground.
    Compose(ComposeCommand),
    /// A fault with no playground command.
    Sim(SimCommand),
    /// The Flink CLI, typed on the `client` node.
    Flink(FlinkCommand),
    /// `curl …` against the REST API on port 8081, typed on the `client` node.
    Curl(CurlCommand),
}

/// A `flink …` command (docs/model/cluster.md#the-flink-cli); the job's sink mode is the scenario's `[job] sink`. A job is
/// named by its id or by `$job` (the last one the client submitted), a savepoint by its path or
/// by `$savepoint` (the last one `flink stop` took).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlinkCommand {
    /// `flink run …`: submit the job again (after it FAILED without checkpointing, or from a
    /// savepoint with `-s`).
    Run {
        /// The line as written.
        line: String,
        /// The line parsed.
        submission: JobSubmission,
    },
    /// `flink stop [--drain] <job>`: a savepoint, then the job FINISHES.
    Stop {
        /// The line as written.
        line: String,
        /// The job.
        job: JobRef,
        /// `--drain`.
        drain: bool,
    },
    /// `flink list`.
    List {
        /// The line as written.
        line: String,
    },
    /// `flink cancel <job>`.
    Cancel {
        /// The line as written.
        line: String,
        /// The job.
        job: JobRef,
    },
}

impl fmt::Display for FlinkCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlinkCommand::Run { line, .. }
            | FlinkCommand::Stop { line, .. }
            | FlinkCommand::List { line }
            | FlinkCommand::Cancel { line, .. } => f.write_str(line),
        }
    }
}

/// `docker-compose <verb> <service>` (docs/model/cluster.md#nodes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ComposeCommand {
    /// `docker-compose kill <service>`: every container of the service loses its memory.
    Kill(Service),
    /// `docker-compose up -d <service>`: start the service's stopped containers again.
    Up(Service),
    /// `docker-compose stop <service>`: graceful stop.
    Stop(Service),
    /// `docker-compose start <service>`: start after a stop.
    Start(Service),
    /// `docker-compose scale taskmanager=<N>`: start or remove TaskManagers until N run.
    Scale {
        /// How many TaskManagers should run.
        taskmanagers: u32,
    },
}

/// A docker-compose service of the playground, plus flinksim's storage node
/// (docs/model/cluster.md#nodes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// `jobmanager`.
    JobManager,
    /// `taskmanager`: all TaskManagers.
    TaskManagers,
    /// `taskmanager-<i>`, 1-based: one TaskManager.
    TaskManager(u32),
    /// `kafka`: the one broker.
    Kafka,
    /// `clickevent-generator`.
    Generator,
    /// `client`: submits the job and exits.
    Client,
    /// `storage`: the checkpoint and savepoint volume, flinksim's own node.
    Storage,
}

impl Service {
    /// The nodes this service stands for when the cluster has `cluster.taskmanagers` TaskManagers.
    pub fn node_names(&self, cluster: &ClusterSpec) -> Vec<String> {
        match self {
            Service::TaskManagers => (1..=cluster.taskmanagers).map(taskmanager_node).collect(),
            other => vec![other.to_string()],
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Service::JobManager => f.write_str("jobmanager"),
            Service::TaskManagers => f.write_str("taskmanager"),
            Service::TaskManager(i) => write!(f, "taskmanager-{i}"),
            Service::Kafka => f.write_str("kafka"),
            Service::Generator => f.write_str("clickevent-generator"),
            Service::Client => f.write_str("client"),
            Service::Storage => f.write_str("storage"),
        }
    }
}

/// The node name of TaskManager `i` (1-based).
fn taskmanager_node(i: u32) -> String {
    format!("taskmanager-{i}")
}

/// A fault that the playground has no command for; nodes are named as in
/// docs/model/cluster.md#nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum SimCommand {
    /// `sim partition <a> <b>`: no message passes between the two nodes, either way.
    Partition(String, String),
    /// `sim heal <a> <b>`: undo a partition.
    Heal(String, String),
    /// `sim link <from> -> <to> [delay <min>..<max>] [loss <p>]`: one direction only.
    Link {
        /// The sending node.
        from: String,
        /// The receiving node.
        to: String,
        /// Each message is delayed by a time drawn from this range.
        delay: Option<Range<Duration>>,
        /// Probability per message that it is dropped.
        loss: Option<f64>,
    },
    /// `sim link <from> -> <to> clear`: the link is reliable again.
    ClearLink {
        /// The sending node.
        from: String,
        /// The receiving node.
        to: String,
    },
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Compose(c) => c.fmt(f),
            Command::Sim(c) => c.fmt(f),
            Command::Flink(c) => c.fmt(f),
            Command::Curl(c) => f.write_str(&c.line),
        }
    }
}

impl fmt::Display for ComposeCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComposeCommand::Kill(s) => write!(f, "docker-compose kill {s}"),
            ComposeCommand::Up(s) => write!(f, "docker-compose up -d {s}"),
            ComposeCommand::Stop(s) => write!(f, "docker-compose stop {s}"),
            ComposeCommand::Start(s) => write!(f, "docker-compose start {s}"),
            ComposeCommand::Scale { taskmanagers } => {
                write!(f, "docker-compose scale taskmanager={taskmanagers}")
            }
        }
    }
}

impl fmt::Display for SimCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimCommand::Partition(a, b) => write!(f, "sim partition {a} {b}"),
            SimCommand::Heal(a, b) => write!(f, "sim heal {a} {b}"),
            SimCommand::Link { from, to, delay, loss } => {
                write!(f, "sim link {from} -> {to}")?;
                if let Some(delay) = delay {
                    let (min, max) = (format_duration(delay.start), format_duration(delay.end));
                    write!(f, " delay {min}..{max}")?;
                }
                if let Some(loss) = loss {
                    write!(f, " loss {loss}")?;
                }
                Ok(())
            }
            SimCommand::ClearLink { from, to } => write!(f, "sim link {from} -> {to} clear"),
        }
    }
}

/// A command that cannot be parsed, at a byte range of the line.
#[derive(Debug)]
pub(crate) struct CommandError {
    /// Byte range of the offending word in the line (empty at the end for a missing word).
    pub span: Range<usize>,
    /// What is wrong.
    pub kind: ScenarioErrorKind,
}

/// The shapes of the commands, for messages.
const KILL: &str = "docker-compose kill <service>";
const UP: &str = "docker-compose up -d <service>";
const STOP: &str = "docker-compose stop <service>";
const START: &str = "docker-compose start <service>";
const SCALE: &str = "docker-compose scale taskmanager=<N>";
const PARTITION: &str = "sim partition <node> <node>";
const HEAL: &str = "sim heal <node> <node>";
const LINK: &str = "sim link <node> -> <node> [delay <min>..<max>] [loss <p>] | clear";
const COMPOSE_VERBS: &[&str] = &["kill", "up -d", "stop", "start", "scale"];
const FLINK_VERBS: &[&str] = &["run", "stop", "list", "cancel"];
const FLINK_STOP: &str = "flink stop [--drain] <job-id|$job>";
const FLINK_CANCEL: &str = "flink cancel <job-id|$job>";
const SIM_VERBS: &[&str] = &["partition", "heal", "link"];

/// The words of a line with their byte ranges.
struct Words<'a> {
    line: &'a str,
    words: Vec<(Range<usize>, &'a str)>,
    next: usize,
}

impl<'a> Words<'a> {
    fn new(line: &'a str) -> Words<'a> {
        let words = line
            .split_whitespace()
            .map(|w| {
                let start = w.as_ptr() as usize - line.as_ptr() as usize;
                (start..start + w.len(), w)
            })
            .collect();
        Words { line, words, next: 0 }
    }

    /// The next word, or an "incomplete command" error pointing at the end of the line.
    fn expect(&mut self, expected: &'static str) -> Result<(Range<usize>, &'a str), CommandError> {
        let word = self.words.get(self.next).cloned().ok_or_else(|| CommandError {
            span: self.line.trim_end().len()..self.line.trim_end().len(),
            kind: ScenarioErrorKind::IncompleteCommand { expected },
        })?;
        self.next += 1;
        Ok(word)
    }

    /// The next word without taking it.
    fn peek(&self) -> Option<&'a str> {
        self.words.get(self.next).map(|(_, w)| *w)
    }

    /// The next word, if any.
    fn next(&mut self) -> Option<(Range<usize>, &'a str)> {
        let word = self.words.get(self.next).cloned();
        self.next += word.is_some() as usize;
        word
    }

    /// Succeeds if no word is left.
    fn end(&mut self, expected: &'static str) -> Result<(), CommandError> {
        match self.next() {
            None => Ok(()),
            Some((span, word)) => Err(CommandError {
                span,
                kind: ScenarioErrorKind::UnexpectedWord { word: word.into(), expected },
            }),
        }
    }
}

/// The names a scenario's commands may use: they depend on how many TaskManagers can exist.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Names {
    /// The highest TaskManager index that can exist: the cluster's count or the largest `scale`.
    pub taskmanagers_max: u32,
}

impl Names {
    /// Valid service names, in the order the messages list them.
    pub fn known_services(&self) -> Vec<String> {
        let mut known = vec!["jobmanager".to_owned(), "taskmanager".to_owned()];
        known.extend(self.taskmanager_nodes());
        known.extend(["kafka", "clickevent-generator", "client", "storage"].map(String::from));
        known
    }

    /// Valid node names, in the order the messages list them.
    pub fn known_nodes(&self) -> Vec<String> {
        let mut known = vec!["jobmanager".to_owned()];
        known.extend(self.taskmanager_nodes());
        known.extend(["kafka", "clickevent-generator", "client", "storage"].map(String::from));
        known
    }

    /// `taskmanager-1` … in full up to four, else the first and last with an ellipsis.
    fn taskmanager_nodes(&self) -> Vec<String> {
        let n = self.taskmanagers_max;
        if n <= 4 {
            (1..=n).map(taskmanager_node).collect()
        } else {
            vec![taskmanager_node(1), "…".to_owned(), taskmanager_node(n)]
        }
    }

    fn service(&self, (span, word): (Range<usize>, &str)) -> Result<Service, CommandError> {
        let service = match word {
            "jobmanager" => Some(Service::JobManager),
            "taskmanager" => Some(Service::TaskManagers),
            "kafka" => Some(Service::Kafka),
            "clickevent-generator" => Some(Service::Generator),
            "client" => Some(Service::Client),
            "storage" => Some(Service::Storage),
            other => self.taskmanager_index(other).map(Service::TaskManager),
        };
        service.ok_or_else(|| CommandError {
            span,
            kind: ScenarioErrorKind::UnknownService { name: word.into(), known: self.known_services() },
        })
    }

    fn node(&self, (span, word): (Range<usize>, &str)) -> Result<String, CommandError> {
        let fixed = ["jobmanager", "kafka", "clickevent-generator", "client", "storage"];
        if fixed.contains(&word) || self.taskmanager_index(word).is_some() {
            Ok(word.to_owned())
        } else {
            let kind = ScenarioErrorKind::UnknownNode { name: word.into(), known: self.known_nodes() };
            Err(CommandError { span, kind })
        }
    }

    /// `i` for `taskmanager-<i>` written canonically with 1 ≤ i ≤ the maximum.
    fn taskmanager_index(&self, word: &str) -> Option<u32> {
        let i: u32 = word.strip_prefix("taskmanager-")?.parse().ok()?;
        ((1..=self.taskmanagers_max).contains(&i) && taskmanager_node(i) == word).then_some(i)
    }
}

/// The N of a `docker-compose scale taskmanager=<N>` line, so that `taskmanager-<N>` is a valid
/// name in every step of the file.
pub(crate) fn scale_target(line: &str) -> Option<u32> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["docker-compose", "scale", target] => target.strip_prefix("taskmanager=")?.parse().ok(),
        _ => None,
    }
}

/// Parses a step's `run` line.
pub(crate) fn parse(line: &str, names: Names) -> Result<Command, CommandError> {
    let mut words = Words::new(line);
    let (span, program) = words.expect("docker-compose … | sim …")?;
    match program {
        "docker-compose" => parse_compose(&mut words, names).map(Command::Compose),
        "sim" => parse_sim(&mut words, names).map(Command::Sim),
        "flink" if words.peek() == Some("run") => parse_flink_run(line).map(Command::Flink),
        "flink" => parse_flink(&mut words, line).map(Command::Flink),
        "curl" => CurlCommand::parse(line).map(Command::Curl).map_err(|(word, error)| CommandError {
            span: word.map_or(line.trim_end().len()..line.trim_end().len(), |w| w.span),
            kind: ScenarioErrorKind::Curl(error),
        }),
        other => Err(CommandError { span, kind: ScenarioErrorKind::UnknownProgram(other.into()) }),
    }
}

/// `flink stop|list|cancel …`.
fn parse_flink(words: &mut Words<'_>, line: &str) -> Result<FlinkCommand, CommandError> {
    let line_text = line.trim().to_owned();
    let (span, verb) = words.expect("flink run|stop|list|cancel")?;
    let command = match verb {
        "stop" => {
            let mut drain = false;
            let job = loop {
                let (span, word) = words.expect(FLINK_STOP)?;
                match word {
                    "--drain" | "-d" => drain = true,
                    job => break job_ref(span, job)?,
                }
            };
            words.end(FLINK_STOP)?;
            FlinkCommand::Stop { line: line_text, job, drain }
        }
        "list" => {
            words.end("flink list")?;
            FlinkCommand::List { line: line_text }
        }
        "cancel" => {
            let (span, word) = words.expect(FLINK_CANCEL)?;
            let job = job_ref(span, word)?;
            words.end(FLINK_CANCEL)?;
            FlinkCommand::Cancel { line: line_text, job }
        }
        other => {
            let kind = ScenarioErrorKind::UnknownVerb { program: "flink", verb: other.into(), known: FLINK_VERBS };
            return Err(CommandError { span, kind });
        }
    };
    Ok(command)
}

/// A job id (32 hex digits) or `$job`.
fn job_ref(span: Range<usize>, word: &str) -> Result<JobRef, CommandError> {
    if word == CURRENT_JOB {
        return Ok(JobRef::Current);
    }
    match u128::from_str_radix(word, 16) {
        Ok(id) if word.len() == 32 => Ok(JobRef::Id(JobId(id))),
        _ => Err(CommandError { span, kind: ScenarioErrorKind::BadJobId(word.into()) }),
    }
}

fn parse_flink_run(line: &str) -> Result<FlinkCommand, CommandError> {
    let at = |word: &str| {
        let start = if word.is_empty() { line.trim_end().len() } else { line.find(word).unwrap_or(0) };
        start..start + word.len()
    };
    let text = line.trim();
    let submission = JobSubmission::parse_run_command(text).map_err(|error| {
        let span = match &error {
            RunCommandError::UnknownOption(word)
            | RunCommandError::BadParallelism(word)
            | RunCommandError::UnknownJar(word)
            | RunCommandError::OptionBeforeJar(word) => at(word),
            _ => at(""),
        };
        CommandError { span, kind: ScenarioErrorKind::RunCommand(error) }
    })?;
    if submission.args.bootstrap_servers != "kafka:9092" {
        let servers = submission.args.bootstrap_servers.to_string();
        return Err(CommandError { span: at(&servers), kind: ScenarioErrorKind::UnknownBootstrapServer(servers) });
    }
    if let Some((flag, reason)) = submission.unsupported_variant() {
        let span = at(flag);
        return Err(CommandError { span, kind: ScenarioErrorKind::UnsupportedVariant(reason) });
    }
    Ok(FlinkCommand::Run { line: text.to_owned(), submission })
}

fn parse_compose(words: &mut Words<'_>, names: Names) -> Result<ComposeCommand, CommandError> {
    let (span, verb) = words.expect("docker-compose kill|up -d|stop|start <service>")?;
    let command = match verb {
        "kill" => ComposeCommand::Kill(names.service(words.expect(KILL)?)?),
        "stop" => ComposeCommand::Stop(names.service(words.expect(STOP)?)?),
        "start" => ComposeCommand::Start(names.service(words.expect(START)?)?),
        "up" => {
            // `-d` is how the playground's user types it; without it the simulation is the same.
            let mut word = words.expect(UP)?;
            if word.1 == "-d" {
                word = words.expect(UP)?;
            }
            ComposeCommand::Up(names.service(word)?)
        }
        "scale" => {
            let (span, target) = words.expect(SCALE)?;
            let bad =
                || CommandError { span: span.clone(), kind: ScenarioErrorKind::BadScale(target.into()) };
            let n = target.strip_prefix("taskmanager=").ok_or_else(bad)?;
            // Canonical digits only, so that the line reads back the same.
            let taskmanagers: u32 = n.parse().ok().filter(|t: &u32| t.to_string() == n).ok_or_else(bad)?;
            if taskmanagers > TASKMANAGERS_MAX {
                return Err(CommandError { span, kind: ScenarioErrorKind::TooManyTaskManagers { count: taskmanagers } });
            }
            ComposeCommand::Scale { taskmanagers }
        }
        other => {
            let kind = ScenarioErrorKind::UnknownVerb {
                program: "docker-compose",
                verb: other.into(),
                known: COMPOSE_VERBS,
            };
            return Err(CommandError { span, kind });
        }
    };
    let shape = match command {
        ComposeCommand::Kill(_) => KILL,
        ComposeCommand::Up(_) => UP,
        ComposeCommand::Stop(_) => STOP,
        ComposeCommand::Start(_) => START,
        ComposeCommand::Scale { .. } => SCALE,
    };
    words.end(shape)?;
    Ok(command)
}

fn parse_sim(words: &mut Words<'_>, names: Names) -> Result<SimCommand, CommandError> {
    let (span, verb) = words.expect("sim partition|heal|link …")?;
    match verb {
        "partition" | "heal" => {
            let shape = if verb == "partition" { PARTITION } else { HEAL };
            let a = names.node(words.expect(shape)?)?;
            let (b_span, b_word) = words.expect(shape)?;
            let b = names.node((b_span.clone(), b_word))?;
            if a == b {
                return Err(CommandError { span: b_span, kind: ScenarioErrorKind::SameNode(b) });
            }
            words.end(shape)?;
            Ok(if verb == "partition" { SimCommand::Partition(a, b) } else { SimCommand::Heal(a, b) })
        }
        "link" => parse_link(words, names),
        other => {
            let kind =
                ScenarioErrorKind::UnknownVerb { program: "sim", verb: other.into(), known: SIM_VERBS };
            Err(CommandError { span, kind })
        }
    }
}

fn parse_link(words: &mut Words<'_>, names: Names) -> Result<SimCommand, CommandError> {
    let from = names.node(words.expect(LINK)?)?;
    let (span, arrow) = words.expect(LINK)?;
    if arrow != "->" {
        return Err(unexpected(span, arrow, LINK));
    }
    let (to_span, to_word) = words.expect(LINK)?;
    let to = names.node((to_span.clone(), to_word))?;
    if from == to {
        return Err(CommandError { span: to_span, kind: ScenarioErrorKind::SameNode(to) });
    }
    let (span, first) = words.expect(LINK)?;
    if first == "clear" {
        words.end(LINK)?;
        return Ok(SimCommand::ClearLink { from, to });
    }
    let (mut delay, mut loss) = (None, None);
    let mut option = Some((span, first));
    while let Some((span, word)) = option {
        match word {
            "delay" if delay.is_none() => {
                let (span, range) = words.expect(LINK)?;
                delay = Some(parse_delay(span, range)?);
            }
            "loss" if loss.is_none() => {
                let (span, p) = words.expect(LINK)?;
                let bad = || CommandError { span: span.clone(), kind: ScenarioErrorKind::BadLoss(p.into()) };
                let p: f64 = p.parse().map_err(|_| bad())?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(bad());
                }
                loss = Some(p);
            }
            other => return Err(unexpected(span, other, LINK)),
        }
        option = words.next();
    }
    Ok(SimCommand::Link { from, to, delay, loss })
}

/// `<min>..<max>`, or one duration for a fixed delay.
fn parse_delay(span: Range<usize>, word: &str) -> Result<Range<Duration>, CommandError> {
    let at = |start: usize, len: usize| {
        move |kind| CommandError { span: span.start + start..span.start + start + len, kind }
    };
    let (min_text, max_text) = word.split_once("..").unwrap_or((word, word));
    let max_start = word.len() - max_text.len();
    let min = parse_duration(min_text).map_err(at(0, min_text.len()))?;
    let max = parse_duration(max_text).map_err(at(max_start, max_text.len()))?;
    if min > max {
        let kind = ScenarioErrorKind::EmptyRange { min: min_text.into(), max: max_text.into() };
        return Err(CommandError { span, kind });
    }
    Ok(min..max)
}

fn unexpected(span: Range<usize>, word: &str, expected: &'static str) -> CommandError {
    CommandError { span, kind: ScenarioErrorKind::UnexpectedWord { word: word.into(), expected } }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: Names = Names { taskmanagers_max: 1 };

    fn ok(line: &str) -> Command {
        parse(line, ONE).unwrap_or_else(|e| panic!("{line}: {}", e.kind))
    }

    /// The message and the offending text of a line that does not parse.
    fn err(line: &str) -> (String, &str) {
        let e = parse(line, ONE).expect_err(line);
        (e.kind.to_string(), &line[e.span])
    }

    #[test]
    fn compose_commands_parse_and_print_back() {
        for line in [
            "docker-compose kill taskmanager",
            "docker-compose kill taskmanager-1",
            "docker-compose up -d taskmanager",
            "docker-compose stop jobmanager",
            "docker-compose start clickevent-generator",
            "docker-compose scale taskmanager=3",
            "docker-compose kill storage",
        ] {
            assert_eq!(ok(line).to_string(), line);
        }
        assert_eq!(ok("docker-compose up kafka"), Command::Compose(ComposeCommand::Up(Service::Kafka)));
        assert_eq!(
            ok("docker-compose   kill  client"),
            Command::Compose(ComposeCommand::Kill(Service::Client))
        );
    }

    #[test]
    fn sim_commands_parse_and_print_back() {
        for line in [
            "sim partition jobmanager taskmanager-1",
            "sim heal jobmanager taskmanager-1",
            "sim link kafka -> taskmanager-1 delay 10ms..50ms loss 0.1",
            "sim link kafka -> taskmanager-1 delay 2.5ms..1s",
            "sim link jobmanager -> storage loss 1",
            "sim link kafka -> taskmanager-1 clear",
        ] {
            assert_eq!(ok(line).to_string(), line);
        }
        assert_eq!(
            ok("sim link kafka -> client loss 0.25 delay 5ms"),
            Command::Sim(SimCommand::Link {
                from: "kafka".into(),
                to: "client".into(),
                delay: Some(Duration::from_millis(5)..Duration::from_millis(5)),
                loss: Some(0.25),
            })
        );
    }

    #[test]
    fn taskmanagers_service_names_every_taskmanager_node() {
        let cluster = ClusterSpec { taskmanagers: 3, ..ClusterSpec::default() };
        assert_eq!(
            Service::TaskManagers.node_names(&cluster),
            ["taskmanager-1", "taskmanager-2", "taskmanager-3"]
        );
        assert_eq!(Service::Generator.node_names(&cluster), ["clickevent-generator"]);
    }

    #[test]
    fn unknown_service_lists_the_known_ones() {
        assert_eq!(
            err("docker-compose kill taskmanger"),
            (
                "unknown service `taskmanger` (known: jobmanager, taskmanager, taskmanager-1, kafka, \
                 clickevent-generator, client, storage)"
                    .to_owned(),
                "taskmanger"
            )
        );
        assert_eq!(err("docker-compose kill taskmanager-2").1, "taskmanager-2");
        assert_eq!(err("docker-compose kill taskmanager-01").1, "taskmanager-01");
        let many = Names { taskmanagers_max: 6 };
        let e = parse("docker-compose kill zookeeper", many).unwrap_err();
        assert!(e.kind.to_string().contains("taskmanager, taskmanager-1, …, taskmanager-6, kafka"));
    }

    #[test]
    fn sim_verbs_take_nodes_not_the_taskmanager_service() {
        assert_eq!(
            err("sim partition jobmanager taskmanager"),
            (
                "unknown node `taskmanager` (known: jobmanager, taskmanager-1, kafka, \
                 clickevent-generator, client, storage)"
                    .to_owned(),
                "taskmanager"
            )
        );
        assert_eq!(
            err("sim heal kafka kafka").0,
            "`kafka` cannot be cut off from itself: name two different nodes"
        );
    }

    #[test]
    fn malformed_commands_say_what_was_expected() {
        assert_eq!(
            err("docker-compose kill"),
            ("incomplete command: expected `docker-compose kill <service>`".to_owned(), "")
        );
        assert_eq!(
            err("docker-compose kill kafka jobmanager"),
            ("unexpected `jobmanager`: expected `docker-compose kill <service>`".to_owned(), "jobmanager")
        );
        assert_eq!(
            err("docker-compose restart kafka"),
            (
                "unknown docker-compose command `restart` (known: kill, up -d, stop, start, scale)"
                    .to_owned(),
                "restart"
            )
        );
        assert_eq!(
            err("docker-compose scale kafka=2"),
            ("bad scale `kafka=2`: expected `taskmanager=<N>` with N a whole number".to_owned(), "kafka=2")
        );
        assert_eq!(
            err("sim clog kafka"),
            ("unknown sim command `clog` (known: partition, heal, link)".to_owned(), "clog")
        );
        assert_eq!(err("sim link kafka taskmanager-1 clear").1, "taskmanager-1");
        assert_eq!(
            err("sim link kafka -> client"),
            (
                "incomplete command: expected `sim link <node> -> <node> [delay <min>..<max>] [loss <p>] \
                 | clear`"
                    .to_owned(),
                ""
            )
        );
        assert_eq!(err("sim link kafka -> client loss 0.1 loss 0.2").1, "loss");
        assert_eq!(
            err("sim link kafka -> client loss 1.5"),
            ("bad loss `1.5`: expected a probability from 0 to 1, e.g. 0.1".to_owned(), "1.5")
        );
        assert_eq!(
            err("sim link kafka -> client delay 10ms..fast"),
            ("bad duration `fast`: expected e.g. 200ms, 1s, 10m".to_owned(), "fast")
        );
        assert_eq!(
            err("sim link kafka -> client delay 50ms..10ms"),
            ("empty range: min 50ms is greater than max 10ms".to_owned(), "50ms..10ms")
        );
        assert_eq!(
            err("kubectl delete pod"),
            ("unknown command `kubectl`: expected docker-compose, sim, flink or curl".to_owned(), "kubectl")
        );
    }

    #[test]
    fn flink_run_is_a_step_and_its_mistakes_point_at_the_word() {
        let names = Names { taskmanagers_max: 1 };
        let line = "flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --event-time";
        let Ok(Command::Flink(FlinkCommand::Run { submission, .. })) = parse(line, names) else {
            panic!("a valid flink run line");
        };
        assert!(submission.args.event_time && !submission.args.checkpointing);
        let bad = parse("flink run -p x /opt/ClickCountJob.jar", names).unwrap_err();
        assert_eq!(bad.span, 13..14);
    }

    #[test]
    fn flink_stop_list_and_cancel_name_a_job_by_id_or_by_dollar_job() {
        let names = Names { taskmanagers_max: 1 };
        let id = "0123456789abcdef0123456789abcdef";
        let stop = parse(&format!("flink stop --drain {id}"), names).unwrap();
        let Command::Flink(FlinkCommand::Stop { job, drain, .. }) = stop else { panic!("{stop:?}") };
        assert_eq!((job, drain), (JobRef::Id(JobId(0x0123456789abcdef0123456789abcdef)), true));
        let cancel = parse("flink cancel $job", names).unwrap();
        assert!(matches!(cancel, Command::Flink(FlinkCommand::Cancel { job: JobRef::Current, .. })));
        assert!(matches!(parse("flink list", names).unwrap(), Command::Flink(FlinkCommand::List { .. })));
        assert_eq!(
            err("flink stop 0123"),
            ("bad job id `0123`: expected 32 hex digits, or `$job` for the current job".to_owned(), "0123")
        );
        assert_eq!(err("flink stop").0, "incomplete command: expected `flink stop [--drain] <job-id|$job>`");
        assert_eq!(
            err("flink savepoint $job"),
            ("unknown flink command `savepoint` (known: run, stop, list, cancel)".to_owned(), "savepoint")
        );
    }

    #[test]
    fn curl_lines_are_read_and_a_malformed_one_names_its_word() {
        let Command::Curl(curl) = parse("curl localhost:8081/jobs", Names { taskmanagers_max: 1 }).unwrap() else {
            panic!("not a curl step")
        };
        assert_eq!(curl.path, "/jobs");
        assert_eq!(
            err("curl -X DELETE localhost:8081/jobs"),
            ("bad `curl` line: unknown method `DELETE`: expected GET, POST or PATCH".to_owned(), "DELETE")
        );
        assert_eq!(
            err("curl localhost:9092/jobs"),
            (
                "bad `curl` line: `localhost:9092/jobs` is not the REST API: expected localhost:8081/… (or jobmanager:8081/…)"
                    .to_owned(),
                "localhost:9092/jobs"
            )
        );
    }

    #[test]
    fn scale_target_is_read_before_names_are_checked() {
        assert_eq!(scale_target("docker-compose scale taskmanager=3"), Some(3));
        assert_eq!(scale_target("docker-compose kill taskmanager-3"), None);
        let three = Names { taskmanagers_max: 3 };
        assert_eq!(
            parse("docker-compose kill taskmanager-3", three).unwrap(),
            Command::Compose(ComposeCommand::Kill(Service::TaskManager(3)))
        );
    }
}
