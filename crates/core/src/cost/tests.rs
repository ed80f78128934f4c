use super::*;
use proptest::prelude::*;

/// A naive TTL cache for the tests: per key, the last fetch time.
#[derive(Default)]
struct Naive(Vec<Option<f64>>);

impl Naive {
    fn get(&mut self, k: usize) -> &mut Option<f64> {
        if self.0.len() <= k {
            self.0.resize(k + 1, None);
        }
        &mut self.0[k]
    }
    fn fresh(&mut self, k: usize, ttl: f64, t: f64) -> bool {
        self.get(k).is_some_and(|f| f <= t && t < f + ttl)
    }
}

/// Drives a real cache that warms greedily whenever the account allows,
/// and returns (engine calls, calls without warming).
fn run(events: &[(u8, u16, bool)], ttl: f64, cap: f64, burst: f64) -> (u64, u64, CostCap) {
    let mut acct = CostCap::new(cap, burst, None);
    let rule = crate::ttl::TtlRule::from(ttl);
    let (mut real, mut shadow) = (Naive::default(), Naive::default());
    let (mut calls, mut base) = (0u64, 0u64);
    let mut t = 0.0;
    for &(key, dt, warm) in events {
        t += f64::from(dt) / 10.0;
        let k = usize::from(key % 4);
        let kid = KeyId(u32::from(key % 4));
        if warm {
            // A warming fetch of another key, if the account allows.
            let w = (k + 1) % 4;
            acct.advance(t);
            if acct.may_warm() && !real.fresh(w, ttl, t) {
                acct.on_call(t);
                calls += 1;
                *real.get(w) = Some(t);
                acct.rejudge(t, KeyId(w as u32), Some(t + ttl));
            }
        }
        if !shadow.fresh(k, ttl, t) {
            *shadow.get(k) = Some(t);
            base += 1;
        }
        let before = *real.get(k);
        acct.on_access(t, kid, &rule, before.map(|f| f + ttl));
        if !real.fresh(k, ttl, t) {
            calls += 1;
            acct.on_call(t);
            *real.get(k) = Some(t);
            acct.rejudge(t, kid, Some(t + ttl));
        }
    }
    (calls, base, acct)
}

/// How a read the engine missed ends in [`run_refusing`].
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Its demand fetch lands.
    Lands,
    /// Its demand fetch is made and fails: nothing is stored.
    Fails,
    /// Its demand fetch is refused before any call, reported after
    /// warming had its chance to spend the slack the miss earned.
    Refused,
    /// Likewise, but the refusal's report is applied before the access.
    RefusedFirst,
    /// The read is answered without any call (stale, 503, the failure
    /// memo): no fetch follows.
    NoCall,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        5 => Just(Outcome::Lands),
        1 => Just(Outcome::Fails),
        2 => Just(Outcome::Refused),
        1 => Just(Outcome::RefusedFirst),
        1 => Just(Outcome::NoCall),
    ]
}

/// Like [`run`], with reads the upstream refuses (`Outcome`). Returns
/// (engine calls, calls of a cache without warming whose reads were
/// refused alike, failed calls of reads that cache would have served).
fn run_refusing(
    events: &[(u8, u16, bool, Outcome)],
    ttl: f64,
    cap: f64,
    burst: f64,
) -> (u64, u64, u64) {
    let mut acct = CostCap::new(cap, burst, None);
    let rule = crate::ttl::TtlRule::from(ttl);
    let (mut real, mut shadow) = (Naive::default(), Naive::default());
    let (mut calls, mut base, mut failed_lost_hits) = (0u64, 0u64, 0u64);
    let mut t = 0.0;
    let warm = |acct: &mut CostCap, real: &mut Naive, calls: &mut u64, w: usize, t: f64| {
        acct.advance(t);
        if acct.may_warm() && !real.fresh(w, ttl, t) {
            acct.on_call(t);
            *calls += 1;
            *real.get(w) = Some(t);
            acct.on_fetch_made(KeyId(w as u32));
            acct.rejudge(t, KeyId(w as u32), Some(t + ttl));
        }
    };
    for &(key, dt, warm_first, outcome) in events {
        t += f64::from(dt) / 10.0;
        let k = usize::from(key % 4);
        let kid = KeyId(k as u32);
        if warm_first {
            warm(&mut acct, &mut real, &mut calls, (k + 1) % 4, t);
        }
        let real_missed = !real.fresh(k, ttl, t);
        let before = real.get(k).map(|f| f + ttl);
        if real_missed && matches!(outcome, Outcome::RefusedFirst) {
            acct.on_fetch_refused(t, kid, before);
        }
        let shadow_missed = !shadow.fresh(k, ttl, t);
        if shadow_missed {
            *shadow.get(k) = Some(t);
            base += 1;
        }
        acct.on_access(t, kid, &rule, before);
        if !real_missed {
            continue;
        }
        let refused = match outcome {
            Outcome::NoCall => {
                acct.on_read_refused(t, kid, before);
                true
            }
            _ => {
                acct.hold_twin_call(t, t, kid, t + 3.0);
                // Warming runs while the demand fetch waits in the queue.
                warm(&mut acct, &mut real, &mut calls, (k + 2) % 4, t);
                match outcome {
                    Outcome::Refused => acct.on_fetch_refused(t, kid, before),
                    Outcome::Lands | Outcome::Fails => {
                        calls += 1;
                        acct.on_call(t);
                        acct.on_fetch_made(kid);
                        if matches!(outcome, Outcome::Lands) {
                            *real.get(k) = Some(t);
                            acct.on_demand_landed(t, kid, Some(t + ttl));
                        } else {
                            // A lost hit's retry is a call no reserve
                            // covered (module `cost`, "Failed fetches").
                            failed_lost_hits += u64::from(!shadow_missed);
                            acct.on_fetch_failed(t, kid, before);
                            if shadow_missed {
                                // Stored nothing without warming either.
                                *shadow.get(k) = None;
                            }
                        }
                    }
                    _ => {}
                }
                matches!(outcome, Outcome::Refused | Outcome::RefusedFirst)
            }
        };
        if refused && shadow_missed {
            *shadow.get(k) = None;
            base -= 1;
        }
    }
    assert_eq!(acct.totals(), (calls, base));
    assert_eq!(acct.held_calls(), 0, "every hold ended with its report");
    (calls, base, failed_lost_hits)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn warming_stays_under_the_cap_of_the_calls_made_when_the_quota_refuses_demand(
        events in prop::collection::vec(
            (any::<u8>(), 0u16..2000, any::<bool>(), outcome()), 1..600),
        ttl in 1.0f64..200.0,
        cap in prop_oneof![Just(1.0f64), 1.0f64..1.5],
        burst in 1.0f64..4.0,
    ) {
        let (calls, base, failed) = run_refusing(&events, ttl, cap, burst);
        prop_assert!(calls as f64 <= cap * base as f64 + burst + failed as f64,
            "calls {calls} base {base} cap {cap} burst {burst} failed lost hits {failed}");
    }

    #[test]
    fn warming_never_takes_the_calls_past_the_cap_plus_one_burst(
        events in prop::collection::vec((any::<u8>(), 0u16..2000, any::<bool>()), 1..600),
        ttl in 1.0f64..200.0,
        cap in prop_oneof![Just(1.0f64), 1.0f64..1.5],
        burst in 1.0f64..4.0,
    ) {
        let (calls, base, acct) = run(&events, ttl, cap, burst);
        prop_assert!(calls as f64 <= cap * base as f64 + burst,
            "calls {calls} base {base} cap {cap} burst {burst}");
        prop_assert_eq!(acct.totals(), (calls, base));
    }
}

#[test]
fn a_warm_hit_the_shadow_missed_puts_the_key_at_risk_until_the_shadow_expires() {
    let mut a = CostCap::new(1.25, 10.0, None);
    let rule = crate::ttl::TtlRule::from(60.0);
    let k = KeyId(0);
    // The engine warmed k at 0; the access at 30 hits, the shadow fetches.
    a.on_call(0.0);
    a.rejudge(0.0, k, Some(60.0));
    assert_eq!(a.at_risk(), 0);
    a.on_access(30.0, k, &rule, Some(60.0));
    assert_eq!(a.at_risk(), 1, "real expires at 60, the shadow at 90");
    // No access before 90: the risk ends by itself.
    a.advance(90.0);
    assert_eq!(a.at_risk(), 0);
    // A lost hit: the access at 100 misses in both... the shadow fetches
    // at 100; the engine too: not at risk.
    a.on_access(100.0, k, &rule, Some(60.0));
    a.on_call(100.0);
    a.rejudge(100.0, k, Some(160.0));
    assert_eq!(a.at_risk(), 0);
}

#[test]
fn the_price_rises_while_calls_exceed_the_cap_and_falls_back_after() {
    let mut a = CostCap::new(1.25, 1.0, None);
    let rule = crate::ttl::TtlRule::from(1.0);
    let mut t = 0.0;
    // An hour at 2 calls per shadow call: the price must rise.
    for i in 0..3600u32 {
        t = f64::from(i);
        a.on_access(t, KeyId(i), &rule, None);
        a.on_call(t);
        a.on_call(t);
    }
    let high = a.threshold();
    assert!(high > 0.5, "{high}");
    // Demand alone: once the account has recovered, it must fall.
    for i in 3600..18_000u32 {
        t = f64::from(i);
        a.on_access(t, KeyId(i), &rule, None);
        a.on_call(t);
    }
    assert!(a.threshold() < high / 2.0, "{} vs {high}", a.threshold());
    assert!(a.history().len() > 100);
    let last = a.history().last().expect("history");
    assert!(last.at_s <= t && last.at_s > t - PRICE_STEP_S - 1.0);
}

#[test]
fn without_demand_there_is_only_the_burst() {
    let mut a = CostCap::new(1.25, 3.0, None);
    for i in 0..3 {
        assert!(a.may_warm(), "{i}");
        a.on_call(f64::from(i));
    }
    assert!(!a.may_warm());
    assert_eq!(a.ratio(), 1.0, "finite for the monitoring API");
}

#[test]
fn a_call_taken_back_frees_the_account_and_leaves_the_totals() {
    let mut a = CostCap::new(1.25, 2.0, None);
    a.on_call(0.0);
    a.on_call(1.0);
    assert!(!a.may_warm(), "the burst is spent");
    a.take_back_call(1.0);
    assert!(a.may_warm(), "the call that was not made is free again");
    assert_eq!(a.totals().0, 1);
    // Taking back more than was counted never wraps.
    a.take_back_call(1.0);
    a.take_back_call(1.0);
    assert_eq!(a.totals().0, 0);
    a.on_call(700.0);
    assert_eq!(a.totals().0, 1);
}

#[test]
fn a_demand_fetch_faster_than_the_planned_latency_leaves_no_key_at_risk() {
    // The daemon plans with the 90th percentile latency (0.5 s); most
    // fetches are faster (0.1 s). Before twin fetches, each such miss left
    // its key at risk for a TTL and the account starved warming.
    let mut a = CostCap::new(1.25, 10.0, None);
    a.set_latency_s(0.5);
    let rule = crate::ttl::TtlRule::from(60.0);
    for i in 0..100u32 {
        let (k, t) = (KeyId(i), f64::from(i));
        a.on_access(t, k, &rule, None);
        a.on_call(t);
        a.on_demand_landed(t + 0.1, k, Some(t + 0.1 + 60.0));
    }
    assert_eq!(a.at_risk(), 0);
    assert!(
        a.may_warm(),
        "100 calls for 100 shadow calls: room under the cap"
    );
    // The shadow's entry is the real one: an access just after the real
    // expiry is a miss for both (one call each), not a lost hit.
    a.on_access(60.2, KeyId(0), &rule, Some(60.1));
    assert_eq!(a.totals().1, 101);
    // A fetch slower than planned: the shadow's entry waits for it too.
    let k = KeyId(500);
    a.on_access(200.0, k, &rule, None);
    a.on_demand_landed(201.0, k, Some(261.0));
    a.on_access(260.7, k, &rule, Some(261.0));
    assert_eq!(
        a.totals().1,
        102,
        "covered by the landed fetch: no shadow call"
    );
    assert_eq!(a.at_risk(), 0);
}

#[test]
fn a_warmed_hit_the_shadow_missed_is_still_at_risk_with_twin_fetches() {
    let mut a = CostCap::new(1.25, 10.0, None);
    a.set_latency_s(0.5);
    let rule = crate::ttl::TtlRule::from(60.0);
    let k = KeyId(0);
    // The engine warmed k at 0 (fresh until 60); the access at 30 hits
    // while the shadow fetches: not a twin, the risk stays.
    a.on_call(0.0);
    a.rejudge(0.0, k, Some(60.0));
    a.on_access(30.0, k, &rule, Some(60.0));
    assert_eq!(a.at_risk(), 1);
    // A later demand landing of another fetch does not align it.
    a.on_demand_landed(30.2, k, Some(60.0));
    assert_eq!(a.at_risk(), 1, "the shadow's fetch was not the engine's");
}
