//! The warming strategies: sources of candidates with an expected value.
//!
//! Each strategy turns what was learned into [`Candidate`]s for the
//! planner. The raw value of a candidate is the strategy's own estimate of
//! the chance that the fetch serves a hit; [`calibration`] rescales it by
//! what the strategy's fetches actually earned (the adaptive budget split),
//! and candidates the budget cannot reach in their window are not proposed
//! (bar a little exploration, so a strategy that under-promises can still
//! prove itself). Duplicates (same key, strategy and window within a
//! second) are proposed once.
//! The planner fetches a candidate only when its value clears a threshold
//! that rises from `spare_min_value` (full budget; `spare_floor_value`
//! while the API cost is under `max_cost_ratio`) to `min_value` (empty).
//!
//! Module map:
//! - `config`: the settings ([`WarmingConfig`], [`StrategyTuning`]) and
//!   their validation;
//! - [`keystate`]: per-key rate and cadence, fed by client accesses only;
//! - [`calibration`]: per-strategy factor from measured efficiency;
//! - `react`: strategies that react to an access or a fetch (refresh,
//!   time by cadence, predictive, popular keep-fresh);
//! - `ticks`: strategies that run on timers (popular list, trending,
//!   sector rotation, tracker upkeep).
//!
//! Invariants: nothing here reads a clock; a candidate is never proposed
//! for a key whose entry is fresh at the moment the candidate is needed;
//! demand fetches never pass through here.

pub mod calibration;
mod config;
pub mod keystate;
mod react;
mod ticks;

use crate::UnixSeconds;
use crate::cache::{CacheModel, KeyId, KeyTable};
use crate::planner::{Candidate, Planner};
use crate::strategy::{StrategyId, StrategySet};
use crate::tracker::{TrackedKey, Tracker};
use calibration::Calibration;
use keystate::{KeyStates, PairStates, Worth};
use rustc_hash::FxHashSet;

pub use config::{StrategyTuning, WarmingConfig};

/// Below this many recent fetches a strategy may explore candidates under
/// the value threshold, so that its calibration gets measured at all.
const MIN_EVIDENCE_FETCHES: f64 = 50.0;

/// What the strategies may read and write of the engine while they run.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The cache model (freshness checks).
    pub cache: &'a CacheModel,
    /// Where candidates go.
    pub planner: &'a mut Planner,
    /// What was learned.
    pub tracker: &'a mut Tracker,
    /// Key names to engine ids.
    pub keys: &'a mut KeyTable,
    /// Strategies allowed to warm.
    pub enabled: StrategySet,
    /// Engine key of each tracker slot, as of the key's last access (a
    /// hint checked against the handle's generation).
    pub by_slot: &'a [Option<(TrackedKey, KeyId)>],
    /// The warming budget as of now.
    pub budget: BudgetView,
}

/// What the strategies know of the warming budget.
#[derive(Debug, Clone, Copy)]
pub struct BudgetView {
    /// Tokens now.
    pub tokens: f64,
    /// Refill, tokens per second.
    pub rate_per_s: f64,
    /// Bucket capacity (at least 1).
    pub burst: f64,
    /// Whether the API cost has headroom for the least candidates.
    pub headroom: bool,
}

impl BudgetView {
    /// The fullest the bucket can be by `until_s` if nothing is spent.
    pub fn best_fill_by(&self, now_s: UnixSeconds, until_s: UnixSeconds) -> f64 {
        let tokens = self.tokens + self.rate_per_s * (until_s - now_s).max(0.0);
        (tokens / self.burst).min(1.0)
    }
}

impl Ctx<'_> {
    /// The engine key of a tracker handle: from `by_slot` when it still
    /// names the same key, else by name (interning it).
    pub fn key_of(&mut self, handle: TrackedKey) -> Option<KeyId> {
        if let Some(Some((h, k))) = self.by_slot.get(handle.slot() as usize)
            && *h == handle
        {
            return Some(*k);
        }
        let name = self.tracker.key_of(handle)?;
        Some(self.keys.intern(name))
    }
}

/// State of all strategies of one engine.
#[derive(Debug)]
pub struct Strategies {
    cfg: WarmingConfig,
    ttl_s: f64,
    /// Per-key timing, by engine key id.
    pub keys: KeyStates,
    /// Per-(client, key) timing.
    pub pairs: PairStates,
    /// Per-strategy calibration.
    pub calibration: Calibration,
    popular_set: FxHashSet<KeyId>,
    next_popular_s: UnixSeconds,
    next_trending_s: UnixSeconds,
    next_sector_s: UnixSeconds,
    next_maintain_s: UnixSeconds,
    explore_acc: f64,
    /// The window of the last candidate proposed per (key, strategy):
    /// a candidate within a second of it is a duplicate (a hot key's every
    /// late hit asks for the same refresh).
    last_proposed: rustc_hash::FxHashMap<(KeyId, StrategyId), (UnixSeconds, UnixSeconds)>,
}

/// Most (key, strategy) windows remembered for duplicate detection.
const MAX_LAST_PROPOSED: usize = 1 << 16;
/// Windows closer than this (s) at both ends are the same candidate.
const SAME_WINDOW_S: f64 = 1.0;

impl Strategies {
    /// Strategies for entries of `ttl_s`.
    pub fn new(cfg: WarmingConfig, ttl_s: f64) -> Self {
        let max_pairs = cfg.max_client_pairs;
        Strategies {
            cfg,
            ttl_s,
            keys: KeyStates::default(),
            pairs: PairStates::new(max_pairs),
            calibration: Calibration::default(),
            popular_set: FxHashSet::default(),
            next_popular_s: f64::NEG_INFINITY,
            next_trending_s: f64::NEG_INFINITY,
            next_sector_s: f64::NEG_INFINITY,
            next_maintain_s: f64::NEG_INFINITY,
            explore_acc: 0.0,
            last_proposed: rustc_hash::FxHashMap::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &WarmingConfig {
        &self.cfg
    }

    /// Proposes a candidate after calibration; returns whether it was.
    #[allow(clippy::too_many_arguments)]
    fn propose(
        &mut self,
        ctx: &mut Ctx<'_>,
        now_s: UnixSeconds,
        strategy: StrategyId,
        key: KeyId,
        worth: Worth,
        not_before_s: UnixSeconds,
        needed_at_s: UnixSeconds,
        expires_s: UnixSeconds,
    ) -> bool {
        if !ctx.enabled.contains(strategy) || is_fresh_at(ctx.cache, key, needed_at_s) {
            return false;
        }
        let mut value = self.calibration.calibrated(strategy, worth.p_hit) * worth.net;
        // The lowest threshold the budget can reach before the window
        // closes: a candidate under it would only wait and be shed.
        let reachable = self.threshold(
            ctx.budget.best_fill_by(now_s, expires_s),
            ctx.budget.headroom,
        );
        if value < reachable {
            // Exploration, only while the strategy has little evidence:
            // every 1/exploration-th such candidate is proposed at the
            // threshold, so that its fetch measures the strategy.
            if self.calibration.evidence(strategy) >= MIN_EVIDENCE_FETCHES {
                return false;
            }
            self.explore_acc += self.cfg.exploration;
            if self.explore_acc < 1.0 {
                return false;
            }
            self.explore_acc -= 1.0;
            value = reachable;
        }
        if self.is_duplicate(now_s, key, strategy, not_before_s, expires_s) {
            return false;
        }
        ctx.planner.propose(
            Candidate {
                key,
                strategy,
                value: value as f32,
                raw_value: worth.p_hit as f32,
                not_before_s,
                needed_at_s,
                expires_s,
            },
            now_s,
        );
        true
    }

    /// The lowest and highest thresholds: `spare_min_value` (or, while
    /// the API cost has headroom, `spare_floor_value`) to `min_value`.
    fn threshold_range(&self, headroom: bool) -> (f64, f64) {
        let hi = self.cfg.min_value;
        let lo = if headroom {
            let t = &self.cfg.strategy;
            t.spare_floor_value.min(t.spare_min_value)
        } else {
            self.cfg.strategy.spare_min_value
        };
        (lo.min(hi), hi)
    }

    /// Whether a pending candidate of `strategy` for `key` has the same
    /// window; otherwise records this one as the last.
    fn is_duplicate(
        &mut self,
        now_s: UnixSeconds,
        key: KeyId,
        strategy: StrategyId,
        not_before_s: UnixSeconds,
        expires_s: UnixSeconds,
    ) -> bool {
        if let Some(&(nb, ex)) = self.last_proposed.get(&(key, strategy))
            && ex > now_s
            && (nb - not_before_s).abs() < SAME_WINDOW_S
            && (ex - expires_s).abs() < SAME_WINDOW_S
        {
            return true;
        }
        if self.last_proposed.len() >= MAX_LAST_PROPOSED {
            self.last_proposed.retain(|_, w| w.1 > now_s);
            if self.last_proposed.len() >= MAX_LAST_PROPOSED / 2 {
                // Still crowded: forget it all (it only saves queue work)
                // rather than sweep it again at every proposal.
                self.last_proposed.clear();
            }
        }
        self.last_proposed
            .insert((key, strategy), (not_before_s, expires_s));
        false
    }

    /// The value a candidate needs to be fetched when the budget holds
    /// `fill` (tokens / burst, in [0, 1]); `headroom`: whether the API
    /// cost has headroom for the least candidates.
    pub fn threshold(&self, fill: f64, headroom: bool) -> f64 {
        let (lo, hi) = self.threshold_range(headroom);
        hi - (hi - lo) * fill.clamp(0.0, 1.0)
    }

    /// The budget fill at which a candidate worth `value` is fetched, or
    /// `None` if it never is.
    pub fn fill_needed(&self, value: f64, headroom: bool) -> Option<f64> {
        let (lo, hi) = self.threshold_range(headroom);
        if value >= hi {
            Some(0.0)
        } else if value < lo || hi <= lo {
            None
        } else {
            Some((hi - value) / (hi - lo))
        }
    }

    /// The next instant a timer strategy wants to run.
    pub fn next_tick_s(&self) -> UnixSeconds {
        self.next_popular_s
            .min(self.next_trending_s)
            .min(self.next_sector_s)
            .min(self.next_maintain_s)
    }
}

/// Whether `key`'s entry is fresh at `at_s` (the rule of [`crate::cache`]).
fn is_fresh_at(cache: &CacheModel, key: KeyId, at_s: UnixSeconds) -> bool {
    cache
        .entry(key)
        .is_some_and(|e| crate::cache::is_fresh(e.fetched_at_s, cache.ttl_s(), at_s))
}
