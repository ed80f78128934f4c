//! The clairvoyant bound (docs/replay-semantics.md, "Figures"): a ceiling on
//! what warming can buy on a trace, at unlimited capacity.
//!
//! Each baseline miss group of a key (a miss at `s`, its last request at
//! `l < s + TTL`) is a unit job: one warming fetch in `(l - TTL, s]` turns
//! the miss into a hit and keeps the group's other requests hits, at no
//! extra API call. Jobs run earliest-deadline-first through a token bucket
//! of `R` tokens a minute, burst `R`, full at the first request, refilled
//! continuously:
//! - when a token is available, EDF takes the released, unexpired job with
//!   the earliest deadline (deadline inclusive);
//! - the release is exclusive: a job released at `r` is eligible at instant
//!   `r` and runs just after it, at `r⁺`, with the tokens held at `r` (the
//!   refill is continuous, so this is the limit of runs at `r + ε`). Jobs
//!   whose deadline is `r` itself are still picked first, at `r`;
//! - when a token is missing, time advances to the instant one is whole;
//!   when no job is pending, to the next release;
//! - the bucket is full at the first request ([`BucketStart::FirstRequest`],
//!   the document's wording) or at the earliest release, up to one TTL
//!   earlier ([`BucketStart::FirstRelease`], the convention of the README's
//!   reference figures).
//!
//! Groups are independent: a fetch at `f <= s` is stale by `s + TTL`, which
//! is at or before the key's next miss. O(n log n) in the trace length.
//!
//! With a TTL by market session (`prewarm_core::ttl`) the group ends at its
//! miss's expiry, and the release is the earliest fetch instant whose entry
//! is still fresh at `l` ([`TtlRule::earliest_covering_fetch_s`]): a
//! session's TTL may be shorter than an earlier one's, so the window may
//! hold instants that do not cover `l` (a relaxation: the bound stays a
//! ceiling), and a fetch under a longer earlier TTL may outlast `s`'s own
//! expiry (not counted: a slight undercount in that corner).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::baseline::{MissGroup, miss_groups, ratio};
use crate::trace::Trace;
use prewarm_core::ttl::TtlRule;

/// Figures of the clairvoyant bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundResult {
    /// Baseline hits plus one per scheduled job.
    pub hits: u64,
    /// `hits / requests` (0 for an empty trace).
    pub hit_rate: f64,
    /// Warming fetches scheduled, each turning one baseline miss into a hit.
    pub scheduled_jobs: u64,
    /// API calls: equal to the baseline's (each scheduled warming fetch
    /// replaces a demand fetch).
    pub api_calls: u64,
}

/// A unit warming job: one fetch in `(release_s, deadline_s]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmJob {
    /// `l - TTL`, exclusive.
    pub release_s: f64,
    /// `s`, inclusive.
    pub deadline_s: f64,
}

/// When the bound's token bucket is full and its clock starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BucketStart {
    /// At the first request, as docs/replay-semantics.md words it: no warming
    /// fetch runs before the trace starts.
    #[default]
    FirstRequest,
    /// At the earliest job release, up to one TTL before the first request,
    /// so warming may run before the trace starts. The reference figures
    /// of `data/traces/README.md` (and the JSON example of
    /// docs/replay-semantics.md, bound 0.92522) follow this convention.
    FirstRelease,
}

/// The clairvoyant bound of `trace` at `ttl` (a flat TTL in seconds or a
/// [`TtlRule`]) with warming fetches limited
/// to `warm_rate_per_min` (burst the same), the bucket full at the first
/// request. A rate below 1 never holds a whole token, so the bound is then
/// the baseline.
pub fn clairvoyant_bound(
    trace: &Trace,
    ttl: impl Into<TtlRule>,
    warm_rate_per_min: f64,
) -> BoundResult {
    clairvoyant_bound_with(trace, ttl, warm_rate_per_min, BucketStart::FirstRequest)
}

/// [`clairvoyant_bound`] with the bucket's start chosen by `start`.
pub fn clairvoyant_bound_with(
    trace: &Trace,
    ttl: impl Into<TtlRule>,
    warm_rate_per_min: f64,
    start: BucketStart,
) -> BoundResult {
    let ttl = ttl.into();
    let groups = miss_groups(trace, &ttl);
    let requests = trace.len() as u64;
    let misses = groups.len() as u64;
    let jobs = warm_jobs(&groups, &ttl);
    let start_s = bucket_start_s(trace, &jobs, start);
    let scheduled_jobs = schedule_edf(&jobs, start_s, warm_rate_per_min);
    let hits = requests - misses + scheduled_jobs;
    BoundResult {
        hits,
        hit_rate: ratio(hits, requests),
        scheduled_jobs,
        api_calls: misses,
    }
}

/// The instant the bound's bucket is full, under `start`.
pub fn bucket_start_s(trace: &Trace, jobs: &[WarmJob], start: BucketStart) -> f64 {
    let first_request_s = trace.times_s.first().copied().unwrap_or(0.0);
    match (start, jobs.first()) {
        (BucketStart::FirstRelease, Some(job)) => job.release_s.min(first_request_s),
        _ => first_request_s,
    }
}

/// The warming job of each miss group, sorted by release. A group whose
/// window is empty (only with a TTL that is not positive) has no job.
pub fn warm_jobs(groups: &[MissGroup], ttl: impl Into<TtlRule>) -> Vec<WarmJob> {
    let ttl = ttl.into();
    let mut jobs: Vec<WarmJob> = groups
        .iter()
        .map(|g| WarmJob {
            release_s: ttl.earliest_covering_fetch_s(g.last_s, g.start_s),
            deadline_s: g.start_s,
        })
        .filter(|j| j.release_s < j.deadline_s)
        .collect();
    jobs.sort_unstable_by(|a, b| a.release_s.total_cmp(&b.release_s));
    jobs
}

/// How many of `jobs` (sorted by release) EDF schedules through a token
/// bucket of `rate_per_min` tokens a minute, burst `rate_per_min`, full at
/// `start_s`. No job runs before `start_s`.
pub fn schedule_edf(jobs: &[WarmJob], start_s: f64, rate_per_min: f64) -> u64 {
    schedule_edf_with(jobs, start_s, rate_per_min, &mut |_| {})
}

/// [`schedule_edf`], telling `on_scheduled` the deadline (the first request
/// the fetch turns into a hit) of every job it schedules.
pub fn schedule_edf_with(
    jobs: &[WarmJob],
    start_s: f64,
    rate_per_min: f64,
    on_scheduled: &mut dyn FnMut(f64),
) -> u64 {
    debug_assert!(jobs.is_sorted_by(|a, b| a.release_s <= b.release_s));
    // Also rejects NaN: a bucket that never holds a whole token runs nothing.
    if rate_per_min.is_nan() || rate_per_min < 1.0 {
        return 0;
    }
    let mut bucket = TokenBucket::full_at(start_s, rate_per_min);
    let mut pending: BinaryHeap<Reverse<Deadline>> = BinaryHeap::new();
    let mut next = 0;
    let mut scheduled = 0;
    loop {
        let now_s = bucket.at_s;
        while let Some(job) = jobs.get(next).filter(|j| j.release_s <= now_s) {
            pending.push(Reverse(Deadline(job.deadline_s)));
            next += 1;
        }
        while pending.peek().is_some_and(|Reverse(d)| d.0 < now_s) {
            pending.pop();
        }
        if pending.is_empty() {
            match jobs.get(next) {
                Some(job) => bucket.advance_to(job.release_s),
                None => return scheduled,
            }
        } else if bucket.tokens >= 1.0 {
            if let Some(Reverse(d)) = pending.pop() {
                on_scheduled(d.0);
            }
            bucket.tokens -= 1.0;
            scheduled += 1;
        } else {
            bucket.wait_for_token();
        }
    }
}

/// The warming budget on virtual time: continuous refill, capped at burst.
#[derive(Debug)]
struct TokenBucket {
    /// Current virtual time.
    at_s: f64,
    tokens: f64,
    rate_per_min: f64,
    burst: f64,
}

impl TokenBucket {
    fn full_at(at_s: f64, rate_per_min: f64) -> Self {
        Self {
            at_s,
            tokens: rate_per_min,
            rate_per_min,
            burst: rate_per_min,
        }
    }

    /// Moves time forward to `now_s`, refilling.
    fn advance_to(&mut self, now_s: f64) {
        if now_s > self.at_s {
            let refill = (now_s - self.at_s) * self.rate_per_min / 60.0;
            self.tokens = (self.tokens + refill).min(self.burst);
            self.at_s = now_s;
        }
    }

    /// Moves time forward to the instant the bucket holds one whole token.
    /// Sets the count to exactly 1 so rounding cannot stall the clock.
    fn wait_for_token(&mut self) {
        let wait_s = (1.0 - self.tokens) * 60.0 / self.rate_per_min;
        self.at_s += wait_s;
        self.tokens = 1.0;
    }
}

/// A deadline ordered by `f64::total_cmp`, for the EDF heap.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Deadline(f64);

impl Eq for Deadline {}

impl PartialOrd for Deadline {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Deadline {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::baseline;
    use crate::baseline::tests::trace_of;
    use proptest::prelude::*;

    fn job(release_s: f64, deadline_s: f64) -> WarmJob {
        WarmJob {
            release_s,
            deadline_s,
        }
    }

    /// TTL 100 s, one token a minute. Hand-computed:
    /// - groups: a@0 (l 99), b@50 (l 130), c@60 (l 60), a@100 (l 180; the
    ///   request at exactly 0 + TTL is a miss);
    /// - jobs: a (-1, 0], b (30, 50], c (-40, 60], a (80, 100];
    /// - t=0: the full bucket (1 token) runs a's job (deadline 0 < 60);
    /// - the next token is whole at exactly 60: b expired at 50, c runs at
    ///   its deadline 60 (inclusive);
    /// - a's second job needs a token in (80, 100]; the next is at 120.
    #[test]
    fn hand_computed_bound_uses_deadline_and_refill_edges() {
        let t = trace_of(&[
            (0.0, "a"),
            (50.0, "b"),
            (60.0, "c"),
            (99.0, "a"),
            (100.0, "a"),
            (130.0, "b"),
            (180.0, "a"),
        ]);
        let base = baseline(&t, 100.0, None);
        assert_eq!((base.hits, base.misses), (3, 4));
        let jobs = warm_jobs(&miss_groups(&t, 100.0), 100.0);
        let expected = [
            job(-40.0, 60.0),
            job(-1.0, 0.0),
            job(30.0, 50.0),
            job(80.0, 100.0),
        ];
        assert_eq!(jobs, expected);
        let b = clairvoyant_bound(&t, 100.0, 1.0);
        assert_eq!((b.scheduled_jobs, b.hits, b.api_calls), (2, 5, 4));
        assert!((b.hit_rate - 5.0 / 7.0).abs() < 1e-12);
        // Rate 2: two tokens at 0 run a and c; the token whole at 30 runs b
        // just after its release; at 80 the bucket holds 5/3: a runs.
        assert_eq!(clairvoyant_bound(&t, 100.0, 2.0).hits, 7);
    }

    /// A job released at `r` competes, by deadline, for a token that
    /// becomes whole at exactly `r`.
    #[test]
    fn job_released_when_a_token_refills_wins_by_earlier_deadline() {
        // Rate 1/min from 0: tokens at 0 (used by the deadline-0 job), 60
        // (by `(0, 200]`), 120, 180. At 120, `(120, 150]` is released and
        // beats `(55, 300]`, which then runs at 180.
        let jobs = [
            job(-10.0, 0.0),
            job(0.0, 200.0),
            job(55.0, 300.0),
            job(120.0, 150.0),
        ];
        assert_eq!(schedule_edf(&jobs, 0.0, 1.0), 4);
    }

    #[test]
    fn bucket_starts_full_with_burst_equal_to_rate() {
        let jobs = vec![job(-1.0, 0.0); 5];
        assert_eq!(schedule_edf(&jobs, 0.0, 3.0), 3);
        // No job runs before the first request, even if released earlier.
        assert_eq!(schedule_edf(&[job(-50.0, -1.0)], 0.0, 3.0), 0);
    }

    #[test]
    fn refill_is_continuous_and_capped_at_burst() {
        // Rate 2/min: a token every 30 s; after a long idle gap only 2.
        let mut jobs = vec![job(-1.0, 0.0); 2];
        jobs.extend([job(999.0, 1000.0); 4]);
        jobs.push(job(1000.0, 1030.0));
        assert_eq!(schedule_edf(&jobs, 0.0, 2.0), 5);
    }

    #[test]
    fn bucket_started_at_first_release_may_warm_before_the_trace() {
        // TTL 60, one token a minute. Two one-request groups at 0: from the
        // first request only one token exists before both deadlines; from
        // the first release (-60) a second one is whole at 0.
        let t = trace_of(&[(0.0, "a"), (0.0, "b")]);
        assert_eq!(clairvoyant_bound(&t, 60.0, 1.0).scheduled_jobs, 1);
        let early = clairvoyant_bound_with(&t, 60.0, 1.0, BucketStart::FirstRelease);
        assert_eq!(early.scheduled_jobs, 2);
    }

    #[test]
    fn rate_below_one_token_is_the_baseline() {
        let t = trace_of(&[(0.0, "a"), (10.0, "a"), (100.0, "a")]);
        for rate in [0.0, 0.5, f64::NAN, -3.0] {
            let b = clairvoyant_bound(&t, 60.0, rate);
            assert_eq!((b.hits, b.scheduled_jobs), (1, 0), "rate {rate}");
        }
    }

    #[test]
    fn empty_trace_has_an_empty_bound() {
        let b = clairvoyant_bound(&Trace::default(), 60.0, 100.0);
        assert_eq!((b.hits, b.hit_rate, b.api_calls), (0, 0.0, 0));
    }

    fn arb_requests() -> impl Strategy<Value = Vec<(f64, &'static str)>> {
        prop::collection::vec((0u32..120, 0usize..6), 1..200).prop_map(|rows| {
            let names = ["a", "b", "c", "d", "e", "f"];
            let mut now_s = 0.0;
            rows.into_iter()
                .map(|(dt, k)| {
                    now_s += f64::from(dt) / 4.0;
                    (now_s, names[k])
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn bound_lies_between_baseline_and_all_requests(
            requests in arb_requests(), ttl in 1u32..120, rate in 0u32..20,
        ) {
            let t = trace_of(&requests);
            let ttl_s = f64::from(ttl);
            let base = baseline(&t, ttl_s, None);
            let b = clairvoyant_bound(&t, ttl_s, f64::from(rate));
            prop_assert!(base.hits <= b.hits && b.hits <= base.requests);
            prop_assert_eq!(b.hits, base.hits + b.scheduled_jobs);
            prop_assert_eq!(b.api_calls, base.api_calls());
            if rate == 0 {
                prop_assert_eq!(b.hits, base.hits);
            }
            let early = clairvoyant_bound_with(&t, ttl_s, f64::from(rate), BucketStart::FirstRelease);
            prop_assert!(base.hits <= early.hits && early.hits <= base.requests);
            // Unlimited tokens schedule every job: every request hits.
            prop_assert_eq!(clairvoyant_bound(&t, ttl_s, f64::INFINITY).hits, base.requests);
        }
    }
}
