//! A memory store with a test's hooks on reads and writes: fault
//! injection into the real read and load paths.

use std::sync::Arc;

use prewarm_server::clock::{Clock, SystemClock};
use prewarm_server::store::{Entry, MemoryStore, Store, StoreFuture};

/// A check a [`HookedStore`] runs on a key before reading or writing it.
pub type KeyHook = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// A memory store whose reads and writes pass a test's hooks first:
/// fault injection into the real read and load paths.
pub struct HookedStore {
    /// The store behind the hooks.
    pub inner: MemoryStore,
    /// Run before each read of a key: `false` makes the read miss.
    pub on_get: KeyHook,
    /// Run before each write of a key (it may panic): `false` drops it.
    pub on_put: KeyHook,
}

impl HookedStore {
    /// A store of `memory_limit_mb` over the system clock, hooks passing
    /// everything.
    pub fn new(memory_limit_mb: u64, stale_grace_s: f64) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Self {
            inner: MemoryStore::new(memory_limit_mb, stale_grace_s, clock),
            on_get: Box::new(|_| true),
            on_put: Box::new(|_| true),
        }
    }
}

impl std::fmt::Debug for HookedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookedStore").finish_non_exhaustive()
    }
}

impl Store for HookedStore {
    fn get<'a>(&'a self, dataset: &'a str, key: &'a str) -> StoreFuture<'a, Option<Entry>> {
        if (self.on_get)(key) {
            self.inner.get(dataset, key)
        } else {
            Box::pin(async { Ok(None) })
        }
    }
    fn put<'a>(
        &'a self,
        dataset: &'a str,
        key: &'a str,
        entry: Entry,
        ttl_s: f64,
    ) -> StoreFuture<'a, ()> {
        if (self.on_put)(key) {
            self.inner.put(dataset, key, entry, ttl_s)
        } else {
            Box::pin(async { Ok(()) })
        }
    }
    fn remove<'a>(&'a self, dataset: &'a str, key: &'a str) -> StoreFuture<'a, bool> {
        self.inner.remove(dataset, key)
    }
    fn remove_dataset<'a>(&'a self, dataset: &'a str) -> StoreFuture<'a, u64> {
        self.inner.remove_dataset(dataset)
    }
    fn len(&self) -> StoreFuture<'_, u64> {
        self.inner.len()
    }
    fn approx_bytes(&self) -> StoreFuture<'_, u64> {
        self.inner.approx_bytes()
    }
}
