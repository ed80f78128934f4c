use super::*;
use crate::strategy::StrategySet;

/// An engine whose cost cap is out of the way, so that the mechanics can
/// be tested on tiny inputs.
fn engine(strategies: &str, rate: f64) -> Engine {
    let mut cfg = EngineConfig {
        ttl_s: 60.0,
        ..EngineConfig::default()
    };
    cfg.warming.rate_limit_per_min = rate;
    cfg.warming.strategies = StrategySet::parse_list(strategies).unwrap();
    cfg.warming.max_cost_ratio = 1e6;
    Engine::new(cfg).unwrap()
}

/// Drives `e` like the replay driver: timers, then the access, then a
/// zero-latency demand fetch on a miss, then warming.
pub(super) fn access(e: &mut Engine, now_s: f64, key: KeyId) -> Lookup {
    while let Some(t) = e.next_timeout() {
        if t > now_s {
            break;
        }
        e.handle_timeout(t);
        drain(e, t);
    }
    let l = e.on_access(now_s, key, &AccessContext::default());
    if let Lookup::Miss { .. } = l {
        e.on_fetched(now_s, key, FetchOrigin::Demand, true);
    }
    drain(e, now_s);
    l
}

pub(super) fn drain(e: &mut Engine, now_s: f64) {
    while let Some(o) = e.poll_warm(now_s) {
        e.on_fetched(now_s, o.key, FetchOrigin::Warm(o.strategy), true);
    }
}

#[test]
fn warming_off_counts_hits_and_demand_fetches() {
    let mut e = engine("none", 100.0);
    let k = e.intern("AAPL");
    assert!(matches!(
        access(&mut e, 0.0, k),
        Lookup::Miss { stale: false }
    ));
    assert!(matches!(access(&mut e, 59.9, k), Lookup::Hit { .. }));
    assert!(matches!(
        access(&mut e, 60.0, k),
        Lookup::Miss { stale: true }
    ));
    let t = e.stats().total;
    assert_eq!(
        (t.requests, t.hits, t.demand_fetches, t.warm_fetches()),
        (3, 1, 2, 0)
    );
}

#[test]
fn refresh_ahead_fires_on_a_late_hit_just_before_expiry_and_is_credited() {
    let mut e = engine("refresh", 100.0);
    let k = e.intern("AAPL");
    access(&mut e, 0.0, k);
    access(&mut e, 30.0, k); // age 30 < 48: no refresh
    assert_eq!(e.stats().total.warm_fetches(), 0);
    access(&mut e, 50.0, k); // age 50 >= 0.8 * 60: refresh decided
    // Fetched at the last moment: 59 s (lead 1 s), fresh until 119.
    let l = access(&mut e, 100.0, k);
    assert_eq!(
        l,
        Lookup::Hit {
            age_s: 41.0,
            origin: FetchOrigin::Warm(StrategyId::Refresh)
        }
    );
    let r = *e.stats().total.strategy(StrategyId::Refresh);
    assert_eq!((r.warm_fetches, r.warm_used, r.hits), (1, 1, 1));
}

#[test]
fn no_budget_means_no_warming_and_demand_is_never_throttled() {
    let mut e = engine("refresh", 0.0);
    let k = e.intern("AAPL");
    for i in 0..10 {
        access(&mut e, f64::from(i) * 50.0, k);
    }
    let t = e.stats().total;
    assert_eq!(t.warm_fetches(), 0);
    assert_eq!(t.demand_fetches + t.hits, 10);
}

#[test]
fn budget_caps_warming_at_the_rate() {
    // 1 token/min, burst 1: at most 1 + minutes warming fetches.
    let mut e = engine("refresh", 1.0);
    let keys: Vec<KeyId> = (0..50).map(|i| e.intern(&format!("K{i}"))).collect();
    for round in 0..10 {
        for (i, k) in keys.iter().enumerate() {
            access(&mut e, f64::from(round) * 55.0 + i as f64 * 0.01, *k);
        }
    }
    let minutes = (9.0 * 55.0 + 0.5) / 60.0;
    assert!(e.stats().total.warm_fetches() as f64 <= 1.0 + minutes);
    assert!(e.stats().total.warm_fetches() > 0);
}

#[test]
fn wasted_warm_fetch_is_not_used() {
    let mut e = engine("refresh", 100.0);
    let k = e.intern("AAPL");
    access(&mut e, 0.0, k);
    access(&mut e, 55.0, k); // refresh at 55, fresh until 115
    access(&mut e, 200.0, k); // stale: the refresh was wasted
    let r = *e.stats().total.strategy(StrategyId::Refresh);
    assert_eq!((r.warm_fetches, r.warm_used), (1, 0));
    assert_eq!(e.stats().total.api_calls(), 3);
}

#[test]
fn invalid_config_names_the_field() {
    let err = Engine::new(EngineConfig {
        ttl_s: 0.0,
        ..EngineConfig::default()
    })
    .unwrap_err();
    assert_eq!(err.field, "ttl_s");
    let mut cfg = EngineConfig::default();
    cfg.warming.refresh_fraction = 1.5;
    assert_eq!(
        Engine::new(cfg).unwrap_err().field,
        "warming.refresh_fraction"
    );
}

#[test]
fn popular_keeps_a_hot_key_fresh() {
    let mut e = engine("popular", 100.0);
    let k = e.intern("AAPL");
    for i in 0..1200 {
        access(&mut e, 1_000_000.0 + f64::from(i) * 0.5, k);
    }
    let p = *e.stats().total.strategy(StrategyId::Popular);
    assert!(p.warm_fetches >= 8, "one refresh per TTL: {p:?}");
    assert!(p.warm_used >= p.warm_fetches - 1, "{p:?}");
    // Kept fresh: after the first demand fetch, no miss at all.
    assert_eq!(e.stats().total.demand_fetches, 1);
}

#[test]
fn warming_stops_at_the_cost_cap_plus_one_burst() {
    let mut cfg = EngineConfig {
        ttl_s: 60.0,
        ..EngineConfig::default()
    };
    cfg.warming.rate_limit_per_min = 100.0;
    cfg.warming.strategies = StrategySet::parse_list("popular").unwrap();
    cfg.warming.burst = Some(2.0);
    cfg.warming.max_cost_ratio = 1.25;
    let mut e = Engine::new(cfg).unwrap();
    // Ten keys polled every 150 s: keeping them fresh is worth little,
    // and a cache without warming makes one call per poll.
    let keys: Vec<KeyId> = (0..10).map(|i| e.intern(&format!("K{i}"))).collect();
    let polls = 200;
    for p in 0..polls {
        for (i, k) in keys.iter().enumerate() {
            access(&mut e, f64::from(p) * 150.0 + i as f64, *k);
        }
    }
    let t = e.stats().total;
    let shadow_calls = f64::from(polls) * 10.0;
    let calls = (t.demand_fetches + t.warm_fetches()) as f64;
    assert!(t.warm_fetches() > 0, "the headroom was used: {t:?}");
    assert!(
        calls <= 1.25 * shadow_calls + 2.0,
        "{calls} > 1.25 x {shadow_calls}"
    );
    assert!(
        (e.cost_ratio() - calls / shadow_calls).abs() < 0.05,
        "{}",
        e.cost_ratio()
    );
}

#[test]
fn a_hot_keys_late_hits_propose_one_refresh_not_one_each() {
    let mut e = engine("refresh", 100.0);
    let k = e.intern("AAPL");
    access(&mut e, 0.0, k);
    for i in 0..10 {
        access(&mut e, 50.0 + f64::from(i) * 0.5, k); // ten hits at age >= 48
    }
    assert_eq!(
        e.planner_counters().proposed,
        1,
        "{:?}",
        e.planner_counters()
    );
    // The one candidate does its job: fetched just before expiry.
    access(&mut e, 65.0, k);
    assert_eq!(e.stats().total.warm_used(), 1);
}

mod snapshot_round_trip {
    use super::*;
    use proptest::prelude::*;

    /// A few keys, accessed at non-decreasing times a fraction of a TTL to
    /// a few TTLs apart, some with a client, so that the tracker, the
    /// strategies, the model and the cost cap all have something to keep.
    fn accesses() -> impl Strategy<Value = Vec<(usize, f64, bool)>> {
        proptest::collection::vec((0usize..5, 0.0f64..150.0, any::<bool>()), 1..200)
    }

    fn run(e: &mut Engine, names: &[KeyId], steps: &[(usize, f64, bool)]) -> f64 {
        let mut now_s = 1_700_000_000.0;
        for &(k, gap_s, with_client) in steps {
            now_s += gap_s;
            while let Some(t) = e.next_timeout() {
                if t > now_s {
                    break;
                }
                e.handle_timeout(t);
                drain(e, t);
            }
            let ctx = AccessContext {
                client: with_client.then_some("client-a"),
                ..AccessContext::default()
            };
            if let Lookup::Miss { .. } = e.on_access(now_s, names[k], &ctx) {
                e.on_fetched(now_s, names[k], FetchOrigin::Demand, true);
            }
            drain(e, now_s);
        }
        now_s
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Restoring a snapshot into a fresh engine of the same config and
        /// snapshotting that at the same instant gives the same bytes:
        /// nothing learned is lost or altered by the round trip.
        #[test]
        fn a_restored_snapshot_saves_back_to_the_same_bytes(
            steps in accesses(),
            later_s in 0.0f64..600.0,
        ) {
            let mut e = engine("all", 30.0);
            let names: Vec<KeyId> = (0..5).map(|i| e.intern(&format!("K{i}"))).collect();
            let now_s = run(&mut e, &names, &steps) + later_s;
            let saved = e.snapshot(now_s);
            let mut fresh = Engine::new(e.config().clone()).unwrap();
            fresh.restore(&saved).unwrap();
            // The run left something to keep: a snapshot of an engine that
            // learned nothing differs.
            let blank = Engine::new(e.config().clone()).unwrap().snapshot(now_s);
            prop_assert_ne!(&blank, &saved);
            prop_assert_eq!(fresh.snapshot(now_s), saved);
        }
    }
}

/// Groups reported with accesses (the daemon's `/v1/access` items) are
/// the key's groups for the sector strategy, as a universe file's are.
#[test]
fn groups_given_with_accesses_make_a_sector_cycle_name_the_co_members() {
    let mut e = engine("none", 100.0);
    let (tech, energy) = (["Tech", "watchlist-1"], ["Energy"]);
    for (name, groups) in [
        ("AAPL", &tech[..]),
        ("MSFT", &tech[..]),
        ("XOM", &energy[..]),
    ] {
        let key = e.intern(name);
        let ctx = AccessContext {
            client: None,
            groups,
        };
        e.on_access(10.0, key, &ctx);
    }
    let named = |plan: CyclePlan, e: &Engine| {
        let mut keys: Vec<String> = plan
            .orders
            .iter()
            .map(|o| e.keys().name(o.key).to_string())
            .collect();
        keys.sort();
        keys
    };
    let plan = e.warm_sector(20.0, "Tech");
    assert_eq!(named(plan, &e), ["AAPL", "MSFT"]);
    let plan = e.warm_sector(20.0, "Energy");
    assert_eq!(named(plan, &e), ["XOM"]);
    let plan = e.warm_sector(20.0, "watchlist-1");
    assert!(named(plan, &e).is_empty(), "AAPL and MSFT are in flight");
    let aapl = e.keys().get("AAPL").unwrap();
    assert_eq!(e.tracker().groups_of(aapl), ["Tech", "watchlist-1"]);
}

#[test]
fn a_purge_leaves_no_key_at_risk_that_holds_warming_back() {
    let mut e = engine("popular", 100.0);
    let keys: Vec<KeyId> = (0..50).map(|i| e.intern(&format!("K{i}"))).collect();
    for k in &keys {
        access(&mut e, 0.0, *k);
    }
    for k in &keys {
        e.on_purged(*k);
    }
    assert_eq!(e.cost_cap().at_risk(), 0, "the shadow was purged too");
    // An eviction, unlike a purge, is the real cache's own loss: at risk.
    let mut evicted = engine("popular", 100.0);
    let k = evicted.intern("A");
    access(&mut evicted, 0.0, k);
    evicted.on_evicted(k);
    assert_eq!(evicted.cost_cap().at_risk(), 1);
    // After the purge, the next accesses miss for both: no lost hit.
    for k in &keys {
        access(&mut e, 1.0, *k);
    }
    assert_eq!(e.cost_cap().at_risk(), 0);
    assert_eq!(e.cost_cap().totals(), (100, 100));
}

#[test]
fn a_no_cache_read_is_a_miss_and_a_call_for_the_shadow_too() {
    let mut e = engine("none", 100.0);
    let k = e.intern("AAPL");
    access(&mut e, 0.0, k);
    // Fresh, but the client asks past the cache.
    let l = e.on_forced_access(10.0, k, &AccessContext::default());
    assert_eq!(l, Lookup::Miss { stale: true });
    e.on_fetched(10.1, k, FetchOrigin::Demand, true);
    let t = e.stats().total;
    assert_eq!((t.requests, t.hits, t.demand_fetches), (2, 0, 2));
    // Regression: the shadow counted no call for it, so each no-cache
    // read raised the cost ratio (and held warming back).
    assert_eq!(e.cost_cap().totals(), (2, 2));
    assert_eq!(
        e.cost_cap().at_risk(),
        0,
        "the demand fetch is the shadow's twin"
    );
    // Five forced reads joining one fetch: one call in both.
    for i in 0..5 {
        let l = e.on_forced_access(20.0 + f64::from(i) * 0.1, k, &AccessContext::default());
        assert!(matches!(l, Lookup::Miss { .. }));
    }
    e.on_fetched(20.6, k, FetchOrigin::Demand, true);
    assert_eq!(e.cost_cap().totals(), (3, 3));
    // An ordinary read afterwards hits, in both.
    assert!(matches!(access(&mut e, 30.0, k), Lookup::Hit { .. }));
    assert_eq!(e.cost_cap().totals(), (3, 3));
}

/// Regression: between a read's miss and its demand fetch's report, the
/// key looked absent, and the daemon's warming paid a second call for
/// it (a flaky count of batch calls upstream).
#[test]
fn a_key_whose_demand_fetch_is_awaited_is_not_warmed_until_it_lands() {
    let run = |awaited: bool| {
        let mut e = engine("popular,refresh,predictive,trending", 1000.0);
        let keys: Vec<KeyId> = (0..25).map(|i| e.intern(&format!("K{i}"))).collect();
        let mut orders = Vec::new();
        for round in 0..40 {
            let now_s = f64::from(round) * 61.0;
            while let Some(t) = e.next_timeout().filter(|t| *t <= now_s) {
                e.handle_timeout(t);
            }
            for k in &keys {
                if let Lookup::Miss { .. } = e.on_access(now_s, *k, &AccessContext::default())
                    && awaited
                {
                    e.on_demand_fetch_awaited(now_s, *k, now_s + 30.0);
                }
            }
            while let Some(o) = e.poll_warm(now_s) {
                orders.push(o.key);
                e.on_fetched(now_s, o.key, FetchOrigin::Warm(o.strategy), true);
            }
            for k in &keys {
                e.on_fetched(now_s + 0.05, *k, FetchOrigin::Demand, true);
            }
        }
        orders.len()
    };
    assert_eq!(run(true), 0, "every key was on its way by demand");
    assert!(
        run(false) > 0,
        "unawaited, the same reads draw warming orders"
    );
}

/// Regression: a read whose demand fetch the daemon's quota refused
/// before any call still counted a call for the cost cap's no-warming
/// shadow, so warming could spend `max_cost_ratio` calls per refusal that
/// a cache without warming never made.
#[test]
fn a_demand_fetch_the_quota_refused_is_no_call_for_the_shadow_either() {
    let mut e = engine("popular", 60.0);
    let k = e.intern("AAPL");
    let l = e.on_access(0.0, k, &AccessContext::default());
    assert!(matches!(l, Lookup::Miss { .. }));
    e.on_demand_fetch_awaited(0.0, k, 3.0);
    assert_eq!(e.cost_cap().held_calls(), 1, "its slack is held meanwhile");
    e.on_fetch_not_sent(0.5, k, FetchOrigin::Demand);
    assert_eq!(e.cost_cap().held_calls(), 0);
    assert_eq!(e.cost_cap().totals(), (0, 0), "no call in either");
    assert_eq!(e.cost_cap().at_risk(), 0);
    // The next read is a miss for both, and its fetch is made: one call
    // each.
    e.on_access(1.0, k, &AccessContext::default());
    e.on_demand_fetch_awaited(1.0, k, 4.0);
    e.on_fetched(1.2, k, FetchOrigin::Demand, true);
    assert_eq!(e.cost_cap().held_calls(), 0);
    assert_eq!(e.cost_cap().totals(), (1, 1));
}

/// Regression: a refusal whose report was applied before its read's
/// access was stamped with the engine's latest time, not its own, so the
/// read held slack until its deadline and its call stayed counted.
#[test]
fn a_refusal_applied_before_its_reads_access_takes_the_call_back() {
    let mut e = engine("popular", 60.0);
    let other = e.intern("MSFT");
    e.on_access(0.0, other, &AccessContext::default());
    e.on_fetched(0.1, other, FetchOrigin::Demand, true);
    let k = e.intern("AAPL");
    e.on_fetch_not_sent(10.001, k, FetchOrigin::Demand);
    e.on_access(10.001, k, &AccessContext::default());
    e.on_demand_fetch_awaited(10.0, k, 40.0);
    assert_eq!(e.cost_cap().held_calls(), 0);
    assert_eq!(e.cost_cap().totals(), (1, 1), "MSFT's call only");
}

mod joined_fetches;
