//! The engine's lock: spin's mutex, with a guard that stays on its thread.
//!
//! A run is one thread, so nothing ever contends these locks, and what one costs is its atomic
//! instructions: spin's lock is one compare-exchange and its unlock a plain store, where
//! parking_lot's unlock is a second compare-exchange and std's adds poison checks (README,
//! "Wall time is not instructions"). spin's own guard may be sent to another thread, so a task
//! could keep it across an `.await`, and another task taking the lock meanwhile would spin
//! forever on the run's one thread. This guard is not `Send`, as parking_lot's is not: keeping
//! it across an `.await` in a spawned task does not compile.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

/// A lock around `T` that is never contended (one thread) and costs one atomic instruction.
#[derive(Debug, Default)]
pub struct Mutex<T>(spin::Mutex<T>);

/// The lock held; it unlocks when dropped. Not `Send`.
pub struct MutexGuard<'a, T>(spin::MutexGuard<'a, T>, PhantomData<*const ()>);

impl<T> Mutex<T> {
    /// A lock around `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex(spin::Mutex::new(value))
    }

    /// Takes the lock (at once: nothing else holds it on the run's one thread).
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        MutexGuard(self.0.lock(), PhantomData)
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Mutex;

    #[test]
    fn a_lock_hands_out_its_value_and_keeps_what_was_written() {
        let lock = Mutex::new(vec![1]);
        lock.lock().push(2);
        assert_eq!(*lock.lock(), [1, 2]);
    }
}
