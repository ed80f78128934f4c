//! Fetches in flight on virtual time: the replay's upstream latency
//! (docs/replay-semantics.md, "Upstream latency").
//!
//! A fetch started at `f` lands at `f + L`, when the engine hears of it
//! ([`Engine::on_fetched`]). Until then a request for its key is coalesced:
//! it makes no call and is not a hit. With `L = 0` a fetch lands at once,
//! inside the call that starts it, which is exactly the zero-latency model.
//!
//! Order of events between two requests: landings and engine timers run in
//! time order, a landing before a timer due at the same instant, each
//! followed by the warming fetches the engine then orders.

use prewarm_core::cache::{FetchOrigin, KeyId};
use prewarm_core::engine::{Engine, WarmOrder};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Requests that waited on a fetch already in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Coalescing {
    /// Coalesced requests.
    pub requests: u64,
    /// Their total wait, seconds.
    pub wait_s: f64,
}

#[derive(Debug, Clone, Copy)]
struct Landing {
    at_s: f64,
    seq: u64,
    key: KeyId,
    origin: FetchOrigin,
}
impl PartialEq for Landing {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Landing {}
impl PartialOrd for Landing {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Landing {
    fn cmp(&self, o: &Self) -> Ordering {
        self.at_s.total_cmp(&o.at_s).then(self.seq.cmp(&o.seq))
    }
}

/// The fetches in flight of one replay.
#[derive(Debug, Default)]
pub struct Flights {
    latency_s: f64,
    landings: BinaryHeap<Reverse<Landing>>,
    /// Landing time of each key's fetch in flight.
    in_flight: FxHashMap<KeyId, f64>,
    seq: u64,
    coalescing: Coalescing,
}

impl Flights {
    /// Fetches that take `latency_s` (≥ 0).
    pub fn new(latency_s: f64) -> Self {
        Flights {
            latency_s,
            ..Flights::default()
        }
    }

    /// The requests coalesced so far.
    pub fn coalescing(&self) -> Coalescing {
        self.coalescing
    }

    /// Runs every landing and engine timer due at or before `until_s`, in
    /// time order (a landing first on a tie), each followed by the warming
    /// it lets the engine order.
    pub fn run_until(&mut self, engine: &mut Engine, until_s: f64) {
        loop {
            let landing = self.landings.peek().map(|l| l.0.at_s);
            let timer = engine.next_timeout();
            match (landing, timer) {
                (Some(l), t) if l <= until_s && t.is_none_or(|t| l <= t) => {
                    let Reverse(f) = self.landings.pop().expect("peeked");
                    self.in_flight.remove(&f.key);
                    engine.on_fetched(f.at_s, f.key, f.origin, true);
                    self.perform_warming(engine, f.at_s);
                }
                (_, Some(t)) if t <= until_s => {
                    engine.handle_timeout(t);
                    self.perform_warming(engine, t);
                }
                _ => return,
            }
        }
    }

    /// A request at `now_s` for `key` that missed: coalesced if a fetch of
    /// `key` is in flight, otherwise it starts a demand fetch.
    pub fn on_miss(&mut self, engine: &mut Engine, now_s: f64, key: KeyId) {
        if let Some(&land_s) = self.in_flight.get(&key) {
            self.coalescing.requests += 1;
            self.coalescing.wait_s += land_s - now_s;
        } else if self.latency_s == 0.0 {
            engine.on_fetched(now_s, key, FetchOrigin::Demand, true);
        } else {
            engine.on_fetch_started(now_s, key);
            self.start(now_s, key, FetchOrigin::Demand);
        }
    }

    /// Starts every warming fetch the engine orders at `now_s`.
    pub fn perform_warming(&mut self, engine: &mut Engine, now_s: f64) {
        while let Some(order) = engine.poll_warm(now_s) {
            self.perform(engine, now_s, order);
        }
    }

    /// Starts the warming fetch of `order` at `now_s` (an order the engine
    /// gave otherwise than through `poll_warm`: a start-up cycle's).
    pub fn perform(&mut self, engine: &mut Engine, now_s: f64, order: WarmOrder) {
        let origin = FetchOrigin::Warm(order.strategy);
        if self.latency_s == 0.0 {
            engine.on_fetched(now_s, order.key, origin, true);
        } else {
            self.start(now_s, order.key, origin);
        }
    }

    fn start(&mut self, now_s: f64, key: KeyId, origin: FetchOrigin) {
        let at_s = now_s + self.latency_s;
        self.in_flight.insert(key, at_s);
        self.seq += 1;
        self.landings.push(Reverse(Landing {
            at_s,
            seq: self.seq,
            key,
            origin,
        }));
    }
}
