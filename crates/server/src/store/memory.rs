//! The in-process store: a moka future cache weighed by bytes.
//!
//! Invariants: the weighed size (body + content type + key + overhead)
//! stays within `memory_limit_mb` once moka has run its pending tasks;
//! each entry expires at `fetched_at_s + ttl_s + stale_grace_s`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use moka::Expiry;
use moka::future::Cache;

use super::{Entry, Store, StoreFuture, retention_left_s};
use crate::clock::Clock;

#[derive(Debug)]
struct Stored {
    entry: Entry,
    retain_until_s: f64,
}

struct RetainUntil {
    clock: Arc<dyn Clock>,
}

impl RetainUntil {
    fn left(&self, value: &Stored) -> Duration {
        let left_s = value.retain_until_s - self.clock.now_s();
        Duration::from_secs_f64(left_s.clamp(0.0, 1.0e9))
    }
}

impl Expiry<String, Arc<Stored>> for RetainUntil {
    fn expire_after_create(&self, _: &String, value: &Arc<Stored>, _: Instant) -> Option<Duration> {
        Some(self.left(value))
    }

    fn expire_after_update(
        &self,
        _: &String,
        value: &Arc<Stored>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.left(value))
    }
}

/// The memory store.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    cache: Cache<String, Arc<Stored>>,
    clock: Arc<dyn Clock>,
    stale_grace_s: f64,
    limit_bytes: u64,
}

fn cache_key(dataset: &str, key: &str) -> String {
    format!("{dataset}\u{0}{key}")
}

impl MemoryStore {
    /// A store capped at `memory_limit_mb` MiB, keeping entries
    /// `stale_grace_s` past their TTL.
    pub fn new(memory_limit_mb: u64, stale_grace_s: f64, clock: Arc<dyn Clock>) -> Self {
        let limit_bytes = memory_limit_mb.saturating_mul(1024 * 1024);
        let cache = Cache::builder()
            .max_capacity(limit_bytes)
            .weigher(|k: &String, v: &Arc<Stored>| {
                let w = v.entry.weight_bytes("", k);
                u32::try_from(w).unwrap_or(u32::MAX)
            })
            .expire_after(RetainUntil {
                clock: clock.clone(),
            })
            .build();
        Self {
            cache,
            clock,
            stale_grace_s,
            limit_bytes,
        }
    }

    /// The cap in bytes.
    pub fn limit_bytes(&self) -> u64 {
        self.limit_bytes
    }

    /// Runs moka's pending evictions now (tests and stats).
    pub async fn sync(&self) {
        self.cache.run_pending_tasks().await;
    }
}

impl Store for MemoryStore {
    fn get<'a>(&'a self, dataset: &'a str, key: &'a str) -> StoreFuture<'a, Option<Entry>> {
        async move {
            let found = self.cache.get(&cache_key(dataset, key)).await;
            let now_s = self.clock.now_s();
            Ok(found
                .filter(|s| s.retain_until_s > now_s)
                .map(|s| s.entry.clone()))
        }
        .boxed()
    }

    fn put<'a>(
        &'a self,
        dataset: &'a str,
        key: &'a str,
        entry: Entry,
        ttl_s: f64,
    ) -> StoreFuture<'a, ()> {
        async move {
            let now_s = self.clock.now_s();
            let left_s = retention_left_s(&entry, ttl_s, self.stale_grace_s, now_s);
            let k = cache_key(dataset, key);
            if left_s <= 0.0 {
                self.cache.invalidate(&k).await;
                return Ok(());
            }
            let stored = Stored {
                entry,
                retain_until_s: now_s + left_s,
            };
            self.cache.insert(k, Arc::new(stored)).await;
            Ok(())
        }
        .boxed()
    }

    fn remove<'a>(&'a self, dataset: &'a str, key: &'a str) -> StoreFuture<'a, bool> {
        async move {
            let now_s = self.clock.now_s();
            let old = self.cache.remove(&cache_key(dataset, key)).await;
            Ok(old.is_some_and(|s| s.retain_until_s > now_s))
        }
        .boxed()
    }

    fn len(&self) -> StoreFuture<'_, u64> {
        async move {
            self.cache.run_pending_tasks().await;
            Ok(self.cache.entry_count())
        }
        .boxed()
    }

    fn approx_bytes(&self) -> StoreFuture<'_, u64> {
        async move {
            self.cache.run_pending_tasks().await;
            Ok(self.cache.weighted_size())
        }
        .boxed()
    }
}
