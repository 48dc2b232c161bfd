//! The snapshot format (docs/model/checkpoints.md#overview, docs/model/cluster.md#the-flink-cli): what every operator's subtask writes for a checkpoint or
//! savepoint, and the `_metadata` that lists them. A stable, versioned format of its own: the
//! operators build these types, never the other way round, so a savepoint taken by one job can be
//! read by the next (another parallelism, another job id).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::ids::JobId;
use super::job::Vertex;
use super::kafka::TransactionHandle;
use super::key_group::{KeyGroup, KeyGroupRange};
use crate::protocol::click_event::WINDOW_MS;

/// The version written into every `_metadata`; a reader refuses any other.
pub const FORMAT_VERSION: u32 = 1;

/// The root of checkpoint storage on the shared volume.
pub const CHECKPOINTS_DIR: &str = "/tmp/flink-checkpoints-directory";

/// The root of savepoint storage on the shared volume.
pub const SAVEPOINTS_DIR: &str = "/tmp/flink-savepoints-directory";

/// An operator's stable id, the same in every job built from the program (Flink's operator
/// uid): snapshots are matched to operators by it, never by position or by a type's name.
pub fn operator_id(vertex: Vertex) -> &'static str {
    match vertex {
        Vertex::Source => "clickevent-source",
        Vertex::TimestampsWatermarks => "timestamps-watermarks",
        Vertex::Backpressure => "backpressure",
        Vertex::Counter => "clickevent-counter",
        Vertex::Sink => "clickevent-statistics-sink",
    }
}

/// The vertex whose operator has this id, if any.
pub fn vertex_of(operator_id: &str) -> Option<Vertex> {
    Vertex::ALL.into_iter().find(|v| self::operator_id(*v) == operator_id)
}

/// A checkpoint (periodic, retained one at a time) or a savepoint (taken on request, kept).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotKind {
    /// A periodic checkpoint, under the checkpoints directory.
    #[default]
    Checkpoint,
    /// A savepoint of `flink stop`, under the savepoints directory.
    Savepoint {
        /// The 12 random hex digits of its directory's name (48 bits).
        token: u64,
        /// `--drain`: the maximum watermark first, so every open window fires.
        drain: bool,
    },
}

/// The directory a snapshot of `job_id` with id `checkpoint_id` is written to:
/// `<checkpoints dir>/<job-id>/chk-<n>` or `<savepoints dir>/savepoint-<6 hex>-<12 hex>`.
pub fn snapshot_dir(job_id: JobId, checkpoint_id: u64, kind: SnapshotKind) -> String {
    match kind {
        SnapshotKind::Checkpoint => checkpoint_dir(job_id, checkpoint_id),
        SnapshotKind::Savepoint { token, .. } => {
            let job = job_id.to_string();
            format!("{SAVEPOINTS_DIR}/savepoint-{}-{:012x}", &job[..6], token & 0xffff_ffff_ffff)
        }
    }
}

/// The directory of checkpoint `id` of `job`.
pub fn checkpoint_dir(job_id: JobId, id: u64) -> String {
    // Built by hand: `format!` spent ~1,700 instructions per call, most of them padding the
    // job id's 32 hex digits, and every subtask names this directory at every checkpoint.
    // Room for a snapshot's file name too (`<32 hex digits>-<subtask>`), which a task appends.
    let mut dir = String::with_capacity(CHECKPOINTS_DIR.len() + 96);
    push_checkpoints_of(&mut dir, job_id);
    push_decimal(&mut dir, id);
    dir
}

/// Appends `<checkpoints dir>/<job-id>/chk-`: a checkpoint's directory but for its id.
fn push_checkpoints_of(out: &mut String, job_id: JobId) {
    out.push_str(CHECKPOINTS_DIR);
    out.push('/');
    push_hex_id(out, job_id);
    out.push_str("/chk-");
}

/// One subtask's snapshot paths, `<snapshot_dir>/<file_name>`, with the parts around a
/// checkpoint's id made once. Each subtask names its snapshot at every checkpoint, and the
/// directory's job id (32 hex digits) and the file name cost about 500 instructions each time.
#[derive(Clone, Debug)]
pub struct SnapshotPaths {
    job_id: JobId,
    /// `<checkpoints dir>/<job-id>/chk-`.
    checkpoints: String,
    /// `/<operator id>-<subtask>`.
    file: String,
}

impl SnapshotPaths {
    /// The paths of `subtask` of `vertex` in `job_id`'s snapshots.
    pub fn new(job_id: JobId, vertex: Vertex, subtask: u32) -> SnapshotPaths {
        let mut checkpoints = String::with_capacity(CHECKPOINTS_DIR.len() + 38);
        push_checkpoints_of(&mut checkpoints, job_id);
        let mut file = String::from("/");
        CheckpointMetadata::push_file_name(&mut file, vertex, subtask);
        SnapshotPaths { job_id, checkpoints, file }
    }

    /// The subtask's snapshot file in snapshot `id` of `kind`:
    /// `snapshot_dir(job_id, id, kind) + "/" + CheckpointMetadata::file_name(vertex, subtask)`.
    pub fn of(&self, id: u64, kind: SnapshotKind) -> String {
        let mut path = match kind {
            SnapshotKind::Checkpoint => {
                let mut dir = String::with_capacity(self.checkpoints.len() + 20 + self.file.len());
                dir.push_str(&self.checkpoints);
                push_decimal(&mut dir, id);
                dir
            }
            SnapshotKind::Savepoint { .. } => snapshot_dir(self.job_id, id, kind),
        };
        path.push_str(&self.file);
        path
    }
}

/// Appends `job_id` as its `Display` writes it: 32 lowercase hex digits.
fn push_hex_id(out: &mut String, job_id: JobId) {
    out.push_str(std::str::from_utf8(&job_id.hex()).expect("hex digits are ASCII"));
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Where a task's snapshot for one checkpoint lies, and how big it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateHandle {
    /// Path in checkpoint storage.
    pub path: String,
    /// Bytes written.
    pub size: u64,
}

/// The source's state: the next offset to read of each partition it read (operator list
/// state; on restore every subtask looks at all of it and takes the partitions it now owns).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    /// Partition of `input` → next offset.
    pub offsets: BTreeMap<u32, u64>,
}

/// The counts of one key group: (page, window start) → events so far.
pub type KeyGroupWindows = BTreeMap<(SmolStr, i64), u64>;

/// The window operator's keyed state, per key group: window contents and their event-time
/// timers (one per open window, at its end − 1).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowState {
    /// Open windows per key group.
    #[serde(with = "windows_as_lists")]
    pub key_groups: BTreeMap<KeyGroup, KeyGroupWindows>,
}

impl WindowState {
    /// The key groups of this state that lie in `range` (a restore at any parallelism).
    pub fn within(self, range: KeyGroupRange) -> WindowState {
        WindowState { key_groups: self.key_groups.into_iter().filter(|(g, _)| range.contains(*g)).collect() }
    }
}

/// Each key group's windows are written as a list of `{page, window_start_ms, count, timer_ms}`:
/// readable, and valid JSON (whose map keys must be strings).
mod windows_as_lists {
    use super::*;
    use serde::{Deserializer, Serializer};

    #[derive(Serialize, Deserialize)]
    struct WindowEntry {
        page: SmolStr,
        window_start_ms: i64,
        count: u64,
        /// The window's event-time timer.
        timer_ms: i64,
    }

    pub fn serialize<S: Serializer>(
        groups: &BTreeMap<KeyGroup, KeyGroupWindows>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let lists: BTreeMap<u32, Vec<WindowEntry>> = groups
            .iter()
            .map(|(group, windows)| {
                let list = windows
                    .iter()
                    .map(|((page, window_start_ms), count)| WindowEntry {
                        page: page.clone(),
                        window_start_ms: *window_start_ms,
                        count: *count,
                        timer_ms: window_start_ms + WINDOW_MS - 1,
                    })
                    .collect();
                (group.0, list)
            })
            .collect();
        lists.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<KeyGroup, KeyGroupWindows>, D::Error> {
        let lists = BTreeMap::<u32, Vec<WindowEntry>>::deserialize(deserializer)?;
        Ok(lists
            .into_iter()
            .map(|(group, list)| {
                let windows = list.into_iter().map(|w| ((w.page, w.window_start_ms), w.count)).collect();
                (KeyGroup(group), windows)
            })
            .collect())
    }
}

/// The sink's state: the transactions flushed but not yet committed (exactly-once; empty
/// otherwise), by the checkpoint that commits them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkState {
    /// Pending transactions by checkpoint id.
    pub pending: BTreeMap<u64, TransactionHandle>,
}

/// One subtask's snapshot, by operator (docs/model/checkpoints.md#overview).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TaskSnapshot {
    /// Source: partition offsets.
    Source {
        /// Partition → next offset.
        offsets: BTreeMap<u32, u64>,
    },
    /// Timestamps/Watermarks: nothing (watermarks restart from the minimum).
    TimestampsWatermarks,
    /// Backpressure: nothing (the map keeps no state).
    Backpressure,
    /// Counter: window contents and timers per key group.
    Counter(WindowState),
    /// Sink: pending transactions.
    Sink {
        /// Pending transactions by the checkpoint that will commit them.
        pending: BTreeMap<u64, TransactionHandle>,
    },
}

/// A completed checkpoint's or savepoint's `_metadata`: where every subtask's snapshot lies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The job that took it.
    pub job_id: JobId,
    /// The checkpoint's id (a restore continues from the next one).
    pub checkpoint_id: u64,
    /// Checkpoint or savepoint.
    pub kind: SnapshotKind,
    /// When it was triggered (ms since the run started).
    pub timestamp_ms: i64,
    /// The job's parallelism when it was taken.
    pub parallelism: u32,
    /// Number of key groups, fixed when the job first started and kept by every restore.
    pub max_parallelism: u32,
    /// Operator id → subtask → its snapshot.
    pub operators: BTreeMap<String, BTreeMap<u32, StateHandle>>,
}

impl CheckpointMetadata {
    /// The file name of a subtask's snapshot within the checkpoint's directory.
    pub fn file_name(vertex: Vertex, subtask: u32) -> String {
        let mut name = String::new();
        Self::push_file_name(&mut name, vertex, subtask);
        name
    }

    /// Appends [`file_name`](Self::file_name) to `path` (no string of its own).
    pub fn push_file_name(path: &mut String, vertex: Vertex, subtask: u32) {
        path.push_str(operator_id(vertex));
        path.push('-');
        push_decimal(path, u64::from(subtask));
    }

    /// The handles of every subtask of `vertex`, by subtask.
    pub fn states_of(&self, vertex: Vertex) -> Vec<(u32, &StateHandle)> {
        self.operators.get(operator_id(vertex)).into_iter().flatten().map(|(s, h)| (*s, h)).collect()
    }

    /// Reads a `_metadata` file written at `path`.
    pub fn decode(path: &str, bytes: &[u8]) -> Result<CheckpointMetadata, SnapshotError> {
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let corrupt = |e: serde_json::Error| SnapshotError::Corrupt { path: path.to_owned(), reason: e.to_string() };
        let Version { format_version } = serde_json::from_slice(bytes).map_err(corrupt)?;
        if format_version != FORMAT_VERSION {
            return Err(SnapshotError::UnknownVersion { path: path.to_owned(), found: format_version });
        }
        serde_json::from_slice(bytes).map_err(corrupt)
    }

    /// The `_metadata` file's bytes: what `serde_json::to_vec` writes, by the `json` module's hand.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"format_version\":");
        json::number(&mut out, self.format_version);
        out.extend_from_slice(b",\"job_id\":");
        json::number(&mut out, self.job_id.0);
        out.extend_from_slice(b",\"checkpoint_id\":");
        json::number(&mut out, self.checkpoint_id);
        out.extend_from_slice(b",\"kind\":");
        match self.kind {
            SnapshotKind::Checkpoint => out.extend_from_slice(b"\"checkpoint\""),
            SnapshotKind::Savepoint { token, drain } => {
                out.extend_from_slice(b"{\"savepoint\":{\"token\":");
                json::number(&mut out, token);
                out.extend_from_slice(if drain { b",\"drain\":true}}" } else { b",\"drain\":false}}" });
            }
        }
        out.extend_from_slice(b",\"timestamp_ms\":");
        json::number(&mut out, self.timestamp_ms);
        out.extend_from_slice(b",\"parallelism\":");
        json::number(&mut out, self.parallelism);
        out.extend_from_slice(b",\"max_parallelism\":");
        json::number(&mut out, self.max_parallelism);
        out.extend_from_slice(b",\"operators\":{");
        for (i, (operator, subtasks)) in self.operators.iter().enumerate() {
            json::comma(&mut out, i);
            json::string(&mut out, operator);
            out.extend_from_slice(b":{");
            for (j, (subtask, handle)) in subtasks.iter().enumerate() {
                json::comma(&mut out, j);
                json::key(&mut out, *subtask);
                out.extend_from_slice(b"{\"path\":");
                json::string(&mut out, &handle.path);
                out.extend_from_slice(b",\"size\":");
                json::number(&mut out, handle.size);
                out.push(b'}');
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"}}");
        out
    }
}

impl TaskSnapshot {
    /// The snapshot file's bytes: what `serde_json::to_vec` writes, by the `json` module's hand.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        match self {
            TaskSnapshot::Source { offsets } => {
                out.extend_from_slice(b"{\"Source\":{\"offsets\":{");
                for (i, (partition, offset)) in offsets.iter().enumerate() {
                    json::comma(&mut out, i);
                    json::key(&mut out, *partition);
                    json::number(&mut out, *offset);
                }
                out.extend_from_slice(b"}}}");
            }
            TaskSnapshot::TimestampsWatermarks => out.extend_from_slice(b"\"TimestampsWatermarks\""),
            TaskSnapshot::Backpressure => out.extend_from_slice(b"\"Backpressure\""),
            TaskSnapshot::Counter(state) => {
                out.extend_from_slice(b"{\"Counter\":{\"key_groups\":{");
                for (i, (group, windows)) in state.key_groups.iter().enumerate() {
                    json::comma(&mut out, i);
                    json::key(&mut out, group.0);
                    out.push(b'[');
                    for (j, ((page, window_start_ms), count)) in windows.iter().enumerate() {
                        json::comma(&mut out, j);
                        out.extend_from_slice(b"{\"page\":");
                        json::string(&mut out, page);
                        out.extend_from_slice(b",\"window_start_ms\":");
                        json::number(&mut out, *window_start_ms);
                        out.extend_from_slice(b",\"count\":");
                        json::number(&mut out, *count);
                        out.extend_from_slice(b",\"timer_ms\":");
                        json::number(&mut out, window_start_ms + WINDOW_MS - 1);
                        out.push(b'}');
                    }
                    out.push(b']');
                }
                out.extend_from_slice(b"}}}");
            }
            TaskSnapshot::Sink { pending } => {
                out.extend_from_slice(b"{\"Sink\":{\"pending\":{");
                for (i, (checkpoint, handle)) in pending.iter().enumerate() {
                    json::comma(&mut out, i);
                    json::key(&mut out, *checkpoint);
                    out.extend_from_slice(b"{\"transactional_id\":");
                    json::string(&mut out, &handle.transactional_id);
                    out.extend_from_slice(b",\"producer_id\":");
                    json::number(&mut out, handle.producer_id);
                    out.extend_from_slice(b",\"epoch\":");
                    json::number(&mut out, handle.epoch);
                    out.push(b'}');
                }
                out.extend_from_slice(b"}}}");
            }
        }
        out
    }
}

/// Compact JSON written by hand for the snapshot types, byte for byte what serde_json writes for
/// their derived `Serialize` (the tests compare the two), because snapshots are stored and read
/// back by serde_json. serde_json escapes every string, field names included, byte by byte: its
/// `format_escaped_str` cost ~5.8 M of a 740 M run (callgrind), mostly for these files.
mod json {
    /// Appends `s` as a JSON string; serde_json writes the rare one that needs escaping.
    pub fn string(out: &mut Vec<u8>, s: &str) {
        // serde_json escapes exactly these bytes (its ESCAPE table): controls, `"` and `\`.
        if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            serde_json::to_writer(&mut *out, s).expect("a string serializes");
        } else {
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        }
    }

    /// Appends an integer as a JSON number.
    pub fn number(out: &mut Vec<u8>, n: impl itoa::Integer) {
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    /// Appends an integer map key as serde_json writes it (quoted), with its colon.
    pub fn key(out: &mut Vec<u8>, n: impl itoa::Integer) {
        out.push(b'"');
        number(out, n);
        out.extend_from_slice(b"\":");
    }

    /// Appends the comma before every entry but the first (`index` 0).
    pub fn comma(out: &mut Vec<u8>, index: usize) {
        if index > 0 {
            out.push(b',');
        }
    }
}

/// Why a snapshot cannot be read. Messages name the path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Truncated, or not the format at all.
    #[error("{path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What did not parse.
        reason: String,
    },
    /// Written by another version of the format.
    #[error("{path} has snapshot format version {found}, this reader knows version {FORMAT_VERSION}")]
    UnknownVersion {
        /// The file.
        path: String,
        /// The version it says.
        found: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::key_group::kafka_partition_owner;

    const PAGES: [&str; 6] = ["/help", "/index", "/shop", "/jobs", "/about", "/news"];

    #[test]
    fn paths_built_by_hand_read_as_formatted() {
        for (job, id) in [(0u128, 0u64), (0xab, 7), (u128::MAX, u64::MAX), (0x0123_4567_89ab_cdef << 60, 1_000)] {
            let job_id = JobId(job);
            assert_eq!(checkpoint_dir(job_id, id), format!("{CHECKPOINTS_DIR}/{job_id}/chk-{id}"));
        }
        for (vertex, subtask) in [(Vertex::Source, 0), (Vertex::Counter, 1), (Vertex::Sink, 4_000_000_000)] {
            let name = CheckpointMetadata::file_name(vertex, subtask);
            assert_eq!(name, format!("{}-{subtask}", operator_id(vertex)));
            for (job, id) in [(0u128, 0u64), (0xab, 7), (u128::MAX, u64::MAX)] {
                let job_id = JobId(job);
                let paths = SnapshotPaths::new(job_id, vertex, subtask);
                for kind in [SnapshotKind::Checkpoint, SnapshotKind::Savepoint { token: 0x1234_5678_9abc, drain: false }] {
                    assert_eq!(paths.of(id, kind), format!("{}/{name}", snapshot_dir(job_id, id, kind)));
                }
            }
        }
    }

    /// One open window per page, each in its key group (max parallelism 128).
    fn window_state() -> WindowState {
        let mut state = WindowState::default();
        for page in PAGES {
            let group = KeyGroup::of_str(page, 128);
            state.key_groups.entry(group).or_default().insert((page.into(), 15_000), 7);
        }
        state
    }

    /// The pages subtask `i` of `p` takes from a restored window state.
    fn pages_of(state: &WindowState, p: u32, i: u32) -> Vec<String> {
        let mine = state.clone().within(KeyGroupRange::of_subtask(128, p, i));
        let mut pages: Vec<String> =
            mine.key_groups.values().flat_map(|w| w.keys().map(|(page, _)| page.to_string())).collect();
        pages.sort();
        pages
    }

    #[test]
    fn key_groups_move_to_their_new_owners_as_the_spec_vectors_say() {
        let state = window_state();
        // Spec §8: /help → 1, 2, 3; /index → 0, 0, 0; /shop → 1, 1, 2; /jobs → 0, 0, 0;
        // /about → 0, 1, 1; /news → 0, 0, 1 at p = 2, 3, 4.
        let owners = [(2, vec![vec!["/about", "/index", "/jobs", "/news"], vec!["/help", "/shop"]]),
            (3, vec![vec!["/index", "/jobs", "/news"], vec!["/about", "/shop"], vec!["/help"]]),
            (4, vec![vec!["/index", "/jobs"], vec!["/about", "/news"], vec!["/shop"], vec!["/help"]])];
        for (p, expected) in owners {
            for (i, pages) in expected.iter().enumerate() {
                assert_eq!(pages_of(&state, p, i as u32), *pages, "p={p} subtask {i}");
            }
        }
        assert_eq!(pages_of(&state, 1, 0).len(), 6, "p=1 takes every key group");
    }

    #[test]
    fn source_partitions_move_to_their_new_owners_as_the_spec_says() {
        // Spec §8: p=1 both on 0; p=2 0 → 0, 1 → 1; p=3 0 → 0, 1 → 1 (2 idle); p=4 0 → 2, 1 → 3.
        let owners = |p| (0..2).map(|partition| kafka_partition_owner("input", partition, p)).collect::<Vec<_>>();
        assert_eq!(owners(1), [0, 0]);
        assert_eq!(owners(2), [0, 1]);
        assert_eq!(owners(3), [0, 1]);
        assert_eq!(owners(4), [2, 3]);
    }

    #[test]
    fn a_window_state_round_trips_through_json_with_its_timers() {
        let state = window_state();
        let json = serde_json::to_string(&TaskSnapshot::Counter(state.clone())).unwrap();
        assert!(json.contains(r#""111":[{"page":"/help","window_start_ms":15000,"count":7,"timer_ms":29999}]"#), "{json}");
        assert_eq!(serde_json::from_str::<TaskSnapshot>(&json).unwrap(), TaskSnapshot::Counter(state));
    }

    fn metadata() -> CheckpointMetadata {
        let handle = StateHandle { path: "/x/clickevent-source-0".into(), size: 10 };
        CheckpointMetadata {
            format_version: FORMAT_VERSION,
            job_id: JobId(0xabcdef12_3456_7890_abcd_ef1234567890),
            checkpoint_id: 9,
            kind: SnapshotKind::Savepoint { token: 0x1234_5678_9abc, drain: false },
            timestamp_ms: 1000,
            parallelism: 1,
            max_parallelism: 128,
            operators: BTreeMap::from([(operator_id(Vertex::Source).to_owned(), BTreeMap::from([(0, handle)]))]),
        }
    }

    #[test]
    fn metadata_round_trips_and_names_operators_by_their_stable_ids() {
        let m = metadata();
        let bytes = m.encode();
        assert!(String::from_utf8_lossy(&bytes).contains(r#""format_version":1"#));
        assert_eq!(CheckpointMetadata::decode("/p/_metadata", &bytes).unwrap(), m);
        assert_eq!(m.states_of(Vertex::Source).len(), 1);
        assert!(m.states_of(Vertex::Counter).is_empty());
        assert_eq!(vertex_of("clickevent-counter"), Some(Vertex::Counter));
        assert_eq!(vertex_of("Counter"), None);
    }

    /// Strings that serde_json writes as they are, and ones it escapes.
    const STRINGS: [&str; 7] = ["", "/x/clickevent-source-0", "quote\"d", "back\\slash", "tab\tnew\nline\u{1}", "é/ü\u{7f}", "/ok"];

    #[test]
    fn metadata_is_written_as_serde_json_writes_it() {
        let mut kinds = vec![SnapshotKind::Checkpoint];
        kinds.extend([true, false].map(|drain| SnapshotKind::Savepoint { token: u64::MAX, drain }));
        for kind in kinds {
            let mut m = metadata();
            assert_eq!(m.encode(), serde_json::to_vec(&m).unwrap());
            m.kind = kind;
            m.job_id = JobId(u128::MAX);
            m.timestamp_ms = -5;
            m.operators.clear();
            assert_eq!(m.encode(), serde_json::to_vec(&m).unwrap());
            for (i, s) in STRINGS.into_iter().enumerate() {
                let handles = (0..i as u32).map(|t| (t * 7, StateHandle { path: s.to_owned(), size: u64::from(t) }));
                m.operators.insert(s.to_owned(), handles.collect());
            }
            m.operators.insert("empty".to_owned(), BTreeMap::new());
            assert_eq!(String::from_utf8(m.encode()).unwrap(), serde_json::to_string(&m).unwrap());
        }
    }

    #[test]
    fn task_snapshots_are_written_as_serde_json_writes_them() {
        let handle = |s: &str, n: i64| TransactionHandle { transactional_id: s.into(), producer_id: n, epoch: n as i16 };
        let mut state = window_state();
        for (i, s) in STRINGS.into_iter().enumerate() {
            state.key_groups.entry(KeyGroup(i as u32 * 40)).or_default().insert((s.into(), -60_000 * i as i64), i as u64);
        }
        let snapshots = [
            TaskSnapshot::Source { offsets: BTreeMap::new() },
            TaskSnapshot::Source { offsets: BTreeMap::from([(0, 0), (1, u64::MAX), (u32::MAX, 17)]) },
            TaskSnapshot::TimestampsWatermarks,
            TaskSnapshot::Backpressure,
            TaskSnapshot::Counter(WindowState::default()),
            TaskSnapshot::Counter(window_state()),
            TaskSnapshot::Counter(state),
            TaskSnapshot::Sink { pending: BTreeMap::new() },
            TaskSnapshot::Sink {
                pending: STRINGS.into_iter().enumerate().map(|(i, s)| (i as u64 * 3, handle(s, i as i64 - 3))).collect(),
            },
        ];
        for snapshot in snapshots {
            assert_eq!(String::from_utf8(snapshot.encode()).unwrap(), serde_json::to_string(&snapshot).unwrap());
        }
    }

    #[test]
    fn truncated_or_foreign_metadata_is_refused_naming_the_path() {
        let bytes = metadata().encode();
        let truncated = CheckpointMetadata::decode("/p/_metadata", &bytes[..bytes.len() / 2]).unwrap_err();
        assert!(truncated.to_string().starts_with("/p/_metadata is corrupt: "), "{truncated}");
        let text = String::from_utf8(bytes).unwrap().replace(r#""format_version":1"#, r#""format_version":7"#);
        assert_eq!(
            CheckpointMetadata::decode("/p/_metadata", text.as_bytes()).unwrap_err().to_string(),
            "/p/_metadata has snapshot format version 7, this reader knows version 1"
        );
    }

    #[test]
    fn a_savepoint_lies_under_the_savepoints_directory_named_by_job_and_token() {
        let m = metadata();
        assert_eq!(
            snapshot_dir(m.job_id, 9, m.kind),
            "/tmp/flink-savepoints-directory/savepoint-abcdef-123456789abc"
        );
    }
}
