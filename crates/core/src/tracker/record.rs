//! Per-key records in a slab, addressed by `u32` id plus a generation.
//!
//! Invariants: a record is live iff `flags & LIVE`; a freed slot keeps its
//! (incremented) generation so that stale [`TrackedKey`]s and successor
//! references to it fail validation; `live` counts live records.

use super::coaccess::Successors;
use crate::keys::KeyId;

/// The key of a free slot.
pub(crate) const NO_KEY: KeyId = KeyId(u32::MAX);
/// No profile assigned.
pub(crate) const NO_PROFILE: u32 = u32::MAX;
/// Empty group slot.
pub(crate) const NO_GROUP: u16 = u16::MAX;
/// Groups a key can belong to at once (further memberships are ignored).
pub const MAX_GROUPS_PER_KEY: usize = 4;

pub(crate) const LIVE: u8 = 1;
pub(crate) const IN_TOP: u8 = 2;
pub(crate) const IN_TRENDING: u8 = 4;
pub(crate) const PROFILE_WAIT: u8 = 8;

/// A record handle, held in the tracker's own lists (candidates,
/// trending, sessions, profile owners): cheap to copy, validated on use, so
/// it answers `None` once its key was evicted and the slot reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TrackedKey {
    pub(crate) id: u32,
    pub(crate) generation: u32,
}

/// Everything learned about one key (at most 112 bytes).
#[derive(Debug, Clone)]
pub(crate) struct KeyRecord {
    /// The key (`NO_KEY` while the slot is free).
    pub key: KeyId,
    /// Popularity, forward-scaled at the popularity rate.
    pub pop: f64,
    /// Baseline count, forward-scaled at the long rate.
    pub long: f64,
    /// Last access, Unix seconds.
    pub last_s: f64,
    /// Short trending count, forward-scaled at the short rate.
    pub short: f32,
    /// Incremented whenever the slot is freed.
    pub generation: u32,
    /// Index into the profile slab, or [`NO_PROFILE`].
    pub profile: u32,
    /// Top successors.
    pub succ: Successors,
    /// Group ids, [`NO_GROUP`] for empty slots.
    pub groups: [u16; MAX_GROUPS_PER_KEY],
    /// `LIVE | IN_TOP | IN_TRENDING | PROFILE_WAIT`.
    pub flags: u8,
}

impl KeyRecord {
    fn vacant(generation: u32) -> Self {
        KeyRecord {
            key: NO_KEY,
            pop: 0.0,
            long: 0.0,
            last_s: 0.0,
            short: 0.0,
            generation,
            profile: NO_PROFILE,
            succ: Successors::default(),
            groups: [NO_GROUP; MAX_GROUPS_PER_KEY],
            flags: 0,
        }
    }

    #[inline]
    pub fn is_live(&self) -> bool {
        self.flags & LIVE != 0
    }

    /// Whether the key is in group `g`.
    pub fn has_group(&self, g: u16) -> bool {
        self.groups.contains(&g)
    }

    /// Adds group `g` if there is room; returns whether it is a member now.
    pub fn add_group(&mut self, g: u16) -> bool {
        if self.has_group(g) {
            return true;
        }
        match self.groups.iter_mut().find(|s| **s == NO_GROUP) {
            Some(slot) => {
                *slot = g;
                true
            }
            None => false,
        }
    }
}

/// Before a push: doubles the capacity of a full `v`, but not past `cap`
/// elements, so a slab filled to its cap wastes no doubling slack.
pub(crate) fn reserve_capped<T>(v: &mut Vec<T>, cap: usize) {
    if v.len() == v.capacity() {
        let target = (v.capacity() * 2).max(16).min(cap.max(v.len() + 1));
        v.reserve_exact(target - v.len());
    }
}

/// The slab of records with a free list.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slab {
    pub records: Vec<KeyRecord>,
    free: Vec<u32>,
    live: usize,
}

impl Slab {
    pub fn live(&self) -> usize {
        self.live
    }

    /// A handle to live record `id`.
    pub fn handle(&self, id: u32) -> TrackedKey {
        TrackedKey {
            id,
            generation: self.records[id as usize].generation,
        }
    }

    /// The record of `key` if it is still the same live key.
    #[inline]
    pub fn get(&self, key: TrackedKey) -> Option<&KeyRecord> {
        self.records
            .get(key.id as usize)
            .filter(|r| r.is_live() && r.generation == key.generation)
    }

    /// Takes a free slot (or grows, never past `max_keys` slots of
    /// capacity) for a new key; returns its id.
    pub fn alloc(&mut self, key: KeyId, now_s: f64, max_keys: usize) -> u32 {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                reserve_capped(&mut self.records, max_keys);
                self.records.push(KeyRecord::vacant(0));
                (self.records.len() - 1) as u32
            }
        };
        let r = &mut self.records[id as usize];
        r.key = key;
        r.last_s = now_s;
        r.flags = LIVE;
        self.live += 1;
        id
    }

    /// Frees live record `id`; returns the old record (for cleanup of the
    /// index, profile and lists by the caller).
    pub fn release(&mut self, id: u32) -> KeyRecord {
        let r = &mut self.records[id as usize];
        let next_gen = r.generation.wrapping_add(1);
        let old = std::mem::replace(r, KeyRecord::vacant(next_gen));
        self.free.push(id);
        self.live -= 1;
        old
    }

    /// Bytes held on the heap: the record array and the free list (key
    /// strings live in the engine's key table).
    pub fn heap_bytes(&self) -> usize {
        self.records.capacity() * size_of::<KeyRecord>() + self.free.capacity() * 4
    }

    /// Rebuilds a slab from decoded records (free slots are those not live).
    pub fn from_records(records: Vec<KeyRecord>) -> Self {
        let free: Vec<u32> = (0..records.len() as u32)
            .rev()
            .filter(|&i| !records[i as usize].is_live())
            .collect();
        let live = records.len() - free.len();
        Slab {
            records,
            free,
            live,
        }
    }

    /// A vacant record with the given generation (for decoding free slots).
    pub fn vacant_record(generation: u32) -> KeyRecord {
        KeyRecord::vacant(generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_stays_compact() {
        assert!(
            size_of::<KeyRecord>() <= 112,
            "KeyRecord is {} bytes",
            size_of::<KeyRecord>()
        );
    }

    #[test]
    fn released_slot_invalidates_old_handles() {
        let mut s = Slab::default();
        let a = s.alloc(KeyId(0), 0.0, 10);
        let h = s.handle(a);
        assert!(s.get(h).is_some());
        s.release(a);
        assert!(s.get(h).is_none());
        let b = s.alloc(KeyId(1), 0.0, 10);
        assert_eq!(a, b, "slot is reused");
        assert!(s.get(h).is_none(), "old handle must not see the new key");
        assert_eq!(s.get(s.handle(b)).unwrap().key, KeyId(1));
    }

    #[test]
    fn groups_are_bounded() {
        let mut r = KeyRecord::vacant(0);
        for g in 0..MAX_GROUPS_PER_KEY as u16 {
            assert!(r.add_group(g));
        }
        assert!(!r.add_group(99));
        assert!(r.add_group(0), "existing membership stays");
    }
}
