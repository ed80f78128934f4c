//! Releasing key ids: the key table is bounded with the tracker.
//!
//! Invariant: a key stays interned (its id names it) while anything in the
//! engine refers to it:
//! - the tracker tracks it;
//! - the cache model, or the cost governor's no-warming shadow, holds an
//!   entry of it that has not expired;
//! - a warming fetch of it is in flight;
//! - the planner queues a candidate for it.
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
            || self.in_flight.contains(&key)
            || self.planner.queued_for(key) > 0
            || self.cache.holds_unexpired(key, UnixInstant(now_s))
            || self.cost.holds_unexpired(key, now_s, self.cfg.ttl_s)
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
        debug_assert!(!self.tracker.is_tracked(key) && !self.in_flight.contains(&key));
        self.cache.remove(key);
        self.cost.forget(key);
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
