//! Read-only queries of the tracker.

use super::popular::{TOP_CANDIDATES, TopK};
use super::profile::{self, BUCKETS, DayCounters};
use super::record::KeyRecord;
use super::{GroupTrend, KeyScore, Prediction, Tracker, TrendingKey, coaccess};
use crate::keys::KeyId;
use std::f64::consts::LN_2;

/// Longest look-ahead `upcoming` considers (7 days).
pub const MAX_LOOK_AHEAD_S: f64 = 7.0 * 86_400.0;

/// A cached `upcoming` answer and what it was computed for.
#[derive(Debug, Clone)]
pub(crate) struct UpcomingCache {
    at_s: f64,
    day: i32,
    limit: usize,
    cover: Vec<(usize, u32)>,
    keys: Vec<KeyScore>,
}

impl Tracker {
    /// The record of `key` if it is tracked.
    #[inline]
    fn record_of(&self, key: KeyId) -> Option<&KeyRecord> {
        self.record_id(key)
            .map(|id| &self.slab.records[id as usize])
    }

    /// Decayed accesses of `key` at `now_s` (popularity half-life); `None`
    /// if it is not tracked.
    pub fn popularity(&self, key: KeyId, now_s: f64) -> Option<f64> {
        self.record_of(key)
            .map(|r| r.pop / self.decay.weights_at(now_s).pop)
    }

    /// When `key` was last accessed (Unix seconds); `None` if it is not
    /// tracked.
    pub fn last_access_s(&self, key: KeyId) -> Option<f64> {
        self.record_of(key).map(|r| r.last_s)
    }

    /// The groups `key` belongs to.
    pub fn groups_of(&self, key: KeyId) -> Vec<&str> {
        let Some(r) = self.record_of(key) else {
            return Vec::new();
        };
        r.groups
            .iter()
            .filter(|&&g| g != super::record::NO_GROUP)
            .map(|&g| &*self.groups.list[g as usize].name)
            .collect()
    }

    /// Number of keys tracked.
    pub fn len(&self) -> usize {
        self.slab.live()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.slab.live() == 0
    }

    fn key_scores(&self, best: Vec<(f64, u32)>) -> Vec<KeyScore> {
        best.into_iter()
            .map(|(score, id)| KeyScore {
                key: self.slab.records[id as usize].key,
                score,
            })
            .collect()
    }

    /// Key scores from a top-k of stored (forward-decayed) popularity,
    /// divided by the decay weight `w` of the query time.
    fn decayed_scores(&self, top: TopK<u32>, w: f64) -> Vec<KeyScore> {
        let best = top
            .into_sorted()
            .into_iter()
            .map(|(p, id)| (p / w, id))
            .collect();
        self.key_scores(best)
    }

    /// The `limit` keys with the highest decayed popularity at `now_s`,
    /// best first (score = decayed accesses). Reads only the candidate set
    /// (~1,000 keys) unless `limit` exceeds it.
    pub fn popular(&self, now_s: f64, limit: usize) -> Vec<KeyScore> {
        let w = self.decay.weights_at(now_s).pop;
        let mut top = TopK::new(limit);
        let from_set = limit <= TOP_CANDIDATES && self.top.live_members(&self.slab) >= limit;
        if from_set {
            for m in &self.top.members {
                if let Some(r) = self.slab.get(*m) {
                    top.push(r.pop, m.id);
                }
            }
        } else {
            for (i, r) in self
                .slab
                .records
                .iter()
                .enumerate()
                .filter(|(_, r)| r.is_live())
            {
                top.push(r.pop, i as u32);
            }
        }
        self.decayed_scores(top, w)
    }

    /// Short and baseline rates (per second) and z-score of record `r`.
    fn trend_of(&self, r: &KeyRecord, now_s: f64) -> (f64, f64, f64, f64) {
        let w = self.decay.weights_at(now_s);
        let tau_short_s = self.config.trending_window_s;
        let tau_long_s = self.config.trending_baseline_half_life_s / LN_2;
        let count = f64::from(r.short) / w.short;
        // An EWMA started `age` ago has seen only `1 - e^(-age/τ)` of its
        // steady-state weight: divide by the weight it could have seen.
        let age_s = (now_s - self.started_s).max(1.0);
        let seen = |tau_s: f64| tau_s * -(-age_s / tau_s).exp_m1();
        let short_rate = count / seen(tau_short_s);
        let base_rate = r.long / w.long / seen(tau_long_s);
        let expected = base_rate * seen(tau_short_s);
        let z = (count - expected) / expected.max(1.0).sqrt();
        (count, short_rate, base_rate, z)
    }

    /// Keys whose short-window rate rises above their own baseline, best
    /// first. Only keys accessed within the last `window_s` seconds with at
    /// least `trending_min_count` decayed short-window accesses and a
    /// score of at least `trending_min_score` qualify. Scans only keys with
    /// recent activity.
    pub fn trending(&self, now_s: f64, window_s: f64, limit: usize) -> Vec<TrendingKey> {
        let mut top = TopK::new(limit);
        for k in &self.trending {
            let Some(r) = self.slab.get(*k) else { continue };
            if now_s - r.last_s > window_s {
                continue;
            }
            let (count, _, _, z) = self.trend_of(r, now_s);
            if count >= self.config.trending_min_count * (1.0 - 1e-6)
                && z >= self.config.trending_min_score
            {
                top.push(z, k.id);
            }
        }
        top.into_sorted()
            .into_iter()
            .map(|(score, id)| {
                let r = &self.slab.records[id as usize];
                let (_, short, base, _) = self.trend_of(r, now_s);
                TrendingKey {
                    key: r.key,
                    score,
                    short_rate_per_min: short * 60.0,
                    baseline_rate_per_min: base * 60.0,
                }
            })
            .collect()
    }

    /// The day counters as of local day `today` (without mutating).
    fn days_at(&self, today: i32) -> DayCounters {
        let mut d = self.days;
        let cal = self.clock.calendar();
        d.advance(today, self.config.profile_half_life_days, |x| {
            super::is_trading_day(cal, x)
        });
        d
    }

    /// Expected accesses per second of `key` around `now_s` from its
    /// time-of-day profile (0 without a profile, or if not tracked).
    pub fn expected_rate(&self, key: KeyId, now_s: f64) -> f64 {
        let Some(r) = self.record_of(key) else {
            return 0.0;
        };
        if r.profile == super::record::NO_PROFILE {
            return 0.0;
        }
        let p = &self.profiles.slots[r.profile as usize];
        let lt = self.clock.calendar().local_time(now_s);
        let hl = self.config.profile_half_life_days;
        let days = p.days_observed(lt.day_index, &self.days_at(lt.day_index), hl);
        let b = profile::bucket_of(lt.kind.is_trading(), lt.second_of_day);
        p.expected_in_bucket(b, p.unit(lt.day_index, hl), days) / profile::bucket_len_s(b)
    }

    /// Bucket coverage of `(now_s, now_s + look_ahead_s]`: for each bucket
    /// the fraction of it that falls in the window (summed over days).
    fn coverage(&self, now_s: f64, look_ahead_s: f64) -> Vec<(usize, f64)> {
        let cal = self.clock.calendar();
        let end_s = now_s + look_ahead_s.clamp(0.0, MAX_LOOK_AHEAD_S);
        let mut cover = [0.0f64; BUCKETS];
        let mut t = now_s;
        while t < end_s {
            let lt = cal.local_time(t);
            let trading = lt.kind.is_trading();
            let b = profile::bucket_of(trading, lt.second_of_day);
            let len = profile::bucket_len_s(b);
            let into = f64::from(lt.second_of_day) % len + (t - t.floor());
            let step = (len - into).max(1.0).min(end_s - t);
            cover[b] += step / len;
            t += step;
        }
        cover
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0.0)
            .map(|(b, c)| (b, *c))
            .collect()
    }

    /// Keys with the most expected accesses in `(now_s, now_s +
    /// look_ahead_s]` by their time-of-day profile for the kind of day of
    /// that period, best first (score = expected accesses). Only profiled
    /// keys are considered; look-ahead is capped at 7 days.
    pub fn upcoming(&self, now_s: f64, look_ahead_s: f64, limit: usize) -> Vec<KeyScore> {
        let cover = self.coverage(now_s, look_ahead_s);
        let today = self.clock.calendar().local_time(now_s).day_index;
        let days = self.days_at(today);
        let hl = self.config.profile_half_life_days;
        let cover_mask = cover.iter().fold(0u128, |m, &(b, _)| m | 1u128 << b);
        let mut top = TopK::new(limit);
        for p in &self.profiles.slots {
            // Most profiles count nothing in the few buckets a look-ahead
            // covers: skip them before the decay arithmetic.
            if p.maybe_nonzero & cover_mask == 0
                || self
                    .slab
                    .get(p.owner)
                    .is_none_or(|r| r.profile == super::record::NO_PROFILE)
            {
                continue;
            }
            let unit = p.unit(today, hl);
            let observed = p.days_observed(today, &days, hl);
            let expected: f64 = cover
                .iter()
                .map(|&(b, c)| c * p.expected_in_bucket(b, unit, observed))
                .sum();
            if expected > 0.0 {
                top.push(expected, p.owner.id);
            }
        }
        self.key_scores(top.into_sorted())
    }

    /// [`Tracker::upcoming`], answered from the last call when it covered
    /// the same buckets in the same proportions on the same day and is at
    /// most `max_age_s` old: a look-ahead of a minute covers the same
    /// quarter hour fifteen times, and its profiles barely move meanwhile.
    pub fn upcoming_cached(
        &mut self,
        now_s: f64,
        look_ahead_s: f64,
        limit: usize,
        max_age_s: f64,
    ) -> Vec<KeyScore> {
        let day = self.clock.calendar().local_time(now_s).day_index;
        let cover: Vec<(usize, u32)> = self
            .coverage(now_s, look_ahead_s)
            .into_iter()
            .map(|(b, c)| (b, (c * 1e4).round() as u32))
            .collect();
        if let Some(c) = &self.upcoming_cache
            && c.day == day
            && c.limit == limit
            && c.cover == cover
            && (0.0..=max_age_s).contains(&(now_s - c.at_s))
        {
            return c.keys.clone();
        }
        let keys = self.upcoming(now_s, look_ahead_s, limit);
        self.upcoming_cache = Some(UpcomingCache {
            at_s: now_s,
            day,
            limit,
            cover,
            keys: keys.clone(),
        });
        keys
    }

    /// The keys predicted to follow `current`, best first: at most
    /// `limit`, each with a confidence of at least `min_confidence` (0 for
    /// all). Empty if `current` is not tracked.
    pub fn predict_next(
        &self,
        current: KeyId,
        min_confidence: f64,
        limit: usize,
    ) -> Vec<Prediction> {
        let Some(id) = self.record_id(current) else {
            return Vec::new();
        };
        let records = &self.slab.records;
        // Same-size items: the vector is reused, not allocated again.
        coaccess::successors(&self.slab, self.slab.handle(id))
            .into_iter()
            .filter(|(_, c)| *c >= min_confidence)
            .take(limit)
            .map(|(k, confidence)| Prediction {
                key: records[k.id as usize].key,
                confidence,
            })
            .collect()
    }

    /// Groups by lift (short share over long share), best first.
    pub fn group_trends(&self, _now_s: f64, limit: usize) -> Vec<GroupTrend> {
        let g = &self.groups;
        if g.total_short <= 0.0 || g.total_long <= 0.0 {
            return Vec::new();
        }
        let mut top = TopK::new(limit);
        for (i, s) in g.list.iter().enumerate() {
            if s.long > 0.0 {
                let lift = (s.short / g.total_short) / (s.long / g.total_long);
                top.push(lift, i);
            }
        }
        top.into_sorted()
            .into_iter()
            .map(|(lift, i)| {
                let s = &g.list[i];
                GroupTrend {
                    group: s.name.to_string(),
                    share_short: s.short / g.total_short,
                    share_long: s.long / g.total_long,
                    lift,
                }
            })
            .collect()
    }

    /// The most popular members of `group`, best first (score = decayed
    /// accesses at the latest time the tracker has seen).
    pub fn group_members(&self, group: &str, limit: usize) -> Vec<KeyScore> {
        let Some(g) = self.groups.find(group) else {
            return Vec::new();
        };
        let w = self.decay.weights_at(self.last_now_s).pop;
        let mut top = TopK::new(limit);
        for k in self.groups.members(&self.slab, g) {
            top.push(self.slab.records[k.id as usize].pop, k.id);
        }
        self.decayed_scores(top, w)
    }
}
