//! Strategies that run on timers: the popular list, time-of-day habits,
//! trending bursts, sector rotation, and the tracker's upkeep.

use super::keystate::Worth;
use super::{Ctx, Strategies};
use crate::UnixSeconds;
use crate::strategy::StrategyId;

impl Strategies {
    /// Runs every timer due at or before `now_s`.
    pub fn tick(&mut self, ctx: &mut Ctx<'_>, now_s: UnixSeconds) {
        if now_s >= self.next_maintain_s {
            ctx.tracker.maintain(now_s);
            self.next_maintain_s = now_s + self.cfg.maintain_interval_s;
        }
        if now_s >= self.next_popular_s {
            self.popular_tick(ctx, now_s);
            self.time_of_day_tick(ctx, now_s);
            self.next_popular_s = now_s + self.cfg.popular_interval_s;
        }
        if now_s >= self.next_trending_s {
            self.trending_tick(ctx, now_s);
            self.next_trending_s = now_s + self.cfg.strategy.trending_interval_s;
        }
        if now_s >= self.next_sector_s {
            self.sector_tick(ctx, now_s);
            self.next_sector_s = now_s + self.cfg.strategy.sector_interval_s;
        }
    }

    /// Recomputes the popular list and warms members that are not fresh.
    fn popular_tick(&mut self, ctx: &mut Ctx<'_>, now_s: UnixSeconds) {
        if !ctx.enabled.contains(StrategyId::Popular) {
            return;
        }
        let list = ctx.tracker.popular(now_s, self.cfg.popular_limit);
        self.popular_set.clear();
        let until_s = now_s + self.cfg.popular_interval_s.min(self.ttl_s);
        for ks in list {
            let key = ks.key;
            self.popular_set.insert(key);
            let p = self.keys.get(key).keep_fresh(now_s, self.ttl_s);
            self.propose(
                ctx,
                now_s,
                StrategyId::Popular,
                key,
                p,
                now_s,
                now_s,
                until_s,
            );
        }
    }

    /// Warms keys whose time-of-day profile expects accesses in the next
    /// TTL (habitual starts, the open, scheduled scans).
    fn time_of_day_tick(&mut self, ctx: &mut Ctx<'_>, now_s: UnixSeconds) {
        if !ctx.enabled.contains(StrategyId::Time) {
            return;
        }
        let look_ahead_s = self.ttl_s.min(self.cfg.popular_interval_s.max(1.0));
        let upcoming = ctx.tracker.upcoming_cached(
            now_s,
            look_ahead_s,
            self.cfg.popular_limit,
            self.cfg.maintain_interval_s,
        );
        for ks in upcoming {
            let key = ks.key;
            let p = Worth::keep_fresh(ks.score / look_ahead_s, self.ttl_s);
            let until_s = now_s + look_ahead_s;
            self.propose(ctx, now_s, StrategyId::Time, key, p, now_s, now_s, until_s);
        }
    }

    /// Keeps trending keys fresh, with the keys co-accessed with them.
    fn trending_tick(&mut self, ctx: &mut Ctx<'_>, now_s: UnixSeconds) {
        if !ctx.enabled.contains(StrategyId::Trending) {
            return;
        }
        let window_s = ctx.tracker.config().trending_window_s;
        let trending = ctx
            .tracker
            .trending(now_s, window_s, self.cfg.strategy.trending_limit);
        let until_s = now_s + self.cfg.strategy.trending_interval_s.min(self.ttl_s);
        for tk in trending {
            let key = tk.key;
            let rate_per_s = tk.short_rate_per_min / 60.0;
            let p = Worth::keep_fresh(rate_per_s, self.ttl_s);
            self.propose(
                ctx,
                now_s,
                StrategyId::Trending,
                key,
                p,
                now_s,
                now_s,
                until_s,
            );
            self.prefetch_successors(ctx, now_s, key, StrategyId::Trending, 1.0);
        }
    }

    /// Warms the leading members of groups whose share of accesses rises
    /// against their baseline.
    fn sector_tick(&mut self, ctx: &mut Ctx<'_>, now_s: UnixSeconds) {
        if !ctx.enabled.contains(StrategyId::Sector) {
            return;
        }
        let until_s = now_s + self.cfg.strategy.sector_interval_s.min(self.ttl_s);
        for g in ctx.tracker.group_trends(now_s, 3) {
            if g.lift < self.cfg.strategy.sector_min_lift {
                break;
            }
            for m in ctx
                .tracker
                .group_members(&g.group, self.cfg.strategy.sector_members)
            {
                let key = m.key;
                // The member's own rate, lifted by its group's.
                let rate_per_s = self.keys.get(key).rate_at(now_s) * g.lift;
                let p = Worth::keep_fresh(rate_per_s, self.ttl_s);
                self.propose(
                    ctx,
                    now_s,
                    StrategyId::Sector,
                    key,
                    p,
                    now_s,
                    now_s,
                    until_s,
                );
            }
        }
    }
}
