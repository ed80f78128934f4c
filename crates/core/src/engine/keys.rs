//! Releasing key ids: the key table is bounded with the tracker.
//!
//! Invariant: a key stays interned (its id names it) while anything in the
//! engine refers to it:
//! - the tracker tracks it;
//! - the cache model, or the cost cap's no-warming shadow, holds an
//!   entry of it that has not expired;
//! - a warming fetch of it is in flight;
//! - the planner queues a candidate for it;
//! - the learned model holds an example of it waiting for its label.
//!
//! When the tracker stops tracking a key (evicted to respect `max_keys`,
//! or forgotten after `forget_after_s` without access), the engine releases
//! its id at once if nothing else refers to it. Otherwise the key waits in
//! a pending set, checked again every [`RELEASE_RECHECK_S`] (in
//! `handle_timeout`); so do keys fetched while untracked, and the keys of
//! a tracker replaced by a restore. A pending key accessed again is
//! tracked, and leaves the set.
//!
//! Releasing a key drops what the engine still kept of it, all of it about
//! a key nobody asked for in a long while (or the coldest of a full
//! tracker): its expired entry (a later miss finds the key absent rather
//! than stale), its timing state, its place on the popular list and its
//! recent proposals; its (client, key) cadences are keyed by the id's
//! generation and age out on their own. The id is then issued to the next
//! new key, so every vector indexed by key id stays as long as the most
//! keys alive at once: about `tracker.max_keys` plus those that fresh
//! entries, fetches in flight and queued candidates still name. Ids a
//! driver interned but never passed to the engine are not released.

use super::Engine;
use crate::UnixSeconds;
use crate::cache::KeyId;
use crate::time::UnixInstant;

/// Seconds between two checks of the keys pending release.
pub(super) const RELEASE_RECHECK_S: f64 = 60.0;

impl Engine {
    /// Whether anything but the key table refers to `key` at `now_s`.
    fn refers_to(&self, key: KeyId, now_s: UnixSeconds) -> bool {
        self.tracker.is_tracked(key)
            || self.flights.under_way(key, now_s)
            || self.planner.queued_for(key) > 0
            || self.cache.holds_unexpired(key, UnixInstant(now_s))
            || self.cost.holds_unexpired(key, now_s)
            || self.strategies.learner.pending.holds(key)
    }

    /// Releases the keys the tracker dropped, or sets them pending.
    pub(super) fn release_dropped(&mut self, now_s: UnixSeconds) {
        if !self.tracker.has_dropped() {
            return;
        }
        let mut dropped = std::mem::take(&mut self.dropped);
        self.tracker.take_dropped(&mut dropped);
        for key in dropped.drain(..) {
            if self.refers_to(key, now_s) {
                self.pending_release.insert(key);
            } else {
                self.release(key);
            }
        }
        self.dropped = dropped;
    }

    /// Checks the pending keys again: releases those nothing refers to,
    /// lets go of those tracked again.
    pub(super) fn recheck_pending(&mut self, now_s: UnixSeconds) {
        if self.pending_release.is_empty() {
            return;
        }
        let pending: Vec<KeyId> = self.pending_release.iter().copied().collect();
        for key in pending {
            if self.tracker.is_tracked(key) {
                self.pending_release.remove(&key);
            } else if !self.refers_to(key, now_s) {
                self.release(key);
            }
        }
    }

    /// Forgets what is left of untracked `key` and frees its id.
    fn release(&mut self, key: KeyId) {
        debug_assert!(
            !self.tracker.is_tracked(key)
                && !self.flights.warm.contains(&key)
                && !self.flights.demand.contains(&key)
        );
        self.cache.remove(key);
        self.cost.forget(key);
        self.flights.forget(key);
        self.strategies.forget(key);
        self.pending_release.remove(&key);
        self.keys.release(key);
    }

    /// After a restore replaced the tracker `old`: the keys only it
    /// tracked are pending, those the new one dropped while fitting its
    /// config are released.
    pub(super) fn on_tracker_replaced(&mut self, old: &crate::tracker::Tracker) {
        for key in old.tracked_keys() {
            if !self.tracker.is_tracked(key) {
                self.pending_release.insert(key);
            }
        }
        self.release_dropped(self.now_s);
        self.recheck_pending(self.now_s);
    }

    /// Keys waiting to be released (for tests and diagnostics).
    pub fn keys_pending_release(&self) -> usize {
        self.pending_release.len()
    }
}

#[cfg(test)]
mod tests {
    use crate::cache::{FetchOrigin, KeyId};
    use crate::engine::{Engine, EngineConfig, Lookup};
    use crate::strategy::StrategySet;
    use crate::tracker::{AccessContext, TrackerConfig};

    /// An engine whose tracker keeps at most `max_keys` keys.
    fn engine(strategies: &str, max_keys: usize) -> Engine {
        let mut cfg = EngineConfig {
            ttl_s: 60.0,
            tracker: TrackerConfig::with_max_keys(max_keys),
            ..EngineConfig::default()
        };
        cfg.warming.strategies = StrategySet::parse_list(strategies).unwrap();
        Engine::new(cfg).unwrap()
    }

    /// Timers due by `now_s`, each followed by the warming orders it
    /// allows (fetched at once), then an access of `name` with a demand
    /// fetch on a miss.
    fn access(e: &mut Engine, now_s: f64, name: &str) -> KeyId {
        while let Some(t) = e.next_timeout().filter(|&t| t <= now_s) {
            e.handle_timeout(t);
            while let Some(o) = e.poll_warm(t) {
                e.on_fetched(t, o.key, FetchOrigin::Warm(o.strategy), true);
            }
        }
        let key = e.intern(name);
        if let Lookup::Miss { .. } = e.on_access(now_s, key, &AccessContext::default()) {
            e.on_fetched(now_s, key, FetchOrigin::Demand, true);
        }
        key
    }

    #[test]
    fn the_key_table_stays_as_small_as_the_tracker_under_churn() {
        let mut e = engine("none", 4);
        let first = access(&mut e, 0.0, "K0");
        let stamp = e.keys().stamp(first);
        for i in 1..500 {
            access(&mut e, f64::from(i) * 100.0, &format!("K{i}"));
        }
        assert_eq!(e.tracker().len(), 4);
        assert!(e.keys().len() <= 5, "{} keys live", e.keys().len());
        assert!(
            e.keys().id_bound() <= 6,
            "ids up to {}",
            e.keys().id_bound()
        );
        assert_eq!(e.keys().get("K0"), None, "forgotten");
        assert!(!e.keys().is_current(stamp), "its id names another key now");
        assert!(e.cache().len() <= 5, "expired entries went with their keys");
    }

    /// A flood of distinct keys whose demand fetches are awaited and never
    /// reported (lost reports): each key is held for its longest fetch
    /// only, then its id goes back; the awaited map and the key table stay
    /// small, and a reused id holds nothing of the key it named before.
    #[test]
    fn awaited_demand_fetches_never_reported_leave_no_key_or_hold_behind() {
        const WAIT_S: f64 = 19.0;
        let mut e = engine("none", 4);
        let mut held_at_most = 0;
        for i in 0..500 {
            let now_s = f64::from(i) * 10.0;
            while let Some(t) = e.next_timeout().filter(|&t| t <= now_s) {
                e.handle_timeout(t);
            }
            let key = e.intern(&format!("K{i}"));
            e.on_access(now_s, key, &AccessContext::default());
            e.on_demand_fetch_awaited(now_s, key, now_s + WAIT_S);
            held_at_most = held_at_most.max(e.flights.awaited_len());
        }
        // Expired holds go at the next release check (every 60 s): those
        // of the last 60 + 19 s at most, one key each 10 s.
        assert!(held_at_most <= 8, "{held_at_most} awaited at once");
        assert!(e.keys().len() <= 4 + 8, "{} keys live", e.keys().len());
        assert!(e.keys().id_bound() <= 4 + 8 + 1, "ids reused");
        let now_s = 4995.0;
        for i in 490..500 {
            let awaited = now_s < f64::from(i) * 10.0 + WAIT_S;
            let key = e.keys().get(&format!("K{i}"));
            assert!(key.is_some() || !awaited, "K{i} is awaited: kept");
            let held = key.is_some_and(|k| e.fetch_under_way(k, now_s));
            assert_eq!(held, awaited, "K{i}");
        }
        let fresh = e.intern("NEW");
        assert!(!e.fetch_under_way(fresh, now_s), "a reused id is not held");
    }

    #[test]
    fn a_key_with_a_fresh_entry_waits_until_it_expires() {
        let mut e = engine("none", 1);
        let a = access(&mut e, 0.0, "A");
        access(&mut e, 1.0, "B"); // A leaves the tracker; its entry is fresh
        assert!(!e.tracker().is_tracked(a));
        assert_eq!((e.keys().get("A"), e.keys_pending_release()), (Some(a), 1));
        assert!(e.cache().entry(a).is_some());
        access(&mut e, 30.0, "B");
        assert_eq!(e.keys().get("A"), Some(a), "still fresh at 30");
        access(&mut e, 200.0, "B");
        assert_eq!((e.keys().get("A"), e.keys_pending_release()), (None, 0));
        assert!(e.cache().entry(a).is_none());
        // Accessed again, A is a new key: absent, not stale.
        let again = e.intern("A");
        let l = e.on_access(201.0, again, &AccessContext::default());
        assert_eq!(l, Lookup::Miss { stale: false });
    }

    #[test]
    fn a_key_with_a_warming_fetch_in_flight_waits_for_its_end() {
        let mut e = engine("popular", 1);
        let a = access(&mut e, 0.0, "A");
        let plan = e.warm_popular(100.0, 10);
        assert_eq!(plan.orders.len(), 1);
        assert_eq!(plan.orders[0].key, a);
        access(&mut e, 101.0, "B"); // A leaves the tracker, in flight
        access(&mut e, 300.0, "B");
        assert_eq!(e.keys().get("A"), Some(a), "in flight");
        e.on_fetched(301.0, a, FetchOrigin::Warm(plan.orders[0].strategy), false);
        access(&mut e, 500.0, "B");
        assert_eq!(e.keys().get("A"), None);
    }

    #[test]
    fn a_restore_releases_the_keys_only_the_old_tracker_knew() {
        let mut learned = engine("none", 100);
        for i in 0..20 {
            access(&mut learned, f64::from(i), "AAPL");
        }
        let bytes = learned.snapshot(20.0);
        let mut e = engine("none", 100);
        let x = access(&mut e, 0.0, "X");
        e.restore(&bytes).unwrap();
        assert!(!e.tracker().is_tracked(x));
        assert_eq!(e.keys().get("X"), Some(x), "its entry is fresh");
        let aapl = e.keys().get("AAPL").expect("restored keys are interned");
        assert!(e.tracker().is_tracked(aapl));
        assert_eq!(e.tracker_stats(20.0).top_10[0].key, "AAPL");
        access(&mut e, 200.0, "AAPL");
        assert_eq!(e.keys().get("X"), None);
        assert!(e.restore(b"not a snapshot").is_err());
        assert_eq!(
            e.keys().get("AAPL"),
            Some(aapl),
            "a failed restore changes nothing"
        );
    }
}
