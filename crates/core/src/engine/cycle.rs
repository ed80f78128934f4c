//! Warming cycles on request: the seed's `warm_popular(limit)`,
//! `warm_by_time_pattern(look_ahead)`, `warm_trending(window)`,
//! `warm_predictive(current_keys)` and `warm_sector(group)`.
//!
//! A cycle picks keys from what the tracker learned, skips those that are
//! fresh or already being fetched, and turns the rest into [`WarmOrder`]s
//! while the engine's budget lasts; the others are skipped for want of
//! budget. The caller asked for these keys, so no value threshold applies,
//! but the tokens are the same ones the planner spends: a cycle never
//! exceeds the warming rate. With batched warming (module `batch`), each
//! token pays for a call of up to `warm_batch_max_keys` keys of the cycle,
//! in order. Like every order, each is charged to its
//! strategy and ends with [`Engine::on_fetched`]; the driver measures
//! duration and failures (the core has no clock and makes no calls).

use super::{Engine, WarmOrder};
use crate::UnixSeconds;
use crate::cache::KeyId;
use crate::strategy::StrategyId;
use crate::time::UnixInstant;
use serde::Serialize;

/// What a cycle should warm.
#[derive(Debug, Clone, PartialEq)]
pub enum CycleRequest {
    /// The `limit` most popular keys (decayed access counts).
    Popular {
        /// Most keys (default `warming.popular_limit`).
        limit: Option<usize>,
    },
    /// Keys the time-of-day profile expects within `look_ahead_s`.
    TimePattern {
        /// Seconds ahead.
        look_ahead_s: f64,
        /// Most keys (default `warming.popular_limit`).
        limit: Option<usize>,
    },
    /// Keys trending over `window_s`, with the keys that follow them.
    Trending {
        /// The short window, seconds.
        window_s: f64,
        /// Most trending keys (default `warming.strategy.trending_limit`).
        limit: Option<usize>,
    },
    /// The keys likely to follow each of `current_keys`.
    Predictive {
        /// Keys just requested (e.g. a watchlist being opened).
        current_keys: Vec<String>,
        /// Most predictions per current key (default
        /// `warming.strategy.predictive_limit`).
        limit: Option<usize>,
    },
    /// The leading members of `group` (a sector, index or watchlist).
    Sector {
        /// The group, as set by [`Engine::set_groups`].
        group: String,
        /// Most members (default `warming.strategy.sector_members`).
        limit: Option<usize>,
    },
}

impl CycleRequest {
    /// The strategy the cycle's fetches are charged to.
    pub fn strategy(&self) -> StrategyId {
        match self {
            CycleRequest::Popular { .. } => StrategyId::Popular,
            CycleRequest::TimePattern { .. } => StrategyId::Time,
            CycleRequest::Trending { .. } => StrategyId::Trending,
            CycleRequest::Predictive { .. } => StrategyId::Predictive,
            CycleRequest::Sector { .. } => StrategyId::Sector,
        }
    }
}

/// Why a cycle did not fetch a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Its entry is fresh.
    Fresh,
    /// A fetch of it is already in flight.
    InFlight,
    /// The warming budget (the token bucket) ran out.
    NoBudget,
    /// The cost cap has no room for another call now
    /// (`warming.max_cost_ratio`; it frees as demand earns it).
    CostCap,
}

/// What a cycle decided: orders to perform, keys skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct CyclePlan {
    /// The strategy charged.
    pub strategy: StrategyId,
    /// Fetches to make; their tokens are spent (one per call: an order
    /// that rides along is fetched in the call of the one before it).
    pub orders: Vec<WarmOrder>,
    /// Keys not fetched, and why.
    pub skipped: Vec<(KeyId, SkipReason)>,
}

impl Engine {
    /// Plans a cycle for `req` at `now_s` (see the module docs).
    pub fn plan_cycle(&mut self, now_s: UnixSeconds, req: &CycleRequest) -> CyclePlan {
        self.now_s = self.now_s.max(now_s);
        let strategy = req.strategy();
        let mut plan = CyclePlan {
            strategy,
            orders: Vec::new(),
            skipped: Vec::new(),
        };
        let mut seen = rustc_hash::FxHashSet::default();
        self.close_batch_call();
        for key in self.cycle_keys(now_s, req) {
            if !seen.insert(key) {
                continue;
            }
            match self.cycle_order(now_s, key, strategy) {
                Ok(order) => plan.orders.push(order),
                Err(reason) => plan.skipped.push((key, reason)),
            }
        }
        self.close_batch_call();
        plan
    }

    /// `warm_popular(limit)`: the most popular keys.
    pub fn warm_popular(&mut self, now_s: UnixSeconds, limit: usize) -> CyclePlan {
        self.plan_cycle(now_s, &CycleRequest::Popular { limit: Some(limit) })
    }

    /// `warm_by_time_pattern(look_ahead)`: keys expected within
    /// `look_ahead_s`, at most `warming.popular_limit`.
    pub fn warm_by_time_pattern(&mut self, now_s: UnixSeconds, look_ahead_s: f64) -> CyclePlan {
        let req = CycleRequest::TimePattern {
            look_ahead_s,
            limit: None,
        };
        self.plan_cycle(now_s, &req)
    }

    /// `warm_trending(window)`: keys trending over `window_s`, at most
    /// `warming.strategy.trending_limit`, with their successors.
    pub fn warm_trending(&mut self, now_s: UnixSeconds, window_s: f64) -> CyclePlan {
        let req = CycleRequest::Trending {
            window_s,
            limit: None,
        };
        self.plan_cycle(now_s, &req)
    }

    /// `warm_predictive(current_keys)`: the keys likely to follow them, at
    /// most `warming.strategy.predictive_limit` each.
    pub fn warm_predictive(&mut self, now_s: UnixSeconds, current_keys: &[&str]) -> CyclePlan {
        let req = CycleRequest::Predictive {
            current_keys: current_keys.iter().map(|k| k.to_string()).collect(),
            limit: None,
        };
        self.plan_cycle(now_s, &req)
    }

    /// `warm_sector(group)`: the group's leading members, at most
    /// `warming.strategy.sector_members`.
    pub fn warm_sector(&mut self, now_s: UnixSeconds, group: &str) -> CyclePlan {
        let req = CycleRequest::Sector {
            group: group.to_string(),
            limit: None,
        };
        self.plan_cycle(now_s, &req)
    }

    /// The keys `req` names, best first (all tracked: their ids are live).
    fn cycle_keys(&self, now_s: UnixSeconds, req: &CycleRequest) -> Vec<KeyId> {
        let (t, w) = (&self.tracker, &self.cfg.warming);
        match req {
            CycleRequest::Popular { limit } => {
                keys_of(t.popular(now_s, limit.unwrap_or(w.popular_limit)))
            }
            CycleRequest::TimePattern {
                look_ahead_s,
                limit,
            } => {
                let limit = limit.unwrap_or(w.popular_limit);
                keys_of(t.upcoming(now_s, look_ahead_s.max(0.0), limit))
            }
            CycleRequest::Trending { window_s, limit } => {
                let limit = limit.unwrap_or(w.strategy.trending_limit);
                let mut out = Vec::new();
                for k in t.trending(now_s, window_s.max(1.0), limit) {
                    let next = t.predict_next(
                        k.key,
                        w.strategy.predictive_confidence_threshold,
                        w.strategy.predictive_limit,
                    );
                    out.push(k.key);
                    out.extend(next.into_iter().map(|p| p.key));
                }
                out
            }
            CycleRequest::Predictive {
                current_keys,
                limit,
            } => {
                let limit = limit.unwrap_or(w.strategy.predictive_limit);
                // A name the engine does not know predicts nothing.
                current_keys
                    .iter()
                    .filter_map(|name| self.keys.get(name))
                    .flat_map(|k| t.predict_next(k, 0.0, limit))
                    .map(|p| p.key)
                    .collect()
            }
            CycleRequest::Sector { group, limit } => {
                keys_of(t.group_members(group, limit.unwrap_or(w.strategy.sector_members)))
            }
        }
    }

    /// An order for `key` if it is worth one and a token is left.
    fn cycle_order(
        &mut self,
        now_s: UnixSeconds,
        key: KeyId,
        strategy: StrategyId,
    ) -> Result<WarmOrder, SkipReason> {
        let ttl_s = self.cache.ttl_at(now_s);
        if self.cache.is_fresh_at(key, UnixInstant(now_s)) {
            return Err(SkipReason::Fresh);
        }
        if self.flights.under_way(key, now_s) {
            return Err(SkipReason::InFlight);
        }
        // A requested fetch is worth the key's own chance of a hit.
        let value = self.strategies.keys.get(key).keep_fresh(now_s, ttl_s).p_hit;
        if self.take_seat(now_s) {
            // In the batch call of the cycle's last paid order: free.
            return Ok(self.issue(now_s, (key, strategy, value), super::Pay::RideAlong));
        }
        if self.budget.tokens_at(now_s) < 1.0 {
            return Err(SkipReason::NoBudget);
        }
        if !self.cost.may_warm() {
            return Err(SkipReason::CostCap);
        }
        Ok(self.issue(now_s, (key, strategy, value), super::Pay::Token))
    }
}

fn keys_of(scores: Vec<crate::tracker::KeyScore>) -> Vec<KeyId> {
    scores.into_iter().map(|s| s.key).collect()
}

#[cfg(test)]
mod tests;
