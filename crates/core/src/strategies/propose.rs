//! The one path every candidate takes, whatever strategy proposes it:
//! enabled and not fresh when needed, not a duplicate, scored by the
//! learned model (which keeps it as a training example), and queued on the
//! planner if its value can beat the price before its window closes.
//!
//! [`Proposals`] is what this path keeps between events (the duplicate
//! book, the exchange clock); [`Proposer`] is what a strategy is handed
//! while it reacts to one event: the engine's [`Ctx`], the instant, the
//! TTL, the per-key timing and the learner.

use super::Ctx;
use super::keystate::{KeyState, KeyStates, Worth};
use crate::UnixSeconds;
use crate::cache::KeyId;
use crate::calendar::LocalClock;
use crate::model::FeatureInputs;
use crate::model::learner::Learner;
use crate::planner::Candidate;
use crate::strategy::StrategyId;
use crate::time::UnixInstant;
use rustc_hash::FxHashMap;

/// Most (key, strategy) windows remembered for duplicate detection.
const MAX_LAST_PROPOSED: usize = 1 << 16;
/// Windows closer than this (s) at both ends are the same candidate.
const SAME_WINDOW_S: f64 = 1.0;

/// What the proposal path keeps between events.
#[derive(Debug, Default)]
pub(super) struct Proposals {
    /// Exchange-local time, for the market-session feature (made from the
    /// tracker's calendar at first use).
    clock: Option<LocalClock>,
    /// The window of the last candidate proposed per (key, strategy):
    /// a candidate within a second of it is a duplicate (a hot key's every
    /// late hit asks for the same refresh).
    last_proposed: FxHashMap<(KeyId, StrategyId), (UnixSeconds, UnixSeconds)>,
}

impl Proposals {
    /// Forgets the last proposals for `key`, whose id is being released.
    pub(super) fn forget(&mut self, key: KeyId) {
        for s in StrategyId::ALL {
            self.last_proposed.remove(&(key, s));
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
}

/// What a strategy may use while it reacts to one event at `now_s`.
#[derive(Debug)]
pub(super) struct Proposer<'p, 'c> {
    /// The engine's parts the strategies see (tracker, enabled set…).
    pub ctx: &'p mut Ctx<'c>,
    /// The instant of the event, seconds.
    pub now_s: UnixSeconds,
    /// How long an entry stays fresh, seconds.
    pub ttl_s: f64,
    /// Per-key timing, as of this event.
    keys: &'p KeyStates,
    /// The learned model that scores every candidate.
    learner: &'p mut Learner,
    /// The duplicate book and the exchange clock.
    book: &'p mut Proposals,
}

impl<'p, 'c> Proposer<'p, 'c> {
    /// A proposer for an event at `now_s` on entries of `ttl_s`.
    pub(super) fn new(
        ctx: &'p mut Ctx<'c>,
        now_s: UnixSeconds,
        ttl_s: f64,
        keys: &'p KeyStates,
        learner: &'p mut Learner,
        book: &'p mut Proposals,
    ) -> Self {
        Proposer {
            ctx,
            now_s,
            ttl_s,
            keys,
            learner,
            book,
        }
    }

    /// The end of the window of a candidate proposed on a timer of period
    /// `interval_s`: the next run, at most a TTL away.
    pub fn until_next_tick_s(&self, interval_s: f64) -> UnixSeconds {
        self.now_s + interval_s.min(self.ttl_s)
    }

    /// The timing of `key` as of this event.
    pub fn key(&self, key: KeyId) -> KeyState {
        self.keys.get(key)
    }

    /// Scores a candidate of `strategy` for `key`, worth `worth` by the
    /// strategy's own estimate, to be fetched in `[not_before_s,
    /// expires_s]` and needed fresh at `needed_at_s`, with the model (it
    /// becomes a training example) and queues it if its value can beat the
    /// price before its window closes; returns whether it was queued.
    pub fn propose(
        &mut self,
        strategy: StrategyId,
        key: KeyId,
        worth: Worth,
        not_before_s: UnixSeconds,
        needed_at_s: UnixSeconds,
        expires_s: UnixSeconds,
    ) -> bool {
        let now_s = self.now_s;
        let ctx = &mut *self.ctx;
        if !ctx.enabled.contains(strategy) || ctx.cache.is_fresh_at(key, UnixInstant(needed_at_s)) {
            return false;
        }
        if self
            .book
            .is_duplicate(now_s, key, strategy, not_before_s, expires_s)
        {
            return false;
        }
        let open_s = not_before_s.max(now_s);
        let value = self.value(strategy, key, worth, open_s);
        let ctx = &mut *self.ctx;
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

    /// The value of a candidate of `strategy` for `key`, worth `worth` by
    /// the strategy's own estimate, whose window opens at `open_s`: the
    /// model's chance that the key is requested within a TTL of `open_s`
    /// times the share of a miss the fetch saves. The candidate becomes a
    /// training example, whatever is done with it.
    pub fn value(
        &mut self,
        strategy: StrategyId,
        key: KeyId,
        worth: Worth,
        open_s: UnixSeconds,
    ) -> f64 {
        let inputs = self.feature_inputs(strategy, key, worth.p_hit, open_s);
        let p = self
            .learner
            .score(key, open_s, open_s + self.ttl_s, &inputs);
        p * worth.net
    }

    /// What is known of `key` now, for the model.
    fn feature_inputs(
        &mut self,
        strategy: StrategyId,
        key: KeyId,
        strategy_p: f64,
        open_s: UnixSeconds,
    ) -> FeatureInputs {
        let (now_s, ttl) = (self.now_s, self.ttl_s);
        let ctx = &*self.ctx;
        let ks = self.keys.get(key);
        let clock = self
            .book
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
}
