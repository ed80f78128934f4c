//! The event merger: client accesses, fetch completions and store
//! evictions come in on three channels and reach the engines in one time
//! order.
//!
//! Each batch is applied sorted by time, at equal times accesses first,
//! then fetches, then evictions (an access before the fetch its miss
//! caused, a fetch before the eviction of what it stored). Times are
//! clamped to the latest instant handed to an engine (a sidecar's `ts` may
//! be old) and never past the clock.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::mpsc;

use super::clock::DriverClock;
use super::dataset::DatasetState;
use crate::events::{AccessEvent, EventReceivers, EvictionEvent, FetchEvent};

/// Most events taken from one channel per wake-up.
const BATCH: usize = 4096;
/// Most events of one kind in one applied batch.
const MAX_BATCH: usize = 4 * BATCH;

/// The kinds of events, in the order they are applied at equal times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EventKind {
    Access,
    Fetch,
    Eviction,
}

/// Event counters of the driver.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct EventFigures {
    /// Access events applied.
    pub accesses: u64,
    /// Fetch events applied.
    pub fetches: u64,
    /// Access events dropped by the request path (channel full).
    pub dropped_accesses: u64,
    /// Fetch events dropped by the request path (channel full).
    pub dropped_fetches: u64,
    /// Always 0, kept for the shape of `/warming/status`: fetch events
    /// carry the engine's strategy id, so none has an unknown origin.
    #[serde(serialize_with = "always_zero")]
    #[schema(value_type = u64)]
    pub unknown_origin: (),
    /// Store eviction events applied (the memory store's size cap).
    pub evictions: u64,
    /// Eviction events dropped by the store (channel full).
    pub dropped_evictions: u64,
}

/// Serializes a retired counter as 0.
fn always_zero<S: serde::Serializer>(_: &(), s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(0)
}

/// Which channels are still open.
struct Open {
    accesses: bool,
    fetches: bool,
    evictions: bool,
}

/// The three event channels, their received events, and where each
/// dataset's events go.
pub(super) struct EventMerger {
    rx: EventReceivers,
    accesses: Vec<AccessEvent>,
    fetches: Vec<FetchEvent>,
    evictions: Vec<EvictionEvent>,
    open: Open,
    /// Dataset name → index in the driver's datasets.
    index: HashMap<Arc<str>, usize>,
    /// Counted here; the drop counts are the event sink's.
    figures: EventFigures,
}

impl EventMerger {
    /// A merger of `rx` for `datasets` (in the driver's order).
    pub(super) fn new(rx: EventReceivers, datasets: &[DatasetState]) -> Self {
        let index = datasets
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.clone(), i))
            .collect();
        Self {
            rx,
            accesses: Vec::with_capacity(BATCH),
            fetches: Vec::with_capacity(BATCH),
            evictions: Vec::new(),
            open: Open {
                accesses: true,
                fetches: true,
                evictions: true,
            },
            index,
            figures: EventFigures::default(),
        }
    }

    /// Whether any channel is still open.
    pub(super) fn is_open(&self) -> bool {
        self.open.accesses || self.open.fetches || self.open.evictions
    }

    /// The counters so far (drop counts left at zero).
    pub(super) fn figures(&self) -> EventFigures {
        self.figures
    }

    /// Waits until events arrive on an open channel, accesses first, or a
    /// channel closes. Cancel safe: what was received stays buffered for
    /// [`EventMerger::apply`].
    pub(super) async fn recv(&mut self) {
        let (rx, open) = (&mut self.rx, &mut self.open);
        tokio::select! {
            biased;
            n = rx.accesses.recv_many(&mut self.accesses, BATCH), if open.accesses => {
                open.accesses = n > 0;
            }
            n = rx.fetches.recv_many(&mut self.fetches, BATCH), if open.fetches => {
                open.fetches = n > 0;
            }
            n = rx.evictions.recv_many(&mut self.evictions, BATCH), if open.evictions => {
                open.evictions = n > 0;
            }
            else => {}
        }
    }

    /// Takes whatever else is queued, then applies every received event to
    /// its dataset's engine in time order; returns whether any was.
    pub(super) fn apply(&mut self, datasets: &mut [DatasetState], time: &mut DriverClock) -> bool {
        take_queued(&mut self.rx.accesses, &mut self.accesses);
        take_queued(&mut self.rx.fetches, &mut self.fetches);
        take_queued(&mut self.rx.evictions, &mut self.evictions);
        if self.accesses.is_empty() && self.fetches.is_empty() && self.evictions.is_empty() {
            return false;
        }
        let clock_s = time.now_s();
        let mut latest = time.engine_s();
        for (at_s, kind, i) in self.time_order() {
            // Clamp: never before what the engines saw, never past the clock.
            let t = at_s.min(clock_s).max(latest);
            latest = t;
            self.apply_one(datasets, t, kind, i);
        }
        time.handed(latest);
        self.accesses.clear();
        self.fetches.clear();
        self.evictions.clear();
        true
    }

    /// The received events as (time, kind, index), sorted.
    fn time_order(&self) -> Vec<(f64, EventKind, usize)> {
        let mut order: Vec<(f64, EventKind, usize)> =
            Vec::with_capacity(self.accesses.len() + self.fetches.len() + self.evictions.len());
        order.extend(
            self.accesses
                .iter()
                .enumerate()
                .map(|(i, e)| (e.at_s, EventKind::Access, i)),
        );
        order.extend(
            self.fetches
                .iter()
                .enumerate()
                .map(|(i, e)| (e.at_s, EventKind::Fetch, i)),
        );
        order.extend(
            self.evictions
                .iter()
                .enumerate()
                .map(|(i, e)| (e.at_s, EventKind::Eviction, i)),
        );
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        order
    }

    /// Applies the `i`th received event of `kind` at `t` (already clamped);
    /// an event of an unknown dataset is ignored.
    fn apply_one(&mut self, datasets: &mut [DatasetState], t: f64, kind: EventKind, i: usize) {
        match kind {
            EventKind::Access => {
                let ev = &self.accesses[i];
                if let Some(&d) = self.index.get(&ev.dataset) {
                    datasets[d].on_access(t, ev);
                    self.figures.accesses += 1;
                }
            }
            EventKind::Fetch => {
                let ev = &self.fetches[i];
                if let Some(&d) = self.index.get(&ev.dataset) {
                    datasets[d].on_fetch(t, ev);
                    self.figures.fetches += 1;
                }
            }
            EventKind::Eviction => {
                let ev = &self.evictions[i];
                if let Some(&d) = self.index.get(&ev.dataset) {
                    datasets[d].on_evicted(ev);
                    self.figures.evictions += 1;
                }
            }
        }
    }
}

/// Moves events already queued on `rx` into `buf`, up to [`MAX_BATCH`].
fn take_queued<T>(rx: &mut mpsc::Receiver<T>, buf: &mut Vec<T>) {
    while buf.len() < MAX_BATCH
        && let Ok(ev) = rx.try_recv()
    {
        buf.push(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::driver::dataset::test_dataset;
    use crate::events::{FetchOrigin, event_channels};

    /// Tuesday 2024-06-18 10:00 New York.
    const T: f64 = 1_718_719_200.0;

    #[derive(Debug)]
    struct Fixed(f64);

    impl Clock for Fixed {
        fn now_s(&self) -> f64 {
            self.0
        }
    }

    fn access(dataset: &str, at_s: f64) -> AccessEvent {
        AccessEvent::reported_miss(dataset, "A", at_s)
    }

    #[test]
    fn events_reach_the_engine_in_time_order_with_times_clamped() {
        let (sink, rx) = event_channels(16, 16);
        let mut datasets = vec![test_dataset()];
        let mut merger = EventMerger::new(rx, &datasets);
        let mut time = DriverClock::new(Arc::new(Fixed(T + 10.0)));
        assert!(!merger.apply(&mut datasets, &mut time), "nothing queued");
        sink.record_fetch(FetchEvent {
            dataset: "quote".into(),
            key: "A".into(),
            at_s: T,
            origin: FetchOrigin::Demand,
            ok: true,
            upstream_s: None,
            sent: true,
            batched: false,
        });
        // Sent after the fetch, at the same time: applied before it, a miss.
        sink.record_access(access("quote", T));
        // From the future (stale by then): clamped to the clock, a hit.
        sink.record_access(access("quote", T + 100.0));
        sink.record_access(access("elsewhere", T));
        assert!(merger.apply(&mut datasets, &mut time));
        let c = datasets[0].engine.stats().total;
        assert_eq!((c.requests, c.hits, c.demand_fetches), (2, 1, 1));
        assert_eq!(time.engine_s(), T + 10.0);
        // From before what the engine saw (before the fetch): clamped up to
        // it, a hit.
        sink.record_access(access("quote", T - 100.0));
        assert!(merger.apply(&mut datasets, &mut time));
        assert_eq!(datasets[0].engine.stats().total.hits, 2);
        let f = merger.figures();
        assert_eq!((f.accesses, f.fetches, f.evictions), (3, 1, 0));
    }

    #[test]
    fn the_retired_unknown_origin_counter_shows_as_zero() {
        let f = EventFigures {
            fetches: 3,
            ..EventFigures::default()
        };
        let v = serde_json::to_value(f).unwrap();
        assert_eq!(
            (v["fetches"].as_u64(), v["unknown_origin"].as_u64()),
            (Some(3), Some(0))
        );
    }
}
