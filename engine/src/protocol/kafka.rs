//! What Kafka clients and the broker say to each other (docs/model/kafka.md#overview): topics and
//! partitions, the record-batch format (the same bytes on the wire and on the broker's disk), the
//! requests, and the errors the broker answers with. No I/O here.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

/// One partition of one topic, displayed as Kafka does: `input-0`.
#[derive(Clone, Debug, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TopicPartition {
    /// The topic's name.
    pub topic: SmolStr,
    /// The partition's index within the topic, from 0.
    pub partition: u32,
}

impl TopicPartition {
    /// Partition `partition` of `topic`.
    pub fn new(topic: impl Into<SmolStr>, partition: u32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }
}

/// Equal when both fields are, comparing the partition number first: the few partitions a
/// broker, a purgatory or a source scans mostly differ by number and share the name, which costs
/// more to compare (a derived `==` compares the name first).
impl PartialEq for TopicPartition {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.partition == other.partition && self.topic == other.topic
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A topic the broker creates on its first start (the playground's `input` and `output`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSpec {
    /// The topic's name.
    pub name: SmolStr,
    /// How many partitions it has.
    pub partitions: u32,
}

impl TopicSpec {
    /// A topic named `name` with `partitions` partitions.
    pub fn new(name: impl Into<SmolStr>, partitions: u32) -> Self {
        TopicSpec { name: name.into(), partitions }
    }
}

/// What a consumer may see (Kafka's `isolation.level`). Neither level ever returns control
/// records (commit and abort markers), though their offsets are used up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum IsolationLevel {
    /// Every data record appended, committed, aborted or still open, up to the high watermark
    /// (Kafka's default).
    #[default]
    ReadUncommitted,
    /// Only records outside transactions and records of committed transactions, up to the last
    /// stable offset (the first offset of the oldest transaction still open).
    ReadCommitted,
}

/// Why the broker aborted a transaction its producer did not end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AbortCause {
    /// It stayed open longer than its `transaction.timeout.ms`.
    Timeout,
    /// Its transactional id was registered again (a new producer fenced the old one).
    Fenced,
}

impl fmt::Display for AbortCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AbortCause::Timeout => "its transaction timeout",
            AbortCause::Fenced => "fencing (its transactional id was registered again)",
        })
    }
}

/// Why the broker (or the way to it) refused a request. Messages name the topic or partition.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum KafkaError {
    /// The broker has no topic by this name.
    #[error("unknown topic {topic}")]
    UnknownTopic {
        /// The topic asked for.
        topic: SmolStr,
    },
    /// The broker has no such partition (or no such topic).
    #[error("unknown topic or partition {partition}")]
    UnknownTopicOrPartition {
        /// The partition asked for.
        partition: TopicPartition,
    },
    /// A fetch asked for an offset past the end of the log.
    #[error("offset {offset} out of range for {partition}: high watermark is {high_watermark}")]
    OffsetOutOfRange {
        /// The partition fetched.
        partition: TopicPartition,
        /// The offset asked for.
        offset: u64,
        /// The partition's next offset.
        high_watermark: u64,
    },
    /// A record batch that does not follow the format (or uses a feature not built yet).
    #[error("corrupt record batch for {partition}: {reason}")]
    CorruptBatch {
        /// The partition the batch was for.
        partition: TopicPartition,
        /// What is wrong with it.
        reason: SmolStr,
    },
    /// An idempotent producer's batch skips or rewinds its sequence numbers.
    #[error(
        "out of order sequence number for producer {producer_id} on {partition}: expected {expected}, got {got}"
    )]
    OutOfOrderSequence {
        /// The partition written.
        partition: TopicPartition,
        /// The producer.
        producer_id: i64,
        /// The sequence the broker expected next.
        expected: i32,
        /// The batch's base sequence.
        got: i32,
    },
    /// A producer with an older epoch than the partition has seen (a zombie).
    #[error("producer {producer_id} fenced on {partition}: epoch {epoch} is older than {current}")]
    ProducerFenced {
        /// The partition written.
        partition: TopicPartition,
        /// The producer.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The newest epoch the partition has seen.
        current: i16,
    },
    /// A transactional request that does not fit the transaction's state: an unknown
    /// transactional id or producer id, or a produce after the epoch's transaction ended.
    #[error("invalid transaction state for {transactional_id}: {reason}")]
    InvalidTxnState {
        /// The transactional id (empty if the producer id maps to none).
        transactional_id: SmolStr,
        /// What does not fit.
        reason: SmolStr,
    },
    /// The broker's disk refused a read or a write.
    #[error("storage error on {what}: {reason}")]
    Storage {
        /// The partition or file concerned.
        what: SmolStr,
        /// The I/O error.
        reason: SmolStr,
    },
    /// A producer asked for a transaction timeout above the broker's
    /// `transaction.max.timeout.ms` (Kafka's `INVALID_TRANSACTION_TIMEOUT`).
    #[error(
        "invalid transaction timeout for {transactional_id}: transaction.timeout.ms {requested_ms} is larger than the broker's transaction.max.timeout.ms {max_ms}"
    )]
    InvalidTransactionTimeout {
        /// The transactional id.
        transactional_id: SmolStr,
        /// The producer's `transaction.timeout.ms`.
        requested_ms: u64,
        /// The broker's cap.
        max_ms: u64,
    },
    /// A commit of a transaction the broker had already aborted (its timeout, or fencing).
    #[error(
        "transaction {transactional_id} (producer {producer_id}, epoch {epoch}) was aborted by the broker{}",
        cause.map(|c| format!(" after {c}")).unwrap_or_default()
    )]
    TransactionAborted {
        /// The transactional id.
        transactional_id: SmolStr,
        /// The producer id it was written with.
        producer_id: i64,
        /// The epoch it was written with.
        epoch: i16,
        /// Why the broker aborted it, when the broker ended it itself.
        cause: Option<AbortCause>,
    },
    /// No answer in time: the broker is down, partitioned away, or the message was lost.
    #[error("broker {broker} unavailable: {reason}")]
    BrokerUnavailable {
        /// The broker's address.
        broker: SocketAddr,
        /// The transport's explanation.
        reason: SmolStr,
    },
}

impl KafkaError {
    /// Whether trying the same request again may succeed (only transport failures may).
    pub fn is_retriable(&self) -> bool {
        matches!(self, KafkaError::BrokerUnavailable { .. })
    }

    /// Wraps a transport failure on a call to `broker`.
    pub fn unavailable(broker: SocketAddr, error: impl fmt::Display) -> Self {
        KafkaError::BrokerUnavailable { broker, reason: SmolStr::new(error.to_string()) }
    }
}

// ---------------------------------------------------------------------------------------------
// Record batches.

/// The fixed-size header that opens every record batch (all integers big-endian, as Kafka's).
///
/// Layout, 40 bytes: base_offset u64 | batch_length u32 (header included) | record_count u32 |
/// base_timestamp_ms i64 | producer_id i64 | producer_epoch i16 | base_sequence i32 |
/// attributes u16. The records follow; each is `timestamp delta (zigzag varint from
/// base_timestamp_ms) | value length (varint) | value`, so a 55-byte ClickEvent costs 57 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// The first record's offset (assigned by the broker; 0 as the producer sends it).
    pub base_offset: u64,
    /// The whole batch's length in bytes, header included.
    pub batch_length: u32,
    /// How many records follow the header.
    pub record_count: u32,
    /// The first record's timestamp; the records store deltas from it.
    pub base_timestamp_ms: i64,
    /// The idempotent producer's id, or [`NO_PRODUCER_ID`].
    pub producer_id: i64,
    /// The producer's epoch (bumped when a transactional id re-registers).
    pub producer_epoch: i16,
    /// The sequence number of the first record, counted per producer and partition.
    pub base_sequence: i32,
    /// Flags: [`ATTRIBUTE_TRANSACTIONAL`], [`ATTRIBUTE_CONTROL`].
    pub attributes: u16,
}

/// The size of a [`BatchHeader`] in bytes.
pub const BATCH_HEADER_BYTES: usize = 40;
/// `producer_id` of a batch from a producer without an id.
pub const NO_PRODUCER_ID: i64 = -1;
/// Attribute bit: the batch belongs to a transaction of its producer id and epoch.
pub const ATTRIBUTE_TRANSACTIONAL: u16 = 1 << 4;
/// Attribute bit: the batch is a commit or abort marker (set together with
/// [`ATTRIBUTE_TRANSACTIONAL`]; written by the broker only). It holds one control record whose
/// value is `version i16 = 0 | type i16` (0 abort, 1 commit), as Kafka's control record key.
pub const ATTRIBUTE_CONTROL: u16 = 1 << 5;
/// The internal partition that holds the transaction coordinator's state (as Kafka's
/// `__transaction_state`); also named by coordinator-level [`KafkaError::ProducerFenced`].
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Where the broker writes the assigned base offset into a batch's header.
const BASE_OFFSET_AT: usize = 0;

impl BatchHeader {
    /// Reads a header from the first [`BATCH_HEADER_BYTES`] of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<BatchHeader, &'static str> {
        let Some(h) = bytes.get(..BATCH_HEADER_BYTES) else {
            return Err("shorter than a batch header");
        };
        let u64_at = |at: usize| u64::from_be_bytes(h[at..at + 8].try_into().unwrap());
        let u32_at = |at: usize| u32::from_be_bytes(h[at..at + 4].try_into().unwrap());
        let header = BatchHeader {
            base_offset: u64_at(0),
            batch_length: u32_at(8),
            record_count: u32_at(12),
            base_timestamp_ms: u64_at(16) as i64,
            producer_id: u64_at(24) as i64,
            producer_epoch: i16::from_be_bytes([h[32], h[33]]),
            base_sequence: u32_at(34) as i32,
            attributes: u16::from_be_bytes([h[38], h[39]]),
        };
        if (header.batch_length as usize) < BATCH_HEADER_BYTES {
            return Err("batch length shorter than its header");
        }
        Ok(header)
    }

    /// The header's 40 bytes.
    pub fn encode(&self) -> [u8; BATCH_HEADER_BYTES] {
        let mut h = [0u8; BATCH_HEADER_BYTES];
        h[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        h[8..12].copy_from_slice(&self.batch_length.to_be_bytes());
        h[12..16].copy_from_slice(&self.record_count.to_be_bytes());
        h[16..24].copy_from_slice(&self.base_timestamp_ms.to_be_bytes());
        h[24..32].copy_from_slice(&self.producer_id.to_be_bytes());
        h[32..34].copy_from_slice(&self.producer_epoch.to_be_bytes());
        h[34..38].copy_from_slice(&self.base_sequence.to_be_bytes());
        h[38..40].copy_from_slice(&self.attributes.to_be_bytes());
        h
    }

    /// The offset of the batch's last record.
    pub fn last_offset(&self) -> u64 {
        self.base_offset + u64::from(self.record_count.max(1)) - 1
    }

    /// The offset right after the batch.
    pub fn next_offset(&self) -> u64 {
        self.base_offset + u64::from(self.record_count)
    }

    /// Whether the batch belongs to a transaction (data or marker).
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTRIBUTE_TRANSACTIONAL != 0
    }

    /// Whether the batch is a commit or abort marker.
    pub fn is_control(&self) -> bool {
        self.attributes & ATTRIBUTE_CONTROL != 0
    }
}

/// What a control batch marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlType {
    /// The producer's open transaction on this partition is aborted.
    Abort,
    /// The producer's open transaction on this partition is committed.
    Commit,
}

impl ControlType {
    /// The marker for a transaction that ends committed (`true`) or aborted (`false`).
    pub fn of(commit: bool) -> ControlType {
        if commit { ControlType::Commit } else { ControlType::Abort }
    }
}

/// One control batch (a commit or abort marker) of `producer_id` at `epoch`.
pub fn control_batch(
    producer_id: i64,
    epoch: i16,
    control: ControlType,
    timestamp_ms: i64,
) -> Bytes {
    let kind: i16 = match control {
        ControlType::Abort => 0,
        ControlType::Commit => 1,
    };
    let mut value = [0u8; 4];
    value[2..].copy_from_slice(&kind.to_be_bytes());
    let mut builder = BatchBuilder::new();
    builder.append(timestamp_ms, &value);
    builder.finish_with_attributes(
        producer_id,
        epoch,
        -1,
        ATTRIBUTE_TRANSACTIONAL | ATTRIBUTE_CONTROL,
    )
}

/// Rewrites the base offset in an encoded header (the broker assigns offsets on append).
pub fn set_base_offset(header: &mut [u8; BATCH_HEADER_BYTES], base_offset: u64) {
    header[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// One record, decoded lazily from a batch; its value is a slice of the batch's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's offset in its partition.
    pub offset: u64,
    /// The producer's timestamp.
    pub timestamp_ms: i64,
    /// The value, borrowed from the batch's buffer (no reference count to touch per record).
    pub value: &'a [u8],
}

/// A view of one encoded record batch.
#[derive(Clone, Debug)]
pub struct RecordBatch {
    header: BatchHeader,
    bytes: Bytes,
}

impl RecordBatch {
    /// Checks `bytes` holds exactly one well-formed batch: header, then `record_count` records
    /// filling `batch_length` exactly. The broker runs this on every produced batch, so readers
    /// of the log never meet a malformed one.
    pub fn parse(bytes: Bytes) -> Result<RecordBatch, &'static str> {
        let header = BatchHeader::decode(&bytes)?;
        if header.batch_length as usize != bytes.len() {
            return Err("batch length does not match the bytes received");
        }
        if header.record_count == 0 {
            return Err("batch has no records");
        }
        if !records_fill(&bytes, header.record_count) {
            return Err("records do not fill the batch as its header says");
        }
        Ok(RecordBatch { header, bytes })
    }

    /// The batch's header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The batch's encoded bytes, header included.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// What this batch marks, if it is a well-formed control batch.
    pub fn control_type(&self) -> Option<ControlType> {
        if !self.header.is_control() {
            return None;
        }
        let record = self.records().next()?;
        match record.value.get(..4)? {
            [0, 0, 0, 0] => Some(ControlType::Abort),
            [0, 0, 0, 1] => Some(ControlType::Commit),
            _ => None,
        }
    }

    /// Decodes the records one at a time; stops early (silently) at malformed data.
    pub fn records(&self) -> Records<'_> {
        Records { batch: self, at: BATCH_HEADER_BYTES, index: 0, malformed: false }
    }
}

/// Whether `count` records, as [`Records`] decodes them, fill `batch` exactly from the end of
/// its header: only their framing is read (a callgrind profile: decoding each record to count
/// it, the broker's check of a produced batch cost 250 instructions a batch).
fn records_fill(batch: &[u8], count: u32) -> bool {
    let mut at = BATCH_HEADER_BYTES;
    for _ in 0..count {
        let Some((_, after_delta)) = read_varint(batch, at) else {
            return false;
        };
        let Some((len, after_len)) = read_varint(batch, after_delta) else {
            return false;
        };
        // A varint read ends within the batch: what is left cannot underflow.
        if len > (batch.len() - after_len) as u64 {
            return false;
        }
        at = after_len + len as usize;
    }
    at == batch.len()
}

/// The records of a [`RecordBatch`], decoded as they are iterated.
pub struct Records<'a> {
    batch: &'a RecordBatch,
    at: usize,
    index: u32,
    malformed: bool,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    // Inline: the oracle (another crate) reads every record of both topics through it.
    #[inline]
    fn next(&mut self) -> Option<Record<'a>> {
        if self.index >= self.batch.header.record_count || self.malformed {
            return None;
        }
        let bytes = &self.batch.bytes;
        let decoded = (|| {
            let (delta, at) = read_varint(bytes, self.at)?;
            let (len, at) = read_varint(bytes, at)?;
            let end = at.checked_add(usize::try_from(len).ok()?)?;
            (end <= bytes.len()).then_some((unzigzag(delta), at, end))
        })();
        let Some((delta, start, end)) = decoded else {
            self.malformed = true;
            return None;
        };
        let record = Record {
            offset: self.batch.header.base_offset + u64::from(self.index),
            timestamp_ms: self.batch.header.base_timestamp_ms.wrapping_add(delta),
            value: &bytes[start..end],
        };
        self.at = end;
        self.index += 1;
        Some(record)
    }
}

/// Splits the concatenated batches of a fetch response, without copying.
pub struct RecordBatches {
    rest: Bytes,
}

impl RecordBatches {
    /// Iterates the batches in `bytes` (a fetch response's `records`).
    pub fn new(bytes: Bytes) -> Self {
        RecordBatches { rest: bytes }
    }

    /// How many batches `bytes` holds by their framing alone (each header's length, hopped
    /// over): what iterating yields for well-framed bytes, give or take one for a malformed
    /// tail. Cheap enough to size a list of the batches before decoding them.
    pub fn framed(bytes: &[u8]) -> usize {
        let mut count = 0;
        let mut at = 0;
        while let Some(len) = bytes.get(at + 8..at + 12) {
            count += 1;
            let len = u32::from_be_bytes(len.try_into().expect("four bytes")) as usize;
            if len < BATCH_HEADER_BYTES {
                break;
            }
            at += len;
        }
        count
    }
}

impl Iterator for RecordBatches {
    type Item = Result<RecordBatch, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let header = match BatchHeader::decode(&self.rest) {
            Ok(header) => header,
            Err(reason) => {
                self.rest.clear();
                return Some(Err(reason));
            }
        };
        let len = header.batch_length as usize;
        if len > self.rest.len() {
            self.rest.clear();
            return Some(Err("batch runs past the end of the response"));
        }
        let bytes = self.rest.split_to(len);
        // The broker validated every batch on append; only the framing is checked here.
        Some(Ok(RecordBatch { header, bytes }))
    }
}

/// Writes records straight into one batch's buffer (the producer's open batch).
#[derive(Debug)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    record_count: u32,
    base_timestamp_ms: i64,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// An empty batch (the header's space is reserved, filled in by [`finish`](Self::finish)).
    pub fn new() -> Self {
        // Room for a few records from the start: most batches are small (one linger's worth).
        let mut buf = Vec::with_capacity(BATCH_HEADER_BYTES + 512);
        buf.resize(BATCH_HEADER_BYTES, 0);
        BatchBuilder { buf, record_count: 0, base_timestamp_ms: 0 }
    }

    /// How many records the batch holds.
    pub fn record_count(&self) -> u32 {
        self.record_count
    }

    /// The batch's encoded size so far, header included.
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    /// How many bytes [`append`](Self::append) would add for this record.
    pub fn record_bytes(&self, timestamp_ms: i64, value_len: usize) -> usize {
        let base = if self.record_count == 0 { timestamp_ms } else { self.base_timestamp_ms };
        varint_len(zigzag(timestamp_ms.wrapping_sub(base)))
            + varint_len(value_len as u64)
            + value_len
    }

    /// Appends one record.
    pub fn append(&mut self, timestamp_ms: i64, value: &[u8]) {
        self.append_within(timestamp_ms, value, usize::MAX);
    }

    /// Appends one record if the batch stays within `max_bytes` with it (`size_bytes() +
    /// record_bytes(..) <= max_bytes`); `false`, appending nothing, if it would not. One pass
    /// over the record's sizes for both the check and the append (a producer's every record).
    /// Always inlined: as a call, its entry and exit cost 19 of its 74 instructions.
    #[inline(always)]
    pub fn append_within(&mut self, timestamp_ms: i64, value: &[u8], max_bytes: usize) -> bool {
        let base = if self.record_count == 0 { timestamp_ms } else { self.base_timestamp_ms };
        let delta = zigzag(timestamp_ms.wrapping_sub(base));
        let len = value.len() as u64;
        if delta < 0x80 && len < 0x80 {
            // Both varints one byte (a ClickEvent, most deltas): grown at most once, not per
            // byte pushed.
            if self.buf.len() + 2 + value.len() > max_bytes {
                return false;
            }
            self.buf.reserve(2 + value.len());
            self.buf.extend_from_slice(&[delta as u8, len as u8]);
        } else {
            if self.buf.len() + varint_len(delta) + varint_len(len) + value.len() > max_bytes {
                return false;
            }
            write_varint(&mut self.buf, delta);
            write_varint(&mut self.buf, len);
        }
        self.buf.extend_from_slice(value);
        self.base_timestamp_ms = base;
        self.record_count += 1;
        true
    }

    /// Appends one record if the batch is empty (a first record always goes in, however large)
    /// or stays within `max_bytes` with it, as [`append_within`](Self::append_within); `false`,
    /// appending nothing, if it would not fit.
    #[inline(always)]
    pub fn append_if_room(&mut self, timestamp_ms: i64, value: &[u8], max_bytes: usize) -> bool {
        let max_bytes = if self.record_count == 0 { usize::MAX } else { max_bytes };
        self.append_within(timestamp_ms, value, max_bytes)
    }

    /// Fills in the header and hands out the batch's bytes (base offset 0: the broker assigns it).
    pub fn finish(self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Bytes {
        self.finish_with_attributes(producer_id, producer_epoch, base_sequence, 0)
    }

    /// [`finish`](Self::finish) with attribute bits (a transactional producer's batches carry
    /// [`ATTRIBUTE_TRANSACTIONAL`]).
    pub fn finish_with_attributes(
        mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
        attributes: u16,
    ) -> Bytes {
        let header = BatchHeader {
            base_offset: 0,
            batch_length: u32::try_from(self.buf.len()).unwrap_or(u32::MAX),
            record_count: self.record_count,
            base_timestamp_ms: self.base_timestamp_ms,
            producer_id,
            producer_epoch,
            base_sequence,
            attributes,
        };
        self.buf[..BATCH_HEADER_BYTES].copy_from_slice(&header.encode());
        Bytes::from(self.buf)
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn varint_len(mut v: u64) -> usize {
    let mut len = 1;
    while v >= 0x80 {
        v >>= 7;
        len += 1;
    }
    len
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an unsigned LEB128 varint at `at`; `None` if truncated or longer than 10 bytes.
#[inline]
fn read_varint(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    // One byte is the common case: a ClickEvent's length, most timestamp deltas.
    let first = *bytes.get(at)?;
    if first & 0x80 == 0 {
        return Some((u64::from(first), at + 1));
    }
    read_long_varint(bytes, at)
}

/// [`read_varint`] for a varint of two or more bytes.
fn read_long_varint(bytes: &[u8], mut at: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(at)?;
        at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((value, at));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Requests.

/// Asks the broker for a producer id: a fresh one for an idempotent producer (no transactional
/// id), or, for a transactional id, its producer id with the epoch bumped. Bumping fences every
/// older epoch and aborts the transaction an older epoch left open (zombie fencing).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InitProducerId {
    /// The transactional id (`<prefix>-<subtask>-<n>`), or `None` for an idempotent producer.
    pub transactional_id: Option<SmolStr>,
    /// How long a transaction of this id may stay open before the broker aborts it
    /// (`transaction.timeout.ms`; Flink's sink sets 1 h). Ignored without a transactional id.
    pub transaction_timeout: Duration,
}

impl InitProducerId {
    /// The request of an idempotent, non-transactional producer.
    pub fn idempotent() -> Self {
        InitProducerId { transactional_id: None, transaction_timeout: Duration::ZERO }
    }
}

/// The producer's identity, stamped into every batch it sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdentity {
    /// Unique across broker restarts.
    pub producer_id: i64,
    /// 0 for a new producer id.
    pub producer_epoch: i16,
}

/// The answer to [`InitProducerId`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InitProducerIdResponse {
    /// The new identity, or why none was given.
    pub result: Result<ProducerIdentity, KafkaError>,
}

/// Appends one record batch to one partition.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Produce {
    /// Where to append.
    pub partition: TopicPartition,
    /// One encoded [`RecordBatch`].
    pub batch: Bytes,
}

/// Where a produced batch landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProduceAck {
    /// The offset of the batch's first record.
    pub base_offset: u64,
    /// True if the broker had already appended this batch (a retry), and kept only that copy.
    pub duplicate: bool,
}

/// The answer to [`Produce`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProduceResponse {
    /// The batch's place in the log, or why it was refused.
    pub result: Result<ProduceAck, KafkaError>,
}

/// Where a fetch starts reading one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchPosition {
    /// The partition.
    pub partition: TopicPartition,
    /// The next offset the consumer wants.
    pub offset: u64,
}

/// Reads from several partitions at once; the broker holds it up to `max_wait` until any data.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fetch {
    /// What to read, from where. Shared: a consumer rewrites the offsets of its last fetch's
    /// list in place once the broker has let go of it, rather than building a list per fetch
    /// (an allocation, and the partitions' names cloned and dropped: about 100 instructions).
    #[serde(with = "shared_list")]
    pub partitions: Arc<[FetchPosition]>,
    /// How long the broker may hold a fetch that finds nothing (`fetch.max.wait.ms`).
    pub max_wait: Duration,
    /// At most this many bytes per partition, except that one whole batch always fits.
    pub max_partition_bytes: u32,
    /// What the consumer may see.
    pub isolation: IsolationLevel,
}

/// A shared list in serde as a plain list (serde's own impl needs its `rc` feature).
mod shared_list {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(list: &Arc<[T]>, s: S) -> Result<S::Ok, S::Error> {
        list.as_ref().serialize(s)
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Arc<[T]>, D::Error> {
        Vec::<T>::deserialize(d).map(Arc::from)
    }
}

/// One partition's part of a [`FetchResponse`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FetchedPartition {
    /// The partition.
    pub partition: TopicPartition,
    /// Its next offset to be written.
    pub high_watermark: u64,
    /// The first offset of its oldest open transaction, else the high watermark.
    pub last_stable_offset: u64,
    /// Whole record batches as stored; the first may start before the offset asked for.
    /// A `ReadCommitted` fetch returns only batches below the last stable offset. Control
    /// batches and aborted transactional batches are included: the consumer skips them.
    pub records: Bytes,
    /// For `ReadCommitted`: the aborted transactions overlapping `records`, by first offset
    /// (Kafka's fetch does the same; the consumer drops their batches). Empty otherwise.
    pub aborted_transactions: Vec<AbortedTransaction>,
    /// Why this partition could not be read.
    pub error: Option<KafkaError>,
}

/// A transaction that ended with an abort marker on one partition (the partition's
/// aborted-transaction index, rebuilt from the log on every broker start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedTransaction {
    /// The producer whose transactional batches in `first_offset..last_offset` are aborted.
    pub producer_id: i64,
    /// The offset of the transaction's first batch on the partition.
    pub first_offset: u64,
    /// The offset of the abort marker.
    pub last_offset: u64,
}

/// The answer to [`Fetch`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FetchResponse {
    /// One entry per partition asked for, in the request's order.
    pub partitions: Vec<FetchedPartition>,
}

/// Asks how many partitions a topic has.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Metadata {
    /// The topic.
    pub topic: SmolStr,
}

/// The answer to [`Metadata`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MetadataResponse {
    /// The partition count.
    pub result: Result<u32, KafkaError>,
}

/// Asks for the end offsets of some partitions: the high watermarks, or for `ReadCommitted`
/// the last stable offsets.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListOffsets {
    /// The partitions.
    pub partitions: Vec<TopicPartition>,
    /// Whose end: `ReadUncommitted` (high watermark) or `ReadCommitted` (last stable offset).
    pub isolation: IsolationLevel,
}

/// The answer to [`ListOffsets`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListOffsetsResponse {
    /// One end offset per partition asked for, in order.
    pub result: Result<Vec<u64>, KafkaError>,
}

/// Stores a consumer group's offsets durably.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OffsetCommit {
    /// The group (`click-event-count`).
    pub group: SmolStr,
    /// The next offset to read, per partition.
    pub offsets: Vec<(TopicPartition, u64)>,
}

/// The answer to [`OffsetCommit`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OffsetCommitResponse {
    /// Ok once the offsets are on the broker's disk.
    pub result: Result<(), KafkaError>,
}

/// Reads a consumer group's committed offsets.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OffsetFetch {
    /// The group.
    pub group: SmolStr,
    /// The partitions.
    pub partitions: Vec<TopicPartition>,
}

/// The answer to [`OffsetFetch`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OffsetFetchResponse {
    /// One committed offset per partition asked for (`None`: never committed), in order.
    pub result: Result<Vec<Option<u64>>, KafkaError>,
}

/// Ends the open transaction of a transactional id: writes a commit or abort marker to every
/// partition it wrote to, then completes it. Idempotent: ending again the same way succeeds
/// without writing again, also with a stale `(producer_id, epoch)` whose transaction ended that
/// way (the broker remembers each id's last outcomes); a stale epoch whose transaction ended the
/// other way, or that never ended, is `ProducerFenced`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EndTxn {
    /// The transactional id.
    pub transactional_id: SmolStr,
    /// The producer id the transaction was written with.
    pub producer_id: i64,
    /// The epoch the transaction was written with.
    pub epoch: i16,
    /// Commit (`true`) or abort.
    pub commit: bool,
}

/// The answer to [`EndTxn`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EndTxnResponse {
    /// Ok once every marker is on disk and the transaction is complete.
    pub result: Result<(), KafkaError>,
}

/// Where a transactional id's current transaction stands (Kafka's coordinator states).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransactionState {
    /// Registered (or re-registered) at this epoch; nothing written yet.
    Empty,
    /// Data written, not ended.
    Ongoing,
    /// Commit decided; markers being written.
    PrepareCommit,
    /// Abort decided; markers being written.
    PrepareAbort,
    /// Committed; the epoch is done.
    CompleteCommit,
    /// Aborted; the epoch is done.
    CompleteAbort,
}

impl TransactionState {
    /// Whether the id's epoch may still write or end a transaction, or is ending one: every
    /// state but the two complete ones. These are what [`ListTransactions`] lists.
    pub fn is_open(self) -> bool {
        !matches!(self, TransactionState::CompleteCommit | TransactionState::CompleteAbort)
    }
}

/// Lists the transactional ids starting with `prefix` whose current epoch is open: registered
/// and not yet ended (`Empty`, `Ongoing`, `PrepareCommit`, `PrepareAbort`); with
/// `include_ended`, every id the broker knows under the prefix.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListTransactions {
    /// The prefix (`""` lists all).
    pub prefix: SmolStr,
    /// Also list ids whose transactions all ended (to learn whether an id was ever used).
    pub include_ended: bool,
}

/// One transactional id in a [`ListTransactionsResponse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: SmolStr,
    /// Its current producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub epoch: i16,
    /// Where its current transaction stands.
    pub state: TransactionState,
}

/// The answer to [`ListTransactions`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListTransactionsResponse {
    /// The open transactional ids, in id order.
    pub result: Result<Vec<TransactionListing>, KafkaError>,
}

crate::request!(InitProducerId => InitProducerIdResponse);
crate::request!(EndTxn => EndTxnResponse);
crate::request!(ListTransactions => ListTransactionsResponse);
crate::request!(Produce => ProduceResponse);
crate::request!(Fetch => FetchResponse);
crate::request!(Metadata => MetadataResponse);
crate::request!(ListOffsets => ListOffsetsResponse);
crate::request!(OffsetCommit => OffsetCommitResponse);
crate::request!(OffsetFetch => OffsetFetchResponse);

/// Which transaction: what a checkpoint records of a pending (flushed, uncommitted) transaction
/// so that it can be committed after a restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionHandle {
    /// The transactional id (`<prefix>-<subtask>-<n>`).
    pub transactional_id: SmolStr,
    /// The producer id the transaction was written with.
    pub producer_id: i64,
    /// The epoch the transaction was written with.
    pub epoch: i16,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(values: &[(i64, &[u8])]) -> Bytes {
        let mut builder = BatchBuilder::new();
        for (ts, value) in values {
            builder.append(*ts, value);
        }
        builder.finish(7, 0, 42)
    }

    #[test]
    fn batch_round_trips_records_as_slices_of_its_bytes() {
        let bytes = batch_of(&[(1_000, b"a"), (985, b""), (1_015, &[9u8; 300])]);
        let batch = RecordBatch::parse(bytes.clone()).unwrap();
        let h = *batch.header();
        assert_eq!((h.record_count, h.producer_id, h.base_sequence), (3, 7, 42));
        assert_eq!(h.batch_length as usize, bytes.len());
        let records: Vec<Record<'_>> = batch.records().collect();
        assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(records.iter().map(|r| r.timestamp_ms).collect::<Vec<_>>(), [1_000, 985, 1_015]);
        assert_eq!(records[0].value, b"a");
        assert_eq!(records[2].value.len(), 300);
        // The value is a view into the batch, not a copy.
        let start = records[2].value.as_ptr() as usize - bytes.as_ptr() as usize;
        assert_eq!(start, bytes.len() - 300);
    }

    #[test]
    fn batches_are_counted_by_their_framing_as_iterating_finds_them() {
        let one = batch_of(&[(1_000, b"a"), (1_001, b"bc")]);
        let two = batch_of(&[(5, &[7u8; 300])]);
        let mut all = one.to_vec();
        all.extend_from_slice(&two);
        all.extend_from_slice(&one);
        assert_eq!(RecordBatches::framed(&all), 3);
        assert_eq!(RecordBatches::new(Bytes::from(all.clone())).count(), 3);
        assert_eq!(RecordBatches::framed(&[]), 0);
        // A cut last batch is still counted once, as iterating yields it once (as an error).
        let cut = &all[..all.len() - 10];
        assert_eq!(RecordBatches::framed(cut), 3);
        assert_eq!(RecordBatches::new(Bytes::copy_from_slice(cut)).count(), 3);
    }

    #[test]
    fn record_bytes_predicts_what_append_adds() {
        let mut builder = BatchBuilder::new();
        for (ts, len) in [(5_i64, 54_usize), (-3, 200), (1 << 40, 0)] {
            let before = builder.size_bytes();
            let predicted = builder.record_bytes(ts, len);
            builder.append(ts, &vec![1; len]);
            assert_eq!(builder.size_bytes() - before, predicted);
        }
    }

    #[test]
    fn append_within_appends_exactly_what_fits() {
        // One-byte varints (a ClickEvent) and longer ones (a large delta, a long value).
        for (ts, len) in [(5_i64, 54_usize), (1 << 40, 54), (5, 200)] {
            let mut builder = BatchBuilder::new();
            builder.append(5, b"first");
            let (size, count) = (builder.size_bytes(), builder.record_count());
            let needed = size + builder.record_bytes(ts, len);
            assert!(!builder.append_within(ts, &vec![1; len], needed - 1));
            assert_eq!((builder.size_bytes(), builder.record_count()), (size, count), "nothing added");
            assert!(builder.append_within(ts, &vec![1; len], needed));
            assert_eq!((builder.size_bytes(), builder.record_count()), (needed, count + 1));
            let batch = RecordBatch::parse(builder.finish(NO_PRODUCER_ID, 0, 0)).unwrap();
            let last = batch.records().last().unwrap();
            assert_eq!((last.timestamp_ms, last.value.len()), (ts, len));
        }
        // The first record of a batch sets its base timestamp, whether it fits or not.
        let mut builder = BatchBuilder::new();
        assert!(!builder.append_within(1 << 40, b"x", BATCH_HEADER_BYTES));
        assert!(builder.append_within(7, b"x", BATCH_HEADER_BYTES + 3));
        let batch = RecordBatch::parse(builder.finish(NO_PRODUCER_ID, 0, 0)).unwrap();
        assert_eq!(batch.header().base_timestamp_ms, 7);
    }

    #[test]
    fn control_batches_say_what_they_mark() {
        for control in [ControlType::Abort, ControlType::Commit] {
            let batch = RecordBatch::parse(control_batch(7, 3, control, 99)).unwrap();
            let h = *batch.header();
            assert!(h.is_control() && h.is_transactional());
            assert_eq!((h.producer_id, h.producer_epoch, h.record_count), (7, 3, 1));
            assert_eq!(batch.control_type(), Some(control));
        }
        let data = RecordBatch::parse(batch_of(&[(1, b"\0\0\0\x01")])).unwrap();
        assert!(!data.header().is_transactional());
        assert_eq!(data.control_type(), None, "a data batch is no marker, whatever its value");
    }

    #[test]
    fn malformed_batches_are_errors_not_panics() {
        let good = batch_of(&[(1, b"xyz"), (2, b"w")]);
        for cut in 0..good.len() {
            assert!(RecordBatch::parse(good.slice(..cut)).is_err(), "cut at {cut}");
        }
        let mut lying = good.to_vec();
        lying[12..16].copy_from_slice(&3u32.to_be_bytes()); // claims 3 records, holds 2
        assert!(RecordBatch::parse(Bytes::from(lying)).is_err());
        let mut short = good.to_vec();
        short[12..16].copy_from_slice(&1u32.to_be_bytes()); // claims 1 record, holds 2
        assert!(RecordBatch::parse(Bytes::from(short)).is_err());
        let mut long = good.to_vec();
        long.push(0); // a byte past the last record, counted in the length
        let length = long.len() as u32;
        long[8..12].copy_from_slice(&length.to_be_bytes());
        assert!(RecordBatch::parse(Bytes::from(long)).is_err());
        let mut huge_len = good.to_vec();
        huge_len[BATCH_HEADER_BYTES + 1] = 0xff; // value length varint runs on
        assert!(RecordBatch::parse(Bytes::from(huge_len)).is_err());
        let garbage = Bytes::from(vec![0xffu8; 100]);
        assert!(RecordBatch::parse(garbage.clone()).is_err());
        assert!(RecordBatches::new(garbage).next().unwrap().is_err());
    }

    #[test]
    fn fetched_bytes_split_into_batches_with_their_offsets() {
        let mut joined = Vec::new();
        for (base, values) in [(0u64, &[b"a", b"b"][..]), (2, &[b"c"][..])] {
            let mut header = [0u8; BATCH_HEADER_BYTES];
            let bytes = batch_of(&values.iter().map(|v| (0, &v[..])).collect::<Vec<_>>());
            header.copy_from_slice(&bytes[..BATCH_HEADER_BYTES]);
            set_base_offset(&mut header, base);
            joined.extend_from_slice(&header);
            joined.extend_from_slice(&bytes[BATCH_HEADER_BYTES..]);
        }
        let offsets: Vec<(u64, Vec<u8>)> = RecordBatches::new(Bytes::from(joined))
            .flat_map(|b| b.unwrap().records().map(|r| (r.offset, r.value.to_vec())).collect::<Vec<_>>())
            .collect();
        assert_eq!(offsets, [(0, b"a".to_vec()), (1, b"b".to_vec()), (2, b"c".to_vec())]);
        assert_eq!(TopicPartition::new("input", 0).to_string(), "input-0");
    }
}
