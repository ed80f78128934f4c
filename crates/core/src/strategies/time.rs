//! Time: warms just ahead of an expected access, from two kinds of
//! habits. On an access, the cadence of the key and that of the client on
//! the key predict the next one; on its timer (the popular list's), the
//! tracker's time-of-day profiles name the keys expected in the next TTL
//! (habitual starts, the open, scheduled scans).
//!
//! Settings: `[warming]` `popular_interval_s` (its timer and look-ahead)
//! and `popular_limit` (most keys per run).

use super::keystate::{NextAccess, Worth};
use super::propose::Proposer;
use super::{Access, Strategy, WarmingConfig};
use crate::UnixSeconds;
use crate::cache::KeyId;
use crate::strategy::StrategyId;

/// The time strategy.
#[derive(Debug)]
pub(super) struct Time {
    /// `[warming]` `popular_interval_s`: seconds between time-of-day runs,
    /// and the longest look-ahead.
    interval_s: f64,
    /// `[warming]` `popular_limit`: most keys warmed per run.
    limit: usize,
    /// How long the tracker may reuse its list of upcoming keys, seconds
    /// (the tracker's upkeep interval).
    reuse_s: f64,
}

impl Time {
    /// The strategy with the settings of `cfg`.
    pub(super) fn new(cfg: &WarmingConfig) -> Self {
        Time {
            interval_s: cfg.popular_interval_s,
            limit: cfg.popular_limit,
            reuse_s: cfg.maintain_interval_s,
        }
    }
}

/// Warms just ahead of a predicted access when the entry will not be
/// fresh through it, starting early enough for the fetch to land.
fn propose_cadence(
    p: &mut Proposer<'_, '_>,
    key: KeyId,
    next: NextAccess,
    fresh_until_s: UnixSeconds,
) {
    let now_s = p.now_s;
    let until_s = next.at_s + next.margin_s;
    if fresh_until_s <= until_s && until_s > now_s {
        let start_s = (next.at_s - next.margin_s - p.ctx.latency_s).max(now_s);
        let worth = Worth::timed(f64::from(next.score), next.at_s - start_s, p.ttl_s);
        p.propose(StrategyId::Time, key, worth, start_s, until_s, until_s);
    }
}

impl Strategy for Time {
    fn id(&self) -> StrategyId {
        StrategyId::Time
    }

    /// By cadence: the key's own, then this client's on this key.
    fn on_access(&mut self, p: &mut Proposer<'_, '_>, access: &Access) {
        let ttl_s = p.ttl_s;
        let fresh_until_s = access.hit_expires_at_s.unwrap_or(p.now_s + ttl_s);
        if let Some(next) = access.key_state.next_access(ttl_s) {
            propose_cadence(p, access.key, next, fresh_until_s);
        }
        if let Some(pair) = &access.pair_state
            && let Some(next) = pair.next_access(ttl_s)
        {
            propose_cadence(p, access.key, next, fresh_until_s);
        }
    }

    /// Warms keys whose time-of-day profile expects accesses in the next
    /// TTL.
    fn on_tick(&mut self, p: &mut Proposer<'_, '_>) {
        let (now_s, ttl_s) = (p.now_s, p.ttl_s);
        let look_ahead_s = ttl_s.min(self.interval_s.max(1.0));
        let upcoming = p
            .ctx
            .tracker
            .upcoming_cached(now_s, look_ahead_s, self.limit, self.reuse_s);
        for ks in upcoming {
            let key = ks.key;
            let worth = Worth::keep_fresh(ks.score / look_ahead_s, ttl_s);
            let until_s = now_s + look_ahead_s;
            p.propose(StrategyId::Time, key, worth, now_s, now_s, until_s);
        }
    }

    fn tick_interval_s(&self) -> Option<f64> {
        Some(self.interval_s)
    }
}
