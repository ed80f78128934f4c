use super::*;
use proptest::prelude::*;

#[test]
fn the_rule_is_half_open_and_never_before_the_fetch() {
    let (f, ttl) = (UnixInstant(100.0), Seconds(60.0));
    assert!(is_fresh(f, ttl, UnixInstant(100.0)));
    assert!(is_fresh(f, ttl, UnixInstant(159.999)));
    assert!(!is_fresh(f, ttl, UnixInstant(160.0)));
    assert!(!is_fresh(f, ttl, UnixInstant(99.0)));
    let never = UnixInstant(f64::NEG_INFINITY);
    assert!(!is_fresh(never, ttl, UnixInstant(0.0)));
}

#[test]
fn freshness_boundaries_are_half_open() {
    let mut c = CacheModel::new(60.0, None);
    let k = KeyId(3);
    assert_eq!(c.freshness(k, 0.0), Freshness::Absent);
    c.insert(k, 100.0, FetchOrigin::Demand);
    assert!(matches!(c.freshness(k, 100.0), Freshness::Fresh(_)));
    assert!(matches!(c.freshness(k, 159.999), Freshness::Fresh(_)));
    assert!(matches!(c.freshness(k, 160.0), Freshness::Stale(_)));
    assert!(
        matches!(c.freshness(k, 99.0), Freshness::Stale(_)),
        "not fresh before its fetch"
    );
    assert_eq!(c.fresh_for_s(k, 130.0), 30.0);
}

#[test]
fn keys_lists_the_held_entries_only() {
    let mut c = CacheModel::new(60.0, None);
    for k in [5, 1, 3] {
        c.insert(KeyId(k), 0.0, FetchOrigin::Demand);
    }
    c.remove(KeyId(3));
    assert_eq!(c.keys().collect::<Vec<_>>(), [KeyId(1), KeyId(5)]);
}

#[test]
fn lru_evicts_least_recently_accessed() {
    let mut c = CacheModel::new(60.0, Some(2));
    let (a, b, d) = (KeyId(0), KeyId(1), KeyId(2));
    c.insert(a, 0.0, FetchOrigin::Demand);
    c.insert(b, 1.0, FetchOrigin::Warm(StrategyId::Popular));
    c.touch(a);
    let out = c.insert(d, 2.0, FetchOrigin::Demand);
    let (victim, e) = out.evicted.expect("over capacity");
    assert_eq!(victim, b);
    assert_eq!(e.origin, FetchOrigin::Warm(StrategyId::Popular));
    assert_eq!(c.len(), 2);
    assert!(c.entry(b).is_none());
    assert!(c.entry(a).is_some() && c.entry(d).is_some());
}

#[test]
fn replacing_reports_the_old_entry_and_resets_used() {
    let mut c = CacheModel::new(60.0, Some(4));
    let k = KeyId(0);
    c.insert(k, 0.0, FetchOrigin::Warm(StrategyId::Refresh));
    assert!(c.mark_used(k));
    assert!(!c.mark_used(k), "only the first hit counts");
    let out = c.insert(k, 10.0, FetchOrigin::Demand);
    assert!(out.replaced.unwrap().used);
    assert!(!c.entry(k).unwrap().used);
    assert_eq!(c.len(), 1);
    assert_eq!(c.remove(k).unwrap().fetched_at_s, 10.0);
    assert!(c.is_empty());
}

const POPULAR: FetchOrigin = FetchOrigin::Warm(StrategyId::Popular);

#[test]
fn a_warm_fetch_unused_within_its_ttl_is_pending_not_wasted() {
    let mut c = CacheModel::new(60.0, None);
    c.insert(KeyId(0), 100.0, POPULAR);
    assert!(c.take_wasted(159.9).is_empty(), "fresh and unused: pending");
    let e = c.entry(KeyId(0)).unwrap();
    assert!(!e.used && !e.wasted);
}

#[test]
fn a_warm_fetch_expired_unused_is_wasted_at_its_expiry_once() {
    let mut c = CacheModel::new(60.0, None);
    c.insert(KeyId(0), 100.0, POPULAR);
    c.insert(KeyId(1), 100.0, FetchOrigin::Demand);
    assert_eq!(c.take_wasted(500.0), [(StrategyId::Popular, 160.0)]);
    assert!(c.entry(KeyId(0)).unwrap().wasted);
    assert!(c.take_wasted(900.0).is_empty(), "counted once");
    // Replaced or removed later: already settled.
    c.insert(KeyId(0), 900.0, FetchOrigin::Demand);
    c.remove(KeyId(0));
    assert!(c.take_wasted(1000.0).is_empty());
}

#[test]
fn a_used_warm_fetch_is_never_wasted() {
    let mut c = CacheModel::new(60.0, Some(1));
    c.insert(KeyId(0), 0.0, POPULAR);
    assert!(c.mark_used(KeyId(0)));
    assert!(c.take_wasted(1000.0).is_empty(), "expired after a hit");
    c.insert(KeyId(0), 1000.0, POPULAR);
    assert!(c.mark_used(KeyId(0)));
    c.insert(KeyId(1), 1001.0, FetchOrigin::Demand);
    assert!(c.entry(KeyId(0)).is_none(), "evicted");
    assert!(c.take_wasted(5000.0).is_empty());
}

#[test]
fn an_unused_warm_fetch_replaced_evicted_or_removed_is_wasted_then() {
    let mut c = CacheModel::new(60.0, Some(2));
    c.insert(KeyId(0), 0.0, POPULAR);
    c.insert(KeyId(0), 10.0, FetchOrigin::Warm(StrategyId::Refresh));
    assert_eq!(
        c.take_wasted(10.0),
        [(StrategyId::Popular, 10.0)],
        "replaced"
    );
    c.insert(KeyId(1), 11.0, FetchOrigin::Demand);
    c.insert(KeyId(2), 12.0, FetchOrigin::Demand);
    assert!(c.entry(KeyId(0)).is_none());
    assert_eq!(
        c.take_wasted(12.0),
        [(StrategyId::Refresh, 12.0)],
        "evicted"
    );
    c.insert(KeyId(3), 20.0, POPULAR);
    c.remove(KeyId(3));
    assert_eq!(
        c.take_wasted(25.0),
        [(StrategyId::Popular, 20.0)],
        "removed (purged)"
    );
    // Replaced after it expired: wasted when it expired.
    c.insert(KeyId(4), 100.0, POPULAR);
    c.insert(KeyId(4), 200.0, FetchOrigin::Demand);
    assert_eq!(c.take_wasted(200.0), [(StrategyId::Popular, 160.0)]);
    assert!(c.take_wasted(1000.0).is_empty(), "its expiry passes unseen");
}

/// One step of [`warm_fetches_add_up`]: `(key, kind, seconds later)`;
/// kind 0-1 a warming fetch, 2 a demand fetch, 3 a hit if fresh, 4 a
/// removal.
fn step() -> impl Strategy<Value = (u32, u8, f64)> {
    (0u32..6, 0u8..5, 0.0f64..40.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn warm_fetches_add_up(steps in proptest::collection::vec(step(), 1..80), cap in 1usize..8) {
        let mut c = CacheModel::new(60.0, Some(cap));
        let (mut now_s, mut fetched, mut used, mut wasted) = (0.0, 0u64, 0u64, 0u64);
        for (k, kind, dt) in steps {
            now_s += dt;
            let key = KeyId(k);
            match kind {
                0 | 1 => {
                    c.insert(key, now_s, POPULAR);
                    fetched += 1;
                }
                2 => {
                    c.insert(key, now_s, FetchOrigin::Demand);
                }
                3 => {
                    if let Freshness::Fresh(e) = c.freshness(key, now_s)
                        && c.mark_used(key)
                        && e.origin == POPULAR
                    {
                        used += 1;
                    }
                }
                _ => {
                    c.remove(key);
                }
            }
            wasted += c.take_wasted(now_s).len() as u64;
        }
        let pending: Vec<CachedEntry> = c
            .entries()
            .map(|(_, e)| e)
            .filter(|e| e.origin == POPULAR && !e.used && !e.wasted)
            .collect();
        prop_assert!(pending.iter().all(|e| e.is_fresh(UnixInstant(now_s))), "pending is fresh");
        prop_assert_eq!(fetched, used + wasted + pending.len() as u64);
    }
}
