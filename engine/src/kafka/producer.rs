//! The idempotent producer (docs/model/kafka.md#overview): records accumulate straight into an open
//! batch per topic; a background sender ships a batch once it is full or has lingered, one request
//! in flight, retrying with backoff until the broker acknowledges. Producer id and per-partition
//! sequence numbers let the broker drop a retried batch it already appended. The same machinery,
//! given a transactional id's producer id and epoch, sends the batches of a
//! [`TransactionalProducer`](super::TransactionalProducer).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use madsim::rand::Rng;
use madsim::time::Instant;
use smol_str::SmolStr;
use tokio::sync::Notify;

use crate::counter::Counter;
use crate::lock::Mutex;
use crate::protocol::kafka::{
    ATTRIBUTE_TRANSACTIONAL, BatchBuilder, InitProducerId, KafkaError, Metadata, Produce,
    ProducerIdentity, TopicPartition,
};
use crate::rpc::Rpc;

/// First pause before retrying a request that got no answer (Kafka's `retry.backoff.ms`).
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between retries (Kafka's `retry.backoff.max.ms`).
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How records are spread over a topic's partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partitioner {
    /// Kafka's default for unkeyed records: a whole batch goes to one partition, and the next
    /// batch to another one, drawn with the simulation's RNG.
    Sticky,
    /// Every record goes to this partition.
    Fixed(u32),
}

/// How a [`Producer`] batches and sends.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// The broker's address.
    pub broker: SocketAddr,
    /// How long a batch waits for more records after its first (`linger.ms`, 5 ms).
    pub linger: Duration,
    /// A batch is sent once it reaches this size (`batch.size`, 16 KiB).
    pub batch_bytes: usize,
    /// How long to wait for an answer before retrying. flinksim's default is 1 s rather than
    /// Kafka's 30 s, so that a restarted broker is reached again promptly in simulated time.
    pub request_timeout: Duration,
    /// Which partition each batch goes to.
    pub partitioner: Partitioner,
    /// How long a transaction may stay open before the broker aborts it
    /// (`transaction.timeout.ms`; Flink's Kafka sink sets 1 h). Transactional producers only.
    pub transaction_timeout: Duration,
    /// How long a transactional producer's `init`, `commit` and `abort` keep retrying an
    /// unreachable broker before giving up (`max.block.ms`, 60 s).
    pub max_block: Duration,
}

impl ProducerConfig {
    /// Kafka's defaults (docs/model/kafka.md#overview): linger 5 ms, 16 KiB batches, sticky
    /// partitioning.
    pub fn new(broker: SocketAddr) -> Self {
        ProducerConfig {
            broker,
            linger: Duration::from_millis(5),
            batch_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(1),
            partitioner: Partitioner::Sticky,
            transaction_timeout: Duration::from_secs(3600),
            max_block: Duration::from_secs(60),
        }
    }
}

/// Records that fall due over simulated time, which the producer's sender takes as they do
/// (a generator). Each record joins its batch as if sent at the instant it fell due; the sender
/// wakes only when a batch must open, fill up or leave, not for every few records.
pub trait RecordFeed: Send + 'static {
    /// The topic every record goes to.
    fn topic(&self) -> &str;
    /// When the record `ahead` records after the next one falls due; `None` if it never does.
    fn due(&self, ahead: u64) -> Option<Instant>;
    /// Appends to `batch` the records due by `now`, in order, each while
    /// [`BatchBuilder::append_if_room`] takes it, and moves past them; how many it appended. It
    /// stops at the first record not due yet or not fitting, which stays the next. A whole
    /// look's records in one call, written straight into their batch: taken one by one through
    /// the vtable, with a due instant stepped per record, they cost about 120 instructions
    /// more each (a callgrind profile).
    fn take_into(&mut self, now: Instant, batch: &mut BatchBuilder, max_bytes: usize) -> u64;
    /// No record's value is longer than this.
    fn max_value_bytes(&self) -> usize;
}

/// A handle on an idempotent producer; clones share one accumulator and one sender task.
#[derive(Clone)]
pub struct Producer {
    shared: Arc<Shared>,
    _closer: Arc<Closer>,
}

/// A batch still on the producer, open for more records until the sender takes it.
struct PendingBatch {
    builder: BatchBuilder,
    /// The number (in send order, per producer) of the batch's first record.
    first_record: u64,
    created: Instant,
}

/// One topic's batches: closed (full) ones in order, then the open one.
#[derive(Default)]
struct TopicQueue {
    full: VecDeque<PendingBatch>,
    open: Option<PendingBatch>,
}

impl TopicQueue {
    /// Appends record number `record` to the open batch (opened at `now` if there is none),
    /// closing batches that reach `batch_bytes`; `true` if the sender must look again.
    fn append(
        &mut self,
        record: u64,
        timestamp_ms: i64,
        value: &[u8],
        now: Instant,
        batch_bytes: usize,
    ) -> bool {
        let mut wake = false;
        if let Some(open) = &mut self.open {
            if open.builder.append_within(timestamp_ms, value, batch_bytes) {
                if open.builder.size_bytes() >= batch_bytes {
                    self.full.push_back(self.open.take().expect("just appended to"));
                    return true;
                }
                return false;
            }
            // It does not fit: the open batch is full.
            self.full.push_back(self.open.take().expect("checked above"));
            wake = true;
        }
        let open = self.open.get_or_insert_with(|| {
            // A new batch has a linger deadline the sender must learn about.
            wake = true;
            PendingBatch { builder: BatchBuilder::new(), first_record: record, created: now }
        });
        open.builder.append(timestamp_ms, value);
        if open.builder.size_bytes() >= batch_bytes {
            self.full.push_back(self.open.take().expect("just appended to"));
            wake = true;
        }
        wake
    }
}

/// The topics' queues, sorted by name (the order a map by name would iterate in). A producer
/// writes to one or two topics: a scan finds a queue for less than a map's search, which with
/// its key built from the name cost ~165 instructions a look (a callgrind profile: 1% of a run).
#[derive(Default)]
struct TopicQueues {
    queues: Vec<(SmolStr, TopicQueue)>,
    /// How many times a queue was added or all were dropped: a place in `queues` found while
    /// it had a value holds the same queue until it changes.
    changes: u64,
}

impl TopicQueues {
    /// `topic`'s queue, if it has one.
    fn get(&self, topic: &str) -> Option<&TopicQueue> {
        self.queues.iter().find(|(name, _)| name.as_str() == topic).map(|(_, queue)| queue)
    }

    /// `topic`'s queue, created empty (in its place by name) if it has none yet.
    fn entry(&mut self, topic: &str) -> &mut TopicQueue {
        let at = self.place(topic);
        &mut self.queues[at].1
    }

    /// `topic`'s place in `queues`, its queue created empty (in its place by name) if it has
    /// none yet.
    fn place(&mut self, topic: &str) -> usize {
        match self.queues.iter().position(|(name, _)| name.as_str() == topic) {
            Some(at) => at,
            None => {
                let at = self.queues.partition_point(|(name, _)| name.as_str() < topic);
                self.queues.insert(at, (SmolStr::new(topic), TopicQueue::default()));
                self.changes += 1;
                at
            }
        }
    }

    /// The queues with their topics, by topic name.
    fn iter(&self) -> impl Iterator<Item = &(SmolStr, TopicQueue)> {
        self.queues.iter()
    }

    /// Drops every queue.
    fn clear(&mut self) {
        self.queues.clear();
        self.changes += 1;
    }
}

#[derive(Default)]
struct Accumulator {
    topics: TopicQueues,
    /// The number the next record gets.
    next_record: u64,
    /// Records numbered below this are sent without waiting for their linger (a flush).
    flush_before: u64,
    /// The first record number of the batch being sent.
    in_flight: Option<u64>,
    /// Batches refused for good, by first record number, until a flush reports them.
    failed: Vec<(u64, KafkaError)>,
    /// Every handle is gone: send what is left and stop.
    closed: bool,
    /// The transaction is being aborted: send nothing more, stop retrying, and stop.
    abandoned: bool,
    /// Flushes waiting for progress: the sender tells of a batch done only while one waits
    /// (tokio's `notify_waiters` locks its list even when no one waits, about 55 instructions a
    /// batch).
    flushing: usize,
}

impl Accumulator {
    /// Appends one record to `topic`'s open batch (opened at `now` if there is none), closing
    /// batches that reach `batch_bytes`; `true` if the sender must look again.
    fn append(
        &mut self,
        topic: &str,
        timestamp_ms: i64,
        value: &[u8],
        now: Instant,
        batch_bytes: usize,
    ) -> bool {
        let record = self.next_record;
        self.next_record += 1;
        self.queue(topic).append(record, timestamp_ms, value, now, batch_bytes)
    }

    /// `topic`'s queue, created empty if it has none yet.
    fn queue(&mut self, topic: &str) -> &mut TopicQueue {
        self.topics.entry(topic)
    }

    /// The lowest record number not yet acknowledged or failed, if any is pending.
    fn first_pending(&self) -> Option<u64> {
        let queued = self
            .topics
            .iter()
            .filter_map(|(_, q)| q.full.front().or(q.open.as_ref()).map(|b| b.first_record));
        queued.chain(self.in_flight).min()
    }

    /// Takes the oldest batch that may leave now, with its topic and its queue's place (with
    /// the queues' `changes`), or says when the next one may.
    fn take_ready(
        &mut self,
        now: Instant,
        linger: Duration,
    ) -> Result<(SmolStr, QueuePlace, PendingBatch), Option<Instant>> {
        let mut best: Option<(usize, u64)> = None;
        let mut next_deadline: Option<Instant> = None;
        for (at, (_, queue)) in self.topics.iter().enumerate() {
            let candidate = if let Some(batch) = queue.full.front() {
                Some(batch.first_record)
            } else if let Some(batch) = &queue.open {
                let due = batch.created + linger;
                if due <= now || batch.first_record < self.flush_before || self.closed {
                    Some(batch.first_record)
                } else {
                    next_deadline = Some(next_deadline.map_or(due, |d| d.min(due)));
                    None
                }
            } else {
                None
            };
            if let Some(first) = candidate
                && best.is_none_or(|(_, b)| first < b)
            {
                best = Some((at, first));
            }
        }
        let Some((at, _)) = best else {
            return Err(next_deadline);
        };
        let (topic, queue) = &mut self.topics.queues[at];
        let topic = topic.clone();
        let batch = match queue.full.pop_front() {
            Some(batch) => batch,
            None => queue.open.take().expect("chosen because it is open"),
        };
        self.in_flight = Some(batch.first_record);
        Ok((topic, (self.topics.changes, at), batch))
    }
}

/// A queue's place among the accumulator's queues, with their `changes` when it was found.
type QueuePlace = (u64, usize);

struct Shared {
    config: ProducerConfig,
    accumulator: Mutex<Accumulator>,
    /// Wakes the sender: a batch opened or filled, a flush, or the last handle dropped.
    wake_sender: Notify,
    /// Wakes flushes whenever a batch is done, so they look again. A `Notify`, not a `watch`:
    /// watch shards its wakers by tokio's process-global RNG.
    progress: Notify,
    acked_records: Counter,
    /// A transactional producer's batches carry [`ATTRIBUTE_TRANSACTIONAL`].
    attributes: u16,
    /// Read per send, so held.
    clock: crate::timer::Clock,
}

/// Tells the sender when the last [`Producer`] handle is dropped.
struct Closer(Arc<Shared>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.accumulator.lock().closed = true;
        self.0.wake_sender.notify_one();
    }
}

impl Producer {
    /// A producer sending through `rpc`; its sender task runs on the calling node.
    pub fn new(rpc: Rpc, config: ProducerConfig) -> Producer {
        Producer::start(rpc, config, None, None)
    }

    /// A producer whose sender takes `feed`'s records as they fall due, besides any sent.
    pub fn with_feed(rpc: Rpc, config: ProducerConfig, feed: Box<dyn RecordFeed>) -> Producer {
        Producer::start(rpc, config, None, Some(feed))
    }

    /// A producer whose batches are transactional, written as `identity` (which the caller
    /// got from `InitProducerId` for a transactional id).
    pub(crate) fn transactional(
        rpc: Rpc,
        config: ProducerConfig,
        identity: ProducerIdentity,
    ) -> Producer {
        Producer::start(rpc, config, Some(identity), None)
    }

    fn start(
        rpc: Rpc,
        config: ProducerConfig,
        identity: Option<ProducerIdentity>,
        feed: Option<Box<dyn RecordFeed>>,
    ) -> Producer {
        let shared = Arc::new(Shared {
            config,
            accumulator: Mutex::new(Accumulator::default()),
            wake_sender: Notify::new(),
            progress: Notify::new(),
            acked_records: Counter::default(),
            attributes: if identity.is_some() { ATTRIBUTE_TRANSACTIONAL } else { 0 },
            clock: crate::timer::Clock::current(),
        });
        let mut sender = Sender::new(shared.clone(), rpc);
        sender.identity = identity;
        sender.feeding = feed.map(Feeding::new);
        madsim::task::spawn(sender.run());
        Producer { _closer: Arc::new(Closer(shared.clone())), shared }
    }

    /// Drops every batch not yet acknowledged and stops the sender (a retry in flight is not
    /// repeated). For aborting a transaction: what never arrived need not arrive.
    pub(crate) fn abandon(&self) {
        {
            let mut acc = self.shared.accumulator.lock();
            acc.abandoned = true;
            acc.topics.clear();
        }
        self.shared.wake_sender.notify_one();
        self.shared.progress.notify_waiters();
    }

    /// Appends one record to `topic`'s open batch; never blocks. The partition is chosen when
    /// the batch leaves (by the partitioner), so a sticky batch goes whole to one partition.
    pub fn send(&self, topic: &str, timestamp_ms: i64, value: &[u8]) {
        let now = self.shared.clock.now();
        let batch_bytes = self.shared.config.batch_bytes;
        let wake = self.shared.accumulator.lock().append(
            topic,
            timestamp_ms,
            value,
            now,
            batch_bytes,
        );
        if wake {
            self.shared.wake_sender.notify_one();
        }
    }

    /// Resolves once every record sent before the call is acknowledged by the broker (retrying
    /// through timeouts for as long as it takes); `Err` if the broker refused any of them.
    pub async fn flush(&self) -> Result<(), KafkaError> {
        let target = {
            let mut acc = self.shared.accumulator.lock();
            acc.flush_before = acc.flush_before.max(acc.next_record);
            acc.next_record
        };
        self.shared.wake_sender.notify_one();
        let mut waiting = FlushWaiting { shared: &self.shared, counted: false };
        loop {
            // Register for the wake-up before looking, so progress racing with the look
            // still wakes us.
            let progress = self.shared.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            {
                let mut acc = self.shared.accumulator.lock();
                if acc.first_pending().is_none_or(|first| first >= target) {
                    let failed = std::mem::take(&mut acc.failed);
                    let (mine, later): (Vec<_>, Vec<_>) =
                        failed.into_iter().partition(|(first, _)| *first < target);
                    acc.failed = later;
                    return match mine.into_iter().next() {
                        Some((_, error)) => Err(error),
                        None => Ok(()),
                    };
                }
                // Counted under the lock the sender takes to finish a batch: a batch finished
                // before was seen by the look above, one finished after is told of.
                if !waiting.counted {
                    acc.flushing += 1;
                    waiting.counted = true;
                }
            }
            progress.await;
        }
    }

    /// How many records the broker has acknowledged so far.
    pub fn acked_records(&self) -> u64 {
        self.shared.acked_records.get()
    }
}

/// The background task that ships batches, one request at a time, so each partition's batches
/// arrive in the order they were closed.
struct Sender {
    shared: Arc<Shared>,
    rpc: Rpc,
    identity: Option<ProducerIdentity>,
    /// What it knows of each topic it sent to: one or two, found by a scan.
    routes: Vec<(SmolStr, Route)>,
    /// The last batch's queue and its index in `routes`: the next batch from the same queue
    /// needs no scan (which compared topic names for about 65 instructions a batch, by a
    /// callgrind profile).
    last_route: Option<(QueuePlace, usize)>,
    /// Records taken as they fall due, if this producer has a feed.
    feeding: Option<Feeding>,
}

/// What a sender knows of one topic.
#[derive(Default)]
struct Route {
    /// Its partition count, once asked (for the sticky partitioner).
    partitions: Option<u32>,
    /// The partition its last batch went to.
    last_partition: Option<u32>,
    /// The next sequence number per partition the producer wrote to, in no order: a topic has a
    /// few partitions, and a scan finds one for less than a map's search and insert (which cost
    /// 70 instructions a batch, by a callgrind profile).
    sequences: Vec<(u32, i32)>,
}

impl Route {
    /// The next sequence number for `partition` (0 before its first batch).
    fn sequence(&self, partition: u32) -> i32 {
        self.sequences.iter().find(|(p, _)| *p == partition).map_or(0, |(_, s)| *s)
    }

    /// Sets the next sequence number for `partition`.
    fn set_sequence(&mut self, partition: u32, sequence: i32) {
        match self.sequences.iter_mut().find(|(p, _)| *p == partition) {
            Some((_, s)) => *s = sequence,
            None => self.sequences.push((partition, sequence)),
        }
    }
}

/// A sender's feed.
struct Feeding {
    feed: Box<dyn RecordFeed>,
    /// The feed's topic and the most bytes one of its records takes in a batch, asked once
    /// rather than through its vtable per look (the varints of a timestamp delta and of a
    /// length take at most 10 bytes each).
    topic: SmolStr,
    record_bound: usize,
    /// The topic's place among the accumulator's queues and their `changes` when it was found:
    /// found by name once, not at every look and again for its next (a callgrind profile: the
    /// two searches cost 130 instructions a look).
    queue_at: Option<(u64, usize)>,
}

impl Feeding {
    /// Feeding from `feed`.
    fn new(feed: Box<dyn RecordFeed>) -> Feeding {
        let topic = SmolStr::new(feed.topic());
        let record_bound = feed.max_value_bytes() + 20;
        Feeding { feed, topic, record_bound, queue_at: None }
    }

    /// The feed's topic's place among `acc`'s queues as last found, if no topic was queued
    /// since.
    fn known_queue_at(&self, acc: &Accumulator) -> Option<usize> {
        self.queue_at.filter(|&(changes, _)| changes == acc.topics.changes).map(|(_, at)| at)
    }

    /// The feed's topic's place among `acc`'s queues (its queue created if it has none yet).
    fn queue_at(&mut self, acc: &mut Accumulator) -> usize {
        if let Some(at) = self.known_queue_at(acc) {
            return at;
        }
        let at = acc.topics.place(&self.topic);
        self.queue_at = Some((acc.topics.changes, at));
        at
    }

    /// Appends the feed's records due by `now`, each as if sent at its due instant: as
    /// [`TopicQueue::append`] would one by one, a batch opens at its first record's due instant
    /// and closes once the next record does not fit or it reaches `batch_bytes`.
    fn take_due(&mut self, acc: &mut Accumulator, now: Instant, batch_bytes: usize) {
        let Some(mut due) = self.feed.due(0).filter(|due| *due <= now) else {
            return;
        };
        let mut record = acc.next_record;
        let at = self.queue_at(acc);
        let queue = &mut acc.topics.queues[at].1;
        loop {
            let open = queue.open.get_or_insert_with(|| PendingBatch {
                builder: BatchBuilder::new(),
                first_record: record,
                created: due,
            });
            record += self.feed.take_into(now, &mut open.builder, batch_bytes);
            match self.feed.due(0) {
                // Due but not taken: it does not fit the open batch, which is full.
                Some(next) if next <= now => due = next,
                _ => {
                    if open.builder.size_bytes() >= batch_bytes {
                        queue.full.push_back(queue.open.take().expect("just appended to"));
                    }
                    break;
                }
            }
            queue.full.push_back(queue.open.take().expect("just appended to"));
        }
        acc.next_record = record;
    }

    /// When the sender must look again for the feed: when its next record opens a batch if
    /// none is open, or else when the open batch may have filled up (before it lingers out).
    fn next_look(&self, acc: &Accumulator, batch_bytes: usize) -> Option<Instant> {
        let queue = match self.known_queue_at(acc) {
            Some(at) => Some(&acc.topics.queues[at].1),
            None => acc.topics.get(&self.topic),
        };
        let open = queue.and_then(|queue| queue.open.as_ref());
        let Some(open) = open else {
            return self.feed.due(0);
        };
        // The records due before the returned instant fit (each takes at most `record_bound`).
        let room = batch_bytes.saturating_sub(open.builder.size_bytes());
        self.feed.due((room / self.record_bound) as u64)
    }
}

impl Sender {
    fn new(shared: Arc<Shared>, rpc: Rpc) -> Self {
        Sender {
            shared,
            rpc,
            identity: None,
            routes: Vec::new(),
            last_route: None,
            feeding: None,
        }
    }

    async fn run(mut self) {
        loop {
            let now = self.shared.clock.now();
            let batch_bytes = self.shared.config.batch_bytes;
            let (ready, feed_wake) = {
                let mut acc = self.shared.accumulator.lock();
                if (acc.closed || acc.abandoned) && acc.first_pending().is_none() {
                    return;
                }
                // A closed or abandoned producer takes no more records from its feed.
                let feeding = self.feeding.as_mut().filter(|_| !(acc.closed || acc.abandoned));
                let feed_wake = feeding.map(|feeding| {
                    feeding.take_due(&mut acc, now, batch_bytes);
                    feeding.next_look(&acc, batch_bytes)
                });
                (acc.take_ready(now, self.shared.config.linger), feed_wake.flatten())
            };
            match ready {
                Ok((topic, place, batch)) => {
                    let records = u64::from(batch.builder.record_count());
                    let route = self.route_of(&topic, place);
                    let result = self.deliver(&topic, route, batch.builder).await;
                    let mut acc = self.shared.accumulator.lock();
                    acc.in_flight = None;
                    match result {
                        Ok(()) => {
                            self.shared.acked_records.add(records);
                        }
                        Err(error) => acc.failed.push((batch.first_record, error)),
                    }
                    let flushing = acc.flushing > 0;
                    drop(acc);
                    if flushing {
                        self.shared.progress.notify_waiters();
                    }
                }
                Err(linger) => match linger.into_iter().chain(feed_wake).min() {
                    Some(wake) => {
                        let wait = wake.saturating_duration_since(now);
                        let _ = crate::timer::timeout(wait, self.shared.wake_sender.notified()).await;
                    }
                    None => self.shared.wake_sender.notified().await,
                },
            }
        }
    }

    /// Sends one batch until the broker acknowledges it (Ok) or refuses it for good (Err);
    /// `route` is `topic`'s [`route_index`](Self::route_index).
    async fn deliver(
        &mut self,
        topic: &SmolStr,
        route: usize,
        builder: BatchBuilder,
    ) -> Result<(), KafkaError> {
        // Known after the first batch: no future made for the lookup then (nor below for a
        // partition count already asked).
        let identity = match self.identity {
            Some(identity) => identity,
            None => self.identity().await,
        };
        let partition = match self.shared.config.partitioner {
            Partitioner::Fixed(partition) => partition,
            Partitioner::Sticky => match self.routes[route].1.partitions {
                Some(count) => self.draw_partition(topic, route, count)?,
                None => self.sticky_partition(topic, route).await?,
            },
        };
        let tp = TopicPartition::new(topic.clone(), partition);
        let sequence = self.routes[route].1.sequence(partition);
        let count = builder.record_count();
        let batch = builder.finish_with_attributes(
            identity.producer_id,
            identity.producer_epoch,
            sequence,
            self.shared.attributes,
        );
        let mut backoff = RETRY_BACKOFF;
        loop {
            if self.shared.accumulator.lock().abandoned {
                return Err(KafkaError::InvalidTxnState {
                    transactional_id: SmolStr::default(),
                    reason: SmolStr::new(
                        "the transaction was aborted before this batch was acknowledged",
                    ),
                });
            }
            let request = Produce { partition: tp.clone(), batch: batch.clone() };
            let config = &self.shared.config;
            match self.rpc.call(config.broker, request, config.request_timeout).await {
                Ok(response) => {
                    response.result?;
                    self.routes[route].1.set_sequence(partition, sequence.wrapping_add(count as i32));
                    return Ok(());
                }
                // A timeout may hide an append whose answer was lost; resending the same batch
                // (same sequence) lets the broker recognise it.
                Err(_) => backoff = pause(backoff).await,
            }
        }
    }

    /// The producer id, asked for once and retried until the broker answers.
    async fn identity(&mut self) -> ProducerIdentity {
        if let Some(identity) = self.identity {
            return identity;
        }
        let mut backoff = RETRY_BACKOFF;
        loop {
            let config = &self.shared.config;
            let request = InitProducerId::idempotent();
            match self.rpc.call(config.broker, request, config.request_timeout).await {
                Ok(response) => {
                    if let Ok(identity) = response.result {
                        self.identity = Some(identity);
                        return identity;
                    }
                    backoff = pause(backoff).await;
                }
                Err(_) => backoff = pause(backoff).await,
            }
        }
    }

    /// [`route_index`](Self::route_index) for a batch from the queue at `place`: the last
    /// batch's route if it came from the same queue.
    fn route_of(&mut self, topic: &SmolStr, place: QueuePlace) -> usize {
        match self.last_route {
            Some((last, route)) if last == place => route,
            _ => {
                let route = self.route_index(topic);
                self.last_route = Some((place, route));
                route
            }
        }
    }

    /// Where in `routes` the sender keeps what it knows of `topic` (added if new).
    fn route_index(&mut self, topic: &SmolStr) -> usize {
        match self.routes.iter().position(|(known, _)| known == topic) {
            Some(index) => index,
            None => {
                self.routes.push((topic.clone(), Route::default()));
                self.routes.len() - 1
            }
        }
    }

    /// A partition other than the previous batch's, drawn with the simulation's RNG; `route`
    /// is `topic`'s [`route_index`](Self::route_index).
    async fn sticky_partition(&mut self, topic: &SmolStr, route: usize) -> Result<u32, KafkaError> {
        let count = match self.routes[route].1.partitions {
            Some(count) => count,
            None => {
                let mut backoff = RETRY_BACKOFF;
                let count = loop {
                    let config = &self.shared.config;
                    let request = Metadata { topic: topic.clone() };
                    match self.rpc.call(config.broker, request, config.request_timeout).await {
                        Ok(response) => break response.result?,
                        Err(_) => backoff = pause(backoff).await,
                    }
                };
                self.routes[route].1.partitions = Some(count);
                count
            }
        };
        self.draw_partition(topic, route, count)
    }

    /// A partition of `count` other than the previous batch's, drawn with the simulation's
    /// RNG; `route` is `topic`'s [`route_index`](Self::route_index).
    fn draw_partition(&mut self, topic: &SmolStr, route: usize, count: u32) -> Result<u32, KafkaError> {
        let route = &mut self.routes[route].1;
        let previous = route.last_partition;
        let partition = match (count, previous) {
            (0, _) => {
                return Err(KafkaError::UnknownTopicOrPartition {
                    partition: TopicPartition::new(topic.clone(), 0),
                });
            }
            (1, _) | (_, None) => madsim::rand::thread_rng().gen_range(0..count),
            (_, Some(previous)) => {
                // Draw among the others: skip over the previous partition.
                let drawn = madsim::rand::thread_rng().gen_range(0..count - 1);
                if drawn >= previous { drawn + 1 } else { drawn }
            }
        };
        route.last_partition = Some(partition);
        Ok(partition)
    }
}

/// A flush counted among those waiting for progress (once it found records pending), until it
/// ends or is dropped.
struct FlushWaiting<'a> {
    shared: &'a Shared,
    counted: bool,
}

impl Drop for FlushWaiting<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.shared.accumulator.lock().flushing -= 1;
        }
    }
}

/// Sleeps `backoff`, returning the next (doubled, capped) backoff.
async fn pause(backoff: Duration) -> Duration {
    madsim::time::sleep(backoff).await;
    (backoff * 2).min(RETRY_BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINGER: Duration = Duration::from_millis(5);
    const BATCH_BYTES: usize = 16 * 1024;

    /// Record k is `value` (50 bytes), with timestamp k, due at `origin + k * pace`.
    struct Ticks {
        origin: Instant,
        pace: Duration,
        next: u64,
    }

    impl RecordFeed for Ticks {
        fn topic(&self) -> &str {
            "ticks"
        }
        fn due(&self, ahead: u64) -> Option<Instant> {
            Some(self.origin + self.pace * u32::try_from(self.next + ahead).ok()?)
        }
        fn take_into(&mut self, now: Instant, batch: &mut BatchBuilder, max_bytes: usize) -> u64 {
            let mut taken = 0;
            while self.due(0).is_some_and(|due| due <= now)
                && batch.append_if_room(self.next as i64, &[b'x'; 50], max_bytes)
            {
                self.next += 1;
                taken += 1;
            }
            taken
        }
        fn max_value_bytes(&self) -> usize {
            50
        }
    }

    fn feeding(origin: Instant, pace: Duration) -> Feeding {
        Feeding::new(Box::new(Ticks { origin, pace, next: 0 }))
    }

    fn runtime() -> madsim::runtime::Runtime {
        madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default())
    }

    #[test]
    fn a_feeds_records_join_their_batch_as_if_sent_when_due() {
        runtime().block_on(async {
            let t0 = Instant::now();
            let ms = |n: u64| Duration::from_millis(n);
            let mut feeding = feeding(t0 + ms(1), Duration::from_micros(2500));
            let mut acc = Accumulator::default();
            // Nothing open yet: look again when record 0 falls due.
            assert_eq!(feeding.next_look(&acc, BATCH_BYTES), Some(t0 + ms(1)));
            // Looked at late (a request was in flight): records 0-3 are due; the batch opened
            // when record 0 fell due, so it has lingered out already.
            feeding.take_due(&mut acc, t0 + ms(9), BATCH_BYTES);
            assert_eq!(acc.next_record, 4);
            let (_, _, batch) = acc.take_ready(t0 + ms(9), LINGER).expect("lingered since 1 ms");
            assert_eq!((batch.created, batch.builder.record_count()), (t0 + ms(1), 4));
            // Record 4 (due at 11 ms) opens the next batch, which leaves at 16 ms.
            feeding.take_due(&mut acc, t0 + ms(12), BATCH_BYTES);
            assert_eq!(acc.take_ready(t0 + ms(12), LINGER).err(), Some(Some(t0 + ms(16))));
        });
    }

    #[test]
    fn a_feed_finds_its_queue_again_once_another_topic_is_queued_before_it() {
        runtime().block_on(async {
            let t0 = Instant::now();
            let mut feeding = feeding(t0, Duration::from_millis(1));
            let mut acc = Accumulator::default();
            feeding.take_due(&mut acc, t0, BATCH_BYTES);
            assert!(acc.append("a-topic-before", 0, b"x", t0, BATCH_BYTES), "a new batch");
            feeding.take_due(&mut acc, t0 + Duration::from_millis(2), BATCH_BYTES);
            let count = |topic: &str| {
                acc.topics.get(topic).unwrap().open.as_ref().unwrap().builder.record_count()
            };
            assert_eq!((count("ticks"), count("a-topic-before")), (3, 1));
            // It sees its open batch (three records of 52 bytes after the header's 40), so looks
            // again when that may have filled up, not when its next record falls due.
            let room = BATCH_BYTES - 40 - 3 * 52;
            let full_by = feeding.feed.due((room / feeding.record_bound) as u64);
            assert_eq!(feeding.next_look(&acc, BATCH_BYTES), full_by);
        });
    }

    #[test]
    fn a_fast_feed_is_looked_at_again_before_its_batch_can_overflow() {
        runtime().block_on(async {
            let t0 = Instant::now();
            let pace = Duration::from_micros(10); // a batch fills in about 3 ms, before its linger
            let mut feeding = feeding(t0, pace);
            let mut acc = Accumulator::default();
            let mut now = t0;
            let mut looks = 0;
            // Each look takes what is due, then says when to look again: never after the
            // batch it leaves open has filled up.
            while acc.topics.get("ticks").is_none_or(|queue| queue.full.is_empty()) {
                let look = feeding.next_look(&acc, BATCH_BYTES).unwrap();
                assert!(look >= now, "the next look is not behind");
                let before = look - Duration::from_nanos(1);
                feeding.take_due(&mut acc, before, BATCH_BYTES);
                let full = acc.topics.get("ticks").map_or(0, |queue| queue.full.len());
                assert_eq!(full, 0, "filled up before look {looks} at {:?}", look - t0);
                feeding.take_due(&mut acc, look, BATCH_BYTES);
                now = look;
                looks += 1;
            }
            let full = &acc.topics.get("ticks").unwrap().full[0];
            assert!(full.builder.size_bytes() <= BATCH_BYTES);
            assert!(full.builder.size_bytes() + 52 > BATCH_BYTES, "{}", full.builder.size_bytes());
            assert!(now - t0 < LINGER, "full after {:?}", now - t0);
            assert!(looks < 30, "{looks} looks for one batch");
        });
    }
}
