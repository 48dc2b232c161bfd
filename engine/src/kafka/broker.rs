//! The `kafka` node (docs/model/kafka.md#overview): one broker, replication 1. It recovers every
//! partition's log, the producer-id counter, the committed offsets and the transaction
//! coordinator's state from its own disk on each start, then answers produce, fetch (long-polled up
//! to `fetch.max.wait.ms`), metadata, offset and transaction requests, and aborts transactions that
//! outlive their timeout (checked every 10 s).

use crate::plant::{PlantedBug, Plants};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

// futures-util's: an uncontended lock is one atomic operation each way, where tokio's goes
// through its semaphore's own lock (a callgrind profile: about 2% of a run, a lock per request).
use futures_util::lock::Mutex;
use smol_str::SmolStr;

use super::coordinator::{Coordinator, Env, PRODUCER_IDS_CELL, ProducerIds};
use super::log::{LogLock, PartitionLog, PartitionLogs, SEGMENT_BYTES_DEFAULT};
use super::purgatory::{Purgatory, Woken};
use crate::cell;
use crate::protocol::kafka::{
    BatchHeader, EndTxn, EndTxnResponse, Fetch, FetchResponse, FetchedPartition, InitProducerId,
    InitProducerIdResponse, IsolationLevel, KafkaError, ListOffsets, ListOffsetsResponse,
    ListTransactions, ListTransactionsResponse, Metadata, MetadataResponse, OffsetCommit,
    OffsetCommitResponse, OffsetFetch, OffsetFetchResponse, Produce, ProduceResponse,
    ProducerIdentity, RecordBatches, TopicPartition, TopicSpec,
};
use crate::rpc::{Network, Rpc};
use crate::lifecycle::Shutdown;
use crate::trace::{Event, NodeTrace};

/// The longest a fetch may be held, whatever the consumer asks (keeps a bad request bounded).
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);
/// How often the broker looks for transactions open longer than their timeout (Kafka's
/// `transaction.abort.timed.out.transaction.cleanup.interval.ms`).
pub const TRANSACTION_TIMEOUT_CHECK: Duration = Duration::from_secs(10);

const TOPICS_CELL: &str = "kafka/topics";
const OFFSETS_CELL: &str = "kafka/consumer-offsets";

/// How to start the broker node.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Where the broker listens (`kafka:9092`).
    pub addr: SocketAddr,
    /// Topics created on the first start; later starts add only topics not on disk yet.
    pub topics: Vec<TopicSpec>,
    /// The run's simulated network (and its link faults), shared with every other node.
    pub network: Network,
    /// Where the broker records its few significant events.
    pub trace: NodeTrace,
    /// `transaction.max.timeout.ms`: the longest transaction timeout a producer may ask for.
    pub transaction_max_timeout: Duration,
    /// SIGTERM (`docker-compose stop`): a controlled shutdown.
    pub shutdown: Shutdown,
    /// The bugs planted in this run (docs/planted-bugs.md); none by default.
    pub plants: Plants,
}

/// Kafka's own default `transaction.max.timeout.ms` (15 min).
pub const KAFKA_TRANSACTION_MAX_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// flinksim's default `transaction.max.timeout.ms` (1 h): Flink's documentation tells
/// exactly-once users to raise Kafka's 15 min to at least the sink's 1 h, so the playground's
/// exactly-once job works out of the box; a scenario can set Kafka's own value.
pub const DEFAULT_TRANSACTION_MAX_TIMEOUT: Duration = Duration::from_secs(3600);

impl BrokerConfig {
    /// A broker at `addr` with `topics` and flinksim's defaults.
    pub fn new(addr: SocketAddr, topics: Vec<TopicSpec>, network: Network, trace: NodeTrace) -> Self {
        BrokerConfig {
            addr,
            topics,
            network,
            trace,
            transaction_max_timeout: DEFAULT_TRANSACTION_MAX_TIMEOUT,
            shutdown: Shutdown::default(),
            plants: Plants::NONE,
        }
    }
}

/// The broker node's main: recovers the log from disk (or creates the topics on the first
/// start), binds at `config.addr` and serves until the node is killed. Re-run on every restart.
pub async fn run(config: BrokerConfig) {
    let broker = match Broker::recover(&config).await {
        Ok(broker) => Arc::new(broker),
        Err(e) => {
            config.trace.event(format!("kafka broker failed to start: {e}"));
            return;
        }
    };
    let rpc = Rpc::bind(config.addr, config.network.clone());
    // Finish the transactions whose commit or abort was decided before the last kill.
    if let Err(e) = broker.complete_pending_transactions().await {
        config.trace.event(format!("kafka broker failed to complete transactions: {e}"));
        return;
    }
    serve(&rpc, &broker);
    let b = broker.clone();
    madsim::task::spawn(async move {
        loop {
            madsim::time::sleep(TRANSACTION_TIMEOUT_CHECK).await;
            b.abort_expired_transactions().await;
        }
    });
    config.trace.event(format!("kafka broker started on {}", config.addr));
    madsim::task::spawn(shut_down_on_sigterm(config.clone(), broker.clone(), rpc.clone()));
    // The node exits when its main returns; the handlers run in their own tasks.
    std::future::pending::<()>().await;
}

/// On SIGTERM, a controlled shutdown: held fetches are answered at once (their connections
/// close, so consumers learn at once instead of after `fetch.max.wait.ms`), answers in flight
/// leave, and the node may go. Logs, offsets and transaction state are on disk already.
async fn shut_down_on_sigterm(config: BrokerConfig, broker: Arc<Broker>, rpc: Rpc) {
    config.shutdown.requested().await;
    config.trace.record(Event::ShutdownStarted { grace: crate::lifecycle::STOP_GRACE });
    broker.closing.store(true, Ordering::Relaxed);
    broker.wake_all_fetches();
    // The answers just released go out on the node's next turn; give them that turn.
    madsim::time::sleep(Duration::from_millis(1)).await;
    drop(rpc);
    config.trace.record(Event::ShutdownCompleted);
    config.shutdown.complete();
}

fn serve(rpc: &Rpc, broker: &Arc<Broker>) {
    let b = broker.clone();
    rpc.serve(move |req: InitProducerId, _| {
        let b = b.clone();
        async move { InitProducerIdResponse { result: b.init_producer_id(req).await } }
    });
    let b = broker.clone();
    rpc.serve(move |req: EndTxn, _| {
        let b = b.clone();
        async move { EndTxnResponse { result: b.end_txn(req).await } }
    });
    let b = broker.clone();
    rpc.serve(move |req: ListTransactions, _| {
        let b = b.clone();
        async move {
            let listed = b.coordinator.lock().await.list(&req.prefix, req.include_ended);
            ListTransactionsResponse { result: Ok(listed) }
        }
    });
    let b = broker.clone();
    rpc.serve(move |req: Produce, _| b.clone().produce(req));
    let b = broker.clone();
    // The fetch's own future, not one around it: the broker's answer is built in the rpc
    // layer's box, where an `async move` around it moved it into its own state, a copy of
    // some 400 bytes per fetch.
    rpc.serve(move |req: Fetch, _| b.clone().fetch(req));
    let b = broker.clone();
    rpc.serve(move |req: Metadata, _| {
        let result =
            b.topics.get(&req.topic).copied().ok_or(KafkaError::UnknownTopic { topic: req.topic });
        async move { MetadataResponse { result } }
    });
    let b = broker.clone();
    rpc.serve(move |req: ListOffsets, _| {
        let b = b.clone();
        async move {
            ListOffsetsResponse { result: b.list_offsets(&req.partitions, req.isolation).await }
        }
    });
    let b = broker.clone();
    rpc.serve(move |req: OffsetCommit, _| {
        let b = b.clone();
        async move { OffsetCommitResponse { result: b.commit_offsets(req).await } }
    });
    let b = broker.clone();
    rpc.serve(move |req: OffsetFetch, _| {
        let b = b.clone();
        async move { OffsetFetchResponse { result: b.committed_offsets(req).await } }
    });
}

/// Committed offsets per (group, partition), rewritten to disk on every commit.
struct GroupOffsets {
    offsets: BTreeMap<(SmolStr, TopicPartition), u64>,
    generation: u64,
}

/// Locks a `Mutex` (an expression), taking it at once when it is free, as nearly always: no lock
/// future is made or polled (`lock().await` on a free lock cost 43 instructions, and an async
/// fn around `try_lock` 25, 77,753 times in 5 simulated minutes). A taken lock is waited for
/// as `lock().await` would, so no task is polled more or less often. Inside an async fn only.
macro_rules! locked {
    ($mutex:expr) => {{
        let mutex: &Mutex<_> = $mutex;
        match mutex.try_lock() {
            Some(guard) => guard,
            None => mutex.lock().await,
        }
    }};
}

struct Broker {
    topics: BTreeMap<SmolStr, u32>,
    logs: PartitionLogs,
    /// The fetches that found nothing, until their partitions change or their time is up.
    purgatory: Purgatory,
    producer_ids: Mutex<ProducerIds>,
    offsets: Mutex<GroupOffsets>,
    /// Transactional ids and their transactions. Lock order: coordinator, then a partition.
    coordinator: Mutex<Coordinator>,
    trace: crate::trace::NodeTrace,
    transaction_max_timeout: Duration,
    /// Planted bug `read-committed-shows-aborted` (docs/planted-bugs.md), read once at start.
    hide_aborted_index: bool,
    /// Set on SIGTERM: held fetches are answered at once, as a closing connection ends them.
    closing: AtomicBool,
    /// Read per fetch, so held.
    clock: crate::timer::Clock,
}

impl Broker {
    async fn recover(config: &BrokerConfig) -> Result<Broker, KafkaError> {
        let storage = |what: &str, e: std::io::Error| KafkaError::Storage {
            what: SmolStr::new(what),
            reason: SmolStr::new(e.to_string()),
        };
        let (topics_generation, mut specs) =
            cell::read::<Vec<TopicSpec>>(TOPICS_CELL).await.unwrap_or((0, Vec::new()));
        let known = specs.len();
        for spec in &config.topics {
            if !specs.iter().any(|s| s.name == spec.name) {
                specs.push(spec.clone());
                config.trace.event(format!(
                    "created topic {} with {} partitions",
                    spec.name, spec.partitions
                ));
            }
        }
        if specs.len() != known {
            cell::write(TOPICS_CELL, topics_generation + 1, &specs)
                .await
                .map_err(|e| storage(TOPICS_CELL, e))?;
        }

        let mut logs = Vec::new();
        let mut records = 0;
        let mut max_producer_id = -1;
        for spec in &specs {
            for partition in 0..spec.partitions {
                let tp = TopicPartition::new(spec.name.clone(), partition);
                let log = PartitionLog::open(tp.clone(), SEGMENT_BYTES_DEFAULT).await?;
                records += log.high_watermark();
                max_producer_id = max_producer_id.max(log.max_producer_id().unwrap_or(-1));
                logs.push((tp, LogLock::new(log)));
            }
        }
        if known > 0 {
            config.trace.event(format!("recovered {records} records in {} partitions", logs.len()));
        }
        let coordinator = Coordinator::recover().await?;
        let (ids, open) = coordinator.counts();
        if ids > 0 {
            config.trace.event(format!(
                "recovered {ids} transactional ids, {open} with an open transaction"
            ));
        }
        max_producer_id = max_producer_id.max(coordinator.max_producer_id().unwrap_or(-1));

        let (ids_generation, reserved) =
            cell::read::<i64>(PRODUCER_IDS_CELL).await.unwrap_or((0, 0));
        // Start a fresh block: ids handed out from the old one may be in use, written or not.
        let next = reserved.max(max_producer_id + 1);
        let (offsets_generation, committed) =
            cell::read::<Vec<(SmolStr, TopicPartition, u64)>>(OFFSETS_CELL)
                .await
                .unwrap_or((0, Vec::new()));
        let logs = PartitionLogs::new(logs);
        let purgatory = Purgatory::new(logs.len());
        Ok(Broker {
            topics: specs.iter().map(|s| (s.name.clone(), s.partitions)).collect(),
            logs,
            purgatory,
            producer_ids: Mutex::new(ProducerIds {
                next,
                reserved_until: next,
                generation: ids_generation,
            }),
            offsets: Mutex::new(GroupOffsets {
                offsets: committed.into_iter().map(|(g, tp, o)| ((g, tp), o)).collect(),
                generation: offsets_generation,
            }),
            coordinator: Mutex::new(coordinator),
            trace: config.trace.clone(),
            transaction_max_timeout: config.transaction_max_timeout,
            hide_aborted_index: config.plants.has(PlantedBug::ReadCommittedShowsAborted),
            closing: AtomicBool::new(false),
            clock: crate::timer::Clock::current(),
        })
    }

    fn env(&self) -> Env<'_> {
        Env { logs: &self.logs, producer_ids: &self.producer_ids, now: self.trace.elapsed() }
    }

    async fn complete_pending_transactions(&self) -> Result<(), KafkaError> {
        let mut coordinator = self.coordinator.lock().await;
        let result = coordinator.complete_pending(&self.env()).await;
        self.wake_all_fetches();
        result
    }

    async fn abort_expired_transactions(&self) {
        let mut coordinator = self.coordinator.lock().await;
        let result = coordinator.abort_expired(&self.env()).await;
        self.wake_all_fetches();
        match result {
            Ok(aborted) => {
                for (transactional_id, timeout) in aborted {
                    self.trace.record(Event::TransactionTimedOut { transactional_id, timeout });
                }
            }
            Err(e) => self.trace.event(format!("failed to abort timed-out transactions: {e}")),
        }
    }

    async fn end_txn(&self, req: EndTxn) -> Result<(), KafkaError> {
        let mut coordinator = self.coordinator.lock().await;
        let wrote = coordinator.end_txn(&self.env(), &req).await;
        if !matches!(wrote, Ok(false)) {
            self.wake_all_fetches();
        }
        wrote.map(|_| ())
    }

    /// Wakes every held fetch: transaction markers (commit, abort, fencing) may have moved
    /// any partition's last stable offset.
    fn wake_all_fetches(&self) {
        self.purgatory.changed_all();
    }

    fn log(&self, tp: &TopicPartition) -> Result<&LogLock, KafkaError> {
        self.logs.get(tp).ok_or_else(|| unknown_partition(tp))
    }

    async fn init_producer_id(&self, req: InitProducerId) -> Result<ProducerIdentity, KafkaError> {
        let Some(id) = req.transactional_id else {
            let producer_id = self.producer_ids.lock().await.allocate().await?;
            return Ok(ProducerIdentity { producer_id, producer_epoch: 0 });
        };
        if req.transaction_timeout > self.transaction_max_timeout {
            return Err(KafkaError::InvalidTransactionTimeout {
                transactional_id: id,
                requested_ms: req.transaction_timeout.as_millis() as u64,
                max_ms: self.transaction_max_timeout.as_millis() as u64,
            });
        }
        let mut coordinator = self.coordinator.lock().await;
        let result = coordinator.init_producer_id(&self.env(), &id, req.transaction_timeout).await;
        // Re-registering may have aborted the old epoch's transaction: wake held fetches.
        self.wake_all_fetches();
        result
    }

    /// Appends a produced batch. The answer itself, not a future an `async move` around it
    /// awaits: that one moved this future into its own state, a copy of some 400 bytes per
    /// produce (as for [`fetch`](Self::fetch)).
    async fn produce(self: Arc<Self>, req: Produce) -> ProduceResponse {
        let Some(index) = self.logs.index(&req.partition) else {
            return ProduceResponse { result: Err(unknown_partition(&req.partition)) };
        };
        let log = self.logs.at(index);
        let transactional = BatchHeader::decode(&req.batch).is_ok_and(|h| h.is_transactional());
        let result = if transactional {
            // Boxed: the coordinator's check would make every produce's future (which the rpc
            // layer boxes) twice as large, for the few batches of transactions.
            Box::pin(self.produce_transactional(log, &req.partition, req.batch)).await
        } else {
            log.lock().append(req.batch)
        };
        if result.as_ref().is_ok_and(|ack| !ack.duplicate) {
            self.purgatory.appended(index);
        }
        ProduceResponse { result }
    }

    /// Appends a transactional batch. The coordinator admits the batch (fencing, implicit join
    /// of the partition) and stays locked until it is appended, so no marker can slip in
    /// between (only the coordinator writes markers, and only this producer's batches need
    /// its admission); a duplicate is acknowledged with its original offset, as
    /// [`append`](PartitionLog::append) does. The log is not held while the coordinator
    /// stores its admission, which awaits the disk.
    async fn produce_transactional(
        &self,
        log: &LogLock,
        partition: &TopicPartition,
        batch: bytes::Bytes,
    ) -> Result<super::ProduceAck, KafkaError> {
        let mut coordinator = locked!(&self.coordinator);
        let (parsed, header) = {
            let log = log.lock();
            let parsed = log.parse_produced(batch)?;
            let header = *parsed.header();
            if let Some(base_offset) = log.duplicate_of(&header)? {
                return Ok(super::ProduceAck { base_offset, duplicate: true });
            }
            (parsed, header)
        };
        coordinator.check_produce(&self.env(), partition, &header).await?;
        log.lock().append_parsed(parsed)
    }

    /// Answers at once if any partition has data (or an error); otherwise holds the request
    /// in the purgatory until a partition changes or `max_wait` runs out, as Kafka does.
    async fn fetch(self: Arc<Self>, req: Fetch) -> FetchResponse {
        let deadline = self.clock.now() + req.max_wait.min(MAX_WAIT_CAP);
        // Each partition found once: its place names its log here and its waiters there.
        let asked = req.partitions.iter().map(|position| self.logs.index(&position.partition));
        let mut hold = self.purgatory.hold(asked, deadline);
        // One list for every read of the fetch: a held fetch reads again once woken.
        let mut partitions = Vec::with_capacity(req.partitions.len());
        loop {
            let seen = hold.changes();
            partitions.clear();
            let mut ready = false;
            for (position, index) in req.partitions.iter().zip(hold.partitions()) {
                // Read into its place in the list: built in the read and moved out, the
                // partition's answer was copied twice more per read (a callgrind profile: 2.3 M
                // instructions in 5 simulated minutes, 47 a read).
                partitions.push(FetchedPartition {
                    partition: position.partition.clone(),
                    high_watermark: 0,
                    last_stable_offset: 0,
                    records: bytes::Bytes::new(),
                    aborted_transactions: Vec::new(),
                    error: None,
                });
                let fetched = partitions.last_mut().expect("just pushed");
                match index {
                    Some(index) => {
                        let log = self.logs.at(*index).lock();
                        self.read(fetched, &log, position.offset, req.max_partition_bytes, req.isolation);
                    }
                    None => fetched.error = Some(unknown_partition(&position.partition)),
                }
                ready |= !fetched.records.is_empty() || fetched.error.is_some();
            }
            if ready || self.clock.now() >= deadline || self.closing.load(Ordering::Relaxed) {
                return FetchResponse { partitions };
            }
            match hold.wait(seen).await {
                Woken::Changed => continue,
                // Timed out: answer with what we have, nothing.
                Woken::Deadline => return FetchResponse { partitions },
            }
        }
    }

    /// One partition's part of a fetch. `ReadCommitted` reads stop at the last stable offset
    /// and carry the aborted transactions overlapping the returned batches; the consumer does
    /// the filtering (as Kafka's does), so the broker hands out stored batches unchanged.
    /// `fetched` comes empty, naming its partition; the caller holds the partition's log.
    fn read(
        &self,
        fetched: &mut FetchedPartition,
        log: &PartitionLog,
        offset: u64,
        max_bytes: u32,
        isolation: IsolationLevel,
    ) {
        fetched.high_watermark = log.high_watermark();
        fetched.last_stable_offset = log.last_stable_offset();
        let end = match isolation {
            IsolationLevel::ReadUncommitted => fetched.high_watermark,
            IsolationLevel::ReadCommitted => fetched.last_stable_offset,
        };
        match log.read_until(offset, max_bytes, end) {
            Ok(records) => fetched.records = records,
            Err(e) => fetched.error = Some(e),
        }
        // The planted mistake sends no aborted-transaction index: the consumer, which
        // filters by it, then hands out aborted records.
        if isolation == IsolationLevel::ReadCommitted && !fetched.records.is_empty() && !self.hide_aborted_index {
            let upto = RecordBatches::new(fetched.records.clone())
                .filter_map(Result::ok)
                .map(|b| b.header().next_offset())
                .last()
                .unwrap_or(end);
            fetched.aborted_transactions = log.aborted_transactions(offset, upto);
        }
    }

    async fn list_offsets(
        &self,
        tps: &[TopicPartition],
        isolation: IsolationLevel,
    ) -> Result<Vec<u64>, KafkaError> {
        let mut ends = Vec::with_capacity(tps.len());
        for tp in tps {
            let log = self.log(tp)?.lock();
            ends.push(match isolation {
                IsolationLevel::ReadUncommitted => log.high_watermark(),
                IsolationLevel::ReadCommitted => log.last_stable_offset(),
            });
        }
        Ok(ends)
    }

    async fn commit_offsets(&self, req: OffsetCommit) -> Result<(), KafkaError> {
        for (tp, _) in &req.offsets {
            self.log(tp)?;
        }
        let mut store = self.offsets.lock().await;
        for (tp, offset) in req.offsets {
            store.offsets.insert((req.group.clone(), tp), offset);
        }
        let rows: Vec<(&SmolStr, &TopicPartition, u64)> =
            store.offsets.iter().map(|((g, tp), o)| (g, tp, *o)).collect();
        // Acknowledge only once the offsets are on disk: a commit must survive a restart.
        cell::write(OFFSETS_CELL, store.generation + 1, &rows).await.map_err(|e| {
            KafkaError::Storage {
                what: SmolStr::new(OFFSETS_CELL),
                reason: SmolStr::new(e.to_string()),
            }
        })?;
        store.generation += 1;
        Ok(())
    }

    async fn committed_offsets(&self, req: OffsetFetch) -> Result<Vec<Option<u64>>, KafkaError> {
        let store = self.offsets.lock().await;
        req.partitions
            .into_iter()
            .map(|tp| {
                self.log(&tp)?;
                Ok(store.offsets.get(&(req.group.clone(), tp)).copied())
            })
            .collect()
    }
}

fn unknown_partition(tp: &TopicPartition) -> KafkaError {
    KafkaError::UnknownTopicOrPartition { partition: tp.clone() }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use madsim::runtime::Handle;
    use madsim::time::Instant;

    use super::*;
    use crate::kafka::{
        Consumer, ConsumerConfig, ConsumerRecord, Partitioner, Producer, ProducerConfig,
    };
    use crate::trace::Trace;

    use crate::kafka::test_cluster::{
        CLIENT, broker_addr, client_node, lose_half_of_the_answers_to_the_client, start_broker,
    };

    fn fixed_producer(rpc: &Rpc, partition: u32) -> Producer {
        let mut config = ProducerConfig::new(broker_addr());
        config.partitioner = Partitioner::Fixed(partition);
        Producer::new(rpc.clone(), config)
    }

    /// Polls until `n` records have arrived (or 20 polls passed).
    async fn read_n(consumer: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
        let mut records = Vec::new();
        for _ in 0..20 {
            if records.len() >= n {
                break;
            }
            if let Ok(batch) = consumer.poll().await {
                records.extend(batch);
            }
        }
        records
    }

    fn text(value: &Bytes) -> &str {
        std::str::from_utf8(value).unwrap()
    }

    #[test]
    fn produced_records_come_back_in_order_from_offset_zero() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let (trace, network) = (Trace::new(), Network::default());
            start_broker(&trace, &network);
            let (client, rpc) = client_node(&network).await;
            let task = client.spawn(async move {
                let producer = fixed_producer(&rpc, 1);
                for wave in 0..5 {
                    for i in 0..20 {
                        let n = wave * 20 + i;
                        producer.send("input", 1_000 + n, format!("v{n}").as_bytes());
                    }
                    madsim::time::sleep(Duration::from_millis(30)).await;
                }
                producer.flush().await.unwrap();
                let mut consumer = Consumer::new(rpc.clone(), ConsumerConfig::new(broker_addr()));
                let tps = [TopicPartition::new("input", 0), TopicPartition::new("input", 1)];
                consumer.assign(vec![(tps[1].clone(), 0)]);
                let records = read_n(&mut consumer, 100).await;
                let ends = consumer.end_offsets(&tps).await.unwrap();
                (producer.acked_records(), records, ends, consumer.position(&tps[1]))
            });
            let (acked, records, ends, position) = task.await.unwrap();
            assert_eq!(acked, 100);
            assert_eq!(records.len(), 100);
            for (n, record) in records.iter().enumerate() {
                assert_eq!(record.offset, n as u64);
                assert_eq!(record.timestamp_ms, 1_000 + n as i64);
                assert_eq!(text(&record.value), format!("v{n}"));
                assert_eq!(record.partition.to_string(), "input-1");
            }
            assert_eq!(ends, [0, 100], "high watermark is the next offset");
            assert_eq!(position, Some(100));
            let events: Vec<String> = trace.events().into_iter().map(|e| e.message()).collect();
            assert_eq!(
                events,
                [
                    "created topic input with 2 partitions",
                    "created topic output with 2 partitions",
                    "kafka broker started on 10.0.0.2:9092",
                ]
            );
        });
    }

    #[test]
    fn fetch_on_an_empty_partition_waits_max_wait_then_returns_empty() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let (trace, network) = (Trace::new(), Network::default());
            start_broker(&trace, &network);
            let (client, rpc) = client_node(&network).await;
            let (records, waited) = client
                .spawn(async move {
                    let mut consumer = Consumer::new(rpc, ConsumerConfig::new(broker_addr()));
                    consumer.assign(vec![(TopicPartition::new("input", 0), 0)]);
                    let start = Instant::now();
                    let records = consumer.poll().await.unwrap();
                    (records, start.elapsed())
                })
                .await
                .unwrap();
            assert!(records.is_empty());
            // 500 ms held by the broker, plus one round trip (1–10 ms latency each way).
            assert!(waited >= Duration::from_millis(500), "{waited:?}");
            assert!(waited < Duration::from_millis(530), "{waited:?}");
        });
    }

    #[test]
    fn a_held_fetch_wakes_as_soon_as_data_arrives() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let (trace, network) = (Trace::new(), Network::default());
            start_broker(&trace, &network);
            let (client, rpc) = client_node(&network).await;
            let (records, waited) = client
                .spawn(async move {
                    let mut consumer =
                        Consumer::new(rpc.clone(), ConsumerConfig::new(broker_addr()));
                    consumer.assign(vec![(TopicPartition::new("input", 0), 0)]);
                    let start = Instant::now();
                    let poll = madsim::task::spawn(async move {
                        let records = consumer.poll().await.unwrap();
                        (records, start.elapsed())
                    });
                    madsim::time::sleep(Duration::from_millis(100)).await;
                    let producer = fixed_producer(&rpc, 0);
                    producer.send("input", 5, b"hello");
                    producer.flush().await.unwrap();
                    poll.await.unwrap()
                })
                .await
                .unwrap();
            assert_eq!(records.len(), 1);
            assert_eq!(text(&records[0].value), "hello");
            assert!(waited >= Duration::from_millis(100), "{waited:?}");
            assert!(waited < Duration::from_millis(200), "woke long before max_wait: {waited:?}");
        });
    }

    #[test]
    fn sticky_partitioner_sends_each_batch_whole_to_one_partition_and_uses_both() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let (trace, network) = (Trace::new(), Network::default());
            start_broker(&trace, &network);
            let (client, rpc) = client_node(&network).await;
            let records = client
                .spawn(async move {
                    let producer = Producer::new(rpc.clone(), ProducerConfig::new(broker_addr()));
                    // Waves 50 ms apart: each wave lingers 5 ms and leaves as one batch.
                    for wave in 0..10 {
                        for i in 0..5 {
                            producer.send("input", 0, format!("{wave}/{i}").as_bytes());
                        }
                        madsim::time::sleep(Duration::from_millis(50)).await;
                    }
                    producer.flush().await.unwrap();
                    let mut consumer = Consumer::new(rpc, ConsumerConfig::new(broker_addr()));
                    consumer.assign(vec![
                        (TopicPartition::new("input", 0), 0),
                        (TopicPartition::new("input", 1), 0),
                    ]);
                    read_n(&mut consumer, 50).await
                })
                .await
                .unwrap();
            assert_eq!(records.len(), 50);
            let mut partition_of_wave = BTreeMap::new();
            for record in &records {
                let wave = text(&record.value).split('/').next().unwrap().to_owned();
                let partition = record.partition.partition;
                assert_eq!(*partition_of_wave.entry(wave).or_insert(partition), partition);
            }
            let per_partition = |p| partition_of_wave.values().filter(|&&q| q == p).count();
            assert!(per_partition(0) > 0 && per_partition(1) > 0, "{partition_of_wave:?}");
        });
    }

    #[test]
    fn broker_restart_keeps_records_and_committed_offsets_and_appends_continue() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let (trace, network) = (Trace::new(), Network::default());
            start_broker(&trace, &network);
            let (client, rpc) = client_node(&network).await;
            let tp = TopicPartition::new("input", 0);
            let (producer, rpc) = {
                let tp = tp.clone();
                client
                    .spawn(async move {
                        let producer = fixed_producer(&rpc, 0);
                        for n in 0..50 {
                            producer.send("input", n, format!("v{n}").as_bytes());
                        }
                        producer.flush().await.unwrap();
                        let consumer =
                            Consumer::new(rpc.clone(), ConsumerConfig::new(broker_addr()));
                        consumer.commit("click-event-count", &[(tp, 20)]).await.unwrap();
                        (producer, rpc)
                    })
                    .await
                    .unwrap()
            };
            // The broker dies while the second half is being sent: the sender retries until the
            // restarted broker answers, and the appends continue at offset 50.
            let second_half = client.spawn(async move {
                for n in 50..100 {
                    producer.send("input", n, format!("v{n}").as_bytes());
                    madsim::time::sleep(Duration::from_millis(3)).await;
                }
                producer.flush().await.unwrap();
                let mut consumer = Consumer::new(rpc.clone(), ConsumerConfig::new(broker_addr()));
                consumer.assign(vec![(tp.clone(), 0)]);
                let records = read_n(&mut consumer, 100).await;
                let tps = std::slice::from_ref(&tp);
                let committed = consumer.committed("click-event-count", tps).await.unwrap();
                let ends = consumer.end_offsets(tps).await.unwrap();
                (records, committed, ends, producer.acked_records())
            });
            let handle = Handle::current();
            madsim::time::sleep(Duration::from_millis(60)).await;
            handle.kill("kafka");
            madsim::time::sleep(Duration::from_secs(1)).await;
            handle.restart("kafka");
            let (records, committed, ends, acked) = second_half.await.unwrap();
            assert_eq!(acked, 100);
            let got: Vec<(u64, String)> =
                records.iter().map(|r| (r.offset, text(&r.value).to_owned())).collect();
            let want: Vec<(u64, String)> = (0..100).map(|n| (n, format!("v{n}"))).collect();
            assert_eq!(got, want);
            assert_eq!(committed, [Some(20)]);
            assert_eq!(ends, [100]);
            let events: Vec<String> = trace.events().into_iter().map(|e| e.message()).collect();
            let recovered: u64 = events
                .iter()
                .find_map(|e| {
                    e.strip_prefix("recovered ")?.strip_suffix(" records in 4 partitions")
                })
                .expect("a recovery event")
                .parse()
                .unwrap();
            assert!((51..100).contains(&recovered), "killed mid-stream: {events:?}");
            assert_eq!(events.iter().filter(|e| e.starts_with("created topic")).count(), 2);
        });
    }

    /// Produces `v0`..`v199` while half the broker's answers to the client are lost, then
    /// reads both partitions back: (acknowledged records, end offsets, (partition, offset, value)).
    async fn produce_through_lost_responses() -> (u64, Vec<u64>, Vec<(u32, u64, String)>) {
        let (trace, network) = (Trace::new(), Network::default());
        start_broker(&trace, &network);
        let (client, rpc) = client_node(&network).await;
        lose_half_of_the_answers_to_the_client(&network);
        let producer = {
            let rpc = rpc.clone();
            client
                .spawn(async move {
                    let producer = Producer::new(rpc, ProducerConfig::new(broker_addr()));
                    for n in 0..200 {
                        producer.send("input", n, format!("v{n}").as_bytes());
                        madsim::time::sleep(Duration::from_millis(2)).await;
                    }
                    producer.flush().await.unwrap();
                    producer
                })
                .await
                .unwrap()
        };
        network.set(broker_addr().ip(), CLIENT.parse::<SocketAddr>().unwrap().ip(), None);
        let (records, ends) = client
            .spawn(async move {
                let tps = [TopicPartition::new("input", 0), TopicPartition::new("input", 1)];
                let mut consumer = Consumer::new(rpc, ConsumerConfig::new(broker_addr()));
                consumer.assign(tps.iter().map(|tp| (tp.clone(), 0)).collect());
                let records = read_n(&mut consumer, 200).await;
                (records, consumer.end_offsets(&tps).await.unwrap())
            })
            .await
            .unwrap();
        let records = records
            .iter()
            .map(|r| (r.partition.partition, r.offset, text(&r.value).to_owned()))
            .collect();
        (producer.acked_records(), ends, records)
    }

    #[test]
    fn a_producer_whose_responses_are_lost_still_writes_every_record_exactly_once() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        let (acked, ends, records) = rt.block_on(produce_through_lost_responses());
        assert_eq!(acked, 200);
        assert_eq!(ends.iter().sum::<u64>(), 200, "no duplicate was appended: {ends:?}");
        let mut values: Vec<i64> = records.iter().map(|r| r.2[1..].parse().unwrap()).collect();
        values.sort();
        assert_eq!(values, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn a_lossy_run_replays_identically_from_its_seed() {
        let config = madsim::Config::default();
        // Runs seed 7 twice, each on a fresh thread, and fails on the first RNG divergence.
        let (_, _, records) = madsim::runtime::Runtime::check_determinism(7, config, || {
            produce_through_lost_responses()
        });
        assert_eq!(records.len(), 200);
    }

    #[test]
    fn unknown_topics_partitions_and_bad_batches_are_errors_not_panics() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let (trace, network) = (Trace::new(), Network::default());
            start_broker(&trace, &network);
            let (client, rpc) = client_node(&network).await;
            let errors = client
                .spawn(async move {
                    let nope = TopicPartition::new("nope", 0);
                    let input9 = TopicPartition::new("input", 9);
                    let mut consumer = Consumer::new(rpc.clone(), ConsumerConfig::new(broker_addr()));
                    let mut errors = vec![
                        consumer.partitions_for("nope").await.unwrap_err(),
                        consumer.end_offsets(std::slice::from_ref(&nope)).await.unwrap_err(),
                        consumer.commit("g", &[(input9.clone(), 1)]).await.unwrap_err(),
                        consumer.committed("g", std::slice::from_ref(&input9)).await.unwrap_err(),
                    ];
                    consumer.assign(vec![(input9, 0)]);
                    errors.push(consumer.poll().await.unwrap_err());
                    consumer.assign(vec![(TopicPartition::new("input", 0), 7)]);
                    errors.push(consumer.poll().await.unwrap_err());

                    let sticky = Producer::new(rpc.clone(), ProducerConfig::new(broker_addr()));
                    sticky.send("nope", 0, b"x");
                    errors.push(sticky.flush().await.unwrap_err());
                    let fixed = fixed_producer(&rpc, 9);
                    fixed.send("input", 0, b"x");
                    errors.push(fixed.flush().await.unwrap_err());

                    let garbage = Produce {
                        partition: TopicPartition::new("input", 0),
                        batch: Bytes::from_static(&[0xff; 64]),
                    };
                    let response = rpc.call(broker_addr(), garbage, Duration::from_secs(1)).await;
                    errors.push(response.unwrap().result.unwrap_err());

                    // The broker still serves after all that.
                    let fine = fixed_producer(&rpc, 0);
                    fine.send("input", 0, b"ok");
                    fine.flush().await.unwrap();
                    assert_eq!(consumer.partitions_for("input").await.unwrap(), 2);
                    errors
                })
                .await
                .unwrap();
            let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            assert_eq!(
                messages,
                [
                    "unknown topic nope",
                    "unknown topic or partition nope-0",
                    "unknown topic or partition input-9",
                    "unknown topic or partition input-9",
                    "unknown topic or partition input-9",
                    "offset 7 out of range for input-0: high watermark is 0",
                    "unknown topic nope",
                    "unknown topic or partition input-9",
                    "corrupt record batch for input-0: batch length does not match the bytes received",
                ]
            );
        });
    }
}
