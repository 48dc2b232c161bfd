//! One partition's append-only log on the broker's disk (docs/model/kafka.md#overview): offsets
//! from 0, the high watermark, segments that survive a broker restart, idempotent-producer
//! deduplication, and transactions: open transactions' first offsets (the last stable offset) and
//! the aborted-transaction index. Records live only in the segment files; memory holds one small
//! index entry per batch, and all transaction state is rebuilt from the batches on open.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;

use bytes::Bytes;
use futures_util::FutureExt;
use madsim::fs::File;
use smol_str::SmolStr;

use crate::cell;
use crate::protocol::kafka::{
    ATTRIBUTE_CONTROL, ATTRIBUTE_TRANSACTIONAL, AbortedTransaction, BATCH_HEADER_BYTES,
    BatchHeader, ControlType, KafkaError, NO_PRODUCER_ID, ProduceAck, RecordBatch, TopicPartition,
    control_batch, set_base_offset,
};

/// Segment size (Kafka's `log.segment.bytes` is 1 GiB). A segment file is allocated whole when
/// it opens, because madsim keeps a file in a `Vec` that doubles as it grows: preallocating
/// wastes only the active segment's unused tail, where growing would waste up to half of all
/// (measured: segments grown from a sixteenth of this by appends left an hour's run 12 MB larger).
pub const SEGMENT_BYTES_DEFAULT: u32 = 1 << 20;

/// The most bytes a read copies at once: below glibc's threshold (4 KiB) for copying with
/// `rep movsb`, which callgrind counts once per byte, where a loop of vector moves costs about a
/// tenth of that. The whole file copied at once for 20 large reads in 5 simulated minutes cost
/// 8.4 M instructions; chunked, the run costs 5.6 M fewer (callgrind profiles).
const READ_CHUNK: usize = 4032;

/// One batch's place in its segment (8 bytes, the only per-batch memory the log keeps).
#[derive(Clone, Copy, Debug)]
struct BatchEntry {
    /// The batch's base offset minus the segment's base offset.
    offset_delta: u32,
    /// Where the batch starts in the segment file.
    position: u32,
}

/// A segment file, named by the offset of its first record.
struct Segment {
    base_offset: u64,
    file: File,
    /// Bytes of valid batches; anything after (zeros, or a torn write) is never read.
    size: u32,
    /// The file's preallocated length (0 for a recovered segment, which is never appended to).
    capacity: u32,
    batches: Vec<BatchEntry>,
}

/// What the log remembers about an idempotent producer on this partition: its newest epoch
/// and that epoch's last data batch (`None`: none yet, so the next must start at sequence 0).
#[derive(Clone, Copy, Debug)]
struct ProducerState {
    epoch: i16,
    last: Option<LastBatch>,
}

#[derive(Clone, Copy, Debug)]
struct LastBatch {
    base_sequence: i32,
    record_count: u32,
    base_offset: u64,
}

/// A partition's log: segment files on disk, an index per segment, and producer state.
pub struct PartitionLog {
    partition: TopicPartition,
    segment_bytes: u32,
    segments: Vec<Segment>,
    /// Whether the last segment was opened for writing by this incarnation of the broker:
    /// `File::open` is read-only, so every start appends to a new segment.
    active: bool,
    next_offset: u64,
    producers: BTreeMap<i64, ProducerState>,
    /// Open transactions on this partition: producer id → offset of its first batch.
    open_transactions: BTreeMap<i64, u64>,
    /// Transactions ended by an abort marker, in marker order (so by `last_offset`).
    aborted: Vec<AbortedTransaction>,
    manifest_generation: u64,
    /// The log's last batch as written (its header with its offset, then its body), until a
    /// read takes it: a consumer in step with the producer fetches just that batch, which is
    /// then handed over instead of copied out of the segment file. Taken rather than shared: a
    /// shared `Bytes` allocates its reference count at its first clone, one allocation more per
    /// batch. None after a start, and once taken (later reads copy from the file).
    last: Cell<Option<Bytes>>,
    /// The base offset of the batch `last` holds (or held).
    last_base: u64,
}

impl PartitionLog {
    /// Opens the partition's log from disk (recovering its index and producer state from the
    /// batch headers), or starts an empty one. Appends go to a new segment, opened lazily.
    pub async fn open(partition: TopicPartition, segment_bytes: u32) -> Result<Self, KafkaError> {
        let storage = |e: std::io::Error| storage_error(&partition, e);
        let (manifest_generation, bases) =
            cell::read::<Vec<u64>>(&manifest_path(&partition)).await.unwrap_or((0, Vec::new()));
        let mut log = PartitionLog {
            partition: partition.clone(),
            segment_bytes,
            segments: Vec::new(),
            active: false,
            next_offset: 0,
            last: Cell::new(None),
            last_base: 0,
            producers: BTreeMap::new(),
            open_transactions: BTreeMap::new(),
            aborted: Vec::new(),
            manifest_generation,
        };
        for base_offset in bases {
            // Segments are contiguous by construction; one that is not (or a missing file) ends
            // the log there, and the next segment is written over anything after it.
            if base_offset != log.next_offset {
                break;
            }
            let Ok(file) = File::open(segment_path(&partition, base_offset)).await else {
                break;
            };
            let len = file.metadata().await.map_err(storage)?.len();
            let mut segment =
                Segment { base_offset, file, size: 0, capacity: 0, batches: Vec::new() };
            let mut header = [0u8; BATCH_HEADER_BYTES];
            let mut position = 0u64;
            while position + BATCH_HEADER_BYTES as u64 <= len {
                segment.file.read_at(&mut header, position).await.map_err(storage)?;
                let Ok(h) = BatchHeader::decode(&header) else {
                    break;
                };
                let end = position + u64::from(h.batch_length);
                if h.base_offset != log.next_offset || h.record_count == 0 || end > len {
                    break;
                }
                // A marker's kind is in its one record: read the (tiny) batch whole.
                let control = if h.is_control() {
                    let mut bytes = vec![0u8; h.batch_length as usize];
                    segment.file.read_at(&mut bytes, position).await.map_err(storage)?;
                    let parsed = RecordBatch::parse(Bytes::from(bytes)).ok();
                    match parsed.and_then(|b| b.control_type()) {
                        Some(control) => Some(control),
                        None => break, // torn or garbled: the log ends here
                    }
                } else {
                    None
                };
                segment.batches.push(BatchEntry {
                    offset_delta: (h.base_offset - base_offset) as u32,
                    position: position as u32,
                });
                log.remember_producer(&h);
                log.track_transaction(&h, control);
                log.next_offset = h.next_offset();
                position = end;
            }
            segment.size = position as u32;
            log.segments.push(segment);
        }
        Ok(log)
    }

    /// The partition this log holds.
    pub fn partition(&self) -> &TopicPartition {
        &self.partition
    }

    /// The next offset to be written (replication 1, so every appended record is committed).
    pub fn high_watermark(&self) -> u64 {
        self.next_offset
    }

    /// How many segment files the log has.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The highest producer id seen in this partition, if any.
    pub fn max_producer_id(&self) -> Option<i64> {
        self.producers.keys().next_back().copied()
    }

    /// The first offset of the oldest transaction still open here, else the high watermark:
    /// `ReadCommitted` readers see nothing from here on.
    pub fn last_stable_offset(&self) -> u64 {
        self.open_transactions.values().copied().min().unwrap_or(self.next_offset)
    }

    /// Whether `producer_id` has a transaction open on this partition.
    pub fn has_open_transaction(&self, producer_id: i64) -> bool {
        self.open_transactions.contains_key(&producer_id)
    }

    /// The aborted transactions that may hold batches in `from..to`: those whose abort marker
    /// is at or after `from` and whose first batch is before `to`, by first offset.
    pub fn aborted_transactions(&self, from: u64, to: u64) -> Vec<AbortedTransaction> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        let mut found: Vec<AbortedTransaction> =
            self.aborted[start..].iter().filter(|a| a.first_offset < to).copied().collect();
        found.sort_by_key(|a| (a.first_offset, a.producer_id));
        found
    }

    /// Appends one produced batch, assigning its offsets; a batch that repeats an idempotent
    /// producer's last batch is acknowledged with its original offset and not written again.
    /// Transactional batches are accepted as they come (the broker's coordinator checks them
    /// first); control batches are refused: only [`write_marker`](Self::write_marker) writes them.
    pub fn append(&mut self, batch: Bytes) -> Result<ProduceAck, KafkaError> {
        let parsed = self.parse_produced(batch)?;
        self.append_parsed(parsed)
    }

    /// Checks that `batch` is one well-formed batch a producer may send.
    pub fn parse_produced(&self, batch: Bytes) -> Result<RecordBatch, KafkaError> {
        let corrupt = |reason: &str| KafkaError::CorruptBatch {
            partition: self.partition.clone(),
            reason: SmolStr::new(reason),
        };
        let parsed = RecordBatch::parse(batch).map_err(corrupt)?;
        let h = parsed.header();
        if h.attributes & ATTRIBUTE_CONTROL != 0 {
            return Err(corrupt("control batches are written by the broker only"));
        }
        if h.attributes & !ATTRIBUTE_TRANSACTIONAL != 0 {
            return Err(corrupt("unknown attribute bits"));
        }
        if h.is_transactional() && h.producer_id == NO_PRODUCER_ID {
            return Err(corrupt("a transactional batch needs a producer id"));
        }
        Ok(parsed)
    }

    /// `Some(base offset)` if this batch repeats its producer's last batch (a retry), `None`
    /// if it is the next one; an error if it is out of order or from a fenced epoch.
    pub fn duplicate_of(&self, h: &BatchHeader) -> Result<Option<u64>, KafkaError> {
        self.check_sequence(h)
    }

    /// Writes a commit or abort marker for `producer_id`'s open transaction here, at `epoch`
    /// (the coordinator's current epoch, which fences older ones on this partition too).
    /// Without an open transaction of that producer it writes nothing and returns `None`, so
    /// ending a transaction again never writes a second marker.
    pub fn write_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        control: ControlType,
        timestamp_ms: i64,
    ) -> Result<Option<u64>, KafkaError> {
        if !self.has_open_transaction(producer_id) {
            return Ok(None);
        }
        let bytes = control_batch(producer_id, epoch, control, timestamp_ms);
        let parsed = RecordBatch::parse(bytes).expect("a control batch is well formed");
        let base_offset = self.write(parsed, Some(control))?;
        Ok(Some(base_offset))
    }

    /// Appends a batch that passed [`parse_produced`](Self::parse_produced).
    pub fn append_parsed(&mut self, parsed: RecordBatch) -> Result<ProduceAck, KafkaError> {
        let h = *parsed.header();
        if let Some(duplicate_of) = self.check_sequence(&h)? {
            return Ok(ProduceAck { base_offset: duplicate_of, duplicate: true });
        }
        let base_offset = self.write(parsed, None)?;
        Ok(ProduceAck { base_offset, duplicate: false })
    }

    /// Writes one batch at the high watermark and updates the index, producer and
    /// transaction state; returns its base offset.
    fn write(
        &mut self,
        parsed: RecordBatch,
        control: Option<ControlType>,
    ) -> Result<u64, KafkaError> {
        let h = *parsed.header();
        let len = h.batch_length;
        let needs_roll = match self.segments.last() {
            None => true,
            Some(last) => {
                !self.active
                    || u64::from(last.size) + u64::from(len) > u64::from(last.capacity)
                    || self.next_offset + u64::from(h.record_count) - last.base_offset
                        > u64::from(u32::MAX)
            }
        };
        if needs_roll {
            self.roll(len)?;
        }
        let base_offset = self.next_offset;
        let segment = self.segments.last_mut().expect("roll leaves an active segment");
        let mut header: [u8; BATCH_HEADER_BYTES] =
            parsed.bytes()[..BATCH_HEADER_BYTES].try_into().expect("parse checked the length");
        set_base_offset(&mut header, base_offset);
        let position = segment.size;
        let mut written = Vec::with_capacity(len as usize);
        written.extend_from_slice(&header);
        written.extend_from_slice(&parsed.bytes()[BATCH_HEADER_BYTES..]);
        at_once(segment.file.write_all_at(&written, u64::from(position)))
            .map_err(|e| storage_error(&self.partition, e))?;
        self.last.set(Some(Bytes::from(written)));
        self.last_base = base_offset;
        segment.batches.push(BatchEntry {
            offset_delta: (base_offset - segment.base_offset) as u32,
            position,
        });
        segment.size += len;
        let h = BatchHeader { base_offset, ..h };
        self.remember_producer(&h);
        self.track_transaction(&h, control);
        self.next_offset += u64::from(h.record_count);
        Ok(base_offset)
    }

    /// Whole batches from the one holding `offset`, up to `max_bytes` (at least one batch, so a
    /// large batch cannot stall a consumer). Empty at the high watermark.
    pub fn read(&self, offset: u64, max_bytes: u32) -> Result<Bytes, KafkaError> {
        self.read_until(offset, max_bytes, self.next_offset)
    }

    /// [`read`](Self::read), returning only batches that start before `end` (the last stable
    /// offset for a `ReadCommitted` fetch, which always falls on a batch boundary). Empty at or
    /// past `end`; an offset past the high watermark is still out of range.
    pub fn read_until(
        &self,
        offset: u64,
        max_bytes: u32,
        end: u64,
    ) -> Result<Bytes, KafkaError> {
        if offset > self.next_offset {
            return Err(KafkaError::OffsetOutOfRange {
                partition: self.partition.clone(),
                offset,
                high_watermark: self.next_offset,
            });
        }
        if offset >= self.next_offset.min(end) {
            return Ok(Bytes::new());
        }
        // In the last batch (below `end`, as checked): the read is that batch alone, at least one
        // batch being read whatever `max_bytes`. Handed over rather than copied out of the file,
        // which cost about 400 instructions a fetch (madsim's read, a zeroed buffer, the index's
        // two searches).
        if offset >= self.last_base
            && let Some(batch) = self.last.take()
        {
            return Ok(batch);
        }
        let seg_index = self.segments.partition_point(|s| s.base_offset <= offset);
        let Some(segment) = seg_index.checked_sub(1).map(|i| &self.segments[i]) else {
            return Ok(Bytes::new());
        };
        let first = segment
            .batches
            .partition_point(|b| segment.base_offset + u64::from(b.offset_delta) <= offset);
        let Some(first) = first.checked_sub(1) else {
            return Ok(Bytes::new());
        };
        let end_of = |i: usize| segment.batches.get(i + 1).map_or(segment.size, |b| b.position);
        let base_of = |i: usize| segment.base_offset + u64::from(segment.batches[i].offset_delta);
        let start = segment.batches[first].position;
        let mut last = first;
        while last + 1 < segment.batches.len()
            && base_of(last + 1) < end
            && end_of(last + 1) - start <= max_bytes
        {
            last += 1;
        }
        let end = end_of(last);
        if end <= start {
            return Ok(Bytes::new());
        }
        if end - start > READ_CHUNK as u32 {
            return self.read_chunked(segment, start, end);
        }
        let mut buf = vec![0u8; (end - start) as usize];
        at_once(segment.file.read_at(&mut buf, u64::from(start)))
            .map_err(|e| storage_error(&self.partition, e))?;
        Ok(Bytes::from(buf))
    }

    /// Bytes `start..end` of `segment`, copied a [`READ_CHUNK`] at a time into a buffer of
    /// their length that is never zeroed.
    fn read_chunked(&self, segment: &Segment, start: u32, end: u32) -> Result<Bytes, KafkaError> {
        let mut bytes = Vec::with_capacity((end - start) as usize);
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut at = start;
        while at < end {
            let len = READ_CHUNK.min((end - at) as usize);
            let chunk = &mut chunk[..len];
            at_once(segment.file.read_at(chunk, u64::from(at)))
                .map_err(|e| storage_error(&self.partition, e))?;
            bytes.extend_from_slice(chunk);
            at += len as u32;
        }
        Ok(Bytes::from(bytes))
    }

    /// `Some(base offset)` if `h` repeats the producer's last batch; an error if it skips ahead,
    /// rewinds further, or comes from a fenced epoch.
    fn check_sequence(&self, h: &BatchHeader) -> Result<Option<u64>, KafkaError> {
        if h.producer_id == NO_PRODUCER_ID {
            return Ok(None);
        }
        let out_of_order = |expected: i32| KafkaError::OutOfOrderSequence {
            partition: self.partition.clone(),
            producer_id: h.producer_id,
            expected,
            got: h.base_sequence,
        };
        let Some(state) = self.producers.get(&h.producer_id) else {
            // No state means this producer never wrote here: the log is never truncated.
            return if h.base_sequence == 0 { Ok(None) } else { Err(out_of_order(0)) };
        };
        let fenced = h.producer_epoch < state.epoch;
        if fenced {
            return Err(KafkaError::ProducerFenced {
                partition: self.partition.clone(),
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: state.epoch,
            });
        }
        let last = match state.last {
            Some(last) if h.producer_epoch == state.epoch => last,
            // A new epoch (or one only a marker has used so far) starts at sequence 0.
            _ => return if h.base_sequence == 0 { Ok(None) } else { Err(out_of_order(0)) },
        };
        // One request in flight per producer, so only its last batch can come again.
        if h.base_sequence == last.base_sequence && h.record_count == last.record_count {
            return Ok(Some(last.base_offset));
        }
        let expected = last.base_sequence.wrapping_add(last.record_count as i32);
        if h.base_sequence == expected { Ok(None) } else { Err(out_of_order(expected)) }
    }

    fn remember_producer(&mut self, h: &BatchHeader) {
        if h.producer_id == NO_PRODUCER_ID {
            return;
        }
        if h.is_control() {
            // A marker carries no sequence; a newer epoch in it fences the older ones here.
            let newer =
                self.producers.get(&h.producer_id).is_none_or(|s| h.producer_epoch > s.epoch);
            if newer {
                let state = ProducerState { epoch: h.producer_epoch, last: None };
                self.producers.insert(h.producer_id, state);
            }
            return;
        }
        let last = LastBatch {
            base_sequence: h.base_sequence,
            record_count: h.record_count,
            base_offset: h.base_offset,
        };
        let state = ProducerState { epoch: h.producer_epoch, last: Some(last) };
        // Updated in place when known (every batch but a producer's first here): cheaper than
        // an insert's replacing of the value.
        match self.producers.get_mut(&h.producer_id) {
            Some(known) => *known = state,
            None => {
                self.producers.insert(h.producer_id, state);
            }
        }
    }

    /// Keeps the open transactions and the aborted-transaction index up to date with one
    /// appended (or recovered) batch.
    fn track_transaction(&mut self, h: &BatchHeader, control: Option<ControlType>) {
        if !h.is_transactional() {
            return;
        }
        match control {
            None if h.is_control() => {}
            None => {
                self.open_transactions.entry(h.producer_id).or_insert(h.base_offset);
            }
            Some(control) => {
                let Some(first_offset) = self.open_transactions.remove(&h.producer_id) else {
                    return;
                };
                if control == ControlType::Abort {
                    self.aborted.push(AbortedTransaction {
                        producer_id: h.producer_id,
                        first_offset,
                        last_offset: h.base_offset,
                    });
                }
            }
        }
    }

    /// Opens a new segment at the high watermark, big enough for a first batch of `len` bytes,
    /// and lists it in the manifest before any batch is written to it, so recovery finds every
    /// acknowledged record.
    fn roll(&mut self, len: u32) -> Result<(), KafkaError> {
        let base_offset = self.next_offset;
        let capacity = self.segment_bytes.max(len);
        let storage = |e| storage_error(&self.partition, e);
        let file = at_once(File::create(segment_path(&self.partition, base_offset))).map_err(storage)?;
        // Zeros after the last batch read as an invalid header, which is where recovery stops.
        at_once(file.set_len(u64::from(capacity))).map_err(storage)?;
        let segment = Segment { base_offset, file, size: 0, capacity, batches: Vec::new() };
        match self.segments.last_mut() {
            // An empty last segment has this same base (it was never written to, or its tail was
            // torn), so the file just re-created is that segment's.
            Some(last) if last.base_offset == base_offset => *last = segment,
            _ => self.segments.push(segment),
        }
        let bases: Vec<u64> = self.segments.iter().map(|s| s.base_offset).collect();
        self.manifest_generation += 1;
        at_once(cell::write(&manifest_path(&self.partition), self.manifest_generation, &bases))
            .map_err(|e| storage_error(&self.partition, e))?;
        self.active = true;
        Ok(())
    }
}

/// Runs one of madsim's file operations (or a cell's write, made of them) to its end at once:
/// madsim's simulated disk has no delays, so each finishes when first polled. Done at once, the
/// log's append and read are plain functions, and the broker's produce and fetch futures hold no
/// futures of the log's (an append's future, four nested, was copied into the produce's state on
/// every produce).
fn at_once<F: Future>(operation: F) -> F::Output {
    operation.now_or_never().expect("madsim's file operations finish when first polled")
}

fn storage_error(partition: &TopicPartition, error: std::io::Error) -> KafkaError {
    KafkaError::Storage {
        what: SmolStr::new(partition.to_string()),
        reason: SmolStr::new(error.to_string()),
    }
}

fn segment_path(partition: &TopicPartition, base_offset: u64) -> String {
    format!("kafka/{partition}/{base_offset:020}.log")
}

fn manifest_path(partition: &TopicPartition) -> String {
    format!("kafka/{partition}/manifest")
}

/// The broker's partition logs, in partition order. A handful of partitions, found by a scan:
/// cheaper than a map's search, which orders by name first (a callgrind profile: 0.6% of a run,
/// two searches per produce and fetch).
pub(super) struct PartitionLogs {
    logs: Vec<(TopicPartition, LogLock)>,
}

/// A partition's log behind the engine's lock rather than an async one: no code holds a log
/// across an `.await` (the guard is not `Send`, so a handler that did would not compile), and
/// taking it costs no atomic instruction (two per produce and per fetch with futures-util's).
pub(super) type LogLock = crate::lock::Mutex<PartitionLog>;

impl PartitionLogs {
    /// The logs of `logs`' partitions, each once (the last of repeats is kept, as a map's
    /// insert keeps it).
    pub(super) fn new(logs: Vec<(TopicPartition, LogLock)>) -> Self {
        let mut unique: Vec<(TopicPartition, LogLock)> = Vec::with_capacity(logs.len());
        for (tp, log) in logs {
            match unique.iter_mut().find(|(known, _)| *known == tp) {
                Some((_, kept)) => *kept = log,
                None => unique.push((tp, log)),
            }
        }
        unique.sort_by(|(a, _), (b, _)| a.cmp(b));
        PartitionLogs { logs: unique }
    }

    /// How many partitions there are.
    pub(super) fn len(&self) -> usize {
        self.logs.len()
    }

    /// `tp`'s place among the partitions, if the broker has it: the purgatory knows the
    /// partitions by the same places, so a request finds each of its partitions once.
    pub(super) fn index(&self, tp: &TopicPartition) -> Option<usize> {
        self.logs.iter().position(|(known, _)| known == tp)
    }

    /// The log at `index` (a place [`index`](Self::index) gave).
    pub(super) fn at(&self, index: usize) -> &LogLock {
        &self.logs[index].1
    }

    /// `tp`'s log, if the broker has the partition.
    pub(super) fn get(&self, tp: &TopicPartition) -> Option<&LogLock> {
        self.index(tp).map(|index| self.at(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::kafka::{BatchBuilder, RecordBatches};

    // ATTRIBUTE_TRANSACTIONAL, AbortedTransaction, ControlType and control_batch come from
    // the parent module's imports.

    fn batch(producer_id: i64, base_sequence: i32, values: &[&str]) -> Bytes {
        let mut builder = BatchBuilder::new();
        for (i, value) in values.iter().enumerate() {
            builder.append(i as i64, value.as_bytes());
        }
        builder.finish(producer_id, 0, base_sequence)
    }

    fn values(bytes: Bytes) -> Vec<(u64, String)> {
        RecordBatches::new(bytes)
            .flat_map(|b| {
                let batch = b.unwrap();
                batch
                    .records()
                    .map(|r| (r.offset, String::from_utf8(r.value.to_vec()).unwrap()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn segments_roll_and_a_reopened_log_reads_the_same_bytes() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let tp = TopicPartition::new("input", 0);
            let mut log = PartitionLog::open(tp.clone(), 200).await.unwrap();
            for i in 0..20 {
                let ack = log.append(batch(NO_PRODUCER_ID, 0, &["aaaaaaaaaa"; 3])).unwrap();
                assert_eq!(ack.base_offset, 3 * i);
            }
            assert_eq!(log.high_watermark(), 60);
            let segments = log.segment_count();
            assert!(segments > 3, "200-byte segments roll: {segments}");
            let before = log.read(31, u32::MAX).unwrap();
            assert_eq!(values(before.clone())[0].0, 30, "reads start at the batch holding 31");

            let mut reopened = PartitionLog::open(tp.clone(), 200).await.unwrap();
            assert_eq!(reopened.high_watermark(), 60);
            assert_eq!(reopened.read(31, u32::MAX).unwrap(), before);
            let ack = reopened.append(batch(NO_PRODUCER_ID, 0, &["b"])).unwrap();
            assert_eq!(ack.base_offset, 60);
            assert_eq!(
                reopened.segment_count(),
                segments + 1,
                "a restart appends to a new segment"
            );
            let again = PartitionLog::open(tp, 200).await.unwrap();
            assert_eq!(values(again.read(60, 1).unwrap()), [(60, "b".to_string())]);
            assert!(again.read(61, 1).unwrap().is_empty());
            assert!(matches!(again.read(62, 1), Err(KafkaError::OffsetOutOfRange { .. })));
        });
    }

    #[test]
    fn read_returns_whole_batches_up_to_max_bytes_but_at_least_one() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let mut log = PartitionLog::open(TopicPartition::new("t", 0), 1 << 20).await.unwrap();
            let one = batch(NO_PRODUCER_ID, 0, &["0123456789"; 2]);
            let len = one.len() as u32;
            for _ in 0..5 {
                log.append(one.clone()).unwrap();
            }
            assert_eq!(log.read(0, 1).unwrap().len() as u32, len);
            assert_eq!(log.read(0, 3 * len).unwrap().len() as u32, 3 * len);
            assert_eq!(log.read(0, 3 * len - 1).unwrap().len() as u32, 2 * len);
            assert_eq!(values(log.read(9, u32::MAX).unwrap()).len(), 2);
        });
    }

    #[test]
    fn a_large_read_holds_the_same_bytes_as_its_batches_read_one_by_one() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let mut log = PartitionLog::open(TopicPartition::new("t", 0), 1 << 20).await.unwrap();
            for _ in 0..100 {
                log.append(batch(NO_PRODUCER_ID, 0, &["0123456789abcdef0123456789abcdef"; 5])).unwrap();
            }
            let whole = log.read(0, u32::MAX).unwrap();
            assert!(whole.len() > 3 * READ_CHUNK, "read in several chunks: {}", whole.len());
            let mut one_by_one = Vec::new();
            for offset in (0..log.high_watermark()).step_by(5) {
                one_by_one.extend_from_slice(&log.read(offset, 1).unwrap());
            }
            assert_eq!(whole, one_by_one);
            assert_eq!(values(log.read(7, u32::MAX).unwrap()).len(), 495);
        });
    }

    #[test]
    fn the_last_batch_read_as_kept_holds_what_its_file_holds() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let tp = TopicPartition::new("t", 0);
            let mut log = PartitionLog::open(tp.clone(), 1 << 20).await.unwrap();
            log.append(batch(NO_PRODUCER_ID, 0, &["a", "b"])).unwrap();
            log.append(batch(NO_PRODUCER_ID, 0, &["c", "d", "e"])).unwrap();
            assert!(log.read_until(2, u32::MAX, 2).unwrap().is_empty(), "not below `end`");
            let kept = log.read(3, 1).unwrap();
            assert_eq!(values(kept.clone()), [(2, "c".into()), (3, "d".into()), (4, "e".into())]);
            assert_eq!(log.read(2, 1).unwrap(), kept, "read again, from the file");
            // Reopened, the log has no batch kept and reads the segment file.
            let reopened = PartitionLog::open(tp, 1 << 20).await.unwrap();
            assert_eq!(reopened.read(3, 1).unwrap(), kept);
            assert_eq!(reopened.read(0, u32::MAX).unwrap(), log.read(0, u32::MAX).unwrap());
        });
    }

    #[test]
    fn a_repeated_batch_is_dropped_even_after_reopening_the_log() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let tp = TopicPartition::new("input", 1);
            let mut log = PartitionLog::open(tp.clone(), 1 << 20).await.unwrap();
            log.append(batch(5, 0, &["a", "b"])).unwrap();
            let second = batch(5, 2, &["c"]);
            assert_eq!(log.append(second.clone()).unwrap().base_offset, 2);
            let retry = log.append(second.clone()).unwrap();
            assert_eq!(retry, ProduceAck { base_offset: 2, duplicate: true });

            let mut reopened = PartitionLog::open(tp, 1 << 20).await.unwrap();
            let retry = reopened.append(second).unwrap();
            assert_eq!(retry, ProduceAck { base_offset: 2, duplicate: true });
            assert_eq!(reopened.high_watermark(), 3);
            assert!(matches!(
                reopened.append(batch(5, 7, &["gap"])),
                Err(KafkaError::OutOfOrderSequence { expected: 3, got: 7, .. })
            ));
            assert!(matches!(
                reopened.append(batch(6, 1, &["new producer must start at 0"])),
                Err(KafkaError::OutOfOrderSequence { expected: 0, .. })
            ));
            assert_eq!(reopened.append(batch(5, 3, &["d"])).unwrap().base_offset, 3);
            assert_eq!(reopened.max_producer_id(), Some(5));
        });
    }

    fn txn_batch(producer_id: i64, epoch: i16, base_sequence: i32, values: &[&str]) -> Bytes {
        let mut builder = BatchBuilder::new();
        for value in values {
            builder.append(0, value.as_bytes());
        }
        builder.finish_with_attributes(producer_id, epoch, base_sequence, ATTRIBUTE_TRANSACTIONAL)
    }

    #[test]
    fn markers_open_transactions_and_the_aborted_index_are_rebuilt_when_the_log_reopens() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let tp = TopicPartition::new("output", 0);
            let mut log = PartitionLog::open(tp.clone(), 1 << 20).await.unwrap();
            log.append(txn_batch(5, 0, 0, &["a", "b"])).unwrap(); // 0-1
            log.append(txn_batch(6, 0, 0, &["c"])).unwrap(); // 2
            log.append(batch(NO_PRODUCER_ID, 0, &["plain"])).unwrap(); // 3
            log.append(txn_batch(5, 0, 2, &["d"])).unwrap(); // 4
            assert_eq!(log.last_stable_offset(), 0);
            // Producer 5's transaction is aborted (marker at 5, with the bumped epoch 1).
            assert_eq!(log.write_marker(5, 1, ControlType::Abort, 0).unwrap(), Some(5));
            assert_eq!(log.write_marker(5, 1, ControlType::Abort, 0).unwrap(), None);
            assert_eq!(log.last_stable_offset(), 2, "producer 6's transaction is still open");
            assert!(matches!(
                log.append(txn_batch(5, 0, 3, &["zombie"])),
                Err(KafkaError::ProducerFenced { epoch: 0, current: 1, .. })
            ));
            assert_eq!(log.append(txn_batch(5, 1, 0, &["e"])).unwrap().base_offset, 6);
            let control = control_batch(9, 0, ControlType::Commit, 0);
            assert!(matches!(log.append(control), Err(KafkaError::CorruptBatch { .. })));
            let before = log.read_until(0, u32::MAX, log.last_stable_offset()).unwrap();
            assert_eq!(values(before.clone()), [(0, "a".into()), (1, "b".into())]);

            let mut reopened = PartitionLog::open(tp, 1 << 20).await.unwrap();
            assert_eq!(reopened.high_watermark(), 7);
            assert_eq!(reopened.last_stable_offset(), 2);
            let aborted = AbortedTransaction { producer_id: 5, first_offset: 0, last_offset: 5 };
            assert_eq!(reopened.aborted_transactions(0, 7), [aborted]);
            assert_eq!(reopened.aborted_transactions(6, 7), []);
            assert!(reopened.has_open_transaction(5) && reopened.has_open_transaction(6));
            assert_eq!(reopened.read_until(0, u32::MAX, 2).unwrap(), before);
            assert!(reopened.read_until(2, u32::MAX, 2).unwrap().is_empty());
            // The reopened log still fences epoch 0 and continues epoch 1's sequence.
            assert!(matches!(
                reopened.append(txn_batch(5, 0, 3, &["zombie"])),
                Err(KafkaError::ProducerFenced { .. })
            ));
            let retry = reopened.append(txn_batch(5, 1, 0, &["e"])).unwrap();
            assert_eq!(retry, ProduceAck { base_offset: 6, duplicate: true });
            assert_eq!(reopened.write_marker(6, 0, ControlType::Commit, 0).unwrap(), Some(7));
            assert_eq!(reopened.write_marker(5, 1, ControlType::Commit, 0).unwrap(), Some(8));
            assert_eq!(reopened.last_stable_offset(), 9);
            assert_eq!(reopened.aborted_transactions(0, 9), [aborted]);
        });
    }
}
