//! One dataset's engine inside the driver: config mapping, events in,
//! and the view out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prewarm_core::cache::FetchOrigin;
use prewarm_core::engine::{ConfigError, Engine, EngineConfig};
use prewarm_core::stats::Counters;
use prewarm_core::strategy::{StrategyId, StrategySet};
use prewarm_core::tracker::{AccessContext, TrackerConfig};
use prewarm_core::universe::{Membership, apply_universe};

use super::gate::SessionGate;
use super::view::{
    CycleCounts, DatasetView, Evictions, Figures, SnapshotInfo, WarmOutcomes, counters_since,
};
use crate::config::{DatasetConfig, WarmingConfig};
use crate::events::{AccessEvent, EvictionEvent, FetchEvent};

/// Maps a dataset and `[warming]` into the engine's configuration.
pub fn engine_config(ttl_s: f64, w: &WarmingConfig) -> EngineConfig {
    EngineConfig {
        ttl_s,
        warm_rate_per_min: w.rate_limit_per_min,
        warm_burst: w.burst,
        capacity_entries: None,
        strategies: if w.enabled {
            w.strategies
        } else {
            StrategySet::NONE
        },
        warming: w.core(),
        tracker: TrackerConfig::default(),
        max_queued_candidates: 100_000,
        // No series: it grows with uptime. Daily figures come from a
        // baseline copy of the totals taken at midnight.
        series_bucket_s: None,
    }
}

/// The snapshot file of `dataset` in `state_dir`.
pub fn snapshot_path(state_dir: &Path, dataset: &str) -> PathBuf {
    state_dir.join(format!("{dataset}.snapshot"))
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
    /// Totals at the last midnight cleanup.
    pub day_start: (Counters, CycleCounts),
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
}

/// Most keys remembered in [`DatasetState`]'s recent evictions. An
/// eviction overtakes its fetch event only by the moments between a store
/// put and the event's send, so a small memory is enough.
const RECENT_EVICTIONS: usize = 4096;

impl DatasetState {
    /// The engine of `ds` under `w`, snapshot file in `state_dir`.
    pub fn new(
        ds: &DatasetConfig,
        w: &WarmingConfig,
        state_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let cfg = engine_config(ds.ttl_s, w);
        let burst = cfg.warm_burst.unwrap_or(cfg.warm_rate_per_min);
        let gate = SessionGate::new(
            w.outside_sessions,
            w.outside_rate_factor,
            cfg.warm_rate_per_min,
            burst,
        );
        let path = snapshot_path(state_dir, &ds.name);
        let mut state = Self {
            name: ds.name.clone(),
            engine: Engine::new(cfg)?,
            gate,
            cycle_fetches: [0; StrategyId::COUNT],
            day_start: (Counters::default(), [0; StrategyId::COUNT]),
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
        let ctx = AccessContext {
            client: ev.client.as_deref(),
            groups: &[],
        };
        self.engine.on_access(at_s, key, &ctx);
    }

    /// Applies a completed fetch at `at_s` (already clamped).
    pub fn on_fetch(&mut self, at_s: f64, ev: &FetchEvent) {
        let key = self.engine.intern(&ev.key);
        self.engine.on_fetched(at_s, key, ev.origin, ev.ok);
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

    /// Ends a warming order of `key` that stored nothing through its own
    /// call (joined, paused, failed): the engine stops counting it in
    /// flight. By name: the order's id may have been released meanwhile
    /// if a failed fetch's event ended it first.
    pub fn warm_ended_without_store(&mut self, at_s: f64, key: &str, strategy: StrategyId) {
        if let Some(id) = self.engine.keys().get(key) {
            self.engine
                .on_fetched(at_s, id, FetchOrigin::Warm(strategy), false);
        }
    }

    /// Rolls "today" over (midnight cleanup).
    pub fn roll_day(&mut self) {
        self.day_start = (self.engine.stats().total, self.cycle_fetches);
    }

    /// The dataset's view at `now_s`.
    pub fn view(&mut self, now_s: f64, gate: super::gate::GateState) -> DatasetView {
        let total = self.engine.stats().total;
        let mut today_cycles = self.cycle_fetches;
        for (t, s) in today_cycles.iter_mut().zip(self.day_start.1.iter()) {
            *t = t.saturating_sub(*s);
        }
        DatasetView {
            ttl_s: self.engine.config().ttl_s,
            warm_rate_per_min: self.engine.config().warm_rate_per_min,
            budget_tokens: self.engine.budget_tokens(now_s),
            queued_candidates: self.engine.queued_candidates(),
            cost_ratio_recent: self.engine.cost_ratio(),
            gate,
            total: Figures::new(&total, &self.cycle_fetches),
            today: Figures::new(&counters_since(&total, &self.day_start.0), &today_cycles),
            warm_outcomes: self.outcomes,
            tracker: self.engine.tracker_stats(now_s),
            snapshot: self.snapshot.clone(),
            cached_entries: self.engine.cache().len(),
            evictions: self.evictions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;

    fn state() -> DatasetState {
        let cfg = RawConfig::from_toml("[datasets.quote]\nurl = \"http://x/{key}\"\n", "t.toml")
            .unwrap()
            .validate(&|_| None)
            .unwrap();
        DatasetState::new(&cfg.datasets["quote"], &cfg.warming, Path::new("/none")).unwrap()
    }

    fn fetch(key: &str, fetched_at_s: f64) -> FetchEvent {
        FetchEvent {
            dataset: "quote".into(),
            key: key.into(),
            at_s: fetched_at_s,
            origin: FetchOrigin::Demand,
            ok: true,
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
        let cal = prewarm_core::calendar::ExchangeCalendar::nyse();
        let gate = ds.gate.state(&cal, t + 5.0);
        assert_eq!(ds.view(t + 5.0, gate).cached_entries, 1);
    }
}
