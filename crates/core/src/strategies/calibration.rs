//! The adaptive budget split: each strategy's predicted values are scaled
//! by what its fetches actually earned.
//!
//! A strategy proposes a candidate with a raw value (its own estimate of
//! the chance the fetch serves a hit). The planner ranks by the calibrated
//! value `raw * factor`, where `factor = (used + k) / (raw_sum + k)` over
//! the strategy's recent fetches: a strategy whose fetches are used more
//! often than it predicted earns more of the next tokens, one that
//! over-promises earns fewer. Both sums decay so that the split follows
//! the traffic. No constant here depends on a trace.

use crate::strategy::StrategyId;

/// Pseudo-count of the prior (factor 1) in fetches.
const PRIOR_FETCHES: f64 = 5.0;
/// Per-fetch decay of the sums: a memory of about 2,000 fetches.
const DECAY_PER_FETCH: f64 = 1.0 - 1.0 / 2000.0;

#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    raw_sum: f64,
    used: f64,
    /// Decayed count of fetches: the evidence behind the factor.
    fetches: f64,
}

/// Calibration factors of every strategy.
#[derive(Debug, Clone, Default)]
pub struct Calibration {
    sums: [Sums; StrategyId::COUNT],
}

impl Calibration {
    /// The factor applied to `id`'s raw values.
    pub fn factor(&self, id: StrategyId) -> f64 {
        let s = &self.sums[id.index()];
        (s.used + PRIOR_FETCHES) / (s.raw_sum + PRIOR_FETCHES)
    }

    /// `raw` scaled by `id`'s factor, within [0, 1].
    pub fn calibrated(&self, id: StrategyId, raw: f64) -> f64 {
        (raw * self.factor(id)).clamp(0.0, 1.0)
    }

    /// A fetch of `id` was issued on a candidate of raw value `raw`.
    pub fn on_issued(&mut self, id: StrategyId, raw: f64) {
        let s = &mut self.sums[id.index()];
        s.raw_sum = s.raw_sum * DECAY_PER_FETCH + raw.clamp(0.0, 1.0);
        s.used *= DECAY_PER_FETCH;
        s.fetches = s.fetches * DECAY_PER_FETCH + 1.0;
    }

    /// Recent fetches of `id` (decayed): how much evidence its factor has.
    pub fn evidence(&self, id: StrategyId) -> f64 {
        self.sums[id.index()].fetches
    }

    /// A fetch of `id` served its first hit.
    pub fn on_used(&mut self, id: StrategyId) {
        self.sums[id.index()].used += 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_promising_strategy_is_scaled_up_and_over_promising_down() {
        let mut c = Calibration::default();
        assert_eq!(c.factor(StrategyId::Popular), 1.0, "prior");
        for i in 0..500 {
            c.on_issued(StrategyId::Popular, 0.4);
            c.on_used(StrategyId::Popular); // always used
            c.on_issued(StrategyId::Trending, 0.9);
            if i % 10 == 0 {
                c.on_used(StrategyId::Trending); // rarely used
            }
        }
        assert!(c.calibrated(StrategyId::Popular, 0.4) > 0.9);
        assert!(c.calibrated(StrategyId::Trending, 0.9) < 0.2);
        assert!(c.calibrated(StrategyId::Popular, 0.9) <= 1.0);
    }
}
