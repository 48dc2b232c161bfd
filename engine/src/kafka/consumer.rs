//! The consumer (docs/model/kafka.md#overview): reads assigned partitions from given offsets with
//! one long-polled fetch per poll, decodes the returned batches lazily into records that share the
//! fetched bytes, and reads or commits a group's offsets on the broker.
//!
//! Transactions are filtered here, as Kafka's consumer does: control batches are never
//! returned; under `ReadCommitted` the broker stops at the last stable offset and lists the
//! aborted transactions overlapping the fetched batches, and the consumer drops those
//! transactions' batches. Skipped batches still advance the position.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use smol_str::SmolStr;

use crate::protocol::kafka::{
    AbortedTransaction, BATCH_HEADER_BYTES, ControlType, Fetch, FetchPosition, IsolationLevel,
    KafkaError, ListOffsets, Metadata, OffsetCommit, OffsetFetch, RecordBatch, RecordBatches,
    TopicPartition,
};
use crate::rpc::{Request, Rpc};

/// How a [`Consumer`] fetches.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The broker's address.
    pub broker: SocketAddr,
    /// What the consumer may see: everything (`ReadUncommitted`) or only committed data, up
    /// to the last stable offset (`ReadCommitted`). Control records are never returned.
    pub isolation: IsolationLevel,
    /// How long the broker may hold a fetch that finds no data (`fetch.max.wait.ms`, 500 ms).
    pub max_wait: Duration,
    /// At most this many bytes per partition and fetch (`max.partition.fetch.bytes`, 1 MiB).
    pub max_partition_bytes: usize,
    /// How long to wait for an answer beyond `max_wait` before giving up on a request.
    pub request_timeout: Duration,
}

impl ConsumerConfig {
    /// Kafka's defaults (docs/model/kafka.md#overview): read_uncommitted, 500 ms max wait, 1 MiB
    /// per partition.
    pub fn new(broker: SocketAddr) -> Self {
        ConsumerConfig {
            broker,
            isolation: IsolationLevel::ReadUncommitted,
            max_wait: Duration::from_millis(500),
            max_partition_bytes: 1 << 20,
            request_timeout: Duration::from_secs(1),
        }
    }
}

/// One record as a consumer sees it; the value shares the fetched buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Where it was read from.
    pub partition: TopicPartition,
    /// Its offset in that partition.
    pub offset: u64,
    /// The producer's timestamp.
    pub timestamp_ms: i64,
    /// The value bytes.
    pub value: Bytes,
}

/// What one [`Consumer::poll_batches`] fetched: the batches kept (control batches and aborted
/// transactions' batches left out), read in place.
#[derive(Default)]
pub struct Fetched {
    /// The partitions fetched, in the response's order, each with the position it moves to
    /// and its place in the consumer's positions (kept here rather than in a list of their own
    /// per fetch, and the place so that no second search writes the position back).
    partitions: Vec<(TopicPartition, u64, usize)>,
    /// Each batch kept: its partition (an index into `partitions`), and the offset from which
    /// its records are new (the first batch may start before the consumer's position).
    batches: Vec<(usize, RecordBatch, u64)>,
}

/// One record of a [`Fetched`], borrowed from its batch.
#[derive(Debug)]
pub struct FetchedRecord<'a> {
    /// Where it was read from.
    pub partition: &'a TopicPartition,
    /// Its offset in that partition.
    pub offset: u64,
    /// The producer's timestamp.
    pub timestamp_ms: i64,
    /// The value bytes.
    pub value: &'a [u8],
}

impl Fetched {
    /// Drops what was fetched and keeps the lists' room, for
    /// [`Consumer::poll_batches_into`] to fill again; not a catch-up fetch's room, though: kept
    /// by every source, it raised an hour's peak memory by 10 MB.
    pub fn clear(&mut self) {
        /// The most entries whose room is kept (a fetch in step with its producer holds one or two
        /// batches).
        const KEPT_ROOM: usize = 64;
        self.partitions.clear();
        if self.partitions.capacity() > KEPT_ROOM {
            self.partitions = Vec::new();
        }
        self.batches.clear();
        if self.batches.capacity() > KEPT_ROOM {
            self.batches = Vec::new();
        }
    }

    /// The records fetched, partition by partition, in offset order.
    pub fn records(&self) -> impl Iterator<Item = FetchedRecord<'_>> {
        self.records_by_batch().map(|(_, record)| record)
    }

    /// How many records [`records`](Self::records) yields, from the batches' headers: the
    /// broker validated every batch when it was produced (its records fill it as its header
    /// says), so no record need be decoded to count them (a callgrind profile: counting by
    /// decoding cost 3.8 M instructions in 5 simulated minutes).
    pub fn record_count(&self) -> u64 {
        let counts = self.batches.iter().map(|(_, batch, from)| {
            let h = batch.header();
            let skipped = from.saturating_sub(h.base_offset).min(u64::from(h.record_count));
            u64::from(h.record_count) - skipped
        });
        counts.sum()
    }

    /// The records fetched, each with the batch it is read from.
    fn records_by_batch(&self) -> impl Iterator<Item = (&RecordBatch, FetchedRecord<'_>)> {
        self.batches.iter().flat_map(move |(partition, batch, from)| {
            let partition = &self.partitions[*partition].0;
            batch.records().filter(move |r| r.offset >= *from).map(move |r| {
                let record = FetchedRecord {
                    partition,
                    offset: r.offset,
                    timestamp_ms: r.timestamp_ms,
                    value: r.value,
                };
                (batch, record)
            })
        })
    }
}

/// Reads assigned partitions from the broker (no group membership: the caller assigns).
pub struct Consumer {
    rpc: Rpc,
    config: ConsumerConfig,
    /// Each assigned partition's next offset, sorted by partition, each once. A list rather
    /// than a map: a consumer reads a few partitions, and the map's searches (two per partition
    /// and fetch, comparing topic names first) cost about 130 instructions per fetch.
    positions: Vec<(TopicPartition, u64)>,
    /// The last fetch's list of positions (empty after an assignment), rewritten in place for
    /// the next fetch when the broker no longer holds it.
    asked: Arc<[FetchPosition]>,
}

/// Where `tp` is in `positions`, looking first at `hint` (a fetch's answer lists the partitions
/// in the order they were asked for, so the next is mostly right there).
fn find(positions: &[(TopicPartition, u64)], tp: &TopicPartition, hint: usize) -> Option<usize> {
    let same = |(known, _): &(TopicPartition, u64)| known == tp;
    if positions.get(hint).is_some_and(same) {
        return Some(hint);
    }
    positions.iter().position(same)
}

/// Makes room in the empty `list` for `len` entries, as growing would have left it (at least 4,
/// a power of two), where it has less.
fn reserve_sized<T>(list: &mut Vec<T>, len: usize) {
    let room = len.max(4).next_power_of_two();
    if list.capacity() < room {
        list.reserve_exact(room);
    }
}

impl Consumer {
    /// A consumer calling the broker through `rpc`, with nothing assigned.
    pub fn new(rpc: Rpc, config: ConsumerConfig) -> Consumer {
        Consumer { rpc, config, positions: Vec::new(), asked: Arc::from([]) }
    }

    /// Replaces the assignment: the partitions to read and the next offset of each.
    pub fn assign(&mut self, positions: Vec<(TopicPartition, u64)>) {
        // Sorted, each partition once (the last of repeats kept, as a map's insert keeps it).
        self.positions = positions.into_iter().collect::<BTreeMap<_, _>>().into_iter().collect();
        self.asked = Arc::from([]);
    }

    /// The next offset to read from `tp`, if it is assigned.
    pub fn position(&self, tp: &TopicPartition) -> Option<u64> {
        find(&self.positions, tp, 0).map(|at| self.positions[at].1)
    }

    /// One fetch for every assigned partition: returns as soon as the broker has data, or empty
    /// after `max_wait`, and advances the positions past what it returns. A timeout or an
    /// unreachable broker is an `Err` (positions unchanged; the caller retries).
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, KafkaError> {
        let fetched = self.poll_batches().await?;
        // Sized for every record fetched, so the list is allocated once rather than grown. Each
        // count is capped by what its batch's bytes could hold (a record takes at least 2 bytes):
        // a corrupt header cannot ask for a huge list.
        let count = fetched.batches.iter().map(|(_, batch, _)| {
            let room = batch.bytes().len().saturating_sub(BATCH_HEADER_BYTES) / 2;
            (batch.header().record_count as usize).min(room)
        });
        let mut records = Vec::with_capacity(count.sum());
        records.extend(fetched.records_by_batch().map(|(batch, record)| ConsumerRecord {
            partition: record.partition.clone(),
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            value: batch.bytes().slice_ref(record.value),
        }));
        Ok(records)
    }

    /// [`poll`](Self::poll), handing out the fetched batches to be read in place: no list of
    /// records, and no reference count touched per record.
    pub async fn poll_batches(&mut self) -> Result<Fetched, KafkaError> {
        let mut fetched = Fetched::default();
        self.poll_batches_into(&mut fetched).await?;
        Ok(fetched)
    }

    /// [`poll_batches`](Self::poll_batches) into `fetched`, whose lists a caller polling again
    /// and again keeps: two allocations and two frees per fetch fewer (a source fetches about
    /// 80 times a simulated second). Empty after an error.
    ///
    /// One future, the rpc call's awaited in it directly: a fill future inside it, and a call
    /// future inside that, cost about 47 instructions a fetch to make, move and drop (a
    /// callgrind profile: 1.2 M in 5 simulated minutes).
    pub async fn poll_batches_into(&mut self, fetched: &mut Fetched) -> Result<(), KafkaError> {
        fetched.clear();
        if self.positions.is_empty() {
            // Nothing to ask for; wait as the broker would, so a poll loop does not spin.
            madsim::time::sleep(self.config.max_wait).await;
            return Ok(());
        }
        match Arc::get_mut(&mut self.asked) {
            // The same partitions in the same order: only an assignment changes them, and it
            // empties the list.
            Some(asked) if asked.len() == self.positions.len() => {
                for (position, (_, offset)) in asked.iter_mut().zip(&self.positions) {
                    position.offset = *offset;
                }
            }
            _ => {
                let positions = self.positions.iter();
                let asked = positions.map(|(tp, offset)| FetchPosition { partition: tp.clone(), offset: *offset });
                self.asked = asked.collect();
            }
        }
        let request = Fetch {
            partitions: self.asked.clone(),
            max_wait: self.config.max_wait,
            max_partition_bytes: u32::try_from(self.config.max_partition_bytes).unwrap_or(u32::MAX),
            isolation: self.config.isolation,
        };
        let timeout = self.config.max_wait + self.config.request_timeout;
        let broker = self.config.broker;
        let response = self.rpc.call(broker, request, timeout).await;
        let response = response.map_err(|e| KafkaError::unavailable(broker, e))?;
        if let Some(error) = response.partitions.iter().find_map(|p| p.error.clone()) {
            return Err(error);
        }
        // Both lists sized once from the response (its batches counted by their framing): grown
        // push by push, they cost 8.6 M instructions in 5 simulated minutes (a callgrind
        // profile), most of it the oracle's fetches of a thousand batches and more. Sized as
        // growing would have left them (at least 4, a power of two): sized exactly, the
        // allocator's layout left an hour's peak memory 2 MB higher.
        let batches: usize = response.partitions.iter().map(|p| RecordBatches::framed(&p.records)).sum();
        reserve_sized(&mut fetched.partitions, response.partitions.len());
        reserve_sized(&mut fetched.batches, batches);
        let read_committed = self.config.isolation == IsolationLevel::ReadCommitted;
        let mut hint = 0;
        for part in response.partitions {
            let Some(at) = find(&self.positions, &part.partition, hint) else {
                continue;
            };
            hint = at + 1;
            let position = self.positions[at].1;
            let index = fetched.partitions.len();
            let mut next = position;
            // Aborted transactions not yet reached, by first offset, and the producers whose
            // batches are being dropped until their abort marker.
            let mut pending: Vec<AbortedTransaction> = part.aborted_transactions;
            pending.sort_by_key(|a| (a.first_offset, a.producer_id));
            let mut pending: VecDeque<AbortedTransaction> = pending.into();
            let mut aborting: BTreeSet<i64> = BTreeSet::new();
            for batch in RecordBatches::new(part.records) {
                let batch = match batch {
                    Ok(batch) => batch,
                    Err(reason) => {
                        // Nothing of a fetch that fails is handed out.
                        fetched.clear();
                        let partition = part.partition.clone();
                        return Err(KafkaError::CorruptBatch { partition, reason: SmolStr::new(reason) });
                    }
                };
                let h = *batch.header();
                // Whatever happens to the batch, the position moves past it.
                if h.next_offset() > position {
                    next = next.max(h.next_offset());
                }
                if read_committed && h.is_transactional() {
                    while pending.front().is_some_and(|a| a.first_offset <= h.last_offset()) {
                        aborting.extend(pending.pop_front().map(|a| a.producer_id));
                    }
                }
                if h.is_control() {
                    if read_committed && batch.control_type() == Some(ControlType::Abort) {
                        aborting.remove(&h.producer_id);
                    }
                    continue;
                }
                if read_committed && h.is_transactional() && aborting.contains(&h.producer_id) {
                    continue;
                }
                // The first batch may start before the position: what was already read is skipped.
                fetched.batches.push((index, batch, position));
            }
            fetched.partitions.push((part.partition, next, at));
        }
        // In place, once every partition has been read without error: no key clone, and no key
        // dropped in exchange for it; each at the place found above (a second search per
        // partition and fetch cost about 25 instructions).
        for &(_, next, at) in &fetched.partitions {
            self.positions[at].1 = next;
        }
        Ok(())
    }

    /// How many partitions `topic` has.
    pub async fn partitions_for(&self, topic: &str) -> Result<u32, KafkaError> {
        let request = Metadata { topic: SmolStr::new(topic) };
        self.call(request, self.config.request_timeout).await?.result
    }

    /// The end offset of each partition, in order, for the consumer's isolation level (as
    /// Kafka's `endOffsets`): the high watermark (next offset to be written) for
    /// `ReadUncommitted`, the last stable offset for `ReadCommitted`.
    pub async fn end_offsets(&self, tps: &[TopicPartition]) -> Result<Vec<u64>, KafkaError> {
        self.end_offsets_for(tps, self.config.isolation).await
    }

    /// [`end_offsets`](Self::end_offsets) for `isolation` rather than the configured level.
    pub async fn end_offsets_for(
        &self,
        tps: &[TopicPartition],
        isolation: IsolationLevel,
    ) -> Result<Vec<u64>, KafkaError> {
        let request = ListOffsets { partitions: tps.to_vec(), isolation };
        self.call(request, self.config.request_timeout).await?.result
    }

    /// `group`'s committed offset for each partition, in order (`None`: never committed).
    pub async fn committed(
        &self,
        group: &str,
        tps: &[TopicPartition],
    ) -> Result<Vec<Option<u64>>, KafkaError> {
        let request = OffsetFetch { group: SmolStr::new(group), partitions: tps.to_vec() };
        self.call(request, self.config.request_timeout).await?.result
    }

    /// Stores `group`'s offsets on the broker; Ok once they are durable there.
    pub async fn commit(
        &self,
        group: &str,
        offsets: &[(TopicPartition, u64)],
    ) -> Result<(), KafkaError> {
        let request = OffsetCommit { group: SmolStr::new(group), offsets: offsets.to_vec() };
        self.call(request, self.config.request_timeout).await?.result
    }

    async fn call<R: Request>(
        &self,
        request: R,
        timeout: Duration,
    ) -> Result<R::Response, KafkaError> {
        let broker = self.config.broker;
        self.rpc
            .call(broker, request, timeout)
            .await
            .map_err(|e| KafkaError::unavailable(broker, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::kafka::{BatchBuilder, set_base_offset};

    /// A batch of `records` one-byte records from `base_offset`, as the broker stores it.
    fn batch(base_offset: u64, records: u32) -> RecordBatch {
        let mut builder = BatchBuilder::new();
        for i in 0..records {
            builder.append(i64::from(i), b"x");
        }
        let mut bytes = builder.finish(NO_PRODUCER, 0, 0).to_vec();
        let mut header: [u8; BATCH_HEADER_BYTES] = bytes[..BATCH_HEADER_BYTES].try_into().unwrap();
        set_base_offset(&mut header, base_offset);
        bytes[..BATCH_HEADER_BYTES].copy_from_slice(&header);
        RecordBatch::parse(Bytes::from(bytes)).unwrap()
    }

    const NO_PRODUCER: i64 = crate::protocol::kafka::NO_PRODUCER_ID;

    #[test]
    fn the_record_count_is_what_the_records_yield_past_each_position() {
        let fetched = Fetched {
            partitions: vec![(TopicPartition::new("input", 0), 18, 0), (TopicPartition::new("input", 1), 6, 1)],
            // Partition 0 read from 12: the first batch starts before it. Partition 1 read from
            // 0, and a batch wholly before a position (as a repeated fetch may return).
            batches: vec![
                (0, batch(10, 5), 12),
                (0, batch(15, 3), 12),
                (1, batch(0, 4), 0),
                (1, batch(4, 2), 9),
            ],
        };
        assert_eq!(fetched.record_count(), 3 + 3 + 4);
        assert_eq!(fetched.record_count(), fetched.records().count() as u64);
    }
}
