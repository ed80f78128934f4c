//! The baseline: a TTL read-through cache with warming off, exact to the
//! request (docs/replay-semantics.md, "The model").
//!
//! An entry fetched at `f` is fresh for a request at `t` iff
//! `f <= t < expiry`, the expiry by core's rule
//! (`prewarm_core::ttl::TtlRule::expires_at`; `f + ttl_s` under a flat
//! TTL, which every `ttl` argument here may be); hits do not extend freshness; a miss fetches at
//! `t`. With a capacity (in entries) the cache is LRU: every request, hit or
//! miss, moves its key to the front, and stale entries keep their slot until
//! evicted. Each request costs O(1).
//!
//! With an upstream latency (module `latency`, the semantics doc's
//! "Upstream latency") a fetch lands later, and a request for a key in
//! flight is coalesced: no call, and not a hit.

mod latency;
pub use latency::baseline_under_latency;

use crate::trace::Trace;
use prewarm_core::cache::is_fresh_until;
use prewarm_core::time::UnixInstant;
use prewarm_core::ttl::TtlRule;

/// Figures of a no-warming replay.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BaselineResult {
    /// Requests replayed (lines in the trace).
    pub requests: u64,
    /// Requests served fresh from the cache.
    pub hits: u64,
    /// Requests that were not: each is a demand fetch and one API call,
    /// unless it was coalesced.
    pub misses: u64,
    /// Misses that waited on a fetch of their key already in flight (no
    /// API call; only with a latency).
    pub coalesced: u64,
    /// The coalesced requests' total wait, seconds.
    pub coalesced_wait_s: f64,
}

impl BaselineResult {
    /// `hits / requests`, 0 for an empty trace.
    pub fn hit_rate(&self) -> f64 {
        ratio(self.hits, self.requests)
    }

    /// Demand fetches: one per miss that was not coalesced.
    pub fn demand_fetches(&self) -> u64 {
        self.misses - self.coalesced
    }

    /// API calls: the demand fetches, as the baseline never warms.
    pub fn api_calls(&self) -> u64 {
        self.demand_fetches()
    }
}

/// `num / den`, 0 when `den` is 0.
pub(crate) fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// One baseline miss of a key and the hits it served (unlimited capacity):
/// the requests for `key_id` from `start_s` until its entry's expiry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MissGroup {
    /// The key.
    pub key_id: u32,
    /// `s`: time of the miss that opened the group.
    pub start_s: f64,
    /// `l`: time of the group's last request (`start_s` if it has one).
    pub last_s: f64,
}

/// Replays `trace` with no warming. `capacity` is the LRU capacity in
/// entries, `None` for unlimited; `Some(0)` caches nothing. A TTL that is
/// not positive (or NaN) makes every request a miss.
pub fn baseline(trace: &Trace, ttl: impl Into<TtlRule>, capacity: Option<usize>) -> BaselineResult {
    let ttl = ttl.into();
    match capacity {
        None => unlimited(trace, &ttl, None),
        Some(capacity) => lru(trace, &ttl, capacity),
    }
}

/// The baseline's miss groups at unlimited capacity, in order of their
/// start (file order of the misses). There is one group per miss.
pub fn miss_groups(trace: &Trace, ttl: impl Into<TtlRule>) -> Vec<MissGroup> {
    let mut groups = Vec::new();
    unlimited(trace, &ttl.into(), Some(&mut groups));
    groups
}

/// The unlimited-capacity baseline, optionally collecting miss groups.
fn unlimited(
    trace: &Trace,
    ttl: &TtlRule,
    mut groups: Option<&mut Vec<MissGroup>>,
) -> BaselineResult {
    let mut fetched_s = vec![f64::NEG_INFINITY; trace.distinct_keys()];
    let mut expires_s = vec![f64::NEG_INFINITY; trace.distinct_keys()];
    // Index into `groups` of each key's current group.
    let mut open_group = vec![
        usize::MAX;
        if groups.is_some() {
            trace.distinct_keys()
        } else {
            0
        }
    ];
    let mut hits = 0u64;
    for (&now_s, &key_id) in trace.times_s.iter().zip(&trace.key_ids) {
        let key = key_id as usize;
        if fresh(fetched_s[key], expires_s[key], now_s) {
            hits += 1;
            if let Some(groups) = groups.as_deref_mut() {
                groups[open_group[key]].last_s = now_s;
            }
        } else {
            fetched_s[key] = now_s;
            expires_s[key] = ttl.expires_at(now_s);
            if let Some(groups) = groups.as_deref_mut() {
                open_group[key] = groups.len();
                groups.push(MissGroup {
                    key_id,
                    start_s: now_s,
                    last_s: now_s,
                });
            }
        }
    }
    let requests = trace.len() as u64;
    BaselineResult {
        requests,
        hits,
        misses: requests - hits,
        ..BaselineResult::default()
    }
}

/// Core's freshness rule on plain seconds.
fn fresh(fetched_s: f64, expires_s: f64, now_s: f64) -> bool {
    is_fresh_until(
        UnixInstant(fetched_s),
        UnixInstant(expires_s),
        UnixInstant(now_s),
    )
}

/// Marks the end of the LRU list.
const NIL: u32 = u32::MAX;

/// An intrusive doubly linked LRU list over key ids, held in `Vec`s.
#[derive(Debug)]
struct LruList {
    prev: Vec<u32>,
    next: Vec<u32>,
    cached: Vec<bool>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
    len: usize,
}

impl LruList {
    fn new(keys: usize) -> Self {
        Self {
            prev: vec![NIL; keys],
            next: vec![NIL; keys],
            cached: vec![false; keys],
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    fn unlink(&mut self, key: u32) {
        let (p, n) = (self.prev[key as usize], self.next[key as usize]);
        match p {
            NIL => self.head = n,
            p => self.next[p as usize] = n,
        }
        match n {
            NIL => self.tail = p,
            n => self.prev[n as usize] = p,
        }
        self.cached[key as usize] = false;
        self.len -= 1;
    }

    fn push_front(&mut self, key: u32) {
        self.prev[key as usize] = NIL;
        self.next[key as usize] = self.head;
        match self.head {
            NIL => self.tail = key,
            h => self.prev[h as usize] = key,
        }
        self.head = key;
        self.cached[key as usize] = true;
        self.len += 1;
    }

    /// Removes and returns the least recently used key.
    fn pop_back(&mut self) -> Option<u32> {
        let tail = self.tail;
        (tail != NIL).then(|| {
            self.unlink(tail);
            tail
        })
    }
}

/// The LRU baseline holding at most `capacity` entries.
fn lru(trace: &Trace, ttl: &TtlRule, capacity: usize) -> BaselineResult {
    let mut fetched_s = vec![f64::NEG_INFINITY; trace.distinct_keys()];
    let mut expires_s = vec![f64::NEG_INFINITY; trace.distinct_keys()];
    let mut list = LruList::new(trace.distinct_keys());
    let mut hits = 0u64;
    for (&now_s, &key_id) in trace.times_s.iter().zip(&trace.key_ids) {
        let key = key_id as usize;
        if list.cached[key] {
            list.unlink(key_id);
            list.push_front(key_id);
            if fresh(fetched_s[key], expires_s[key], now_s) {
                hits += 1;
            } else {
                fetched_s[key] = now_s;
                expires_s[key] = ttl.expires_at(now_s);
            }
        } else if capacity > 0 {
            if list.len >= capacity {
                list.pop_back();
            }
            list.push_front(key_id);
            fetched_s[key] = now_s;
            expires_s[key] = ttl.expires_at(now_s);
        }
    }
    let requests = trace.len() as u64;
    BaselineResult {
        requests,
        hits,
        misses: requests - hits,
        ..BaselineResult::default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A trace from `(time_s, key)` pairs; keys are single letters.
    pub(crate) fn trace_of(requests: &[(f64, &str)]) -> Trace {
        let mut text = String::from("timestamp,key\n");
        for (time_s, key) in requests {
            text.push_str(&format!("{time_s},{key}\n"));
        }
        crate::trace::read_trace_from(text.as_bytes(), "test").unwrap()
    }

    #[test]
    fn request_at_exactly_fetch_plus_ttl_is_a_miss() {
        let t = trace_of(&[(100.0, "a"), (159.999_999, "a"), (160.0, "a")]);
        let r = baseline(&t, 60.0, None);
        assert_eq!((r.requests, r.hits, r.misses), (3, 1, 2));
        assert_eq!(r.api_calls(), 2);
    }

    #[test]
    fn hits_do_not_extend_freshness() {
        // Fetched at 0; the hit at 50 must not keep the entry fresh at 60.
        let t = trace_of(&[
            (0.0, "a"),
            (50.0, "a"),
            (60.0, "a"),
            (119.0, "a"),
            (120.0, "a"),
        ]);
        let r = baseline(&t, 60.0, None);
        assert_eq!((r.hits, r.misses), (2, 3));
        assert!((r.hit_rate() - 0.4).abs() < 1e-12);
    }

    #[test]
    fn zero_ttl_never_hits() {
        let t = trace_of(&[(0.0, "a"), (0.0, "a")]);
        assert_eq!(baseline(&t, 0.0, None).hits, 0);
        assert_eq!(baseline(&t, 0.0, Some(4)).hits, 0);
    }

    #[test]
    fn lru_evicts_the_least_recently_used_key() {
        // Capacity 2. `a` is touched at 2, so `b` is the LRU when `c` comes.
        let t = trace_of(&[
            (0.0, "a"),
            (1.0, "b"),
            (2.0, "a"),
            (3.0, "c"),
            (4.0, "a"),
            (5.0, "b"),
        ]);
        let r = baseline(&t, 60.0, Some(2));
        // a miss, b miss, a hit, c miss (evicts b), a hit, b miss.
        assert_eq!((r.hits, r.misses), (2, 4));
        assert_eq!(baseline(&t, 60.0, None).hits, 3);
        assert_eq!(baseline(&t, 60.0, Some(0)).hits, 0);
    }

    #[test]
    fn stale_entries_occupy_space_and_refresh_on_miss() {
        // TTL 10, capacity 2. `a` goes stale but keeps its slot; its refetch
        // at 20 makes it most recent, so `c` evicts `b`, not `a`.
        let t = trace_of(&[
            (0.0, "a"),
            (15.0, "b"),
            (20.0, "a"),
            (21.0, "c"),
            (22.0, "a"),
            (23.0, "b"),
        ]);
        let r = baseline(&t, 10.0, Some(2));
        // a miss, b miss, a miss (stale), c miss (evicts b), a hit, b miss.
        assert_eq!((r.hits, r.misses), (1, 5));
    }

    #[test]
    fn miss_groups_hold_the_hits_of_each_miss() {
        let t = trace_of(&[
            (0.0, "a"),
            (5.0, "b"),
            (30.0, "a"),
            (60.0, "a"),
            (61.0, "a"),
        ]);
        let groups = miss_groups(&t, 60.0);
        let a = 0;
        let b = 1;
        let expected = [
            MissGroup {
                key_id: a,
                start_s: 0.0,
                last_s: 30.0,
            },
            MissGroup {
                key_id: b,
                start_s: 5.0,
                last_s: 5.0,
            },
            MissGroup {
                key_id: a,
                start_s: 60.0,
                last_s: 61.0,
            },
        ];
        assert_eq!(groups, expected);
        assert_eq!(groups.len() as u64, baseline(&t, 60.0, None).misses);
    }

    /// A naive O(n * capacity) LRU model to check the linked list against.
    fn naive_lru_hits(trace: &Trace, ttl_s: f64, capacity: usize) -> u64 {
        let mut cache: Vec<(u32, f64)> = Vec::new(); // front = most recent
        let mut hits = 0;
        for (&now_s, &key) in trace.times_s.iter().zip(&trace.key_ids) {
            let fetched_s = match cache.iter().position(|&(k, _)| k == key) {
                Some(i) => {
                    let (_, f) = cache.remove(i);
                    if now_s < f + ttl_s {
                        hits += 1;
                        f
                    } else {
                        now_s
                    }
                }
                None => {
                    if cache.len() == capacity {
                        cache.pop();
                    }
                    now_s
                }
            };
            if capacity > 0 {
                cache.insert(0, (key, fetched_s));
            }
        }
        hits
    }

    fn arb_trace() -> impl Strategy<Value = Trace> {
        prop::collection::vec((0u32..40, 0usize..12), 0..300).prop_map(|rows| {
            let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
            let mut now_s = 0.0;
            let requests: Vec<(f64, &str)> = rows
                .into_iter()
                .map(|(dt, k)| {
                    now_s += f64::from(dt) / 2.0;
                    (now_s, names[k])
                })
                .collect();
            trace_of(&requests)
        })
    }

    proptest! {
        #[test]
        fn lru_matches_a_naive_model(t in arb_trace(), capacity in 0usize..14, ttl in 1u32..60) {
            let ttl_s = f64::from(ttl);
            prop_assert_eq!(baseline(&t, ttl_s, Some(capacity)).hits, naive_lru_hits(&t, ttl_s, capacity));
        }

        #[test]
        fn lru_as_large_as_the_key_set_is_unlimited(t in arb_trace(), ttl in 1u32..60) {
            let ttl_s = f64::from(ttl);
            let unlimited = baseline(&t, ttl_s, None);
            prop_assert_eq!(baseline(&t, ttl_s, Some(t.distinct_keys())), unlimited);
            prop_assert_eq!(miss_groups(&t, ttl_s).len() as u64, unlimited.misses);
        }
    }
}
