//! Trending: on its timer, keys whose short-window rate rises against
//! their own baseline are kept fresh, with the keys predicted to follow
//! them.
//!
//! Settings: `[warming.strategy]` `trending_interval_s` (its timer) and
//! `trending_limit`; the successors use the predictive settings; the
//! window is the tracker's `trending_window_s`.

use super::keystate::Worth;
use super::predictive::Successors;
use super::propose::Proposer;
use super::{Strategy, WarmingConfig};
use crate::strategy::StrategyId;

/// The trending strategy.
#[derive(Debug)]
pub(super) struct Trending {
    /// `[warming.strategy]` `trending_interval_s`: seconds between scans.
    interval_s: f64,
    /// `[warming.strategy]` `trending_limit`: most keys acted on per scan.
    limit: usize,
    /// How the keys that follow a trending one are predicted.
    successors: Successors,
}

impl Trending {
    /// The strategy with the settings of `cfg`.
    pub(super) fn new(cfg: &WarmingConfig) -> Self {
        Trending {
            interval_s: cfg.strategy.trending_interval_s,
            limit: cfg.strategy.trending_limit,
            successors: Successors::new(cfg),
        }
    }
}

impl Strategy for Trending {
    fn id(&self) -> StrategyId {
        StrategyId::Trending
    }

    /// Keeps trending keys fresh, with the keys co-accessed with them.
    fn on_tick(&mut self, p: &mut Proposer<'_, '_>) {
        let (now_s, ttl_s) = (p.now_s, p.ttl_s);
        let window_s = p.ctx.tracker.config().trending_window_s;
        let trending = p.ctx.tracker.trending(now_s, window_s, self.limit);
        let until_s = p.until_next_tick_s(self.interval_s);
        for tk in trending {
            let key = tk.key;
            let rate_per_s = tk.short_rate_per_min / 60.0;
            let worth = Worth::keep_fresh(rate_per_s, ttl_s);
            p.propose(StrategyId::Trending, key, worth, now_s, now_s, until_s);
            self.successors.propose(p, key, StrategyId::Trending, 1.0);
        }
    }

    fn tick_interval_s(&self) -> Option<f64> {
        Some(self.interval_s)
    }
}
