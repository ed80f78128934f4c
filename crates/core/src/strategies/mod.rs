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
//! Every strategy is one file implementing the `Strategy` trait (what it
//! does on an access, on a fetch and on its timer, and its timer's
//! period); [`Strategies`] holds one of each, feeds the shared per-key
//! state, keeps the timer table and dispatches events to them in `ORDER`.
//! Adding a strategy: a variant in [`crate::strategy`], a file here, and
//! its place in `ORDER` and `build` (both fail to compile until it has
//! one).
//!
//! Module map:
//! - this file: the `Strategy` trait, `ORDER`, [`Strategies`] (the shared
//!   per-key and per-(client, key) timing, the timer table, the tracker's
//!   upkeep timer, the dispatch of events);
//! - `config`: the settings ([`WarmingConfig`], [`StrategyTuning`]) and
//!   their validation; each strategy reads its own part of them;
//! - [`keystate`]: per-key rate and cadence, fed by client accesses only;
//! - `propose`: the path every candidate takes (duplicate check, model
//!   features and score, price check, planner);
//! - `popular`: the decayed top-N, recomputed on a timer and kept fresh
//!   after each fetch;
//! - `time`: warming ahead of an expected access, by cadence (key, client
//!   on key) on an access and by time-of-day profile on a timer;
//! - `trending`: rising keys and their successors, on a timer;
//! - `predictive`: the successors of the key just requested;
//! - `refresh`: refresh-ahead on read, and the refresh lead time;
//! - `sector`: members of groups rotating in, on a timer.
//!
//! Invariants: nothing here reads a clock; a candidate is never proposed
//! for a key whose entry is fresh at the moment the candidate is needed;
//! demand fetches never pass through here.

mod config;
pub mod keystate;
mod popular;
mod predictive;
mod propose;
mod refresh;
mod sector;
mod time;
mod trending;

use crate::UnixSeconds;
use crate::cache::{CacheModel, KeyId, KeyTable};
use crate::model::learner::Learner;
use crate::planner::Planner;
use crate::strategy::{StrategyId, StrategySet};
use crate::tracker::Tracker;
use crate::ttl::TtlRule;
use keystate::{KeyState, KeyStates, PairStates};
use propose::{Proposals, Proposer};
use std::fmt;
use std::hash::{Hash, Hasher};

#[cfg(doc)]
use crate::planner::Candidate;
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
    /// How long an upstream fetch takes, seconds: a fetch serves from its
    /// start plus this, so timed warms lead by it.
    pub latency_s: f64,
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

/// One warming strategy: the candidates it proposes on an access, on a
/// fetch and on its timer, through the [`Proposer`] it is handed, charged
/// to its own id. Every method but [`Strategy::id`] does nothing by
/// default. A strategy that is not enabled is not called (its timer still
/// advances on time, so enabling it keeps the schedule). `Send + Sync`, as
/// the engine that holds it.
trait Strategy: fmt::Debug + Send + Sync {
    /// The strategy its candidates are charged to.
    fn id(&self) -> StrategyId;

    /// Reacts to a client access, after the shared per-key state took it
    /// in (`access`), at `p.now_s`.
    fn on_access(&mut self, _p: &mut Proposer<'_, '_>, _access: &Access) {}

    /// Reacts to a completed fetch of `key` (demand or warming) at
    /// `p.now_s`.
    fn on_fetched(&mut self, _p: &mut Proposer<'_, '_>, _key: KeyId) {}

    /// Runs its timer, due at or before `p.now_s`.
    fn on_tick(&mut self, _p: &mut Proposer<'_, '_>) {}

    /// Seconds from one run of its timer to the next (the first run is due
    /// at once); `None`: no timer.
    fn tick_interval_s(&self) -> Option<f64> {
        None
    }

    /// Forgets what it keeps of `key`, whose id is being released.
    fn forget(&mut self, _key: KeyId) {}
}

/// A client access, as the strategies see it.
#[derive(Debug, Clone, Copy)]
struct Access {
    /// The key requested.
    key: KeyId,
    /// The key's timing, this access included.
    key_state: KeyState,
    /// The timing of this client on this key, this access included;
    /// `None` for an anonymous access.
    pair_state: Option<KeyState>,
    /// The fetch time of the entry the access hit; `None` on a miss (whose
    /// demand fetch the driver makes at once).
    hit_fetched_at_s: Option<UnixSeconds>,
    /// The expiry of the entry the access hit ([`crate::ttl`]).
    hit_expires_at_s: Option<UnixSeconds>,
}

/// The order in which the strategies act on an event. The planner and the
/// model are order-sensitive, so it is fixed: on an access refresh, then
/// time, then predictive; on a tick popular, time, trending, sector.
const ORDER: [StrategyId; StrategyId::COUNT] = [
    StrategyId::Popular,
    StrategyId::Refresh,
    StrategyId::Time,
    StrategyId::Trending,
    StrategyId::Predictive,
    StrategyId::Sector,
];

/// The strategy `id`, with the settings of `cfg`.
fn build(id: StrategyId, cfg: &WarmingConfig) -> Box<dyn Strategy> {
    match id {
        StrategyId::Popular => Box::new(popular::Popular::new(cfg)),
        StrategyId::Time => Box::new(time::Time::new(cfg)),
        StrategyId::Trending => Box::new(trending::Trending::new(cfg)),
        StrategyId::Predictive => Box::new(predictive::Predictive::new(cfg)),
        StrategyId::Refresh => Box::new(refresh::Refresh::new(cfg)),
        StrategyId::Sector => Box::new(sector::Sector::new(cfg)),
    }
}

/// A stable 64-bit hash of a client id.
fn client_hash(client: &str) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    client.hash(&mut h);
    h.finish()
}

/// The client side of a (client, key) pair's identity: the client's hash
/// with the key id's generation folded in, so that a released and reused
/// id never meets the cadences of the key it named before. Generation 0
/// (an id never reused) leaves the hash as it is.
fn pair_client(client: &str, key_generation: u32) -> u64 {
    client_hash(client) ^ u64::from(key_generation).wrapping_mul(0xD6E8_FEB8_6659_FD93)
}

/// State of all strategies of one engine.
#[derive(Debug)]
pub struct Strategies {
    cfg: WarmingConfig,
    ttl: TtlRule,
    /// Per-key timing, by engine key id.
    pub keys: KeyStates,
    /// Per-(client, key) timing.
    pub pairs: PairStates,
    /// The learned model, its examples and its calibration.
    pub learner: Learner,
    /// What the proposal path keeps between events.
    proposals: Proposals,
    /// One of each strategy, in [`ORDER`].
    list: Vec<Box<dyn Strategy>>,
    /// When each strategy's timer is next due, by [`StrategyId::index`]
    /// (infinity: no timer).
    next_tick_s: [UnixSeconds; StrategyId::COUNT],
    /// When the tracker's upkeep is next due.
    next_upkeep_s: UnixSeconds,
}

impl Strategies {
    /// Strategies for entries that expire by `ttl` (a [`TtlRule`] or a
    /// flat TTL in seconds). Each event sees the TTL of an entry fetched
    /// at its instant ([`TtlRule::ttl_at`]).
    pub fn new(cfg: WarmingConfig, ttl: impl Into<TtlRule>) -> Self {
        let max_pairs = cfg.max_client_pairs;
        let list: Vec<Box<dyn Strategy>> = ORDER.into_iter().map(|id| build(id, &cfg)).collect();
        let mut next_tick_s = [f64::INFINITY; StrategyId::COUNT];
        for s in &list {
            if s.tick_interval_s().is_some() {
                // Timers not yet run are due at once.
                next_tick_s[s.id().index()] = f64::NEG_INFINITY;
            }
        }
        Strategies {
            cfg,
            ttl: ttl.into(),
            keys: KeyStates::default(),
            pairs: PairStates::new(max_pairs),
            learner: Learner::default(),
            proposals: Proposals::default(),
            list,
            next_tick_s,
            next_upkeep_s: f64::NEG_INFINITY,
        }
    }

    /// The settings.
    pub fn config(&self) -> &WarmingConfig {
        &self.cfg
    }

    /// The strategies in [`ORDER`], the timer table, and a proposer for an
    /// event at `now_s`.
    fn split<'p, 'c>(
        &'p mut self,
        ctx: &'p mut Ctx<'c>,
        now_s: UnixSeconds,
    ) -> (
        &'p mut [Box<dyn Strategy>],
        &'p mut [UnixSeconds; StrategyId::COUNT],
        Proposer<'p, 'c>,
    ) {
        let p = Proposer::new(
            ctx,
            now_s,
            self.ttl.ttl_at(now_s),
            &self.keys,
            &mut self.learner,
            &mut self.proposals,
        );
        (&mut self.list, &mut self.next_tick_s, p)
    }

    /// Reacts to a client access of `key` at `now_s`. `hit` is the fetch
    /// time and expiry of the entry it hit, `None` on a miss (whose
    /// demand fetch the driver makes at once).
    pub fn on_access(
        &mut self,
        ctx: &mut Ctx<'_>,
        now_s: UnixSeconds,
        key: KeyId,
        client: Option<&str>,
        hit: Option<(UnixSeconds, UnixSeconds)>,
    ) {
        let ttl_s = self.ttl.ttl_at(now_s);
        let key_state = self.keys.on_access(key, now_s, ttl_s);
        let pair_state = client.map(|c| {
            let who = pair_client(c, ctx.keys.stamp(key).generation);
            self.pairs.on_access(who, key, now_s, ttl_s)
        });
        let access = Access {
            key,
            key_state,
            pair_state,
            hit_fetched_at_s: hit.map(|h| h.0),
            hit_expires_at_s: hit.map(|h| h.1),
        };
        let (list, _, mut p) = self.split(ctx, now_s);
        for s in list {
            if p.ctx.enabled.contains(s.id()) {
                s.on_access(&mut p, &access);
            }
        }
    }

    /// Reacts to a completed fetch of `key` at `now_s` (the popular list
    /// keeps its members fresh).
    pub fn on_fetched(&mut self, ctx: &mut Ctx<'_>, now_s: UnixSeconds, key: KeyId) {
        let (list, _, mut p) = self.split(ctx, now_s);
        for s in list {
            if p.ctx.enabled.contains(s.id()) {
                s.on_fetched(&mut p, key);
            }
        }
    }

    /// Runs every timer due at or before `now_s`: the tracker's upkeep
    /// first, then each strategy's.
    pub fn tick(&mut self, ctx: &mut Ctx<'_>, now_s: UnixSeconds) {
        if now_s >= self.next_upkeep_s {
            ctx.tracker.maintain(now_s);
            self.next_upkeep_s = now_s + self.cfg.maintain_interval_s;
        }
        let (list, next_tick_s, mut p) = self.split(ctx, now_s);
        for s in list {
            let i = s.id().index();
            if let Some(interval_s) = s.tick_interval_s()
                && now_s >= next_tick_s[i]
            {
                if p.ctx.enabled.contains(s.id()) {
                    s.on_tick(&mut p);
                }
                next_tick_s[i] = now_s + interval_s;
            }
        }
    }

    /// The value of a candidate of `strategy` for `key` worth `worth`,
    /// its window opening at `now_s`, by the one path's model and saving
    /// share (`propose`); it becomes a training example. `0` when the
    /// strategy is not enabled. The start-up cycle values its keys so.
    pub fn value_now(
        &mut self,
        ctx: &mut Ctx<'_>,
        now_s: UnixSeconds,
        strategy: StrategyId,
        key: KeyId,
        worth: keystate::Worth,
    ) -> f64 {
        if !ctx.enabled.contains(strategy) {
            return 0.0;
        }
        let (_, _, mut p) = self.split(ctx, now_s);
        p.value(strategy, key, worth, now_s)
    }

    /// Forgets what is kept about `key`, whose id is being released (and
    /// will name another key): its timing, what the strategies keep of it
    /// (its place on the popular list), its last proposals. Its (client,
    /// key) cadences are keyed by the id's generation too, so they cannot
    /// pass to the next key.
    pub fn forget(&mut self, key: KeyId) {
        self.keys.forget(key);
        for s in &mut self.list {
            s.forget(key);
        }
        self.proposals.forget(key);
    }

    /// The next instant a timer (a strategy's or the tracker's upkeep)
    /// wants to run.
    pub fn next_tick_s(&self) -> UnixSeconds {
        self.next_tick_s
            .iter()
            .fold(self.next_upkeep_s, |t, &s| t.min(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_holds_every_strategy_once_built_as_itself() {
        let mut seen = [false; StrategyId::COUNT];
        for id in ORDER {
            assert!(!seen[id.index()], "{id} twice in ORDER");
            seen[id.index()] = true;
            assert_eq!(build(id, &WarmingConfig::default()).id(), id);
        }
        assert!(seen.iter().all(|&s| s), "ORDER misses a strategy");
    }

    #[test]
    fn order_keeps_the_sequence_of_each_event() {
        let at = |id: StrategyId| ORDER.iter().position(|&s| s == id).unwrap();
        use StrategyId::*;
        assert!(at(Refresh) < at(Time) && at(Time) < at(Predictive));
        assert!(at(Popular) < at(Time) && at(Time) < at(Trending));
        assert!(at(Trending) < at(Sector));
    }

    #[test]
    fn the_timers_of_disabled_strategies_keep_time() {
        use crate::engine::{Engine, EngineConfig};
        use crate::tracker::AccessContext;
        let mut cfg = EngineConfig::default();
        cfg.warming.strategies = StrategySet::NONE;
        let w = &cfg.warming;
        let soonest_s = [
            w.popular_interval_s,
            w.maintain_interval_s,
            w.strategy.trending_interval_s,
            w.strategy.sector_interval_s,
        ]
        .into_iter()
        .fold(f64::INFINITY, f64::min);
        let mut e = Engine::new(cfg).unwrap();
        let k = e.intern("AAPL");
        e.on_access(0.0, k, &AccessContext::default());
        e.handle_timeout(0.0);
        // Every timer ran at 0 (without calling its strategy) and is next
        // due a period later, not at once again.
        assert_eq!(e.next_timeout(), Some(soonest_s));
    }

    #[test]
    fn timers_start_due_and_strategies_without_one_never_are() {
        let s = Strategies::new(WarmingConfig::default(), 60.0);
        assert_eq!(s.next_tick_s(), f64::NEG_INFINITY);
        for id in [StrategyId::Refresh, StrategyId::Predictive] {
            assert_eq!(s.next_tick_s[id.index()], f64::INFINITY, "{id}");
        }
        for id in [
            StrategyId::Popular,
            StrategyId::Time,
            StrategyId::Trending,
            StrategyId::Sector,
        ] {
            assert_eq!(s.next_tick_s[id.index()], f64::NEG_INFINITY, "{id}");
        }
    }
}
