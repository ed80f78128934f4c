//! The seams through which the engine learns what happened.
//!
//! Invariants:
//! - Sending never blocks and never fails a request: `try_send`, and on a
//!   full or closed channel a dropped-event counter (and a metric) goes up.
//! - Only client accesses become [`AccessEvent`]s; warming fetches appear
//!   only as [`FetchEvent`]s with [`FetchOrigin::Warm`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

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
}

/// Why an upstream fetch was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOrigin {
    /// A client missed and is waiting.
    Demand,
    /// Warming, charged to the named strategy.
    Warm(Arc<str>),
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
}

/// Counts of events that could not be queued.
#[derive(Debug, Default)]
pub struct EventCounters {
    /// Access events dropped because the channel was full or closed.
    pub dropped_accesses: AtomicU64,
    /// Fetch events dropped because the channel was full or closed.
    pub dropped_fetches: AtomicU64,
}

/// The sending side, held by the proxy and the read-through layer.
#[derive(Debug, Clone)]
pub struct EventSink {
    access_tx: mpsc::Sender<AccessEvent>,
    fetch_tx: mpsc::Sender<FetchEvent>,
    counters: Arc<EventCounters>,
}

/// The receiving side, drained in batches by the engine driver.
#[derive(Debug)]
pub struct EventReceivers {
    /// Client accesses.
    pub accesses: mpsc::Receiver<AccessEvent>,
    /// Fetch completions.
    pub fetches: mpsc::Receiver<FetchEvent>,
}

/// Creates both bounded channels with the given capacities.
pub fn event_channels(
    access_capacity: usize,
    fetch_capacity: usize,
) -> (EventSink, EventReceivers) {
    let (access_tx, accesses) = mpsc::channel(access_capacity.max(1));
    let (fetch_tx, fetches) = mpsc::channel(fetch_capacity.max(1));
    let sink = EventSink {
        access_tx,
        fetch_tx,
        counters: Arc::new(EventCounters::default()),
    };
    (sink, EventReceivers { accesses, fetches })
}

impl EventSink {
    /// Queues an access without blocking; returns false if it was dropped.
    pub fn record_access(&self, event: AccessEvent) -> bool {
        match self.access_tx.try_send(event) {
            Ok(()) => true,
            Err(_) => {
                self.counters
                    .dropped_accesses
                    .fetch_add(1, Ordering::Relaxed);
                metrics::counter!("prewarm_access_events_dropped_total").increment(1);
                false
            }
        }
    }

    /// Queues a fetch completion without blocking; returns false if dropped.
    pub fn record_fetch(&self, event: FetchEvent) -> bool {
        match self.fetch_tx.try_send(event) {
            Ok(()) => true,
            Err(_) => {
                self.counters
                    .dropped_fetches
                    .fetch_add(1, Ordering::Relaxed);
                metrics::counter!("prewarm_fetch_events_dropped_total").increment(1);
                false
            }
        }
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
        AccessEvent {
            dataset: "quote".into(),
            key: key.into(),
            client: None,
            at_s: 1.0,
            hit: false,
        }
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
        };
        assert!(!sink.record_fetch(ev));
        assert_eq!(sink.counters().dropped_fetches.load(Ordering::Relaxed), 1);
    }
}
