//! One dataset's engine inside the driver: config mapping, events in, and
//! the counters the driver keeps about it (shown by [`super::view`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prewarm_core::cache::FetchOrigin;
use prewarm_core::engine::{ConfigError, DAEMON_COST_HALF_LIFE_S, Engine, EngineConfig};
use prewarm_core::stats::Counters;
use prewarm_core::strategies::WarmingConfig;
use prewarm_core::strategy::{StrategyId, StrategySet};
use prewarm_core::tracker::{AccessContext, TrackerConfig};
use prewarm_core::ttl::SessionTtls;
use prewarm_core::universe::{Membership, apply_universe};
use serde::Serialize;

use super::gate::SessionGate;
use super::settings::DriverSettings;
use super::warm::Order;
use crate::config::DatasetConfig;
use crate::events::{AccessEvent, AccessFetch, EvictionEvent, FetchEvent};

/// Maps a dataset's TTL and `[warming]`'s engine settings into the
/// engine's configuration; `enabled` false (`warming.enabled`) leaves the
/// engine no strategy.
pub fn engine_config(
    ttl_s: f64,
    ttl_by_session: Option<SessionTtls>,
    warming: &WarmingConfig,
    enabled: bool,
    warm_batch_max_keys: usize,
) -> EngineConfig {
    let mut warming = warming.clone();
    if !enabled {
        warming.strategies = StrategySet::NONE;
    }
    EngineConfig {
        ttl_s,
        ttl_by_session,
        capacity_entries: None,
        warming,
        tracker: TrackerConfig::default(),
        max_queued_candidates: 100_000,
        // The last hour in short buckets, for the monitoring API's
        // windows and the dashboard's charts; daily figures come from a
        // baseline copy of the totals taken at midnight.
        series_bucket_s: Some(HISTORY_BUCKET_S),
        series_max_buckets: Some(HISTORY_BUCKETS),
        // The cost cap holds over about the last day of a daemon that
        // runs for months.
        cost_half_life_s: Some(DAEMON_COST_HALF_LIFE_S),
        // Until fetches are measured; then the measured latency
        // (`Engine::set_upstream_latency_s`).
        upstream_latency_s: 0.0,
        // One warming call per batch of keys where the dataset has a batch
        // endpoint (the service fetches riding keys in their call).
        warm_batch_max_keys,
    }
}

/// Width of the daemon's history buckets, seconds.
pub const HISTORY_BUCKET_S: f64 = 10.0;
/// History buckets kept: one hour.
pub const HISTORY_BUCKETS: usize = 360;

/// The snapshot file of `dataset` in `state_dir`.
pub fn snapshot_path(state_dir: &Path, dataset: &str) -> PathBuf {
    state_dir.join(format!("{dataset}.snapshot"))
}

/// Warming fetches of cycles (pre-market, `POST /warming/run`, `warm_*`
/// calls), per strategy.
pub type CycleCounts = [u64; StrategyId::COUNT];

/// Store evictions of one dataset since start.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct Evictions {
    /// Eviction events applied.
    pub events: u64,
    /// Of those, entries the engine counted as cached until then.
    pub cached: u64,
}

/// Outcomes of warming calls (engine orders and cycles).
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct WarmOutcomes {
    /// Fetched and stored by the warming call.
    pub fetched: u64,
    /// Joined a fetch already in flight.
    pub joined: u64,
    /// Refused because upstream's 429 pause was on.
    pub paused: u64,
    /// Failed (upstream error, timeout, rejected key).
    pub failed: u64,
}

/// Snapshot file state.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct SnapshotInfo {
    /// The file.
    pub path: String,
    /// `restored`, `cold` (no file), `corrupt` (moved aside) or `error`.
    pub restore: String,
    /// When the last save completed.
    pub last_saved_s: Option<f64>,
    /// Size of the last save.
    pub last_saved_bytes: Option<u64>,
    /// The last save or restore error.
    pub last_error: Option<String>,
}

/// One dataset's engine and the driver's figures about it.
#[derive(Debug)]
pub struct DatasetState {
    /// Dataset name.
    pub name: Arc<str>,
    /// The engine (owned by the driver task alone).
    pub engine: Engine,
    /// The outside-session gate.
    pub gate: SessionGate,
    /// Cycle warming fetches, per strategy, since start.
    pub cycle_fetches: CycleCounts,
    /// Totals at the last midnight cleanup: the engine's counters, cycle
    /// fetches, and the calls of the engine's no-warming shadow.
    pub day_start: (Counters, CycleCounts, u64),
    /// What warming calls returned.
    pub outcomes: WarmOutcomes,
    /// The snapshot file and its state.
    pub snapshot: SnapshotInfo,
    /// Where snapshots go.
    pub path: PathBuf,
    /// Groups of keys from the dataset's universe file (empty: none).
    pub universe: Arc<[Membership]>,
    /// Store evictions applied since start.
    pub evictions: Evictions,
    /// Recent evictions: key → the evicted entry's `fetched_at_s`, so a
    /// fetch event that arrives after the eviction of what it stored is
    /// undone (bounded: cleared past [`RECENT_EVICTIONS`] keys).
    recent_evictions: HashMap<Arc<str>, f64>,
    /// Warm orders out, by key (at most one per key: the engine and the
    /// cycles never order a key in flight): whether the order's own fetch
    /// reported itself, i.e. made an upstream call.
    open_warm_orders: HashMap<String, bool>,
    /// The longest a demand fetch takes from its read to its report,
    /// seconds (the store's timeout, then
    /// [`crate::upstream::UpstreamClient::longest_demand_fetch_s`]): how
    /// long at most the engine holds warming of a key whose demand fetch
    /// is awaited, and the cost cap the slack of its call (0: not at all).
    pub demand_wait_s: f64,
}

/// Most keys remembered in [`DatasetState`]'s recent evictions. An
/// eviction overtakes its fetch event only by the moments between a store
/// put and the event's send, so a small memory is enough.
const RECENT_EVICTIONS: usize = 4096;

impl DatasetState {
    /// The engine of `ds` under `[warming]`'s `engine` and `driver`
    /// settings, snapshot file in `state_dir`.
    pub fn new(
        ds: &DatasetConfig,
        engine: &WarmingConfig,
        driver: &DriverSettings,
        state_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let batch_keys = ds.batch.as_ref().map_or(1, |b| b.max_keys);
        let cfg = engine_config(
            ds.ttl_s,
            ds.ttl_by_session,
            engine,
            driver.enabled,
            batch_keys,
        );
        let rate_per_min = cfg.warming.rate_limit_per_min;
        let gate = SessionGate::new(
            driver.outside_sessions,
            driver.outside_rate_factor,
            rate_per_min,
            cfg.warming.burst.unwrap_or(rate_per_min),
        );
        let path = snapshot_path(state_dir, &ds.name);
        let mut state = Self {
            name: ds.name.clone(),
            engine: Engine::new(cfg)?,
            gate,
            cycle_fetches: [0; StrategyId::COUNT],
            day_start: (Counters::default(), [0; StrategyId::COUNT], 0),
            outcomes: WarmOutcomes::default(),
            snapshot: SnapshotInfo {
                path: path.display().to_string(),
                restore: "cold".into(),
                ..SnapshotInfo::default()
            },
            path,
            universe: ds
                .universe
                .as_ref()
                .map_or_else(|| Arc::from([]), |u| u.memberships.clone()),
            evictions: Evictions::default(),
            recent_evictions: HashMap::new(),
            open_warm_orders: HashMap::new(),
            demand_wait_s: 0.0,
        };
        state.apply_universe();
        Ok(state)
    }

    /// Gives the engine the universe file's groups (again after a restore,
    /// which replaces the tracker: the file wins over learned membership).
    pub fn apply_universe(&mut self) {
        if self.universe.is_empty() {
            return;
        }
        let keys = apply_universe(&mut self.engine, &self.universe);
        tracing::info!(dataset = %self.name, keys, memberships = self.universe.len(), "universe groups set");
    }

    /// Applies a client access at `at_s` (already clamped).
    pub fn on_access(&mut self, at_s: f64, ev: &AccessEvent) {
        let key = self.engine.intern(&ev.key);
        let groups: Vec<&str> = ev.groups.iter().map(|g| &**g).collect();
        let ctx = AccessContext {
            client: ev.client.as_deref(),
            groups: &groups,
        };
        if ev.forced {
            self.engine.on_forced_access(at_s, key, &ctx);
        } else {
            self.engine.on_access(at_s, key, &ctx);
        }
        // The read's own instant, not the clamped one: a fetch it caused
        // whose event overtook this one happened after it.
        let read_at_s = ev.at_s.min(at_s);
        match ev.fetch {
            AccessFetch::Follows => {
                let until_s = read_at_s + self.demand_wait_s;
                self.engine.on_demand_fetch_awaited(read_at_s, key, until_s);
            }
            AccessFetch::Refused => self.engine.on_read_answered_without_call(key),
            AccessFetch::None => {}
        }
    }

    /// Applies a completed fetch at `at_s` (already clamped).
    pub fn on_fetch(&mut self, at_s: f64, ev: &FetchEvent) {
        let key = self.engine.intern(&ev.key);
        if !ev.sent {
            // Refused before the upstream (quota, hold, breaker): no call,
            // and a warm order's call is taken back when it ends. Its own
            // instant, not the clamped one, tells which reads it refused.
            self.engine
                .on_fetch_not_sent(ev.at_s.min(at_s), key, ev.origin);
            return;
        }
        if let Some(took_s) = ev.upstream_s {
            self.engine.observe_upstream_latency(at_s, took_s);
        }
        self.engine.on_fetched(at_s, key, ev.origin, ev.ok);
        if ev.batched && ev.origin == FetchOrigin::Demand {
            self.engine.on_demand_rode_along(at_s);
        }
        if let FetchOrigin::Warm(_) = ev.origin
            && let Some(called) = self.open_warm_orders.get_mut(&*ev.key)
        {
            *called = true;
        }
        // The store already dropped what this fetch stored.
        if ev.ok && self.recent_evictions.get(&ev.key) == Some(&ev.at_s) {
            self.recent_evictions.remove(&ev.key);
            self.engine.on_evicted(key);
        }
    }

    /// Applies a store eviction: the engine stops counting the key as
    /// cached (and may warm it again).
    pub fn on_evicted(&mut self, ev: &EvictionEvent) {
        self.evictions.events += 1;
        if let Some(id) = self.engine.keys().get(&ev.key) {
            if self.engine.cache().entry(id).is_some() {
                self.evictions.cached += 1;
            }
            self.engine.on_evicted(id);
        }
        if self.recent_evictions.len() >= RECENT_EVICTIONS {
            self.recent_evictions.clear();
        }
        self.recent_evictions
            .insert(ev.key.clone(), ev.fetched_at_s);
    }

    /// A warm order of `key` goes out: its fetch, if it makes one, reports
    /// itself before the order ends ([`Self::on_fetch`]).
    pub(super) fn open_warm_order(&mut self, key: &str) {
        self.open_warm_orders.insert(key.to_string(), false);
    }

    /// Whether the fetch of the open warm order of `key` reported itself.
    pub(super) fn warm_order_called(&self, key: &str) -> bool {
        self.open_warm_orders.get(key).copied().unwrap_or(false)
    }

    /// Ends a warming order of a call that reached the upstream or not
    /// (`call_made`): the engine stops counting its key in flight (what it
    /// stored reached the engine through its fetch event,
    /// [`Self::on_fetch`]). An order whose fetch never reported itself
    /// fetched nothing (it joined a fetch in flight, was refused before
    /// calling, or was never performed): a riding order's key is taken
    /// back; a paying order's call is taken back unless its batch call was
    /// made for other keys. Taken back from the engine's figures and, for
    /// a cycle's, from the cycle fetches, so every counter of upstream
    /// calls agrees. A paying order whose batch call was made for other
    /// keys but did not fetch its own is a wasted warming fetch. By name:
    /// the order's id may have been released meanwhile if a failed fetch's
    /// event ended it.
    pub(super) fn end_warm_order(&mut self, at_s: f64, order: &Order, call_made: bool) {
        let called = self.open_warm_orders.remove(&order.key).unwrap_or(false);
        let taken_back = match (called, order.rides_along, call_made) {
            (true, ..) | (false, false, true) => false,
            (false, true, _) => {
                self.engine
                    .take_back_ride_along(order.issued_at_s, order.strategy);
                true
            }
            (false, false, false) => {
                self.engine
                    .take_back_warm_call(order.issued_at_s, order.strategy);
                true
            }
        };
        if taken_back && order.cycle.is_some() {
            let n = &mut self.cycle_fetches[order.strategy.index()];
            *n = n.saturating_sub(1);
        }
        if let Some(id) = self.engine.keys().get(&order.key) {
            if !called && !taken_back {
                let origin = FetchOrigin::Warm(order.strategy);
                self.engine.on_fetched(at_s, id, origin, false);
            }
            self.engine.end_warm_order(id);
        }
    }

    /// Rolls "today" over (midnight cleanup).
    pub fn roll_day(&mut self) {
        let shadow_api_calls = self.engine.cost_cap().totals().1;
        self.day_start = (
            self.engine.stats().total,
            self.cycle_fetches,
            shadow_api_calls,
        );
    }
}

/// Dataset `quote` (`ttl_s` 30) under the default `[warming]`, for the
/// driver's unit tests.
#[cfg(test)]
pub(super) fn test_dataset() -> DatasetState {
    dataset_from_toml("[datasets.quote]\nurl = \"http://x/{key}\"\nttl_s = 30\n")
}

/// The `quote` dataset of a config file's text, for unit tests.
#[cfg(test)]
fn dataset_from_toml(toml: &str) -> DatasetState {
    let cfg = crate::config::RawConfig::from_toml(toml, "t.toml")
        .unwrap()
        .validate(&|_| None)
        .unwrap();
    let w = &cfg.warming;
    DatasetState::new(
        &cfg.datasets["quote"],
        &w.engine,
        &w.driver,
        Path::new("/none"),
    )
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> DatasetState {
        dataset_from_toml("[datasets.quote]\nurl = \"http://x/{key}\"\n")
    }

    fn fetch(key: &str, fetched_at_s: f64) -> FetchEvent {
        FetchEvent {
            dataset: "quote".into(),
            key: key.into(),
            at_s: fetched_at_s,
            origin: FetchOrigin::Demand,
            ok: true,
            upstream_s: None,
            sent: true,
            batched: false,
        }
    }

    fn eviction(key: &str, at_s: f64, fetched_at_s: f64) -> EvictionEvent {
        EvictionEvent {
            dataset: "quote".into(),
            key: key.into(),
            at_s,
            fetched_at_s,
        }
    }

    fn cached(ds: &DatasetState, key: &str) -> bool {
        let e = &ds.engine;
        e.keys()
            .get(key)
            .and_then(|id| e.cache().entry(id))
            .is_some()
    }

    /// The engine plans with the 90th percentile of the upstream calls the
    /// fetch events report; a fetch without a call changes nothing.
    #[test]
    fn fetch_events_teach_the_engine_the_upstream_latency() {
        let mut ds = state();
        let t = 1_718_719_200.0;
        assert_eq!(ds.engine.config().upstream_latency_s, 0.0);
        for (i, took_s) in [0.05, 0.1, 0.4].into_iter().enumerate() {
            let at_s = t + 20.0 * i as f64;
            let ev = FetchEvent {
                upstream_s: Some(took_s),
                sent: true,
                batched: false,
                ..fetch("A", at_s)
            };
            ds.on_fetch(at_s, &ev);
        }
        assert_eq!(ds.engine.config().upstream_latency_s, 0.4);
        ds.on_fetch(t + 100.0, &fetch("B", t + 100.0));
        assert_eq!(ds.engine.config().upstream_latency_s, 0.4);
    }

    #[test]
    fn evictions_uncache_keys_even_ahead_of_their_fetch_event() {
        let mut ds = state();
        let t = 1_718_719_200.0;
        ds.on_fetch(t, &fetch("A", t));
        assert!(cached(&ds, "A"));
        ds.on_evicted(&eviction("A", t + 1.0, t));
        assert!(!cached(&ds, "A"));
        // B's entry is dropped while being stored: the eviction arrives
        // before the fetch event that stored it.
        ds.on_evicted(&eviction("B", t + 2.0, t + 1.5));
        ds.on_fetch(t + 2.0, &fetch("B", t + 1.5));
        assert!(!cached(&ds, "B"));
        // A later entry of B is another fetch: cached.
        ds.on_fetch(t + 3.0, &fetch("B", t + 3.0));
        assert!(cached(&ds, "B"));
        // An eviction of an older entry of a key the engine never saw.
        ds.on_evicted(&eviction("C", t + 4.0, t));
        assert_eq!(ds.engine.cache().len(), 1);
        assert_eq!((ds.evictions.events, ds.evictions.cached), (3, 1));
    }

    /// An engine order of `key` (read at `t`, stale at `t + 100`), opened.
    fn open_order(ds: &mut DatasetState, t: f64, key: &str) -> Order {
        let id = ds.engine.intern(key);
        let ctx = AccessContext::default();
        ds.engine.on_access(t, id, &ctx);
        ds.on_fetch(t, &fetch(key, t));
        let plan = ds.engine.warm_popular(t + 100.0, 10);
        assert_eq!(plan.orders.len(), 1, "{plan:?}");
        let o = plan.orders[0];
        ds.open_warm_order(key);
        Order {
            dataset: 0,
            key: key.into(),
            strategy: o.strategy,
            cycle: None,
            issued_at_s: o.issued_at_s,
            rides_along: o.rides_along,
        }
    }

    /// (fetches, wasted, pending) of the order's strategy.
    fn settled(ds: &DatasetState, o: &Order) -> (u64, u64, u64) {
        let s = ds.engine.stats().total.strategy(o.strategy);
        (s.warm_fetches, s.warm_wasted, s.warm_pending())
    }

    #[test]
    fn a_warm_order_whose_batch_call_left_out_its_key_is_wasted_not_pending() {
        let mut ds = state();
        let t = 1_718_719_200.0;
        let o = open_order(&mut ds, t, "A");
        assert_eq!(settled(&ds, &o), (1, 0, 1), "in flight");
        ds.end_warm_order(t + 101.0, &o, true);
        assert_eq!(settled(&ds, &o), (1, 1, 0));
        // An order that made no call is taken back: nothing wasted.
        let mut ds = state();
        let o = open_order(&mut ds, t, "B");
        ds.end_warm_order(t + 101.0, &o, false);
        assert_eq!(settled(&ds, &o), (0, 0, 0));
    }

    fn access(key: &str, at_s: f64, follows: bool) -> AccessEvent {
        let fetch = if follows {
            AccessFetch::Follows
        } else {
            AccessFetch::None
        };
        AccessEvent {
            fetch,
            ..AccessEvent::reported_miss("quote", key, at_s)
        }
    }

    /// Regression: a proxied miss's key looked absent until its demand
    /// fetch was reported, and warming paid a second call for it.
    #[test]
    fn a_proxied_miss_holds_warming_of_its_key_until_its_fetch_is_reported() {
        let mut ds = state();
        ds.demand_wait_s = 30.0;
        let t = 1_718_719_200.0;
        let id = |ds: &mut DatasetState, k: &str| ds.engine.intern(k);
        ds.on_access(t, &access("A", t, true));
        let a = id(&mut ds, "A");
        assert!(ds.engine.fetch_under_way(a, t + 1.0));
        ds.on_fetch(t + 0.2, &fetch("A", t + 0.2));
        assert!(!ds.engine.fetch_under_way(a, t + 1.0), "reported");
        // Refused before the upstream: reported too.
        ds.on_access(t + 40.0, &access("A", t + 40.0, true));
        let refused = FetchEvent {
            sent: false,
            ok: false,
            ..fetch("A", t + 40.1)
        };
        ds.on_fetch(t + 40.1, &refused);
        assert!(!ds.engine.fetch_under_way(a, t + 41.0));
        // A lost report holds the key no longer than the longest fetch.
        ds.on_access(t + 80.0, &access("A", t + 80.0, true));
        assert!(ds.engine.fetch_under_way(a, t + 109.0));
        assert!(!ds.engine.fetch_under_way(a, t + 110.0));
        // A fetch whose event overtook its read's access (applied first;
        // the access's time is then clamped past the read): no hold.
        ds.on_fetch(t + 200.2, &fetch("A", t + 200.2));
        ds.on_access(t + 200.2, &access("A", t + 200.0, true));
        assert!(!ds.engine.fetch_under_way(a, t + 201.0));
        // An access reported through `/v1/access` is fetched by no one.
        ds.on_access(t, &access("B", t, false));
        let b = id(&mut ds, "B");
        assert!(!ds.engine.fetch_under_way(b, t + 1.0));
    }
}
