//! The broker's transaction coordinator (docs/model/kafka.md#overview): per transactional id its
//! producer id, epoch, state, partitions and start time, kept durable in the internal partition
//! `__transaction_state-0` (one JSON record per state change, replayed on every start, last one per
//! id wins), as Kafka keeps it in its `__transaction_state` topic.
//!
//! Rules:
//! - `InitProducerId` with a transactional id bumps the epoch (same producer id; a new one only
//!   when the epoch would overflow), finishing a transaction caught between decision and markers
//!   and aborting one the old epoch left open (abort markers carry the new epoch, which fences
//!   the old producer on those partitions too).
//! - A transactional produce joins its partition to the transaction implicitly (no
//!   `AddPartitionsToTxn`); the partition is recorded durably before the batch is appended, so
//!   every partition holding the transaction's data gets its marker. A produce from an older epoch
//!   is `ProducerFenced`. One transaction per epoch: a produce after the epoch's transaction ended
//!   is refused, so a delayed retry can never open a transaction nobody will end.
//! - `EndTxn` records the decision (`Prepare*`) before writing markers and completes after; a
//!   decision interrupted by a broker kill is finished on the next start. Each id remembers the
//!   outcomes of its last [`OUTCOMES_KEPT`] transactions by (producer id, epoch), which makes
//!   `EndTxn` idempotent even after the id was re-initialised.
//! - A transaction open longer than its timeout is aborted (and its epoch bumped) by
//!   [`Coordinator::abort_expired`], which the broker runs every 10 s.
//!
//! Times are simulated time since the run started (the trace's clock), so they survive a broker
//! restart.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::lock::Mutex;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::log::{PartitionLog, PartitionLogs, SEGMENT_BYTES_DEFAULT};
use crate::cell;
use crate::protocol::kafka::{
    AbortCause, BatchBuilder, BatchHeader, ControlType, EndTxn, KafkaError, NO_PRODUCER_ID, ProducerIdentity,
    RecordBatches, TRANSACTION_STATE_TOPIC, TopicPartition, TransactionListing, TransactionState,
};

/// Producer ids are reserved on disk this many at a time, so few requests write the counter.
const PRODUCER_ID_BLOCK: i64 = 1000;
pub(super) const PRODUCER_IDS_CELL: &str = "kafka/producer-ids";
/// How many ended transactions per transactional id the coordinator remembers.
pub const OUTCOMES_KEPT: usize = 16;

/// The next producer id, and the end of the block reserved on disk.
pub(super) struct ProducerIds {
    pub(super) next: i64,
    pub(super) reserved_until: i64,
    pub(super) generation: u64,
}

impl ProducerIds {
    /// A fresh producer id, unique across broker restarts.
    pub(super) async fn allocate(&mut self) -> Result<i64, KafkaError> {
        if self.next >= self.reserved_until {
            // Reserve the next block on disk before handing out any id from it, so a restart
            // never reuses an id (a reused id would make the broker drop a new producer's data).
            let reserved_until = self.next + PRODUCER_ID_BLOCK;
            cell::write(PRODUCER_IDS_CELL, self.generation + 1, &reserved_until)
                .await
                .map_err(|e| storage(PRODUCER_IDS_CELL, e))?;
            self.generation += 1;
            self.reserved_until = reserved_until;
        }
        let producer_id = self.next;
        self.next += 1;
        Ok(producer_id)
    }
}

/// How one transaction of an id ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Outcome {
    producer_id: i64,
    epoch: i16,
    committed: bool,
    /// Why the broker aborted it itself (`None` when its producer ended it).
    #[serde(default)]
    cause: Option<AbortCause>,
}

/// A transactional id's state, as stored (one record per change).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TxnMetadata {
    transactional_id: SmolStr,
    /// The current producer id; the open transaction's markers are written with it.
    producer_id: i64,
    /// The current epoch; older ones are fenced.
    epoch: i16,
    state: TransactionState,
    /// The partitions the current transaction wrote to.
    partitions: BTreeSet<TopicPartition>,
    timeout_ms: u64,
    /// When the current transaction began (its first produce), in ms of simulated time since
    /// the run started.
    started_ms: u64,
    /// The last ended transactions, oldest first.
    outcomes: Vec<Outcome>,
}

impl TxnMetadata {
    fn identity(&self) -> ProducerIdentity {
        ProducerIdentity { producer_id: self.producer_id, producer_epoch: self.epoch }
    }

    fn remember(&mut self, committed: bool, cause: Option<AbortCause>) {
        let outcome = Outcome { producer_id: self.producer_id, epoch: self.epoch, committed, cause };
        self.outcomes.retain(|o| (o.producer_id, o.epoch) != (outcome.producer_id, outcome.epoch));
        self.outcomes.push(outcome);
        let excess = self.outcomes.len().saturating_sub(OUTCOMES_KEPT);
        self.outcomes.drain(..excess);
    }
}

/// What the coordinator needs from the rest of the broker.
pub(super) struct Env<'a> {
    /// The partitions, for markers.
    pub(super) logs: &'a PartitionLogs,
    /// For new transactional ids (and the rare epoch overflow).
    pub(super) producer_ids: &'a Mutex<ProducerIds>,
    /// Simulated time since the run started.
    pub(super) now: Duration,
}

impl Env<'_> {
    fn now_ms(&self) -> u64 {
        self.now.as_millis() as u64
    }
}

/// The coordinator: every transactional id's state, and the log that keeps it.
pub(super) struct Coordinator {
    txns: BTreeMap<SmolStr, TxnMetadata>,
    /// Every producer id an id has used (current and remembered) → the id.
    by_producer: BTreeMap<i64, SmolStr>,
    /// The ids in `Prepare*` and in `Ongoing`, kept beside `txns` by [`store`](Self::store):
    /// the broker's timeout check looks for these every 10 s, and the exactly-once sink starts
    /// a transactional id per checkpoint, so a scan of `txns` grew with the run (about 1% of an
    /// hour's wall time, `perf`). Sets sorted as `txns` is, so they are walked in the same order.
    prepared: BTreeSet<SmolStr>,
    ongoing: BTreeSet<SmolStr>,
    log: PartitionLog,
}

fn storage(what: &str, e: impl std::fmt::Display) -> KafkaError {
    KafkaError::Storage { what: SmolStr::new(what), reason: SmolStr::new(e.to_string()) }
}

fn invalid(transactional_id: &str, reason: String) -> KafkaError {
    KafkaError::InvalidTxnState {
        transactional_id: SmolStr::new(transactional_id),
        reason: SmolStr::new(reason),
    }
}

/// Fencing reported by the coordinator itself (not by a data partition).
fn fenced_at_coordinator(producer_id: i64, epoch: i16, current: i16) -> KafkaError {
    KafkaError::ProducerFenced {
        partition: TopicPartition::new(TRANSACTION_STATE_TOPIC, 0),
        producer_id,
        epoch,
        current,
    }
}

impl Coordinator {
    /// Replays `__transaction_state-0` from the broker's disk (empty on the first start).
    /// Transactions caught in `Prepare*` are finished by [`complete_pending`](Self::complete_pending).
    pub(super) async fn recover() -> Result<Coordinator, KafkaError> {
        let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, 0);
        let log = PartitionLog::open(tp.clone(), SEGMENT_BYTES_DEFAULT).await?;
        let mut txns: BTreeMap<SmolStr, TxnMetadata> = BTreeMap::new();
        let mut offset = 0;
        while offset < log.high_watermark() {
            let bytes = log.read(offset, 1 << 20)?;
            if bytes.is_empty() {
                break;
            }
            for batch in RecordBatches::new(bytes) {
                let batch = batch.map_err(|e| storage(&tp.to_string(), e))?;
                for record in batch.records().filter(|r| r.offset >= offset) {
                    let meta: TxnMetadata = serde_json::from_slice(record.value)
                        .map_err(|e| storage(&tp.to_string(), e))?;
                    txns.insert(meta.transactional_id.clone(), meta);
                }
                offset = offset.max(batch.header().next_offset());
            }
        }
        let mut coordinator = Coordinator {
            txns: BTreeMap::new(),
            by_producer: BTreeMap::new(),
            prepared: BTreeSet::new(),
            ongoing: BTreeSet::new(),
            log,
        };
        for meta in txns.into_values() {
            for outcome in &meta.outcomes {
                coordinator.by_producer.insert(outcome.producer_id, meta.transactional_id.clone());
            }
            coordinator.remember(meta);
        }
        Ok(coordinator)
    }

    /// The highest producer id any transactional id has used.
    pub(super) fn max_producer_id(&self) -> Option<i64> {
        self.by_producer.keys().next_back().copied()
    }

    /// How many transactional ids are known, and how many have a transaction open.
    pub(super) fn counts(&self) -> (usize, usize) {
        (self.txns.len(), self.ongoing.len())
    }

    /// Writes the markers of every transaction whose decision is recorded but not completed.
    pub(super) async fn complete_pending(&mut self, env: &Env<'_>) -> Result<(), KafkaError> {
        let pending: Vec<SmolStr> = self.prepared.iter().cloned().collect();
        for id in pending {
            self.complete(env, &id).await?;
        }
        Ok(())
    }

    /// Registers `id` (new producer id, epoch 0) or re-registers it (epoch bumped, old
    /// transaction finished or aborted).
    pub(super) async fn init_producer_id(
        &mut self,
        env: &Env<'_>,
        id: &SmolStr,
        transaction_timeout: Duration,
    ) -> Result<ProducerIdentity, KafkaError> {
        let timeout_ms = transaction_timeout.as_millis() as u64;
        let Some(state) = self.txns.get(id).map(|m| m.state) else {
            let producer_id = env.producer_ids.lock().await.allocate().await?;
            let meta = TxnMetadata {
                transactional_id: id.clone(),
                producer_id,
                epoch: 0,
                state: TransactionState::Empty,
                partitions: BTreeSet::new(),
                timeout_ms,
                started_ms: env.now_ms(),
                outcomes: Vec::new(),
            };
            let identity = meta.identity();
            self.store(env, meta).await?;
            return Ok(identity);
        };
        let mut bumped = false;
        match state {
            TransactionState::PrepareCommit | TransactionState::PrepareAbort => {
                self.complete(env, id).await?;
            }
            TransactionState::Ongoing => {
                bumped = self.abort_open(env, id, AbortCause::Fenced).await?
            }
            _ => {}
        }
        let mut meta = self.txns[id].clone();
        if !bumped {
            if meta.epoch < i16::MAX {
                meta.epoch += 1;
            } else {
                meta.producer_id = env.producer_ids.lock().await.allocate().await?;
                meta.epoch = 0;
            }
        }
        meta.state = TransactionState::Empty;
        meta.partitions.clear();
        meta.timeout_ms = timeout_ms;
        meta.started_ms = env.now_ms();
        let identity = meta.identity();
        self.store(env, meta).await?;
        Ok(identity)
    }

    /// Checks a transactional batch about to be appended to `tp` (whose sequence the partition
    /// has already accepted as new) and joins `tp` to the producer's transaction, beginning it
    /// if this is its first batch.
    pub(super) async fn check_produce(
        &mut self,
        env: &Env<'_>,
        tp: &TopicPartition,
        h: &BatchHeader,
    ) -> Result<(), KafkaError> {
        let Some(id) = self.by_producer.get(&h.producer_id) else {
            return Err(invalid(
                "",
                format!("unknown transactional producer id {}", h.producer_id),
            ));
        };
        let meta = &self.txns[id];
        if h.producer_id != meta.producer_id || h.producer_epoch < meta.epoch {
            return Err(KafkaError::ProducerFenced {
                partition: tp.clone(),
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: meta.epoch,
            });
        }
        if h.producer_epoch > meta.epoch {
            return Err(invalid(
                id,
                format!(
                    "epoch {} is newer than the coordinator's {}",
                    h.producer_epoch, meta.epoch
                ),
            ));
        }
        let mut meta = meta.clone();
        match meta.state {
            TransactionState::Empty => {
                meta.state = TransactionState::Ongoing;
                meta.started_ms = env.now_ms();
                meta.partitions.insert(tp.clone());
            }
            TransactionState::Ongoing if !meta.partitions.contains(tp) => {
                meta.partitions.insert(tp.clone());
            }
            TransactionState::Ongoing => return Ok(()),
            ended => {
                return Err(invalid(
                    &meta.transactional_id,
                    format!(
                        "the transaction of producer {} epoch {} is {ended:?}; re-initialise to write again",
                        meta.producer_id, meta.epoch
                    ),
                ));
            }
        }
        self.store(env, meta).await
    }

    /// Ends a transaction (see [`EndTxn`] for the idempotence rules). Returns whether markers
    /// may have been written.
    pub(super) async fn end_txn(
        &mut self,
        env: &Env<'_>,
        req: &EndTxn,
    ) -> Result<bool, KafkaError> {
        let id = &req.transactional_id;
        let Some(meta) = self.txns.get(id) else {
            return Err(invalid(id, "unknown transactional id".to_owned()));
        };
        if (req.producer_id, req.epoch) != (meta.producer_id, meta.epoch) {
            let outcome = meta
                .outcomes
                .iter()
                .rev()
                .find(|o| (o.producer_id, o.epoch) == (req.producer_id, req.epoch));
            return match outcome {
                Some(o) if o.committed == req.commit => Ok(false),
                // Committing what the broker aborted: say so, and why (Kafka answers with a
                // fencing or invalid-state error; Flink's committer reads either as "aborted").
                Some(o) if req.commit => Err(KafkaError::TransactionAborted {
                    transactional_id: id.clone(),
                    producer_id: req.producer_id,
                    epoch: req.epoch,
                    cause: o.cause,
                }),
                _ => Err(fenced_at_coordinator(req.producer_id, req.epoch, meta.epoch)),
            };
        }
        let other_way = |state| {
            invalid(id, format!("cannot {} a transaction in state {state:?}", verb(req.commit)))
        };
        match meta.state {
            TransactionState::Empty => {
                // Nothing was written in this epoch: ending it writes no marker.
                let mut meta = meta.clone();
                meta.remember(req.commit, None);
                meta.state = complete_state(req.commit);
                self.store(env, meta).await?;
                Ok(false)
            }
            TransactionState::Ongoing => {
                let mut meta = meta.clone();
                meta.remember(req.commit, None);
                meta.state = if req.commit {
                    TransactionState::PrepareCommit
                } else {
                    TransactionState::PrepareAbort
                };
                self.store(env, meta).await?;
                self.complete(env, id).await?;
                Ok(true)
            }
            state @ (TransactionState::PrepareCommit | TransactionState::PrepareAbort) => {
                if (state == TransactionState::PrepareCommit) != req.commit {
                    return Err(other_way(state));
                }
                self.complete(env, id).await?;
                Ok(true)
            }
            state => {
                if (state == TransactionState::CompleteCommit) != req.commit {
                    return Err(other_way(state));
                }
                Ok(false)
            }
        }
    }

    /// The ids starting with `prefix` whose current epoch is open (or every one, with
    /// `include_ended`).
    pub(super) fn list(&self, prefix: &str, include_ended: bool) -> Vec<TransactionListing> {
        self.txns
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(|(id, _)| id.starts_with(prefix))
            .filter(|(_, meta)| include_ended || meta.state.is_open())
            .map(|(id, meta)| TransactionListing {
                transactional_id: id.clone(),
                producer_id: meta.producer_id,
                epoch: meta.epoch,
                state: meta.state,
            })
            .collect()
    }

    /// Aborts every transaction open longer than its timeout (bumping its epoch, so its
    /// producer is fenced), and retries any unfinished decision. Returns the ids aborted, each
    /// with its timeout.
    pub(super) async fn abort_expired(
        &mut self,
        env: &Env<'_>,
    ) -> Result<Vec<(SmolStr, Duration)>, KafkaError> {
        self.complete_pending(env).await?;
        let now_ms = env.now_ms();
        let expired: Vec<(SmolStr, Duration)> = self
            .ongoing
            .iter()
            .map(|id| &self.txns[id])
            .filter(|m| now_ms.saturating_sub(m.started_ms) >= m.timeout_ms)
            .map(|m| (m.transactional_id.clone(), Duration::from_millis(m.timeout_ms)))
            .collect();
        for (id, _) in &expired {
            self.abort_open(env, id, AbortCause::Timeout).await?;
        }
        Ok(expired)
    }

    /// Aborts `id`'s open transaction on behalf of the broker (fencing or timeout): the epoch
    /// is bumped first, so the markers fence the old producer on every partition it wrote to.
    /// Returns whether the epoch could be bumped (not at `i16::MAX`).
    async fn abort_open(
        &mut self,
        env: &Env<'_>,
        id: &SmolStr,
        cause: AbortCause,
    ) -> Result<bool, KafkaError> {
        let mut meta = self.txns[id].clone();
        meta.remember(false, Some(cause));
        let bumped = meta.epoch < i16::MAX;
        if bumped {
            meta.epoch += 1;
        }
        meta.state = TransactionState::PrepareAbort;
        self.store(env, meta).await?;
        self.complete(env, id).await?;
        Ok(bumped)
    }

    /// Writes the decided markers of `id`'s transaction (state `Prepare*`) and completes it.
    async fn complete(&mut self, env: &Env<'_>, id: &SmolStr) -> Result<(), KafkaError> {
        let mut meta = self.txns[id].clone();
        let commit = match meta.state {
            TransactionState::PrepareCommit => true,
            TransactionState::PrepareAbort => false,
            _ => return Ok(()),
        };
        let control = ControlType::of(commit);
        for tp in &meta.partitions {
            let Some(log) = env.logs.get(tp) else {
                continue;
            };
            let timestamp_ms = env.now_ms() as i64;
            log.lock().write_marker(meta.producer_id, meta.epoch, control, timestamp_ms)?;
        }
        meta.state = complete_state(commit);
        self.store(env, meta).await
    }

    /// Makes `meta` durable, then current.
    async fn store(&mut self, env: &Env<'_>, meta: TxnMetadata) -> Result<(), KafkaError> {
        let json = serde_json::to_vec(&meta).map_err(|e| storage(TRANSACTION_STATE_TOPIC, e))?;
        let mut builder = BatchBuilder::new();
        builder.append(env.now_ms() as i64, &json);
        self.log.append(builder.finish(NO_PRODUCER_ID, 0, 0))?;
        self.remember(meta);
        Ok(())
    }

    /// Makes `meta` current, in `txns` and in the sets of ids by state.
    fn remember(&mut self, meta: TxnMetadata) {
        let id = &meta.transactional_id;
        self.by_producer.insert(meta.producer_id, id.clone());
        let prepared = matches!(meta.state, TransactionState::PrepareCommit | TransactionState::PrepareAbort);
        set_member(&mut self.prepared, id, prepared);
        set_member(&mut self.ongoing, id, meta.state == TransactionState::Ongoing);
        self.txns.insert(id.clone(), meta);
    }
}

/// Puts `id` in `set` or takes it out.
fn set_member(set: &mut BTreeSet<SmolStr>, id: &SmolStr, member: bool) {
    if member {
        if !set.contains(id) {
            set.insert(id.clone());
        }
    } else {
        set.remove(id);
    }
}

fn complete_state(commit: bool) -> TransactionState {
    if commit { TransactionState::CompleteCommit } else { TransactionState::CompleteAbort }
}

fn verb(commit: bool) -> &'static str {
    if commit { "commit" } else { "abort" }
}
