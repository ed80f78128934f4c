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
//! The replay driver performs fetches at once on virtual time; the daemon
//! performs them on the real clock and reports completions later. Nothing
//! here reads a clock: `now_s` always comes from the driver, and the engine
//! treats it as non-decreasing.

use crate::UnixSeconds;
use crate::budget::TokenBucket;
use crate::cache::{CacheModel, Displaced, FetchOrigin, Freshness, KeyId, KeyTable};
use crate::planner::{Candidate, Planner};
use crate::stats::{Event, Series, Stats};
use crate::strategy::{StrategyId, StrategySet};
use thiserror::Error;

/// Configuration of one engine (one dataset).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Seconds an entry stays fresh after its fetch.
    pub ttl_s: f64,
    /// Warming fetches allowed per minute (token bucket refill).
    pub warm_rate_per_min: f64,
    /// Token bucket capacity; `None` means equal to the rate.
    pub warm_burst: Option<f64>,
    /// Capacity of the cache in entries; `None` is unlimited.
    pub capacity_entries: Option<usize>,
    /// Strategies allowed to warm.
    pub strategies: StrategySet,
    /// Refresh-ahead starts once an entry's age reaches this fraction of
    /// the TTL (the seed's `refresh_threshold`, 0.8).
    pub refresh_fraction: f64,
    /// Bound on queued candidates.
    pub max_queued_candidates: usize,
    /// Width of the buckets of the time series kept in [`Stats`], if any.
    pub series_bucket_s: Option<f64>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ttl_s: 60.0,
            warm_rate_per_min: 100.0,
            warm_burst: None,
            capacity_entries: None,
            strategies: StrategySet::all(),
            refresh_fraction: 0.8,
            max_queued_candidates: 100_000,
            series_bucket_s: None,
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("invalid engine config: `{field}` {problem}")]
pub struct ConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl EngineConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, problem: &str| {
            Err(ConfigError {
                field,
                problem: problem.to_string(),
            })
        };
        if !(self.ttl_s.is_finite() && self.ttl_s > 0.0) {
            return bad("ttl_s", "must be a positive number of seconds");
        }
        if !(self.warm_rate_per_min.is_finite() && self.warm_rate_per_min >= 0.0) {
            return bad("warm_rate_per_min", "must be zero or more");
        }
        if let Some(b) = self.warm_burst
            && !(b.is_finite() && b >= 0.0)
        {
            return bad("warm_burst", "must be zero or more");
        }
        if self.capacity_entries == Some(0) {
            return bad(
                "capacity_entries",
                "must be at least 1 (omit it for unlimited)",
            );
        }
        if !(self.refresh_fraction > 0.0 && self.refresh_fraction < 1.0) {
            return bad("refresh_fraction", "must be strictly between 0 and 1");
        }
        if let Some(b) = self.series_bucket_s
            && !(b.is_finite() && b > 0.0)
        {
            return bad("series_bucket_s", "must be a positive number of seconds");
        }
        Ok(())
    }
}

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
    /// The latest instant the engine has seen; time never runs backwards
    /// inside the engine.
    now_s: UnixSeconds,
}

impl Engine {
    /// An engine for `cfg`, which must be valid.
    pub fn new(cfg: EngineConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let mut stats = Stats::default();
        if let Some(bucket_s) = cfg.series_bucket_s {
            stats = stats.with_series(Series::new(bucket_s, usize::MAX));
        }
        Ok(Engine {
            keys: KeyTable::default(),
            cache: CacheModel::new(cfg.ttl_s, cfg.capacity_entries),
            budget: TokenBucket::new(
                cfg.warm_rate_per_min,
                cfg.warm_burst.unwrap_or(cfg.warm_rate_per_min),
            ),
            planner: Planner::new(cfg.max_queued_candidates),
            stats,
            cfg,
            now_s: f64::NEG_INFINITY,
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
    /// The key table.
    pub fn keys(&self) -> &KeyTable {
        &self.keys
    }
    /// The cache model.
    pub fn cache(&self) -> &CacheModel {
        &self.cache
    }
    /// The id of `key`, interning it.
    pub fn intern(&mut self, key: &str) -> KeyId {
        self.keys.intern(key)
    }
    /// Warming tokens available at `now_s`.
    pub fn budget_tokens(&self, now_s: UnixSeconds) -> f64 {
        self.budget.tokens_at(now_s)
    }
    /// Candidates waiting for budget or for their window.
    pub fn queued_candidates(&self) -> usize {
        self.planner.queued()
    }

    /// Records a client access at `now_s` and answers whether it hits.
    /// Never call this for a warming fetch.
    pub fn on_access(&mut self, now_s: UnixSeconds, key: KeyId) -> Lookup {
        self.now_s = self.now_s.max(now_s);
        // The bucket is full at the first request: start its clock now.
        self.budget.available(now_s);
        let lookup = match self.cache.freshness(key, now_s) {
            Freshness::Fresh(e) => {
                let credited = match e.origin {
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
                self.after_hit(now_s, key, e.fetched_at_s);
                Lookup::Hit {
                    age_s: now_s - e.fetched_at_s,
                    origin: e.origin,
                }
            }
            other => {
                self.stats.record(
                    now_s,
                    Event::Request {
                        hit: false,
                        credited: None,
                    },
                );
                Lookup::Miss {
                    stale: matches!(other, Freshness::Stale(_)),
                }
            }
        };
        self.cache.touch(key);
        lookup
    }

    /// Strategy reactions to a hit on an entry fetched at `fetched_at_s`.
    fn after_hit(&mut self, now_s: UnixSeconds, key: KeyId, fetched_at_s: UnixSeconds) {
        let ttl_s = self.cfg.ttl_s;
        if self.cfg.strategies.contains(StrategyId::Refresh)
            && now_s - fetched_at_s >= self.cfg.refresh_fraction * ttl_s
        {
            // Refresh-ahead on read (Caffeine's refreshAfterWrite, Coherence's
            // refresh-ahead factor): worth one expected hit, and only until
            // the entry goes stale.
            self.planner.propose(
                Candidate {
                    key,
                    strategy: StrategyId::Refresh,
                    value: 1.0,
                    not_before_s: now_s,
                    expires_s: fetched_at_s + ttl_s,
                },
                now_s,
            );
        }
    }

    /// Records a completed fetch of `key`. A demand fetch counts as an API
    /// call here; a warming fetch was counted when its order was issued.
    /// A failed fetch (`ok == false`) stores nothing.
    pub fn on_fetched(&mut self, now_s: UnixSeconds, key: KeyId, origin: FetchOrigin, ok: bool) {
        if origin == FetchOrigin::Demand {
            self.stats.record(now_s, Event::DemandFetch);
        }
        if ok {
            let Displaced { .. } = self.cache.insert(key, now_s, origin);
        }
    }

    /// Records that the store dropped `key` (daemon: eviction, expiry).
    pub fn on_evicted(&mut self, key: KeyId) {
        self.cache.remove(key);
    }

    /// The next warming fetch to make at `now_s`, if the budget allows one
    /// and a candidate is worth it. Call until it returns `None`.
    pub fn poll_warm(&mut self, now_s: UnixSeconds) -> Option<WarmOrder> {
        if self.budget.tokens_at(now_s) < 1.0 {
            return None;
        }
        let cache = &self.cache;
        let min_fresh_s = self.cfg.ttl_s * (1.0 - self.cfg.refresh_fraction);
        let c = self.planner.pop_best(now_s, |c| {
            // Never spend on a key that stays fresh long enough anyway.
            cache.fresh_for_s(c.key, now_s) <= min_fresh_s
        })?;
        let took = self.budget.try_take(now_s);
        debug_assert!(took, "tokens were checked above");
        self.stats.record(now_s, Event::WarmFetch(c.strategy));
        Some(WarmOrder {
            key: c.key,
            strategy: c.strategy,
            issued_at_s: now_s,
        })
    }

    /// The next instant the engine wants to act without an access: a
    /// candidate's window opening, or a token for an open candidate. Never
    /// earlier than the latest instant the engine has seen.
    pub fn next_timeout(&self) -> Option<UnixSeconds> {
        let token = if self.planner.has_open() {
            self.budget.next_token_at(self.now_s)
        } else {
            None
        };
        let t = match (token, self.planner.next_opening()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        t.map(|t| t.max(self.now_s))
    }

    /// Runs what is due at `now_s`. Follow with `poll_warm(now_s)`.
    pub fn handle_timeout(&mut self, now_s: UnixSeconds) {
        self.now_s = self.now_s.max(now_s);
        self.planner.advance(now_s);
    }
}

#[cfg(test)]
mod tests;
