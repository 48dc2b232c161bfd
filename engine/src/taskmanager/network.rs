//! The network stack of a TaskManager (docs/model/network.md#network-buffers): record writers fill
//! 32 KiB buffers per output channel and ship a buffer when it is full, when the 100 ms output
//! flusher runs, or right behind a watermark; input gates merge channels and combine watermarks
//! (min over active ones). One message crosses the simulated network per buffer, never one per
//! record. A buffer enters a gate only on credit (docs/model/network.md#credits-and-backpressure):
//! the gate's [`InputCredits`](super::credit::InputCredits) say how many each channel may take, and a delivery without credit
//! waits for the task to read a buffer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;

// The engine's lock (`crate::lock` says why).
use crate::lock::Mutex;
use crate::plant::{PlantedBug, Plants};
use crate::protocol::click_event::{ClickEvent, PAGES};
use crate::protocol::checkpoint::CheckpointBarrier;
use crate::protocol::data::{
    ChannelId, DeliverBuffer, DeliverResponse, NetworkBuffer, Record, StreamElement, WatermarkStatus,
};
use crate::protocol::ids::JobId;
use crate::protocol::job::Vertex;
use crate::protocol::key_group::KeyGroup;
use crate::rpc::Rpc;

use super::credit::BufferKind;
use super::flow_control::{FlowControlProbe, GateCredits, OUTPUT_BUFFERS_PER_CHANNEL};
use super::gate_queue::{self, GateInput, GateReceiver, GateSender};
use super::metrics::TaskMetrics;

/// How often the output flusher ships partly filled buffers (Flink's buffer timeout).
pub const BUFFER_TIMEOUT: Duration = Duration::from_millis(100);

/// How long a sender waits for a buffer to be acknowledged before resending it.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a sender waits before asking again for a consumer that is not deployed yet.
const UNKNOWN_CHANNEL_BACKOFF: Duration = Duration::from_millis(100);

/// Identifies an input gate on this TaskManager: one consuming subtask of one execution graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GateKey {
    job_id: JobId,
    graph_version: u64,
    consumer: Vertex,
    consumer_subtask: u32,
}

impl GateKey {
    /// The gate a channel leads into.
    pub fn of_channel(channel: &ChannelId) -> GateKey {
        GateKey {
            job_id: channel.job_id,
            graph_version: channel.graph_version,
            consumer: channel.consumer,
            consumer_subtask: channel.consumer_subtask,
        }
    }
}

struct GateEntry {
    sender: GateSender,
    credits: Arc<GateCredits>,
    /// Next expected sequence number per input channel (by its index): resent buffers are
    /// dropped. A vector, where a map's entry cost about 40 instructions per buffer.
    next_sequence: Vec<u64>,
}

/// The input gates deployed on this TaskManager, where deliveries (local or remote) land.
#[derive(Clone, Default)]
pub struct GateRegistry {
    gates: Arc<Mutex<Gates>>,
}

/// The gates by key, in key order: a TaskManager holds a handful, and a delivery finds its gate
/// by comparing keys for equality, where a map's search ordered them (about 60 instructions
/// per buffer more).
#[derive(Default)]
struct Gates(Vec<(GateKey, GateEntry)>);

impl Gates {
    fn get_mut(&mut self, key: &GateKey) -> Option<&mut GateEntry> {
        self.0.iter_mut().find(|(other, _)| other == key).map(|(_, entry)| entry)
    }

    /// Puts `entry` in for `key`; returns the entry it replaces.
    fn insert(&mut self, key: GateKey, entry: GateEntry) -> Option<GateEntry> {
        match self.0.binary_search_by(|(other, _)| other.cmp(&key)) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, entry)),
            Err(at) => {
                self.0.insert(at, (key, entry));
                None
            }
        }
    }

    fn remove(&mut self, key: &GateKey) -> Option<GateEntry> {
        let at = self.0.binary_search_by(|(other, _)| other.cmp(key)).ok()?;
        Some(self.0.remove(at).1)
    }

    /// Every entry, in key order.
    fn into_values(self) -> impl Iterator<Item = GateEntry> {
        self.0.into_iter().map(|(_, entry)| entry)
    }
}

impl GateRegistry {
    /// Creates the input gate of a consuming subtask with `channels` input channels.
    pub fn open_gate(&self, key: GateKey, channels: u32) -> InputGate {
        // Credit bounds what is in the gate: its queue never holds more than all its buffers.
        let (sender, receiver) = gate_queue::queue();
        let credits = Arc::new(GateCredits::new(channels));
        let entry = GateEntry { sender, credits: credits.clone(), next_sequence: vec![0; channels as usize] };
        if let Some(replaced) = self.gates.lock().insert(key, entry) {
            replaced.credits.close();
        }
        InputGate::new(receiver, channels, credits)
    }

    /// Removes a gate (its task ended); later deliveries to it are refused.
    pub fn close_gate(&self, key: GateKey) {
        if let Some(entry) = self.gates.lock().remove(&key) {
            entry.credits.close();
        }
    }

    /// Removes every gate (the TaskManager lost its JobManager and dropped all tasks).
    pub fn close_all(&self) {
        let gates = std::mem::take(&mut *self.gates.lock());
        for entry in gates.into_values() {
            entry.credits.close();
        }
    }

    /// Hands a buffer to its gate once its channel has credit (waiting for it is backpressure).
    /// A buffer for a gate that does not exist (yet, or any more) comes back to the caller.
    pub async fn deliver(&self, delivery: DeliverBuffer) -> Result<(), DeliverBuffer> {
        let records = record_count(&delivery.buffer.elements);
        self.deliver_counted(delivery, records).await
    }

    /// [`deliver`](Self::deliver) for a sender that counted the buffer's `records` as it filled
    /// it (counting them again cost about 90 instructions per buffer).
    async fn deliver_counted(&self, delivery: DeliverBuffer, records: usize) -> Result<(), DeliverBuffer> {
        let DeliverBuffer { channel, sequence, backlog, buffer } = delivery;
        // What is left to do outside the lock: the buffer to admit once its channel has credit.
        let (sender, credits, buffer) = {
            let mut gates = self.gates.lock();
            let Some(entry) = gates.get_mut(&GateKey::of_channel(&channel)) else {
                return Err(DeliverBuffer { channel, sequence, backlog, buffer });
            };
            let next = &mut entry.next_sequence[channel.input_index as usize];
            if sequence < *next {
                return Ok(()); // a resend of a buffer already taken
            }
            *next = sequence + 1;
            // Nearly every buffer has credit at once: it goes in here, as the waiting path below
            // would put it, without cloning the queue's sender and the credits for a wait that
            // does not come (about 250 instructions per buffer).
            match entry.credits.try_admit(channel.input_index, sequence, backlog) {
                Some(Some(kind)) => {
                    return entry
                        .sender
                        .send(GateInput { channel: channel.input_index, buffer, records, kind })
                        .map_err(|refused| DeliverBuffer { channel, sequence, backlog, buffer: refused.buffer });
                }
                // The gate closed.
                Some(None) => return Err(DeliverBuffer { channel, sequence, backlog, buffer }),
                None => (entry.sender.clone(), entry.credits.clone(), buffer),
            }
        };
        let Some(kind) = credits.admit(channel.input_index, sequence, backlog).await else {
            return Err(DeliverBuffer { channel, sequence, backlog, buffer });
        };
        sender
            .send(GateInput { channel: channel.input_index, buffer, records, kind })
            .map_err(|refused| DeliverBuffer { channel, sequence, backlog, buffer: refused.buffer })
    }

    /// [`deliver_counted`](Self::deliver_counted) where it needs no wait, for buffer `sequence`
    /// of `channel`: what it would have come to, the buffer handed back with it where it was
    /// not taken. Only the buffer moves in and out, not a whole delivery in nested results
    /// (about 30 instructions a buffer).
    fn deliver_at_once(&self, channel: &ChannelId, sequence: u64, buffer: NetworkBuffer, records: usize) -> AtOnce {
        let mut gates = self.gates.lock();
        let Some(entry) = gates.get_mut(&GateKey::of_channel(channel)) else {
            return AtOnce::Refused(buffer);
        };
        let next = &mut entry.next_sequence[channel.input_index as usize];
        if sequence < *next {
            return AtOnce::Taken; // a resend of a buffer already taken
        }
        // A failed admission changes nothing: `deliver_counted` takes it from the top.
        let Some(admitted) = entry.credits.try_admit(channel.input_index, sequence, 0) else {
            return AtOnce::Wait(buffer);
        };
        *next = sequence + 1;
        match admitted {
            Some(kind) => match entry.sender.send(GateInput { channel: channel.input_index, buffer, records, kind }) {
                Ok(()) => AtOnce::Taken,
                Err(refused) => AtOnce::Refused(refused.buffer),
            },
            // The gate closed.
            None => AtOnce::Refused(buffer),
        }
    }

    /// Answers a remote producer's delivery.
    pub async fn answer(&self, delivery: DeliverBuffer) -> DeliverResponse {
        match self.deliver(delivery).await {
            Ok(()) => DeliverResponse::Accepted,
            Err(_) => DeliverResponse::UnknownChannel,
        }
    }
}

/// What [`GateRegistry::deliver_at_once`] came to.
enum AtOnce {
    /// The gate took the buffer (or had taken it before).
    Taken,
    /// No gate takes it: not open yet, or closed.
    Refused(NetworkBuffer),
    /// Its channel has no credit for it yet.
    Wait(NetworkBuffer),
}

/// Where an output channel's buffers go.
#[derive(Clone)]
pub enum ChannelTarget {
    /// A consumer on this TaskManager: handed over in memory.
    Local(GateRegistry),
    /// A consumer on another TaskManager, reached over the network.
    Remote {
        /// This TaskManager's endpoint.
        rpc: Rpc,
        /// The consumer's TaskManager.
        address: SocketAddr,
    },
}

/// One output channel: the buffer being filled, and where a full one goes.
struct OutputChannel {
    current: NetworkBuffer,
    /// How many of `current`'s elements are records, counted as they go in.
    records: usize,
    sink: ChannelSink,
}

/// How many of `elements` are records.
fn record_count(elements: &[StreamElement]) -> usize {
    elements.iter().filter(|e| matches!(e, StreamElement::Record(_))).count()
}

/// Where an output channel's buffers go once shipped.
enum ChannelSink {
    /// Straight into the gate of a consumer on this TaskManager, by the writing task itself (no
    /// sender task to wake per buffer); the writer waits while the gate is full.
    Local {
        registry: GateRegistry,
        channel: ChannelId,
        sequence: u64,
    },
    /// To the channel's sender task, which ships it over the network until acknowledged.
    Remote(mpsc::Sender<NetworkBuffer>),
}

/// How a record writer picks the channel of a record.
#[derive(Clone, Copy, Debug)]
pub enum Partitioner {
    /// Everything to the one channel.
    Forward,
    /// By the key group of the record's page.
    Hash {
        /// Number of key groups.
        max_parallelism: u32,
    },
}

/// A page's channel not worked out yet (in [`RecordWriter`]'s cache).
const UNKNOWN_CHANNEL: u16 = u16::MAX;

/// A task's output: per-channel buffers, and a sender task per remote channel.
pub struct RecordWriter {
    channels: Vec<OutputChannel>,
    partitioner: Partitioner,
    senders: Vec<madsim::task::JoinHandle<()>>,
    /// Buffers shipped so far (for metrics and benchmarks).
    pub buffers_sent: u64,
    /// The task's metrics: records and bytes shipped, time blocked on a full queue.
    metrics: Option<Arc<TaskMetrics>>,
    clock: crate::timer::Clock,
    probe: FlowControlProbe,
    /// Where backpressure rising and falling is traced, if anywhere.
    tracer: Option<BackpressureTracer>,
    /// On a hash edge, the channel of each of the generator's pages (by its place in `PAGES`),
    /// once worked out: hashing the page to its key group and owner cost ~85 instructions per
    /// record. `UNKNOWN_CHANNEL` until worked out.
    page_channels: [u16; PAGES.len()],
}

/// How long a writer must ship without waiting before its backpressure is traced as falling.
pub const BACKPRESSURE_CALM: Duration = Duration::from_secs(1);

/// Traces a task's backpressure rising and falling.
pub struct BackpressureTracer {
    trace: crate::trace::NodeTrace,
    task: String,
    job_id: JobId,
    /// Since when the output counts as backpressured, and when it last stopped waiting.
    rising: Option<madsim::time::Instant>,
    last_wait: Option<madsim::time::Instant>,
}

impl BackpressureTracer {
    /// A tracer for `task` of `job_id`.
    pub fn new(trace: crate::trace::NodeTrace, task: String, job_id: JobId) -> BackpressureTracer {
        BackpressureTracer { trace, task, job_id, rising: None, last_wait: None }
    }

    /// A buffer was shipped at `now`, after waiting or not.
    fn shipped(&mut self, waited: bool, now: madsim::time::Instant) {
        if waited {
            self.last_wait = Some(now);
            if self.rising.is_none() {
                self.rising = Some(now);
                self.record(true);
            }
        } else if self.rising.is_some() && self.last_wait.is_some_and(|w| now - w >= BACKPRESSURE_CALM) {
            self.rising = None;
            self.record(false);
        }
    }

    /// A buffer was shipped without waiting, now: only a rising backpressure needs the time.
    fn shipped_at_once(&mut self, clock: &crate::timer::Clock) {
        if self.rising.is_some() {
            self.shipped(false, clock.now());
        }
    }

    fn record(&self, blocked: bool) {
        self.trace.record(crate::trace::Event::Backpressure { task: self.task.clone(), job_id: self.job_id, blocked });
    }
}

/// A remote channel's sender task stopped: its consumer is gone for good.
#[derive(Debug, thiserror::Error)]
#[error("output channel {0} is closed")]
pub struct ChannelClosed(pub usize);

impl RecordWriter {
    /// A writer with one channel per target; `channel_ids[i]` names the consumer of channel i.
    pub fn new(
        targets: Vec<(ChannelId, ChannelTarget)>,
        partitioner: Partitioner,
    ) -> RecordWriter {
        let mut channels = Vec::with_capacity(targets.len());
        let mut senders = Vec::with_capacity(targets.len());
        for (channel_id, target) in targets {
            let sink = match target {
                ChannelTarget::Local(registry) => {
                    ChannelSink::Local { registry, channel: channel_id, sequence: 0 }
                }
                ChannelTarget::Remote { rpc, address } => {
                    let (queue, buffers) = mpsc::channel(OUTPUT_BUFFERS_PER_CHANNEL);
                    senders.push(madsim::task::spawn(ship_buffers(channel_id, rpc, address, buffers)));
                    ChannelSink::Remote(queue)
                }
            };
            channels.push(OutputChannel { current: NetworkBuffer::default(), records: 0, sink });
        }
        let probe = FlowControlProbe::default();
        probe.observe_output(output_queues(&channels));
        RecordWriter {
            channels,
            partitioner,
            senders,
            buffers_sent: 0,
            clock: crate::timer::Clock::current(),
            probe,
            tracer: None,
            metrics: None,
            page_channels: [UNKNOWN_CHANNEL; PAGES.len()],
        }
    }

    /// Traces backpressure rising and falling through `tracer`.
    pub fn with_tracer(mut self, tracer: BackpressureTracer) -> RecordWriter {
        self.tracer = Some(tracer);
        self
    }

    /// The writer's flow control, readable while it runs.
    pub fn probe(&self) -> FlowControlProbe {
        self.probe.clone()
    }

    /// Counts what the writer ships into `metrics`, and keeps its flow control in their probe.
    pub fn observed_by(mut self, metrics: Arc<TaskMetrics>) -> RecordWriter {
        let probe = metrics.flow_control();
        probe.observe_output(output_queues(&self.channels));
        self.probe = probe;
        self.metrics = Some(metrics);
        self
    }

    /// Appends a record to the channel the partitioner picks; ships the buffer once full.
    pub async fn emit(&mut self, record: Record) -> Result<(), ChannelClosed> {
        let index = self.channel_of(&record);
        self.append(index, StreamElement::Record(record)).await
    }

    /// [`emit`](Self::emit) without a future when the channel's buffer has room, as it nearly
    /// always has: the record is appended (`None`), or handed back to be `emit`ted because its
    /// buffer must be shipped first. A per-record future cost a copy of the record and of the
    /// future's state (a callgrind profile).
    #[inline(always)]
    pub fn emit_now(&mut self, record: Record) -> Option<Record> {
        // A forward edge's one channel without a call, and on a hash edge a generator's page
        // whose channel is known without one either (the call, which works it out the first
        // time, cost about 45 instructions a record), and whose size is its static page's:
        // each look at a `SmolStr` matches on its representation again. Inlined into the
        // operator's loop, the record is not passed in and handed back through the call.
        let (index, size) = match (self.partitioner, &record) {
            (Partitioner::Forward, _) => (0, record.serialized_size()),
            (Partitioner::Hash { .. }, Record::Click(event)) => match event.known_page_index() {
                Some(page) if self.page_channels[page] != UNKNOWN_CHANNEL => {
                    (usize::from(self.page_channels[page]), Record::click_size(PAGES[page].len()))
                }
                _ => (self.channel_of(&record), record.serialized_size()),
            },
            (Partitioner::Hash { .. }, _) => (self.channel_of(&record), record.serialized_size()),
        };
        let channel = &mut self.channels[index];
        if !channel.current.has_room(size) {
            return Some(record);
        }
        channel.current.push(StreamElement::Record(record), size);
        channel.records += 1;
        None
    }

    /// The channel the partitioner picks for `record`.
    fn channel_of(&mut self, record: &Record) -> usize {
        match (self.partitioner, record) {
            (Partitioner::Forward, _) => 0,
            (Partitioner::Hash { max_parallelism }, Record::Click(event)) => {
                let channels = self.channels.len() as u32;
                let owner = || {
                    KeyGroup::of_hash_code(event.page_hash_code(), max_parallelism)
                        .owner(max_parallelism, channels) as usize
                };
                match event.known_page_index() {
                    Some(page) => match self.page_channels[page] {
                        UNKNOWN_CHANNEL => {
                            let channel = owner();
                            // A channel past the cache's range is worked out every time.
                            self.page_channels[page] = u16::try_from(channel).unwrap_or(UNKNOWN_CHANNEL);
                            channel
                        }
                        channel => usize::from(channel),
                    },
                    None => owner(),
                }
            }
            (Partitioner::Hash { .. }, other) => {
                unreachable!("only ClickEvents cross the hash edge, not {other:?}")
            }
        }
    }

    /// Sends an element (watermark, status) on every channel and ships the buffers it ends.
    pub async fn broadcast(&mut self, element: StreamElement) -> Result<(), ChannelClosed> {
        let size = element.serialized_size();
        for index in 0..self.channels.len() {
            // Appended in place where it fits, as nearly always: `append`'s future is for a
            // buffer that must be shipped first.
            let channel = &mut self.channels[index];
            if channel.current.has_room(size) {
                channel.records += usize::from(matches!(element, StreamElement::Record(_)));
                channel.current.push(element.clone(), size);
            } else {
                self.append(index, element.clone()).await?;
            }
        }
        self.flush_all().await
    }

    /// Whether any channel's buffer holds something not shipped yet.
    pub fn has_pending(&self) -> bool {
        self.channels.iter().any(|channel| !channel.current.elements.is_empty())
    }

    /// Ships every partly filled buffer (the output flusher, and the end of a watermark).
    pub async fn flush_all(&mut self) -> Result<(), ChannelClosed> {
        for index in 0..self.channels.len() {
            // An empty buffer is passed over without making `flush`'s future to find it so.
            if !self.channels[index].current.elements.is_empty() {
                self.flush(index).await?;
            }
        }
        Ok(())
    }

    /// Drops what every partly filled buffer holds, unshipped; returns how many records went.
    /// Only the planted bug `savepoint-without-drain` does this (docs/planted-bugs.md).
    pub fn discard_pending(&mut self) -> usize {
        let mut records = 0;
        for channel in &mut self.channels {
            records += channel.records;
            channel.current = NetworkBuffer::default();
            channel.records = 0;
        }
        records
    }

    async fn append(&mut self, index: usize, element: StreamElement) -> Result<(), ChannelClosed> {
        let size = element.serialized_size();
        if !self.channels[index].current.has_room(size) {
            self.flush(index).await?;
        }
        let channel = &mut self.channels[index];
        channel.records += usize::from(matches!(element, StreamElement::Record(_)));
        channel.current.push(element, size);
        Ok(())
    }

    async fn flush(&mut self, index: usize) -> Result<(), ChannelClosed> {
        let channel = &mut self.channels[index];
        if channel.current.elements.is_empty() {
            return Ok(());
        }
        // The next buffer likely holds about as many elements: room for up to 16 more. Sized to
        // exactly as many, 7,800 of 21,700 buffers in 5 simulated minutes grew once (a
        // reallocation and a copy, about 380 instructions each).
        let len = channel.current.elements.len();
        let next = NetworkBuffer { elements: Vec::with_capacity(len + len.min(16)), bytes: 0 };
        let buffer = std::mem::replace(&mut channel.current, next);
        let records = std::mem::take(&mut channel.records);
        if let Some(metrics) = &self.metrics {
            metrics.add_records_out(records as u64);
            metrics.add_bytes_out(buffer.bytes as u64);
        }
        // Waiting takes simulated time; shipping on credit does not. Time spent here waiting is
        // the output's back-pressure.
        let before;
        match &mut channel.sink {
            ChannelSink::Local { registry, channel, sequence } => {
                // In memory nothing is lost: the buffer moves, and comes back only while the
                // consumer's gate is not open yet. The writer hands over one buffer at a time:
                // it has no backlog to announce, so the channel gets no floating buffers.
                let first = registry.deliver_at_once(channel, *sequence, buffer, records);
                if matches!(first, AtOnce::Taken) {
                    // Shipped on credit at once, as nearly every buffer is: no time passed, so
                    // there is no wait to note in the probe, nor (unless backpressure is
                    // traced as rising) a clock to read (two locks and two readings, about 150
                    // instructions per buffer), and no future for the delivery.
                    *sequence += 1;
                    self.buffers_sent += 1;
                    if let Some(tracer) = &mut self.tracer {
                        tracer.shipped_at_once(&self.clock);
                    }
                    return Ok(());
                }
                // Still the instant the flush began: handing over took no simulated time.
                before = self.clock.now();
                self.probe.start_waiting(before);
                let mut delivery = match first {
                    AtOnce::Refused(buffer) => {
                        madsim::time::sleep(UNKNOWN_CHANNEL_BACKOFF).await;
                        DeliverBuffer { channel: *channel, sequence: *sequence, backlog: 0, buffer }
                    }
                    AtOnce::Wait(buffer) => DeliverBuffer { channel: *channel, sequence: *sequence, backlog: 0, buffer },
                    AtOnce::Taken => unreachable!("handled above"),
                };
                while let Err(back) = registry.deliver_counted(delivery, records).await {
                    delivery = back;
                    madsim::time::sleep(UNKNOWN_CHANNEL_BACKOFF).await;
                }
                *sequence += 1;
            }
            ChannelSink::Remote(queue) => {
                before = self.clock.now();
                match queue.try_send(buffer) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(buffer)) => {
                        // The output pool is full: the task waits for its sender, which waits
                        // for credit, to ship one.
                        self.probe.start_waiting(before);
                        queue.send(buffer).await.map_err(|_| ChannelClosed(index))?;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return Err(ChannelClosed(index)),
                }
            }
        }
        self.buffers_sent += 1;
        let now = self.clock.now();
        let waited = now > before;
        self.probe.stop_waiting(now);
        if let Some(tracer) = &mut self.tracer {
            tracer.shipped(waited, now);
        }
        Ok(())
    }
}

/// The remote channels' queues of a writer (each may hold [`OUTPUT_BUFFERS_PER_CHANNEL`]).
fn output_queues(channels: &[OutputChannel]) -> Vec<mpsc::WeakSender<NetworkBuffer>> {
    channels
        .iter()
        .filter_map(|channel| match &channel.sink {
            ChannelSink::Remote(queue) => Some(queue.downgrade()),
            ChannelSink::Local { .. } => None,
        })
        .collect()
}

impl Drop for RecordWriter {
    fn drop(&mut self) {
        // A cancelled task takes its in-flight buffers with it.
        for sender in &self.senders {
            sender.abort();
        }
    }
}

/// A remote channel's sender: ships buffers one at a time, in order, until each is acknowledged.
async fn ship_buffers(
    channel: ChannelId,
    rpc: Rpc,
    address: SocketAddr,
    mut buffers: mpsc::Receiver<NetworkBuffer>,
) {
    let mut sequence = 0u64;
    while let Some(buffer) = buffers.recv().await {
        // What waits behind this buffer travels with it: the consumer lends floating buffers by it.
        let backlog = buffers.len() as u32;
        let delivery = DeliverBuffer { channel, sequence, backlog, buffer };
        // A copy stays here until the consumer acknowledges it.
        loop {
            match rpc.call(address, delivery.clone(), DELIVERY_TIMEOUT).await {
                Ok(DeliverResponse::Accepted) => break,
                Ok(DeliverResponse::UnknownChannel) => {
                    madsim::time::sleep(UNKNOWN_CHANNEL_BACKOFF).await
                }
                Err(_) => {} // lost or slow: send the same buffer again
            }
        }
        sequence += 1;
    }
}

/// What an input gate yields to its task.
#[derive(Debug, PartialEq)]
pub enum GateEvent {
    /// A record from channel `.0`.
    Record(u32, Record),
    /// The combined watermark (min over active channels) advanced.
    Watermark(i64),
    /// All channels went idle, or one became active again.
    Status(WatermarkStatus),
    /// An upstream source said which Kafka partitions it reads.
    PartitionsAssigned(u32, Vec<u32>),
    /// Barrier n has arrived on every channel (aligned): snapshot, then forward it.
    Barrier(CheckpointBarrier),
    /// Every producer is gone (the gate was closed).
    Closed,
}

#[derive(Clone, Copy, Debug)]
struct ChannelClock {
    watermark: i64,
    idle: bool,
    /// Left out of the min until it catches up with the combined watermark (Flink's
    /// "aligned" channels), so a channel that wakes up late does not hold event time back.
    aligned: bool,
}

/// Aligned checkpoints (docs/model/checkpoints.md#overview): a channel that delivered barrier n is
/// blocked (its later elements held back) until barrier n has arrived on every channel.
#[derive(Debug, Default)]
struct Alignment {
    /// The barrier being aligned, if any.
    barrier: Option<CheckpointBarrier>,
    /// Channels that already delivered it.
    blocked: Vec<bool>,
    /// Elements that arrived on blocked channels, per channel, in order.
    held: Vec<VecDeque<StreamElement>>,
    /// Elements released when an alignment ended, to be processed before new input.
    released: VecDeque<(u32, StreamElement)>,
    /// The newest checkpoint aligned so far (older barriers are ignored).
    last_aligned: u64,
}

/// A task's input: buffers from all its channels, elements in per-channel order.
pub struct InputGate {
    receiver: GateReceiver,
    clocks: Vec<ChannelClock>,
    current: std::vec::IntoIter<StreamElement>,
    current_channel: u32,
    watermark: i64,
    idle: bool,
    alignment: Alignment,
    /// Planted bug `barriers-not-aligned` (docs/planted-bugs.md): read once when the gate opens.
    unaligned: bool,
    /// Planted bug `watermark-max-of-inputs` (docs/planted-bugs.md).
    max_watermark: bool,
    /// The task's metrics: records and bytes received, the input watermark.
    metrics: Option<Arc<TaskMetrics>>,
    credits: Arc<GateCredits>,
    /// The buffer being read, given back as credit once read.
    reading: Option<(u32, BufferKind)>,
    /// Where busy time goes, if anywhere, and since when the task has been handling what the
    /// gate last handed it (with the time it had been blocked on its output by then).
    busy: Option<BusyClock>,
    /// Whether a record next in the buffer at hand may be handed over as it is: nothing
    /// released waits, its channel is not blocked, and a busy stretch is under way. Everything
    /// it depends on changes only on the slow path or with a new buffer, which set it again, so
    /// the fast path tests one flag rather than three conditions per record.
    records_flow: bool,
    /// The slow path found the buffer at hand read to its end (its credit given back) and
    /// nothing released waiting: until a new buffer comes, looking again finds nothing and
    /// changes nothing.
    exhausted: bool,
}

/// Measures a task's busy time into its probe: from when the gate hands over an event until the
/// task asks for the next, less the time it waited for credit meanwhile.
struct BusyClock {
    probe: FlowControlProbe,
    clock: crate::timer::Clock,
    /// A busy stretch is under way in the probe.
    open: bool,
}

impl InputGate {
    fn new(receiver: GateReceiver, channels: u32, credits: Arc<GateCredits>) -> InputGate {
        let clock = ChannelClock { watermark: i64::MIN, idle: false, aligned: true };
        InputGate {
            receiver,
            clocks: vec![clock; channels as usize],
            current: Vec::new().into_iter(),
            current_channel: 0,
            watermark: i64::MIN,
            idle: false,
            alignment: Alignment {
                blocked: vec![false; channels as usize],
                held: vec![VecDeque::new(); channels as usize],
                ..Alignment::default()
            },
            unaligned: false,
            max_watermark: false,
            metrics: None,
            credits,
            reading: None,
            busy: None,
            records_flow: false,
            exhausted: false,
        }
    }

    /// The gate with the planted bugs that live in it switched on (docs/planted-bugs.md).
    pub fn planted(mut self, plants: Plants) -> InputGate {
        self.unaligned = plants.has(PlantedBug::BarriersNotAligned);
        self.max_watermark = plants.has(PlantedBug::WatermarkMaxOfInputs);
        self
    }

    /// Counts what the gate receives into `metrics`, and keeps its buffers' use and the task's
    /// busy time in their flow-control probe.
    pub fn observed_by(mut self, metrics: Arc<TaskMetrics>) -> InputGate {
        let probe = metrics.flow_control();
        probe.observe_input(self.credits.clone());
        self.busy = Some(BusyClock { probe, clock: crate::timer::Clock::current(), open: false });
        self.records_flow = false;
        self.metrics = Some(metrics);
        self
    }

    /// The combined watermark so far.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// The next thing the task must handle.
    pub async fn next(&mut self) -> GateEvent {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// [`next`](Self::next) as a poll, for a task's loop that polls its sources by hand: no
    /// future to make, pin and drop each turn.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<GateEvent> {
        // With the buffer at hand read to its end (a task's loop finds so before it comes back
        // here, and a poll after waiting finds so again), straight to the queue: the slow path's
        // look cost about 45 to 70 instructions per buffer.
        if !self.exhausted
            && let Some(event) = self.next_buffered()
        {
            return Poll::Ready(event);
        }
        loop {
            let Poll::Ready(input) = self.receiver.poll_recv(cx) else {
                return Poll::Pending;
            };
            match input {
                Some(input) => {
                    if let Some(metrics) = &self.metrics {
                        metrics.add_records_in(input.records as u64);
                        metrics.add_bytes_in(input.buffer.bytes as u64);
                    }
                    self.current_channel = input.channel;
                    self.current = input.buffer.elements.into_iter();
                    self.reading = Some((input.channel, input.kind));
                    self.records_flow = false; // worked out again on the slow path
                    self.exhausted = false;
                }
                None => return Poll::Ready(GateEvent::Closed),
            }
            if let Some(event) = self.next_buffered() {
                return Poll::Ready(event);
            }
        }
    }

    /// The next thing the task must handle, if the buffer at hand still holds it: lets a task
    /// work through a whole buffer without going back to its `select!` for every record.
    #[inline]
    pub fn next_buffered(&mut self) -> Option<GateEvent> {
        // The common case, a record next in the buffer at hand on an unblocked channel while a
        // busy stretch is under way, needs none of the slow path's bookkeeping; inlined into the
        // operator's loop it hands the record over without moving it through two `Option`s (the
        // slow path alone cost 2.5% of a run's instructions, about 110 per record).
        if let Some(record) = self.take_record_at_hand(|_| true) {
            return Some(GateEvent::Record(self.current_channel, record));
        }
        self.next_buffered_slow()
    }

    /// A `Record::Sourced` next in the buffer at hand, taken as [`next_buffered`](Self::next_buffered)
    /// would hand it over, as its partition and event; `None` for anything else, left for
    /// `next_buffered`. Timestamps/Watermarks reads its records so, without the two enums around
    /// each moved through the call (about 8 instructions a record).
    #[inline]
    pub fn next_buffered_sourced(&mut self) -> Option<(u32, ClickEvent)> {
        match self.take_record_at_hand(|record| matches!(record, Record::Sourced { .. }))? {
            Record::Sourced { partition, event } => Some((partition, event)),
            _ => None,
        }
    }

    /// [`next_buffered_sourced`](Self::next_buffered_sourced) for a `Record::Click`, as the
    /// window counter reads its records.
    #[inline]
    pub fn next_buffered_click(&mut self) -> Option<ClickEvent> {
        match self.take_record_at_hand(|record| matches!(record, Record::Click(_)))? {
            Record::Click(event) => Some(event),
            _ => None,
        }
    }

    /// The record next in the buffer at hand if records flow and `wanted` takes it: the fast
    /// path that every `next_buffered*` tries before the slow path's bookkeeping.
    #[inline(always)]
    fn take_record_at_hand(&mut self, wanted: impl FnOnce(&Record) -> bool) -> Option<Record> {
        if self.records_flow
            && matches!(self.current.as_slice().first(), Some(StreamElement::Record(record)) if wanted(record))
            && let Some(StreamElement::Record(record)) = self.current.next()
        {
            return Some(record);
        }
        None
    }

    /// [`next_buffered`](Self::next_buffered) for everything but a record read on.
    #[inline(never)]
    fn next_buffered_slow(&mut self) -> Option<GateEvent> {
        let event = self.next_element();
        if let Some(busy) = &mut self.busy {
            // Asking for the next event and being handed it happen at one instant, so a stretch
            // under way simply goes on: the clock is read (and the probe locked) only where the
            // task starts or stops being busy, not for every record (that cost 1.4% of a run's
            // instructions).
            match (event.is_some(), busy.open) {
                (true, false) => {
                    busy.probe.start_busy(busy.clock.now());
                    busy.open = true;
                }
                (false, true) => {
                    busy.probe.stop_busy(busy.clock.now());
                    busy.open = false;
                }
                _ => {}
            }
        }
        self.records_flow = self.alignment.released.is_empty()
            && !self.alignment.blocked[self.current_channel as usize]
            && self.busy.as_ref().is_none_or(|busy| busy.open);
        self.exhausted = event.is_none();
        event
    }

    fn next_element(&mut self) -> Option<GateEvent> {
        loop {
            let (channel, element) = if let Some(released) = self.alignment.released.pop_front() {
                released
            } else if let Some(element) = self.current.next() {
                (self.current_channel, element)
            } else {
                // The buffer is read: its credit goes back to its channel (or the pool).
                if let Some((channel, kind)) = self.reading.take() {
                    self.credits.release(channel, kind);
                }
                return None;
            };
            if self.alignment.blocked[channel as usize] {
                self.alignment.held[channel as usize].push_back(element);
                continue;
            }
            let event = match element {
                StreamElement::Record(record) => Some(GateEvent::Record(channel, record)),
                StreamElement::Watermark(watermark) => self.on_watermark(channel, watermark),
                StreamElement::WatermarkStatus(status) => self.on_status(channel, status),
                StreamElement::PartitionsAssigned(partitions) => {
                    Some(GateEvent::PartitionsAssigned(channel, partitions))
                }
                StreamElement::Barrier(barrier) => self.on_barrier(channel, barrier),
            };
            if event.is_some() {
                return event;
            }
        }
    }

    fn on_barrier(&mut self, channel: u32, barrier: CheckpointBarrier) -> Option<GateEvent> {
        let id = barrier.checkpoint_id;
        let alignment = &mut self.alignment;
        if id <= alignment.last_aligned {
            return None; // a barrier of a checkpoint already aligned (or given up)
        }
        if self.unaligned {
            // The planted mistake: the first channel's barrier goes on at once and no channel
            // waits, so the snapshot misses what the other channels still send before theirs,
            // and holds what this one sends after it.
            alignment.last_aligned = id;
            return Some(GateEvent::Barrier(barrier));
        }
        match alignment.barrier {
            Some(current) if id < current.checkpoint_id => return None,
            Some(current) if id > current.checkpoint_id => {
                // A newer checkpoint overtakes the one being aligned: give that one up.
                self.release_held();
                self.alignment.barrier = Some(barrier);
            }
            Some(_) => {}
            None => self.alignment.barrier = Some(barrier),
        }
        self.alignment.blocked[channel as usize] = true;
        if self.alignment.blocked.iter().all(|b| *b) {
            self.alignment.last_aligned = id;
            self.alignment.barrier = None;
            self.release_held();
            return Some(GateEvent::Barrier(barrier));
        }
        None
    }

    /// Unblocks every channel; what they held is processed next, channel by channel.
    fn release_held(&mut self) {
        let alignment = &mut self.alignment;
        for (channel, held) in alignment.held.iter_mut().enumerate() {
            alignment.released.extend(held.drain(..).map(|e| (channel as u32, e)));
        }
        alignment.blocked.iter_mut().for_each(|b| *b = false);
    }

    fn on_watermark(&mut self, channel: u32, watermark: i64) -> Option<GateEvent> {
        let clock = &mut self.clocks[channel as usize];
        if watermark <= clock.watermark {
            return None;
        }
        clock.watermark = watermark;
        if watermark >= self.watermark {
            clock.aligned = true;
        }
        self.advance()
    }

    fn on_status(&mut self, channel: u32, status: WatermarkStatus) -> Option<GateEvent> {
        let clock = &mut self.clocks[channel as usize];
        match status {
            WatermarkStatus::Idle => clock.idle = true,
            WatermarkStatus::Active => {
                clock.idle = false;
                clock.aligned = clock.watermark >= self.watermark;
            }
        }
        let all_idle = self.clocks.iter().all(|c| c.idle);
        if all_idle != self.idle {
            self.idle = all_idle;
            return Some(GateEvent::Status(if all_idle {
                WatermarkStatus::Idle
            } else {
                WatermarkStatus::Active
            }));
        }
        self.advance()
    }

    /// Recomputes the min over active, aligned channels; reports it if it moved forward.
    fn advance(&mut self) -> Option<GateEvent> {
        let active = self.clocks.iter().filter(|c| !c.idle && c.aligned).map(|c| c.watermark);
        // The planted mistake takes the fastest channel's watermark, not the slowest's.
        let min = if self.max_watermark { active.max()? } else { active.min()? };
        if min > self.watermark {
            self.watermark = min;
            if let Some(metrics) = &self.metrics {
                metrics.set_input_watermark(min);
            }
            Some(GateEvent::Watermark(min))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use madsim::time::{Instant, sleep};

    use super::*;
    use crate::protocol::click_event::ClickEvent;

    fn channel() -> ChannelId {
        ChannelId {
            job_id: JobId(1),
            graph_version: 1,
            consumer: Vertex::TimestampsWatermarks,
            consumer_subtask: 0,
            producer_subtask: 0,
            input_index: 0,
        }
    }

    fn runtime() -> madsim::runtime::Runtime {
        madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default())
    }

    /// The page of the ClickEvent a gate event carries.
    fn page_of(event: GateEvent) -> String {
        match event {
            GateEvent::Record(0, Record::Click(event)) => event.page.to_string(),
            other => panic!("expected a record, got {other:?}"),
        }
    }

    #[test]
    fn gates_are_found_by_key_replaced_in_place_and_given_up_in_key_order() {
        let key = |consumer_subtask| GateKey::of_channel(&ChannelId { consumer_subtask, ..channel() });
        let entry = |channels: u32| {
            let (sender, _) = gate_queue::queue();
            GateEntry { sender, credits: Arc::new(GateCredits::new(channels)), next_sequence: vec![0; channels as usize] }
        };
        let mut gates = Gates::default();
        for subtask in [2, 0, 3, 1] {
            assert!(gates.insert(key(subtask), entry(subtask + 1)).is_none());
        }
        let replaced = gates.insert(key(3), entry(9)).expect("a gate was there");
        assert_eq!(replaced.next_sequence.len(), 4);
        assert_eq!(gates.get_mut(&key(3)).map(|e| e.next_sequence.len()), Some(9));
        assert_eq!(gates.remove(&key(0)).map(|e| e.next_sequence.len()), Some(1));
        assert!(gates.get_mut(&key(0)).is_none() && gates.remove(&key(0)).is_none());
        let order: Vec<usize> = gates.into_values().map(|e| e.next_sequence.len()).collect();
        assert_eq!(order, [2, 3, 9], "subtasks 1, 2, 3");
    }

    #[test]
    fn a_local_writer_waits_for_its_gate_to_open_and_delivers_each_buffer_once_in_order() {
        runtime().block_on(async {
            let registry = GateRegistry::default();
            let target = (channel(), ChannelTarget::Local(registry.clone()));
            let mut writer = RecordWriter::new(vec![target], Partitioner::Forward);
            let start = Instant::now();
            let consumer = {
                let registry = registry.clone();
                madsim::task::spawn(async move {
                    sleep(Duration::from_millis(250)).await; // the consumer deploys late
                    let mut gate = registry.open_gate(GateKey::of_channel(&channel()), 1);
                    let mut pages = Vec::new();
                    while pages.len() < 30 {
                        pages.push(page_of(gate.next().await));
                    }
                    pages
                })
            };
            // Thirty one-record buffers: the first waits for the gate, later ones for room in it.
            for k in 0..30 {
                writer.emit(Record::Click(ClickEvent::nth(k))).await.unwrap();
                writer.flush_all().await.unwrap();
            }
            assert!(Instant::now() - start >= Duration::from_millis(250), "delivered before the gate opened");
            let expected: Vec<String> = (0..30).map(|k| ClickEvent::nth(k).page.to_string()).collect();
            assert_eq!(consumer.await.unwrap(), expected);
        });
    }

    #[test]
    fn a_full_local_gate_holds_the_writer_back() {
        runtime().block_on(async {
            let registry = GateRegistry::default();
            let mut gate = registry.open_gate(GateKey::of_channel(&channel()), 1);
            let target = (channel(), ChannelTarget::Local(registry.clone()));
            let writer = madsim::task::spawn(async move {
                let mut writer = RecordWriter::new(vec![target], Partitioner::Forward);
                for k in 0..100 {
                    writer.emit(Record::Click(ClickEvent::nth(k))).await.unwrap();
                    writer.flush_all().await.unwrap();
                }
                writer.buffers_sent
            });
            sleep(Duration::from_millis(10)).await;
            assert!(!writer.is_finished(), "a channel without a backlog took 100 buffers on 2 credits");
            for _ in 0..100 {
                page_of(gate.next().await);
            }
            assert_eq!(writer.await.unwrap(), 100);
        });
    }

    #[test]
    fn a_delivery_without_credit_waits_and_a_backlog_gets_floating_buffers() {
        runtime().block_on(async {
            let registry = GateRegistry::default();
            let key = GateKey::of_channel(&channel());
            let mut gate = registry.open_gate(key, 2);
            let on = |input_index: u32, sequence: u64, backlog: u32| DeliverBuffer {
                channel: ChannelId { input_index, producer_subtask: input_index, ..channel() },
                sequence,
                backlog,
                buffer: NetworkBuffer {
                    elements: vec![StreamElement::Record(Record::Click(ClickEvent::nth(sequence)))],
                    bytes: 0,
                },
            };
            // Channel 0's sender announces no backlog: its 2 exclusive buffers are its credit.
            registry.deliver(on(0, 0, 0)).await.unwrap();
            registry.deliver(on(0, 1, 0)).await.unwrap();
            let third = {
                let registry = registry.clone();
                madsim::task::spawn(async move { registry.deliver(on(0, 2, 0)).await.is_ok() })
            };
            sleep(Duration::from_millis(10)).await;
            assert!(!third.is_finished(), "a sender without credit waits");
            // Channel 1's sender holds 5 more buffers: the gate lends it floating ones, and
            // all 6 get in while channel 0 still waits.
            for sequence in 0..6 {
                registry.deliver(on(1, sequence, 5 - sequence as u32)).await.unwrap();
            }
            assert!(!third.is_finished());
            // The task reads channel 0's first buffer: its credit comes back and the third
            // buffer gets in.
            assert_eq!(gate.next().await, GateEvent::Record(0, Record::Click(ClickEvent::nth(0))));
            assert!(gate.next_buffered().is_none());
            assert!(third.await.unwrap());
            registry.close_gate(key);
        });
    }

    /// An input gate fed by hand, as its task sees it (`next()` until it would wait): no network,
    /// no task, no runtime.
    struct Gate {
        gate: InputGate,
        input: GateSender,
    }

    impl Gate {
        fn with_channels(channels: u32) -> Gate {
            let (input, receiver) = gate_queue::queue();
            Gate { gate: InputGate::new(receiver, channels, Arc::new(GateCredits::new(channels))), input }
        }

        fn planted(channels: u32, plants: Plants) -> Gate {
            let Gate { gate, input } = Gate::with_channels(channels);
            Gate { gate: gate.planted(plants), input }
        }

        /// Delivers `elements` as one buffer on `channel`; returns what the task gets from the
        /// gate before it would have to wait for more input.
        fn deliver(&mut self, channel: u32, elements: Vec<StreamElement>) -> Vec<GateEvent> {
            let buffer = NetworkBuffer { elements, bytes: 0 };
            let records = record_count(&buffer.elements);
            self.input.send(GateInput { channel, buffer, records, kind: BufferKind::Exclusive }).expect("the gate is open");
            std::iter::from_fn(|| self.gate.next().now_or_never()).collect()
        }
    }

    fn record(k: u64) -> StreamElement {
        StreamElement::Record(Record::Click(ClickEvent::nth(k)))
    }

    /// Record `k` as the task gets it from `channel`.
    fn got(channel: u32, k: u64) -> GateEvent {
        GateEvent::Record(channel, Record::Click(ClickEvent::nth(k)))
    }

    fn barrier(checkpoint_id: u64) -> CheckpointBarrier {
        CheckpointBarrier { checkpoint_id, timestamp_ms: 1000 * checkpoint_id as i64, kind: Default::default() }
    }

    fn status(status: WatermarkStatus) -> StreamElement {
        StreamElement::WatermarkStatus(status)
    }

    /// The typed fast paths take exactly the records `next_buffered` would hand over next, and
    /// leave anything else (another kind of record, a watermark) to it.
    #[test]
    fn the_typed_fast_paths_take_what_next_buffered_would_and_nothing_else() {
        let mut gate = Gate::with_channels(1);
        let sourced = |k: u64| StreamElement::Record(Record::Sourced { partition: 3, event: ClickEvent::nth(k) });
        let elements = vec![record(0), record(1), sourced(2), StreamElement::Watermark(5), record(3)];
        let buffer = NetworkBuffer { elements, bytes: 0 };
        gate.input.send(GateInput { channel: 0, buffer, records: 4, kind: BufferKind::Exclusive }).unwrap();
        let gate = &mut gate.gate;
        assert_eq!(gate.next().now_or_never(), Some(got(0, 0)));
        assert_eq!(gate.next_buffered_sourced(), None, "a click is not sourced");
        assert_eq!(gate.next_buffered_click(), Some(ClickEvent::nth(1)));
        assert_eq!(gate.next_buffered_click(), None, "a sourced record is not a click");
        assert_eq!(gate.next_buffered_sourced(), Some((3, ClickEvent::nth(2))));
        assert_eq!(gate.next_buffered_click(), None, "a watermark is left to next_buffered");
        assert_eq!(gate.next_buffered(), Some(GateEvent::Watermark(5)));
        assert_eq!(gate.next_buffered_click(), Some(ClickEvent::nth(3)));
        assert_eq!(gate.next_buffered_click(), None);
        assert_eq!(gate.next_buffered(), None);
    }

    #[test]
    fn records_behind_a_blocked_channel_wait_until_the_barrier_is_aligned() {
        let mut gate = Gate::with_channels(3);
        let b1 = StreamElement::Barrier(barrier(1));
        // Channel 0 delivers barrier 1 (docs/model/checkpoints.md#overview): what follows it there
        // is held back.
        assert_eq!(gate.deliver(0, vec![record(0), b1.clone(), record(1)]), [got(0, 0)]);
        assert_eq!(gate.deliver(0, vec![record(2)]), []);
        // Channel 1 has not delivered it: its records pass.
        assert_eq!(gate.deliver(1, vec![record(3)]), [got(1, 3)]);
        assert_eq!(gate.deliver(1, vec![b1.clone(), record(4)]), []);
        // The last channel's barrier aligns it: the task snapshots, then gets the held records,
        // each channel's in order.
        assert_eq!(
            gate.deliver(2, vec![record(5), b1, record(6)]),
            [got(2, 5), GateEvent::Barrier(barrier(1)), got(0, 1), got(0, 2), got(1, 4), got(2, 6)]
        );
        // No channel is blocked any more.
        assert_eq!(gate.deliver(0, vec![record(7)]), [got(0, 7)]);
    }

    #[test]
    fn the_barrier_goes_on_once_after_the_last_channels_and_held_elements_keep_their_order() {
        let mut gate = Gate::with_channels(2);
        let b = |n| StreamElement::Barrier(barrier(n));
        assert_eq!(gate.deliver(1, vec![b(1), StreamElement::Watermark(10), b(2)]), []);
        // Channel 0 aligns checkpoint 1 and the task snapshots before it gets channel 1's held
        // watermark; barrier 2, held behind it, blocks channel 1 again.
        assert_eq!(
            gate.deliver(0, vec![StreamElement::Watermark(20), b(1)]),
            [GateEvent::Barrier(barrier(1)), GateEvent::Watermark(10)]
        );
        assert_eq!(gate.deliver(1, vec![record(0)]), []);
        // Checkpoint 2 goes on once, when channel 0's barrier 2 arrives.
        assert_eq!(
            gate.deliver(0, vec![record(1), b(2), record(2)]),
            [got(0, 1), GateEvent::Barrier(barrier(2)), got(1, 0), got(0, 2)]
        );
        // A barrier of a checkpoint already aligned goes nowhere and blocks nothing.
        assert_eq!(gate.deliver(1, vec![b(1), b(2), record(3)]), [got(1, 3)]);
    }

    #[test]
    fn a_newer_barrier_gives_up_the_alignment_under_way() {
        let mut gate = Gate::with_channels(2);
        let b = |n| StreamElement::Barrier(barrier(n));
        assert_eq!(gate.deliver(0, vec![b(1), record(0)]), []);
        // Checkpoint 2 overtakes 1 (1 was declined upstream): channel 0 is released, channel 1
        // blocked for checkpoint 2, and checkpoint 1 never goes on.
        assert_eq!(gate.deliver(1, vec![b(2), record(1)]), [got(0, 0)]);
        assert_eq!(gate.deliver(0, vec![b(2)]), [GateEvent::Barrier(barrier(2)), got(1, 1)]);
    }

    /// Planted bug `barriers-not-aligned`: the first channel's barrier goes on at once, nothing
    /// is held, and the later channel's records before its barrier come after the snapshot.
    #[test]
    fn with_barriers_not_aligned_the_first_barrier_goes_on_and_nothing_waits() {
        let mut gate = Gate::planted(2, Plants::of([PlantedBug::BarriersNotAligned]));
        let b1 = StreamElement::Barrier(barrier(1));
        assert_eq!(gate.deliver(0, vec![b1.clone(), record(0)]), [GateEvent::Barrier(barrier(1)), got(0, 0)]);
        assert_eq!(gate.deliver(1, vec![record(1), b1, record(2)]), [got(1, 1), got(1, 2)]);
    }

    /// Planted bug `watermark-max-of-inputs`: the fastest channel sets the watermark.
    #[test]
    fn with_the_max_of_inputs_the_fastest_channel_sets_the_watermark() {
        let mut gate = Gate::planted(2, Plants::of([PlantedBug::WatermarkMaxOfInputs]));
        let wm = StreamElement::Watermark;
        assert_eq!(gate.deliver(0, vec![wm(100)]), [GateEvent::Watermark(100)], "channel 1 has none yet");
        assert_eq!(gate.deliver(1, vec![wm(50)]), []);
        assert_eq!(gate.deliver(1, vec![wm(300)]), [GateEvent::Watermark(300)]);
    }

    #[test]
    fn the_watermark_is_the_min_over_channels_and_never_goes_back() {
        let mut gate = Gate::with_channels(2);
        let wm = StreamElement::Watermark;
        // Channel 1 has no watermark yet: it holds the min at the start of time.
        assert_eq!(gate.deliver(0, vec![wm(100)]), []);
        assert_eq!(gate.deliver(1, vec![wm(50)]), [GateEvent::Watermark(50)]);
        assert_eq!(gate.deliver(1, vec![wm(200)]), [GateEvent::Watermark(100)]);
        // A channel's watermark never goes back, nor does the gate's.
        assert_eq!(gate.deliver(0, vec![wm(90)]), []);
        assert_eq!(gate.deliver(1, vec![wm(150)]), []);
        assert_eq!(gate.gate.watermark(), 100);
        assert_eq!(gate.deliver(0, vec![wm(180)]), [GateEvent::Watermark(180)]);
    }

    #[test]
    fn an_idle_channel_leaves_the_min_and_holds_it_back_again_once_active() {
        let mut gate = Gate::with_channels(2);
        let wm = StreamElement::Watermark;
        assert_eq!(gate.deliver(0, vec![wm(100)]), []);
        assert_eq!(gate.deliver(1, vec![wm(300)]), [GateEvent::Watermark(100)]);
        // Channel 0 goes idle: it leaves the min, which is over channel 1 alone
        // (docs/model/job.md#event-time-and-watermarks).
        assert_eq!(gate.deliver(0, vec![status(WatermarkStatus::Idle)]), [GateEvent::Watermark(300)]);
        assert_eq!(gate.deliver(1, vec![wm(400)]), [GateEvent::Watermark(400)]);
        // Back, behind the gate: it does not pull the watermark back, and stays out of the min
        // until it catches up (Flink's aligned channels).
        assert_eq!(gate.deliver(0, vec![status(WatermarkStatus::Active)]), []);
        assert_eq!(gate.deliver(1, vec![wm(500)]), [GateEvent::Watermark(500)]);
        assert_eq!(gate.deliver(0, vec![wm(450)]), []);
        // Caught up: it holds the min back again.
        assert_eq!(gate.deliver(0, vec![wm(520)]), []);
        assert_eq!(gate.deliver(1, vec![wm(600)]), [GateEvent::Watermark(520)]);
        assert_eq!(gate.deliver(0, vec![wm(700)]), [GateEvent::Watermark(600)]);
    }

    #[test]
    fn the_gate_is_idle_while_every_channel_is() {
        let mut gate = Gate::with_channels(3);
        let idle = || status(WatermarkStatus::Idle);
        assert_eq!(gate.deliver(0, vec![idle()]), []);
        assert_eq!(gate.deliver(1, vec![idle()]), []);
        assert_eq!(gate.deliver(2, vec![idle()]), [GateEvent::Status(WatermarkStatus::Idle)]);
        assert_eq!(
            gate.deliver(1, vec![status(WatermarkStatus::Active)]),
            [GateEvent::Status(WatermarkStatus::Active)]
        );
        assert_eq!(gate.deliver(1, vec![idle()]), [GateEvent::Status(WatermarkStatus::Idle)]);
    }
}
