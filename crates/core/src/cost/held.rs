//! Shadow calls held while the engine's demand fetch for the same miss is
//! awaited, and taken back when that fetch is refused before any call.
//!
//! Why: under twin fetches the shadow's call at a miss both make *is* the
//! engine's demand call. A driver with an upstream quota (the daemon) may
//! refuse that fetch before it reaches the upstream (quota, a host's hold,
//! an open breaker): no call was made, and a cache without warming, whose
//! demand goes first under the same quota, may well have been refused too.
//! Counting the shadow's call anyway would let warming spend `c` calls the
//! baseline never made. So the shadow's call is taken back at a refusal
//! (its entry forgotten: the next access is a miss for both), and while the
//! outcome is open its `c` units of slack are held: warming cannot spend
//! what may be taken back. The account's invariant becomes
//! `C + R + c·H ≤ c·S + b` (`H` the calls held), and a take-back moves
//! `c` from `c·H` and `c·S` alike.
//!
//! A hold ends when the fetch is reported (landed or failed: a call was
//! made) or at the instant the driver gave as its latest
//! (`until_s`), so a lost report never holds slack for longer. A purge
//! keeps it (the fetch may still be refused); a released key drops it.
//! A refusal reported before its read's access (the driver's events come
//! on separate channels) is kept until that access, which takes its call
//! back at once.
//!
//! A failed demand fetch made its call, but stored nothing: its twin
//! call stands and the shadow's entry goes ([`CostCap::on_demand_failed`]),
//! so the key is not at risk for a hit neither cache could serve.
//!
//! A read answered without any call at all (the daemon's failure memo;
//! stale or 503 while upstream is held back, the breaker open or the quota
//! spent) is no call for the shadow either: its call is taken back as the
//! access is applied ([`CostCap::on_read_refused`]).
//!
//! Replay never refuses a fetch and never asks for holds: its figures are
//! those of the account without them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{CostCap, RiskExit};
use crate::UnixSeconds;
use crate::cache::KeyId;

/// Per key: the open hold's end and the last refusal seen.
#[derive(Debug, Clone, Default)]
pub(super) struct Holds {
    /// Per key: when its hold ends (NaN: none).
    until_s: Vec<f64>,
    /// Per key: when a demand fetch of it was last refused (NaN: never).
    refused_at_s: Vec<f64>,
    /// Holds open now (`H`).
    pub(super) count: u64,
    exits: BinaryHeap<Reverse<RiskExit>>,
}

impl Holds {
    fn slot(&mut self, ix: usize) {
        if self.until_s.len() <= ix {
            self.until_s.resize(ix + 1, f64::NAN);
            self.refused_at_s.resize(ix + 1, f64::NAN);
        }
    }

    /// Ends `ix`'s hold, if open. Returns whether one was.
    fn end(&mut self, ix: usize) -> bool {
        match self.until_s.get_mut(ix) {
            Some(u) if !u.is_nan() => {
                *u = f64::NAN;
                self.count -= 1;
                true
            }
            _ => false,
        }
    }

    /// Ends the holds whose instant passed by `now_s`.
    pub(super) fn expire(&mut self, now_s: UnixSeconds) {
        while let Some(Reverse(RiskExit(at_s, key))) = self.exits.peek().copied() {
            if at_s > now_s {
                break;
            }
            self.exits.pop();
            if self.until_s.get(key.ix()) == Some(&at_s) {
                self.end(key.ix());
            }
        }
    }

    /// Drops what is known of `ix` (its key id is being released).
    pub(super) fn forget(&mut self, ix: usize) {
        self.end(ix);
        if let Some(r) = self.refused_at_s.get_mut(ix) {
            *r = f64::NAN;
        }
    }
}

impl CostCap {
    /// Whether the shadow's current call for slot `ix` was made by a read
    /// at `read_at_s` or later that the engine missed too (a twin call; a
    /// read the shadow's fetch in flight covered made none).
    fn twin_call_since(&self, ix: usize, read_at_s: UnixSeconds) -> bool {
        self.shadow_twin[ix] && self.shadow_fetched_s[ix] >= read_at_s
    }

    /// The engine's client read of `key` at `read_at_s`, just applied (the
    /// engine's time is `now_s`), missed and its demand fetch is awaited
    /// until `until_s` at the latest (Unix s). When that access made the
    /// shadow's twin call, the call is held until the fetch is reported:
    /// taken back if it is refused ([`CostCap::on_fetch_refused`]), kept
    /// otherwise. A refusal of `key` reported before this access, at or
    /// after `read_at_s`, that found no hold to end (the read joined the
    /// refused fetch, its report came first) takes the call back at once.
    pub fn hold_twin_call(
        &mut self,
        now_s: UnixSeconds,
        read_at_s: UnixSeconds,
        key: KeyId,
        until_s: UnixSeconds,
    ) {
        let ix = self.slot(key);
        if !self.twin_call_since(ix, read_at_s) {
            return;
        }
        self.holds.slot(ix);
        if self.holds.refused_at_s[ix] >= read_at_s {
            self.holds.refused_at_s[ix] = f64::NAN;
            self.take_back_shadow_call(now_s, key, None);
            return;
        }
        if until_s > now_s && self.holds.until_s[ix].is_nan() {
            self.holds.until_s[ix] = until_s;
            self.holds.count += 1;
            self.holds.exits.push(Reverse(RiskExit(until_s, key)));
        }
    }

    /// A fetch of `key` (demand, or a warming fetch reads had joined) was
    /// refused at `at_s` before any call (quota, hold, breaker);
    /// `real_expires_s` is the engine's entry's expiry (`None`: none). A
    /// shadow call held for it is taken back; with none held, the refusal
    /// is kept for a read whose access is applied after it
    /// ([`CostCap::hold_twin_call`]).
    pub fn on_fetch_refused(&mut self, at_s: UnixSeconds, key: KeyId, real_expires_s: Option<f64>) {
        let ix = self.slot(key);
        self.holds.slot(ix);
        if self.holds.end(ix) {
            if self.shadow_twin[ix] {
                self.take_back_shadow_call(at_s, key, real_expires_s);
            }
        } else {
            self.holds.refused_at_s[ix] = at_s;
        }
    }

    /// The client read of `key` at `read_at_s`, just applied as a miss,
    /// was answered without any upstream call (the failure memo; stale or
    /// 503 while upstream is held back, the breaker open or the quota
    /// spent): a cache without warming would have been refused alike, so
    /// the shadow's call for it is taken back. `real_expires_s` is the
    /// engine's entry's expiry (`None`: none).
    pub fn on_read_refused(
        &mut self,
        now_s: UnixSeconds,
        read_at_s: UnixSeconds,
        key: KeyId,
        real_expires_s: Option<f64>,
    ) {
        let ix = self.slot(key);
        // A refused no-cache read's call is counted when a fetch lands:
        // none will.
        self.shadow_forced[ix] = false;
        if self.twin_call_since(ix, read_at_s) {
            self.take_back_shadow_call(now_s, key, real_expires_s);
        }
    }

    /// A fetch of `key` was reported made (landed or failed): a call held
    /// for it stays counted, and its hold ends.
    pub fn on_fetch_made(&mut self, key: KeyId) {
        self.holds.end(key.ix());
    }

    /// The engine's demand fetch of `key` failed at `now_s` (a call was
    /// made, nothing stored); `real_expires_s` is the engine's entry's
    /// expiry (`None`: none). Its twin call stands, but a cache without
    /// warming would have stored nothing either: the shadow's entry goes,
    /// so the key is not at risk for a hit neither could serve.
    pub fn on_demand_failed(
        &mut self,
        now_s: UnixSeconds,
        key: KeyId,
        real_expires_s: Option<f64>,
    ) {
        let ix = self.slot(key);
        self.shadow_forced[ix] = false;
        if std::mem::take(&mut self.shadow_twin[ix]) {
            self.shadow_fetched_s[ix] = f64::NAN;
            self.shadow_expiry_s[ix] = f64::NAN;
            self.rejudge(now_s, key, real_expires_s);
        }
    }

    /// Whether a shadow call of `key` is held now.
    pub(super) fn is_held(&self, key: KeyId) -> bool {
        self.holds
            .until_s
            .get(key.ix())
            .is_some_and(|u| !u.is_nan())
    }

    /// Takes back the shadow's call for `key`'s current entry, decayed as
    /// it would be by now, and forgets the entry: the next access is a
    /// miss for the shadow too. Then the key is judged again.
    fn take_back_shadow_call(
        &mut self,
        now_s: UnixSeconds,
        key: KeyId,
        real_expires_s: Option<f64>,
    ) {
        let ix = key.ix();
        let weight = self.weight_now(self.shadow_fetched_s[ix]);
        self.shadow_calls = (self.shadow_calls - weight).max(0.0);
        self.shadow_total = self.shadow_total.saturating_sub(1);
        self.shadow_fetched_s[ix] = f64::NAN;
        self.shadow_expiry_s[ix] = f64::NAN;
        self.shadow_twin[ix] = false;
        self.rejudge(now_s, key, real_expires_s);
    }

    /// Shadow calls held now (`H`).
    pub fn held_calls(&self) -> u64 {
        self.holds.count
    }
}

#[cfg(test)]
mod tests {
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
        a.on_read_refused(0.0, 0.0, k, None);
        assert_eq!((a.totals(), a.at_risk()), ((0, 0), 0));
        // A refused no-cache read leaves no call to count at a landing.
        a.on_forced_access(1.0, k, None);
        a.on_read_refused(1.0, 1.0, k, None);
        a.on_demand_landed(1.5, k, Some(61.5));
        assert_eq!(a.totals().1, 0);
        // A read the shadow covered made no call to take back.
        missed(&mut a, 2.0, k);
        missed(&mut a, 2.5, k);
        a.on_read_refused(2.5, 2.5, k, None);
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
        a.on_demand_failed(0.2, k, None);
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
}
