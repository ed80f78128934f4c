//! The warming strategies: sources of candidates with an expected value.
//!
//! Each strategy turns what was learned into [`Candidate`]s for the
//! planner. A strategy gives its own estimate of the chance that the key is
//! requested in the window a fetch would cover; the learned model
//! ([`crate::model`]) turns it, with the key's features, into the chance
//! the candidate is worth, and every candidate becomes a training example,
//! whatever is done with it. A candidate's value is that chance times the
//! share of a miss the fetch saves. Candidates whose value cannot beat the
//! price ([`BudgetView::threshold`]) before their window closes are not
//! queued. Duplicates (same key, strategy and window within a second) are
//! proposed once.
//!
//! Module map:
//! - `config`: the settings ([`WarmingConfig`], [`StrategyTuning`]) and
//!   their validation;
//! - [`keystate`]: per-key rate and cadence, fed by client accesses only;
//! - `react`: strategies that react to an access or a fetch (refresh,
//!   time by cadence, predictive, popular keep-fresh);
//! - `ticks`: strategies that run on timers (popular list, trending,
//!   sector rotation, tracker upkeep).
//!
//! Invariants: nothing here reads a clock; a candidate is never proposed
//! for a key whose entry is fresh at the moment the candidate is needed;
//! demand fetches never pass through here.

mod config;
pub mod keystate;
mod react;
mod ticks;

use crate::UnixSeconds;
use crate::cache::{CacheModel, KeyId, KeyTable};
use crate::calendar::LocalClock;
use crate::model::FeatureInputs;
use crate::model::learner::Learner;
use crate::planner::{Candidate, Planner};
use crate::strategy::{StrategyId, StrategySet};
use crate::time::UnixInstant;
use crate::tracker::Tracker;
use keystate::{KeyStates, PairStates, Worth};
use rustc_hash::FxHashSet;

pub use config::{StrategyTuning, WarmingConfig};

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

/// What the strategies know of the warming budget and its price.
#[derive(Debug, Clone, Copy)]
pub struct BudgetView {
    /// Tokens now.
    pub tokens: f64,
    /// Refill, tokens per second.
    pub rate_per_s: f64,
    /// Bucket capacity (at least 1).
    pub burst: f64,
    /// The cost cap's price: the value (expected demand calls saved per
    /// fetch) a candidate must beat whatever the bucket holds
    /// ([`crate::cost`]).
    pub price: f64,
    /// What a token usually buys: the mean value of recent warming fetches.
    /// A nearly empty bucket saves its tokens for candidates worth that.
    pub token_value: f64,
}

impl BudgetView {
    /// The fullest the bucket can be by `until_s` if nothing is spent.
    pub fn best_fill_by(&self, now_s: UnixSeconds, until_s: UnixSeconds) -> f64 {
        let tokens = self.tokens + self.rate_per_s * (until_s - now_s).max(0.0);
        (tokens / self.burst).min(1.0)
    }

    /// The value a candidate must beat when the bucket holds `fill`
    /// (tokens / burst, in [0, 1]): the cost cap's price, or, when tokens
    /// are scarce, what a token usually buys (a full bucket would lose its
    /// next token, so it costs nothing).
    pub fn threshold(&self, fill: f64) -> f64 {
        self.price
            .max((1.0 - fill.clamp(0.0, 1.0)) * self.token_value)
    }

    /// The least fill at which a candidate worth `value` beats the
    /// threshold, or `None` if it never does.
    pub fn fill_needed(&self, value: f64) -> Option<f64> {
        if value < self.price {
            None
        } else if self.token_value <= 0.0 {
            Some(0.0)
        } else {
            Some((1.0 - value / self.token_value).clamp(0.0, 1.0))
        }
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
    /// The learned model, its examples and its calibration.
    pub learner: Learner,
    /// Exchange-local time, for the market-session feature (made from the
    /// tracker's calendar at first use).
    clock: Option<LocalClock>,
    popular_set: FxHashSet<KeyId>,
    next_popular_s: UnixSeconds,
    next_trending_s: UnixSeconds,
    next_sector_s: UnixSeconds,
    next_maintain_s: UnixSeconds,
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
            learner: Learner::default(),
            clock: None,
            popular_set: FxHashSet::default(),
            next_popular_s: f64::NEG_INFINITY,
            next_trending_s: f64::NEG_INFINITY,
            next_sector_s: f64::NEG_INFINITY,
            next_maintain_s: f64::NEG_INFINITY,
            last_proposed: rustc_hash::FxHashMap::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &WarmingConfig {
        &self.cfg
    }

    /// Scores a candidate with the model (it becomes a training example)
    /// and queues it if its value can beat the price before its window
    /// closes; returns whether it was queued.
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
        if self.is_duplicate(now_s, key, strategy, not_before_s, expires_s) {
            return false;
        }
        let open_s = not_before_s.max(now_s);
        let inputs = self.feature_inputs(ctx, now_s, strategy, key, worth.p_hit, open_s);
        let p = self
            .learner
            .score(key, open_s, open_s + self.ttl_s, &inputs);
        let value = p * worth.net;
        // The lowest threshold the budget can reach before the window
        // closes: a candidate under it would only wait and be shed.
        if value
            < ctx
                .budget
                .threshold(ctx.budget.best_fill_by(now_s, expires_s))
        {
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

    /// What is known of `key` now, for the model.
    fn feature_inputs(
        &mut self,
        ctx: &Ctx<'_>,
        now_s: UnixSeconds,
        strategy: StrategyId,
        key: KeyId,
        strategy_p: f64,
        open_s: UnixSeconds,
    ) -> FeatureInputs {
        let ttl = self.ttl_s;
        let ks = self.keys.get(key);
        let clock = self
            .clock
            .get_or_insert_with(|| LocalClock::new(ctx.tracker.calendar().clone()));
        let cadence = ks.gaps >= 2 && ks.gap_mean_s > 0.0;
        FeatureInputs {
            strategy,
            session: clock.session_at(open_s),
            strategy_p,
            rate_short_per_ttl: ks.rate_at(now_s) * ttl,
            popularity: ctx.tracker.popularity(key, now_s).unwrap_or(0.0),
            since_last_ttl: (now_s - ks.last_access_s) / ttl,
            cadence_score: if cadence {
                f64::from(ks.cadence_score())
            } else {
                0.0
            },
            cadence_spread: if cadence {
                f64::from(ks.gap_dev_s / ks.gap_mean_s)
            } else {
                0.0
            },
            lead_ttl: (open_s - now_s) / ttl,
            entry_age_ttl: ctx.cache.entry(key).map(|e| (now_s - e.fetched_at_s) / ttl),
            gaps: ks.gaps,
        }
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
