//! Warming fetches through the engine's public calls: used, wasted
//! (expired, replaced, failed) or pending, never two of them, and
//! warm_fetches = used + wasted + pending.

use prewarm_core::cache::FetchOrigin;
use prewarm_core::engine::{Engine, EngineConfig, Lookup, WarmOrder};
use prewarm_core::stats::StrategyCounters;
use prewarm_core::strategy::{StrategyId, StrategySet};
use prewarm_core::tracker::AccessContext;

const TTL_S: f64 = 60.0;

fn engine() -> Engine {
    let mut cfg = EngineConfig {
        ttl_s: TTL_S,
        ..EngineConfig::default()
    };
    cfg.warming.strategies = StrategySet::parse_list("none").unwrap();
    Engine::new(cfg).unwrap()
}

/// `name` read at `now_s` (a demand fetch on a miss); whether it hit.
fn read(e: &mut Engine, now_s: f64, name: &str) -> bool {
    let key = e.intern(name);
    match e.on_access(now_s, key, &AccessContext::default()) {
        Lookup::Hit { .. } => true,
        Lookup::Miss { .. } => {
            e.on_fetched(now_s, key, FetchOrigin::Demand, true);
            false
        }
    }
}

/// `name`, read at 0, stale by `now_s`: the popular cycle's one order.
fn order_at(e: &mut Engine, now_s: f64, name: &str) -> WarmOrder {
    read(e, 0.0, name);
    let plan = e.warm_popular(now_s, 10);
    assert_eq!(plan.orders.len(), 1, "{plan:?}");
    plan.orders[0]
}

fn popular(e: &Engine) -> StrategyCounters {
    let s = *e.stats().total.strategy(StrategyId::Popular);
    assert_eq!(
        s.warm_used + s.warm_wasted + s.warm_pending(),
        s.warm_fetches,
        "{s:?}"
    );
    s
}

fn landed(e: &mut Engine, o: WarmOrder, at_s: f64, ok: bool) {
    e.on_fetched(at_s, o.key, FetchOrigin::Warm(o.strategy), ok);
    e.end_warm_order(o.key);
}

#[test]
fn a_warmed_entry_unread_within_its_ttl_is_pending_then_wasted_at_expiry() {
    let mut e = engine();
    let o = order_at(&mut e, 100.0, "AAPL");
    assert_eq!(popular(&e).warm_pending(), 1, "in flight");
    landed(&mut e, o, 101.0, true);
    e.handle_timeout(101.0 + TTL_S - 1.0);
    let s = popular(&e);
    assert_eq!((s.warm_fetches, s.warm_wasted, s.warm_pending()), (1, 0, 1));
    e.handle_timeout(101.0 + TTL_S);
    let s = popular(&e);
    assert_eq!((s.warm_used, s.warm_wasted, s.warm_pending()), (0, 1, 0));
    e.handle_timeout(10_000.0);
    assert_eq!(popular(&e).warm_wasted, 1, "once");
}

#[test]
fn a_warmed_entry_read_is_used_and_never_wasted() {
    let mut e = engine();
    let o = order_at(&mut e, 100.0, "AAPL");
    landed(&mut e, o, 101.0, true);
    assert!(read(&mut e, 120.0, "AAPL"), "a hit on the warmed entry");
    assert!(read(&mut e, 130.0, "AAPL"));
    e.handle_timeout(10_000.0);
    read(&mut e, 10_001.0, "AAPL"); // replaced by a demand fetch
    let s = popular(&e);
    assert_eq!((s.warm_used, s.warm_wasted, s.warm_pending()), (1, 0, 0));
}

#[test]
fn a_warmed_entry_replaced_unread_by_a_newer_fetch_is_wasted() {
    let mut e = engine();
    let o = order_at(&mut e, 100.0, "AAPL");
    landed(&mut e, o, 101.0, true);
    let key = e.intern("AAPL");
    e.on_fetched(110.0, key, FetchOrigin::Demand, true);
    let s = popular(&e);
    assert_eq!((s.warm_wasted, s.warm_pending()), (1, 0));
}

#[test]
fn a_failed_warming_fetch_is_wasted_and_an_order_without_a_call_is_not() {
    let mut e = engine();
    let o = order_at(&mut e, 100.0, "AAPL");
    landed(&mut e, o, 101.0, false);
    let s = popular(&e);
    assert_eq!((s.warm_fetches, s.warm_wasted, s.warm_pending()), (1, 1, 0));
    // An order that made no call: taken back, then ended; nothing wasted.
    let mut e = engine();
    let o = order_at(&mut e, 100.0, "MSFT");
    e.take_back_warm_call(o.issued_at_s, o.strategy);
    e.end_warm_order(o.key);
    let s = popular(&e);
    assert_eq!((s.warm_fetches, s.warm_wasted, s.warm_pending()), (0, 0, 0));
}
