//! The engine: one poll-style state machine that both drivers run.
//!
//! A driver calls, in time order:
//! - [`Engine::on_access`] for every client access (never for warming);
//! - [`Engine::on_fetched`] when an upstream fetch completes;
//! - [`Engine::poll_warm`] until it returns `None`, and performs each
//!   [`WarmOrder`] (the token is already drawn);
//! - [`Engine::handle_timeout`] at [`Engine::next_timeout`], then
//!   `poll_warm` again.
//!
//! [`Engine::plan_cycle`] (and the seed's `warm_popular`, …) runs one
//! strategy on request, on the same budget (module `cycle`).
//!
//! The replay driver performs fetches at once on virtual time; the daemon
//! performs them on the real clock and reports completions later. Nothing
//! here reads a clock: `now_s` always comes from the driver, and the engine
//! treats it as non-decreasing.
//!
//! Keys are [`KeyId`]s of the engine's [`KeyTable`] everywhere inside
//! (cache model, tracker, strategies, planner); the table is bounded with
//! the tracker (module `keys` states when an id is released and reused).

use crate::UnixSeconds;
use crate::budget::TokenBucket;
use crate::cache::{CacheModel, Displaced, FetchOrigin, Freshness, KeyId, KeyTable};
use crate::cost::CostCap;
use crate::latency::LatencyWindow;
use crate::model::codec::{self, LearnedState};
use crate::planner::Planner;
use crate::snapshot::{Envelope, SnapshotError};
use crate::stats::{Event, Series, Stats};
use crate::strategies::{BudgetView, Ctx, Strategies};
use crate::strategy::StrategyId;
use crate::time::UnixInstant;
use crate::tracker::{AccessContext, Tracker, TrackerStats};
use rustc_hash::FxHashSet;

mod batch;
mod config;
mod cycle;
mod flights;
pub mod handover;
mod keys;
mod startup;
pub use config::{ConfigError, DAEMON_COST_HALF_LIFE_S, EngineConfig};
pub use cycle::{CyclePlan, CycleRequest, SkipReason};
pub use handover::HandedOver;
pub use startup::StartupPlan;

/// Weight of the newest order in [`Engine`]'s running value of a token:
/// about the last 50 orders.
const TOKEN_VALUE_WEIGHT: f64 = 0.02;

/// The answer to an access.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lookup {
    /// A fresh entry was there.
    Hit {
        /// Seconds since its fetch.
        age_s: f64,
        /// Who fetched it.
        origin: FetchOrigin,
    },
    /// No fresh entry: the driver makes a demand fetch (or joins one).
    Miss {
        /// Whether a stale entry is present.
        stale: bool,
    },
}

/// A warming fetch the driver must perform. Its token is already spent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmOrder {
    /// The key to fetch.
    pub key: KeyId,
    /// The strategy it is charged to.
    pub strategy: StrategyId,
    /// When the engine issued it.
    pub issued_at_s: UnixSeconds,
    /// Whether it rides in the upstream call of the order issued just
    /// before it (a batch call, module `batch`): it counts no call and
    /// spent no token. The driver fetches it in that order's call.
    pub rides_along: bool,
}

/// The engine of one dataset.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    keys: KeyTable,
    cache: CacheModel,
    budget: TokenBucket,
    planner: Planner,
    stats: Stats,
    tracker: Tracker,
    strategies: Strategies,
    /// Warming orders out, demand fetches started or awaited (module
    /// `flights`).
    flights: flights::Flights,
    /// Untracked keys whose ids wait to be released (module `keys`).
    pending_release: FxHashSet<KeyId>,
    /// Scratch list of the keys the tracker dropped.
    dropped: Vec<KeyId>,
    /// When the pending keys are checked again.
    next_release_check_s: UnixSeconds,
    /// The cost cap: its hard account and its price.
    cost: CostCap,
    /// What a token usually buys: an average of the values of recent
    /// warming orders (the bucket's own price when tokens are scarce).
    token_value: f64,
    /// The latest instant the engine has seen; time never runs backwards
    /// inside the engine.
    now_s: UnixSeconds,
    /// Measured upstream latency (daemon), planned with once known.
    latency: LatencyWindow,
    /// What a restored snapshot's `cache` section handed over, until the
    /// start-up cycle takes it (module `handover`).
    handover: Vec<HandedOver>,
    /// The batch call of the last paid order, while keys may ride along
    /// in it (module `batch`).
    open_call: Option<batch::OpenCall>,
}

impl Engine {
    /// An engine for `cfg`, which must be valid.
    pub fn new(cfg: EngineConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let mut stats = Stats::default();
        if let Some(bucket_s) = cfg.series_bucket_s {
            let keep = cfg.series_max_buckets.unwrap_or(usize::MAX);
            stats = stats.with_series(Series::new(bucket_s, keep));
        }
        let mut tracker = Tracker::new(cfg.tracker.clone())?;
        tracker.report_drops();
        let mut cost = CostCap::new(
            cfg.warming.max_cost_ratio,
            cfg.warming.burst.unwrap_or(cfg.warming.rate_limit_per_min),
            cfg.cost_half_life_s,
        );
        cost.set_latency_s(cfg.upstream_latency_s);
        let ttl = cfg.ttl_rule();
        Ok(Engine {
            keys: KeyTable::default(),
            cache: CacheModel::new(ttl.clone(), cfg.capacity_entries),
            budget: TokenBucket::new(
                cfg.warming.rate_limit_per_min,
                cfg.warming.burst.unwrap_or(cfg.warming.rate_limit_per_min),
            ),
            planner: Planner::new(cfg.max_queued_candidates),
            stats,
            tracker,
            strategies: Strategies::new(cfg.warming.clone(), ttl),
            flights: flights::Flights::default(),
            pending_release: FxHashSet::default(),
            dropped: Vec::new(),
            next_release_check_s: f64::NEG_INFINITY,
            cost,
            token_value: 0.0,
            cfg,
            now_s: f64::NEG_INFINITY,
            latency: LatencyWindow::default(),
            handover: Vec::new(),
            open_call: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }
    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// The key table: names of ids, ids of names, stamps.
    pub fn keys(&self) -> &KeyTable {
        &self.keys
    }
    /// The cache model.
    pub fn cache(&self) -> &CacheModel {
        &self.cache
    }
    /// The id of `key`, interning it. Pass it on at once (to
    /// [`Engine::on_access`], [`Engine::on_fetched`], ...): an id kept
    /// across engine calls may be released and reused meanwhile, so a
    /// driver that keeps ids keeps their [`crate::keys::KeyStamp`]s
    /// (`keys().stamp(id)`) and interns again once one is no longer
    /// current.
    pub fn intern(&mut self, key: &str) -> KeyId {
        self.keys.intern(key)
    }
    /// Warming tokens available at `now_s`.
    pub fn budget_tokens(&self, now_s: UnixSeconds) -> f64 {
        self.budget.tokens_at(now_s)
    }
    /// What became of the planner's candidates.
    pub fn planner_counters(&self) -> crate::planner::PlannerCounters {
        self.planner.counters()
    }

    /// Candidates waiting for budget or for their window.
    pub fn queued_candidates(&self) -> usize {
        self.planner.queued()
    }

    /// Records a client access at `now_s` and answers whether it hits.
    /// Never call this for a warming fetch.
    pub fn on_access(&mut self, now_s: UnixSeconds, key: KeyId, ctx: &AccessContext<'_>) -> Lookup {
        self.access(now_s, key, ctx, false)
    }

    /// Records a client access at `now_s` that asked past the cache (HTTP
    /// `Cache-Control: no-cache`): a miss whatever is cached (a demand
    /// fetch follows), and a call for the cost cap's no-warming shadow
    /// too, which would have honoured it alike.
    pub fn on_forced_access(
        &mut self,
        now_s: UnixSeconds,
        key: KeyId,
        ctx: &AccessContext<'_>,
    ) -> Lookup {
        self.access(now_s, key, ctx, true)
    }

    fn access(
        &mut self,
        now_s: UnixSeconds,
        key: KeyId,
        ctx: &AccessContext<'_>,
        forced: bool,
    ) -> Lookup {
        debug_assert!(self.keys.is_live(key), "{key:?} was released");
        self.now_s = self.now_s.max(now_s);
        self.settle_waste(now_s);
        // The bucket is full at the first request: start its clock now.
        self.budget.available(now_s);
        let found_expires_s = self.cache.entry(key).map(|e| e.expires_at_s);
        // Label the model's examples with this access before anything
        // proposes new ones: an access never labels a candidate it caused.
        self.strategies.learner.advance(now_s);
        self.strategies.learner.on_access(key, now_s);
        let (lookup, hit) = match self.cache.freshness(key, now_s) {
            Freshness::Fresh(e) if !forced => {
                self.count_hit(now_s, key, e.origin);
                let age_s = now_s - e.fetched_at_s;
                (
                    Lookup::Hit {
                        age_s,
                        origin: e.origin,
                    },
                    Some((e.fetched_at_s, e.expires_at_s)),
                )
            }
            other => {
                self.stats.record(
                    now_s,
                    Event::Request {
                        hit: false,
                        credited: None,
                    },
                );
                let stale = !matches!(other, Freshness::Absent);
                (Lookup::Miss { stale }, None)
            }
        };
        self.cache.touch(key);
        if forced {
            self.cost.on_forced_access(now_s, key, found_expires_s);
        } else {
            let ttl = self.cache.ttl_rule();
            self.cost.on_access(now_s, key, ttl, found_expires_s);
        }
        self.tracker.track_access(key, now_s, ctx);
        if self.tracker.has_dropped() {
            self.release_dropped(now_s);
        }
        let client = ctx.client;
        let (strategies, mut ctx) = self.split();
        strategies.on_access(&mut ctx, now_s, key, client, hit);
        lookup
    }

    /// The strategies and what they may touch of the rest of the engine.
    fn split(&mut self) -> (&mut Strategies, Ctx<'_>) {
        let ctx = Ctx {
            cache: &self.cache,
            planner: &mut self.planner,
            tracker: &mut self.tracker,
            keys: &self.keys,
            enabled: self.cfg.warming.strategies,
            budget: budget_view(&self.budget, &self.cost, self.token_value, self.now_s),
            latency_s: self.cfg.upstream_latency_s,
        };
        (&mut self.strategies, ctx)
    }

    /// Counts the warming fetches the cache model settled as wasted by
    /// `now_s` ([`CacheModel::take_wasted`]), each at its own time.
    fn settle_waste(&mut self, now_s: UnixSeconds) {
        for (s, at_s) in self.cache.take_wasted(now_s) {
            self.stats.record(at_s, Event::WarmWasted(s));
        }
    }

    fn count_hit(&mut self, now_s: UnixSeconds, key: KeyId, origin: FetchOrigin) {
        let credited = match origin {
            FetchOrigin::Warm(s) => Some(s),
            FetchOrigin::Demand => None,
        };
        self.stats.record(
            now_s,
            Event::Request {
                hit: true,
                credited,
            },
        );
        if self.cache.mark_used(key)
            && let Some(s) = credited
        {
            self.stats.record(now_s, Event::WarmUsed(s));
        }
    }

    /// Tells the tracker which groups (sectors, indices, watchlists) `key`
    /// belongs to, e.g. from a universe file.
    pub fn set_groups(&mut self, key: &str, groups: &[&str]) {
        let id = self.keys.intern(key);
        self.tracker.set_groups(id, groups);
        self.release_dropped(self.now_s);
    }

    /// The access tracker (its answers name keys by id: see
    /// [`crate::tracker::NameKeys`] and [`Engine::keys`]).
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// The tracker's counters and top keys at `now_s`, keys named.
    pub fn tracker_stats(&self, now_s: UnixSeconds) -> TrackerStats {
        self.tracker.stats(now_s, &self.keys)
    }

    /// What the engine has learned, as snapshot bytes (see
    /// [`crate::snapshot`]): the `tracker` section, the `model` section
    /// (model, calibration, price: [`crate::model::codec`]) and the
    /// `cache` section (the entries not yet expired at `now_s`, for the
    /// next process's start-up: module `handover`); the driver writes them
    /// atomically.
    pub fn snapshot(&self, now_s: UnixSeconds) -> Vec<u8> {
        let mut e = Envelope::default();
        e.put(self.tracker.snapshot_section(now_s, &self.keys));
        e.put(codec::section(&self.strategies.learner, &self.cost));
        e.put(handover::section(self.cached_entries(now_s)));
        e.to_bytes()
    }

    /// Restores what was learned from [`Engine::snapshot`] bytes, into an
    /// engine that has not run yet. A snapshot without a `model` section
    /// (an older build's) leaves the model and the price fresh; one
    /// without a `cache` section hands nothing over
    /// ([`Engine::plan_startup`]). On error
    /// the engine is unchanged and the caller keeps the file aside.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let envelope = Envelope::from_bytes(bytes)?;
        let learned = LearnedState::from_envelope(&envelope)?;
        let handed_over = handover::from_envelope(&envelope)?;
        let mut tracker = Tracker::restore(bytes, self.cfg.tracker.clone(), &mut self.keys)?;
        tracker.report_drops();
        let old = std::mem::replace(&mut self.tracker, tracker);
        self.on_tracker_replaced(&old);
        if let Some(l) = learned {
            l.apply(&mut self.strategies.learner, &mut self.cost);
        }
        self.handover = handed_over;
        Ok(())
    }

    /// The entries not yet expired at `now_s`, named: the cache model's,
    /// and those handed over and not yet taken by a start-up cycle.
    pub fn cached_entries(&self, now_s: UnixSeconds) -> Vec<HandedOver> {
        let ttl_s = self.cfg.ttl_s;
        let mut out: Vec<HandedOver> = self
            .cache
            .entries()
            .map(|(k, e)| HandedOver {
                key: self.keys.name(k).into(),
                expires_at_s: e.fetched_at_s + ttl_s,
            })
            .filter(|h| h.expires_at_s > now_s)
            .collect();
        let held: FxHashSet<&str> = out.iter().map(|h| &*h.key).collect::<FxHashSet<_>>();
        let pending: Vec<HandedOver> = self
            .handover
            .iter()
            .filter(|h| h.expires_at_s > now_s && !held.contains(&*h.key))
            .cloned()
            .collect();
        out.extend(pending);
        out
    }

    /// What a restored snapshot handed over and no start-up cycle took yet.
    pub fn handed_over(&self) -> &[HandedOver] {
        &self.handover
    }

    /// Enters an entry of `key` fetched at `fetched_at_s` that the store
    /// kept across a restart (Redis), so that the start-up cycle does not
    /// fetch it again. Counts no call: this process made none.
    pub fn on_kept_entry(&mut self, key: KeyId, fetched_at_s: UnixSeconds) {
        debug_assert!(self.keys.is_live(key), "{key:?} was released");
        self.cache.insert(key, fetched_at_s, FetchOrigin::Demand);
        let expires_s = self.cache.entry(key).map(|e| e.expires_at_s);
        self.cost.rejudge(self.now_s, key, expires_s);
    }

    /// Records that a demand fetch of `key` starts at `now_s` (optional:
    /// a driver whose fetches take time calls it). The API call counts
    /// now, and no warming fetch of `key` is issued until
    /// [`Engine::on_fetched`] reports it back.
    pub fn on_fetch_started(&mut self, now_s: UnixSeconds, key: KeyId) {
        debug_assert!(self.keys.is_live(key), "{key:?} was released");
        if self.flights.demand.insert(key) {
            self.count_demand_call(now_s);
        }
    }

    /// Records that `key`'s client read at `read_at_s` (its own instant,
    /// which may be earlier than the engine's latest) missed and the
    /// driver fetches it on demand, reporting the fetch when it lands
    /// ([`Engine::on_fetched`]) or is refused ([`Engine::on_fetch_not_sent`]),
    /// by `until_s` at the latest (the driver's longest fetch, Unix s).
    /// Until then no warming order is issued for `key`: it would pay a
    /// second call for what the demand fetch brings (module `flights`).
    /// Nothing is awaited when a fetch of `key` landed at or after
    /// `read_at_s` (its report came first). Counts nothing, but the cost
    /// cap holds the slack of the no-warming call for it until then, to
    /// take the call back if the fetch is refused (module `cost`). A
    /// driver that reports starts ([`Engine::on_fetch_started`]) needs no call of this.
    pub fn on_demand_fetch_awaited(
        &mut self,
        read_at_s: UnixSeconds,
        key: KeyId,
        until_s: UnixSeconds,
    ) {
        debug_assert!(self.keys.is_live(key), "{key:?} was released");
        let landed = self
            .cache
            .entry(key)
            .is_some_and(|e| e.fetched_at_s >= read_at_s);
        if until_s > read_at_s && !landed {
            self.flights.await_demand(key, until_s);
        }
        // A landed fetch needs no hold, but a refusal reported first is
        // still this read's.
        let hold_until_s = if landed { f64::NEG_INFINITY } else { until_s };
        self.cost
            .hold_twin_call(self.now_s, read_at_s, key, hold_until_s);
    }

    /// Whether a fetch of `key` is under way at `now_s` as far as the
    /// engine knows (a warming order out, a demand fetch started or
    /// awaited), so no warming order is issued for it.
    pub fn fetch_under_way(&self, key: KeyId, now_s: UnixSeconds) -> bool {
        self.flights.under_way(key, now_s)
    }

    /// Records that the demand fetch just reported ([`Engine::on_fetched`])
    /// rode in a batch call another key of the same call counted (a
    /// client's batch read): the figures count that call once. The cost
    /// account keeps counting the key, as its shadow counts each miss.
    pub fn on_demand_rode_along(&mut self, now_s: UnixSeconds) {
        self.stats.record(now_s, Event::DemandRodeAlong);
    }

    fn count_demand_call(&mut self, now_s: UnixSeconds) {
        self.stats.record(now_s, Event::DemandFetch);
        self.cost.on_call(now_s);
    }

    /// Sets how long an upstream fetch takes, seconds (≥ 0; a negative or
    /// non-finite value is taken as 0): warming plans its lead times with
    /// it, and the cost cap's shadow coalesces with it. The daemon calls
    /// it with the measured latency.
    pub fn set_upstream_latency_s(&mut self, latency_s: f64) {
        let l = if latency_s.is_finite() {
            latency_s.max(0.0)
        } else {
            0.0
        };
        self.cfg.upstream_latency_s = l;
        self.cost.set_latency_s(l);
    }

    /// Records that an upstream call ending at `now_s` took `took_s`
    /// seconds (the daemon reports every successful call): the engine then
    /// plans with the 90th percentile of the last hour
    /// ([`crate::latency`]).
    pub fn observe_upstream_latency(&mut self, now_s: UnixSeconds, took_s: f64) {
        if let Some(p90_s) = self.latency.observe(now_s, took_s) {
            self.set_upstream_latency_s(p90_s);
        }
    }

    /// Records a completed fetch of `key`, landed at `now_s`. A demand
    /// fetch counts as an API call here, unless its start was reported
    /// ([`Engine::on_fetch_started`]); a warming fetch was counted when
    /// its order was issued. A failed fetch (`ok == false`) stores nothing;
    /// a failed warming fetch in flight counts as wasted.
    pub fn on_fetched(&mut self, now_s: UnixSeconds, key: KeyId, origin: FetchOrigin, ok: bool) {
        debug_assert!(self.keys.is_live(key), "{key:?} was released");
        if origin == FetchOrigin::Demand && !self.flights.demand_reported(key) {
            self.count_demand_call(now_s);
        }
        // A read that joined a warming fetch awaited this one.
        self.flights.forget(key);
        self.cost.on_fetch_made(key);
        if let FetchOrigin::Warm(s) = origin
            && self.flights.warm.remove(&key)
            && !ok
        {
            self.stats.record(now_s, Event::WarmWasted(s));
        }
        if !ok {
            let expires_s = self.cache.entry(key).map(|e| e.expires_at_s);
            self.cost.on_fetch_failed(now_s, key, expires_s);
        }
        if ok {
            let Displaced { .. } = self.cache.insert(key, now_s, origin);
            self.settle_waste(now_s);
            let expires_s = self.cache.entry(key).map(|e| e.expires_at_s);
            if origin == FetchOrigin::Demand {
                self.cost.on_demand_landed(now_s, key, expires_s);
            } else {
                self.cost.on_warm_landed(now_s, key, expires_s);
            }
            let (strategies, mut ctx) = self.split();
            strategies.on_fetched(&mut ctx, now_s, key);
        }
        if !self.tracker.is_tracked(key) {
            // Fetched but not (or no longer) tracked: released once its
            // entry expires, unless it is accessed meanwhile.
            self.pending_release.insert(key);
        }
    }

    /// Records that a fetch of `key` (`origin`) was refused at `at_s` (its
    /// own instant, which may be earlier than the engine's latest) before
    /// any call reached the upstream (the daemon's quota, a host's hold, an
    /// open breaker): no API call is counted, nothing is stored. A warming
    /// order's call is taken back when the order ends
    /// ([`Engine::take_back_warm_call`]); a refused demand fetch awaited
    /// for a read takes back the cost cap's no-warming call for it (module
    /// `cost`, "Refused fetches"). Not for a demand fetch whose
    /// start was reported ([`Engine::on_fetch_started`] counted its call).
    pub fn on_fetch_not_sent(&mut self, at_s: UnixSeconds, key: KeyId, origin: FetchOrigin) {
        debug_assert!(self.keys.is_live(key), "{key:?} was released");
        if origin == FetchOrigin::Demand {
            self.flights.demand_reported(key);
        }
        // The shadow's twin call for a read it refused was not made either.
        let expires_s = self.cache.entry(key).map(|e| e.expires_at_s);
        self.cost.on_fetch_refused(at_s, key, expires_s);
        if !self.tracker.is_tracked(key) {
            self.pending_release.insert(key);
        }
    }

    /// Ends a warming order of `key` whose fetch, if it made one, was
    /// reported already ([`Engine::on_fetched`]): the key is no longer in
    /// flight. Counts nothing: an order that fetched nothing is taken back
    /// ([`Engine::take_back_warm_call`], [`Engine::take_back_ride_along`])
    /// or reported failed.
    pub fn end_warm_order(&mut self, key: KeyId) {
        self.flights.warm.remove(&key);
        if !self.tracker.is_tracked(key) {
            self.pending_release.insert(key);
        }
    }

    /// Records that the store dropped `key` (daemon: eviction, expiry).
    pub fn on_evicted(&mut self, key: KeyId) {
        self.cache.remove(key);
        self.cost.rejudge(self.now_s, key, None);
    }

    /// Records that `key` was purged (an operator's request): the entry
    /// is gone, and the cost cap's shadow drops its entry too, as a cache
    /// without warming would have been purged alike. The next access is
    /// then a miss for both, not a risk charged to warming (which would
    /// hold warming back for a TTL after every purge).
    pub fn on_purged(&mut self, key: KeyId) {
        self.cache.remove(key);
        self.cost.on_purged(key);
    }

    /// Records that `key`'s client read, just applied as a miss
    /// ([`Engine::on_access`]), was answered without any upstream
    /// call (the daemon's failure memo; stale or 503 while upstream is
    /// held back, the breaker open or the quota spent): a cache without
    /// warming would have been refused alike, so the cost cap's shadow
    /// counts no call for it (module `cost`, "Refused fetches").
    pub fn on_read_answered_without_call(&mut self, key: KeyId) {
        debug_assert!(self.keys.is_live(key), "{key:?} was released");
        let expires_s = self.cache.entry(key).map(|e| e.expires_at_s);
        self.cost.on_read_refused(self.now_s, key, expires_s);
    }

    /// The next warming fetch to make at `now_s`, if the budget and the
    /// cost cap allow one and a candidate beats the price. Call until it
    /// returns `None`.
    pub fn poll_warm(&mut self, now_s: UnixSeconds) -> Option<WarmOrder> {
        self.settle_waste(now_s);
        if let Some(order) = self.poll_ride_along(now_s) {
            return Some(order);
        }
        let view = self.budget_view(now_s);
        // The hard account first: whatever the price, the cap holds.
        if view.tokens < 1.0 || !self.cost.may_warm() {
            return None;
        }
        let threshold = view.threshold(view.tokens / view.burst) as f32;
        let cache = &self.cache;
        if self
            .planner
            .best_open_value(now_s, |c| still_needed(cache, c))
            .is_none_or(|v| v < threshold)
        {
            return None;
        }
        let flights = &self.flights;
        let c = self.planner.pop_best(now_s, |c| {
            // Never spend on a key that stays fresh long enough anyway, or
            // that a fetch already in flight will make fresh, or whose
            // fetch now would expire no later than its entry (a closed
            // spell under `until_open`).
            still_needed(cache, c)
                && !flights.under_way(c.key, now_s)
                && cache.fetch_would_extend(c.key, now_s)
        })?;
        Some(self.issue(now_s, (c.key, c.strategy, f64::from(c.value)), Pay::Token))
    }

    /// Counts a warming order of `key`, paid by `pay`: a paid order is one
    /// call in the figures and the cost account and opens a batch call
    /// (module `batch`); a riding one counts a key, no call. In flight
    /// until it ends.
    fn issue(
        &mut self,
        now_s: UnixSeconds,
        (key, strategy, value): (KeyId, StrategyId, f64),
        pay: Pay,
    ) -> WarmOrder {
        if pay == Pay::Token {
            let took = self.budget.try_take(now_s);
            debug_assert!(took, "tokens were checked by the caller");
        }
        if pay == Pay::RideAlong {
            self.stats.record(now_s, Event::WarmRideAlong(strategy));
        } else {
            self.cost.on_call(now_s);
            self.stats.record(now_s, Event::WarmFetch(strategy));
            self.token_value += TOKEN_VALUE_WEIGHT * (value - self.token_value);
            self.open_batch_call(now_s);
        }
        self.flights.warm.insert(key);
        WarmOrder {
            key,
            strategy,
            issued_at_s: now_s,
            rides_along: pay == Pay::RideAlong,
        }
    }

    /// A warming order of `strategy` issued at `issued_at_s` made no
    /// upstream call (the daemon's fetch joined one already in flight, was
    /// refused before calling, or was never performed): its call is taken
    /// back from the figures ([`crate::stats`]) and from the cost account,
    /// so they count the calls that were made. Its token stays spent.
    /// Never for an order that rides along: it counted no call.
    pub fn take_back_warm_call(&mut self, issued_at_s: UnixSeconds, strategy: StrategyId) {
        self.stats
            .record(issued_at_s, Event::WarmTakenBack(strategy));
        self.cost.take_back_call(issued_at_s);
    }

    /// The budget and its prices at `now_s`.
    fn budget_view(&self, now_s: UnixSeconds) -> BudgetView {
        budget_view(&self.budget, &self.cost, self.token_value, now_s)
    }

    /// API calls over those of a cache without warming, over the cost
    /// cap's window (the whole run in replay; about a day in the daemon).
    pub fn cost_ratio(&self) -> f64 {
        self.cost.ratio()
    }

    /// The cost cap: its account, price and price history.
    pub fn cost_cap(&self) -> &CostCap {
        &self.cost
    }

    /// The learned model, its pending examples and calibration.
    pub fn learner(&self) -> &crate::model::learner::Learner {
        &self.strategies.learner
    }

    /// The next instant the engine wants to act without an access: a
    /// candidate's window opening, or a token for an open candidate. Never
    /// earlier than the latest instant the engine has seen.
    pub fn next_timeout(&self) -> Option<UnixSeconds> {
        // The best open candidate waits for the tokens its value needs.
        // While the cost account is spent, only an access can reopen it.
        let token = self
            .planner
            .peek_open_value()
            .filter(|_| self.cost.may_warm())
            .and_then(|v| {
                let burst = self.budget.burst().max(1.0);
                let fill = self.budget_view(self.now_s).fill_needed(f64::from(v))?;
                self.budget
                    .next_tokens_at(self.now_s, (fill * burst).max(1.0))
            })
            // Tokens already there wake nothing: `poll_warm` has run with
            // them and declined (the key in flight, or not needed), and
            // the next access or fetch polls again. Waking for them would
            // spin on the same instant.
            .filter(|&t| t > self.now_s);
        if self.now_s == f64::NEG_INFINITY {
            return None; // nothing runs before the first access
        }
        let t = [
            token,
            self.planner.next_opening(),
            Some(self.strategies.next_tick_s()),
        ]
        .into_iter()
        .flatten()
        .fold(f64::INFINITY, f64::min);
        // Timers not yet run start at minus infinity: they are due now.
        (t < f64::INFINITY).then(|| t.max(self.now_s))
    }

    /// Runs what is due at `now_s`. Follow with `poll_warm(now_s)`.
    pub fn handle_timeout(&mut self, now_s: UnixSeconds) {
        self.now_s = self.now_s.max(now_s);
        self.settle_waste(now_s);
        self.strategies.learner.advance(now_s);
        self.cost.advance(now_s);
        let (strategies, mut ctx) = self.split();
        strategies.tick(&mut ctx, now_s);
        let cache = &self.cache;
        self.planner.advance(now_s, |c| still_needed(cache, c));
        self.release_dropped(now_s);
        if now_s >= self.next_release_check_s {
            self.flights.expire(now_s);
            self.recheck_pending(now_s);
            self.next_release_check_s = now_s + keys::RELEASE_RECHECK_S;
        }
    }
}

/// What pays for a warming order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pay {
    /// A token of the bucket.
    Token,
    /// The start-up burst (module `startup`).
    StartupBurst,
    /// Nothing: the key rides in the open batch call (module `batch`).
    RideAlong,
}

/// The budget and its prices as the strategies and the planner see them.
fn budget_view(
    budget: &TokenBucket,
    cost: &CostCap,
    token_value: f64,
    now_s: UnixSeconds,
) -> BudgetView {
    BudgetView {
        tokens: budget.tokens_at(now_s),
        rate_per_s: budget.rate_per_min() / 60.0,
        burst: budget.burst().max(1.0),
        price: cost.threshold(),
        token_value,
    }
}

/// Whether `c`'s key will not be fresh at the moment it is needed anyway.
fn still_needed(cache: &CacheModel, c: &crate::planner::Candidate) -> bool {
    !cache.is_fresh_at(c.key, UnixInstant(c.needed_at_s))
}

#[cfg(test)]
mod tests;
