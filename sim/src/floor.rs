//! The benchmark floor: the least work any implementation of the playground must do for a given
//! number of clicks, as a plain loop with no simulation around it. `cargo xtask bench` compares
//! the simulator's wall time with this loop's for the same number of events.
//!
//! Each of the generator's events is written to the playground's JSON, parsed back, and counted
//! per (15 s window, page), exactly as Click Event Count would count it.

use std::collections::BTreeMap;

use flinksim_engine::playground::click_event::{ClickEvent, DateReader, DateWriter, window_start};
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

#[cfg(test)]
mod tests {
    use super::*;
    use flinksim_engine::playground::click_event::{PAGES, WINDOW_MS};

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
    fn floor_counts_a_partial_window() {
        let counts = floor(8);
        assert_eq!(counts.len(), 6);
        assert_eq!(counts[&(0, SmolStr::new("/help"))], 2);
        assert_eq!(counts[&(0, SmolStr::new("/index"))], 2);
        assert_eq!(counts[&(0, SmolStr::new("/news"))], 1);
        assert_eq!(floor(0).len(), 0);
    }
}
