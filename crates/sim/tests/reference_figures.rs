//! The baseline and the clairvoyant bound against the reference figures of
//! the real traces (`data/traces/README.md`), which the repository carries;
//! a missing trace fails the test rather than skipping it.

mod common;
use common::traces_dir;

use prewarm_sim::baseline::baseline;
use prewarm_sim::bound::{BucketStart, clairvoyant_bound, clairvoyant_bound_with};
use prewarm_sim::trace::{Trace, read_trace};

/// One trace's figures from the README.
struct Reference {
    file: &'static str,
    requests: usize,
    distinct_keys: usize,
    /// Exact baseline hits at TTL 60 s and 300 s, unlimited capacity.
    hits_ttl_60: u64,
    hits_ttl_300: u64,
    /// Hit rate in percent at warm rate 100/min, TTL 60 s and 300 s.
    bound_pct_ttl_60: f64,
    bound_pct_ttl_300: f64,
    /// First table: hit rate in percent for TTL 60, 300 and 3600 s, each
    /// as (unlimited, LRU 1 %, LRU 10 %).
    ttl_table_pct: [(f64, [f64; 3]); 3],
}

const REFERENCES: [Reference; 3] = [
    Reference {
        file: "edgar_sec_weblog_20170101_1pct_cik.csv.gz",
        requests: 174_856,
        distinct_keys: 41_178,
        hits_ttl_60: 28_826,
        hits_ttl_300: 44_606,
        bound_pct_ttl_60: 92.52,
        bound_pct_ttl_300: 96.98,
        ttl_table_pct: [
            (60.0, [16.5, 16.5, 16.5]),
            (300.0, [25.5, 24.9, 25.5]),
            (3600.0, [46.3, 27.1, 45.6]),
        ],
    },
    Reference {
        file: "stocknet_cashtag_tweets_2014_2016_ticker.csv.gz",
        requests: 119_641,
        distinct_keys: 87,
        hits_ttl_60: 7_425,
        hits_ttl_300: 15_295,
        bound_pct_ttl_60: 100.0,
        bound_pct_ttl_300: 100.0,
        ttl_table_pct: [
            (60.0, [6.2, 3.2, 6.2]),
            (300.0, [12.8, 6.2, 12.8]),
            (3600.0, [36.2, 10.4, 35.2]),
        ],
    },
    Reference {
        file: "umass_youtube_campus_20070915_1day_videoid.csv.gz",
        requests: 26_618,
        distinct_keys: 13_489,
        hits_ttl_60: 1_509,
        hits_ttl_300: 2_701,
        bound_pct_ttl_60: 100.0,
        bound_pct_ttl_300: 100.0,
        ttl_table_pct: [
            (60.0, [5.7, 5.7, 5.7]),
            (300.0, [10.1, 10.0, 10.1]),
            (3600.0, [22.4, 11.3, 22.3]),
        ],
    },
];

const WARM_RATE_PER_MIN: f64 = 100.0;

fn load(reference: &Reference) -> Trace {
    let path = traces_dir().join(reference.file);
    let trace = read_trace(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert_eq!(
        trace.len(),
        reference.requests,
        "{}: requests",
        reference.file
    );
    assert_eq!(
        trace.distinct_keys(),
        reference.distinct_keys,
        "{}: distinct keys",
        reference.file
    );
    trace
}

/// LRU capacity for a percentage of the distinct keys, rounded to the
/// nearest key. This is the README's convention: rounding down fails two
/// stocknet columns (1 % of 87 keys rounds down to 0 keys, and at TTL
/// 3600 s its 10 % column needs 9 keys, not 8), rounding to nearest
/// matches all 18 LRU figures.
fn lru_capacity(distinct_keys: usize, percent: usize) -> usize {
    (distinct_keys * percent + 50) / 100
}

/// Asserts `got` (a rate in 0..=1) rounds to `want_pct` at 0.1 point.
fn assert_pct(got: f64, want_pct: f64, tolerance_pct: f64, what: &str) {
    let got_pct = got * 100.0;
    assert!(
        (got_pct - want_pct).abs() <= tolerance_pct + 1e-9,
        "{what}: got {got_pct:.3} %, README says {want_pct} %"
    );
}

#[test]
fn baseline_hits_match_the_readme_exactly() {
    for r in &REFERENCES {
        let trace = load(r);
        for (ttl_s, want) in [(60.0, r.hits_ttl_60), (300.0, r.hits_ttl_300)] {
            let got = baseline(&trace, ttl_s, None);
            assert_eq!(got.hits, want, "{} TTL {ttl_s}: baseline hits", r.file);
            assert_eq!(got.hits + got.misses, got.requests);
        }
    }
}

#[test]
fn baseline_ttl_table_matches_the_readme_to_a_tenth_of_a_point() {
    for r in &REFERENCES {
        let trace = load(r);
        for (ttl_s, [unlimited, lru_1, lru_10]) in r.ttl_table_pct {
            let what = format!("{} TTL {ttl_s}", r.file);
            // The README rounds to 0.1 %: within 0.05 point of its figure.
            assert_pct(
                baseline(&trace, ttl_s, None).hit_rate(),
                unlimited,
                0.05,
                &what,
            );
            for (percent, want) in [(1, lru_1), (10, lru_10)] {
                let capacity = lru_capacity(trace.distinct_keys(), percent);
                let got = baseline(&trace, ttl_s, Some(capacity)).hit_rate();
                assert_pct(
                    got,
                    want,
                    0.05,
                    &format!("{what} LRU {percent} % ({capacity} keys)"),
                );
            }
        }
    }
}

/// The README's bound starts the token bucket full at the earliest job
/// release, up to one TTL before the first request
/// ([`BucketStart::FirstRelease`]); it matches that to its two decimals.
#[test]
fn bound_at_100_per_minute_matches_the_readme() {
    for r in &REFERENCES {
        let trace = load(r);
        for (ttl_s, want) in [(60.0, r.bound_pct_ttl_60), (300.0, r.bound_pct_ttl_300)] {
            let base = baseline(&trace, ttl_s, None);
            let got =
                clairvoyant_bound_with(&trace, ttl_s, WARM_RATE_PER_MIN, BucketStart::FirstRelease);
            let what = format!(
                "{} TTL {ttl_s}: bound (bucket full at first release)",
                r.file
            );
            assert_pct(got.hit_rate, want, 0.005, &what);
            assert_eq!(got.api_calls, base.api_calls(), "{what}: API calls");
            assert!(got.hits >= base.hits && got.hits as usize <= trace.len());
        }
    }
}

/// With the bucket full at the first request, as docs/replay-semantics.md words
/// it, the bound is within 0.1 point of the README except on edgar at TTL
/// 300 s, where the warming the README allows in the 300 s before the trace
/// is worth 0.29 point; there the figure is checked against the exact
/// schedule count.
#[test]
fn bound_with_bucket_full_at_first_request() {
    for r in &REFERENCES {
        let trace = load(r);
        for (ttl_s, want) in [(60.0, r.bound_pct_ttl_60), (300.0, r.bound_pct_ttl_300)] {
            let got = clairvoyant_bound(&trace, ttl_s, WARM_RATE_PER_MIN);
            let what = format!(
                "{} TTL {ttl_s}: bound (bucket full at first request)",
                r.file
            );
            if r.file.starts_with("edgar") && ttl_s == 300.0 {
                assert_eq!((got.scheduled_jobs, got.hits), (124_478, 169_084), "{what}");
                assert_pct(got.hit_rate, 96.699, 0.001, &what);
            } else {
                assert_pct(got.hit_rate, want, 0.1, &what);
            }
        }
    }
}

/// Regression: with a cost cap far above what warming can spend, the
/// engine woke the replay for tokens `poll_warm` had just declined to
/// spend (its key in flight), and the replay spun on one instant for ever.
/// The run must end, and keep the cap.
#[test]
fn replay_with_a_cap_warming_cannot_reach_ends_and_keeps_it() {
    let trace = load(&REFERENCES[2]);
    let mut cfg = prewarm_sim::replay::ReplayConfig::default();
    cfg.engine.warming.max_cost_ratio = 1000.0;
    let run = prewarm_sim::replay::replay(&trace, &cfg, &mut |_, _| {}).unwrap();
    let w = &run.report.warmed;
    assert!(w.warm_fetches > 0, "{w:?}");
    assert!(w.api_calls as f64 <= 1000.0 * run.report.baseline.api_calls as f64 + 100.0);
}
