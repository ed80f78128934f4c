//! Regressions of the no-warming shadow around no-cache reads and reads
//! that join a warming fetch: each sequence's shadow calls are those a
//! cache without warming makes on the same reads.

use super::*;
use crate::strategy::StrategyId;

const WARM: FetchOrigin = FetchOrigin::Warm(StrategyId::Refresh);

fn ctx() -> AccessContext<'static> {
    AccessContext::default()
}

/// A no-cache read joining a read's awaited fetch was counted again.
#[test]
fn a_no_cache_read_joining_a_held_fetch_is_no_second_call() {
    let mut e = engine("popular", 60.0);
    let k = e.intern("AAPL");
    e.on_access(0.0, k, &ctx());
    e.on_demand_fetch_awaited(0.0, k, 5.0);
    e.on_forced_access(0.1, k, &ctx());
    e.on_demand_fetch_awaited(0.1, k, 5.1);
    e.on_fetched(0.5, k, FetchOrigin::Demand, true);
    assert_eq!(e.cost_cap().totals(), (1, 1));
}

/// A refused no-cache read left its pending call, counted at the next
/// failed warming fetch.
#[test]
fn a_refused_no_cache_read_leaves_no_pending_call() {
    let mut e = engine("popular", 60.0);
    let k = e.intern("AAPL");
    e.on_forced_access(0.0, k, &ctx());
    e.on_demand_fetch_awaited(0.0, k, 5.0);
    e.on_fetch_not_sent(0.2, k, FetchOrigin::Demand);
    e.on_fetched(10.0, k, WARM, false);
    assert_eq!(e.cost_cap().totals().1, 0);
    // Its refusal reported before its access: the same.
    let m = e.intern("MSFT");
    e.on_fetch_not_sent(20.1, m, FetchOrigin::Demand);
    e.on_forced_access(20.1, m, &ctx());
    e.on_demand_fetch_awaited(20.0, m, 25.0);
    e.on_fetched(30.0, m, WARM, false);
    assert_eq!(e.cost_cap().totals().1, 0);
}

/// A read that joined a warming fetch stayed marked as the shadow's
/// twin, so a later failed refresh dropped the shadow's entry.
#[test]
fn a_read_joining_a_warming_fetch_is_no_twin_after_it_lands() {
    let mut e = engine("popular", 60.0);
    let k = e.intern("AAPL");
    e.on_access(1.0, k, &ctx());
    e.on_demand_fetch_awaited(1.0, k, 6.0);
    e.on_fetched(2.0, k, WARM, true);
    e.on_fetched(50.0, k, WARM, false);
    e.on_access(55.0, k, &ctx());
    assert_eq!(e.cost_cap().totals().1, 1, "a hit for both caches");
    // Purged while held: the warming fetch's landing is the entry.
    let m = e.intern("MSFT");
    e.on_access(100.0, m, &ctx());
    e.on_demand_fetch_awaited(100.0, m, 105.0);
    e.on_purged(m);
    e.on_fetched(101.0, m, WARM, true);
    e.on_access(110.0, m, &ctx());
    assert_eq!(e.cost_cap().totals().1, 2);
}

/// A hit during a no-cache read's pending fetch made a shadow call of
/// its own, though a cache without warming joins that fetch.
#[test]
fn a_read_during_a_pending_no_cache_fetch_joins_it() {
    let mut e = engine("popular", 60.0);
    let k = e.intern("AAPL");
    e.on_fetched(0.0, k, WARM, true);
    e.on_forced_access(10.0, k, &ctx());
    e.on_demand_fetch_awaited(10.0, k, 15.0);
    e.on_access(10.1, k, &ctx());
    e.on_fetch_not_sent(10.2, k, FetchOrigin::Demand);
    assert_eq!(e.cost_cap().totals().1, 0);
}
