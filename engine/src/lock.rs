//! The engine's lock: a lock bound to the one thread a run runs on, with no atomic
//! read-modify-write on its path.
//!
//! A run is one thread, so nothing ever contends these locks, and what one costs is its atomic
//! instructions (README, "Wall time is not instructions"): spin's mutex, used before, took one
//! compare-exchange per lock, about 20 cycles and a drain of the store buffer, a few times per
//! message. This lock belongs to the first thread that takes it: taking it again there is a
//! plain load and compare of the owner and a flag set, and taking it from any other thread panics
//! before touching the value, so the value is only ever reached from one thread, as a `RefCell`'s
//! would be. Measured side by side against spin's (README): 60 simulated minutes of exactly-once
//! recovery, alternating, the same trace.
//!
//! The owner is a thread's token, the address of a thread-local. A thread that ends may leave its
//! token to a thread started later (its thread-locals' memory reused); that later thread can only
//! have reached the lock through something that synchronised with the first one's end, so it
//! sees every write the first made, as a thread taking over a value handed to it would.
//!
//! The guard is not `Send`: keeping it across an `.await` in a spawned task does not compile, and
//! taking the lock while it is held (on its own thread) panics rather than deadlocking the run.

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A lock around `T` for one thread: never contended, and with no atomic read-modify-write once
/// its thread has taken it.
pub struct Mutex<T> {
    /// The token ([`token`]) of the thread that may take the lock; 0 until one takes it.
    owner: AtomicUsize,
    /// Whether a guard is out.
    locked: Cell<bool>,
    value: UnsafeCell<T>,
}

// SAFETY: the value and the flag are only touched by the owning thread (`lock` checks it before
// touching either), so sharing the lock between threads shares nothing but the owner, an atomic.
unsafe impl<T: Send> Sync for Mutex<T> {}

/// The lock held; it unlocks when dropped. Not `Send`.
pub struct MutexGuard<'a, T> {
    lock: &'a Mutex<T>,
    _not_send: PhantomData<*const ()>,
}

thread_local! {
    /// Its address is the thread's token: distinct among the threads alive at once, and cheap to
    /// read (an offset from the thread pointer).
    static TOKEN: u8 = const { 0 };
}

/// This thread's token (never 0).
#[inline(always)]
fn token() -> usize {
    TOKEN.with(|t| t as *const u8 as usize)
}

impl<T> Mutex<T> {
    /// A lock around `value`, not yet owned by any thread.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex { owner: AtomicUsize::new(0), locked: Cell::new(false), value: UnsafeCell::new(value) }
    }

    /// A lock around `value`, owned from the start by this thread, so that its first `lock`
    /// needs no claim (a compare-exchange): for what the run makes many times a second, such as
    /// a call's slot.
    pub fn new_here(value: T) -> Mutex<T> {
        Mutex { owner: AtomicUsize::new(token()), locked: Cell::new(false), value: UnsafeCell::new(value) }
    }

    /// Takes the lock: the first thread to take it owns it; panics on any other thread, and if
    /// this thread holds it already.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        let me = token();
        if self.owner.load(Ordering::Relaxed) != me {
            self.claim(me);
        }
        assert!(!self.locked.replace(true), "an engine lock taken again while held on its thread");
        MutexGuard { lock: self, _not_send: PhantomData }
    }

    /// Makes this thread the owner, if no thread is.
    #[cold]
    #[inline(never)]
    fn claim(&self, me: usize) {
        if let Err(other) = self.owner.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed) {
            // A token is never 0, and this thread's is `me`: another live thread owns the lock.
            panic!("an engine lock taken on a second thread (its owner: token {other:#x}, this thread: {me:#x})");
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> std::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mutex").field("locked", &self.locked.get()).finish_non_exhaustive()
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only on the owning thread, and only one at a time.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and the guard is borrowed mutably.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.set(false);
    }
}

#[cfg(test)]
mod tests {
    use super::Mutex;
    use std::sync::Arc;

    /// Runs `f` on a second OS thread and returns what it returned, or its panic. Safe for
    /// determinism: these unit tests run no simulation, and a second thread is exactly what the
    /// lock must refuse, so the tests cannot be written on madsim's one thread.
    fn on_another_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::thread::Result<T> {
        std::thread::spawn(f).join() // tidy: allow (a unit test with no simulation to replay)
    }

    #[test]
    fn a_lock_hands_out_its_value_and_keeps_what_was_written() {
        let lock = Mutex::new(vec![1]);
        lock.lock().push(2);
        assert_eq!(*lock.lock(), [1, 2]);
    }

    #[test]
    fn a_lock_taken_on_a_second_thread_panics_and_leaves_the_value_alone() {
        let lock = Arc::new(Mutex::new(vec![1]));
        lock.lock().push(2);
        let other = Arc::clone(&lock);
        let taken = on_another_thread(move || other.lock().push(3));
        assert!(taken.is_err(), "a second thread took the lock");
        assert_eq!(*lock.lock(), [1, 2]);
    }

    #[test]
    fn a_lock_never_taken_goes_to_the_first_thread_that_takes_it() {
        let lock = Arc::new(Mutex::new(0));
        let other = Arc::clone(&lock);
        on_another_thread(move || *other.lock() += 1).unwrap();
        // The owner is the thread that ended; this one is another.
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| *lock.lock())).is_err());
    }

    #[test]
    fn a_lock_made_here_belongs_to_this_thread() {
        let lock = Arc::new(Mutex::new_here(1));
        let other = Arc::clone(&lock);
        assert!(on_another_thread(move || *other.lock()).is_err());
        assert_eq!(*lock.lock(), 1);
    }

    #[test]
    #[should_panic(expected = "taken again while held")]
    fn taking_a_held_lock_on_its_thread_panics() {
        let lock = Mutex::new(0);
        let _held = lock.lock();
        let _again = lock.lock();
    }
}
