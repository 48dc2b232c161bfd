//! A count bumped on hot paths (messages sent, records and bytes through a task) and read now
//! and then (metrics, the run's report).
//!
//! A run is one OS thread, so a load and a store count as surely as `fetch_add` does, without
//! its locked instruction: an atomic read-modify-write costs about 20 cycles and drains the
//! store buffer, and a message's path bumped counts like these several times.

use std::sync::atomic::{AtomicU64, Ordering};

/// A count shared by the tasks of one run (one thread), starting at 0.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Not an atomic increment: every bump of one counter comes from the run's one
    /// thread.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// The count now.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::Counter;

    #[test]
    fn a_counter_adds_up_what_it_is_given() {
        let counter = Counter::default();
        counter.add(3);
        counter.add(4);
        assert_eq!(counter.get(), 7);
    }
}
