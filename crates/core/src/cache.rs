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
//!
//! The model also settles warming fetches ([`CacheModel::take_wasted`]): a
//! warming fetch whose entry leaves the cache without having served a hit
//! (expired, replaced by a newer fetch, evicted, removed) is *wasted* at
//! that moment; one whose entry is still fresh and unused is neither used
//! nor wasted yet.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

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
    /// Whether it was settled as a wasted warming fetch (it expired
    /// unused); never together with a counted first hit.
    pub wasted: bool,
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

    /// The strategy of a warming fetch not settled yet (neither used nor
    /// wasted), else `None`.
    fn unsettled_warm(&self) -> Option<StrategyId> {
        match self.origin {
            FetchOrigin::Warm(s) if !self.used && !self.wasted => Some(s),
            _ => None,
        }
    }
}

/// When a warming fetch's entry expires: (expiry, key, fetch time; the
/// fetch time tells the entry from a later one of the same key).
#[derive(Debug, Clone, Copy, PartialEq)]
struct WarmExpiry {
    expires_at_s: UnixSeconds,
    key: KeyId,
    fetched_at_s: UnixSeconds,
}

impl Eq for WarmExpiry {}

impl Ord for WarmExpiry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.expires_at_s
            .total_cmp(&other.expires_at_s)
            .then(self.key.0.cmp(&other.key.0))
            .then(self.fetched_at_s.total_cmp(&other.fetched_at_s))
    }
}

impl PartialOrd for WarmExpiry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
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
    /// Expiries of warming fetches' entries, soonest first.
    warm_expiries: BinaryHeap<Reverse<WarmExpiry>>,
    /// Wasted warming fetches not taken yet: (strategy, when).
    wasted: Vec<(StrategyId, UnixSeconds)>,
    /// The latest instant the model was told of.
    latest_s: UnixSeconds,
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
            warm_expiries: BinaryHeap::new(),
            wasted: Vec::new(),
            latest_s: f64::NEG_INFINITY,
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
    /// was its first hit (never for an entry already settled as wasted: a
    /// late report of a hit on it).
    pub fn mark_used(&mut self, key: KeyId) -> bool {
        match self.slots.get_mut(key.ix()).and_then(|s| s.entry.as_mut()) {
            Some(e) if !e.used => {
                e.used = true;
                !e.wasted
            }
            _ => false,
        }
    }

    /// The warming fetches wasted up to `now_s`, each as (strategy, when),
    /// once: those whose entry left the cache unused since the last call
    /// (replaced, evicted, removed) and those whose entry expired unused
    /// by `now_s` (at its expiry). A warming fetch in the cache, fresh and
    /// unused, is in neither (pending).
    pub fn take_wasted(&mut self, now_s: UnixSeconds) -> Vec<(StrategyId, UnixSeconds)> {
        self.latest_s = self.latest_s.max(now_s);
        while let Some(Reverse(x)) = self.warm_expiries.peek().copied() {
            if x.expires_at_s > now_s {
                break;
            }
            self.warm_expiries.pop();
            let slot = self
                .slots
                .get_mut(x.key.ix())
                .and_then(|s| s.entry.as_mut());
            if let Some(e) = slot.filter(|e| e.fetched_at_s == x.fetched_at_s)
                && let Some(s) = e.unsettled_warm()
            {
                e.wasted = true;
                self.wasted.push((s, e.expires_at_s));
            }
        }
        std::mem::take(&mut self.wasted)
    }

    /// Notes that `e` left the cache at `now_s`: wasted if it was a warming
    /// fetch never used (when it expired, if that came first).
    fn left(&mut self, e: &CachedEntry, now_s: UnixSeconds) {
        if let Some(s) = e.unsettled_warm() {
            self.wasted.push((s, now_s.min(e.expires_at_s)));
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
            wasted: false,
        };
        self.latest_s = self.latest_s.max(now_s);
        if let FetchOrigin::Warm(_) = origin {
            self.warm_expiries.push(Reverse(WarmExpiry {
                expires_at_s: new.expires_at_s,
                key,
                fetched_at_s: now_s,
            }));
        }
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
        if let Some(e) = replaced {
            self.left(&e, now_s);
        }
        if let Some((_, e)) = evicted {
            self.left(&e, now_s);
        }
        Displaced { replaced, evicted }
    }

    /// Removes the entry of `key` (e.g. the daemon's store evicted it);
    /// an unused warming fetch's entry is wasted at the latest instant the
    /// model was told of ([`CacheModel::take_wasted`]).
    pub fn remove(&mut self, key: KeyId) -> Option<CachedEntry> {
        let e = self.slots.get_mut(key.ix())?.entry.take()?;
        self.len -= 1;
        if self.capacity.is_some() {
            self.unlink(key.0);
        }
        self.left(&e, self.latest_s);
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
mod tests;
