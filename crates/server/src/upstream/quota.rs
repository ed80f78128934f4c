//! The upstream quota: the vendor plan's calls per minute, shared by
//! demand and warming, demand first.
//!
//! A sliding window, not a refilling bucket: at most `rate_per_min` calls
//! start in any 60 s window (the start times of the last `rate_per_min`
//! calls are kept), so an idle spell never lets a minute hold more than
//! the plan, unlike the warming bucket (whose capacity plus a minute of
//! refill allows twice its rate). Bursts up to the whole quota are
//! allowed; what they spend frees 60 s later.
//!
//! Demand may take every call of the window; warming only those above
//! `demand_reserve_per_min`, so demand always finds the reserve free of
//! warming. The state is driven by `now_s` (Unix seconds): tested without
//! a clock.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::gate::Role;

/// Length of the quota's window, seconds.
pub const WINDOW_S: f64 = 60.0;
/// Largest `rate_per_min` accepted (the window keeps one time per call).
pub const MAX_RATE_PER_MIN: u32 = 1_000_000;

/// `upstream.rate_limit_per_min` and its companions, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaConfig {
    /// Calls the upstream plan allows per minute, demand and warming
    /// together (1 to [`MAX_RATE_PER_MIN`]).
    pub rate_per_min: u32,
    /// Calls per minute warming leaves to demand (at most `rate_per_min`;
    /// equal: warming never calls).
    pub demand_reserve_per_min: u32,
    /// Longest a demand fetch queues for a call when the quota is spent,
    /// seconds (also capped by the client's request timeout); then 503.
    pub queue_s: f64,
}

impl QuotaConfig {
    /// The default reserve for `rate_per_min`: a tenth, rounded up.
    pub fn default_reserve(rate_per_min: u32) -> u32 {
        rate_per_min.div_ceil(10)
    }
}

/// The quota's state: start times of the calls in the window.
#[derive(Debug)]
pub struct UpstreamQuota {
    cfg: QuotaConfig,
    starts: Mutex<VecDeque<f64>>,
}

impl UpstreamQuota {
    /// An unused quota.
    pub fn new(cfg: QuotaConfig) -> Self {
        Self {
            cfg,
            starts: Mutex::new(VecDeque::new()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &QuotaConfig {
        &self.cfg
    }

    fn window(&self, now_s: f64) -> MutexGuard<'_, VecDeque<f64>> {
        // The times are valid on their own: a poisoned lock is taken over.
        let mut w = self.starts.lock().unwrap_or_else(PoisonError::into_inner);
        while w.front().is_some_and(|t| now_s - t >= WINDOW_S) {
            w.pop_front();
        }
        w
    }

    /// Calls `role` may have started in the window before it must wait.
    fn cap(&self, role: Role) -> usize {
        let cap = match role {
            Role::Demand => self.cfg.rate_per_min,
            Role::Warm => self
                .cfg
                .rate_per_min
                .saturating_sub(self.cfg.demand_reserve_per_min),
        };
        cap as usize
    }

    /// When a call of `role` could start at `now_s` or later (Unix
    /// seconds; `now_s` if at once). `f64::INFINITY` when never (warming
    /// with the whole quota reserved).
    fn free_at(&self, w: &VecDeque<f64>, role: Role, now_s: f64) -> f64 {
        let cap = self.cap(role);
        if w.len() < cap {
            return now_s;
        }
        if cap == 0 {
            return f64::INFINITY;
        }
        // The window must drop its oldest `len - cap + 1` starts.
        w.get(w.len() - cap).map_or(now_s, |t| t + WINDOW_S)
    }

    /// Takes a call for `role` at `now_s`; `Err(at_s)`: none until `at_s`.
    pub fn try_take(&self, role: Role, now_s: f64) -> Result<(), f64> {
        let mut w = self.window(now_s);
        let at_s = self.free_at(&w, role, now_s);
        if at_s > now_s {
            return Err(at_s);
        }
        // Kept in order even if the clock steps back.
        let t = w.back().map_or(now_s, |last| last.max(now_s));
        w.push_back(t);
        Ok(())
    }

    /// When a call of `role` could start, at `now_s` or later (nothing
    /// is taken).
    pub fn free_at_s(&self, role: Role, now_s: f64) -> f64 {
        let w = self.window(now_s);
        self.free_at(&w, role, now_s)
    }

    /// Calls started in the window ending at `now_s`.
    pub fn used(&self, now_s: f64) -> usize {
        self.window(now_s).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(rate: u32, reserve: u32) -> UpstreamQuota {
        UpstreamQuota::new(QuotaConfig {
            rate_per_min: rate,
            demand_reserve_per_min: reserve,
            queue_s: 3.0,
        })
    }

    #[test]
    fn demand_takes_the_whole_window_then_waits_for_the_oldest_call() {
        let q = quota(3, 1);
        for t in [0.0, 1.0, 2.0] {
            assert_eq!(q.try_take(Role::Demand, t), Ok(()));
        }
        assert_eq!(q.try_take(Role::Demand, 30.0), Err(60.0));
        assert_eq!(q.try_take(Role::Demand, 60.0), Ok(()));
        assert_eq!(q.try_take(Role::Demand, 60.5), Err(61.0));
        assert_eq!(q.used(61.0), 2);
    }

    #[test]
    fn warming_leaves_the_reserve_to_demand() {
        let q = quota(4, 2);
        assert_eq!(q.try_take(Role::Warm, 0.0), Ok(()));
        assert_eq!(q.try_take(Role::Warm, 1.0), Ok(()));
        assert_eq!(q.try_take(Role::Warm, 2.0), Err(60.0), "the reserve");
        assert_eq!(q.free_at_s(Role::Demand, 2.0), 2.0);
        assert_eq!(q.try_take(Role::Demand, 2.0), Ok(()));
        assert_eq!(q.try_take(Role::Demand, 3.0), Ok(()));
        assert_eq!(q.try_take(Role::Demand, 4.0), Err(60.0));
        // Warming needs two calls to leave the window.
        assert_eq!(q.free_at_s(Role::Warm, 4.0), 62.0);
        let all = quota(2, 2);
        assert_eq!(all.try_take(Role::Warm, 0.0), Err(f64::INFINITY));
    }

    /// Whatever the mix and timing of calls, no 60 s window holds more
    /// than the quota.
    #[test]
    fn no_window_holds_more_than_the_quota() {
        let q = quota(10, 3);
        let mut taken = Vec::new();
        let mut seed = 7u64;
        let mut t = 0.0;
        for _ in 0..5_000 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            t += (seed >> 40) as f64 / (1u64 << 24) as f64 * 4.0;
            let role = if seed & 1 == 0 {
                Role::Demand
            } else {
                Role::Warm
            };
            if q.try_take(role, t).is_ok() {
                taken.push((t, role));
            }
        }
        for (i, (start, _)) in taken.iter().enumerate() {
            let in_window: Vec<_> = taken[i..]
                .iter()
                .take_while(|(s, _)| *s - start < WINDOW_S)
                .collect();
            assert!(
                in_window.len() <= 10,
                "{} calls after {start}",
                in_window.len()
            );
        }
        assert!(taken.len() > 1_000, "the quota was used: {}", taken.len());
    }
}
