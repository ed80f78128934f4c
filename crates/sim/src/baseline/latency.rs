//! The baseline under an upstream latency, exact to the request
//! (docs/replay-semantics.md, "Upstream latency").
//!
//! A fetch started at `f` lands at `f + L`; its entry is fresh for a
//! request at `t` iff `f + L <= t` and `t < (f + L) + TTL`, in IEEE double
//! precision as written. A request for a key whose fetch is in flight
//! (`f <= t < f + L`) is coalesced: no API call, not a hit, and it waits
//! `f + L - t`. Any other request that is not a hit starts a fetch at `t`.
//! Unlimited capacity. One fetch per key is remembered: a key is never
//! fetched while its fetch is in flight, and an entry that has landed is
//! replaced only by a later fetch, which starts once it is stale.

use super::BaselineResult;
use crate::trace::Trace;
use prewarm_core::ttl::TtlRule;

/// Replays `trace` with no warming and every fetch taking `latency_s`
/// (≥ 0; 0 is exactly [`super::baseline`] at unlimited capacity). A TTL
/// that is not positive (or NaN) makes every request that is not coalesced
/// a miss.
pub fn baseline_under_latency(
    trace: &Trace,
    ttl: impl Into<TtlRule>,
    latency_s: f64,
) -> BaselineResult {
    let ttl = ttl.into();
    // Per key: the start of its latest fetch (minus infinity: none), and
    // the expiry of the entry it lands (core's rule at the landing).
    let mut started_s = vec![f64::NEG_INFINITY; trace.distinct_keys()];
    let mut expires_s = vec![f64::NEG_INFINITY; trace.distinct_keys()];
    let (mut hits, mut coalesced, mut wait_s) = (0u64, 0u64, 0.0f64);
    for (&now_s, &key_id) in trace.times_s.iter().zip(&trace.key_ids) {
        let f = started_s[key_id as usize];
        let landed_s = f + latency_s;
        if landed_s <= now_s && now_s < expires_s[key_id as usize] {
            hits += 1;
        } else if f <= now_s && now_s < landed_s {
            coalesced += 1;
            wait_s += landed_s - now_s;
        } else {
            started_s[key_id as usize] = now_s;
            expires_s[key_id as usize] = ttl.expires_at(now_s + latency_s);
        }
    }
    let requests = trace.len() as u64;
    BaselineResult {
        requests,
        hits,
        misses: requests - hits,
        coalesced,
        coalesced_wait_s: wait_s,
    }
}

#[cfg(test)]
mod tests {
    use super::super::baseline;
    use super::super::tests::trace_of;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_request_during_the_fetch_is_coalesced_and_the_one_at_landing_hits() {
        // L = 1/8 s, TTL 60 (exact in binary): the fetch at 0 lands at
        // 0.125 and is fresh until 60.125.
        let t = trace_of(&[
            (0.0, "a"),
            (0.0625, "a"),
            (0.125, "a"),
            (60.0, "a"),
            (60.125, "a"),
            (60.1875, "a"),
            (60.25, "a"),
        ]);
        let r = baseline_under_latency(&t, 60.0, 0.125);
        // miss, coalesced, hit, hit, miss (its fetch lands at 60.25),
        // coalesced, hit.
        assert_eq!((r.hits, r.misses, r.coalesced), (3, 4, 2));
        assert_eq!(r.api_calls(), 2);
        assert_eq!(r.coalesced_wait_s, 0.0625 + 0.0625);
    }

    #[test]
    fn an_entry_stays_fresh_until_its_expiry_even_right_after_a_fetch_of_another_key() {
        let t = trace_of(&[(0.0, "a"), (0.0, "b"), (0.5, "a"), (0.5, "b")]);
        let r = baseline_under_latency(&t, 10.0, 0.5);
        assert_eq!((r.hits, r.coalesced, r.api_calls()), (2, 0, 2));
    }

    /// An independent, O(n²) reading of the rule: every fetch of a key
    /// is kept; a request hits if any landed fetch is fresh, is coalesced
    /// if any fetch is in flight, and otherwise starts a fetch.
    fn naive(trace: &Trace, ttl_s: f64, latency_s: f64) -> (u64, u64, u64) {
        let mut fetches: Vec<(u32, f64)> = Vec::new();
        let (mut hits, mut coalesced) = (0, 0);
        for (&t, &k) in trace.times_s.iter().zip(&trace.key_ids) {
            let mine = || fetches.iter().filter(|(key, _)| *key == k).map(|p| p.1);
            if mine().any(|f| f + latency_s <= t && t < (f + latency_s) + ttl_s) {
                hits += 1;
            } else if mine().any(|f| f <= t && t < f + latency_s) {
                coalesced += 1;
            } else {
                fetches.push((k, t));
            }
        }
        (hits, coalesced, fetches.len() as u64)
    }

    fn arb_trace() -> impl Strategy<Value = Trace> {
        prop::collection::vec((0u32..40, 0usize..6), 0..250).prop_map(|rows| {
            let names = ["a", "b", "c", "d", "e", "f"];
            let mut now_s = 0.0;
            let requests: Vec<(f64, &str)> = rows
                .into_iter()
                .map(|(dt, k)| {
                    now_s += f64::from(dt) / 8.0;
                    (now_s, names[k])
                })
                .collect();
            trace_of(&requests)
        })
    }

    proptest! {
        #[test]
        fn matches_a_naive_model(t in arb_trace(), ttl in 1u32..20, latency_eighths in 0u32..24) {
            let (ttl_s, latency_s) = (f64::from(ttl), f64::from(latency_eighths) / 8.0);
            let r = baseline_under_latency(&t, ttl_s, latency_s);
            prop_assert_eq!((r.hits, r.coalesced, r.api_calls()), naive(&t, ttl_s, latency_s));
            prop_assert_eq!(r.hits + r.coalesced + r.api_calls(), r.requests);
        }

        #[test]
        fn zero_latency_is_the_baseline(t in arb_trace(), ttl in 1u32..20) {
            let ttl_s = f64::from(ttl);
            prop_assert_eq!(baseline_under_latency(&t, ttl_s, 0.0), baseline(&t, ttl_s, None));
        }
    }
}
