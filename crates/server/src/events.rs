//! The seams through which the engine learns what happened.
//!
//! Invariants:
//! - Sending never blocks and never fails a request: `try_send`, and on a
//!   full or closed channel a dropped-event counter (and a metric) goes up.
//! - Only client accesses become [`AccessEvent`]s; warming fetches appear
//!   only as [`FetchEvent`]s with [`FetchOrigin::Warm`].
//! - A store that drops an entry to respect its size cap reports an
//!   [`EvictionEvent`] (never for a replacement, an expiry or a removal the
//!   daemon asked for), so the engine stops counting the key as cached and
//!   may warm it again. Its channel has the fetch channel's capacity. A
//!   successful fetch's event carries the entry's `fetched_at_s` as its
//!   time, so an eviction made while that entry was being stored sorts after
//!   it, and an eviction naming that fetch time that overtakes its fetch
//!   event is applied again when the fetch arrives.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

/// Why an upstream fetch was made: on demand, or warming charged to a
/// strategy. The engine's own type, carried as is from the warming order
/// to the fetch event (no strategy name is written out and parsed back).
pub use prewarm_core::cache::FetchOrigin;

/// What the proxy does upstream for one client access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessFetch {
    /// Nothing: a hit, or an access reported through `/v1/access` (the
    /// client read elsewhere).
    None,
    /// A proxied read that missed fetches, joins the key's flight, or
    /// starts a refresh: the engine does not warm the key until that
    /// fetch is reported.
    Follows,
    /// A proxied read that missed was answered without any upstream call
    /// (the failure memo; stale or 503 while upstream is held back, the
    /// breaker open or the quota spent): a cache without warming would
    /// have been refused alike, so the cost cap's shadow counts no call.
    Refused,
}

/// One client access to a key (proxied, or reported through `/v1/access`).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessEvent {
    /// Dataset name, e.g. `quote`.
    pub dataset: Arc<str>,
    /// The key within the dataset, e.g. `AAPL`.
    pub key: Arc<str>,
    /// The client, when known.
    pub client: Option<Arc<str>>,
    /// When the access happened, Unix seconds.
    pub at_s: f64,
    /// Whether a fresh entry was found.
    pub hit: bool,
    /// Whether the client asked past the cache (`Cache-Control:
    /// no-cache`): a miss and a demand fetch whatever was cached.
    pub forced: bool,
    /// What the proxy does upstream for this access.
    pub fetch: AccessFetch,
    /// Groups the client says the key belongs to (a sector, a watchlist),
    /// learned as membership like a universe file's; empty for proxied
    /// reads.
    pub groups: Box<[Arc<str>]>,
}

#[cfg(test)]
impl AccessEvent {
    /// A client's miss of `dataset`/`key` at `at_s`, reported with no
    /// fetch following (as `/v1/access` reports one), for tests.
    pub(crate) fn reported_miss(dataset: &str, key: &str, at_s: f64) -> Self {
        Self {
            dataset: dataset.into(),
            key: key.into(),
            client: None,
            at_s,
            hit: false,
            forced: false,
            fetch: AccessFetch::None,
            groups: Box::default(),
        }
    }
}

/// One completed upstream fetch (or failed attempt) for a key.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchEvent {
    /// Dataset name.
    pub dataset: Arc<str>,
    /// The key fetched.
    pub key: Arc<str>,
    /// When the fetch completed, Unix seconds.
    pub at_s: f64,
    /// Demand or warming.
    pub origin: FetchOrigin,
    /// Whether a value was fetched and stored.
    pub ok: bool,
    /// How long the upstream call took, seconds, when one was made and
    /// succeeded (the engine plans its lead times with these).
    pub upstream_s: Option<f64>,
    /// Whether an upstream call was made: `false` when the quota, the
    /// host's hold or the breaker refused it before it was sent, so it
    /// counts as no API call.
    pub sent: bool,
    /// Whether the fetch rode in a batch call that an earlier key of the
    /// same call counts (the call counts once).
    pub batched: bool,
}

/// A store dropped an entry to respect its size cap.
#[derive(Debug, Clone, PartialEq)]
pub struct EvictionEvent {
    /// Dataset name.
    pub dataset: Arc<str>,
    /// The key whose entry was dropped.
    pub key: Arc<str>,
    /// When it was dropped, Unix seconds.
    pub at_s: f64,
    /// The dropped entry's `fetched_at_s` (names the fetch that stored it).
    pub fetched_at_s: f64,
}

/// Counts of events that could not be queued.
#[derive(Debug, Default)]
pub struct EventCounters {
    /// Access events dropped because the channel was full or closed.
    pub dropped_accesses: AtomicU64,
    /// Fetch events dropped because the channel was full or closed.
    pub dropped_fetches: AtomicU64,
    /// Eviction events dropped because the channel was full or closed.
    pub dropped_evictions: AtomicU64,
}

/// The sending side, held by the proxy and the read-through layer.
#[derive(Debug, Clone)]
pub struct EventSink {
    access_tx: mpsc::Sender<AccessEvent>,
    fetch_tx: mpsc::Sender<FetchEvent>,
    eviction_tx: mpsc::Sender<EvictionEvent>,
    counters: Arc<EventCounters>,
}

/// The receiving side, drained in batches by the engine driver.
#[derive(Debug)]
pub struct EventReceivers {
    /// Client accesses.
    pub accesses: mpsc::Receiver<AccessEvent>,
    /// Fetch completions.
    pub fetches: mpsc::Receiver<FetchEvent>,
    /// Store evictions.
    pub evictions: mpsc::Receiver<EvictionEvent>,
}

/// Creates the bounded channels with the given capacities (evictions get
/// the fetch channel's).
pub fn event_channels(
    access_capacity: usize,
    fetch_capacity: usize,
) -> (EventSink, EventReceivers) {
    let (access_tx, accesses) = mpsc::channel(access_capacity.max(1));
    let (fetch_tx, fetches) = mpsc::channel(fetch_capacity.max(1));
    let (eviction_tx, evictions) = mpsc::channel(fetch_capacity.max(1));
    let sink = EventSink {
        access_tx,
        fetch_tx,
        eviction_tx,
        counters: Arc::new(EventCounters::default()),
    };
    let receivers = EventReceivers {
        accesses,
        fetches,
        evictions,
    };
    (sink, receivers)
}

/// `try_send` on `tx`; on a full or closed channel counts the drop in
/// `dropped` and in the metric `metric`. Returns whether it was queued.
fn send_or_count<T>(
    tx: &mpsc::Sender<T>,
    event: T,
    dropped: &AtomicU64,
    metric: &'static str,
) -> bool {
    match tx.try_send(event) {
        Ok(()) => true,
        Err(_) => {
            dropped.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(metric).increment(1);
            false
        }
    }
}

impl EventSink {
    /// Queues an access without blocking; returns false if it was dropped.
    pub fn record_access(&self, event: AccessEvent) -> bool {
        send_or_count(
            &self.access_tx,
            event,
            &self.counters.dropped_accesses,
            "prewarm_access_events_dropped_total",
        )
    }

    /// Queues a fetch completion without blocking; returns false if dropped.
    pub fn record_fetch(&self, event: FetchEvent) -> bool {
        send_or_count(
            &self.fetch_tx,
            event,
            &self.counters.dropped_fetches,
            "prewarm_fetch_events_dropped_total",
        )
    }

    /// Queues a store eviction without blocking; returns false if dropped.
    pub fn record_eviction(&self, event: EvictionEvent) -> bool {
        send_or_count(
            &self.eviction_tx,
            event,
            &self.counters.dropped_evictions,
            "prewarm_eviction_events_dropped_total",
        )
    }

    /// Drop counters shared by every clone of this sink.
    pub fn counters(&self) -> &EventCounters {
        &self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(key: &str) -> AccessEvent {
        AccessEvent::reported_miss("quote", key, 1.0)
    }

    #[test]
    fn full_access_channel_counts_drops_instead_of_blocking() {
        let (sink, mut rx) = event_channels(2, 2);
        assert!(sink.record_access(access("A")));
        assert!(sink.record_access(access("B")));
        assert!(!sink.record_access(access("C")));
        assert_eq!(sink.counters().dropped_accesses.load(Ordering::Relaxed), 1);
        assert_eq!(rx.accesses.try_recv().unwrap().key.as_ref(), "A");
    }

    #[test]
    fn closed_fetch_channel_counts_drops() {
        let (sink, rx) = event_channels(2, 2);
        drop(rx);
        let ev = FetchEvent {
            dataset: "quote".into(),
            key: "A".into(),
            at_s: 1.0,
            origin: FetchOrigin::Demand,
            ok: true,
            upstream_s: None,
            sent: true,
            batched: false,
        };
        assert!(!sink.record_fetch(ev));
        assert_eq!(sink.counters().dropped_fetches.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn full_eviction_channel_counts_drops_instead_of_blocking() {
        let (sink, mut rx) = event_channels(4, 1);
        let ev = |key: &str| EvictionEvent {
            dataset: "quote".into(),
            key: key.into(),
            at_s: 2.0,
            fetched_at_s: 1.0,
        };
        assert!(sink.record_eviction(ev("A")));
        assert!(!sink.record_eviction(ev("B")));
        assert_eq!(sink.counters().dropped_evictions.load(Ordering::Relaxed), 1);
        assert_eq!(rx.evictions.try_recv().unwrap().key.as_ref(), "A");
        assert_eq!(sink.counters().dropped_accesses.load(Ordering::Relaxed), 0);
    }
}
