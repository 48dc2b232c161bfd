//! Transactions on the client side (docs/model/kafka.md#overview, docs/model/checkpoints.md#sinks),
//! for Flink's exactly-once Kafka sink.
//!
//! A [`TransactionalProducer`] runs exactly one transaction: `init` registers the
//! transactional id (bumping its epoch, which fences older producers of the id and aborts what
//! they left open), `send` writes inside the transaction (begun implicitly by the first batch;
//! each partition joins it implicitly), and `commit` or `abort` ends it. The sink keeps the
//! [`TransactionHandle`] of a flushed transaction in its checkpoint and commits it later with
//! [`commit_transaction`], which is idempotent and works by the recorded producer id and epoch,
//! also after a restore. [`abort_lingering`] fences whatever else a sink's ids left open.
//!
//! Produce requests that time out are retried by the producer for as long as it takes, as for
//! the idempotent producer; `init`, `commit`'s `EndTxn`, `abort`, [`commit_transaction`] and
//! [`abort_lingering`] retry an unreachable broker for at most `max_block` (60 s) and then fail
//! with [`KafkaError::BrokerUnavailable`].

use std::net::SocketAddr;
use std::time::Duration;

use madsim::time::Instant;
use smol_str::SmolStr;

use super::producer::{Producer, ProducerConfig};
use crate::protocol::kafka::{
    AbortCause, EndTxn, InitProducerId, KafkaError, ListTransactions, TransactionListing,
};
use crate::rpc::{Request, Rpc};

/// How long a single transaction request waits for an answer before it is retried.
pub const TRANSACTION_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// How long [`commit_transaction`] and [`abort_lingering`] keep retrying an unreachable broker
/// (Kafka's `max.block.ms`).
pub const TRANSACTION_RETRY_LIMIT: Duration = Duration::from_secs(60);

const RETRY_BACKOFF: Duration = Duration::from_millis(100);
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);

pub use crate::protocol::kafka::TransactionHandle;

/// A producer writing one transaction of one transactional id.
pub struct TransactionalProducer {
    producer: Producer,
    rpc: Rpc,
    config: ProducerConfig,
    handle: TransactionHandle,
}

impl TransactionalProducer {
    /// Registers `transactional_id` with the broker (`InitProducerId`): bumps its epoch, which
    /// fences every older producer of the id and aborts the transaction an older epoch left
    /// open. Retries an unreachable broker for up to `config.max_block`.
    pub async fn init(
        rpc: Rpc,
        config: ProducerConfig,
        transactional_id: &str,
    ) -> Result<TransactionalProducer, KafkaError> {
        let request = InitProducerId {
            transactional_id: Some(SmolStr::new(transactional_id)),
            transaction_timeout: config.transaction_timeout,
        };
        let identity =
            call_retrying(&rpc, config.broker, request, config.request_timeout, config.max_block)
                .await?
                .result?;
        let handle = TransactionHandle {
            transactional_id: SmolStr::new(transactional_id),
            producer_id: identity.producer_id,
            epoch: identity.producer_epoch,
        };
        let producer = Producer::transactional(rpc.clone(), config.clone(), identity);
        Ok(TransactionalProducer { producer, rpc, config, handle })
    }

    /// Appends one record to the transaction (begun by the first batch that reaches the
    /// broker); never blocks.
    pub fn send(&self, topic: &str, timestamp_ms: i64, value: &[u8]) {
        self.producer.send(topic, timestamp_ms, value);
    }

    /// Resolves once everything sent so far is acknowledged (written, still uncommitted);
    /// `Err` if the broker refused any of it (`ProducerFenced` once the id was re-registered).
    pub async fn flush(&self) -> Result<(), KafkaError> {
        self.producer.flush().await
    }

    /// The transaction's identity, to record in a checkpoint.
    pub fn handle(&self) -> TransactionHandle {
        self.handle.clone()
    }

    /// How many records the broker has acknowledged so far.
    pub fn acked_records(&self) -> u64 {
        self.producer.acked_records()
    }

    /// Flushes, then commits (`EndTxn`).
    pub async fn commit(self) -> Result<(), KafkaError> {
        self.flush().await?;
        end_txn(&self.rpc, &self.config, &self.handle, true).await
    }

    /// Aborts: drops what is not yet acknowledged and ends the transaction with abort markers.
    /// A batch still travelling is refused when it arrives, since the epoch's transaction ended.
    pub async fn abort(self) -> Result<(), KafkaError> {
        self.producer.abandon();
        end_txn(&self.rpc, &self.config, &self.handle, false).await
    }
}

/// Commits the transaction recorded in `handle` (by its producer id and epoch). Idempotent:
/// committing an already committed transaction succeeds without writing again, also after its
/// id was re-registered; a transaction that was aborted (by fencing or its timeout) fails with
/// `ProducerFenced`. Retries an unreachable broker for up to [`TRANSACTION_RETRY_LIMIT`].
pub async fn commit_transaction(
    rpc: &Rpc,
    broker: SocketAddr,
    handle: &TransactionHandle,
) -> Result<(), KafkaError> {
    let mut config = ProducerConfig::new(broker);
    config.request_timeout = TRANSACTION_REQUEST_TIMEOUT;
    config.max_block = TRANSACTION_RETRY_LIMIT;
    end_txn(rpc, &config, handle, true).await
}

/// How a recorded transaction ended when [`commit_recorded`] tried to commit it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordedOutcome {
    /// Committed now, or already.
    Committed,
    /// The broker had aborted it (its timeout, or fencing): its records are lost.
    Lost {
        /// Why the broker aborted it, if it remembers.
        cause: Option<AbortCause>,
    },
}

/// Commits a transaction a checkpoint recorded as pending, as Flink's committer does: a
/// transaction the broker already aborted is not an error that fails the job again and again
/// (the restored checkpoint would only record it again); it is reported as
/// [`RecordedOutcome::Lost`], and the caller logs the loss and goes on. Other errors (an
/// unreachable broker) are returned.
pub async fn commit_recorded(
    rpc: &Rpc,
    broker: SocketAddr,
    handle: &TransactionHandle,
) -> Result<RecordedOutcome, KafkaError> {
    match commit_transaction(rpc, broker, handle).await {
        Ok(()) => Ok(RecordedOutcome::Committed),
        Err(KafkaError::TransactionAborted { cause, .. }) => Ok(RecordedOutcome::Lost { cause }),
        // Flink's committer reads both as "aborted, most likely data loss" too.
        Err(KafkaError::ProducerFenced { .. } | KafkaError::InvalidTxnState { .. }) => {
            Ok(RecordedOutcome::Lost { cause: None })
        }
        Err(other) => Err(other),
    }
}

/// Lists the transactional ids starting with `prefix` (every known one with `include_ended`,
/// else those whose current epoch is open). Retries an unreachable broker for up to
/// [`TRANSACTION_RETRY_LIMIT`].
pub async fn list_transactions(
    rpc: &Rpc,
    broker: SocketAddr,
    prefix: &str,
    include_ended: bool,
) -> Result<Vec<TransactionListing>, KafkaError> {
    let request = ListTransactions { prefix: SmolStr::new(prefix), include_ended };
    call_retrying(rpc, broker, request, TRANSACTION_REQUEST_TIMEOUT, TRANSACTION_RETRY_LIMIT)
        .await?
        .result
}

/// What [`abort_lingering`] found under a prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lingering {
    /// Whether the broker knows any id under the prefix (Flink's sink probes subtask indices
    /// upwards until one was never used).
    pub ever_used: bool,
    /// The ids re-registered (their open transactions aborted), in id order.
    pub aborted: Vec<SmolStr>,
}

/// Lists the transactional ids starting with `prefix` and re-registers each one whose current
/// epoch is still open (registered and not ended: `Empty`, `Ongoing` or being completed) and not
/// in `keep`, with `transaction_timeout`: that aborts its open transaction and fences its
/// producer. Retries an unreachable broker for up to [`TRANSACTION_RETRY_LIMIT`] per request.
pub async fn abort_lingering(
    rpc: &Rpc,
    broker: SocketAddr,
    prefix: &str,
    keep: &[SmolStr],
    transaction_timeout: Duration,
) -> Result<Lingering, KafkaError> {
    let listed = list_transactions(rpc, broker, prefix, true).await?;
    let mut lingering = Lingering { ever_used: !listed.is_empty(), aborted: Vec::new() };
    for listing in listed {
        if !listing.state.is_open() || keep.contains(&listing.transactional_id) {
            continue;
        }
        fence(rpc, broker, &listing.transactional_id, transaction_timeout).await?;
        lingering.aborted.push(listing.transactional_id);
    }
    Ok(lingering)
}

/// Registers `transactional_id` anew, as a new producer of the id does (`InitProducerId`): the
/// epoch moves on, which fences the id's producer and aborts the transaction it left open.
/// Retries an unreachable broker for up to [`TRANSACTION_RETRY_LIMIT`].
pub async fn fence(
    rpc: &Rpc,
    broker: SocketAddr,
    transactional_id: &str,
    transaction_timeout: Duration,
) -> Result<(), KafkaError> {
    let request = InitProducerId { transactional_id: Some(SmolStr::new(transactional_id)), transaction_timeout };
    call_retrying(rpc, broker, request, TRANSACTION_REQUEST_TIMEOUT, TRANSACTION_RETRY_LIMIT)
        .await?
        .result
        .map(|_| ())
}

async fn end_txn(
    rpc: &Rpc,
    config: &ProducerConfig,
    handle: &TransactionHandle,
    commit: bool,
) -> Result<(), KafkaError> {
    let request = EndTxn {
        transactional_id: handle.transactional_id.clone(),
        producer_id: handle.producer_id,
        epoch: handle.epoch,
        commit,
    };
    call_retrying(rpc, config.broker, request, config.request_timeout, config.max_block)
        .await?
        .result
}

/// Calls `broker` until it answers, retrying timeouts with backoff for at most `limit`.
async fn call_retrying<R: Request + Clone>(
    rpc: &Rpc,
    broker: SocketAddr,
    request: R,
    request_timeout: Duration,
    limit: Duration,
) -> Result<R::Response, KafkaError> {
    let deadline = Instant::now() + limit;
    let mut backoff = RETRY_BACKOFF;
    loop {
        match rpc.call(broker, request.clone(), request_timeout).await {
            Ok(response) => return Ok(response),
            Err(error) => {
                if Instant::now() + backoff >= deadline {
                    return Err(KafkaError::unavailable(broker, error));
                }
                madsim::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use madsim::runtime::{Handle, Runtime};

    use super::*;
    use crate::kafka::{
        Consumer, ConsumerConfig, IsolationLevel, Partitioner, Producer, TopicPartition,
    };
    use crate::protocol::kafka::{ListTransactionsResponse, TransactionState};
    use crate::rpc::Network;
    use crate::trace::Trace;

    use crate::kafka::test_cluster::{
        broker_addr, client_node, lose_half_of_the_answers_to_the_client, start_broker,
    };

    /// The timeout the tests' re-registrations ask for (Flink's sink's, 1 h).
    const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(3600);

    /// Every test runs under this fixed seed (the determinism test too).
    const SEED: u64 = 7;

    /// Runs `body` on the client node of a fresh broker + client cluster, under [`SEED`].
    fn run<F, Fut, T>(body: F) -> (T, Trace)
    where
        F: FnOnce(Rpc) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let rt = Runtime::with_seed_and_config(SEED, madsim::Config::default());
        rt.block_on(async move {
            let (trace, network) = (Trace::new(), Network::default());
            start_broker(&trace, &network);
            let (client, rpc) = client_node(&network).await;
            let out = client.spawn(body(rpc)).await.unwrap();
            (out, trace)
        })
    }

    fn to(partition: u32) -> ProducerConfig {
        let mut config = ProducerConfig::new(broker_addr());
        config.partitioner = Partitioner::Fixed(partition);
        config
    }

    fn output(partition: u32) -> TopicPartition {
        TopicPartition::new("output", partition)
    }

    async fn txn(rpc: &Rpc, id: &str, partition: u32, values: &[&str]) -> TransactionalProducer {
        let producer = TransactionalProducer::init(rpc.clone(), to(partition), id).await.unwrap();
        for value in values {
            producer.send("output", 0, value.as_bytes());
        }
        producer.flush().await.unwrap();
        producer
    }

    fn consumer(rpc: &Rpc, isolation: IsolationLevel) -> Consumer {
        let mut config = ConsumerConfig::new(broker_addr());
        config.isolation = isolation;
        config.max_wait = Duration::from_millis(50);
        Consumer::new(rpc.clone(), config)
    }

    /// Reads `tp` from offset 0 until a poll brings nothing (retrying lost polls): (offset,
    /// value) pairs, and the final position.
    async fn read(
        rpc: &Rpc,
        isolation: IsolationLevel,
        tp: &TopicPartition,
    ) -> (Vec<(u64, String)>, u64) {
        let mut consumer = consumer(rpc, isolation);
        consumer.assign(vec![(tp.clone(), 0)]);
        let mut got = Vec::new();
        loop {
            let before = consumer.position(tp);
            let Ok(records) = consumer.poll().await else {
                continue; // lost on a lossy link: ask again
            };
            if records.is_empty() && consumer.position(tp) == before {
                break;
            }
            got.extend(
                records
                    .into_iter()
                    .map(|r| (r.offset, String::from_utf8(r.value.to_vec()).unwrap())),
            );
        }
        (got, consumer.position(tp).unwrap())
    }

    async fn ends(rpc: &Rpc, tp: &TopicPartition) -> (u64, u64) {
        let consumer = consumer(rpc, IsolationLevel::ReadCommitted);
        let tps = std::slice::from_ref(tp);
        let committed = consumer.end_offsets(tps).await.unwrap()[0];
        let uncommitted =
            consumer.end_offsets_for(tps, IsolationLevel::ReadUncommitted).await.unwrap()[0];
        (committed, uncommitted)
    }

    fn pairs(list: &[(u64, &str)]) -> Vec<(u64, String)> {
        list.iter().map(|(o, v)| (*o, v.to_string())).collect()
    }

    async fn list(rpc: &Rpc, prefix: &str) -> Vec<(String, TransactionState)> {
        let request = ListTransactions { prefix: SmolStr::new(prefix), include_ended: false };
        let response: ListTransactionsResponse =
            rpc.call(broker_addr(), request, Duration::from_secs(1)).await.unwrap();
        response
            .result
            .unwrap()
            .into_iter()
            .map(|l| (l.transactional_id.to_string(), l.state))
            .collect()
    }

    fn is_fenced<T: std::fmt::Debug>(result: &Result<T, KafkaError>) -> bool {
        matches!(result, Err(KafkaError::ProducerFenced { .. }))
    }

    #[test]
    fn read_committed_sees_committed_transactions_only_and_nobody_sees_markers() {
        let ((open, open_ends, committed, all_committed, all_uncommitted, final_ends), _) =
            run(|rpc| async move {
                let tp = output(0);
                let a = txn(&rpc, "t-a", 0, &["a0", "a1", "a2"]).await;
                let open = read(&rpc, IsolationLevel::ReadCommitted, &tp).await;
                let open_ends = ends(&rpc, &tp).await;
                a.commit().await.unwrap();
                let committed = read(&rpc, IsolationLevel::ReadCommitted, &tp).await;
                // Aborted: offsets 4, 5 and the abort marker at 6.
                txn(&rpc, "t-b", 0, &["b0", "b1"]).await.abort().await.unwrap();
                let plain = Producer::new(rpc.clone(), to(0));
                plain.send("output", 0, b"plain");
                plain.flush().await.unwrap();
                txn(&rpc, "t-c", 0, &["c0"]).await.commit().await.unwrap();
                (
                    open,
                    open_ends,
                    committed,
                    read(&rpc, IsolationLevel::ReadCommitted, &tp).await,
                    read(&rpc, IsolationLevel::ReadUncommitted, &tp).await,
                    ends(&rpc, &tp).await,
                )
            });
        assert_eq!(open, (vec![], 0), "nothing of an open transaction, and no progress past it");
        assert_eq!(open_ends, (0, 3), "LSO 0, high watermark 3");
        assert_eq!(
            committed,
            (pairs(&[(0, "a0"), (1, "a1"), (2, "a2")]), 4),
            "marker at 3 skipped"
        );
        assert_eq!(
            all_committed,
            (pairs(&[(0, "a0"), (1, "a1"), (2, "a2"), (7, "plain"), (8, "c0")]), 10)
        );
        let uncommitted =
            [(0, "a0"), (1, "a1"), (2, "a2"), (4, "b0"), (5, "b1"), (7, "plain"), (8, "c0")];
        assert_eq!(all_uncommitted, (pairs(&uncommitted), 10), "aborted data, never markers");
        assert_eq!(final_ends, (10, 10));
    }

    #[test]
    fn the_last_stable_offset_holds_read_committed_at_the_oldest_open_transaction() {
        let ((before, before_ends, uncommitted, after, after_ends), _) = run(|rpc| async move {
            let tp = output(1);
            let plain = Producer::new(rpc.clone(), to(1));
            plain.send("output", 0, b"p0");
            plain.flush().await.unwrap();
            let open = txn(&rpc, "t-open", 1, &["t0", "t1"]).await;
            plain.send("output", 0, b"p1");
            plain.send("output", 0, b"p2");
            plain.flush().await.unwrap();
            let before = read(&rpc, IsolationLevel::ReadCommitted, &tp).await;
            let before_ends = ends(&rpc, &tp).await;
            let uncommitted = read(&rpc, IsolationLevel::ReadUncommitted, &tp).await;
            // A read_committed fetch held at the LSO wakes when the commit marker lands.
            let mut waiting = consumer(&rpc, IsolationLevel::ReadCommitted);
            waiting.assign(vec![(tp.clone(), 1)]);
            let commit = madsim::task::spawn(async move {
                madsim::time::sleep(Duration::from_millis(20)).await;
                open.commit().await.unwrap();
            });
            let mut after = Vec::new();
            while after.len() < 4 {
                after.extend(waiting.poll().await.unwrap().into_iter().map(|r| r.offset));
            }
            commit.await.unwrap();
            (
                before,
                before_ends,
                uncommitted,
                (after, waiting.position(&tp)),
                ends(&rpc, &tp).await,
            )
        });
        assert_eq!(before, (pairs(&[(0, "p0")]), 1), "later plain data waits behind the open txn");
        assert_eq!(before_ends, (1, 5));
        assert_eq!(uncommitted.0.len(), 5);
        assert_eq!(after, (vec![1, 2, 3, 4], Some(6)));
        assert_eq!(after_ends, (6, 6));
    }

    #[test]
    fn re_initialising_an_id_aborts_the_old_transaction_and_fences_the_old_producer() {
        let ((first, second, late_send, late_commit, late_flush, read_back, listed), _) =
            run(|rpc| async move {
                let tp = output(0);
                let zombie = txn(&rpc, "sink-0-0", 0, &["z0", "z1"]).await;
                let fresh =
                    TransactionalProducer::init(rpc.clone(), to(0), "sink-0-0").await.unwrap();
                // The zombie's open transaction was aborted: markers at 2, nothing visible.
                let listed = list(&rpc, "sink-").await;
                zombie.send("output", 0, b"z2");
                let late_send = zombie.flush().await;
                let late_commit = commit_transaction(&rpc, broker_addr(), &zombie.handle()).await;
                let first = zombie.handle();
                let late_flush = zombie.commit().await;
                fresh.send("output", 0, b"f0");
                let second = fresh.handle();
                fresh.commit().await.unwrap();
                let read_back = read(&rpc, IsolationLevel::ReadCommitted, &tp).await;
                (first, second, late_send, late_commit, late_flush, read_back, listed)
            });
        assert_eq!(second.producer_id, first.producer_id, "same producer id");
        assert_eq!((first.epoch, second.epoch), (0, 1), "epoch bumped");
        assert_eq!(listed, [("sink-0-0".to_owned(), TransactionState::Empty)]);
        assert!(is_fenced(&late_send), "{late_send:?}");
        assert!(
            matches!(&late_commit, Err(KafkaError::TransactionAborted { cause: Some(AbortCause::Fenced), .. })),
            "an aborted transaction cannot be committed, and the error says it was fenced: {late_commit:?}"
        );
        assert!(
            matches!(&late_flush, Err(KafkaError::TransactionAborted { cause: Some(AbortCause::Fenced), .. })),
            "{late_flush:?}"
        );
        // z0, z1 at 0-1, abort marker at 2, f0 at 3, commit marker at 4.
        assert_eq!(read_back, (pairs(&[(3, "f0")]), 5));
    }

    #[test]
    fn commit_transaction_is_idempotent_and_an_open_transaction_survives_a_broker_restart() {
        let ((open_after_restart, ends_after_restart, commits, read_back, ends_after), trace) =
            run(|rpc| async move {
                let tp = output(1);
                let handle = txn(&rpc, "sink-1-7", 1, &["x0", "x1", "x2"]).await.handle();
                let handle_ = Handle::current();
                handle_.kill("kafka");
                madsim::time::sleep(Duration::from_secs(1)).await;
                handle_.restart("kafka");
                madsim::time::sleep(Duration::from_millis(100)).await;
                let open_after_restart = list(&rpc, "sink-1-").await;
                let ends_after_restart = ends(&rpc, &tp).await;
                // The broker dies again; the commit retries until it is back.
                handle_.kill("kafka");
                let restart = madsim::task::spawn(async move {
                    madsim::time::sleep(Duration::from_secs(3)).await;
                    Handle::current().restart("kafka");
                });
                let mut commits = vec![commit_transaction(&rpc, broker_addr(), &handle).await];
                restart.await.unwrap();
                commits.push(commit_transaction(&rpc, broker_addr(), &handle).await);
                // Re-registered since: the recorded (pid, epoch) still commits, idempotently.
                let next =
                    TransactionalProducer::init(rpc.clone(), to(1), "sink-1-7").await.unwrap();
                commits.push(commit_transaction(&rpc, broker_addr(), &handle).await);
                next.abort().await.unwrap();
                commits.push(commit_transaction(&rpc, broker_addr(), &handle).await);
                let read_back = read(&rpc, IsolationLevel::ReadCommitted, &tp).await;
                (open_after_restart, ends_after_restart, commits, read_back, ends(&rpc, &tp).await)
            });
        assert_eq!(open_after_restart, [("sink-1-7".to_owned(), TransactionState::Ongoing)]);
        assert_eq!(ends_after_restart, (0, 3), "still open after the restart");
        assert!(commits.iter().all(Result::is_ok), "{commits:?}");
        assert_eq!(read_back, (pairs(&[(0, "x0"), (1, "x1"), (2, "x2")]), 4));
        assert_eq!(ends_after, (4, 4), "one commit marker, however many commits");
        let events: Vec<String> = trace.events().into_iter().map(|e| e.message()).collect();
        assert!(
            events.iter().any(|e| e == "recovered 1 transactional ids, 1 with an open transaction"),
            "{events:?}"
        );
    }

    #[test]
    fn a_transaction_open_longer_than_its_timeout_is_aborted_by_the_broker() {
        let ((listed_before, listed_after, commit, read_back, ends_after), trace) =
            run(|rpc| async move {
                let tp = output(0);
                let mut config = to(0);
                config.transaction_timeout = Duration::from_secs(30);
                let slow =
                    TransactionalProducer::init(rpc.clone(), config, "slow-0-1").await.unwrap();
                slow.send("output", 0, b"late");
                slow.flush().await.unwrap();
                let listed_before = list(&rpc, "").await;
                madsim::time::sleep(Duration::from_secs(45)).await;
                let listed_after = list(&rpc, "").await;
                let commit = slow.commit().await;
                let read_back = read(&rpc, IsolationLevel::ReadCommitted, &tp).await;
                (listed_before, listed_after, commit, read_back, ends(&rpc, &tp).await)
            });
        assert_eq!(listed_before, [("slow-0-1".to_owned(), TransactionState::Ongoing)]);
        assert_eq!(listed_after, [], "aborted, and its new epoch is complete too");
        assert!(
            matches!(&commit, Err(KafkaError::TransactionAborted { cause: Some(AbortCause::Timeout), .. })),
            "{commit:?}"
        );
        assert_eq!(read_back, (vec![], 2));
        assert_eq!(ends_after, (2, 2));
        let aborted: Vec<_> = trace
            .events()
            .into_iter()
            .filter(|e| matches!(&e.event, crate::trace::Event::TransactionTimedOut { transactional_id, .. } if transactional_id == "slow-0-1"))
            .map(|e| e.at)
            .collect();
        assert_eq!(aborted.len(), 1);
        assert!(aborted[0] >= Duration::from_secs(30) && aborted[0] <= Duration::from_secs(41));
    }

    #[test]
    fn a_recorded_transaction_the_broker_aborted_after_its_timeout_is_lost_not_an_error() {
        let ((lost, again, plain), _) = run(|rpc| async move {
            let mut config = to(0);
            config.transaction_timeout = Duration::from_secs(30);
            let slow = TransactionalProducer::init(rpc.clone(), config, "sink-0-7").await.unwrap();
            slow.send("output", 0, b"late");
            slow.flush().await.unwrap();
            let pending = slow.handle();
            madsim::time::sleep(Duration::from_secs(45)).await;
            let lost = commit_recorded(&rpc, broker_addr(), &pending).await;
            let again = commit_recorded(&rpc, broker_addr(), &pending).await;
            let plain = commit_transaction(&rpc, broker_addr(), &pending).await;
            (lost, again, plain)
        });
        let timed_out = RecordedOutcome::Lost { cause: Some(AbortCause::Timeout) };
        assert_eq!(lost, Ok(timed_out.clone()));
        assert_eq!(again, Ok(timed_out), "asking again gives the same answer");
        assert!(
            matches!(&plain, Err(KafkaError::TransactionAborted { transactional_id, cause: Some(AbortCause::Timeout), .. }) if transactional_id == "sink-0-7"),
            "{plain:?}"
        );
    }

    #[test]
    fn a_recorded_transaction_committed_in_time_commits_once_and_again_idempotently() {
        let ((first, second, read_back), _) = run(|rpc| async move {
            let pending = txn(&rpc, "sink-0-3", 0, &["r0"]).await.handle();
            let first = commit_recorded(&rpc, broker_addr(), &pending).await;
            let second = commit_recorded(&rpc, broker_addr(), &pending).await;
            (first, second, read(&rpc, IsolationLevel::ReadCommitted, &output(0)).await.0)
        });
        assert_eq!(first, Ok(RecordedOutcome::Committed));
        assert_eq!(second, Ok(RecordedOutcome::Committed));
        assert_eq!(read_back, pairs(&[(0, "r0")]));
    }

    #[test]
    fn a_transaction_timeout_above_the_broker_s_cap_fails_at_initialisation() {
        let (result, _) = run(|rpc| async move {
            let mut config = to(0);
            config.transaction_timeout = Duration::from_secs(2 * 3600);
            TransactionalProducer::init(rpc, config, "greedy-0-1").await.map(|_| ())
        });
        assert_eq!(
            result,
            Err(KafkaError::InvalidTransactionTimeout {
                transactional_id: "greedy-0-1".into(),
                requested_ms: 7_200_000,
                max_ms: 3_600_000,
            })
        );
        assert_eq!(
            result.unwrap_err().to_string(),
            "invalid transaction timeout for greedy-0-1: transaction.timeout.ms 7200000 is larger than the broker's transaction.max.timeout.ms 3600000"
        );
    }

    #[test]
    fn abort_lingering_says_whether_a_prefix_was_ever_used() {
        let ((unused, ended), _) = run(|rpc| async move {
            let unused = abort_lingering(&rpc, broker_addr(), "sink-5-", &[], DEFAULT_TRANSACTION_TIMEOUT).await;
            txn(&rpc, "sink-4-1", 0, &["x"]).await.commit().await.unwrap();
            let ended = abort_lingering(&rpc, broker_addr(), "sink-4-", &[], DEFAULT_TRANSACTION_TIMEOUT).await;
            (unused.unwrap(), ended.unwrap())
        });
        assert_eq!(unused, Lingering { ever_used: false, aborted: vec![] });
        assert_eq!(ended, Lingering { ever_used: true, aborted: vec![] });
    }

    #[test]
    fn abort_lingering_aborts_the_prefix_s_open_transactions_except_the_kept_ones() {
        let ((aborted, listed, read_back), _) = run(|rpc| async move {
            let tp = output(0);
            let _lingering = txn(&rpc, "sink-0-1", 0, &["l0"]).await;
            let pending = txn(&rpc, "sink-0-2", 0, &["k0"]).await.handle();
            txn(&rpc, "sink-0-3", 0, &["c0"]).await.commit().await.unwrap();
            let _other = txn(&rpc, "other-0-1", 1, &["o0"]).await;
            let keep = [SmolStr::new("sink-0-2")];
            let lingering = abort_lingering(&rpc, broker_addr(), "sink-0-", &keep, DEFAULT_TRANSACTION_TIMEOUT).await.unwrap();
            assert!(lingering.ever_used);
            let aborted = lingering.aborted;
            let listed = list(&rpc, "").await;
            commit_transaction(&rpc, broker_addr(), &pending).await.unwrap();
            (aborted, listed, read(&rpc, IsolationLevel::ReadCommitted, &tp).await.0)
        });
        assert_eq!(aborted, [SmolStr::new("sink-0-1")]);
        assert_eq!(
            listed,
            [
                ("other-0-1".to_owned(), TransactionState::Ongoing),
                ("sink-0-1".to_owned(), TransactionState::Empty),
                ("sink-0-2".to_owned(), TransactionState::Ongoing),
            ]
        );
        let values: Vec<String> = read_back.into_iter().map(|(_, v)| v).collect();
        assert_eq!(values, ["k0", "c0"]);
    }

    /// Ten transactions (every third aborted) while half the broker's answers to the client
    /// are lost; returns what a read_committed reader sees of both partitions.
    async fn transactions_through_lost_responses() -> Vec<String> {
        let (trace, network) = (Trace::new(), Network::default());
        start_broker(&trace, &network);
        let (client, rpc) = client_node(&network).await;
        lose_half_of_the_answers_to_the_client(&network);
        client
            .spawn(async move {
                for n in 0..10 {
                    let config = ProducerConfig::new(broker_addr()); // sticky: both partitions
                    let id = format!("sink-{}-{n}", n % 2);
                    let producer =
                        TransactionalProducer::init(rpc.clone(), config, &id).await.unwrap();
                    for i in 0..20 {
                        producer.send("output", n, format!("{n}/{i}").as_bytes());
                        madsim::time::sleep(Duration::from_millis(2)).await;
                    }
                    if n % 3 == 2 {
                        producer.abort().await.unwrap();
                    } else {
                        let handle = producer.handle();
                        producer.commit().await.unwrap();
                        commit_transaction(&rpc, broker_addr(), &handle).await.unwrap();
                    }
                }
                let mut values = Vec::new();
                for partition in 0..2 {
                    let (records, _) =
                        read(&rpc, IsolationLevel::ReadCommitted, &output(partition)).await;
                    values.extend(records.into_iter().map(|(_, v)| v));
                }
                values
            })
            .await
            .unwrap()
    }

    #[test]
    fn a_lossy_transactional_run_delivers_committed_records_exactly_once_and_replays() {
        let values = Runtime::check_determinism(SEED, madsim::Config::default(), || {
            transactions_through_lost_responses()
        });
        let mut values: Vec<(u32, u32)> = values
            .iter()
            .map(|v| {
                let (n, i) = v.split_once('/').unwrap();
                (n.parse().unwrap(), i.parse().unwrap())
            })
            .collect();
        values.sort();
        let want: Vec<(u32, u32)> =
            (0..10).filter(|n| n % 3 != 2).flat_map(|n| (0..20).map(move |i| (n, i))).collect();
        assert_eq!(values, want);
    }
}
