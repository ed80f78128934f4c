//! Refresh-ahead (`prewarm_sim::policies`) against the reference figures of
//! the real traces (`data/traces/README.md`): at 0.8·TTL and 100 reloads a
//! minute, its hit rate to within 0.05 point and its API cost ratio to the
//! README's three decimals. A missing trace fails the test.

mod common;
use common::traces_dir;

use prewarm_sim::baseline::baseline;
use prewarm_sim::policies::refresh_ahead;
use prewarm_sim::trace::read_trace;

/// (file, TTL s, hit rate %, API calls / no-warming API calls).
const REFERENCES: [(&str, f64, f64, f64); 6] = [
    (
        "edgar_sec_weblog_20170101_1pct_cik.csv.gz",
        60.0,
        17.34,
        1.013,
    ),
    (
        "edgar_sec_weblog_20170101_1pct_cik.csv.gz",
        300.0,
        26.60,
        1.018,
    ),
    (
        "stocknet_cashtag_tweets_2014_2016_ticker.csv.gz",
        60.0,
        6.48,
        1.006,
    ),
    (
        "stocknet_cashtag_tweets_2014_2016_ticker.csv.gz",
        300.0,
        13.40,
        1.013,
    ),
    (
        "umass_youtube_campus_20070915_1day_videoid.csv.gz",
        60.0,
        5.77,
        1.005,
    ),
    (
        "umass_youtube_campus_20070915_1day_videoid.csv.gz",
        300.0,
        10.24,
        1.008,
    ),
];

const FRACTION: f64 = 0.8;
const WARM_RATE_PER_MIN: f64 = 100.0;

#[test]
fn refresh_ahead_matches_the_readme() {
    for (file, ttl_s, want_pct, want_cost) in REFERENCES {
        let path = traces_dir().join(file);
        let trace = read_trace(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let got = refresh_ahead(&trace, ttl_s, WARM_RATE_PER_MIN, FRACTION, 0.0).unwrap();
        let base = baseline(&trace, ttl_s, None);
        let got_pct = got.hit_rate() * 100.0;
        let cost = got.api_calls() as f64 / base.api_calls() as f64;
        let what = format!("{file} TTL {ttl_s}");
        assert!(
            (got_pct - want_pct).abs() <= 0.05,
            "{what}: hit rate {got_pct:.3} %, README says {want_pct} %"
        );
        assert!(
            (cost - want_cost).abs() <= 0.0005 + 1e-12,
            "{what}: cost ratio {cost:.4}, README says {want_cost}"
        );
        assert!(got.hits >= base.hits, "{what}: below the baseline");
    }
}
