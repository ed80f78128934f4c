//! Strategies that react to an access or a completed fetch.

use super::keystate::{NextAccess, Worth};
use super::{Ctx, Strategies};
use crate::UnixSeconds;
use crate::cache::KeyId;
use crate::strategy::StrategyId;
use std::hash::{Hash, Hasher};

/// How long before expiry a refresh is fetched: late enough to waste
/// little of the old entry's life, early enough that a token can be found.
fn refresh_lead_s(ttl_s: f64) -> f64 {
    (ttl_s * 0.02).min(1.0)
}

/// A stable 64-bit hash of a client id.
fn client_hash(client: &str) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    client.hash(&mut h);
    h.finish()
}

/// The client side of a (client, key) pair's identity: the client's hash
/// with the key id's generation folded in, so that a released and reused
/// id never meets the cadences of the key it named before. Generation 0
/// (an id never reused) leaves the hash as it is.
fn pair_client(client: &str, key_generation: u32) -> u64 {
    client_hash(client) ^ u64::from(key_generation).wrapping_mul(0xD6E8_FEB8_6659_FD93)
}

/// How far ahead a predicted successor is expected, at most: co-accessed
/// keys follow within seconds, and a prefetch must still be fresh then.
const SUCCESSOR_HORIZON_S: f64 = 5.0;

impl Strategies {
    /// Reacts to a client access of `key` at `now_s`. `hit_fetched_at_s`
    /// is the fetch time of the entry it hit, `None` on a miss (whose
    /// demand fetch the driver makes at once).
    pub fn on_access(
        &mut self,
        ctx: &mut Ctx<'_>,
        now_s: UnixSeconds,
        key: KeyId,
        client: Option<&str>,
        hit_fetched_at_s: Option<UnixSeconds>,
    ) {
        let ttl_s = self.ttl_s;
        let ks = self.keys.on_access(key, now_s, ttl_s);
        let fresh_until_s = hit_fetched_at_s.map_or(now_s + ttl_s, |f| f + ttl_s);

        // Refresh-ahead on read, only for entries predicted to be read
        // again between their expiry and the end of the refreshed life.
        if let Some(f) = hit_fetched_at_s
            && now_s - f >= self.cfg.refresh_fraction * ttl_s
        {
            // Decided now, fetched at the last moment before expiry: an
            // early refresh shortens the entry's life and costs budget.
            let expiry_s = f + ttl_s;
            let lead_s = refresh_lead_s(ttl_s);
            let p = ks.keep_fresh(expiry_s, ttl_s);
            let start_s = (expiry_s - lead_s).max(now_s);
            self.propose(
                ctx,
                now_s,
                StrategyId::Refresh,
                key,
                p,
                start_s,
                expiry_s,
                expiry_s + lead_s,
            );
        }

        // Time, by cadence: the key's own, and this client's on this key.
        if let Some(next) = ks.next_access(ttl_s) {
            self.propose_cadence(ctx, now_s, key, next, fresh_until_s);
        }
        if let Some(c) = client {
            let who = pair_client(c, ctx.keys.stamp(key).generation);
            let pair = self.pairs.on_access(who, key, now_s, ttl_s);
            if let Some(next) = pair.next_access(ttl_s) {
                self.propose_cadence(ctx, now_s, key, next, fresh_until_s);
            }
        }

        if ctx.enabled.contains(StrategyId::Predictive) {
            self.prefetch_successors(ctx, now_s, key, StrategyId::Predictive, 1.0);
        }
    }

    /// Warms just ahead of a predicted access when the entry will not be
    /// fresh through it.
    fn propose_cadence(
        &mut self,
        ctx: &mut Ctx<'_>,
        now_s: UnixSeconds,
        key: KeyId,
        next: NextAccess,
        fresh_until_s: UnixSeconds,
    ) {
        let until_s = next.at_s + next.margin_s;
        if fresh_until_s <= until_s && until_s > now_s {
            let start_s = (next.at_s - next.margin_s).max(now_s);
            let p = Worth::timed(f64::from(next.score), next.at_s - start_s, self.ttl_s);
            self.propose(
                ctx,
                now_s,
                StrategyId::Time,
                key,
                p,
                start_s,
                until_s,
                until_s,
            );
        }
    }

    /// Proposes the keys predicted to follow `current`, each with its
    /// confidence times `weight`, charged to `strategy`.
    pub(super) fn prefetch_successors(
        &mut self,
        ctx: &mut Ctx<'_>,
        now_s: UnixSeconds,
        current: KeyId,
        strategy: StrategyId,
        weight: f64,
    ) {
        let horizon_s = SUCCESSOR_HORIZON_S.min(self.ttl_s / 2.0);
        let threshold = self.cfg.strategy.predictive_confidence_threshold;
        let predictions =
            ctx.tracker
                .predict_next(current, threshold, self.cfg.strategy.predictive_limit);
        for p in predictions {
            let (next, confidence) = (p.key, p.confidence);
            // The learned model judges the prediction; the confidence is
            // the strategy's own estimate.
            let raw = Worth::timed(confidence * weight, SUCCESSOR_HORIZON_S / 2.0, self.ttl_s);
            let until_s = now_s + horizon_s;
            self.propose(ctx, now_s, strategy, next, raw, now_s, until_s, until_s);
        }
    }

    /// Reacts to a completed fetch of `key` at `now_s`: keys on the popular
    /// list are kept fresh by a refresh just before expiry.
    pub fn on_fetched(&mut self, ctx: &mut Ctx<'_>, now_s: UnixSeconds, key: KeyId) {
        if !self.popular_set.contains(&key) {
            return;
        }
        let ttl_s = self.ttl_s;
        let expiry_s = now_s + ttl_s;
        let p = self.keys.get(key).keep_fresh(expiry_s, ttl_s);
        let start_s = expiry_s - refresh_lead_s(ttl_s);
        self.propose(
            ctx,
            now_s,
            StrategyId::Popular,
            key,
            p,
            start_s,
            expiry_s,
            expiry_s + ttl_s / 2.0,
        );
    }
}
