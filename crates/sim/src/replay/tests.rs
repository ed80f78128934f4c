//! Tests of the replay driver: causality, the baseline equivalences, key
//! ids followed by stamp, latency.

use super::*;
use crate::trace::read_trace_from;

fn trace(lines: &[(f64, &str, &str)]) -> Trace {
    let mut csv = String::from("timestamp,key,client\n");
    for (t, k, c) in lines {
        csv.push_str(&format!("{t},{k},{c}\n"));
    }
    read_trace_from(csv.as_bytes(), "t.csv").unwrap()
}

fn owned_trace(lines: &[(f64, String, String)]) -> Trace {
    let refs: Vec<(f64, &str, &str)> = lines
        .iter()
        .map(|(t, k, c)| (*t, k.as_str(), c.as_str()))
        .collect();
    trace(&refs)
}

/// A mixed workload: a poller every 100 s, a hot key, random one-offs.
fn workload(n: usize, seed: u64) -> Vec<(f64, String, String)> {
    let mut x = seed;
    let mut out = Vec::new();
    let mut t = 1_772_461_800.0;
    for i in 0..n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        t += ((x >> 40) % 7) as f64 + 0.25;
        let (k, c) = match i % 4 {
            0 => (format!("P{}", (x >> 20) % 3), "u1".to_string()),
            1 => ("HOT".to_string(), "a".to_string()),
            _ => (
                format!("K{}", (x >> 12) % 40),
                format!("a{}", (x >> 30) % 5),
            ),
        };
        out.push((t, k, c));
    }
    out
}

fn outcomes(lines: &[(f64, String, String)]) -> (Vec<bool>, Counters) {
    let tr = owned_trace(lines);
    let mut engine = Engine::new(ReplayConfig::default().engine_config()).unwrap();
    let mut hits = Vec::new();
    run_warmed(&mut engine, &tr, &mut |_, _| {}, &mut |_, hit, _| {
        hits.push(hit)
    });
    (hits, engine.stats().total)
}

/// Causality: the warmer never sees a request before it is processed,
/// so the outcome of every request of a prefix is the same whether or
/// not the rest of the trace follows.
#[test]
fn outcomes_of_a_prefix_do_not_depend_on_what_follows() {
    for seed in 1..6 {
        let full = workload(3000, seed);
        let (all, _) = outcomes(&full);
        for cut in [1, 17, 500, 1999] {
            let (prefix, _) = outcomes(&full[..cut]);
            assert_eq!(prefix[..], all[..cut], "seed {seed}, cut {cut}");
        }
    }
}

/// With warming off, the engine's figures are exactly the baseline's.
#[test]
fn warming_off_equals_the_baseline() {
    let lines = workload(2000, 9);
    let tr = owned_trace(&lines);
    let mut cfg = ReplayConfig::default();
    cfg.engine.warming.strategies = StrategySet::NONE;
    let run = replay(&tr, &cfg, &mut |_, _| {}).unwrap();
    assert_eq!(run.report.warmed.hits, run.report.baseline.hits);
    assert_eq!(run.report.warmed.api_calls, run.report.baseline.api_calls);
    assert_eq!(run.report.warmed.cost_ratio, 1.0);
}

/// Under a latency, with warming off, the engine's driver coalesces
/// and hits exactly as the baseline under latency does.
#[test]
fn warming_off_under_latency_is_the_baseline_under_latency() {
    let lines = workload(3000, 5);
    let tr = owned_trace(&lines);
    for latency_s in [0.0, 0.25, 3.0, 45.0] {
        let mut cfg = ReplayConfig::default();
        cfg.engine.warming.strategies = StrategySet::NONE;
        cfg.engine.upstream_latency_s = latency_s;
        let r = replay(&tr, &cfg, &mut |_, _| {}).unwrap().report;
        let base = baseline_under_latency(&tr, 60.0, latency_s);
        assert_eq!(r.warmed.hits, base.hits, "L={latency_s}");
        assert_eq!(r.warmed.coalesced, base.coalesced, "L={latency_s}");
        assert_eq!(r.warmed.api_calls, base.api_calls(), "L={latency_s}");
        assert_eq!(r.baseline.coalesced, base.coalesced);
        assert!((r.warmed.coalesced_wait_s - base.coalesced_wait_s).abs() < 1e-6);
        if latency_s >= 3.0 {
            assert!(base.coalesced > 0, "the workload coalesces at {latency_s}");
        }
    }
}

/// Under a latency, a warming fetch is not a hit until it lands, and
/// the cost cap still holds against the baseline under latency.
#[test]
fn warming_under_latency_keeps_the_cap_and_counts_every_request_once() {
    let lines = workload(4000, 6);
    let tr = owned_trace(&lines);
    let mut cfg = ReplayConfig::default();
    cfg.engine.upstream_latency_s = 2.0;
    cfg.engine.warming.max_cost_ratio = 1.1;
    let r = replay(&tr, &cfg, &mut |_, _| {}).unwrap().report;
    let w = &r.warmed;
    assert_eq!(w.hits + w.coalesced + w.demand_fetches, r.requests);
    let burst = cfg.engine.warming.rate_limit_per_min;
    assert!(
        w.api_calls as f64 <= 1.1 * r.baseline.api_calls as f64 + burst,
        "{w:?} vs {:?}",
        r.baseline
    );
    assert!(w.warm_fetches > 0);
}

/// Batch calls: more keys warmed, each call counted once in the API
/// calls and under the cap, and the report says how many calls.
#[test]
fn batch_calls_warm_more_keys_and_count_once_under_the_cap() {
    let lines = workload(4000, 7);
    let tr = owned_trace(&lines);
    let run = |batch: usize| {
        let mut cfg = ReplayConfig::default();
        cfg.engine.warming.max_cost_ratio = 1.1;
        cfg.engine.warm_batch_max_keys = batch;
        replay(&tr, &cfg, &mut |_, _| {}).unwrap().report
    };
    let (one, ten) = (run(1), run(10));
    assert_eq!(one.warmed.warm_calls, one.warmed.warm_fetches);
    let w = &ten.warmed;
    assert_eq!(ten.warm_batch_max_keys, 10);
    assert!(w.warm_calls < w.warm_fetches, "{w:?}");
    assert!(w.warm_fetches <= 10 * w.warm_calls, "{w:?}");
    assert_eq!(w.api_calls, w.demand_fetches + w.warm_calls);
    let burst = 100.0;
    assert!(w.api_calls as f64 <= 1.1 * ten.baseline.api_calls as f64 + burst);
    assert!(w.hits >= one.warmed.hits, "{w:?} vs {:?}", one.warmed);
}

#[test]
fn a_latency_with_a_capacity_is_refused_naming_the_field() {
    let tr = trace(&[(1.0, "a", "c")]);
    let mut cfg = ReplayConfig::default();
    cfg.engine.upstream_latency_s = 0.1;
    cfg.engine.capacity_entries = Some(10);
    let err = replay(&tr, &cfg, &mut |_, _| {}).unwrap_err();
    assert_eq!(err.field, "upstream_latency_s");
}

/// Under a tracker much smaller than the trace's keys, the engine
/// releases and reuses key ids as it goes; the replay follows them by
/// stamp, so every request still reaches its own key (warming off: the
/// hits are the baseline's), and the key table stays small.
#[test]
fn released_key_ids_are_followed_by_stamp() {
    let lines = workload(3000, 4);
    let tr = owned_trace(&lines);
    let mut cfg = ReplayConfig::default().engine_config();
    cfg.warming.strategies = StrategySet::NONE;
    cfg.tracker = prewarm_core::tracker::TrackerConfig::with_max_keys(3);
    let mut engine = Engine::new(cfg).unwrap();
    run_warmed(&mut engine, &tr, &mut |_, _| {}, &mut |_, _, _| {});
    let base = baseline(&tr, 60.0, None);
    assert_eq!(engine.stats().total.hits, base.hits);
    assert_eq!(tr.distinct_keys(), 44);
    let live = engine.keys().len();
    assert!(live < 30, "{live} keys live");
    // Every tracked id names a key of the trace (none was used after
    // its release).
    for k in engine.tracker().tracked_keys() {
        let name = engine.keys().name(k);
        assert!(tr.keys.iter().any(|t| **t == *name), "{k:?} named {name:?}");
    }
    assert_eq!(engine.keys().id_bound(), 44, "released ids were reused");
}

/// A timer due between two requests takes effect at its own instant: a
/// key polled every 100 s with a 60 s TTL is warmed just before each
/// poll, not at the poll, so the polls hit once the cadence is learned.
#[test]
fn timer_warms_take_effect_before_the_next_request() {
    let lines: Vec<(f64, String, String)> = (0..40)
        .map(|i| {
            (
                1_772_461_800.0 + f64::from(i) * 100.0,
                "AAPL".to_string(),
                "u1".to_string(),
            )
        })
        .collect();
    let (hits, c) = outcomes(&lines);
    assert!(!hits[0], "nothing to predict from yet");
    assert!(hits[10..].iter().all(|h| *h), "{hits:?}");
    // The cadence makes warms that are used (spare tokens may also keep
    // the key fresh in between: `engine::tests` bounds their cost).
    let time = c.strategy(StrategyId::Time);
    assert!(time.warm_used >= 10, "{time:?}");
    // Accounting: every request is a hit or a demand fetch.
    assert_eq!(c.hits + c.demand_fetches, c.requests);
    // Every warming fetch is used, wasted, or (one key: at most its entry
    // and a fetch in flight) still pending when the trace ends; none is
    // counted twice.
    for id in StrategyId::ALL {
        let s = c.strategy(id);
        assert_eq!(
            s.warm_used + s.warm_wasted + s.warm_pending(),
            s.warm_fetches,
            "{s:?}"
        );
    }
    assert!(c.warm_pending() <= 2, "{c:?}");
}

/// The engine leads by the latency it is given: a key read every 5 s is
/// refreshed early enough that every refresh lands before its entry
/// expires, so once warming has started no read waits on a fetch.
#[test]
fn refreshes_lead_by_the_latency_so_no_read_waits() {
    let lines: Vec<(f64, String, String)> = (0..1440)
        .map(|i| {
            (
                1_772_461_800.0 + f64::from(i) * 5.0,
                "AAPL".to_string(),
                "u1".to_string(),
            )
        })
        .collect();
    let tr = owned_trace(&lines);
    for latency_s in [0.5, 3.0, 9.0] {
        let mut cfg = ReplayConfig::default();
        cfg.engine.upstream_latency_s = latency_s;
        let r = replay(&tr, &cfg, &mut |_, _| {}).unwrap().report;
        let w = &r.warmed;
        // The first fetch is a demand miss; its waiters coalesce once.
        assert_eq!(w.demand_fetches, 1, "L={latency_s}: {w:?}");
        assert!(w.coalesced <= 2, "L={latency_s}: {w:?}");
        assert!(w.hits >= 1437, "L={latency_s}: {w:?}");
    }
}

/// With `closed=until_open`, a key fetched after Friday's close stays
/// fresh over the weekend (and the spring DST change) until Monday's
/// 04:00 pre-market: no fetch at all while closed after the first, in the
/// warmed run, the baseline and the reference policy alike; the flat TTL
/// fetches again after every gap.
#[test]
fn until_open_makes_no_fetch_while_closed_after_the_first() {
    // Friday 2026-03-06 20:30 EST, then every 10 minutes until Monday
    // 03:50 EDT (04:00 EDT is 1_773_043_200).
    let (friday_s, open_s) = (1_772_847_000.0, 1_773_043_200.0);
    let lines: Vec<(f64, String, String)> = (0..)
        .map(|i| friday_s + f64::from(i) * 600.0)
        .take_while(|t| *t < open_s)
        .map(|t| (t, "AAPL".to_string(), "u1".to_string()))
        .collect();
    let tr = owned_trace(&lines);
    let mut cfg = ReplayConfig::default();
    cfg.engine.ttl_by_session =
        Some(prewarm_core::ttl::SessionTtls::parse_spec("closed=until_open", 60.0).unwrap());
    let r = replay(&tr, &cfg, &mut |_, _| {}).unwrap().report;
    assert_eq!(r.warmed.demand_fetches, 1, "{:?}", r.warmed);
    assert_eq!(r.warmed.warm_fetches, 0, "{:?}", r.warmed);
    assert_eq!(r.warmed.hits, tr.len() as u64 - 1);
    assert_eq!(r.baseline.api_calls, 1);
    let ra = r.refresh_ahead.expect("unlimited capacity");
    assert_eq!(ra.cost_ratio, 1.0, "refresh-ahead reloads nothing");
    assert_eq!(
        r.ttl_by_session.as_deref(),
        Some("pre=60,regular=60,after=60,closed=until_open")
    );
    let flat = replay(&tr, &ReplayConfig::default(), &mut |_, _| {})
        .unwrap()
        .report;
    assert_eq!(
        flat.baseline.api_calls,
        tr.len() as u64,
        "every 10 min misses at 60 s"
    );
}

/// Warming on, twenty keys read every five minutes from Friday's close to
/// Monday 04:30: under `closed=until_open` the only calls before the open
/// are the first fetch of each key (no refresh or popular warm in the
/// closed spell lands an entry that would expire at the same open).
#[test]
fn until_open_spends_no_warming_call_while_closed() {
    let (friday_s, open_s) = (1_772_847_000.0, 1_773_043_200.0);
    let mut lines = Vec::new();
    let mut t = friday_s;
    while t < open_s + 1800.0 {
        for k in 0..20 {
            lines.push((t + f64::from(k), format!("K{k}"), "u1".to_string()));
        }
        t += 300.0;
    }
    let tr = owned_trace(&lines);
    let mut cfg = ReplayConfig {
        hourly_series: true,
        ..ReplayConfig::default()
    };
    cfg.engine.ttl_by_session =
        Some(prewarm_core::ttl::SessionTtls::parse_spec("closed=until_open", 60.0).unwrap());
    let run = replay(&tr, &cfg, &mut |_, _| {}).unwrap();
    let closed: u64 = run.engine.stats().series()[0]
        .buckets()
        .filter(|(start_s, _)| *start_s < open_s)
        .map(|(_, c)| c.api_calls())
        .sum();
    assert_eq!(closed, 20, "one fetch per key before the open");
    assert!(
        run.report.warmed.api_calls > 20,
        "after the open, 60 s again"
    );
}
