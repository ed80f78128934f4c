//! The start-up cycle: after a restore, before any traffic, the engine
//! warms the keys most likely to be requested within the next TTL.
//!
//! Which keys: those the snapshot handed over (module `handover`: cached
//! when the last process stopped), the popular list and the keys the
//! time-of-day profile expects within the next TTL, all at `now` (the
//! current market session and time of day). Each is valued by the one
//! path every candidate takes ([`crate::strategies`]: the strategy's own
//! estimate, the learned model at the current session, the share of a
//! miss saved) and must beat the cost cap's price, like every warming
//! fetch. Handed-over keys whose entry was fresh within the last TTL come
//! first (they were hot), then the rest, best value first.
//!
//! What it may spend: the start-up burst `g` (`warming.startup_burst`,
//! default one bucket), beside the token bucket, which stays full for the
//! warming that follows. Every order is an API call in the cost account,
//! lent by the account up to `g` ([`crate::cost`], "A start-up cycle's
//! loan"): `calls + at risk ≤ c · shadow + b + g` always (property test in
//! `tests`), and ordinary warming waits until the traffic has earned the
//! loan back, so that over the cap's window the cap holds.
//!
//! With batched warming (module `batch`), each call of the burst fetches
//! up to `warm_batch_max_keys` keys: the next keys in rank with a positive
//! value ride along in it, whatever the price.
//!
//! Charged to: `popular` for popular and handed-over keys, `time` for the
//! time-of-day profile's; a disabled strategy's keys are not considered.

use super::{Engine, Pay, WarmOrder};
use crate::UnixSeconds;
use crate::cache::KeyId;
use crate::strategies::keystate::Worth;
use crate::strategy::StrategyId;
use crate::time::UnixInstant;
use rustc_hash::FxHashMap;

/// What the start-up cycle decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StartupPlan {
    /// Fetches to make now; each that does not ride along in the call of
    /// the one before it is an API call counted in the cost account.
    pub orders: Vec<WarmOrder>,
    /// Distinct keys considered.
    pub candidates: usize,
    /// Of those, keys the snapshot handed over.
    pub handed_over: usize,
    /// Not fetched: fresh already (e.g. entered from a store that kept its
    /// values) or in flight.
    pub fresh: usize,
    /// Not fetched: worth less than the price.
    pub below_price: usize,
    /// Not fetched: the start-up burst or the cost cap's room ran out.
    pub no_budget: usize,
}

/// One key considered: its strategy, its estimate, whether it was hot.
#[derive(Debug, Clone, Copy)]
struct Considered {
    strategy: StrategyId,
    worth: Worth,
    hot: bool,
}

impl Considered {
    fn new(strategy: StrategyId, worth: Worth, hot: bool) -> Self {
        Considered {
            strategy,
            worth,
            hot,
        }
    }
}

impl Engine {
    /// Plans the start-up cycle at `now_s` (see the module docs). Call it
    /// once, after [`Engine::restore`] and before the first access; the
    /// driver performs the orders as any warming order (each ends with
    /// [`Engine::on_fetched`]). The handed-over entries are consumed. An
    /// engine that restored nothing plans nothing and is left as it was.
    pub fn plan_startup(&mut self, now_s: UnixSeconds) -> StartupPlan {
        if self.tracker.is_empty() && self.handover.is_empty() {
            // Nothing restored: nothing to warm, and the engine's clock
            // and timers start with the first access, as on a cold start.
            return StartupPlan::default();
        }
        self.now_s = self.now_s.max(now_s);
        // The bucket starts full now, for the warming that follows.
        self.budget.available(now_s);
        self.strategies.learner.advance(now_s);
        self.cost.advance(now_s);
        let considered = self.startup_keys(now_s);
        let mut plan = StartupPlan {
            candidates: considered.len(),
            ..StartupPlan::default()
        };
        let mut ranked = Vec::with_capacity(considered.len());
        for (key, c) in considered {
            plan.handed_over += usize::from(c.hot);
            if self.cache.is_fresh_at(key, UnixInstant(now_s)) || self.flights.under_way(key, now_s)
            {
                plan.fresh += 1;
                continue;
            }
            let value = {
                let (strategies, mut ctx) = self.split();
                strategies.value_now(&mut ctx, now_s, c.strategy, key, c.worth)
            };
            ranked.push((key, c, value));
        }
        // Hot keys first, then by value; key ids break ties.
        ranked.sort_by(|a, b| {
            b.1.hot
                .cmp(&a.1.hot)
                .then(b.2.total_cmp(&a.2))
                .then(a.0.cmp(&b.0))
        });
        let loan = self.cfg.warming.startup_allowance();
        let mut left = loan;
        self.close_batch_call();
        for (key, c, value) in ranked {
            // A seat in the last paid call costs nothing (module `batch`).
            if value > 0.0 && self.take_seat(now_s) {
                let order = self.issue(now_s, (key, c.strategy, value), Pay::RideAlong);
                plan.orders.push(order);
                continue;
            }
            // The price of the account as the loan is spent.
            if value <= self.cost.threshold_with(loan) || value <= 0.0 {
                plan.below_price += 1;
                continue;
            }
            if left < 1.0 || !self.cost.may_warm_with(loan) {
                plan.no_budget += 1;
                continue;
            }
            left -= 1.0;
            let order = self.issue(now_s, (key, c.strategy, value), Pay::StartupBurst);
            plan.orders.push(order);
        }
        self.close_batch_call();
        plan
    }

    /// The keys the start-up cycle considers, each once (handed over, then
    /// popular, then time of day; the first source of a key names it).
    fn startup_keys(&mut self, now_s: UnixSeconds) -> Vec<(KeyId, Considered)> {
        let (ttl_s, w) = (self.cfg.ttl_s, &self.cfg.warming);
        let enabled = w.strategies;
        let limit = w.popular_limit;
        // Decayed accesses over the half-life's mean life: a rate.
        let per_pop_s = std::f64::consts::LN_2 / self.tracker.config().popularity_half_life_s;
        // The highest of three rates: the one the time-of-day profile
        // expects now, the popularity's steady-state rate, and recency's
        // (one access per the time since the last plus a TTL: a key read
        // just before the stop is taken to be read about once a TTL).
        let pop_worth = |t: &crate::tracker::Tracker, key: KeyId| {
            let pop = t.popularity(key, now_s).unwrap_or(0.0);
            let recency = t
                .last_access_s(key)
                .map_or(0.0, |last_s| 1.0 / ((now_s - last_s).max(0.0) + ttl_s));
            let rate = t
                .expected_rate(key, now_s)
                .max(pop * per_pop_s)
                .max(recency);
            Worth::keep_fresh(rate, ttl_s)
        };
        let mut out: Vec<(KeyId, Considered)> = Vec::new();
        let mut index: FxHashMap<KeyId, usize> = FxHashMap::default();
        let mut add = |key: KeyId, c: Considered| {
            index.entry(key).or_insert_with(|| {
                out.push((key, c));
                out.len() - 1
            });
        };
        if enabled.contains(StrategyId::Popular) {
            for h in std::mem::take(&mut self.handover) {
                let Some(key) = self.keys.get(&h.key) else {
                    continue;
                };
                if !self.tracker.is_tracked(key) {
                    continue; // nothing known of it: no estimate
                }
                let hot = h.expires_at_s + ttl_s >= now_s;
                let worth = pop_worth(&self.tracker, key);
                let strategy = StrategyId::Popular;
                add(key, Considered::new(strategy, worth, hot));
            }
            for ks in self.tracker.popular(now_s, limit) {
                let worth = pop_worth(&self.tracker, ks.key);
                let strategy = StrategyId::Popular;
                add(ks.key, Considered::new(strategy, worth, false));
            }
        } else {
            self.handover.clear();
        }
        if enabled.contains(StrategyId::Time) {
            for ks in self.tracker.upcoming(now_s, ttl_s, limit) {
                let worth = Worth::keep_fresh(ks.score / ttl_s, ttl_s);
                let strategy = StrategyId::Time;
                add(ks.key, Considered::new(strategy, worth, false));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
