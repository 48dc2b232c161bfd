//! The benchmark floor: the least work any implementation of the playground must do for a given
//! number of clicks, as a plain loop with no simulation around it. `cargo xtask bench` compares
//! the simulator's wall time with this loop's for the same number of events.
//!
//! Each of the generator's events is written to the playground's JSON, parsed back, and counted
//! per (15 s window, page), exactly as Click Event Count would count it.
//!
//! There are two floors. [`floor`] uses the engine's own codec and date caches, as the simulator
//! does, so the simulator is compared with the same per-record code. [`floor_serde_json`] is the
//! same loop written with serde_json and the plain date functions: the "plain loop", so
//! that its 80 ms figure and ≤ 4× target can be checked too.
//!
//! A third floor is per message rather than per event: [`floor_madsim`], what madsim itself
//! charges for each message between simulated nodes (a timer at its arrival and a poll of the
//! task it wakes), with no engine around it. The benchmark sets it against the speed case's
//! messages, to show how much of a run's wall time is the simulator's before any engine code.

use std::collections::BTreeMap;

use flinksim_engine::protocol::click_event::{
    ClickEvent, DateReader, DateWriter, parse_date, window_start, write_date,
};
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

/// Serializes the generator's first `events` ClickEvents ([`ClickEvent::nth`]) to JSON one by one
/// in a reused buffer, parses each back, and counts them per (window start in ms, page).
///
/// Every complete window holds 1000 events of each page, so `floor(n)` for `n` a multiple of
/// 6000 gives `n / 1000` entries, each 1000.
pub fn floor(events: u64) -> BTreeMap<(i64, SmolStr), u64> {
    let mut counts = BTreeMap::new();
    let mut json = Vec::with_capacity(64);
    // The simulator's writer and reader format and parse each minute's date once: so does this.
    let (mut writer, mut reader) = (DateWriter::default(), DateReader::default());
    for k in 0..events {
        json.clear();
        ClickEvent::nth(k).write_json_with(&mut writer, &mut json);
        let event = ClickEvent::parse_json_with(&mut reader, &json).expect("the writer's JSON parses back");
        *counts.entry((window_start(event.timestamp_ms), event.page)).or_insert(0) += 1;
    }
    counts
}

/// A click as serde_json writes it: the playground's JSON, fields in its order.
#[derive(Serialize)]
struct ClickOut<'a> {
    timestamp: &'a str,
    page: &'a str,
}

/// A click as serde_json reads it, borrowing both strings from the JSON.
#[derive(Deserialize)]
struct ClickIn<'a> {
    #[serde(borrow)]
    timestamp: &'a str,
    #[serde(borrow)]
    page: &'a str,
}

/// Writes `event` as the playground's JSON with serde_json to `json`, the date in `date`.
fn write_serde_json(event: &ClickEvent, date: &mut Vec<u8>, json: &mut Vec<u8>) {
    date.clear();
    write_date(event.timestamp_ms, date);
    let timestamp = std::str::from_utf8(date).expect("a formatted date is ASCII");
    serde_json::to_writer(&mut *json, &ClickOut { timestamp, page: &event.page }).expect("writing to a Vec cannot fail");
}

/// [`floor`] written with serde_json and the plain, uncached date functions: the plain loop.
pub fn floor_serde_json(events: u64) -> BTreeMap<(i64, SmolStr), u64> {
    let mut counts = BTreeMap::new();
    let mut json = Vec::with_capacity(64);
    let mut date = Vec::with_capacity(32);
    for k in 0..events {
        json.clear();
        write_serde_json(&ClickEvent::nth(k), &mut date, &mut json);
        let event: ClickIn = serde_json::from_slice(&json).expect("serde_json's JSON parses back");
        let ms = parse_date(event.timestamp.as_bytes()).expect("the written date parses back");
        *counts.entry((window_start(ms), SmolStr::new(event.page))).or_insert(0) += 1;
    }
    counts
}

/// The nodes [`floor_madsim`] spreads its messages over: a run's JobManager, TaskManager, Kafka
/// broker, storage and client, and a sixth for the generator's producer.
const MADSIM_FLOOR_NODES: u64 = 6;

/// madsim's least cost for `messages` messages: on `MADSIM_FLOOR_NODES` simulated nodes, one
/// task each awaits one message after another, each message only a latency drawn from the
/// runtime's generator as the network draws it (1–10 ms), a madsim timer at its arrival and the
/// poll of the task that timer wakes. Every message flinksim's network carries costs at least
/// this: one timer at its arrival and one task poll (docs/model/network.md). Runs a fresh
/// runtime seeded with 1 on a thread of its own, and returns the messages delivered.
pub fn floor_madsim(messages: u64) -> u64 {
    std::thread::Builder::new()
        .name("floor-madsim".into())
        .spawn(move || {
            let runtime = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
            runtime.block_on(async move {
                let handle = madsim::runtime::Handle::current();
                let mut tasks = Vec::new();
                for node in 0..MADSIM_FLOOR_NODES {
                    // The messages split as evenly as they go: the first nodes take one more.
                    let share = messages / MADSIM_FLOOR_NODES + u64::from(node < messages % MADSIM_FLOOR_NODES);
                    let ip = std::net::IpAddr::from([10, 0, 0, node as u8 + 1]);
                    let node = handle.create_node().name(format!("floor-{node}")).ip(ip).build();
                    tasks.push(node.spawn(async move {
                        let mut rng = madsim::rand::thread_rng();
                        let mut delivered = 0u64;
                        for _ in 0..share {
                            let nanos = flinksim_engine::rpc::network::latency(&mut rng);
                            madsim::time::sleep(std::time::Duration::from_nanos(nanos)).await;
                            delivered += 1;
                        }
                        delivered
                    }));
                }
                let mut delivered = 0;
                for task in tasks {
                    delivered += task.await.expect("a floor task does not panic");
                }
                delivered
            })
        })
        .expect("the OS can start a thread")
        .join()
        .expect("the madsim floor does not panic")
}

#[cfg(test)]
mod tests {
    use super::*;
    use flinksim_engine::protocol::click_event::{PAGES, WINDOW_MS};

    #[test]
    fn serde_json_writes_the_playgrounds_bytes() {
        // The first two rounds, then late in the first day (20:50, hour 08 on the 12-hour
        // clock), the second day's first round and a minute boundary.
        let late = [6 * 5_000_000, 6 * 5_000_000 + 5, 6 * 5_760_000, 6 * 5_760_000 + 3, 6 * 4_000 + 1];
        let (mut date, mut ours, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
        for k in (0..12).chain(late) {
            let event = ClickEvent::nth(k);
            ours.clear();
            event.write_json(&mut ours);
            theirs.clear();
            write_serde_json(&event, &mut date, &mut theirs);
            assert_eq!(String::from_utf8_lossy(&theirs), String::from_utf8_lossy(&ours), "event {k}");
        }
    }

    #[test]
    fn floor_serde_json_counts_as_the_floor() {
        assert_eq!(floor_serde_json(24_000), floor(24_000));
        assert_eq!(floor_serde_json(8), floor(8));
    }

    #[test]
    fn floor_counts_1000_per_window_and_page() {
        let counts = floor(24_000);
        assert_eq!(counts.len(), 24);
        assert!(counts.values().all(|&c| c == 1000), "{counts:?}");
        for window in 0..4 {
            for page in PAGES {
                assert_eq!(counts[&(window * WINDOW_MS, SmolStr::new(page))], 1000);
            }
        }
    }

    #[test]
    fn the_madsim_floor_delivers_every_message() {
        assert_eq!(floor_madsim(1000), 1000);
        assert_eq!(floor_madsim(5), 5);
        assert_eq!(floor_madsim(0), 0);
    }

    #[test]
    fn floor_counts_a_partial_window() {
        let counts = floor(8);
        assert_eq!(counts.len(), 6);
        assert_eq!(counts[&(0, SmolStr::new("/help"))], 2);
        assert_eq!(counts[&(0, SmolStr::new("/index"))], 2);
        assert_eq!(counts[&(0, SmolStr::new("/news"))], 1);
        assert_eq!(floor(0).len(), 0);
    }
}
