//! The engine's model of what is cached.
//!
//! This is the only place that decides freshness: an entry fetched at `f` is
//! fresh at `t` iff `f <= t < expiry`, where `expiry` is
//! [`crate::ttl::TtlRule::expires_at`]`(f)` (`f + ttl_s` under a flat TTL:
//! replay semantics, glossary), the rule [`is_fresh`] and
//! [`is_fresh_until`] that the replay and the daemon's read path call too.
//! The model computes an entry's expiry once, when it is stored. Hits
//! never extend freshness. With a capacity, entries are kept in LRU order of
//! access and insertion; stale entries occupy room until evicted.
//!
//! Keys are dense [`KeyId`]s from a [`KeyTable`]; the model stores a small
//! fixed-size slot per key, so a lookup is an index, not a hash.

use crate::UnixSeconds;
use crate::strategy::StrategyId;
use crate::time::{Seconds, UnixInstant};
use crate::ttl::{TtlPolicy, TtlRule};

pub use crate::keys::{KeyId, KeyStamp, KeyTable};

/// Who made the fetch that produced an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOrigin {
    /// A demand fetch after a miss.
    Demand,
    /// A warming fetch, charged to a strategy.
    Warm(StrategyId),
}

/// What the model holds for a key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CachedEntry {
    /// When the entry was fetched.
    pub fetched_at_s: UnixSeconds,
    /// When it stops being fresh ([`TtlRule::expires_at`] of its fetch).
    pub expires_at_s: UnixSeconds,
    /// Who fetched it.
    pub origin: FetchOrigin,
    /// Whether it has served a hit since it was fetched.
    pub used: bool,
}

impl CachedEntry {
    /// Whether the entry is fresh at `now` ([`is_fresh_until`]).
    #[inline]
    pub fn is_fresh(&self, now: UnixInstant) -> bool {
        is_fresh_until(
            UnixInstant(self.fetched_at_s),
            UnixInstant(self.expires_at_s),
            now,
        )
    }

    /// Seconds the entry is fresh for in all (`expires_at_s - fetched_at_s`).
    pub fn life_s(&self) -> f64 {
        self.expires_at_s - self.fetched_at_s
    }
}

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Slot {
    entry: Option<CachedEntry>,
    prev: u32,
    next: u32,
}

const EMPTY: Slot = Slot {
    entry: None,
    prev: NIL,
    next: NIL,
};

/// The freshness of a key at an instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Freshness {
    /// Fresh: a request now is a hit.
    Fresh(CachedEntry),
    /// Present but stale.
    Stale(CachedEntry),
    /// Not cached.
    Absent,
}

/// The cache model: per-key slots with optional LRU capacity in entries.
#[derive(Debug, Clone)]
pub struct CacheModel {
    ttl: TtlRule,
    capacity: Option<usize>,
    slots: Vec<Slot>,
    len: usize,
    head: u32,
    tail: u32,
}

impl CacheModel {
    /// A model whose entries expire by `ttl` (a [`TtlRule`], or a flat
    /// TTL in seconds), holding at most `capacity` entries (`None`:
    /// unlimited).
    pub fn new(ttl: impl Into<TtlRule>, capacity: Option<usize>) -> Self {
        CacheModel {
            ttl: ttl.into(),
            capacity,
            slots: Vec::new(),
            len: 0,
            head: NIL,
            tail: NIL,
        }
    }

    /// The TTL rule entries expire by.
    pub fn ttl_rule(&self) -> &TtlRule {
        &self.ttl
    }

    /// Seconds an entry fetched at `at_s` stays fresh
    /// ([`TtlRule::ttl_at`]).
    pub fn ttl_at(&self, at_s: UnixSeconds) -> f64 {
        self.ttl.ttl_at(at_s)
    }

    /// Entries held (fresh or stale).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every key with an entry (fresh or stale), in id order.
    pub fn keys(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.entry.is_some())
            .map(|(i, _)| KeyId(i as u32))
    }

    /// The entry of `key`, fresh or not.
    pub fn entry(&self, key: KeyId) -> Option<CachedEntry> {
        self.slots.get(key.ix()).and_then(|s| s.entry)
    }

    /// Every entry held (fresh or stale), by key id.
    pub fn entries(&self) -> impl Iterator<Item = (KeyId, CachedEntry)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.entry.map(|e| (KeyId(i as u32), e)))
    }

    /// Freshness of `key` at `now_s`.
    pub fn freshness(&self, key: KeyId, now_s: UnixSeconds) -> Freshness {
        match self.entry(key) {
            None => Freshness::Absent,
            Some(e) if e.is_fresh(UnixInstant(now_s)) => Freshness::Fresh(e),
            Some(e) => Freshness::Stale(e),
        }
    }

    /// Whether `key` has an entry fresh at `at` (which may be ahead of now:
    /// a candidate asks whether the entry lasts until it is needed).
    pub fn is_fresh_at(&self, key: KeyId, at: UnixInstant) -> bool {
        self.entry(key).is_some_and(|e| e.is_fresh(at))
    }

    /// Whether `key` has an entry that has not expired by `now`: fresh, or
    /// fetched after `now` (a driver's clocks may disagree by a little).
    pub fn holds_unexpired(&self, key: KeyId, now: UnixInstant) -> bool {
        self.entry(key).is_some_and(|e| now.0 < e.expires_at_s)
    }

    /// Whether a fetch of `key` landing at `at_s` would expire later than
    /// the entry it replaces (always when there is none). Always under a
    /// flat TTL; under a TTL by session not for a fetch in a closed spell
    /// under `until_open` while the entry already lasts to the open.
    pub fn fetch_would_extend(&self, key: KeyId, at_s: UnixSeconds) -> bool {
        match (self.entry(key), self.ttl.policy()) {
            (None, _) | (Some(_), TtlPolicy::Flat(_)) => true,
            (Some(e), TtlPolicy::BySession(_)) => self.ttl.expires_at(at_s) > e.expires_at_s,
        }
    }

    /// Seconds the entry of `key` stays fresh after `now_s` (0 if not fresh).
    pub fn fresh_for_s(&self, key: KeyId, now_s: UnixSeconds) -> f64 {
        match self.freshness(key, now_s) {
            Freshness::Fresh(e) => e.expires_at_s - now_s,
            _ => 0.0,
        }
    }

    /// Marks the entry of `key` as having served a hit. Returns whether this
    /// was its first hit.
    pub fn mark_used(&mut self, key: KeyId) -> bool {
        match self.slots.get_mut(key.ix()).and_then(|s| s.entry.as_mut()) {
            Some(e) if !e.used => {
                e.used = true;
                true
            }
            _ => false,
        }
    }

    /// Records an access for LRU order.
    pub fn touch(&mut self, key: KeyId) {
        if self.capacity.is_some() && self.entry(key).is_some() {
            self.unlink(key.0);
            self.push_front(key.0);
        }
    }

    /// Stores a fetch of `key` at `now_s`. Returns the entries that left the
    /// cache: the one it replaced (if any) and the one evicted for room.
    pub fn insert(&mut self, key: KeyId, now_s: UnixSeconds, origin: FetchOrigin) -> Displaced {
        if self.slots.len() <= key.ix() {
            self.slots.resize(key.ix() + 1, EMPTY);
        }
        let new = CachedEntry {
            fetched_at_s: now_s,
            expires_at_s: self.ttl.expires_at(now_s),
            origin,
            used: false,
        };
        let replaced = self.slots[key.ix()].entry.replace(new);
        let mut evicted = None;
        if replaced.is_none() {
            self.len += 1;
            if self.capacity.is_some() {
                self.push_front(key.0);
            }
        } else {
            self.touch(key);
        }
        if let Some(cap) = self.capacity
            && self.len > cap
        {
            let victim = self.tail;
            self.unlink(victim);
            let e = self.slots[victim as usize].entry.take();
            self.len -= 1;
            evicted = e.map(|e| (KeyId(victim), e));
        }
        Displaced { replaced, evicted }
    }

    /// Removes the entry of `key` (e.g. the daemon's store evicted it).
    pub fn remove(&mut self, key: KeyId) -> Option<CachedEntry> {
        let e = self.slots.get_mut(key.ix())?.entry.take()?;
        self.len -= 1;
        if self.capacity.is_some() {
            self.unlink(key.0);
        }
        Some(e)
    }

    fn unlink(&mut self, k: u32) {
        let Slot { prev, next, .. } = self.slots[k as usize];
        if prev != NIL {
            self.slots[prev as usize].next = next;
        } else if self.head == k {
            self.head = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        } else if self.tail == k {
            self.tail = prev;
        }
        self.slots[k as usize].prev = NIL;
        self.slots[k as usize].next = NIL;
    }

    fn push_front(&mut self, k: u32) {
        self.slots[k as usize].prev = NIL;
        self.slots[k as usize].next = self.head;
        if self.head != NIL {
            self.slots[self.head as usize].prev = k;
        }
        self.head = k;
        if self.tail == NIL {
            self.tail = k;
        }
    }
}

/// What left the cache when an entry was stored.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Displaced {
    /// The previous entry of the same key.
    pub replaced: Option<CachedEntry>,
    /// An entry of another key evicted for room.
    pub evicted: Option<(KeyId, CachedEntry)>,
}

/// The freshness rule, the only copy of it: an entry fetched at
/// `fetched_at` is fresh at `now` iff `fetched_at <= now < fetched_at +
/// ttl` (so never before its fetch, and a never-fetched key, fetched at
/// minus infinity, never). The replay, the daemon's read path and the
/// engine all call this.
#[inline]
pub fn is_fresh(fetched_at: UnixInstant, ttl: Seconds, now: UnixInstant) -> bool {
    is_fresh_until(fetched_at, fetched_at + ttl, now)
}

/// The freshness rule with the expiry already known (from
/// [`TtlRule::expires_at`]): fresh at `now` iff `fetched_at <= now <
/// expires_at`. [`is_fresh`] is this with `expires_at = fetched_at + ttl`.
#[inline]
pub fn is_fresh_until(fetched_at: UnixInstant, expires_at: UnixInstant, now: UnixInstant) -> bool {
    fetched_at <= now && now < expires_at
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
