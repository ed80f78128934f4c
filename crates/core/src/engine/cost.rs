//! The API-cost governor: spare tokens are spent only while warming keeps
//! the API calls within `warming.max_cost_ratio` of what demand alone
//! would have cost.
//!
//! "Demand alone" is measured, not guessed: a shadow of the cache without
//! warming (each key's last demand fetch time, unlimited capacity, the
//! replay baseline's rule) counts the calls a cache without warming would
//! have made on the same accesses. Counts decay with a half-life of
//! [`COST_HALF_LIFE_S`], so the ratio describes about the last day. The
//! shadow sees only accesses already made: no look-ahead.
//!
//! Invariants: O(1) per access (one slot by [`KeyId`], a decay step at most
//! once a minute); nothing here reads a clock.

use crate::UnixSeconds;
use crate::cache::{KeyId, is_fresh};
use crate::time::{Seconds, UnixInstant};

/// Half-life of the cost counts, seconds: a trading day and its night.
pub const COST_HALF_LIFE_S: f64 = 86_400.0;
/// Least time between two decay steps, seconds.
const DECAY_STEP_S: f64 = 60.0;

/// Decayed API-call counts of the engine and of its no-warming shadow.
#[derive(Debug, Clone, Default)]
pub struct CostGovernor {
    /// Per key, the fetch time of the shadow's entry (NaN: none).
    shadow_fetched_s: Vec<f64>,
    /// Calls the shadow made (decayed).
    shadow_calls: f64,
    /// Calls the engine made, demand and warming (decayed).
    calls: f64,
    /// When the counts were last decayed.
    decayed_at_s: UnixSeconds,
}

impl CostGovernor {
    /// Records a client access of `key` at `now_s` in the shadow.
    pub fn on_access(&mut self, now_s: UnixSeconds, key: KeyId, ttl_s: f64) {
        self.decay(now_s);
        let ix = key.0 as usize;
        if self.shadow_fetched_s.len() <= ix {
            self.shadow_fetched_s.resize(ix + 1, f64::NAN);
        }
        let f = self.shadow_fetched_s[ix];
        if f.is_nan() || !is_fresh(UnixInstant(f), Seconds(ttl_s), UnixInstant(now_s)) {
            self.shadow_fetched_s[ix] = now_s;
            self.shadow_calls += 1.0;
        }
    }

    /// Whether the shadow holds an entry of `key` not yet expired at
    /// `now_s` (its id must not be released then: the shadow would lose a
    /// hit).
    pub fn holds_unexpired(&self, key: KeyId, now_s: UnixSeconds, ttl_s: f64) -> bool {
        self.shadow_fetched_s
            .get(key.ix())
            .is_some_and(|&f| UnixInstant(now_s) < UnixInstant(f) + Seconds(ttl_s))
    }

    /// Forgets the shadow's entry of `key` (its id is being released).
    pub fn forget(&mut self, key: KeyId) {
        if let Some(f) = self.shadow_fetched_s.get_mut(key.ix()) {
            *f = f64::NAN;
        }
    }

    /// Records an API call of the engine (a demand or warming fetch).
    pub fn on_call(&mut self, now_s: UnixSeconds) {
        self.decay(now_s);
        self.calls += 1.0;
    }

    /// The engine's calls over the shadow's, recently (1 before the
    /// shadow has made any: always finite).
    pub fn ratio(&self) -> f64 {
        if self.shadow_calls <= 0.0 {
            return 1.0;
        }
        self.calls / self.shadow_calls
    }

    /// Whether one more call keeps the ratio within `max_ratio`.
    pub fn has_headroom(&self, max_ratio: f64) -> bool {
        self.calls + 1.0 <= max_ratio * self.shadow_calls
    }

    fn decay(&mut self, now_s: UnixSeconds) {
        let dt_s = now_s - self.decayed_at_s;
        if dt_s < DECAY_STEP_S {
            return;
        }
        let f = (-dt_s / COST_HALF_LIFE_S).exp2();
        self.calls *= f;
        self.shadow_calls *= f;
        self.decayed_at_s = now_s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shadow_counts_the_calls_a_cache_without_warming_makes() {
        let mut g = CostGovernor::default();
        let k = KeyId(0);
        // Requests at 0, 30, 59.9, 60, 119.9, 120 with a 60 s TTL: the
        // shadow fetches at 0, 60 and 120.
        for t in [0.0, 30.0, 59.9, 60.0, 119.9, 120.0] {
            g.on_access(t, k, 60.0);
        }
        assert!((g.shadow_calls - 3.0).abs() < 1e-2, "{g:?}");
        // The engine made those 3 calls and 1 warm: ratio 4/3.
        for t in [0.0, 60.0, 100.0, 120.0] {
            g.on_call(t);
        }
        assert!((g.ratio() - 4.0 / 3.0).abs() < 1e-3);
        assert!(g.has_headroom(1.7));
        assert!(!g.has_headroom(1.5), "a fifth call would make 5/3");
    }

    #[test]
    fn without_demand_there_is_no_headroom() {
        let mut g = CostGovernor::default();
        assert!(!g.has_headroom(1.25));
        g.on_call(10.0);
        assert!(!g.has_headroom(1.25));
        assert_eq!(g.ratio(), 1.0, "finite for the monitoring API");
    }

    #[test]
    fn old_calls_fade_with_the_half_life() {
        let mut g = CostGovernor::default();
        for i in 0..10 {
            g.on_access(f64::from(i) * 100.0, KeyId(i), 60.0);
            g.on_call(f64::from(i) * 100.0);
            g.on_call(f64::from(i) * 100.0 + 1.0);
        }
        assert!((g.ratio() - 2.0).abs() < 1e-3);
        // A day later, a day of demand-only traffic halves the old excess.
        let day = COST_HALF_LIFE_S;
        for i in 0..10 {
            let t = day + f64::from(i) * 100.0;
            g.on_access(t, KeyId(100 + i), 60.0);
            g.on_call(t);
        }
        // Old: 20 calls / 10 shadow, halved to 10 / 5; new 10 / 10.
        assert!((g.ratio() - 20.0 / 15.0).abs() < 0.02, "{}", g.ratio());
    }
}
