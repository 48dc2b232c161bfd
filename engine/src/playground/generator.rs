//! The `clickevent-generator` node (docs/model/job.md#the-generator): writes the playground's
//! ClickEvents to `input`.
//!
//! Event `k` is [`ClickEvent::nth(k)`](ClickEvent::nth) (page `PAGES[k % 6]`, event time
//! `15 * (k / 6)` ms after `start_event_time`) and is due at `start + k * pace` of simulated time; with the default pace of
//! 2.5 ms event time tracks the time since the generator started. Each event goes to the Kafka
//! producer (unkeyed, sticky partitioner) as if sent at its due instant, with the event's own
//! timestamp as the record timestamp. The producer's sender takes the events due whenever it
//! looks (a [`RecordFeed`]), so the node does not wake for every few events.
//!
//! The node's main is re-run from scratch on every restart. What it does then is
//! [`OnRestart`]: by default (docs/model/job.md#the-generator) it resumes at the event due
//! now, so the events due while it was down are never produced; `FromZero` is the real, stateless
//! generator, which begins again at event 0 with event time 0.

use std::net::SocketAddr;
use std::time::Duration;

use madsim::time::Instant;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::kafka::{Producer, ProducerConfig, RecordFeed};
use crate::protocol::kafka::BatchBuilder;
use crate::protocol::click_event::{ClickEvent, ClickEventWriter};
use crate::rpc::{Network, Rpc};
use crate::trace::NodeTrace;

/// The playground's pace: one event every 2.5 ms of simulated time, 400 events/s
/// (docs/model/job.md#the-generator).
pub const DEFAULT_PACE: Duration = Duration::from_micros(2500);

/// How the generator node is set up.
#[derive(Clone, Debug)]
pub struct GeneratorConfig {
    /// This node's own address, to bind.
    pub rpc_addr: SocketAddr,
    /// The Kafka broker (`kafka:9092`).
    pub broker: SocketAddr,
    /// The topic written (`input`).
    pub topic: SmolStr,
    /// Event `k` is due at `start + k * pace` ([`DEFAULT_PACE`]: 2.5 ms). Must be positive.
    pub pace: Duration,
    /// When the generator first started; the simulator keeps it across restarts.
    pub start: Instant,
    /// What a restarted generator does.
    pub on_restart: OnRestart,
    /// The event time of event 0 (0 by default, 1970-01-01T00:00:00Z): every event's timestamp
    /// is shifted by it, so a run can start where the action is (e.g. just before 12:00).
    pub start_event_time: Duration,
    /// Timestamp jitter (docs/model/job.md#timestamp-jitter): event `k`'s timestamp is moved
    /// back by up to this much, by a hash of (`jitter_seed`, `k`). Zero (the default) is off.
    pub jitter: Duration,
    /// The seed of the jitter's draws.
    pub jitter_seed: u64,
    /// The simulated network the node is bound on (the simulator injects its faults there).
    pub network: Network,
    /// The node's trace.
    pub trace: NodeTrace,
}

/// The most timestamp jitter a generator takes: the playground job's out-of-orderness bound,
/// within which a late event is impossible.
pub const JITTER_MAX: Duration = Duration::from_millis(200);

/// How far event `k`'s timestamp is moved back under `jitter`, in whole milliseconds: a pure
/// function of the seed and `k`, so a restarted generator jitters an event as it did before.
pub fn jitter_ms(jitter: Duration, seed: u64, k: u64) -> i64 {
    jitter_within(most_jitter_ms(jitter), seed, k)
}

/// The most milliseconds [`jitter_ms`] moves an event back by under `jitter`.
fn most_jitter_ms(jitter: Duration) -> u64 {
    u64::try_from(jitter.min(JITTER_MAX).as_millis()).unwrap_or(0)
}

/// [`jitter_ms`] for its bound in milliseconds, [`most_jitter_ms`], worked out beforehand.
fn jitter_within(most: u64, seed: u64, k: u64) -> i64 {
    if most == 0 {
        return 0;
    }
    let draw = xxhash_rust::xxh3::xxh3_64_with_seed(&k.to_le_bytes(), seed);
    (draw % (most + 1)) as i64
}

impl GeneratorConfig {
    /// The playground's generator: topic `input`, 2.5 ms pace, resume on restart.
    pub fn new(
        rpc_addr: SocketAddr,
        broker: SocketAddr,
        start: Instant,
        network: Network,
        trace: NodeTrace,
    ) -> Self {
        GeneratorConfig {
            rpc_addr,
            broker,
            topic: SmolStr::new_static("input"),
            pace: DEFAULT_PACE,
            start,
            on_restart: OnRestart::default(),
            start_event_time: Duration::ZERO,
            jitter: Duration::ZERO,
            jitter_seed: 0,
            network,
            trace,
        }
    }
}

/// What a restarted generator does (docs/model/job.md#the-generator).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnRestart {
    /// Resume at the event due now: events due while the node was down are never produced (the
    /// oracle counts them as missing at the source). flinksim's default.
    #[default]
    Resume,
    /// The real, stateless generator: begin again at event 0 (event time 0), its due times
    /// counted from the restart. Every event is then late for the running job.
    FromZero,
}

/// Where one run of the node's main begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beginning {
    /// The first start: event 0, due at `start`.
    First,
    /// A restart that resumes at event `at` (due times still counted from `start`).
    Resume {
        /// The first event produced: the one whose due slot holds now.
        at: u64,
    },
    /// A restart that begins again at event 0, due times counted from the restart.
    FromZero,
}

impl Beginning {
    /// Where a run of the node's main that begins `since_start` after the generator's first start
    /// starts. A run within the first event's slot (`since_start < pace`) is the first start; any
    /// later run is a restart. Resuming picks `floor(since_start / pace)`: the event due now, whose
    /// due time is at most `pace` ago.
    pub fn at(since_start: Duration, pace: Duration, on_restart: OnRestart) -> Beginning {
        let slot = since_start.as_nanos() / pace.as_nanos().max(1);
        match (slot, on_restart) {
            (0, _) => Beginning::First,
            (slot, OnRestart::Resume) => {
                Beginning::Resume { at: u64::try_from(slot).unwrap_or(u64::MAX) }
            }
            (_, OnRestart::FromZero) => Beginning::FromZero,
        }
    }
}

/// The generator's events from event `next` on, each due at `origin + k * pace`.
struct ClickEvents {
    topic: SmolStr,
    next: u64,
    origin: Instant,
    pace: Duration,
    /// Added to every event's timestamp: the generator's `start_event_time`.
    event_time_origin_ms: i64,
    /// The generator's jitter as [`most_jitter_ms`], worked out once.
    jitter_most_ms: u64,
    jitter_seed: u64,
    records: ClickEventWriter,
    /// When event `next` is due: asked several times per look, so worked out once.
    next_due: Option<Instant>,
    /// `next * pace` in nanoseconds, `None` once it outgrows a `u64` (as `due_of` gives up).
    next_since: Option<u64>,
    /// `pace` in nanoseconds, if it fits a `u64`.
    pace_nanos: Option<u64>,
}

impl ClickEvents {
    /// Events from `next` on, each due at `origin + k * pace`.
    fn new(config: &GeneratorConfig, next: u64, origin: Instant) -> ClickEvents {
        let mut events = ClickEvents {
            topic: config.topic.clone(),
            next,
            origin,
            pace: config.pace,
            event_time_origin_ms: i64::try_from(config.start_event_time.as_millis())
                .unwrap_or(i64::MAX),
            jitter_most_ms: most_jitter_ms(config.jitter),
            jitter_seed: config.jitter_seed,
            records: ClickEventWriter::default(),
            next_due: None,
            next_since: None,
            pace_nanos: u64::try_from(config.pace.as_nanos()).ok(),
        };
        events.next_due = events.due_of(next);
        events.next_since = events.since(next);
        events
    }

    /// `k * pace` in nanoseconds, if it fits a `u64`.
    fn since(&self, k: u64) -> Option<u64> {
        u64::try_from(self.pace.as_nanos().checked_mul(u128::from(k))?).ok()
    }

    /// When event `k` is due: `origin + k * pace`.
    fn due_of(&self, k: u64) -> Option<Instant> {
        self.origin.checked_add(Duration::from_nanos(self.since(k)?))
    }

    /// Event `k`'s timestamp: its own, shifted by the start's event time and moved back by its
    /// jitter. Backward only, by at most `JITTER_MAX`: no event falls further behind its
    /// partition's latest timestamp than the job's out-of-orderness bound, so none can be late.
    fn timestamp_ms(&self, k: u64) -> i64 {
        let timestamp_ms = ClickEvent::nth_timestamp_ms(k).saturating_add(self.event_time_origin_ms);
        (timestamp_ms - jitter_within(self.jitter_most_ms, self.jitter_seed, k)).max(0)
    }
}

impl RecordFeed for ClickEvents {
    fn topic(&self) -> &str {
        &self.topic
    }

    fn due(&self, ahead: u64) -> Option<Instant> {
        if ahead == 0 {
            return self.next_due;
        }
        // From the next event's due instant, as `take_into` does: the instant `due_of` works out
        // for event `next + ahead`, and `None` exactly when it is (a callgrind profile: working
        // it out afresh cost 60 instructions a look).
        self.next.checked_add(ahead)?;
        let extra = self.pace_nanos?.checked_mul(ahead)?;
        self.next_since?.checked_add(extra)?;
        self.next_due?.checked_add(Duration::from_nanos(extra))
    }

    fn take_into(&mut self, now: Instant, batch: &mut BatchBuilder, max_bytes: usize) -> u64 {
        // Event `k` is due by `now` exactly when `k * pace <= now - origin` (instants add
        // exactly): the look counts the events due in nanoseconds, once, and works their next
        // due instant out once at the end (a callgrind profile: stepping an instant per event
        // cost 30 instructions an event, stepping its nanoseconds 10).
        let (Some(_), Some(first)) = (self.next_due, self.next_since) else {
            return 0;
        };
        let Some(now_since) = now.checked_duration_since(self.origin) else {
            return 0;
        };
        let now_since = u64::try_from(now_since.as_nanos()).unwrap_or(u64::MAX);
        let Some(after_first) = now_since.checked_sub(first) else {
            return 0;
        };
        let due = match self.pace_nanos {
            Some(0) => u64::MAX,
            Some(pace) => after_first / pace + 1,
            // The next event's nanoseconds would outgrow a u64: it is never due.
            None => 1,
        };
        let mut taken = 0;
        while taken < due {
            let k = self.next;
            let timestamp_ms = self.timestamp_ms(k);
            let value = self.records.write(timestamp_ms, ClickEvent::nth_page(k));
            if !batch.append_if_room(timestamp_ms, value, max_bytes) {
                break;
            }
            self.next += 1;
            taken += 1;
        }
        if taken > 0 {
            let since = self.pace_nanos.and_then(|pace| first.checked_add(pace.checked_mul(taken)?));
            self.next_since = since;
            self.next_due = since.and_then(|s| self.origin.checked_add(Duration::from_nanos(s)));
        }
        taken
    }

    fn max_value_bytes(&self) -> usize {
        ClickEvent::MAX_JSON_BYTES
    }
}

/// The node's main; re-run from scratch on every restart of the node. Never returns (a kill
/// ends it).
pub async fn run(config: GeneratorConfig) {
    let rpc = Rpc::bind(config.rpc_addr, config.network.clone());
    let clock = crate::timer::Clock::current();
    let now = clock.now();
    let beginning =
        Beginning::at(now.saturating_duration_since(config.start), config.pace, config.on_restart);
    let (next, origin) = match beginning {
        Beginning::First => {
            config.trace.event("generator started at event 0");
            (0, config.start)
        }
        Beginning::Resume { at } => {
            config.trace.event(format!("generator restarted: resuming at event {at}"));
            (at, config.start)
        }
        Beginning::FromZero => {
            config.trace.event("generator restarted: starting again from event 0");
            (0, now)
        }
    };

    let events = ClickEvents::new(&config, next, origin);
    let producer = Producer::with_feed(rpc, ProducerConfig::new(config.broker), Box::new(events));
    // The producer's sender does the rest; the node lives until it is killed.
    std::future::pending::<()>().await;
    drop(producer);
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACE: Duration = DEFAULT_PACE;

    #[test]
    fn each_event_is_due_where_its_index_puts_it_when_stepped_from_the_last() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let trace = crate::trace::Trace::new().for_node("generator");
            let addr: SocketAddr = "10.0.0.9:1".parse().unwrap();
            let start = Instant::now();
            let odd = Duration::new(0, 333_333_337);
            // A pace of 2^63 ns: event 2's due time outgrows the nanoseconds a u64 holds.
            let huge = Duration::from_nanos(1 << 63);
            for (pace, first) in [(PACE, 0), (PACE, 12_345), (odd, 7), (huge, 0)] {
                let mut config = GeneratorConfig::new(addr, addr, start, Network::default(), trace.clone());
                config.pace = pace;
                let mut events = ClickEvents::new(&config, first, start);
                for k in first..first + 3_000 {
                    assert_eq!(events.due(0), events.due_of(k), "pace {pace:?}, event {k}");
                    for ahead in [1, 2, 7, 290, u64::MAX / 2] {
                        let direct = k.checked_add(ahead).and_then(|at| events.due_of(at));
                        assert_eq!(events.due(ahead), direct, "pace {pace:?}, event {k} + {ahead}");
                    }
                    let Some(due) = events.due(0) else {
                        break; // never due, so never taken
                    };
                    let mut batch = BatchBuilder::new();
                    assert_eq!(events.take_into(due, &mut batch, usize::MAX), 1, "event {k}");
                    assert_eq!(batch.record_count(), 1);
                }
            }
        });
    }

    #[test]
    fn a_look_takes_every_event_due_that_fits_and_leaves_the_rest_due() {
        let rt = madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default());
        rt.block_on(async {
            let trace = crate::trace::Trace::new().for_node("generator");
            let addr: SocketAddr = "10.0.0.9:1".parse().unwrap();
            let start = Instant::now();
            let config = GeneratorConfig::new(addr, addr, start, Network::default(), trace);
            let mut events = ClickEvents::new(&config, 0, start);
            let mut batch = BatchBuilder::new();
            assert_eq!(events.take_into(start + PACE * 9 + PACE / 2, &mut batch, usize::MAX), 10);
            assert_eq!((events.next, events.due(0)), (10, events.due_of(10)));
            // A first record always goes in; the next does not fit.
            let mut small = BatchBuilder::new();
            let tight = small.size_bytes() + 1;
            assert_eq!(events.take_into(start + PACE * 30, &mut small, tight), 1);
            assert_eq!((events.next, events.due(0)), (11, events.due_of(11)));
            assert_eq!(events.take_into(start + PACE * 30, &mut batch, usize::MAX), 20);
            assert_eq!(batch.record_count(), 30);
            assert_eq!(events.take_into(start + PACE * 30, &mut batch, usize::MAX), 0);
            assert_eq!(events.due(0), events.due_of(31));
        });
    }

    #[test]
    fn the_first_slot_is_a_first_start_and_later_runs_are_restarts() {
        for mode in [OnRestart::Resume, OnRestart::FromZero] {
            assert_eq!(Beginning::at(Duration::ZERO, PACE, mode), Beginning::First);
            assert_eq!(Beginning::at(Duration::from_micros(2499), PACE, mode), Beginning::First);
        }
        assert_eq!(Beginning::at(PACE, PACE, OnRestart::Resume), Beginning::Resume { at: 1 });
        assert_eq!(
            Beginning::at(Duration::from_millis(30_001), PACE, OnRestart::Resume),
            Beginning::Resume { at: 12_000 }
        );
        assert_eq!(
            Beginning::at(Duration::from_secs(30), PACE, OnRestart::FromZero),
            Beginning::FromZero
        );
    }

    mod simulated {
        use std::collections::BTreeMap;
        use std::net::SocketAddr;
        use std::time::Duration;

        use madsim::runtime::Handle;
        use madsim::task::NodeId;
        use madsim::time::{Instant, sleep};

        use super::super::*;
        use crate::kafka::{BrokerConfig, Consumer, ConsumerConfig, TopicPartition, TopicSpec};
        use crate::protocol::click_event::PAGES;
        use crate::trace::Trace;

        const BROKER: &str = "10.0.0.2:9092";
        const GENERATOR: &str = "10.0.0.3:7000";
        const READER: &str = "10.0.0.10:9000";
        /// What the producer may still hold when the generator is killed: one wake-up, one
        /// linger and a produce round trip (≤ 2 × 10 ms), rounded up: 40 ms of events.
        const TAIL: u64 = 16;

        fn addr(s: &str) -> SocketAddr {
            s.parse().unwrap()
        }

        fn simulate<F: Future>(future: F) -> F::Output {
            madsim::runtime::Runtime::with_seed_and_config(7, madsim::Config::default())
                .block_on(future)
        }

        /// Starts `kafka` (topic `input`, 2 partitions) and the generator; returns its node id.
        fn start(trace: &Trace, network: &Network, on_restart: OnRestart) -> NodeId {
            let broker = BrokerConfig::new(
                addr(BROKER),
                vec![TopicSpec::new("input", 2)],
                network.clone(),
                trace.for_node("kafka"),
            );
            let h = Handle::current();
            h.create_node()
                .name("kafka")
                .ip(addr(BROKER).ip())
                .init(move || crate::kafka::broker::run(broker.clone()))
                .build();
            let mut config = GeneratorConfig::new(
                addr(GENERATOR),
                addr(BROKER),
                Instant::now(),
                network.clone(),
                trace.for_node("clickevent-generator"),
            );
            config.on_restart = on_restart;
            h.create_node()
                .name("clickevent-generator")
                .ip(addr(GENERATOR).ip())
                .init(move || run(config.clone()))
                .build()
                .id()
        }

        /// One record read back from `input`: its partition, the Kafka timestamp and the event.
        type Read = (u32, i64, ClickEvent);

        /// Reads both partitions of `input` from offset 0 to their ends, from a fresh node.
        async fn read_input(network: &Network) -> Vec<Read> {
            let network = network.clone();
            let node = Handle::current().create_node().name("reader").ip(addr(READER).ip()).build();
            let task = node.spawn(async {
                let rpc = Rpc::bind(addr(READER), network);
                let mut consumer = Consumer::new(rpc, ConsumerConfig::new(addr(BROKER)));
                let tps = [TopicPartition::new("input", 0), TopicPartition::new("input", 1)];
                let ends = consumer.end_offsets(&tps).await.unwrap();
                consumer.assign(tps.iter().map(|tp| (tp.clone(), 0)).collect());
                let mut read = Vec::new();
                while tps.iter().zip(&ends).any(|(tp, end)| consumer.position(tp).unwrap() < *end) {
                    for record in consumer.poll().await.unwrap() {
                        let event = ClickEvent::parse_json(&record.value).unwrap();
                        read.push((record.partition.partition, record.timestamp_ms, event));
                    }
                }
                read
            });
            task.await.unwrap()
        }

        /// The event number of a generated event (the inverse of [`ClickEvent::nth`]).
        fn k_of(event: &ClickEvent) -> u64 {
            assert_eq!(event.timestamp_ms % 15, 0, "{event:?}");
            let page = PAGES.iter().position(|p| *p == event.page).unwrap() as u64;
            event.timestamp_ms as u64 / 15 * 6 + page
        }

        /// How many times each event k was read.
        fn copies(read: &[Read]) -> BTreeMap<u64, u32> {
            let mut copies = BTreeMap::new();
            for (_, kafka_ts, event) in read {
                assert_eq!(*kafka_ts, event.timestamp_ms, "the record timestamp is the event's");
                *copies.entry(k_of(event)).or_insert(0) += 1;
            }
            copies
        }

        /// Within each partition, each page's events come in strictly increasing event time.
        fn assert_in_order_per_partition_and_page(read: &[Read]) {
            let mut last: BTreeMap<(u32, &str), i64> = BTreeMap::new();
            for (partition, _, event) in read {
                if let Some(previous) =
                    last.insert((*partition, event.page.as_str()), event.timestamp_ms)
                {
                    assert!(
                        previous < event.timestamp_ms,
                        "{partition} {event:?} after {previous}"
                    );
                }
            }
        }

        /// The length of the run of events k0, k0+1, ... each present exactly once.
        fn run_from(copies: &BTreeMap<u64, u32>, k0: u64) -> u64 {
            (k0..).take_while(|k| copies.get(k) == Some(&1)).count() as u64
        }

        fn generator_trace(trace: &Trace) -> Vec<String> {
            let events = trace.events().into_iter();
            events.filter(|e| e.node == "clickevent-generator").map(|e| e.message()).collect()
        }

        #[test]
        fn one_minute_writes_24000_events_each_once_over_both_partitions() {
            let (read, trace) = simulate(async {
                let trace = Trace::new();
                let network = Network::default();
                let generator = start(&trace, &network, OnRestart::Resume);
                sleep(Duration::from_secs(60)).await;
                Handle::current().kill(generator);
                (read_input(&network).await, trace)
            });
            let copies = copies(&read);
            let n = run_from(&copies, 0);
            assert_eq!(n as usize, read.len(), "events 0..{n} once each, nothing else");
            assert!((24_000 - TAIL..=24_000).contains(&n), "{n} events in 60 s");
            assert_in_order_per_partition_and_page(&read);
            let per_partition = |p| read.iter().filter(|(partition, ..)| *partition == p).count();
            assert!(per_partition(0) > 6_000 && per_partition(1) > 6_000, "sticky batches spread");
            assert_eq!(generator_trace(&trace), ["generator started at event 0"]);
        }

        #[test]
        fn a_restarted_generator_resumes_at_the_event_due_now() {
            let (read, trace) = simulate(async {
                let trace = Trace::new();
                let network = Network::default();
                let generator = start(&trace, &network, OnRestart::Resume);
                let h = Handle::current();
                sleep(Duration::from_secs(20)).await;
                h.kill(generator);
                sleep(Duration::from_secs(10)).await;
                h.restart(generator);
                sleep(Duration::from_secs(10)).await;
                h.kill(generator);
                (read_input(&network).await, trace)
            });
            let copies = copies(&read);
            // Up to 20 s: events 0..8000 (less the tail lost with the kill); then from 30 s on,
            // events 12 000..16 000. The 4000 due while the node was down never exist.
            let first = run_from(&copies, 0);
            let second = run_from(&copies, 12_000);
            assert!((8_000 - TAIL..=8_000).contains(&first), "{first}");
            assert!((4_000 - TAIL..=4_000).contains(&second), "{second}");
            assert_eq!((first + second) as usize, read.len(), "nothing else: {copies:?}");
            assert_eq!(
                ClickEvent::nth(12_000).timestamp_ms,
                30_000,
                "event time = time since start"
            );
            assert_in_order_per_partition_and_page(&read);
            assert_eq!(
                generator_trace(&trace),
                ["generator started at event 0", "generator restarted: resuming at event 12000"]
            );
        }

        #[test]
        fn a_generator_restarted_from_zero_repeats_event_time_from_zero() {
            let (read, trace) = simulate(async {
                let trace = Trace::new();
                let network = Network::default();
                let generator = start(&trace, &network, OnRestart::FromZero);
                let h = Handle::current();
                sleep(Duration::from_secs(20)).await;
                h.kill(generator);
                sleep(Duration::from_secs(10)).await;
                h.restart(generator);
                sleep(Duration::from_secs(10)).await;
                h.kill(generator);
                (read_input(&network).await, trace)
            });
            let copies = copies(&read);
            // Before the kill events 0..8000, after the restart events 0..4000 again.
            let twice = (0..).take_while(|k| copies.get(k) == Some(&2)).count() as u64;
            let once = (twice..).take_while(|k| copies.get(k) == Some(&1)).count() as u64;
            assert!((4_000 - TAIL..=4_000).contains(&twice), "{twice}");
            assert!((8_000 - TAIL..=8_000).contains(&(twice + once)), "{}", twice + once);
            assert_eq!((2 * twice + once) as usize, read.len());
            assert_eq!(
                generator_trace(&trace),
                [
                    "generator started at event 0",
                    "generator restarted: starting again from event 0"
                ]
            );
        }
    }
}
