//! `gen-trace`'s workload knobs: each one changes the traffic the way its
//! documentation says (client column, poll mode, poll period and jitter,
//! Zipf exponent, popularity drift, news intensity, anonymous share,
//! universe size). Runs are small and short to stay fast.

mod common;
use common::collect;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::America::New_York;
use prewarm_sim::r#gen::{
    ClientKind, GenConfig, GenSummary, PollMode, Request, client_kind, generate, universe_path,
    write_trace,
};

/// Monday 2026-03-02, the first of five trading days.
fn monday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
}

/// `days` days from Monday 2026-03-02 with about a quarter of the default
/// volume.
fn small(days: u32) -> GenConfig {
    let mut cfg = GenConfig {
        start_date: monday(),
        days,
        universe_size: 400,
        users: 15,
        ..GenConfig::default()
    };
    cfg.lookups.per_trading_day = 60_000.0;
    cfg.news.events_per_trading_day = 10.0;
    cfg
}

/// Only users: no scanners, news or one-off lookups.
fn users_only(users: usize) -> GenConfig {
    let mut cfg = small(1);
    cfg.users = users;
    cfg.user.absent_prob = 0.0;
    cfg.scanners.clear();
    cfg.news.events_per_trading_day = 0.0;
    cfg.lookups.per_trading_day = 0.0;
    cfg
}

fn ms(r: &Request) -> i64 {
    (r.time_s * 1000.0).round() as i64
}

/// Each user's polls: timestamp (ms) → keys requested at it.
fn polls_by_user(requests: &[Request]) -> HashMap<u32, BTreeMap<i64, Vec<u32>>> {
    let mut polls: HashMap<u32, BTreeMap<i64, Vec<u32>>> = HashMap::new();
    for r in requests {
        assert!(matches!(client_kind(r.client), Some((ClientKind::User, _))));
        polls
            .entry(r.client)
            .or_default()
            .entry(ms(r))
            .or_default()
            .push(r.key);
    }
    polls
}

/// The share of all requests that go to the most requested key.
fn top_key_share(requests: &[Request]) -> f64 {
    let mut counts: HashMap<u32, u64> = HashMap::new();
    for r in requests {
        *counts.entry(r.key).or_default() += 1;
    }
    *counts.values().max().unwrap() as f64 / requests.len() as f64
}

/// The 10 most requested keys of the local day starting at `from_s`.
fn top10(requests: &[Request], from_s: f64) -> HashSet<u32> {
    let mut counts: HashMap<u32, u64> = HashMap::new();
    for r in requests
        .iter()
        .filter(|r| (from_s..from_s + 86_400.0).contains(&r.time_s))
    {
        *counts.entry(r.key).or_default() += 1;
    }
    let mut ranked: Vec<(u32, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.iter().take(10).map(|&(k, _)| k).collect()
}

fn anonymous_share(summary: &GenSummary) -> f64 {
    summary.anonymous_requests as f64 / summary.requests as f64
}

/// Named so that `cargo test gen` selects these tests.
mod gen_knobs {
    use super::*;

    #[test]
    fn without_the_client_column_the_csv_has_two_columns_and_the_same_requests() {
        let dir = tempfile::tempdir().unwrap();
        let with = dir.path().join("with.csv");
        let without = dir.path().join("without.csv");
        let cfg = small(1);
        write_trace(&cfg, &with, |_| {}).unwrap();
        let bare = GenConfig {
            client_column: false,
            ..cfg
        };
        write_trace(&bare, &without, |_| {}).unwrap();
        let with = fs::read_to_string(with).unwrap();
        let without = fs::read_to_string(without).unwrap();
        let mut lines = without.lines();
        assert_eq!(lines.next(), Some("timestamp,key"));
        assert!(lines.all(|l| l.split(',').count() == 2));
        let stripped: Vec<&str> = with
            .lines()
            .skip(1)
            .map(|l| l.rsplit_once(',').unwrap().0)
            .collect();
        assert_eq!(stripped, without.lines().skip(1).collect::<Vec<_>>());
    }

    #[test]
    fn batched_polls_request_the_whole_watchlist_at_one_millisecond() {
        let mut cfg = users_only(12);
        cfg.user.poll_mode = PollMode::Batched;
        let (requests, _) = collect(&cfg);
        let polls = polls_by_user(&requests);
        assert_eq!(polls.len(), 12);
        for (user, polls) in &polls {
            let first = polls.values().next().unwrap();
            assert!(polls.len() > 10 && first.len() >= cfg.user.watchlist_min);
            assert!(
                polls.values().all(|keys| keys == first),
                "u{user}: every poll is the same burst of the watchlist"
            );
        }
        // Sequential polls never put two tickers of a user at one millisecond.
        cfg.user.poll_mode = PollMode::Sequential;
        let (requests, _) = collect(&cfg);
        for (user, polls) in polls_by_user(&requests) {
            assert!(polls.values().all(|keys| keys.len() == 1), "u{user}");
        }
    }

    #[test]
    fn polls_follow_the_period_and_their_jitter() {
        let mut cfg = users_only(8);
        cfg.user.poll_mode = PollMode::Batched;
        cfg.user.poll_period_min_s = 30.0;
        cfg.user.poll_period_max_s = 30.0;
        let intervals = |cfg: &GenConfig| {
            let (requests, _) = collect(cfg);
            let mut all = Vec::new();
            for polls in polls_by_user(&requests).values() {
                let times: Vec<i64> = polls.keys().copied().collect();
                all.extend(times.windows(2).map(|w| w[1] - w[0]));
            }
            all
        };
        cfg.user.poll_jitter_ms = 0;
        let exact = intervals(&cfg);
        assert!(exact.len() > 100);
        assert!(exact.iter().all(|&d| d == 30_000), "no jitter: every 30 s");
        cfg.user.poll_jitter_ms = 4_000;
        let jittered = intervals(&cfg);
        assert!(jittered.iter().all(|&d| (26_000..=34_000).contains(&d)));
        let spread = jittered.iter().max().unwrap() - jittered.iter().min().unwrap();
        assert!(spread > 4_000, "jitter spreads the intervals: {spread} ms");
    }

    #[test]
    fn a_higher_zipf_exponent_raises_the_top_keys_share() {
        let share = |s: f64| {
            let cfg = GenConfig {
                zipf_exponent: s,
                ..small(1)
            };
            top_key_share(&collect(&cfg).0)
        };
        let (flat, steep) = (share(0.6), share(1.4));
        assert!(steep > 2.0 * flat, "top key share {flat:.3} → {steep:.3}");
    }

    #[test]
    fn drift_changes_the_top_ten_between_the_first_and_last_day() {
        let overlap = |drift: f64| {
            let mut cfg = users_only(0);
            cfg.days = 5;
            cfg.daily_drift = drift;
            cfg.lookups.per_trading_day = 40_000.0;
            let (requests, summary) = collect(&cfg);
            assert_eq!(summary.trading_days, 5);
            // Monday to Friday are all EST days of 24 hours.
            let monday_s = New_York
                .from_local_datetime(&monday().and_hms_opt(0, 0, 0).unwrap())
                .unwrap()
                .timestamp() as f64;
            let a = top10(&requests, monday_s);
            let b = top10(&requests, monday_s + 4.0 * 86_400.0);
            a.intersection(&b).count()
        };
        let (frozen, drifting) = (overlap(0.0), overlap(0.8));
        assert!(frozen >= 8, "no drift keeps the head: {frozen} of 10");
        assert!(
            drifting + 3 <= frozen,
            "drift reshuffles the head: {drifting} vs {frozen} of 10 kept"
        );
    }

    #[test]
    fn news_intensity_sets_the_events_and_their_lookups() {
        let run = |events: f64, lookups_max: f64| {
            let mut cfg = small(2);
            cfg.news.events_per_trading_day = events;
            cfg.news.lookups_max = lookups_max;
            collect(&cfg).1
        };
        let quiet = run(0.0, 1500.0);
        assert!(quiet.news.is_empty());
        let busy = run(60.0, 1500.0);
        assert!((90..=150).contains(&busy.news.len()), "{}", busy.news.len());
        assert!(busy.anonymous_requests > quiet.anonymous_requests + 10_000);
        let mean = |s: &GenSummary| {
            s.news.iter().map(|e| f64::from(e.lookups)).sum::<f64>() / s.news.len() as f64
        };
        let bigger = run(60.0, 6000.0);
        assert!(mean(&bigger) > 1.5 * mean(&busy));
    }

    #[test]
    fn the_anonymous_share_is_met_within_two_points() {
        for share in [0.3, 0.85] {
            let mut cfg = small(3);
            cfg.lookups.anonymous_share = Some(share);
            let (_, summary) = collect(&cfg);
            let got = anonymous_share(&summary);
            assert!((got - share).abs() < 0.02, "asked {share}, got {got:.3}");
            assert_ne!(summary.lookups_per_trading_day, cfg.lookups.per_trading_day);
        }
        // Below what news lookers alone make, or with nobody but anonymous
        // clients, the share cannot be reached.
        let mut cfg = small(1);
        cfg.lookups.anonymous_share = Some(0.001);
        let err = generate(&cfg, |_| {}).unwrap_err().to_string();
        assert!(err.contains("lookups.anonymous_share"), "{err}");
        cfg.users = 0;
        cfg.scanners.clear();
        cfg.lookups.anonymous_share = Some(0.5);
        let err = generate(&cfg, |_| {}).unwrap_err().to_string();
        assert!(err.contains("lookups.anonymous_share"), "{err}");
    }

    #[test]
    fn a_small_universe_fits_after_shrinking_and_keys_stay_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.csv");
        let mut cfg = GenConfig {
            universe_size: 25,
            ..small(1)
        };
        assert!(cfg.validate().is_err(), "default scanners want 200 keys");
        cfg.fit_to_universe();
        let summary = write_trace(&cfg, &path, |_| {}).unwrap();
        assert!(summary.scanner_requests > 0 && summary.distinct_keys <= 25);
        let universe = fs::read_to_string(universe_path(&path)).unwrap();
        assert_eq!(universe.lines().count(), 26);
        let untouched = {
            let mut c = GenConfig::default();
            c.fit_to_universe();
            c
        };
        assert_eq!(untouched, GenConfig::default());
    }
}
