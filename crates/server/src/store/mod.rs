//! Where entries live: one async [`Store`] trait, two backends.
//!
//! Invariants (checked by the conformance suite in `tests/`):
//! - `put(entry, ttl_s)` keeps the entry until
//!   `entry.fetched_at_s + ttl_s + stale_grace_s` (the backend's grace);
//!   past that `get` returns `None`. An entry already past it is not kept.
//! - `get` returns `fetched_at_s` exactly as put, so Age and freshness are
//!   exact; the store never decides freshness.
//! - Datasets are separate namespaces.
//!
//! A remote backend is wrapped in [`guard::GuardedStore`]: after a failure
//! it is skipped for a growing back-off and an in-process fallback serves
//! meanwhile; [`guard::StoreHealth`] reports the outage.

pub mod backend;
mod frame;
pub mod guard;
pub mod memory;
pub mod redis;
pub mod redis_conn;
pub mod sidecar;

use std::fmt;

use bytes::Bytes;
use futures::future::BoxFuture;
use prewarm_core::cache::is_fresh;
use prewarm_core::time::{Seconds, UnixInstant};

pub use backend::{StoreBackend, StoreOptions};
pub use guard::{Backoff, GuardedStore, HealthReport, StoreHealth};
pub use memory::MemoryStore;
pub use redis::RedisStore;
pub use redis_conn::{RedisAuth, RedisTarget, Secret};
pub use sidecar::SidecarWriter;

/// A cached value with its fetch time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entry {
    /// The upstream's body (empty for a negative entry).
    pub body: Bytes,
    /// When it was fetched, Unix seconds.
    pub fetched_at_s: f64,
    /// The upstream's content type, if it sent one.
    pub content_type: Option<String>,
    /// The upstream's `ETag` as sent (quotes and `W/` included), if any.
    pub etag: Option<String>,
    /// A negative entry: the upstream answered 404 (no such key). Kept
    /// for the dataset's `negative_ttl_s`, answered 404, never warmed.
    pub negative: bool,
}

impl Entry {
    /// Whether the entry is fresh at `now` under `ttl`: the engine's rule
    /// [`prewarm_core::cache::is_fresh`], `f <= t < f + ttl`.
    pub fn is_fresh(&self, ttl: Seconds, now: UnixInstant) -> bool {
        is_fresh(UnixInstant(self.fetched_at_s), ttl, now)
    }

    /// Whole seconds since the fetch (never negative), for `Age`.
    pub fn age_s(&self, now_s: f64) -> u64 {
        (now_s - self.fetched_at_s).max(0.0).floor() as u64
    }

    /// Bytes this entry weighs in a store (body + content type + overhead).
    pub fn weight_bytes(&self, dataset: &str, key: &str) -> u64 {
        const OVERHEAD: u64 = 64;
        let ct = self.content_type.as_ref().map_or(0, String::len);
        let etag = self.etag.as_ref().map_or(0, String::len);
        (self.body.len() + ct + etag + dataset.len() + key.len()) as u64 + OVERHEAD
    }
}

/// A store failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or answered an error.
    #[error("store backend: {0}")]
    Backend(String),
    /// The backend is down (or skipped while it backs off after a
    /// failure), so a deletion could not be made there; the next probe of
    /// the backend is `retry_in_s` seconds away.
    #[error("store backend unavailable; nothing was deleted from it (retry in {retry_in_s:.1} s)")]
    Unavailable {
        /// Seconds until the backend is tried again.
        retry_in_s: f64,
    },
    /// A stored value could not be decoded.
    #[error("corrupt stored value for {dataset}/{key}: {reason}")]
    Corrupt {
        /// Dataset.
        dataset: String,
        /// Key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// A boxed store future.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// An async key-value store of [`Entry`]s, namespaced by dataset.
pub trait Store: Send + Sync + fmt::Debug {
    /// The entry for `dataset`/`key`, fresh or stale, if still retained.
    fn get<'a>(&'a self, dataset: &'a str, key: &'a str) -> StoreFuture<'a, Option<Entry>>;
    /// Stores `entry`, retained until `fetched_at_s + ttl_s + stale grace`.
    fn put<'a>(
        &'a self,
        dataset: &'a str,
        key: &'a str,
        entry: Entry,
        ttl_s: f64,
    ) -> StoreFuture<'a, ()>;
    /// Removes the entry; true if one was there.
    fn remove<'a>(&'a self, dataset: &'a str, key: &'a str) -> StoreFuture<'a, bool>;
    /// Removes every entry of `dataset` (other datasets keep theirs);
    /// returns how many were there.
    fn remove_dataset<'a>(&'a self, dataset: &'a str) -> StoreFuture<'a, u64>;
    /// Number of entries (approximate for Redis: a SCAN).
    fn len(&self) -> StoreFuture<'_, u64>;
    /// Approximate bytes held by the entries.
    fn approx_bytes(&self) -> StoreFuture<'_, u64>;
    /// Whether the store holds no entry.
    fn is_empty(&self) -> StoreFuture<'_, bool> {
        Box::pin(async move { Ok(self.len().await? == 0) })
    }
}

/// Seconds an entry put now must still be retained (may be <= 0).
pub fn retention_left_s(entry: &Entry, ttl_s: f64, stale_grace_s: f64, now_s: f64) -> f64 {
    entry.fetched_at_s + ttl_s + stale_grace_s - now_s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_is_half_open() {
        let e = Entry {
            body: Bytes::new(),
            fetched_at_s: 100.0,
            ..Entry::default()
        };
        let fresh = |now_s| e.is_fresh(Seconds(10.0), UnixInstant(now_s));
        assert!(fresh(100.0));
        assert!(fresh(109.9));
        assert!(!fresh(110.0));
        assert!(!fresh(99.0));
        assert_eq!(e.age_s(112.7), 12);
        assert_eq!(e.age_s(50.0), 0);
    }
}
