//! The Click Event Count job: its submission (the `flink run` line, docs/model/job.md#the-job) and
//! its job graph.

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

/// The job's name, as Flink shows it.
pub const JOB_NAME: &str = "Click Event Count";

/// The vertices of the job graph with chaining off (docs/model/job.md#the-job), in topological
/// order: four, and the Backpressure map between the watermarks and the Counter with
/// `--backpressure`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Vertex {
    /// Reads `input`, deserializes ClickEvent JSON.
    Source,
    /// Takes each event's own timestamp and generates watermarks.
    TimestampsWatermarks,
    /// `--backpressure` only: keyBy(page), then a map that is slow during even minutes.
    Backpressure,
    /// keyBy(page), 15 s tumbling event-time window, count.
    Counter,
    /// Writes ClickEventStatistics JSON to `output`.
    Sink,
}

impl Vertex {
    /// All vertices any job may have, sources first.
    pub const ALL: [Vertex; 5] =
        [Vertex::Source, Vertex::TimestampsWatermarks, Vertex::Backpressure, Vertex::Counter, Vertex::Sink];

    /// The playground's job graph.
    const PLAIN: [Vertex; 4] = [Vertex::Source, Vertex::TimestampsWatermarks, Vertex::Counter, Vertex::Sink];

    /// The vertices of a job run with or without `--backpressure`, sources first.
    pub fn graph(backpressure: bool) -> &'static [Vertex] {
        if backpressure { &Vertex::ALL } else { &Vertex::PLAIN }
    }

    /// The vertex name Flink shows.
    pub fn name(self) -> &'static str {
        match self {
            Vertex::Source => "ClickEvent Source",
            Vertex::TimestampsWatermarks => "Timestamps/Watermarks",
            Vertex::Backpressure => "Backpressure",
            Vertex::Counter => "ClickEvent Counter",
            Vertex::Sink => "ClickEventStatistics Sink",
        }
    }

    /// How records reach this vertex from the previous one; `None` for the source.
    pub fn input_ship_strategy(self) -> Option<ShipStrategy> {
        match self {
            Vertex::Source => None,
            Vertex::TimestampsWatermarks | Vertex::Sink => Some(ShipStrategy::Forward),
            Vertex::Backpressure | Vertex::Counter => Some(ShipStrategy::Hash),
        }
    }

    /// The vertex this one sends to in a job with or without `--backpressure`, if any.
    pub fn downstream(self, backpressure: bool) -> Option<Vertex> {
        let graph = Vertex::graph(backpressure);
        let at = graph.iter().position(|v| *v == self)?;
        graph.get(at + 1).copied()
    }

    /// The vertex this one reads from in a job with or without `--backpressure`, if any.
    pub fn upstream(self, backpressure: bool) -> Option<Vertex> {
        let graph = Vertex::graph(backpressure);
        let at = graph.iter().position(|v| *v == self)?;
        at.checked_sub(1).map(|before| graph[before])
    }
}

/// How an edge distributes records (Flink's ship strategies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShipStrategy {
    /// Subtask i sends only to subtask i.
    Forward,
    /// Each record goes to the subtask owning its key's key group.
    Hash,
}

impl ShipStrategy {
    /// The name Flink's plan shows.
    pub fn name(self) -> &'static str {
        match self {
            ShipStrategy::Forward => "FORWARD",
            ShipStrategy::Hash => "HASH",
        }
    }
}

/// How the sink delivers to Kafka (docs/model/checkpoints.md#sinks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SinkMode {
    /// The playground's: flush on every barrier; duplicates after a restore.
    #[default]
    AtLeastOnce,
    /// Kafka transactions committed when a checkpoint completes.
    ExactlyOnce,
}

/// The Click Event Count program's own arguments (docs/model/job.md#the-job).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickCountArgs {
    /// `--bootstrap.servers host:port`.
    pub bootstrap_servers: SmolStr,
    /// `--checkpointing`: checkpoints every second and a fixed-delay restart strategy.
    pub checkpointing: bool,
    /// `--event-time`: event-time windows (else processing time).
    pub event_time: bool,
    /// `--backpressure`: inserts the Backpressure operator.
    pub backpressure: bool,
    /// `--chaining`: operator chaining on.
    pub chaining: bool,
    /// `--input-topic`.
    pub input_topic: SmolStr,
    /// `--output-topic`.
    pub output_topic: SmolStr,
}

impl Default for ClickCountArgs {
    fn default() -> Self {
        ClickCountArgs {
            bootstrap_servers: "kafka:9092".into(),
            checkpointing: false,
            event_time: false,
            backpressure: false,
            chaining: false,
            input_topic: "input".into(),
            output_topic: "output".into(),
        }
    }
}

/// A job submission: `flink run` parsed, plus the sink mode the scenario chose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSubmission {
    /// `-p N`; the playground's default is 2 (docs/model/cluster.md#configuration).
    pub parallelism: u32,
    /// `-d`: detached.
    pub detached: bool,
    /// `-s <path>`: restore from this savepoint.
    pub savepoint_path: Option<String>,
    /// `--allowNonRestoredState`.
    pub allow_non_restored_state: bool,
    /// The program's arguments.
    pub args: ClickCountArgs,
    /// At-least-once (the playground's) or exactly-once.
    pub sink_mode: SinkMode,
    /// The exactly-once sink's producer `transaction.timeout.ms` (Flink's default 1 h); a
    /// scenario setting, like the sink mode.
    pub transaction_timeout: std::time::Duration,
    /// The source's idleness timeout (`withIdleness`, the playground's 5 s); `None` turns idleness
    /// off. A scenario setting.
    pub idleness: Option<std::time::Duration>,
    /// The watermark's bound on out-of-orderness (`forBoundedOutOfOrderness`, the playground's
    /// 200 ms). A scenario setting.
    pub out_of_orderness: std::time::Duration,
}

/// Flink's Kafka sink sets `transaction.timeout.ms` to 1 h.
pub const DEFAULT_SINK_TRANSACTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// The playground job's source idleness timeout (docs/model/job.md#event-time-and-watermarks).
pub const DEFAULT_IDLENESS: std::time::Duration = std::time::Duration::from_secs(5);

/// The playground job's bound on out-of-orderness (docs/model/job.md#event-time-and-watermarks).
pub const DEFAULT_OUT_OF_ORDERNESS: std::time::Duration = std::time::Duration::from_millis(200);

/// The default parallelism when `flink run` has no `-p` (docs/model/cluster.md#configuration).
pub const DEFAULT_PARALLELISM: u32 = 2;

/// The playground's program arguments, for messages.
const PROGRAM_ARGS: &str = "--bootstrap.servers kafka:9092 --checkpointing --event-time";

/// The Click Event Count program's own options: they come after the jar.
const PROGRAM_OPTIONS: &[&str] = &[
    "--bootstrap.servers",
    "--checkpointing",
    "--event-time",
    "--backpressure",
    "--chaining",
    "--input-topic",
    "--output-topic",
];

/// A `flink run` line that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunCommandError {
    /// The line does not start with `flink run`.
    #[error("expected `flink run ...`, got `{0}`")]
    NotFlinkRun(String),
    /// An option needs a value and has none.
    #[error("option `{0}` needs a value")]
    MissingValue(String),
    /// `-p` with something other than a positive whole number.
    #[error("bad parallelism `{0}`: expected a whole number from 1 to 32768")]
    BadParallelism(String),
    /// An option this model does not know.
    #[error("unknown option `{0}`")]
    UnknownOption(String),
    /// No jar named.
    #[error("no jar file given: write `flink run -d /opt/ClickCountJob.jar {PROGRAM_ARGS}`")]
    MissingJar,
    /// One of the program's options where Flink's options and then the jar are expected.
    #[error(
        "`{0}` is the program's option and comes after the jar: write \
         `flink run -d /opt/ClickCountJob.jar {PROGRAM_ARGS}`"
    )]
    OptionBeforeJar(String),
    /// A jar other than the playground's.
    #[error("unknown program `{0}`: only ClickCountJob.jar is modelled")]
    UnknownJar(String),
}

impl JobSubmission {
    /// Parses the playground's command line, e.g.
    /// `flink run -d -p 2 /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing --event-time`.
    pub fn parse_run_command(line: &str) -> Result<JobSubmission, RunCommandError> {
        let mut words = line.split_whitespace().peekable();
        if words.next() != Some("flink") || words.next() != Some("run") {
            return Err(RunCommandError::NotFlinkRun(line.trim().to_owned()));
        }
        let mut submission = JobSubmission {
            parallelism: DEFAULT_PARALLELISM,
            detached: false,
            savepoint_path: None,
            allow_non_restored_state: false,
            args: ClickCountArgs::default(),
            sink_mode: SinkMode::AtLeastOnce,
            transaction_timeout: DEFAULT_SINK_TRANSACTION_TIMEOUT,
            idleness: Some(DEFAULT_IDLENESS),
            out_of_orderness: DEFAULT_OUT_OF_ORDERNESS,
        };
        let value = |flag: &str, words: &mut dyn Iterator<Item = &str>| {
            words.next().map(str::to_owned).ok_or_else(|| RunCommandError::MissingValue(flag.into()))
        };
        // Flink's own options come before the jar; the program's after it.
        let jar = loop {
            let Some(word) = words.next() else { return Err(RunCommandError::MissingJar) };
            match word {
                "-d" | "--detached" => submission.detached = true,
                "-p" | "--parallelism" => {
                    let p = value(word, &mut words)?;
                    submission.parallelism = match p.parse::<u32>() {
                        // Flink's upper bound of max parallelism; a restore checks the
                        // savepoint's own (often 128) when it reads it.
                        Ok(n) if (1..=32768).contains(&n) => n,
                        _ => return Err(RunCommandError::BadParallelism(p)),
                    };
                }
                "-s" | "--fromSavepoint" => submission.savepoint_path = Some(value(word, &mut words)?),
                "-n" | "--allowNonRestoredState" => submission.allow_non_restored_state = true,
                option if PROGRAM_OPTIONS.contains(&option) => {
                    return Err(RunCommandError::OptionBeforeJar(option.into()));
                }
                option if option.starts_with('-') => {
                    return Err(RunCommandError::UnknownOption(option.into()));
                }
                jar => break jar,
            }
        };
        if !jar.ends_with("ClickCountJob.jar") {
            return Err(RunCommandError::UnknownJar(jar.into()));
        }
        let args = &mut submission.args;
        while let Some(word) = words.next() {
            match word {
                "--bootstrap.servers" => args.bootstrap_servers = value(word, &mut words)?.into(),
                "--checkpointing" => args.checkpointing = true,
                "--event-time" => args.event_time = true,
                "--backpressure" => args.backpressure = true,
                "--chaining" => args.chaining = true,
                "--input-topic" => args.input_topic = value(word, &mut words)?.into(),
                "--output-topic" => args.output_topic = value(word, &mut words)?.into(),
                other => return Err(RunCommandError::UnknownOption(other.into())),
            }
        }
        Ok(submission)
    }

    /// A variant of the job this model cannot run yet, with the flag that asks for it: such a
    /// submission is refused rather than silently run as something else.
    pub fn unsupported_variant(&self) -> Option<(&'static str, &'static str)> {
        let args = &self.args;
        if args.chaining {
            Some((
                "--chaining",
                "--chaining is refused: the playground's job turns operator chaining on with it, which \
                 fuses the Source with Timestamps/Watermarks and the Counter with the Sink into one \
                 task each; flinksim runs the job graph the playground shows, four vertices with \
                 chaining off, and does not model chained tasks",
            ))
        } else {
            None
        }
    }

    /// The bootstrap server's host name (`kafka` in `kafka:9092`).
    pub fn bootstrap_host(&self) -> &str {
        self.args.bootstrap_servers.split(':').next().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playground_run_line_parses_with_default_parallelism_two() {
        let s = JobSubmission::parse_run_command(
            "flink run -d /opt/ClickCountJob.jar --bootstrap.servers kafka:9092 --checkpointing --event-time",
        )
        .unwrap();
        assert_eq!(s.parallelism, 2);
        assert!(s.detached && s.args.checkpointing && s.args.event_time);
        assert_eq!(s.bootstrap_host(), "kafka");
    }

    #[test]
    fn bad_parallelism_and_unknown_flags_are_errors() {
        let bad = |l| JobSubmission::parse_run_command(l).unwrap_err();
        assert_eq!(
            bad("flink run -p zero /opt/ClickCountJob.jar"),
            RunCommandError::BadParallelism("zero".into())
        );
        assert_eq!(
            bad("flink run /opt/ClickCountJob.jar --checkpionting"),
            RunCommandError::UnknownOption("--checkpionting".into())
        );
        assert_eq!(bad("flink run -d"), RunCommandError::MissingJar);
        assert_eq!(
            bad("flink run -d --checkpointing --event-time"),
            RunCommandError::OptionBeforeJar("--checkpointing".into())
        );
    }
}
