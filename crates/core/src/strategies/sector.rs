//! Sector rotation: on its timer, the leading members of groups whose
//! share of accesses rises against their baseline are warmed.
//!
//! Settings: `[warming.strategy]` `sector_interval_s` (its timer),
//! `sector_min_lift` and `sector_members`.

use super::keystate::Worth;
use super::propose::Proposer;
use super::{Strategy, WarmingConfig};
use crate::strategy::StrategyId;

/// Most rotating groups looked at per scan.
const GROUPS_PER_SCAN: usize = 3;

/// The sector-rotation strategy.
#[derive(Debug)]
pub(super) struct Sector {
    /// `[warming.strategy]` `sector_interval_s`: seconds between scans.
    interval_s: f64,
    /// `[warming.strategy]` `sector_min_lift`: a group whose short share
    /// over its long share exceeds this lift is rotating in.
    min_lift: f64,
    /// `[warming.strategy]` `sector_members`: members of a rotating group
    /// warmed per scan.
    members: usize,
}

impl Sector {
    /// The strategy with the settings of `cfg`.
    pub(super) fn new(cfg: &WarmingConfig) -> Self {
        Sector {
            interval_s: cfg.strategy.sector_interval_s,
            min_lift: cfg.strategy.sector_min_lift,
            members: cfg.strategy.sector_members,
        }
    }
}

impl Strategy for Sector {
    fn id(&self) -> StrategyId {
        StrategyId::Sector
    }

    /// Warms the leading members of the groups rotating in.
    fn on_tick(&mut self, p: &mut Proposer<'_, '_>) {
        let (now_s, ttl_s) = (p.now_s, p.ttl_s);
        let until_s = p.until_next_tick_s(self.interval_s);
        for g in p.ctx.tracker.group_trends(now_s, GROUPS_PER_SCAN) {
            if g.lift < self.min_lift {
                break;
            }
            for m in p.ctx.tracker.group_members(&g.group, self.members) {
                let key = m.key;
                // The member's own rate, lifted by its group's.
                let rate_per_s = p.key(key).rate_at(now_s) * g.lift;
                let worth = Worth::keep_fresh(rate_per_s, ttl_s);
                p.propose(StrategyId::Sector, key, worth, now_s, now_s, until_s);
            }
        }
    }

    fn tick_interval_s(&self) -> Option<f64> {
        Some(self.interval_s)
    }
}
