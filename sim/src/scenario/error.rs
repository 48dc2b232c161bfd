//! Errors in scenario files: each names the file, the line and column of the offending value, and
//! what would have been valid (style.md, "How errors should read"). Loading a scenario never panics.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use flinksim_engine::protocol::job::RunCommandError;

/// A scenario that cannot be loaded, with where and why.
///
/// Displays as `scenarios/x.toml:14:7: unknown service `taskmanger` (known: …)`, or without the
/// line and column when the file itself cannot be found or read.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {kind}", path.display(), location.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ScenarioError {
    /// The scenario file, as it was named.
    pub path: PathBuf,
    /// Where in the file; `None` when the file could not be read at all.
    pub location: Option<Location>,
    /// What is wrong.
    pub kind: ScenarioErrorKind,
}

/// A 1-based line and column (in characters) of a scenario file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Location {
    /// The line and column of a byte offset into `text`; offsets past the end point after the
    /// last character.
    pub fn of_offset(text: &str, offset: usize) -> Location {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location { line: before.matches('\n').count() + 1, column: before[line_start..].chars().count() + 1 }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What is wrong with a scenario.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioErrorKind {
    /// The file cannot be read for a reason other than those below (e.g. permissions).
    #[error("cannot read the scenario file: {0}")]
    Read(#[source] std::io::Error),
    /// No file at the path; for a name with a folder, not as a path either.
    #[error("no such file{}", nor.as_ref().map(|p| format!(" (nor a file `{}`)", p.display())).unwrap_or_default())]
    NoSuchFile {
        /// The second place looked at: the name as a path, when it was first looked up in scenarios/.
        nor: Option<PathBuf>,
    },
    /// A directory where a scenario file was expected.
    #[error(
        "is a directory, not a scenario file{}",
        if files.is_empty() { String::new() } else { format!(" (scenario files in it: {})", known_list(files)) }
    )]
    IsADirectory {
        /// The `.toml` files in it, to name one of them.
        files: Vec<String>,
    },
    /// No file and no scenario of that name.
    #[error("unknown scenario `{name}` (known: {})", known_list(known))]
    UnknownScenario {
        /// The name asked for.
        name: String,
        /// The stems of the files in the scenarios directory.
        known: Vec<String>,
    },
    /// The TOML itself is malformed, or a key is unknown, missing or of the wrong type; the
    /// message is the `toml` crate's, which lists the valid keys and values.
    #[error("{0}")]
    Toml(String),
    /// A key set twice in the same table.
    #[error("duplicate key `{key}`: already set on line {first_line}")]
    DuplicateKey {
        /// The key's dotted path, e.g. `cluster.slots`.
        key: String,
        /// The line of its first definition.
        first_line: usize,
    },
    /// A `[table]` header written twice.
    #[error("duplicate table `[{table}]`: already opened on line {first_line} (write each table once)")]
    DuplicateTable {
        /// The table's dotted path, e.g. `cluster`.
        table: String,
        /// The line of its first header.
        first_line: usize,
    },
    /// `[step]`, a single table, where the steps are an array of tables.
    #[error("`[step]` is a single table: write `[[step]]`, with two brackets, above each step")]
    StepNotArray,
    /// `name` differs from the file's stem.
    #[error("name `{name}` does not match the file name: expected `{stem}`")]
    NameMismatch {
        /// The `name` in the file.
        name: String,
        /// The file's stem.
        stem: String,
    },
    /// A duration that is not a number followed by a unit.
    #[error("bad duration `{0}`: expected e.g. 200ms, 1s, 10m")]
    BadDuration(String),
    /// A duration in months or years (humantime's `M`, `month`, `y`, `year`, …).
    #[error(
        "bad duration `{text}`: `{unit}` means {calendar}, which have no fixed length (accepted units: ns, \
         us, ms, s, m, h, d, and their long forms such as min, hours, days; `m` is minutes)"
    )]
    CalendarUnit {
        /// The duration as written.
        text: String,
        /// The unit as written, e.g. `M`.
        unit: String,
        /// `months` or `years`.
        calendar: &'static str,
    },
    /// A duration above [`DURATION_MAX`](super::DURATION_MAX).
    #[error(
        "duration `{text}` is too long: at most {days} days of simulated time",
        days = super::DURATION_MAX.as_secs() / 86_400
    )]
    TooLong {
        /// The duration as written.
        text: String,
    },
    /// A generator pace below [`PACE_MIN`](super::PACE_MIN).
    #[error(
        "`pace` must be at least {}: the generator emits one event per pace, and a smaller one (more \
         than {} events per second of simulated time) would not finish",
        super::format_duration(super::PACE_MIN),
        1_000_000_000 / super::PACE_MIN.as_nanos()
    )]
    PaceTooSmall,
    /// A range whose minimum is above its maximum.
    #[error("empty range: min {min} is greater than max {max}")]
    EmptyRange {
        /// The minimum as written.
        min: String,
        /// The maximum as written.
        max: String,
    },
    /// An anchored step time names an event no step can be anchored to.
    #[error("unknown event `{name}` to anchor a step to (known: {})", known.join(", "))]
    UnknownAnchor {
        /// The name as written.
        name: String,
        /// The events a step can be anchored to.
        known: Vec<&'static str>,
    },
    /// An anchored step time's `n` is not a count from 1.
    #[error("`n` must be a whole number from 1 to {max}, the occurrence of the event counted from 1: got {n}")]
    BadAnchorCount {
        /// The value as written.
        n: i64,
        /// The largest accepted.
        max: u32,
    },
    /// The generator's timestamp jitter is above the job's out-of-orderness bound or its maximum.
    #[error(
        "`jitter` {jitter} is too large: at most {max} (the job's out-of-orderness bound, within which no event is late)"
    )]
    JitterTooLarge {
        /// The jitter as written.
        jitter: String,
        /// The largest accepted.
        max: String,
    },
    /// A count or a time that must be positive is zero.
    #[error("`{key}` must be greater than 0")]
    Zero {
        /// The key, e.g. `taskmanagers`.
        key: &'static str,
    },
    /// More TaskManagers than [`TASKMANAGERS_MAX`](super::TASKMANAGERS_MAX).
    #[error("{count} TaskManagers are too many: at most {max}", max = super::TASKMANAGERS_MAX)]
    TooManyTaskManagers {
        /// The count asked for.
        count: u32,
    },
    /// A step scheduled after the scenario ends.
    #[error("step at {at} is after the end of the scenario (duration = \"{duration}\")")]
    StepAfterEnd {
        /// The step's (latest) time.
        at: String,
        /// The scenario's duration.
        duration: String,
    },
    /// A `docker-compose` service that does not exist.
    #[error("unknown service `{name}` (known: {})", known_list(known))]
    UnknownService {
        /// The name as written.
        name: String,
        /// The valid service names.
        known: Vec<String>,
    },
    /// A node name (for `sim` verbs) that does not exist.
    #[error("unknown node `{name}` (known: {})", known_list(known))]
    UnknownNode {
        /// The name as written.
        name: String,
        /// The valid node names.
        known: Vec<String>,
    },
    /// A command that starts with no known program.
    #[error("unknown command `{0}`: expected docker-compose, sim, flink or curl")]
    UnknownProgram(String),
    /// A `docker-compose` or `sim` verb that does not exist.
    #[error("unknown {program} command `{verb}` (known: {})", known_list(known))]
    UnknownVerb {
        /// `docker-compose` or `sim`.
        program: &'static str,
        /// The verb as written.
        verb: String,
        /// The valid verbs.
        known: &'static [&'static str],
    },
    /// A command that stops before its end.
    #[error("incomplete command: expected `{expected}`")]
    IncompleteCommand {
        /// The command's shape.
        expected: &'static str,
    },
    /// A word where the command expects something else or nothing.
    #[error("unexpected `{word}`: expected `{expected}`")]
    UnexpectedWord {
        /// The word as written.
        word: String,
        /// The command's shape.
        expected: &'static str,
    },
    /// A `scale` of a service other than `taskmanager`, or with a bad count.
    #[error("bad scale `{0}`: expected `taskmanager=<N>` with N a whole number")]
    BadScale(String),
    /// A link loss that is not a probability.
    #[error("bad loss `{0}`: expected a probability from 0 to 1, e.g. 0.1")]
    BadLoss(String),
    /// A fault between a node and itself.
    #[error("`{0}` cannot be cut off from itself: name two different nodes")]
    SameNode(String),
    /// A `curl` line that cannot be read.
    #[error("bad `curl` line: {0}")]
    Curl(#[from] flinksim_engine::playground::curl::CurlError),
    /// A response assertion naming no `curl` step.
    #[error("`{request}` is no `curl` step of this file (its curl steps: {})", if known.is_empty() { "none".to_owned() } else { known.join("; ") })]
    ResponseOfNoStep {
        /// The request as written.
        request: String,
        /// The file's curl lines.
        known: Vec<String>,
    },
    /// A job named by neither an id nor `$job`.
    #[error("bad job id `{0}`: expected 32 hex digits, or `$job` for the current job")]
    BadJobId(String),
    /// The `[job]` `run` line cannot be understood.
    #[error("bad `flink run` line: {0}")]
    RunCommand(#[from] RunCommandError),
    /// The job reads from a broker other than the playground's.
    #[error("unknown bootstrap server `{0}`: the playground's broker is kafka:9092")]
    UnknownBootstrapServer(String),
    /// An exactly-once sink on a job without `--checkpointing`: Flink's KafkaSink commits only
    /// when a checkpoint completes, so nothing would ever be committed.
    #[error("{}", if *in_step { STEP_WITHOUT_CHECKPOINTING } else { JOB_WITHOUT_CHECKPOINTING })]
    ExactlyOnceWithoutCheckpointing {
        /// Whether the line is a step's (which takes the `[job]` sink mode) rather than `[job] run`.
        in_step: bool,
    },
    /// A job variant the engine cannot run yet.
    #[error("{0}")]
    UnsupportedVariant(&'static str),
    /// A fault no later step heals, in a scenario whose job must recover
    /// (docs/oracle.md#what-correct-means).
    #[error(
        "`{command}` at {at} leaves {fault} until the end of the run, but the job must recover: every \
         fault must heal at least {tail} before the end (docs/oracle.md#what-correct-means). Heal it in a later step, or \
         declare `liveness = \"stall\"` in [expect] if the job must stall for good"
    )]
    NeverHealed {
        /// The step's command.
        command: String,
        /// When it runs, as the file writes it.
        at: String,
        /// The fault it leaves, e.g. `taskmanager-1 down`.
        fault: String,
        /// The fault-free tail the run needs.
        tail: String,
    },
    /// The last fault heals (or, where the job must stall, begins) too close to the end.
    #[error(
        "`{command}` at {at} is the last fault {change} only {left} before the end (duration = \
         \"{duration}\"): the job needs at least {tail} after it (docs/oracle.md#what-correct-means) to be seen to {outcome}. \
         End the run at {needed} or later, or run the step earlier",
        change = if *begins { "to begin" } else { "to heal" },
        outcome = if *stall { "stall" } else { "catch up" },
    )]
    TailTooShort {
        /// The step's command.
        command: String,
        /// When it runs, as the file writes it.
        at: String,
        /// Whether the step begins a fault that never heals, rather than heals one.
        begins: bool,
        /// Whether the job must stall (`liveness = "stall"`) rather than catch up.
        stall: bool,
        /// Time left after the step's latest time.
        left: String,
        /// The scenario's duration.
        duration: String,
        /// The fault-free tail the run needs.
        tail: String,
        /// The shortest duration that leaves the tail.
        needed: String,
    },
    /// `liveness = "stall"` where every fault heals (with no fault at all, the job must stall
    /// from the start).
    #[error(
        "[expect] liveness = \"stall\" needs a fault that never heals, but every fault of the \
         scenario heals: remove the key, or drop the step that heals the fault"
    )]
    StallWithoutFault,
}

const JOB_WITHOUT_CHECKPOINTING: &str = "the exactly-once sink needs `--checkpointing`: it commits only \
    when a checkpoint completes, so nothing would ever be committed (add `--checkpointing` to the \
    `flink run` line, or use sink = \"at-least-once\")";
const STEP_WITHOUT_CHECKPOINTING: &str = "this `flink run` has no `--checkpointing`, but the scenario's \
    sink ([job] sink) is exactly-once, which commits only when a checkpoint completes, so nothing would \
    ever be committed (add `--checkpointing` to the line, or use sink = \"at-least-once\" in [job])";

/// A list of valid names for a message.
fn known_list<S: AsRef<str>>(known: &[S]) -> String {
    if known.is_empty() {
        return "none".to_owned();
    }
    known.iter().map(AsRef::as_ref).collect::<Vec<&str>>().join(", ")
}

/// An error found inside a scenario's text, at a byte span, before it is given its file.
#[derive(Debug)]
pub(crate) struct SpannedError {
    /// Byte range in the file's text.
    pub span: Range<usize>,
    /// What is wrong.
    pub kind: ScenarioErrorKind,
}

impl SpannedError {
    /// An error at `span`.
    pub fn new(span: Range<usize>, kind: ScenarioErrorKind) -> SpannedError {
        SpannedError { span, kind }
    }

    /// Gives the error its file and turns its byte span into a line and column of `text`.
    pub fn in_file(self, text: &str, path: &Path) -> ScenarioError {
        ScenarioError {
            path: path.to_owned(),
            location: Some(Location::of_offset(text, self.span.start)),
            kind: self.kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_one_based_line_and_character_column() {
        let text = "a = 1\nµb = \"x\"\n";
        assert_eq!(Location::of_offset(text, 0), Location { line: 1, column: 1 });
        assert_eq!(Location::of_offset(text, 6), Location { line: 2, column: 1 });
        // `µ` is two bytes but one column.
        assert_eq!(Location::of_offset(text, 8), Location { line: 2, column: 2 });
        assert_eq!(Location::of_offset(text, 999), Location { line: 3, column: 1 });
    }

    #[test]
    fn unreadable_file_names_the_path_without_a_location() {
        let error = ScenarioError {
            path: "scenarios/nope.toml".into(),
            location: None,
            kind: ScenarioErrorKind::Read(std::io::Error::from(std::io::ErrorKind::NotFound)),
        };
        assert_eq!(error.to_string(), "scenarios/nope.toml: cannot read the scenario file: entity not found");
    }
}
