//! The in-process store: a moka future cache weighed by bytes.
//!
//! Invariants: the weighed size (body + content type + key + overhead)
//! stays within `memory_limit_mb` once moka has run its pending tasks;
//! each entry expires at `fetched_at_s + ttl_s + stale_grace_s`.
//!
//! Built [`MemoryStore::with_evictions`], every entry moka drops to respect
//! the cap (`RemovalCause::Size`, including a new entry its admission
//! policy refuses) is reported as an [`EvictionEvent`] through the
//! non-blocking event sink, so the engine stops counting the key as cached.
//! Replacements, expiries and removals the daemon asked for are not
//! reported: the engine knows of those already (a fetch, its TTL, a call).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use moka::Expiry;
use moka::future::Cache;
use moka::notification::RemovalCause;

use super::{Entry, Store, StoreFuture, retention_left_s};
use crate::clock::Clock;
use crate::events::{EventSink, EvictionEvent};

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

/// Whether a removal is reported to the engine: only drops to respect the
/// size cap (see the module docs).
fn is_reported(cause: RemovalCause) -> bool {
    matches!(cause, RemovalCause::Size)
}

/// The eviction event of `cache_key`'s entry, if the removal is reported.
fn eviction_event(
    cache_key: &str,
    stored: &Stored,
    cause: RemovalCause,
    now_s: f64,
) -> Option<EvictionEvent> {
    if !is_reported(cause) {
        return None;
    }
    let (dataset, key) = cache_key.split_once('\u{0}')?;
    Some(EvictionEvent {
        dataset: dataset.into(),
        key: key.into(),
        at_s: now_s,
        fetched_at_s: stored.entry.fetched_at_s,
    })
}

impl MemoryStore {
    /// A store capped at `memory_limit_mb` MiB, keeping entries
    /// `stale_grace_s` past their TTL; evictions are not reported.
    pub fn new(memory_limit_mb: u64, stale_grace_s: f64, clock: Arc<dyn Clock>) -> Self {
        Self::build(memory_limit_mb, stale_grace_s, clock, None)
    }

    /// [`MemoryStore::new`], reporting every entry dropped to respect the
    /// cap to `events` ([`EventSink::record_eviction`], never blocking).
    pub fn with_evictions(
        memory_limit_mb: u64,
        stale_grace_s: f64,
        clock: Arc<dyn Clock>,
        events: EventSink,
    ) -> Self {
        Self::build(memory_limit_mb, stale_grace_s, clock, Some(events))
    }

    fn build(
        memory_limit_mb: u64,
        stale_grace_s: f64,
        clock: Arc<dyn Clock>,
        events: Option<EventSink>,
    ) -> Self {
        let limit_bytes = memory_limit_mb.saturating_mul(1024 * 1024);
        let mut builder = Cache::builder()
            .max_capacity(limit_bytes)
            .weigher(|k: &String, v: &Arc<Stored>| {
                let w = v.entry.weight_bytes("", k);
                u32::try_from(w).unwrap_or(u32::MAX)
            })
            .expire_after(RetainUntil {
                clock: clock.clone(),
            });
        if let Some(events) = events {
            let clock = clock.clone();
            builder = builder.eviction_listener(move |k: Arc<String>, v: Arc<Stored>, cause| {
                if let Some(ev) = eviction_event(&k, &v, cause, clock.now_s()) {
                    metrics::counter!("prewarm_store_evictions_total", "dataset" => ev.dataset.to_string())
                        .increment(1);
                    events.record_eviction(ev);
                }
            });
        }
        let cache = builder.build();
        Self {
            cache,
            clock,
            stale_grace_s,
            limit_bytes,
        }
    }

    /// Drops every entry of `dataset`; returns the keys (without the
    /// dataset prefix) of those that were live.
    pub async fn remove_dataset_keys(&self, dataset: &str) -> Vec<String> {
        let prefix = cache_key(dataset, "");
        let keys: Vec<Arc<String>> = self
            .cache
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k)
            .collect();
        let now_s = self.clock.now_s();
        let mut removed = Vec::new();
        for k in keys {
            let old = self.cache.remove(&*k).await;
            if old.is_some_and(|s| s.retain_until_s > now_s) {
                removed.push(k[prefix.len()..].to_string());
            }
        }
        removed
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

    fn remove_dataset<'a>(&'a self, dataset: &'a str) -> StoreFuture<'a, u64> {
        async move { Ok(self.remove_dataset_keys(dataset).await.len() as u64) }.boxed()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::events::event_channels;
    use bytes::Bytes;

    fn stored(fetched_at_s: f64) -> Stored {
        Stored {
            entry: Entry {
                body: Bytes::from_static(b"{}"),
                fetched_at_s,
                content_type: None,
                ..Default::default()
            },
            retain_until_s: fetched_at_s + 360.0,
        }
    }

    #[test]
    fn only_size_evictions_become_events() {
        let k = cache_key("quote", "AAPL");
        let ev = eviction_event(&k, &stored(5.0), RemovalCause::Size, 9.0).expect("reported");
        assert_eq!((&*ev.dataset, &*ev.key), ("quote", "AAPL"));
        assert_eq!((ev.at_s, ev.fetched_at_s), (9.0, 5.0));
        for cause in [
            RemovalCause::Replaced,
            RemovalCause::Expired,
            RemovalCause::Explicit,
        ] {
            assert!(
                eviction_event(&k, &stored(5.0), cause, 9.0).is_none(),
                "{cause:?}"
            );
        }
    }

    #[tokio::test]
    async fn filling_past_the_cap_reports_each_dropped_entry_once() {
        let (sink, mut rx) = event_channels(16, 100_000);
        let store = MemoryStore::with_evictions(1, 300.0, Arc::new(SystemClock), sink);
        let now = SystemClock.now_s();
        let entry = || Entry {
            body: Bytes::from(vec![b'x'; 1000]),
            fetched_at_s: now,
            content_type: None,
            ..Default::default()
        };
        let keys: Vec<String> = (0..3000).map(|i| format!("K{i}")).collect(); // ~3.2 MB into 1 MiB
        for k in &keys {
            store.put("quote", k, entry(), 60.0).await.unwrap();
        }
        store.sync().await;
        let mut evicted = std::collections::HashSet::new();
        while let Ok(ev) = rx.evictions.try_recv() {
            assert_eq!(&*ev.dataset, "quote");
            assert_eq!(ev.fetched_at_s, now);
            assert!(evicted.insert(ev.key.to_string()), "{} twice", ev.key);
        }
        assert!(store.approx_bytes().await.unwrap() <= store.limit_bytes());
        assert!(!evicted.is_empty());
        let mut held = Vec::new();
        for k in &keys {
            let there = store.get("quote", k).await.unwrap().is_some();
            assert_eq!(
                there,
                !evicted.contains(k),
                "{k}: held or reported, not both"
            );
            if there {
                held.push(k.clone());
            }
        }
        // A replacement and an explicit removal are not reported.
        store.put("quote", &held[0], entry(), 60.0).await.unwrap();
        assert!(store.remove("quote", &held[1]).await.unwrap());
        store.sync().await;
        assert!(rx.evictions.try_recv().is_err());
    }

    mod cap {
        use super::*;
        use crate::clock::TokioClock;
        use proptest::prelude::*;

        const KEYS: usize = 6;

        #[derive(Debug, Clone)]
        enum Op {
            Put {
                key: usize,
                body_len: usize,
                ttl_s: f64,
                content_type: bool,
            },
            Remove(usize),
            Advance(u64),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (0..KEYS, 0usize..700_000, 0.0f64..120.0, any::<bool>()).prop_map(
                    |(key, body_len, ttl_s, content_type)| Op::Put { key, body_len, ttl_s, content_type }
                ),
                1 => (0..KEYS).prop_map(Op::Remove),
                1 => (0u64..200).prop_map(Op::Advance),
            ]
        }

        /// Dataset and key of the `i`-th name: two datasets share key names.
        fn name(i: usize) -> (&'static str, String) {
            (["quote", "news"][i % 2], format!("K{}", i / 2))
        }

        /// What the store answers for every name, weighed as it weighs it.
        async fn held_bytes(store: &MemoryStore) -> u64 {
            let mut sum = 0;
            for i in 0..KEYS {
                let (dataset, key) = name(i);
                if let Some(e) = store.get(dataset, &key).await.unwrap() {
                    sum += e.weight_bytes("", &cache_key(dataset, &key));
                }
            }
            sum
        }

        async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
            let clock = TokioClock::starting_at(1_700_000_000.0);
            let store = MemoryStore::new(1, 30.0, Arc::new(clock));
            let limit = store.limit_bytes();
            for op in ops {
                match op {
                    Op::Put {
                        key,
                        body_len,
                        ttl_s,
                        content_type,
                    } => {
                        let (dataset, key) = name(key);
                        let entry = Entry {
                            body: Bytes::from(vec![b'x'; body_len]),
                            fetched_at_s: clock.now_s(),
                            content_type: content_type.then(|| "application/json".into()),
                            ..Default::default()
                        };
                        store.put(dataset, &key, entry, ttl_s).await.unwrap();
                    }
                    Op::Remove(key) => {
                        let (dataset, key) = name(key);
                        store.remove(dataset, &key).await.unwrap();
                    }
                    Op::Advance(s) => tokio::time::advance(Duration::from_secs(s)).await,
                }
                let accounted = store.approx_bytes().await.unwrap();
                prop_assert!(accounted <= limit, "accounted {accounted} > cap {limit}");
                let held = held_bytes(&store).await;
                prop_assert!(held <= limit, "held {held} > cap {limit}");
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            /// Whatever is put (bodies up to two thirds of the cap, any
            /// TTL, replacements, removals, time passing), the weighed
            /// size and the sum of the entries a get returns stay within
            /// `memory_limit_mb` after every operation.
            #[test]
            fn the_memory_store_never_holds_more_than_its_cap(
                ops in proptest::collection::vec(op(), 1..40)
            ) {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .start_paused(true)
                    .build()
                    .unwrap();
                rt.block_on(run(ops))?;
            }
        }
    }
}
