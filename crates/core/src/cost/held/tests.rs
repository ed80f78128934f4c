//! The held and taken-back calls of the cost cap's shadow.

use super::*;
use crate::ttl::TtlRule;

fn missed(a: &mut CostCap, t: f64, k: KeyId) {
    a.on_access(t, k, &TtlRule::from(60.0), None);
}

#[test]
fn a_held_call_holds_its_slack_until_the_fetch_is_reported() {
    let mut a = CostCap::new(1.0, 1.0, None);
    let k = KeyId(0);
    missed(&mut a, 0.0, k);
    let before = a.slack();
    a.hold_twin_call(0.0, 0.0, k, 3.0);
    assert_eq!(a.held_calls(), 1);
    assert_eq!(a.slack(), before - 1.0, "c = 1 unit held");
    a.on_call(0.1);
    a.on_fetch_made(k);
    a.on_demand_landed(0.1, k, Some(60.1));
    assert_eq!(a.held_calls(), 0);
    assert_eq!(a.totals(), (1, 1), "the call stands for both");
    assert_eq!(a.slack(), 1.0);
}

#[test]
fn a_refused_fetch_takes_the_shadow_call_back_and_its_entry() {
    let mut a = CostCap::new(1.25, 1.0, None);
    let k = KeyId(0);
    missed(&mut a, 0.0, k);
    a.hold_twin_call(0.0, 0.0, k, 3.0);
    assert_eq!(a.at_risk(), 1, "in flight: the shadow's entry is coming");
    a.on_fetch_refused(0.5, k, None);
    assert_eq!((a.held_calls(), a.totals(), a.at_risk()), (0, (0, 0), 0));
    assert_eq!(a.slack(), 1.0, "only the burst: nothing was earned");
    // The next access is a miss for the shadow again.
    missed(&mut a, 1.0, k);
    assert_eq!(a.totals().1, 1);
}

#[test]
fn a_refusal_reported_before_the_access_takes_the_call_back_at_once() {
    let mut a = CostCap::new(1.25, 1.0, None);
    let k = KeyId(0);
    a.on_fetch_refused(5.1, k, None);
    missed(&mut a, 5.2, k);
    a.hold_twin_call(5.2, 5.0, k, 8.0);
    assert_eq!((a.held_calls(), a.totals().1), (0, 0));
    // An older refusal is not this read's.
    missed(&mut a, 9.0, k);
    a.hold_twin_call(9.0, 9.0, k, 12.0);
    assert_eq!((a.held_calls(), a.totals().1), (1, 1));
}

#[test]
fn a_refusal_at_the_reads_own_instant_reported_first_is_its_own() {
    // Under a paused clock the read and its refusal share an instant.
    let mut a = CostCap::new(1.25, 1.0, None);
    let k = KeyId(0);
    a.on_fetch_refused(5.0, k, None);
    missed(&mut a, 5.0, k);
    a.hold_twin_call(5.0, 5.0, k, 8.0);
    assert_eq!((a.held_calls(), a.totals().1), (0, 0));
}

#[test]
fn a_refusal_that_ended_a_hold_is_not_kept_for_a_later_read() {
    let mut a = CostCap::new(1.25, 1.0, None);
    let k = KeyId(0);
    missed(&mut a, 5.0, k);
    a.hold_twin_call(5.0, 5.0, k, 8.0);
    a.on_fetch_refused(5.0, k, None);
    // A second read at the same instant fetches anew, and its fetch
    // lands: its call stands.
    missed(&mut a, 5.0, k);
    a.hold_twin_call(5.0, 5.0, k, 8.0);
    assert_eq!((a.held_calls(), a.totals().1), (1, 1));
    a.on_fetch_made(k);
    assert_eq!((a.held_calls(), a.totals().1), (0, 1));
}

#[test]
fn a_read_answered_without_a_call_is_no_call_for_the_shadow() {
    let mut a = CostCap::new(1.25, 1.0, None);
    let k = KeyId(0);
    missed(&mut a, 0.0, k);
    a.on_read_refused(0.0, k, None);
    assert_eq!((a.totals(), a.at_risk()), ((0, 0), 0));
    // A refused no-cache read leaves no call to count at a landing.
    a.on_forced_access(1.0, k, None);
    a.on_read_refused(1.0, k, None);
    a.on_demand_landed(1.5, k, Some(61.5));
    assert_eq!(a.totals().1, 0);
    // A read the shadow covered made no call to take back.
    missed(&mut a, 2.0, k);
    missed(&mut a, 2.5, k);
    a.on_read_refused(2.5, k, None);
    assert_eq!(a.totals().1, 1);
}

#[test]
fn a_purge_keeps_a_held_call_so_its_refusal_still_takes_it_back() {
    let mut a = CostCap::new(1.25, 1.0, None);
    let k = KeyId(0);
    missed(&mut a, 0.0, k);
    a.hold_twin_call(0.0, 0.0, k, 30.0);
    a.on_purged(k);
    assert_eq!(a.held_calls(), 1);
    a.on_fetch_refused(0.5, k, None);
    assert_eq!((a.held_calls(), a.totals(), a.at_risk()), (0, (0, 0), 0));
    // Released keys drop their hold with everything else.
    missed(&mut a, 1.0, k);
    a.hold_twin_call(1.0, 1.0, k, 30.0);
    a.forget(k);
    assert_eq!(a.held_calls(), 0);
}

#[test]
fn a_failed_demand_fetch_keeps_its_call_and_leaves_no_shadow_entry() {
    let mut a = CostCap::new(1.25, 1.0, None);
    let k = KeyId(0);
    missed(&mut a, 0.0, k);
    a.hold_twin_call(0.0, 0.0, k, 3.0);
    a.on_call(0.2);
    a.on_fetch_made(k);
    a.on_fetch_failed(0.2, k, None);
    assert_eq!((a.held_calls(), a.totals(), a.at_risk()), (0, (1, 1), 0));
    // The next read is a miss for both.
    missed(&mut a, 1.0, k);
    assert_eq!(a.totals().1, 2);
}

#[test]
fn a_hold_whose_report_never_comes_ends_at_its_instant() {
    let mut a = CostCap::new(1.0, 1.0, None);
    let k = KeyId(3);
    missed(&mut a, 0.0, k);
    a.hold_twin_call(0.0, 0.0, k, 3.0);
    a.advance(2.9);
    assert_eq!(a.held_calls(), 1);
    a.advance(3.0);
    assert_eq!(a.held_calls(), 0);
    // A refusal after it finds no hold and takes nothing back.
    a.on_fetch_refused(4.0, k, None);
    assert_eq!(a.totals().1, 1);
}

#[test]
fn only_the_access_that_made_the_shadows_call_holds_it() {
    let mut a = CostCap::new(1.0, 1.0, None);
    let k = KeyId(1);
    missed(&mut a, 0.0, k);
    // A second read, covered by the shadow's fetch in flight.
    missed(&mut a, 0.5, k);
    a.hold_twin_call(0.5, 0.5, k, 3.5);
    assert_eq!(a.held_calls(), 0);
    // A warmed hit the shadow missed is not a twin: nothing held.
    let w = KeyId(2);
    a.rejudge(1.0, w, Some(61.0));
    a.on_access(1.0, w, &TtlRule::from(60.0), Some(61.0));
    a.hold_twin_call(1.0, 1.0, w, 4.0);
    assert_eq!(a.held_calls(), 0);
}

/// A read of `k` at `t` under TTL `ttl_s`, finding the engine's entry
/// expiring at `real`.
fn read(a: &mut CostCap, t: f64, k: KeyId, ttl_s: f64, real: Option<f64>) {
    a.on_access(t, k, &TtlRule::from(ttl_s), real);
}

/// A warming call of `w` at `t` if the account allows it.
fn warm(a: &mut CostCap, t: f64, w: KeyId, ttl_s: f64) -> bool {
    a.advance(t);
    if !a.may_warm() {
        return false;
    }
    a.on_call(t);
    a.rejudge(t, w, Some(t + ttl_s));
    true
}

/// Regression: reads joining a fetch awaited longer than the TTL each
/// made a shadow call; the refusal took back one, and warming spent the
/// rest.
#[test]
fn reads_joining_a_held_fetch_past_the_ttl_make_no_shadow_call_of_their_own() {
    let mut a = CostCap::new(1.0, 1.0, None);
    let k = KeyId(0);
    read(&mut a, 0.0, k, 1.0, None);
    a.hold_twin_call(0.0, 0.0, k, 30.0);
    let mut calls = 0;
    for i in 1..=5u32 {
        let t = 2.0 * f64::from(i);
        read(&mut a, t, k, 1.0, None);
        a.hold_twin_call(t, t, k, 30.0);
        calls += u64::from(warm(&mut a, t + 0.1, KeyId(i), 600.0));
    }
    a.on_fetch_refused(11.0, k, None);
    assert_eq!(a.totals().1, 0);
    assert!(
        calls as f64 <= 1.0,
        "{calls} warming calls on no shadow call"
    );
}

/// Regression: a read after a purge made a second shadow call while the
/// held fetch was pending.
#[test]
fn a_read_after_a_purge_joins_the_held_fetch() {
    let mut a = CostCap::new(1.25, 1.0, None);
    let k = KeyId(0);
    missed(&mut a, 0.0, k);
    a.hold_twin_call(0.0, 0.0, k, 30.0);
    a.on_purged(k);
    missed(&mut a, 1.0, k);
    a.hold_twin_call(1.0, 1.0, k, 30.0);
    a.on_fetch_refused(2.0, k, None);
    assert_eq!((a.totals().1, a.held_calls()), (0, 0));
}

/// Regression: a held fetch that landed after a purge left the shadow
/// without an entry, so the next read was a call for it alone.
#[test]
fn a_held_fetch_landing_after_a_purge_is_the_shadows_entry() {
    let mut a = CostCap::new(1.25, 1.0, None);
    let k = KeyId(0);
    missed(&mut a, 0.0, k);
    a.hold_twin_call(0.0, 0.0, k, 30.0);
    a.on_purged(k);
    a.on_call(1.0);
    a.on_fetch_made(k);
    a.on_demand_landed(1.0, k, Some(61.0));
    read(&mut a, 2.0, k, 60.0, Some(61.0));
    assert_eq!((a.totals(), a.at_risk()), ((1, 1), 0));
}

/// Regression: a snapshot counted held calls as made, so after a restart
/// they were slack no refusal could take back.
#[test]
fn a_snapshot_keeps_held_calls_as_refused() {
    let mut a = CostCap::new(1.0, 1.0, None);
    let k = KeyId(0);
    missed(&mut a, 0.0, k);
    a.hold_twin_call(0.0, 0.0, k, 30.0);
    let before = a.slack() + a.at_risk() as f64;
    let mut b = CostCap::new(1.0, 1.0, None);
    b.resume(a.price_state());
    assert!(b.slack() <= before, "{} > {before}", b.slack());
}

/// Regression: a failed no-cache fetch counted no shadow call, though a
/// cache without warming makes that call too.
#[test]
fn a_failed_no_cache_fetch_is_a_call_for_the_shadow_too() {
    let mut a = CostCap::new(1.25, 1.0, None);
    let k = KeyId(0);
    missed(&mut a, 0.0, k);
    a.on_call(0.0);
    a.on_demand_landed(0.0, k, Some(60.0));
    a.on_forced_access(10.0, k, Some(60.0));
    a.on_call(10.1);
    a.on_fetch_made(k);
    a.on_fetch_failed(10.1, k, Some(60.0));
    assert_eq!(a.totals(), (2, 2));
}

/// Regression: a read answered without a call at the same instant as an
/// earlier read of the key took back that read's call, whose fetch went.
#[test]
fn a_refused_read_takes_back_only_its_own_call() {
    let mut a = CostCap::new(1.25, 1.0, None);
    let k = KeyId(0);
    missed(&mut a, 5.0, k);
    a.hold_twin_call(5.0, 5.0, k, 35.0);
    missed(&mut a, 5.0, k);
    a.on_read_refused(5.0, k, None);
    a.on_call(5.1);
    a.on_fetch_made(k);
    a.on_demand_landed(5.1, k, Some(65.1));
    assert_eq!(a.totals(), (1, 1));
}

/// Regression: a read that joined a failed warming fetch left its key at
/// risk for a hit neither cache could serve.
#[test]
fn a_read_joining_a_failed_warming_fetch_leaves_no_risk() {
    let mut a = CostCap::new(1.25, 1.0, None);
    let k = KeyId(0);
    a.on_call(0.0);
    missed(&mut a, 0.1, k);
    a.hold_twin_call(0.1, 0.1, k, 30.0);
    a.on_fetch_made(k);
    a.on_fetch_failed(0.5, k, None);
    assert_eq!((a.at_risk(), a.held_calls()), (0, 0));
}
