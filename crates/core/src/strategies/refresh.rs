//! Refresh-ahead on read: an entry read late in its life, and predicted to
//! be read again between its expiry and the end of a refreshed life, is
//! fetched again at the last moment before it expires.
//!
//! Settings: `[warming]` `refresh_fraction`. No timer.

use super::propose::Proposer;
use super::{Access, Strategy, WarmingConfig};
use crate::strategy::StrategyId;

/// How long before expiry a refresh is fetched: the upstream latency
/// (`latency_s`), so that it lands in time, plus a little more: late
/// enough to waste little of the old entry's life, early enough that a
/// token can be found. Shared by every keep-fresh refresh (this
/// strategy's, and the popular list's on a fetch).
pub(super) fn refresh_lead_s(ttl_s: f64, latency_s: f64) -> f64 {
    latency_s + (ttl_s * 0.02).min(1.0)
}

/// The refresh-ahead strategy.
#[derive(Debug)]
pub(super) struct Refresh {
    /// `[warming]` `refresh_fraction`: refresh-ahead starts when an
    /// entry's age reaches this share of its TTL.
    fraction: f64,
}

impl Refresh {
    /// The strategy with the settings of `cfg`.
    pub(super) fn new(cfg: &WarmingConfig) -> Self {
        Refresh {
            fraction: cfg.refresh_fraction,
        }
    }
}

impl Strategy for Refresh {
    fn id(&self) -> StrategyId {
        StrategyId::Refresh
    }

    fn on_access(&mut self, p: &mut Proposer<'_, '_>, access: &Access) {
        let (now_s, ttl_s) = (p.now_s, p.ttl_s);
        // Only a hit late in its entry's life.
        if let (Some(f), Some(expiry_s)) = (access.hit_fetched_at_s, access.hit_expires_at_s)
            && now_s - f >= self.fraction * p.ctx.cache.ttl_rule().life_s(f, expiry_s)
        {
            // Decided now, fetched at the last moment before expiry: an
            // early refresh shortens the entry's life and costs budget.
            let lead_s = refresh_lead_s(ttl_s, p.ctx.latency_s);
            let worth = access.key_state.keep_fresh(expiry_s, ttl_s);
            let start_s = (expiry_s - lead_s).max(now_s);
            p.propose(
                StrategyId::Refresh,
                access.key,
                worth,
                start_s,
                expiry_s,
                expiry_s + lead_s,
            );
        }
    }
}
