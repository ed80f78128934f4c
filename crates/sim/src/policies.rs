//! Plain reference warming policies, outside the engine, to measure prewarm
//! against on the same trace (`prewarm replay --frontier`).
//!
//! Both follow the model of docs/replay-semantics.md at unlimited capacity,
//! with its upstream latency `latency_s` (`L`, 0 for none): a fetch started
//! at `f` lands at `f + L` and its entry is fresh at `t` iff
//! `f + L <= t < (f + L) + ttl_s`; a request for a key in flight is
//! coalesced (no call, not a hit); hits do not extend freshness; any other
//! request that is not a hit is a demand fetch at `t`; no fetch starts for
//! a key in flight; and every warming fetch costs one API call and draws one
//! token from a bucket of `warm_rate_per_min` tokens a minute, burst the
//! same, full at the first request ([`prewarm_core::budget::TokenBucket`]).
//! Each request costs O(1); [`popular_every`] adds O(keys) per tick.
//!
//! - [`refresh_ahead`]: refresh-after-write in the style of Caffeine's
//!   `refreshAfterWrite`: a read that finds its entry fresh but at least
//!   `fraction × ttl_s` old reloads the key at once (the read is a hit on the
//!   old value; the reload makes the key fresh from its landing).
//!   A read when no token is left reloads nothing. A miss's demand fetch
//!   resets the age like any fetch.
//! - [`popular_every`] (and [`popular_30min`], the original design's
//!   setting): every `interval_s` of trace time from the first request,
//!   fetch the `top_n` keys with the most requests so far (all-time counts,
//!   ties to the key seen first), most requested first, while tokens last.
//!   Keys are fetched even when still fresh, as that design did. A tick due
//!   at or before a request runs before it; no tick runs after the last
//!   request.

use crate::baseline::ratio;
use crate::trace::Trace;
use prewarm_core::budget::TokenBucket;
use prewarm_core::ttl::{TtlPolicy, TtlRule};

/// Figures of one reference-policy run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyResult {
    /// Requests replayed.
    pub requests: u64,
    /// Requests served fresh.
    pub hits: u64,
    /// Misses, each a demand fetch.
    pub demand_fetches: u64,
    /// Warming fetches (reloads or popular fetches).
    pub warm_fetches: u64,
    /// Requests that waited on a fetch in flight (only with a latency).
    pub coalesced: u64,
}

impl PolicyResult {
    /// `hits / requests`, 0 for an empty trace.
    pub fn hit_rate(&self) -> f64 {
        ratio(self.hits, self.requests)
    }

    /// Demand plus warming fetches.
    pub fn api_calls(&self) -> u64 {
        self.demand_fetches + self.warm_fetches
    }
}

/// A reference policy's setting out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// The refresh-ahead fraction must lie in `[0, 1]`.
    #[error("refresh-ahead fraction {0} is not within [0, 1]")]
    Fraction(f64),
    /// The popular policy's interval must be a positive number of seconds.
    #[error("popular interval {0} s is not positive and finite")]
    Interval(f64),
}

/// The freshness rule, core's (`prewarm_core::cache::is_fresh_until`), on
/// the plain seconds these policies keep.
fn is_fresh(fetched_s: f64, expires_s: f64, now_s: f64) -> bool {
    prewarm_core::cache::is_fresh_until(
        prewarm_core::time::UnixInstant(fetched_s),
        prewarm_core::time::UnixInstant(expires_s),
        prewarm_core::time::UnixInstant(now_s),
    )
}

/// Per key: the landing time of its entry and of its fetch in flight.
/// Landings are settled lazily, when the key is next looked at: nothing
/// else reads a key's state, so that is exact.
struct Flights {
    latency_s: f64,
    /// When an entry landed at an instant expires (core's rule).
    ttl: TtlRule,
    /// Landing of the entry (minus infinity: none).
    landed_s: Vec<f64>,
    /// Expiry of the entry (minus infinity: none).
    expires_s: Vec<f64>,
    /// Landing of the fetch in flight (plus infinity: none).
    landing_s: Vec<f64>,
}

impl Flights {
    fn new(keys: usize, latency_s: f64, ttl: TtlRule) -> Self {
        Flights {
            latency_s,
            ttl,
            landed_s: vec![f64::NEG_INFINITY; keys],
            expires_s: vec![f64::NEG_INFINITY; keys],
            landing_s: vec![f64::INFINITY; keys],
        }
    }

    /// Lands `key`'s fetch if it has landed by `now_s`; whether one is
    /// still in flight.
    fn settle(&mut self, key: usize, now_s: f64) -> bool {
        if self.landing_s[key] <= now_s {
            self.landed_s[key] = self.landing_s[key];
            self.expires_s[key] = self.ttl.expires_at(self.landed_s[key]);
            self.landing_s[key] = f64::INFINITY;
        }
        self.landing_s[key] != f64::INFINITY
    }

    fn fresh(&self, key: usize, now_s: f64) -> bool {
        is_fresh(self.landed_s[key], self.expires_s[key], now_s)
    }

    /// Whether a fetch of `key` started at `now_s` would expire later than
    /// its entry: always under a flat TTL; not for a reload in a closed
    /// spell under `until_open`, which lands an entry expiring at the same
    /// open.
    fn reload_extends(&self, key: usize, now_s: f64) -> bool {
        matches!(self.ttl.policy(), TtlPolicy::Flat(_))
            || self.ttl.expires_at(now_s + self.latency_s) > self.expires_s[key]
    }

    /// Seconds the entry of `key` lives in all ([`TtlRule::life_s`]).
    fn life_s(&self, key: usize) -> f64 {
        self.ttl.life_s(self.landed_s[key], self.expires_s[key])
    }

    fn start(&mut self, key: usize, now_s: f64) {
        self.landing_s[key] = now_s + self.latency_s;
    }

    /// A request for `key` at `now_s` (settled): a hit, a coalesced wait,
    /// or a demand fetch; returns whether it hit.
    fn request(&mut self, key: usize, now_s: f64, out: &mut PolicyResult) -> bool {
        let in_flight = self.settle(key, now_s);
        if self.fresh(key, now_s) {
            out.hits += 1;
            true
        } else {
            if in_flight {
                out.coalesced += 1;
            } else {
                self.start(key, now_s);
                out.demand_fetches += 1;
            }
            false
        }
    }
}

/// Replays `trace` with refresh-ahead at `fraction` of the TTL (`ttl`: a
/// flat TTL in seconds or a [`TtlRule`]; the TTL of each entry's own
/// life), reloads limited to `warm_rate_per_min`, fetches taking
/// `latency_s`. `fraction` 0 reloads on every hit, 1 never reloads (an
/// entry is stale at the end of its life).
///
/// Errors: [`PolicyError::Fraction`] for a fraction outside `[0, 1]` or NaN.
pub fn refresh_ahead(
    trace: &Trace,
    ttl: impl Into<TtlRule>,
    warm_rate_per_min: f64,
    fraction: f64,
    latency_s: f64,
) -> Result<PolicyResult, PolicyError> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(PolicyError::Fraction(fraction));
    }
    let mut bucket = TokenBucket::new(warm_rate_per_min, warm_rate_per_min);
    let mut keys = Flights::new(trace.distinct_keys(), latency_s, ttl.into());
    let mut out = PolicyResult {
        requests: trace.len() as u64,
        ..PolicyResult::default()
    };
    for (&now_s, &key_id) in trace.times_s.iter().zip(&trace.key_ids) {
        let key = key_id as usize;
        if keys.request(key, now_s, &mut out)
            && keys.landing_s[key] == f64::INFINITY
            && now_s - keys.landed_s[key] >= fraction * keys.life_s(key)
            && keys.reload_extends(key, now_s)
            && bucket.try_take(now_s)
        {
            keys.start(key, now_s);
            out.warm_fetches += 1;
        }
    }
    Ok(out)
}

/// Replays `trace` with the original design's popular warming: every
/// 30 minutes, the 100 most requested keys so far (see
/// [`popular_every`]), fetches taking `latency_s`.
pub fn popular_30min(
    trace: &Trace,
    ttl: impl Into<TtlRule>,
    warm_rate_per_min: f64,
    latency_s: f64,
) -> PolicyResult {
    const INTERVAL_S: f64 = 1800.0;
    const TOP_N: usize = 100;
    let every = Every {
        interval_s: INTERVAL_S,
        top_n: TOP_N,
    };
    popular_at_valid_interval(trace, ttl.into(), warm_rate_per_min, every, latency_s)
}

/// A popular policy's schedule: `top_n` keys every `interval_s`.
#[derive(Debug, Clone, Copy)]
struct Every {
    interval_s: f64,
    top_n: usize,
}

/// Replays `trace` fetching, every `interval_s` seconds from the first
/// request, the `top_n` keys with the most requests so far, through a
/// bucket of `warm_rate_per_min`, at zero latency.
///
/// Errors: [`PolicyError::Interval`] when `interval_s` is not positive and
/// finite.
pub fn popular_every(
    trace: &Trace,
    ttl: impl Into<TtlRule>,
    warm_rate_per_min: f64,
    interval_s: f64,
    top_n: usize,
) -> Result<PolicyResult, PolicyError> {
    if !(interval_s > 0.0 && interval_s.is_finite()) {
        return Err(PolicyError::Interval(interval_s));
    }
    let every = Every { interval_s, top_n };
    Ok(popular_at_valid_interval(
        trace,
        ttl.into(),
        warm_rate_per_min,
        every,
        0.0,
    ))
}

/// [`popular_every`] with its interval known to be positive and finite,
/// fetches taking `latency_s`.
fn popular_at_valid_interval(
    trace: &Trace,
    ttl: TtlRule,
    warm_rate_per_min: f64,
    every: Every,
    latency_s: f64,
) -> PolicyResult {
    let Every { interval_s, top_n } = every;
    let mut bucket = TokenBucket::new(warm_rate_per_min, warm_rate_per_min);
    let mut keys = Flights::new(trace.distinct_keys(), latency_s, ttl);
    let mut counts = vec![0u64; trace.distinct_keys()];
    let mut ranked: Vec<u32> = Vec::new();
    let mut out = PolicyResult {
        requests: trace.len() as u64,
        ..PolicyResult::default()
    };
    let mut next_tick_s = trace.times_s.first().map_or(0.0, |t| t + interval_s);
    for (&now_s, &key_id) in trace.times_s.iter().zip(&trace.key_ids) {
        while next_tick_s <= now_s {
            top_keys(&counts, top_n, &mut ranked);
            for &k in &ranked {
                if keys.settle(k as usize, next_tick_s) {
                    continue; // in flight: no second fetch
                }
                if !bucket.try_take(next_tick_s) {
                    break;
                }
                keys.start(k as usize, next_tick_s);
                out.warm_fetches += 1;
            }
            next_tick_s += interval_s;
        }
        let key = key_id as usize;
        counts[key] += 1;
        keys.request(key, now_s, &mut out);
    }
    out
}

/// The (at most) `top_n` keys with a nonzero count, most requested first,
/// ties to the lower key id (the key seen first), into `out`.
fn top_keys(counts: &[u64], top_n: usize, out: &mut Vec<u32>) {
    out.clear();
    out.extend((0..counts.len() as u32).filter(|&k| counts[k as usize] > 0));
    let order = |a: &u32, b: &u32| counts[*b as usize].cmp(&counts[*a as usize]).then(a.cmp(b));
    if out.len() > top_n && top_n > 0 {
        out.select_nth_unstable_by(top_n - 1, order);
    }
    out.truncate(top_n);
    out.sort_unstable_by(order);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::baseline;
    use crate::trace::read_trace_from;

    fn trace(lines: &[(f64, &str)]) -> Trace {
        let mut csv = String::from("timestamp,key\n");
        for (t, k) in lines {
            csv.push_str(&format!("{t},{k}\n"));
        }
        read_trace_from(csv.as_bytes(), "t.csv").unwrap()
    }

    /// A key read every 10 s with a 60 s TTL: at fraction 0.5 the read at
    /// age 30 s reloads, so after the first miss every read hits.
    #[test]
    fn refresh_ahead_reloads_at_the_threshold_and_keeps_a_steady_key_fresh() {
        let lines: Vec<(f64, &str)> = (0..100).map(|i| (f64::from(i) * 10.0, "A")).collect();
        let tr = trace(&lines);
        let r = refresh_ahead(&tr, 60.0, 100.0, 0.5, 0.0).unwrap();
        assert_eq!((r.hits, r.demand_fetches), (99, 1));
        // Reloads at t = 30, 60, 90, ...: one every 30 s after the first.
        assert_eq!(r.warm_fetches, 33);
        assert_eq!(r.api_calls(), 34);
        let base = baseline(&tr, 60.0, None);
        assert!(r.hits > base.hits);
        // Fraction 1: an entry is stale before it is old enough; no reload.
        let never = refresh_ahead(&tr, 60.0, 100.0, 1.0, 0.0).unwrap();
        assert_eq!((never.hits, never.warm_fetches), (base.hits, 0));
    }

    /// With no tokens (rate 0) refresh-ahead is the baseline.
    #[test]
    fn refresh_ahead_without_tokens_is_the_baseline() {
        let lines: Vec<(f64, &str)> = (0..300)
            .map(|i| (f64::from(i) * 7.0, ["A", "B", "C"][i as usize % 3]))
            .collect();
        let tr = trace(&lines);
        let r = refresh_ahead(&tr, 60.0, 0.0, 0.5, 0.0).unwrap();
        let base = baseline(&tr, 60.0, None);
        assert_eq!((r.hits, r.warm_fetches), (base.hits, 0));
        assert_eq!(r.api_calls(), base.api_calls());
    }

    /// A burst of 2 tokens at 2/min: of three keys due a reload at the same
    /// instant only two reload, in request order.
    #[test]
    fn refresh_ahead_draws_from_the_token_bucket() {
        let tr = trace(&[
            (0.0, "A"),
            (0.0, "B"),
            (0.0, "C"),
            (50.0, "A"),
            (50.0, "B"),
            (50.0, "C"),
            (70.0, "A"),
            (70.0, "B"),
            (70.0, "C"),
        ]);
        let r = refresh_ahead(&tr, 60.0, 2.0, 0.8, 0.0).unwrap();
        // At 50 s A and B reload (the bucket's two tokens), C does not and
        // is stale at 70 s.
        assert_eq!(r.warm_fetches, 2);
        assert_eq!((r.hits, r.demand_fetches), (5, 4));
    }

    #[test]
    fn refresh_ahead_rejects_a_fraction_out_of_range() {
        let tr = trace(&[(0.0, "A")]);
        for f in [-0.1, 1.5, f64::NAN] {
            assert!(matches!(
                refresh_ahead(&tr, 60.0, 100.0, f, 0.0),
                Err(PolicyError::Fraction(_))
            ));
        }
    }

    /// Two keys, B requested more often: with top 1 every 100 s, B is
    /// fetched at each tick and A never; ticks are counted from the first
    /// request and a tick at a request's instant runs before it.
    #[test]
    fn popular_fetches_the_most_requested_keys_at_each_tick() {
        let tr = trace(&[
            (0.0, "A"),
            (10.0, "B"),
            (20.0, "B"),
            (100.0, "B"),
            (100.0, "A"),
            (250.0, "B"),
            (350.0, "A"),
        ]);
        let r = popular_every(&tr, 60.0, 100.0, 100.0, 1).unwrap();
        // Ticks at 100 (B fetched, so B@100 hits), 200 (B, stale by 260:
        // B@250 hits), 300 (B): three warming fetches.
        assert_eq!(r.warm_fetches, 3);
        // Hits: B@20 (demand at 10), B@100, B@250.
        assert_eq!((r.hits, r.demand_fetches), (3, 4));
        assert_eq!(r.api_calls(), 7);
        assert!(matches!(
            popular_every(&tr, 60.0, 100.0, 0.0, 1),
            Err(PolicyError::Interval(_))
        ));
    }

    #[test]
    fn top_keys_orders_by_count_then_first_seen() {
        let counts = [3, 0, 5, 3, 1];
        let mut out = Vec::new();
        top_keys(&counts, 3, &mut out);
        assert_eq!(out, [2, 0, 3]);
        top_keys(&counts, 10, &mut out);
        assert_eq!(out, [2, 0, 3, 4]);
        top_keys(&counts, 0, &mut out);
        assert!(out.is_empty());
    }

    /// With fewer tokens than keys, the most requested keys go first.
    #[test]
    fn popular_fetches_only_what_the_bucket_allows() {
        let mut lines: Vec<(f64, String)> = Vec::new();
        for (i, k) in ["A", "B", "B", "C", "C", "C"].iter().enumerate() {
            lines.push((i as f64, k.to_string()));
        }
        lines.push((1000.0, "C".into()));
        lines.push((1000.0, "B".into()));
        let refs: Vec<(f64, &str)> = lines.iter().map(|(t, k)| (*t, k.as_str())).collect();
        let tr = trace(&refs);
        // Rate 1/min, burst 1: one fetch at the tick at 900 s (C).
        let r = popular_every(&tr, 600.0, 1.0, 900.0, 3).unwrap();
        assert_eq!(r.warm_fetches, 1);
        // Hits: B@2, C@4, C@5, C@1000; B@1000 misses (demand at 1 s stale).
        assert_eq!((r.hits, r.demand_fetches), (4, 4));
    }

    /// Under a latency, refresh-ahead that never reloads is the baseline
    /// under latency, to the request; one that reloads never loses a hit.
    #[test]
    fn refresh_ahead_under_latency_starts_from_the_baseline_under_latency() {
        let mut lines = Vec::new();
        for i in 0..400 {
            let t = f64::from(i) * 0.75;
            lines.push((t, ["a", "b", "c"][(i % 3) as usize]));
        }
        let tr = trace(&lines);
        for latency_s in [0.0, 0.5, 2.0] {
            let base = crate::baseline::baseline_under_latency(&tr, 10.0, latency_s);
            let never = refresh_ahead(&tr, 10.0, 100.0, 1.0, latency_s).unwrap();
            assert_eq!(never.hits, base.hits, "L={latency_s}");
            assert_eq!(never.coalesced, base.coalesced, "L={latency_s}");
            assert_eq!(never.api_calls(), base.api_calls(), "L={latency_s}");
            let often = refresh_ahead(&tr, 10.0, 100.0, 0.5, latency_s).unwrap();
            assert!(
                often.hits > base.hits,
                "L={latency_s}: {often:?} vs {base:?}"
            );
            assert_eq!(
                often.hits + often.coalesced + often.demand_fetches,
                often.requests
            );
        }
    }

    /// A popular fetch is not a hit before it lands, and no key is fetched
    /// twice while in flight.
    #[test]
    fn a_popular_fetch_serves_only_after_it_lands() {
        // `a` is fetched at 0 (miss), then by the tick at 100 (landing at
        // 130); TTL 10: the request at 120 is coalesced, the one at 135 hits.
        let tr = trace(&[(0.0, "a"), (120.0, "a"), (135.0, "a")]);
        let every = Every {
            interval_s: 100.0,
            top_n: 1,
        };
        let r = popular_at_valid_interval(&tr, 10.0.into(), 100.0, every, 30.0);
        assert_eq!(
            (r.hits, r.coalesced, r.demand_fetches, r.warm_fetches),
            (1, 1, 1, 1)
        );
    }
}
