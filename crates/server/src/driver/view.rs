//! The read-only view of the driver, published after each batch (at most a
//! few times a second) for the monitoring API. Readers never wait on the
//! driver: they clone an `Arc` out of a watch channel. The counters shown
//! are defined beside their owners (datasets, event merger, cycle book)
//! and re-exported here.

use std::collections::BTreeMap;

use prewarm_core::calendar::MarketSession;
use prewarm_core::cost::PriceFigures;
use prewarm_core::model::figures::ModelFigures;
use prewarm_core::stats::{Counters, ratio};
use prewarm_core::strategy::StrategyId;
use prewarm_core::tracker::{
    GroupTrend, KeyScore, NameKeys, Prediction, TrackerStats, TrendingKey,
};
use prewarm_core::ttl::SessionTtls;
use serde::Serialize;

use super::cycle::CycleFigures;
pub use super::dataset::{CycleCounts, Evictions, SnapshotInfo, WarmOutcomes};
use super::dataset::{DatasetState, HISTORY_BUCKET_S};
use super::gate::GateState;
use super::history::History;
pub use super::merge::EventFigures;
use super::schedule::Job;
use super::settings::OutsideSessions;

/// Everything `/warming/stats` and `/warming/status` show.
#[derive(Debug, Clone, Serialize)]
pub struct DriverSnapshot {
    /// When it was taken (Unix seconds, the driver's clock).
    pub at_s: f64,
    /// `warming.enabled`.
    pub warming_enabled: bool,
    /// The market session now.
    pub session: MarketSession,
    /// `warming.outside_sessions`.
    pub outside_sessions: OutsideSessions,
    /// Set while warming waits on the upstream (a 429 pause, an open
    /// circuit or the quota): until then (Unix seconds; `None` also when
    /// the wait has no known end, as when the demand reserve takes the
    /// whole quota).
    pub upstream_paused_until_s: Option<f64>,
    /// Whether the upstream quota (`upstream.rate_limit_per_min` less the
    /// demand reserve) leaves warming no call now.
    pub upstream_quota_held: bool,
    /// Warming fetches in flight.
    pub warms_in_flight: usize,
    /// Bound on warming fetches in flight.
    pub max_concurrent: usize,
    /// Cycle fetches still waiting for a slot.
    pub cycle_queued: usize,
    /// Cycles run, in progress, and the last one's counts.
    pub cycles: CycleFigures,
    /// The start-up cycle after a restart.
    pub startup: super::startup::StartupProgress,
    /// Events applied to the engines and dropped on the way.
    pub events: EventFigures,
    /// The scheduled jobs with their last and next runs.
    pub jobs: Vec<Job>,
    /// Per dataset.
    pub datasets: BTreeMap<String, DatasetView>,
}

impl DriverSnapshot {
    /// An empty view (before the driver's first publication).
    pub fn empty() -> Self {
        Self {
            at_s: 0.0,
            warming_enabled: false,
            session: MarketSession::Closed,
            outside_sessions: OutsideSessions::Run,
            upstream_paused_until_s: None,
            upstream_quota_held: false,
            warms_in_flight: 0,
            max_concurrent: 0,
            cycle_queued: 0,
            cycles: CycleFigures::default(),
            startup: super::startup::StartupProgress::not_started(),
            events: EventFigures::default(),
            jobs: Vec::new(),
            datasets: BTreeMap::new(),
        }
    }
}

/// Most points of price history a view holds (a day of steps, thinned).
pub const PRICE_POINTS: usize = 200;

/// One dataset's engine, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetView {
    /// Freshness lifetime, seconds.
    pub ttl_s: f64,
    /// `[datasets.NAME.ttl_by_session]`: the TTL per market session, when
    /// set (it then overrides `ttl_s` session by session).
    #[serde(skip)]
    pub ttl_by_session: Option<SessionTtls>,
    /// Warming budget, fetches per minute.
    pub warm_rate_per_min: f64,
    /// Warming tokens available now.
    pub budget_tokens: f64,
    /// Candidates waiting for budget or their window.
    pub queued_candidates: usize,
    /// API calls over those of the same traffic without warming, over
    /// about the last day (the engine's cost governor).
    pub cost_ratio_recent: f64,
    /// The cost cap's price, its account and the price over the last day
    /// (at most [`PRICE_POINTS`] points).
    pub price: PriceFigures,
    /// The outside-session gate now.
    pub gate: GateState,
    /// Since start.
    pub total: Figures,
    /// Since the last midnight (New York) cleanup, or since start.
    pub today: Figures,
    /// What warming calls returned.
    pub warm_outcomes: WarmOutcomes,
    /// The tracker's counters and top keys.
    pub tracker: TrackerStats,
    /// The snapshot file and its last save and restore.
    pub snapshot: SnapshotInfo,
    /// Entries the engine counts as cached (fresh or stale).
    pub cached_entries: usize,
    /// Store evictions applied, and of those, the ones of an entry the
    /// engine counted as cached (the rest were of entries it had already
    /// dropped, or overtook their fetch event).
    pub evictions: Evictions,
    /// The last hour, bucket by bucket.
    pub history: History,
}

impl DatasetView {
    /// The view of `ds` at `now_s`, its gate being `gate`.
    pub(super) fn new(ds: &DatasetState, now_s: f64, gate: GateState) -> Self {
        let total = ds.engine.stats().total;
        let mut today_cycles = ds.cycle_fetches;
        for (t, s) in today_cycles.iter_mut().zip(ds.day_start.1.iter()) {
            *t = t.saturating_sub(*s);
        }
        let shadow = ds.engine.cost_cap().totals().1;
        let today_shadow = shadow.saturating_sub(ds.day_start.2);
        let today = counters_since(&total, &ds.day_start.0);
        DatasetView {
            ttl_s: ds.engine.config().ttl_s,
            ttl_by_session: ds.engine.config().ttl_by_session,
            warm_rate_per_min: ds.engine.config().warming.rate_limit_per_min,
            budget_tokens: ds.engine.budget_tokens(now_s),
            queued_candidates: ds.engine.queued_candidates(),
            cost_ratio_recent: ds.engine.cost_ratio(),
            price: PriceFigures::of(ds.engine.cost_cap(), PRICE_POINTS),
            gate,
            total: Figures::new(&total, &ds.cycle_fetches, shadow),
            today: Figures::new(&today, &today_cycles, today_shadow),
            warm_outcomes: ds.outcomes,
            tracker: ds.engine.tracker_stats(now_s),
            snapshot: ds.snapshot.clone(),
            cached_entries: ds.engine.cache().len(),
            evictions: ds.evictions,
            history: ds
                .engine
                .stats()
                .series()
                .first()
                .map(|s| History::of(s, HISTORY_BUCKET_S))
                .unwrap_or_default(),
        }
    }
}

/// Counters with the derived ratios, as `prewarm replay` reports them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Figures {
    /// Accesses.
    pub requests: u64,
    /// Accesses that hit (by the engine's model of the cache).
    pub hits: u64,
    /// hits / requests.
    pub hit_rate: f64,
    /// Keys fetched because of a miss.
    pub demand_fetches: u64,
    /// Upstream calls made because of a miss: `demand_fetches` less the
    /// keys that rode in a client batch read's call.
    pub demand_calls: u64,
    /// Warming fetches (keys), cycles included.
    pub warm_fetches: u64,
    /// Upstream calls warming made: `warm_fetches` less the keys that rode
    /// in another key's batch call (equal without a batch endpoint).
    pub warm_calls: u64,
    /// Of `warm_fetches`, those of cycles (pre-market, run, `warm_*`).
    pub cycle_warm_fetches: u64,
    /// Warming fetches whose entry served a hit.
    pub warm_used: u64,
    /// Warming fetches whose entry left the cache unused (expired,
    /// replaced, evicted, purged) or that failed.
    pub warm_wasted: u64,
    /// Warming fetches neither used nor wasted yet: in flight or fresh and
    /// unused ([`prewarm_core::stats::StrategyCounters::warm_pending`]).
    pub warm_pending: u64,
    /// warm_used / warm_fetches.
    pub efficiency: f64,
    /// Demand fetches plus warming calls.
    pub api_calls: u64,
    /// API calls the engine's no-warming shadow made on the same accesses
    /// (what the traffic would have cost without warming, measured).
    pub shadow_api_calls: u64,
    /// Per strategy that did anything.
    pub strategies: BTreeMap<&'static str, StrategyFigures>,
}

/// One strategy's counters.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct StrategyFigures {
    /// Warming fetches charged to it, cycles included.
    pub warm_fetches: u64,
    /// Of `warm_fetches`, those of cycles.
    pub cycle_warm_fetches: u64,
    /// Of its fetches, the ones that served a hit.
    pub warm_used: u64,
    /// Of its fetches, the ones wasted ([`Figures::warm_wasted`]).
    pub warm_wasted: u64,
    /// Of its fetches, the ones pending ([`Figures::warm_pending`]).
    pub warm_pending: u64,
    /// Hits on entries it fetched.
    pub hits: u64,
}

impl Figures {
    /// Figures of `c`, whose warming fetches include the cycle fetches
    /// `cycles`, over a period in which the no-warming shadow made
    /// `shadow_api_calls` calls.
    pub fn new(c: &Counters, cycles: &CycleCounts, shadow_api_calls: u64) -> Self {
        let cycle: u64 = cycles.iter().sum();
        let mut strategies = BTreeMap::new();
        for id in StrategyId::ALL {
            let s = c.strategy(id);
            let m = cycles[id.index()];
            if s.warm_fetches + s.hits > 0 {
                strategies.insert(
                    id.name(),
                    StrategyFigures {
                        warm_fetches: s.warm_fetches,
                        cycle_warm_fetches: m,
                        warm_used: s.warm_used,
                        warm_wasted: s.warm_wasted,
                        warm_pending: s.warm_pending(),
                        hits: s.hits,
                    },
                );
            }
        }
        Figures {
            requests: c.requests,
            hits: c.hits,
            hit_rate: ratio(c.hits, c.requests),
            demand_fetches: c.demand_fetches,
            demand_calls: c.demand_calls(),
            warm_fetches: c.warm_fetches(),
            warm_calls: c.warm_calls(),
            cycle_warm_fetches: cycle,
            warm_used: c.warm_used(),
            warm_wasted: c.warm_wasted(),
            warm_pending: c.warm_pending(),
            efficiency: ratio(c.warm_used(), c.warm_fetches()),
            api_calls: c.api_calls(),
            shadow_api_calls,
            strategies,
        }
    }
}

/// `a - b`, field by field (saturating), for "since midnight" figures.
pub fn counters_since(a: &Counters, b: &Counters) -> Counters {
    let mut d = Counters {
        requests: a.requests.saturating_sub(b.requests),
        hits: a.hits.saturating_sub(b.hits),
        demand_fetches: a.demand_fetches.saturating_sub(b.demand_fetches),
        demand_batched: a.demand_batched.saturating_sub(b.demand_batched),
        per_strategy: a.per_strategy,
    };
    for (x, y) in d.per_strategy.iter_mut().zip(b.per_strategy.iter()) {
        x.warm_fetches = x.warm_fetches.saturating_sub(y.warm_fetches);
        x.warm_batched = x.warm_batched.saturating_sub(y.warm_batched);
        x.warm_used = x.warm_used.saturating_sub(y.warm_used);
        x.warm_wasted = x.warm_wasted.saturating_sub(y.warm_wasted);
        x.hits = x.hits.saturating_sub(y.hits);
    }
    d
}

/// What the tracker learned, for `/warming/patterns`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Patterns {
    /// The dataset.
    pub dataset: String,
    /// Most popular keys (decayed accesses).
    pub popular: Vec<KeyScore<String>>,
    /// Keys whose rate rises against their baseline.
    pub trending: Vec<TrendingKey<String>>,
    /// Keys expected within the next hour by their time-of-day profile.
    pub upcoming: Vec<KeyScore<String>>,
    /// Groups by lift.
    pub groups: Vec<GroupTrend>,
    /// Keys predicted to follow the asked key, when one was asked.
    pub next: Option<Vec<Prediction<String>>>,
    /// The learned demand model: examples trained on, calibration by tenth.
    pub model: ModelFigures,
}

impl Patterns {
    /// What `ds`'s tracker learned by `now_s`: at most `limit` keys of each
    /// kind, `upcoming` within `look_ahead_s`, and the keys predicted to
    /// follow `key` when one is asked.
    pub(super) fn new(
        ds: &DatasetState,
        now_s: f64,
        look_ahead_s: f64,
        limit: usize,
        key: Option<&str>,
    ) -> Self {
        let (t, keys) = (ds.engine.tracker(), ds.engine.keys());
        let window_s = t.config().trending_window_s;
        Patterns {
            dataset: ds.name.to_string(),
            popular: t.popular(now_s, limit).named(keys),
            trending: t.trending(now_s, window_s, limit).named(keys),
            upcoming: t.upcoming(now_s, look_ahead_s, limit).named(keys),
            groups: t.group_trends(now_s, limit),
            // A key the engine does not know predicts nothing.
            next: key.map(|k| {
                keys.get(k)
                    .map_or_else(Vec::new, |id| t.predict_next(id, 0.0, limit).named(keys))
            }),
            model: ModelFigures::of(ds.engine.learner()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_count_cycle_fetches_once_within_warm_fetches() {
        let mut c = Counters {
            requests: 10,
            hits: 6,
            demand_fetches: 4,
            ..Counters::default()
        };
        c.per_strategy[StrategyId::Popular.index()].warm_fetches = 4;
        c.per_strategy[StrategyId::Popular.index()].warm_used = 2;
        c.per_strategy[StrategyId::Popular.index()].hits = 3;
        let mut cycles = [0; StrategyId::COUNT];
        cycles[StrategyId::Popular.index()] = 2;
        let f = Figures::new(&c, &cycles, 7);
        assert_eq!(f.api_calls, 8);
        assert_eq!(f.efficiency, 0.5);
        assert_eq!(f.hit_rate, 0.6);
        assert_eq!(f.warm_fetches, 4, "the 2 cycle fetches are among the 4");
        assert_eq!(f.strategies["popular"].cycle_warm_fetches, 2);
        assert!(!f.strategies.contains_key("time"));
        let later = Counters { requests: 15, ..c };
        assert_eq!(counters_since(&later, &c).requests, 5);
        assert_eq!(counters_since(&later, &c).per_strategy[0].hits, 0);
    }

    #[test]
    fn dataset_view_shows_the_entries_the_engine_counts_as_cached() {
        use crate::driver::dataset::test_dataset;
        use crate::events::{FetchEvent, FetchOrigin};

        let mut ds = test_dataset();
        let t = 1_718_719_200.0;
        for key in ["A", "B"] {
            let ev = FetchEvent {
                dataset: "quote".into(),
                key: key.into(),
                at_s: t,
                origin: FetchOrigin::Demand,
                ok: true,
                upstream_s: None,
                sent: true,
                batched: false,
            };
            ds.on_fetch(t, &ev);
        }
        let cal = prewarm_core::calendar::ExchangeCalendar::nyse();
        let gate = ds.gate.state(&cal, t + 5.0);
        let view = DatasetView::new(&ds, t + 5.0, gate);
        assert_eq!(view.cached_entries, 2);
        assert_eq!(view.total.demand_fetches, 2);
        assert_eq!(view.gate, GateState::Open);
    }

    #[test]
    fn today_counts_the_shadows_calls_since_the_roll_over() {
        use crate::driver::dataset::test_dataset;
        use crate::events::AccessEvent;

        let mut ds = test_dataset();
        let t = 1_718_719_200.0;
        let access = |ds: &mut DatasetState, key: &str, at_s: f64| {
            ds.on_access(at_s, &AccessEvent::reported_miss("quote", key, at_s));
        };
        // Two keys, then one of them again past its 30 s TTL: the shadow
        // fetches three times.
        access(&mut ds, "A", t);
        access(&mut ds, "B", t + 1.0);
        access(&mut ds, "A", t + 40.0);
        let cal = prewarm_core::calendar::ExchangeCalendar::nyse();
        let gate = ds.gate.state(&cal, t + 41.0);
        let view = DatasetView::new(&ds, t + 41.0, gate);
        assert_eq!(view.total.shadow_api_calls, 3);
        assert_eq!(view.price.shadow_api_calls, 3);
        ds.roll_day();
        access(&mut ds, "B", t + 50.0);
        let gate = ds.gate.state(&cal, t + 51.0);
        let view = DatasetView::new(&ds, t + 51.0, gate);
        assert_eq!(view.today.shadow_api_calls, 1, "B expired: one more");
        assert_eq!(view.total.shadow_api_calls, 4);
    }
}
