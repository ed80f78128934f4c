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
pub mod keystate;
mod react;
mod ticks;

use crate::UnixSeconds;
use crate::cache::{CacheModel, KeyId, KeyTable};
use crate::planner::{Candidate, Planner};
use crate::strategy::{StrategyId, StrategySet};
use crate::time::UnixInstant;
use crate::tracker::Tracker;
use calibration::Calibration;
use keystate::{KeyStates, PairStates, Worth};
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

/// Settings of the strategies. Defaults follow the seed's `WarmingConfig`
/// where it has a value that still makes sense.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WarmingConfig {
    /// Candidates whose calibrated value (chance of serving a hit) is below
    /// this are not fetched: at 0.5 a fetch is expected to save at least as
    /// many calls as it wastes.
    pub min_value: f64,
    /// The threshold when the budget is full: tokens that would otherwise
    /// be lost are spent on candidates worth at least this. Between an
    /// empty and a full bucket the threshold moves linearly from
    /// `min_value`. On sparse traffic (the budget rarely used up) this is
    /// what lets warming pay for lesser candidates at all; where the
    /// budget is saturated it has no effect.
    pub spare_min_value: f64,
    /// While the API cost is under `max_cost_ratio`, spare tokens go down
    /// to candidates worth this (instead of `spare_min_value`): the cost
    /// cap, not this floor, bounds what they spend.
    pub spare_floor_value: f64,
    /// Spare tokens go to candidates under `spare_min_value` (down to
    /// `spare_floor_value`) only while the API calls stay within this
    /// multiple of what a cache without warming would make (measured on a
    /// shadow of the cache, over about the last day; see `engine::cost`).
    pub max_cost_ratio: f64,
    /// Share of below-threshold candidates let through anyway, so that a
    /// strategy that under-estimates itself gets measured.
    pub exploration: f64,
    /// Refresh-ahead starts when an entry's age reaches this share of its
    /// TTL (the seed's `refresh_threshold`).
    pub refresh_fraction: f64,
    /// Size of the popular list kept fresh (the seed's `popular.limit`).
    pub popular_limit: usize,
    /// Seconds between recomputations of the popular list.
    pub popular_interval_s: f64,
    /// Lowest P(next | current) a prediction needs (the seed's
    /// `predictive.confidence_threshold` is 0.7; calibration decides the
    /// rest).
    pub predictive_confidence_threshold: f64,
    /// Most predictions followed per access.
    pub predictive_limit: usize,
    /// Seconds between trending scans.
    pub trending_interval_s: f64,
    /// Most trending keys acted on per scan.
    pub trending_limit: usize,
    /// Seconds between sector-rotation scans (the seed's
    /// `sector_rotation.interval` is 3,600; bursts move faster).
    pub sector_interval_s: f64,
    /// A group whose short share over its long share exceeds this lift is
    /// rotating in.
    pub sector_min_lift: f64,
    /// Members of a rotating group warmed per scan.
    pub sector_members: usize,
    /// Seconds between tracker upkeep runs.
    pub maintain_interval_s: f64,
    /// Most (client, key) cadences tracked; the idlest are dropped beyond.
    pub max_client_pairs: usize,
}

impl Default for WarmingConfig {
    fn default() -> Self {
        WarmingConfig {
            min_value: 0.5,
            spare_min_value: 0.25,
            spare_floor_value: 0.05,
            max_cost_ratio: 1.25,
            exploration: 0.02,
            refresh_fraction: 0.8,
            popular_limit: 100,
            popular_interval_s: 60.0,
            predictive_confidence_threshold: 0.7,
            predictive_limit: 4,
            trending_interval_s: 10.0,
            trending_limit: 20,
            sector_interval_s: 300.0,
            sector_min_lift: 1.5,
            sector_members: 10,
            maintain_interval_s: 300.0,
            max_client_pairs: 200_000,
        }
    }
}

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
    /// The key table (generations of key ids).
    pub keys: &'a KeyTable,
    /// Strategies allowed to warm.
    pub enabled: StrategySet,
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
        if !ctx.enabled.contains(strategy) || ctx.cache.is_fresh_at(key, UnixInstant(needed_at_s)) {
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
            self.cfg.spare_floor_value.min(self.cfg.spare_min_value)
        } else {
            self.cfg.spare_min_value
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

    /// Forgets what is kept about `key`, whose id is being released (and
    /// will name another key): its timing, its place on the popular list,
    /// its last proposals. Its (client, key) cadences are keyed by the id's
    /// generation too, so they cannot pass to the next key.
    pub fn forget(&mut self, key: KeyId) {
        self.keys.forget(key);
        self.popular_set.remove(&key);
        for s in StrategyId::ALL {
            self.last_proposed.remove(&(key, s));
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
