//! Shadow calls held while the engine's demand fetch for the same miss is
//! awaited, taken back when that fetch is refused before any call, and
//! settled when a fetch lands or fails ([`CostCap::landed`],
//! [`CostCap::on_fetch_failed`]).
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
//! what may be taken back; later reads of the key join the held fetch
//! (no call of their own, however long it waits in the quota's queue).
//! The account keeps `C + R′ + c·H ≤ c·S + b`, `H` the calls held and `R′`
//! the keys at risk that hold none (a held key's risk, at most one call,
//! is covered by its hold since `c ≥ 1`): a hold adds `c` to both sides, a
//! take-back removes `c` from both, a landing trades `c` of hold for one
//! call. Warming reads the slack with every key at risk (`R ≥ R′`), so it
//! is a little more cautious while fetches are pending, never less.
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
//! call stands and the shadow's entry goes ([`CostCap::on_fetch_failed`]),
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
    /// The key whose shadow call the latest access made as a twin (the
    /// engine missed too), if it did: what a report about that access
    /// (held, refused) refers to.
    pub(super) last_twin: Option<KeyId>,
    /// The key whose forced (`no-cache`) read the latest access was, if
    /// that access set its pending forced call (a read joining one
    /// pending already did not).
    pub(super) last_forced: Option<KeyId>,
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
    /// Whether the access just applied made the shadow's call for `key`
    /// as a twin (the engine missed too; a read the shadow's fetch in
    /// flight covered made none). Drivers report a read right after its
    /// access.
    fn access_made_twin_call(&self, key: KeyId) -> bool {
        self.holds.last_twin == Some(key)
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
        self.holds.slot(ix);
        let refused_first = self.holds.refused_at_s[ix] >= read_at_s;
        if self.holds.last_forced == Some(key) && refused_first {
            // A forced read whose fetch was refused before its access was
            // applied: no call will be counted for it.
            self.holds.refused_at_s[ix] = f64::NAN;
            self.shadow_forced[ix] = false;
            return;
        }
        if !self.access_made_twin_call(key) {
            return;
        }
        if refused_first {
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
        // A forced read's pending call goes with its refused fetch.
        let forced = std::mem::take(&mut self.shadow_forced[ix]);
        if self.holds.end(ix) {
            if self.shadow_twin[ix] {
                self.take_back_shadow_call(at_s, key, real_expires_s);
            }
        } else if !forced {
            self.holds.refused_at_s[ix] = at_s;
        }
    }

    /// The client read of `key`, just applied as a miss, was answered
    /// without any upstream call (the failure memo; stale or 503 while
    /// upstream is held back, the breaker open or the quota spent): a cache without warming would have been refused alike, so
    /// the shadow's call for it is taken back. `real_expires_s` is the
    /// engine's entry's expiry (`None`: none).
    pub fn on_read_refused(&mut self, now_s: UnixSeconds, key: KeyId, real_expires_s: Option<f64>) {
        let ix = self.slot(key);
        // A refused no-cache read's call is counted when a fetch lands:
        // none will (only its own: not one another forced read set).
        if self.holds.last_forced == Some(key) {
            self.holds.last_forced = None;
            self.shadow_forced[ix] = false;
        }
        if self.access_made_twin_call(key) {
            self.holds.last_twin = None;
            self.take_back_shadow_call(now_s, key, real_expires_s);
        }
    }

    /// A fetch of `key` was reported made (landed or failed): a call held
    /// for it stays counted, and its hold ends.
    pub fn on_fetch_made(&mut self, key: KeyId) {
        self.holds.end(key.ix());
    }

    /// A fetch of `key` (demand, or a warming fetch reads joined) failed
    /// at `now_s`: a call was made, nothing stored; `real_expires_s` is the
    /// engine's entry's expiry (`None`: none). A twin call stands, and a
    /// no-cache read's call is counted now, as a cache without warming
    /// makes it too; but that cache would have stored nothing either: the
    /// shadow's entry goes, so the key is not at risk for a hit neither
    /// could serve.
    pub fn on_fetch_failed(&mut self, now_s: UnixSeconds, key: KeyId, real_expires_s: Option<f64>) {
        let ix = self.slot(key);
        if std::mem::take(&mut self.shadow_forced[ix]) {
            self.count_shadow_call();
        }
        if std::mem::take(&mut self.shadow_twin[ix]) {
            self.clear_shadow_entry(ix);
            self.rejudge(now_s, key, real_expires_s);
        }
    }

    /// A warming fetch of `key` landed at `now_s`, its entry expiring at
    /// `real_expires_s`: reads that joined it are settled
    /// (as the module docs of `held` say, without aligning the entry).
    pub fn on_warm_landed(&mut self, now_s: UnixSeconds, key: KeyId, real_expires_s: Option<f64>) {
        self.landed(now_s, key, real_expires_s, false);
    }

    /// A fetch of `key` landed at `now_s`, its entry expiring at
    /// `real_expires_s`; `same_call`: a demand fetch, the shadow's own call
    /// for a twin miss. A forced read's fetch is the shadow's call too,
    /// now. A twin's entry takes the landing's expiry when the fetch is
    /// the same call; a read that joined a warming fetch was the shadow's
    /// own call at the read, so its entry stays, unless a purge dropped it
    /// while the read was held: then the landing stands for it.
    pub(super) fn landed(
        &mut self,
        now_s: UnixSeconds,
        key: KeyId,
        real_expires_s: Option<f64>,
        same_call: bool,
    ) {
        let ix = self.slot(key);
        let forced = std::mem::take(&mut self.shadow_forced[ix]);
        let twin = std::mem::take(&mut self.shadow_twin[ix]);
        if forced {
            self.count_shadow_call();
        }
        if forced || (twin && self.shadow_fetched_s[ix].is_nan()) {
            self.shadow_fetched_s[ix] = now_s;
            self.shadow_expiry_s[ix] = real_expires_s.unwrap_or(now_s);
        }
        if same_call
            && twin
            && let Some(e) = real_expires_s
            && self.shadow_fetched_s[ix] <= now_s
            && now_s < e
        {
            self.shadow_expiry_s[ix] = e;
        }
        self.rejudge(now_s, key, real_expires_s);
    }

    /// One call of the shadow.
    pub(super) fn count_shadow_call(&mut self) {
        self.shadow_calls += 1.0;
        self.shadow_total += 1;
    }

    /// Forgets the shadow's entry of slot `ix` (no fetch, no expiry).
    pub(super) fn clear_shadow_entry(&mut self, ix: usize) {
        self.shadow_fetched_s[ix] = f64::NAN;
        self.shadow_expiry_s[ix] = f64::NAN;
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
        self.clear_shadow_entry(ix);
        self.shadow_twin[ix] = false;
        self.rejudge(now_s, key, real_expires_s);
    }

    /// Shadow calls held now (`H`).
    pub fn held_calls(&self) -> u64 {
        self.holds.count
    }
}

#[cfg(test)]
mod tests;
