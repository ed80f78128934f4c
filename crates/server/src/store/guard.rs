//! A store that stays out of the way while its backend is down.
//!
//! [`GuardedStore`] wraps a remote backend (Redis) and an in-process
//! fallback ([`MemoryStore`]). After a backend failure it skips the
//! backend for a back-off period that doubles with each failure in a row,
//! from `backoff_base` up to `backoff_max`; meanwhile reads and writes go
//! to the fallback, so requests are served from the fallback or the
//! upstream at full speed instead of waiting on a dead connection each
//! time. When the back-off ends, one operation probes the backend (the
//! others keep to the fallback until it answers): a success ends the
//! outage, a failure starts a longer back-off.
//!
//! [`StoreHealth`] is shared with the admin listener: `/readyz` and the
//! `store` object of `/warming/stats` and `/warming/status` read it.
//! A corrupt value is not a backend failure (the backend answered).

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;
use serde::Serialize;
use tokio::time::Instant;

use super::{Entry, MemoryStore, Store, StoreError, StoreFuture};
use crate::clock::Clock;

/// How the store backend is doing, as the monitoring API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HealthReport {
    /// `connected` or `degraded` (the backend failed; entries go to the
    /// in-process fallback until a probe succeeds).
    #[schema(value_type = String)]
    pub health: &'static str,
    /// The backend: `memory` or `redis`.
    #[schema(value_type = String)]
    pub backend: &'static str,
    /// Failures in a row (0 when connected).
    pub failures: u32,
    /// When the outage began, Unix seconds.
    pub degraded_since_s: Option<f64>,
    /// Seconds until the next probe of the backend (0: the next operation).
    pub next_probe_in_s: Option<f64>,
    /// The last failure, redacted.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    degraded_since_s: Option<f64>,
    retry_at: Option<Instant>,
    last_error: Option<String>,
}

/// The store's health, shared by the store and the admin listener.
#[derive(Debug, Clone)]
pub struct StoreHealth {
    backend: &'static str,
    state: Arc<Mutex<State>>,
}

impl Default for StoreHealth {
    fn default() -> Self {
        Self::new("memory")
    }
}

/// What an operation may do with the backend now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Use the backend.
    Backend,
    /// The backend is in back-off: use the fallback.
    Fallback,
}

impl StoreHealth {
    /// A healthy store on `backend` (`memory` or `redis`).
    pub fn new(backend: &'static str) -> Self {
        Self {
            backend,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// Whether the backend is in an outage.
    pub fn is_degraded(&self) -> bool {
        self.state
            .lock()
            .map(|s| s.degraded_since_s.is_some())
            .unwrap_or(false)
    }

    /// The report shown by the monitoring API.
    pub fn report(&self) -> HealthReport {
        let s = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        HealthReport {
            health: if s.degraded_since_s.is_some() {
                "degraded"
            } else {
                "connected"
            },
            backend: self.backend,
            failures: s.failures,
            degraded_since_s: s.degraded_since_s,
            next_probe_in_s: s
                .retry_at
                .map(|at| at.saturating_duration_since(now).as_secs_f64()),
            last_error: s.last_error.clone(),
        }
    }

    /// Whether an operation may use the backend now. The first one after
    /// a back-off is the probe; the next probe is pushed a back-off away
    /// at once, so a probe that is cancelled midway cannot stop probing.
    fn route(&self, backoff: &Backoff) -> Route {
        let Ok(mut s) = self.state.lock() else {
            return Route::Backend;
        };
        let now = Instant::now();
        match s.retry_at {
            None => Route::Backend,
            Some(at) if now >= at => {
                s.retry_at = Some(now + backoff.after(s.failures.max(1)));
                Route::Backend
            }
            Some(_) => Route::Fallback,
        }
    }

    fn succeeded(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        if s.degraded_since_s.is_some() {
            tracing::info!(
                backend = self.backend,
                failures = s.failures,
                "store backend answers again"
            );
        }
        *s = State::default();
    }

    fn failed(&self, err: &StoreError, now_s: f64, backoff: &Backoff) {
        let Ok(mut s) = self.state.lock() else { return };
        s.failures = s.failures.saturating_add(1);
        let wait = backoff.after(s.failures);
        s.retry_at = Some(Instant::now() + wait);
        s.last_error = Some(err.to_string());
        if s.degraded_since_s.is_none() {
            s.degraded_since_s = Some(now_s);
            tracing::warn!(backend = self.backend, error = %err, retry_in_s = wait.as_secs_f64(),
                "store backend failed; serving from the in-process fallback and the upstream");
        } else {
            tracing::debug!(backend = self.backend, error = %err, retry_in_s = wait.as_secs_f64(),
                "store backend still failing");
        }
        metrics::counter!("prewarm_store_errors_total").increment(1);
    }
}

/// The back-off after a failure: `base × 2^(failures − 1)`, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// After the first failure.
    pub base: Duration,
    /// The longest.
    pub max: Duration,
}

impl Backoff {
    /// The back-off after `failures` failures in a row (>= 1).
    pub fn after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.base
            .saturating_mul(1u32 << doublings)
            .min(self.max)
            .max(self.base.min(self.max))
    }
}

/// A remote store with an in-process fallback and a back-off after
/// failures (see the module docs).
#[derive(Debug)]
pub struct GuardedStore {
    backend: Arc<dyn Store>,
    fallback: MemoryStore,
    health: StoreHealth,
    backoff: Backoff,
    clock: Arc<dyn Clock>,
}

impl GuardedStore {
    /// Guards `backend`; `fallback` holds entries while it is down;
    /// `health` is updated on every failure and recovery.
    pub fn new(
        backend: Arc<dyn Store>,
        fallback: MemoryStore,
        health: StoreHealth,
        backoff: Backoff,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            backend,
            fallback,
            health,
            backoff,
            clock,
        }
    }

    /// The shared health.
    pub fn health(&self) -> &StoreHealth {
        &self.health
    }

    /// The backend's result, or `None` when the backend was skipped or
    /// failed (the caller then uses the fallback).
    async fn try_backend<T>(&self, op: StoreFuture<'_, T>) -> Option<Result<T, StoreError>> {
        if self.health.route(&self.backoff) == Route::Fallback {
            return None;
        }
        match op.await {
            Err(StoreError::Backend(msg)) => {
                self.health
                    .failed(&StoreError::Backend(msg), self.clock.now_s(), &self.backoff);
                None
            }
            other => {
                self.health.succeeded();
                Some(other)
            }
        }
    }
}

impl GuardedStore {
    /// A deletion in the backend: unlike reads and writes it has no
    /// fallback, so a skipped or failed backend is
    /// [`StoreError::Unavailable`] (the entry may still be there).
    async fn delete_in_backend<T>(&self, op: StoreFuture<'_, T>) -> Result<T, StoreError> {
        match self.try_backend(op).await {
            Some(r) => r,
            None => Err(StoreError::Unavailable {
                retry_in_s: self.health.report().next_probe_in_s.unwrap_or(0.0),
            }),
        }
    }
}

impl Store for GuardedStore {
    fn get<'a>(&'a self, dataset: &'a str, key: &'a str) -> StoreFuture<'a, Option<Entry>> {
        async move {
            match self.try_backend(self.backend.get(dataset, key)).await {
                Some(r) => r,
                None => self.fallback.get(dataset, key).await,
            }
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
            let op = self.backend.put(dataset, key, entry.clone(), ttl_s);
            match self.try_backend(op).await {
                Some(r) => r,
                None => self.fallback.put(dataset, key, entry, ttl_s).await,
            }
        }
        .boxed()
    }

    /// Drops the fallback's copy, then the backend's. A backend that is
    /// skipped (back-off) or fails is an error: a deletion is never
    /// reported done while the backend may still hold the entry.
    fn remove<'a>(&'a self, dataset: &'a str, key: &'a str) -> StoreFuture<'a, bool> {
        async move {
            let in_fallback = self.fallback.remove(dataset, key).await?;
            let in_backend = self
                .delete_in_backend(self.backend.remove(dataset, key))
                .await?;
            Ok(in_backend || in_fallback)
        }
        .boxed()
    }

    /// Like [`Self::remove`] for every entry of `dataset`; counts each
    /// key once, whether the fallback, the backend or both held it.
    fn remove_dataset<'a>(&'a self, dataset: &'a str) -> StoreFuture<'a, u64> {
        async move {
            let in_fallback = self.fallback.remove_dataset_keys(dataset).await;
            let mut purged = in_fallback.len() as u64;
            for key in &in_fallback {
                // Counted already; only the backend's copy is left.
                self.delete_in_backend(self.backend.remove(dataset, key))
                    .await?;
            }
            let rest = self
                .delete_in_backend(self.backend.remove_dataset(dataset))
                .await?;
            purged += rest;
            Ok(purged)
        }
        .boxed()
    }

    fn len(&self) -> StoreFuture<'_, u64> {
        async move {
            match self.try_backend(self.backend.len()).await {
                Some(r) => r,
                None => self.fallback.len().await,
            }
        }
        .boxed()
    }

    fn approx_bytes(&self) -> StoreFuture<'_, u64> {
        async move {
            match self.try_backend(self.backend.approx_bytes()).await {
                Some(r) => r,
                None => self.fallback.approx_bytes().await,
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use bytes::Bytes;

    use super::*;
    use crate::clock::TokioClock;

    /// A backend that fails while `down` is set, counting the calls.
    #[derive(Debug, Default)]
    struct Flaky {
        down: AtomicBool,
        calls: AtomicU64,
    }

    impl Flaky {
        /// A call is counted when its future runs, not when it is built.
        fn answer<T: Send + 'static>(&self, ok: T) -> StoreFuture<'_, T> {
            async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                if self.down.load(Ordering::SeqCst) {
                    Err(StoreError::Backend("connection refused".into()))
                } else {
                    Ok(ok)
                }
            }
            .boxed()
        }
    }

    impl Store for Flaky {
        fn get<'a>(&'a self, _: &'a str, _: &'a str) -> StoreFuture<'a, Option<Entry>> {
            self.answer(None)
        }
        fn put<'a>(&'a self, _: &'a str, _: &'a str, _: Entry, _: f64) -> StoreFuture<'a, ()> {
            self.answer(())
        }
        fn remove_dataset<'a>(&'a self, _: &'a str) -> StoreFuture<'a, u64> {
            self.answer(0)
        }
        fn remove<'a>(&'a self, _: &'a str, _: &'a str) -> StoreFuture<'a, bool> {
            self.answer(false)
        }
        fn len(&self) -> StoreFuture<'_, u64> {
            self.answer(0)
        }
        fn approx_bytes(&self) -> StoreFuture<'_, u64> {
            self.answer(0)
        }
    }

    fn guarded(backend: Arc<Flaky>) -> GuardedStore {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::default());
        GuardedStore::new(
            backend,
            MemoryStore::new(10, 60.0, clock.clone()),
            StoreHealth::new("redis"),
            Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(4),
            },
            clock,
        )
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(3),
        };
        let got: Vec<u128> = (1..=6).map(|n| b.after(n).as_millis()).collect();
        assert_eq!(got, [500, 1000, 2000, 3000, 3000, 3000]);
        assert_eq!(b.after(u32::MAX), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_backend_is_skipped_until_its_backoff_ends_then_probed() {
        let backend = Arc::new(Flaky::default());
        let store = guarded(Arc::clone(&backend));
        let calls = || backend.calls.load(Ordering::SeqCst);
        backend.down.store(true, Ordering::SeqCst);
        let e = Entry {
            body: Bytes::from_static(b"{}"),
            fetched_at_s: TokioClock::default().now_s(),
            content_type: None,
            ..Default::default()
        };
        store.put("quote", "AAPL", e.clone(), 30.0).await.unwrap();
        assert_eq!(calls(), 1);
        assert!(store.health().is_degraded());
        assert_eq!(store.health().report().health, "degraded");
        // In the back-off: no backend call, the fallback answers.
        for _ in 0..100 {
            assert_eq!(store.get("quote", "AAPL").await.unwrap(), Some(e.clone()));
        }
        assert_eq!(calls(), 1, "skipped during the back-off");
        // The back-off ends: one probe, which fails: the next is longer.
        tokio::time::advance(Duration::from_millis(1001)).await;
        store.get("quote", "AAPL").await.unwrap();
        assert_eq!(calls(), 2);
        tokio::time::advance(Duration::from_millis(1500)).await;
        store.get("quote", "AAPL").await.unwrap();
        assert_eq!(calls(), 2, "the second back-off is 2 s");
        assert_eq!(store.health().report().failures, 2);
        // The backend is back: the next probe ends the outage.
        backend.down.store(false, Ordering::SeqCst);
        tokio::time::advance(Duration::from_millis(600)).await;
        store.get("quote", "AAPL").await.unwrap();
        assert_eq!(calls(), 3);
        assert!(!store.health().is_degraded());
        store.get("quote", "AAPL").await.unwrap();
        assert_eq!(calls(), 4, "every operation uses the backend again");
    }
}
