use super::*;
use crate::cache::FetchOrigin;
use crate::engine::{EngineConfig, Lookup};
use crate::strategy::StrategySet;
use proptest::prelude::*;

/// A Monday 10:00 New York (regular session), Unix seconds.
const T0: f64 = 1_700_492_400.0;

/// An engine at cap `cap` (1e6: out of the way of the mechanics).
fn config(cap: f64, burst: f64, startup_burst: Option<f64>) -> EngineConfig {
    let mut cfg = EngineConfig {
        ttl_s: 60.0,
        ..EngineConfig::default()
    };
    cfg.warming.strategies = StrategySet::parse_list("popular,time,refresh").unwrap();
    cfg.warming.max_cost_ratio = cap;
    cfg.warming.burst = Some(burst);
    cfg.warming.startup_burst = startup_burst;
    cfg
}

/// Replay-style (`crate::engine::tests::access`); whether it hit.
fn access(e: &mut Engine, now_s: f64, key: KeyId) -> bool {
    matches!(
        crate::engine::tests::access(e, now_s, key),
        Lookup::Hit { .. }
    )
}

/// An engine that saw `n` keys polled every 20 s for an hour, then
/// stopped: its snapshot at the end.
fn hour_of_polls(cfg: &EngineConfig, n: usize) -> (Vec<String>, Vec<u8>, f64) {
    let mut e = Engine::new(cfg.clone()).unwrap();
    let names: Vec<String> = (0..n).map(|i| format!("K{i}")).collect();
    let mut t = T0;
    for round in 0..180 {
        for name in &names {
            let k = e.intern(name);
            access(&mut e, t, k);
            t += 0.01;
        }
        if round < 179 {
            t += 20.0 - 0.01 * n as f64;
        }
    }
    (names, e.snapshot(t), t)
}

#[test]
fn a_restored_engine_warms_its_hot_keys_before_any_request() {
    let cfg = config(1e6, 100.0, None);
    let (names, saved, stop_s) = hour_of_polls(&cfg, 20);
    let mut e = Engine::new(cfg.clone()).unwrap();
    e.restore(&saved).unwrap();
    assert_eq!(e.handed_over().len(), 20, "every cached key handed over");
    let plan = e.plan_startup(stop_s + 1.0);
    assert_eq!(plan.orders.len(), 20, "{plan:?}");
    assert_eq!(plan.handed_over, 20);
    for o in &plan.orders {
        e.on_fetched(stop_s + 1.1, o.key, FetchOrigin::Warm(o.strategy), true);
    }
    // The first requests after the restart hit.
    let k = e.intern(&names[3]);
    assert!(access(&mut e, stop_s + 2.0, k));
    // A cold engine (nothing restored) plans nothing.
    let mut cold = Engine::new(cfg).unwrap();
    assert_eq!(cold.plan_startup(stop_s).orders.len(), 0);
}

#[test]
fn the_start_up_burst_bounds_the_cycle_and_hot_keys_come_first() {
    let cfg = config(1e6, 100.0, Some(5.0));
    let (names, saved, stop_s) = hour_of_polls(&cfg, 20);
    let mut e = Engine::new(cfg).unwrap();
    e.restore(&saved).unwrap();
    // Only K0..K4 were cached at the stop.
    e.handover
        .retain(|h| names[..5].iter().any(|n| **n == *h.key));
    let plan = e.plan_startup(stop_s + 1.0);
    let mut got: Vec<&str> = plan.orders.iter().map(|o| e.keys().name(o.key)).collect();
    got.sort();
    assert_eq!(got, vec!["K0", "K1", "K2", "K3", "K4"], "{plan:?}");
    assert_eq!(plan.no_budget, 15);
}

#[test]
fn a_key_the_store_kept_fresh_is_not_fetched_again() {
    let cfg = config(1e6, 100.0, None);
    let (names, saved, stop_s) = hour_of_polls(&cfg, 4);
    let mut e = Engine::new(cfg).unwrap();
    e.restore(&saved).unwrap();
    let kept = e.intern(&names[0]);
    e.on_kept_entry(kept, stop_s - 5.0);
    let plan = e.plan_startup(stop_s + 1.0);
    assert!(plan.orders.iter().all(|o| o.key != kept), "{plan:?}");
    assert_eq!((plan.fresh, plan.orders.len()), (1, 3));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random traffic on a few keys with restarts (snapshot, restore into
    /// a new engine, start-up cycle with a large burst), possibly in quick
    /// succession, so that a loan is not repaid before the next: the calls of both processes stay within
    /// `cap · shadow + b + g`, the burst allowance with the start-up loan
    /// (`crate::cost`), the shadow being a cache without warming that
    /// empties at the restart too.
    #[test]
    fn a_start_up_burst_never_takes_calls_past_the_cap_plus_the_burst_allowance(
        steps in proptest::collection::vec((0usize..6, 0.0f64..90.0), 2..160),
        restarts in proptest::collection::vec(any::<prop::sample::Index>(), 1..4),
        cap in prop_oneof![Just(1.0f64), 1.0f64..1.5],
        burst in 1.0f64..4.0,
        startup_burst in 0.0f64..50.0,
    ) {
        let cfg = config(cap, burst, Some(startup_burst));
        let mut e = Engine::new(cfg.clone()).unwrap();
        let cuts: Vec<usize> = restarts.iter().map(|r| r.index(steps.len())).collect();
        let mut shadow: Vec<Option<f64>> = vec![None; 6];
        let (mut base, mut calls) = (0u64, 0u64);
        let mut t = T0;
        for (i, &(k, gap_s)) in steps.iter().enumerate() {
            t += gap_s;
            if cuts.contains(&i) {
                calls += e.stats().total.api_calls();
                let saved = e.snapshot(t);
                e = Engine::new(cfg.clone()).unwrap();
                e.restore(&saved).unwrap();
                shadow = vec![None; 6];
                for o in e.plan_startup(t).orders {
                    e.on_fetched(t, o.key, FetchOrigin::Warm(o.strategy), true);
                }
            }
            if !shadow[k].is_some_and(|f| f <= t && t < f + 60.0) {
                shadow[k] = Some(t);
                base += 1;
            }
            let key = e.intern(&format!("K{k}"));
            access(&mut e, t, key);
        }
        calls += e.stats().total.api_calls();
        prop_assert!(calls as f64 <= cap * base as f64 + burst + startup_burst,
            "calls {calls} base {base} cap {cap} burst {burst} startup {startup_burst}");
    }
}
