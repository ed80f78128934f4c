//! What warming bought and what it cost.
//!
//! Every figure `prewarm replay` prints and the daemon exports is counted
//! here, by the engine, so the two drivers cannot disagree on a definition.
//! Definitions follow `docs/replay-semantics.md`:
//! - a hit is credited to a strategy when the entry it hit was last fetched
//!   by a warming fetch of that strategy;
//! - a warming fetch is *used* when its entry served at least one hit before
//!   it went stale or was replaced;
//! - it is *wasted* when its entry left the cache without serving one:
//!   it expired, was replaced by a newer fetch, evicted or purged
//!   ([`crate::cache::CacheModel::take_wasted`]), or the fetch failed;
//! - until then it is *pending* (in flight, or its entry is fresh and
//!   unused), so warming fetches = used + wasted + pending.

use crate::UnixSeconds;
use crate::strategy::StrategyId;
use serde::Serialize;
use std::collections::VecDeque;

/// Counters of one strategy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StrategyCounters {
    /// Warming fetches charged to the strategy (keys fetched, those that
    /// rode in another key's batch call included).
    pub warm_fetches: u64,
    /// Of those, the keys that rode in a batch call another warming order
    /// paid for: fetched without an upstream call of their own.
    pub warm_batched: u64,
    /// Of those, the ones that served at least one hit.
    pub warm_used: u64,
    /// Of those, the ones whose entry left the cache unused (or that
    /// failed).
    pub warm_wasted: u64,
    /// Hits on entries the strategy fetched.
    pub hits: u64,
}

impl StrategyCounters {
    /// Warming fetches neither used nor wasted yet: in flight, or their
    /// entry is fresh and unused. Over a period that is not the whole run
    /// it is the period's fetches less what the period settled (never
    /// below 0).
    pub fn warm_pending(&self) -> u64 {
        self.warm_fetches
            .saturating_sub(self.warm_used)
            .saturating_sub(self.warm_wasted)
    }

    fn add(&mut self, o: &StrategyCounters) {
        self.warm_fetches += o.warm_fetches;
        self.warm_batched += o.warm_batched;
        self.warm_used += o.warm_used;
        self.warm_wasted += o.warm_wasted;
        self.hits += o.hits;
    }
}

/// Counters over some period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Accesses.
    pub requests: u64,
    /// Accesses that found a fresh entry.
    pub hits: u64,
    /// Keys fetched because of a miss (each an upstream call, unless it
    /// rode in a batch call: `demand_batched`).
    pub demand_fetches: u64,
    /// Of those, keys fetched in a batch call (a client's batch read)
    /// that another key of the same call already counted.
    pub demand_batched: u64,
    /// Per strategy, indexed by [`StrategyId::index`].
    pub per_strategy: [StrategyCounters; StrategyId::COUNT],
}

impl Counters {
    /// Adds `other`'s counts to these (e.g. the counters of the engines of
    /// successive processes, one run across restarts).
    pub fn merge(&mut self, other: &Counters) {
        self.requests += other.requests;
        self.hits += other.hits;
        self.demand_fetches += other.demand_fetches;
        self.demand_batched += other.demand_batched;
        for (s, o) in self.per_strategy.iter_mut().zip(&other.per_strategy) {
            s.add(o);
        }
    }

    /// Warming fetches of all strategies.
    pub fn warm_fetches(&self) -> u64 {
        self.per_strategy.iter().map(|s| s.warm_fetches).sum()
    }
    /// Used warming fetches of all strategies.
    pub fn warm_used(&self) -> u64 {
        self.per_strategy.iter().map(|s| s.warm_used).sum()
    }
    /// Wasted warming fetches of all strategies.
    pub fn warm_wasted(&self) -> u64 {
        self.per_strategy.iter().map(|s| s.warm_wasted).sum()
    }
    /// Pending warming fetches of all strategies
    /// ([`StrategyCounters::warm_pending`]).
    pub fn warm_pending(&self) -> u64 {
        self.per_strategy.iter().map(|s| s.warm_pending()).sum()
    }
    /// Warming keys of all strategies that rode in another order's batch
    /// call.
    pub fn warm_batched(&self) -> u64 {
        self.per_strategy.iter().map(|s| s.warm_batched).sum()
    }
    /// Upstream calls warming made: its fetches less the keys that rode
    /// in a batch call.
    pub fn warm_calls(&self) -> u64 {
        self.warm_fetches().saturating_sub(self.warm_batched())
    }
    /// Upstream calls demand made: its fetches less the keys that rode in
    /// a batch call.
    pub fn demand_calls(&self) -> u64 {
        self.demand_fetches.saturating_sub(self.demand_batched)
    }
    /// Upstream calls: demand calls plus warming calls.
    pub fn api_calls(&self) -> u64 {
        self.demand_calls() + self.warm_calls()
    }
    /// Requests that were not hits.
    pub fn misses(&self) -> u64 {
        self.requests - self.hits
    }
    /// The counters of one strategy.
    pub fn strategy(&self, id: StrategyId) -> &StrategyCounters {
        &self.per_strategy[id.index()]
    }

    fn add(&mut self, ev: Event) {
        match ev {
            Event::Request { hit, credited } => {
                self.requests += 1;
                if hit {
                    self.hits += 1;
                }
                if let Some(s) = credited {
                    self.per_strategy[s.index()].hits += 1;
                }
            }
            Event::DemandFetch => self.demand_fetches += 1,
            Event::DemandRodeAlong => self.demand_batched += 1,
            Event::WarmFetch(s) => self.per_strategy[s.index()].warm_fetches += 1,
            Event::WarmRideAlong(s) => {
                let c = &mut self.per_strategy[s.index()];
                c.warm_fetches += 1;
                c.warm_batched += 1;
            }
            Event::WarmTakenBack(s) => {
                let n = &mut self.per_strategy[s.index()].warm_fetches;
                *n = n.saturating_sub(1);
            }
            Event::RideAlongTakenBack(s) => {
                let c = &mut self.per_strategy[s.index()];
                c.warm_fetches = c.warm_fetches.saturating_sub(1);
                c.warm_batched = c.warm_batched.saturating_sub(1);
            }
            Event::WarmUsed(s) => self.per_strategy[s.index()].warm_used += 1,
            Event::WarmWasted(s) => self.per_strategy[s.index()].warm_wasted += 1,
        }
    }
}

/// One countable thing that happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An access; `credited` is the strategy whose fetch served the hit.
    Request {
        /// Whether it was a hit.
        hit: bool,
        /// The strategy credited with the hit.
        credited: Option<StrategyId>,
    },
    /// A demand fetch.
    DemandFetch,
    /// The demand fetch just counted rode in a batch call another key of
    /// the call counted (the figures count calls once; the cost account
    /// counts keys, as its shadow does).
    DemandRodeAlong,
    /// A warming fetch that pays for an upstream call.
    WarmFetch(StrategyId),
    /// A warming fetch that rides in the batch call of the order before
    /// it: a key fetched, no call of its own.
    WarmRideAlong(StrategyId),
    /// A warming fetch counted when its order was issued that made no
    /// upstream call after all; recorded at the order's issue time.
    WarmTakenBack(StrategyId),
    /// A key that was to ride in a batch call and was not fetched by it;
    /// recorded at the order's issue time.
    RideAlongTakenBack(StrategyId),
    /// A warming fetch served its first hit.
    WarmUsed(StrategyId),
    /// A warming fetch's entry left the cache unused, or the fetch failed.
    WarmWasted(StrategyId),
}

/// Counters in consecutive time buckets, keeping the newest `max_buckets`.
#[derive(Debug, Clone)]
pub struct Series {
    bucket_s: f64,
    max_buckets: usize,
    /// (bucket index = floor(t / bucket_s), counters)
    buckets: VecDeque<(i64, Counters)>,
}

impl Series {
    /// Buckets of `bucket_s` seconds, at most `max_buckets` kept.
    pub fn new(bucket_s: f64, max_buckets: usize) -> Self {
        Series {
            bucket_s,
            max_buckets: max_buckets.max(1),
            buckets: VecDeque::new(),
        }
    }

    fn add(&mut self, now_s: UnixSeconds, ev: Event) {
        let ix = (now_s / self.bucket_s).floor() as i64;
        match self.buckets.back_mut() {
            Some((last, c)) if *last == ix => return c.add(ev),
            // A late event (daemon reports out of order) lands in its bucket.
            Some((last, _)) if *last > ix => {
                if let Some((_, c)) = self.buckets.iter_mut().rev().find(|(b, _)| *b == ix) {
                    c.add(ev);
                }
                return;
            }
            _ => {}
        }
        let mut c = Counters::default();
        c.add(ev);
        self.buckets.push_back((ix, c));
        while self.buckets.len() > self.max_buckets {
            self.buckets.pop_front();
        }
    }

    /// The buckets, oldest first, as (bucket start, counters).
    pub fn buckets(&self) -> impl Iterator<Item = (UnixSeconds, &Counters)> {
        self.buckets
            .iter()
            .map(|(ix, c)| (*ix as f64 * self.bucket_s, c))
    }

    /// Sum of the buckets that start at or after `since_s`.
    pub fn sum_since(&self, since_s: UnixSeconds) -> Counters {
        let mut total = Counters::default();
        for (start, c) in self.buckets() {
            if start + self.bucket_s > since_s {
                total.merge(c);
            }
        }
        total
    }
}

/// Totals since start plus optional time series.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Totals since start.
    pub total: Counters,
    series: Vec<Series>,
}

impl Stats {
    /// Adds a time series that will be kept up to date.
    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// The time series, in the order they were added.
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// Counts `ev` at `now_s`.
    #[inline]
    pub fn record(&mut self, now_s: UnixSeconds, ev: Event) {
        self.total.add(ev);
        for s in &mut self.series {
            s.add(now_s, ev);
        }
    }
}

/// `num / den`, 0 when `den` is 0.
pub fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up() {
        let mut s = Stats::default().with_series(Series::new(60.0, 10));
        s.record(
            0.0,
            Event::Request {
                hit: false,
                credited: None,
            },
        );
        s.record(0.0, Event::DemandFetch);
        s.record(1.0, Event::WarmFetch(StrategyId::Popular));
        s.record(
            2.0,
            Event::Request {
                hit: true,
                credited: Some(StrategyId::Popular),
            },
        );
        s.record(2.0, Event::WarmUsed(StrategyId::Popular));
        s.record(
            61.0,
            Event::Request {
                hit: true,
                credited: None,
            },
        );
        let t = s.total;
        assert_eq!((t.requests, t.hits, t.misses()), (3, 2, 1));
        assert_eq!(t.api_calls(), 2);
        assert_eq!(t.strategy(StrategyId::Popular).hits, 1);
        assert_eq!(t.warm_used(), 1);
        let buckets: Vec<_> = s.series()[0]
            .buckets()
            .map(|(b, c)| (b, c.requests))
            .collect();
        assert_eq!(buckets, vec![(0.0, 2), (60.0, 1)]);
        assert_eq!(s.series()[0].sum_since(60.0).requests, 1);
    }

    #[test]
    fn a_warm_fetch_taken_back_leaves_its_bucket_and_the_total() {
        let mut s = Stats::default().with_series(Series::new(60.0, 10));
        s.record(1.0, Event::WarmFetch(StrategyId::Popular));
        s.record(70.0, Event::WarmFetch(StrategyId::Popular));
        s.record(1.0, Event::WarmTakenBack(StrategyId::Popular));
        assert_eq!(s.total.warm_fetches(), 1);
        let per_bucket: Vec<u64> = s.series()[0]
            .buckets()
            .map(|(_, c)| c.warm_fetches())
            .collect();
        assert_eq!(
            per_bucket,
            [0, 1],
            "taken back from the bucket of its issue"
        );
        s.record(70.0, Event::WarmTakenBack(StrategyId::Popular));
        s.record(70.0, Event::WarmTakenBack(StrategyId::Popular));
        assert_eq!(s.total.warm_fetches(), 0, "never below zero");
    }

    #[test]
    fn warm_fetches_are_used_wasted_or_pending() {
        let mut s = Stats::default().with_series(Series::new(60.0, 10));
        for _ in 0..4 {
            s.record(0.0, Event::WarmFetch(StrategyId::Popular));
        }
        let popular = |s: &Stats| *s.total.strategy(StrategyId::Popular);
        assert_eq!(popular(&s).warm_pending(), 4, "fresh and unused: pending");
        s.record(5.0, Event::WarmUsed(StrategyId::Popular));
        s.record(70.0, Event::WarmWasted(StrategyId::Popular));
        let p = popular(&s);
        assert_eq!((p.warm_used, p.warm_wasted, p.warm_pending()), (1, 1, 2));
        assert_eq!(
            p.warm_fetches,
            p.warm_used + p.warm_wasted + p.warm_pending()
        );
        assert_eq!(s.total.warm_wasted(), 1);
        assert_eq!(s.total.warm_pending(), 2);
        let late = s.series()[0].sum_since(60.0);
        assert_eq!((late.warm_fetches(), late.warm_wasted()), (0, 1));
        assert_eq!(late.warm_pending(), 0, "never below 0 in a window");
    }

    #[test]
    fn series_keeps_only_the_newest_buckets() {
        let mut s = Series::new(1.0, 3);
        for t in 0..10 {
            s.add(f64::from(t), Event::DemandFetch);
        }
        let starts: Vec<f64> = s.buckets().map(|(b, _)| b).collect();
        assert_eq!(starts, vec![7.0, 8.0, 9.0]);
    }

    #[test]
    fn ratio_of_zero_is_zero() {
        assert_eq!(ratio(3, 0), 0.0);
        assert_eq!(ratio(1, 4), 0.25);
    }
}
