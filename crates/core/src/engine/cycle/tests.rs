use super::*;
use crate::cache::FetchOrigin;
use crate::engine::{EngineConfig, Lookup};
use crate::strategy::StrategySet;
use crate::tracker::AccessContext;

/// An engine whose own strategies are off, so only cycles warm.
fn engine(rate_per_min: f64) -> Engine {
    let mut cfg = EngineConfig {
        ttl_s: 60.0,
        ..EngineConfig::default()
    };
    cfg.warming.rate_limit_per_min = rate_per_min;
    cfg.warming.strategies = StrategySet::parse_list("none").unwrap();
    cfg.tracker.profile_min_accesses = 0.0;
    Engine::new(cfg).unwrap()
}

/// A client access at `now_s`, with a zero-latency demand fetch on a miss.
fn access(e: &mut Engine, now_s: f64, key: &str, client: Option<&str>) {
    let id = e.intern(key);
    let ctx = AccessContext {
        client,
        groups: &[],
    };
    if let Lookup::Miss { .. } = e.on_access(now_s, id, &ctx) {
        e.on_fetched(now_s, id, FetchOrigin::Demand, true);
    }
}

fn names(e: &Engine, plan: &CyclePlan) -> Vec<String> {
    plan.orders
        .iter()
        .map(|o| e.keys().name(o.key).to_string())
        .collect()
}

fn skipped(e: &Engine, plan: &CyclePlan, reason: SkipReason) -> Vec<String> {
    plan.skipped
        .iter()
        .filter(|(_, r)| *r == reason)
        .map(|(k, _)| e.keys().name(*k).to_string())
        .collect()
}

#[test]
fn warm_popular_fetches_stale_popular_keys_and_skips_fresh_ones() {
    let mut e = engine(100.0);
    for i in 0..5 {
        access(&mut e, f64::from(i), "AAPL", None);
        access(&mut e, f64::from(i), "MSFT", None);
    }
    access(&mut e, 100.0, "MSFT", None); // fresh again at 100
    let plan = e.warm_popular(120.0, 10);
    assert_eq!(plan.strategy, StrategyId::Popular);
    assert_eq!(names(&e, &plan), ["AAPL"]);
    assert_eq!(skipped(&e, &plan, SkipReason::Fresh), ["MSFT"]);
    let t = e.stats().total;
    assert_eq!(t.warm_fetches(), 1, "the order is charged when issued");
    // The order ends like any other: the entry is a warm one, and a hit
    // on it is credited to popular.
    let aapl = plan.orders[0].key;
    e.on_fetched(120.5, aapl, FetchOrigin::Warm(StrategyId::Popular), true);
    access(&mut e, 130.0, "AAPL", None);
    assert_eq!(e.stats().total.warm_used(), 1);
}

#[test]
fn a_cycle_spends_the_engine_budget_and_skips_the_rest_for_want_of_it() {
    let mut e = engine(2.0); // a burst of 2 tokens
    for (i, k) in ["A", "B", "C", "D"].into_iter().enumerate() {
        for _ in 0..=i {
            access(&mut e, 0.0, k, None);
        }
    }
    let plan = e.warm_popular(100.0, 10);
    assert_eq!(names(&e, &plan), ["D", "C"], "best first");
    assert_eq!(skipped(&e, &plan, SkipReason::NoBudget), ["B", "A"]);
    assert!(e.budget_tokens(100.0) < 1.0, "the planner has none left");
    // Half a minute later one token is back.
    let plan = e.warm_popular(130.0, 10);
    assert_eq!(plan.orders.len(), 1);
}

#[test]
fn a_key_in_flight_is_not_fetched_twice() {
    let mut e = engine(100.0);
    access(&mut e, 0.0, "AAPL", None);
    let first = e.warm_popular(100.0, 10);
    assert_eq!(first.orders.len(), 1);
    let second = e.warm_popular(100.5, 10);
    assert!(second.orders.is_empty());
    assert_eq!(skipped(&e, &second, SkipReason::InFlight), ["AAPL"]);
    // A failed fetch ends the flight: the next cycle tries again.
    e.on_fetched(
        101.0,
        first.orders[0].key,
        FetchOrigin::Warm(StrategyId::Popular),
        false,
    );
    assert_eq!(e.warm_popular(102.0, 10).orders.len(), 1);
}

#[test]
fn warm_predictive_fetches_what_follows_the_current_keys() {
    let mut e = engine(100.0);
    // One client opens NVDA then AMD, ten times, 5 minutes apart.
    for i in 0..10 {
        let t = f64::from(i) * 300.0;
        access(&mut e, t, "NVDA", Some("c1"));
        access(&mut e, t + 2.0, "AMD", Some("c1"));
    }
    let plan = e.warm_predictive(4000.0, &["NVDA"]);
    assert_eq!(plan.strategy, StrategyId::Predictive);
    assert_eq!(names(&e, &plan), ["AMD"]);
    assert!(e.warm_predictive(4000.0, &["UNSEEN"]).orders.is_empty());
}

#[test]
fn warm_sector_fetches_the_groups_leading_members_only() {
    let mut e = engine(100.0);
    e.set_groups("XOM", &["energy"]);
    e.set_groups("CVX", &["energy"]);
    e.set_groups("AAPL", &["tech"]);
    for t in 0..3 {
        for k in ["XOM", "CVX", "AAPL"] {
            access(&mut e, f64::from(t), k, None);
        }
    }
    let plan = e.warm_sector(200.0, "energy");
    let mut got = names(&e, &plan);
    got.sort();
    assert_eq!(got, ["CVX", "XOM"]);
    assert!(plan.orders.iter().all(|o| o.strategy == StrategyId::Sector));
    assert!(e.warm_sector(200.0, "no-such-group").orders.is_empty());
}

#[test]
fn warm_by_time_pattern_fetches_keys_expected_within_the_look_ahead() {
    let mut e = engine(100.0);
    // SPY at 09:35 New York on five trading days (2026-06-01..05).
    let day0 = 1_780_320_900.0; // 2026-06-01 13:35 UTC = 09:35 EDT
    for d in 0..5 {
        access(&mut e, day0 + f64::from(d) * 86_400.0, "SPY", None);
    }
    let monday_0925 = day0 + 7.0 * 86_400.0 - 600.0;
    let plan = e.warm_by_time_pattern(monday_0925, 1800.0);
    assert_eq!(plan.strategy, StrategyId::Time);
    assert_eq!(names(&e, &plan), ["SPY"]);
    // Nothing is expected in the evening.
    let evening = monday_0925 + 10.0 * 3600.0;
    assert!(e.warm_by_time_pattern(evening, 1800.0).orders.is_empty());
}

#[test]
fn warm_trending_fetches_a_bursting_key_and_what_follows_it() {
    let mut e = engine(100.0);
    let t0 = 1_780_000_000.0;
    // A day of history: QUIET once an hour, STEADY every 30 s.
    let mut now = t0;
    while now < t0 + 86_400.0 {
        if (now - t0) % 3600.0 == 0.0 {
            access(&mut e, now, "QUIET", None);
        }
        access(&mut e, now, "STEADY", None);
        now += 30.0;
    }
    // Both entries have expired by now, and nothing trends yet.
    now += 120.0;
    assert!(e.warm_trending(now, 600.0).orders.is_empty());
    // QUIET bursts: every 10 s for three minutes, then a short pause.
    for _ in 0..18 {
        access(&mut e, now, "QUIET", None);
        now += 10.0;
    }
    now += 61.0;
    let plan = e.warm_trending(now, 600.0);
    assert_eq!(plan.strategy, StrategyId::Trending);
    let trending: Vec<_> = e.tracker().trending(now, 600.0, 10);
    assert_eq!(trending.len(), 1, "{trending:?}");
    // The burst first, then the keys that follow it (STEADY came after
    // each of QUIET's hourly accesses).
    assert_eq!(names(&e, &plan), ["QUIET", "STEADY"]);
}

#[test]
fn a_cycle_the_cost_cap_stops_says_cost_cap_not_no_budget() {
    // Cap 1.0 with a burst of 2 calls: 4 demand calls leave room for 2
    // warming calls; the bucket (100 tokens) is far from empty.
    let mut cfg = EngineConfig {
        ttl_s: 60.0,
        ..EngineConfig::default()
    };
    cfg.warming.rate_limit_per_min = 100.0;
    cfg.warming.burst = Some(2.0);
    cfg.warming.max_cost_ratio = 1.0;
    cfg.warming.strategies = StrategySet::parse_list("none").unwrap();
    let mut e = Engine::new(cfg).unwrap();
    for (i, k) in ["A", "B", "C", "D"].into_iter().enumerate() {
        for _ in 0..=i {
            access(&mut e, 0.0, k, None);
        }
    }
    let plan = e.warm_popular(100.0, 10);
    assert_eq!(names(&e, &plan), ["D", "C"], "the 2 calls of room");
    for o in &plan.orders {
        e.on_fetched(100.0, o.key, FetchOrigin::Warm(StrategyId::Popular), true);
    }
    // A minute on, the bucket is full again but no demand earned room.
    assert!(e.budget_tokens(200.0) >= 2.0);
    let plan = e.warm_popular(200.0, 10);
    assert!(plan.orders.is_empty(), "{plan:?}");
    assert_eq!(
        skipped(&e, &plan, SkipReason::CostCap),
        ["D", "C", "B", "A"]
    );
}
