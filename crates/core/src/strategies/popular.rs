//! The popular list: on its timer, the tracker's decayed top-N is
//! recomputed and members that are not fresh are warmed; after a fetch of a
//! member, a refresh just before its expiry keeps it fresh.
//!
//! Settings: `[warming]` `popular_limit` and `popular_interval_s` (its
//! timer).

use super::propose::Proposer;
use super::refresh::refresh_lead_s;
use super::{Strategy, WarmingConfig};
use crate::cache::KeyId;
use crate::strategy::StrategyId;
use rustc_hash::FxHashSet;

/// The popular-list strategy.
#[derive(Debug)]
pub(super) struct Popular {
    /// `[warming]` `popular_limit`: size of the list kept fresh.
    limit: usize,
    /// `[warming]` `popular_interval_s`: seconds between recomputations.
    interval_s: f64,
    /// The members as of the last recomputation.
    members: FxHashSet<KeyId>,
}

impl Popular {
    /// The strategy with the settings of `cfg`, its list empty.
    pub(super) fn new(cfg: &WarmingConfig) -> Self {
        Popular {
            limit: cfg.popular_limit,
            interval_s: cfg.popular_interval_s,
            members: FxHashSet::default(),
        }
    }
}

impl Strategy for Popular {
    fn id(&self) -> StrategyId {
        StrategyId::Popular
    }

    /// Members are kept fresh by a refresh just before expiry.
    fn on_fetched(&mut self, p: &mut Proposer<'_, '_>, key: KeyId) {
        if !self.members.contains(&key) {
            return;
        }
        let (now_s, ttl_s) = (p.now_s, p.ttl_s);
        let expiry_s = now_s + ttl_s;
        let worth = p.key(key).keep_fresh(expiry_s, ttl_s);
        let start_s = expiry_s - refresh_lead_s(ttl_s, p.ctx.latency_s);
        p.propose(
            StrategyId::Popular,
            key,
            worth,
            start_s,
            expiry_s,
            expiry_s + ttl_s / 2.0,
        );
    }

    /// Recomputes the list and warms members that are not fresh.
    fn on_tick(&mut self, p: &mut Proposer<'_, '_>) {
        let (now_s, ttl_s) = (p.now_s, p.ttl_s);
        let list = p.ctx.tracker.popular(now_s, self.limit);
        self.members.clear();
        let until_s = p.until_next_tick_s(self.interval_s);
        for ks in list {
            let key = ks.key;
            self.members.insert(key);
            let worth = p.key(key).keep_fresh(now_s, ttl_s);
            p.propose(StrategyId::Popular, key, worth, now_s, now_s, until_s);
        }
    }

    fn tick_interval_s(&self) -> Option<f64> {
        Some(self.interval_s)
    }

    fn forget(&mut self, key: KeyId) {
        self.members.remove(&key);
    }
}
