use super::*;
use crate::cache::{FetchOrigin, KeyId};
use crate::engine::{CycleRequest, EngineConfig};
use crate::strategy::{StrategyId, StrategySet};
use crate::tracker::AccessContext;
use proptest::prelude::*;

/// A Monday 10:00 New York (regular session), Unix seconds.
const T0: f64 = 1_700_492_400.0;

fn config(strategies: &str, rate: f64, batch: usize, cap: f64) -> EngineConfig {
    let mut cfg = EngineConfig {
        ttl_s: 60.0,
        warm_batch_max_keys: batch,
        ..EngineConfig::default()
    };
    cfg.warming.rate_limit_per_min = rate;
    cfg.warming.strategies = StrategySet::parse_list(strategies).unwrap();
    cfg.warming.max_cost_ratio = cap;
    cfg
}

/// What a driver saw of the orders: each paid order starts a call, each
/// riding one joins the call before it.
#[derive(Debug, Default)]
struct Calls {
    /// Keys per call, and the instant of the call.
    sizes: Vec<(f64, usize)>,
}

impl Calls {
    fn take(&mut self, o: &WarmOrder) {
        if o.rides_along {
            let last = self
                .sizes
                .last_mut()
                .expect("a riding order follows a paid one");
            assert_eq!(last.0, o.issued_at_s, "rides only at its call's instant");
            last.1 += 1;
        } else {
            self.sizes.push((o.issued_at_s, 1));
        }
    }
    fn keys(&self) -> usize {
        self.sizes.iter().map(|s| s.1).sum()
    }
}

/// Replay-style: timers, the access, a zero-latency demand fetch on a
/// miss, then every warming order fetched at once.
fn access(e: &mut Engine, calls: &mut Calls, now_s: f64, key: KeyId) {
    while let Some(t) = e.next_timeout() {
        if t > now_s {
            break;
        }
        e.handle_timeout(t);
        drain(e, calls, t);
    }
    if let crate::engine::Lookup::Miss { .. } = e.on_access(now_s, key, &AccessContext::default()) {
        e.on_fetched(now_s, key, FetchOrigin::Demand, true);
    }
    drain(e, calls, now_s);
}

fn drain(e: &mut Engine, calls: &mut Calls, now_s: f64) {
    while let Some(o) = e.poll_warm(now_s) {
        calls.take(&o);
        e.on_fetched(now_s, o.key, FetchOrigin::Warm(o.strategy), true);
    }
}

/// 50 keys read together every 55 s for 10 rounds at 1 token a minute:
/// their refreshes come due together, so a call may carry several.
fn fifty_keys(batch: usize) -> (Engine, Calls) {
    let mut e = Engine::new(config("refresh", 1.0, batch, 1e6)).unwrap();
    let mut calls = Calls::default();
    let keys: Vec<KeyId> = (0..50).map(|i| e.intern(&format!("K{i}"))).collect();
    for round in 0..10 {
        for k in &keys {
            let t = T0 + f64::from(round) * 55.0;
            access(&mut e, &mut calls, t, *k);
        }
    }
    (e, calls)
}

#[test]
fn a_token_buys_one_call_of_up_to_the_batch_size_in_keys() {
    let (one, one_calls) = fifty_keys(1);
    let (five, five_calls) = fifty_keys(5);
    let minutes = 9.0 * 55.0 / 60.0;
    let t = five.stats().total;
    // The calls are bounded by the rate, as without batches.
    assert!(t.warm_calls() as f64 <= 1.0 + minutes, "{t:?}");
    assert_eq!(t.warm_calls() as usize, five_calls.sizes.len());
    assert_eq!(t.warm_fetches() as usize, five_calls.keys());
    assert!(five_calls.sizes.iter().all(|s| s.1 <= 5), "{five_calls:?}");
    assert!(
        five_calls.sizes.iter().any(|s| s.1 > 1),
        "keys waiting for the token rode along: {five_calls:?}"
    );
    // More keys warmed for no more calls, and the API calls count calls.
    assert!(t.warm_fetches() > one.stats().total.warm_fetches(), "{t:?}");
    assert_eq!(t.api_calls(), t.demand_fetches + t.warm_calls());
    assert!(one_calls.sizes.iter().all(|s| s.1 == 1));
    assert_eq!(one.stats().total.warm_batched(), 0);
}

#[test]
fn no_key_rides_along_once_the_instant_moved_on() {
    let (mut e, _) = fifty_keys(5);
    // Whatever the last call left open, a later instant opens no seat.
    let later = T0 + 10_000.0;
    assert!(e.poll_ride_along(later).is_none());
    assert!(!e.take_seat(later));
}

#[test]
fn a_cycle_pays_one_token_per_call_of_the_batch_size() {
    let mut e = Engine::new(config("popular", 3.0, 5, 1e6)).unwrap();
    let mut calls = Calls::default();
    let keys: Vec<KeyId> = (0..12).map(|i| e.intern(&format!("K{i}"))).collect();
    for (i, k) in keys.iter().enumerate() {
        access(&mut e, &mut calls, T0 + i as f64 * 0.1, *k);
    }
    let now_s = T0 + 120.0; // every entry expired; the bucket refilled
    let tokens = e.budget_tokens(now_s);
    assert!(tokens >= 3.0, "{tokens}");
    let plan = e.plan_cycle(now_s, &CycleRequest::Popular { limit: Some(12) });
    assert_eq!(plan.orders.len(), 12, "{plan:?}");
    for o in &plan.orders {
        calls.take(o);
    }
    let paid = plan.orders.iter().filter(|o| !o.rides_along).count();
    assert_eq!(paid, 3, "12 keys in calls of 5: 3 calls");
    assert!((e.budget_tokens(now_s) - (tokens - 3.0)).abs() < 1e-9);
    // The cycle's last call is closed: nothing rides along in it later.
    assert!(e.poll_ride_along(now_s).is_none());
    let strategy = e.stats().total.strategy(StrategyId::Popular);
    assert_eq!((strategy.warm_fetches, strategy.warm_batched), (12, 9));
}

#[test]
fn batch_size_zero_is_a_config_error_naming_the_field() {
    let err = Engine::new(config("refresh", 1.0, 0, 1.25)).unwrap_err();
    assert_eq!(err.field, "warm_batch_max_keys");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Random traffic on a few keys with batched warming: the calls
    /// (demand and warming calls, riding keys not counted) stay within
    /// `cap · shadow + b`; every call has at most the batch size in keys;
    /// the figures count one call per paid order.
    #[test]
    fn batched_warming_never_takes_calls_past_the_cap_plus_one_burst(
        steps in proptest::collection::vec((0usize..8, 0.0f64..90.0), 2..200),
        batch in 1usize..8,
        cap in prop_oneof![Just(1.0f64), 1.0f64..1.5],
        burst in 1.0f64..4.0,
    ) {
        let mut cfg = config("popular,time,refresh,trending", 30.0, batch, cap);
        cfg.warming.burst = Some(burst);
        let mut e = Engine::new(cfg).unwrap();
        let mut calls = Calls::default();
        let mut shadow: Vec<Option<f64>> = vec![None; 8];
        let mut base = 0u64;
        let mut t = T0;
        for &(k, gap_s) in &steps {
            t += gap_s;
            if !shadow[k].is_some_and(|f| f <= t && t < f + 60.0) {
                shadow[k] = Some(t);
                base += 1;
            }
            let key = e.intern(&format!("K{k}"));
            access(&mut e, &mut calls, t, key);
        }
        let total = e.stats().total;
        prop_assert!(total.api_calls() as f64 <= cap * base as f64 + burst,
            "calls {} base {base} cap {cap} burst {burst}", total.api_calls());
        prop_assert_eq!(total.warm_calls() as usize, calls.sizes.len());
        prop_assert_eq!(total.warm_fetches() as usize, calls.keys());
        prop_assert!(calls.sizes.iter().all(|s| s.1 <= batch), "{:?}", calls.sizes);
    }
}
