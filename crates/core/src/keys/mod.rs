//! Key identity: one dense [`KeyId`] per key, issued by a [`KeyTable`].
//!
//! Inside the engine a key is only ever a `KeyId`: the cache model, the
//! tracker, the strategies and the planner all take and return ids. Key
//! strings appear only at the edges (parsing a trace or a request, the
//! monitoring API, the snapshot), through the table.
//!
//! Invariants:
//! - a live id names exactly one key string, and a string at most one live
//!   id;
//! - an id is released only by the engine, and only when nothing refers to
//!   it any more (see `engine::keys`); its slot is then reused, most
//!   recently released first, so every per-key vector indexed by id stays
//!   as long as the most keys ever live at once, not as long as every key
//!   ever seen;
//! - each release bumps the id's generation: a [`KeyStamp`] (id and
//!   generation) kept across engine calls tells whether the id still names
//!   the key it was issued for.

mod index;

use index::{KeyIndex, hash_key};

/// A dense id for a key, issued by a [`KeyTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl KeyId {
    /// The id as a vector index.
    #[inline]
    pub fn ix(self) -> usize {
        self.0 as usize
    }
}

/// A key id with the generation it was issued in. Drivers that keep ids
/// across engine calls keep stamps, and check them with
/// [`KeyTable::is_current`] (an id may be released and reused meanwhile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyStamp {
    /// The id.
    pub id: KeyId,
    /// Its generation when stamped.
    pub generation: u32,
}

impl KeyStamp {
    /// Generation and id in one `u64` (`generation << 32 | id`): the id
    /// itself for a key whose slot was never reused.
    #[inline]
    pub fn to_u64(self) -> u64 {
        u64::from(self.generation) << 32 | u64::from(self.id.0)
    }
}

/// One id's slot: its key (`None` while released), the key's hash and the
/// slot's generation.
#[derive(Debug, Clone, Default)]
struct Slot {
    name: Option<Box<str>>,
    hash: u32,
    generation: u32,
}

/// Interns key strings to dense ids; released ids are reused (see the
/// module docs).
#[derive(Debug, Clone, Default)]
pub struct KeyTable {
    index: KeyIndex,
    slots: Vec<Slot>,
    /// Released ids, the most recent last.
    free: Vec<u32>,
    /// Sum of the lengths of live keys.
    name_bytes: usize,
}

impl KeyTable {
    /// The id of `key`, issuing one on first sight (a released id if there
    /// is one). Panics past 2^32 - 1 live keys.
    pub fn intern(&mut self, key: &str) -> KeyId {
        let hash = hash_key(key);
        if let Some(id) = self.find(key, hash) {
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                let id = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&id| id != u32::MAX)
                    .expect("more than 2^32 - 1 live keys");
                self.slots.push(Slot::default());
                id
            }
        };
        let slot = &mut self.slots[id as usize];
        slot.name = Some(key.into());
        slot.hash = hash;
        self.name_bytes += key.len();
        let slots = &self.slots;
        self.index.insert(hash, id, |x| slots[x as usize].hash);
        KeyId(id)
    }

    #[inline]
    fn find(&self, key: &str, hash: u32) -> Option<KeyId> {
        let slots = &self.slots;
        self.index
            .find(hash, |id| {
                let s = &slots[id as usize];
                s.hash == hash && s.name.as_deref() == Some(key)
            })
            .map(KeyId)
    }

    /// The id of `key` if it is interned.
    pub fn get(&self, key: &str) -> Option<KeyId> {
        self.find(key, hash_key(key))
    }

    /// The key string of `id`; empty if `id` is not live (released, or
    /// never issued).
    pub fn name(&self, id: KeyId) -> &str {
        self.slots
            .get(id.ix())
            .and_then(|s| s.name.as_deref())
            .unwrap_or("")
    }

    /// Whether `id` names a key now.
    pub fn is_live(&self, id: KeyId) -> bool {
        self.slots.get(id.ix()).is_some_and(|s| s.name.is_some())
    }

    /// `id` with its current generation.
    #[inline]
    pub fn stamp(&self, id: KeyId) -> KeyStamp {
        KeyStamp {
            id,
            generation: self.slots.get(id.ix()).map_or(0, |s| s.generation),
        }
    }

    /// Whether `stamp` still names the key it was issued for.
    #[inline]
    pub fn is_current(&self, stamp: KeyStamp) -> bool {
        self.slots
            .get(stamp.id.ix())
            .is_some_and(|s| s.generation == stamp.generation && s.name.is_some())
    }

    /// Releases live `id`: its key is forgotten, its generation bumped, and
    /// the id is issued again to a later key. Only the engine calls this,
    /// once nothing refers to `id`. Returns whether `id` was live.
    pub(crate) fn release(&mut self, id: KeyId) -> bool {
        let Some(slot) = self.slots.get_mut(id.ix()) else {
            return false;
        };
        let Some(name) = slot.name.take() else {
            return false;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.name_bytes -= name.len();
        let slots = &self.slots;
        self.index
            .remove(slots[id.ix()].hash, id.0, |x| slots[x as usize].hash);
        self.free.push(id.0);
        true
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether no key is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One past the highest id ever issued: the length of every per-key
    /// vector indexed by id (bounded by the most keys live at once).
    pub fn id_bound(&self) -> usize {
        self.slots.len()
    }

    /// The live ids, in id order.
    pub fn ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.name.is_some())
            .map(|(i, _)| KeyId(i as u32))
    }

    /// Estimated heap bytes: slots, index, free list and key strings.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>()
            + self.index.heap_bytes()
            + self.free.capacity() * 4
            + self.name_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_table_interns_once() {
        let mut t = KeyTable::default();
        let a = t.intern("AAPL");
        assert_eq!(t.intern("AAPL"), a);
        assert_ne!(t.intern("MSFT"), a);
        assert_eq!(t.name(a), "AAPL");
        assert_eq!(t.get("NOPE"), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn released_ids_are_reused_under_a_new_generation() {
        let mut t = KeyTable::default();
        let a = t.intern("AAPL");
        let m = t.intern("MSFT");
        let stamp = t.stamp(a);
        assert!(t.is_current(stamp));
        assert!(t.release(a));
        assert!(!t.release(a), "released once");
        assert!(!t.is_current(stamp) && !t.is_live(a));
        assert_eq!((t.get("AAPL"), t.name(a), t.len()), (None, "", 1));
        let x = t.intern("XOM");
        assert_eq!(x, a, "the released id is issued again");
        assert!(!t.is_current(stamp), "the old stamp names the old key");
        assert!(t.is_current(t.stamp(x)));
        assert_eq!(
            (t.name(x), t.get("MSFT"), t.id_bound()),
            ("XOM", Some(m), 2)
        );
        assert_eq!(t.ids().collect::<Vec<_>>(), [a, m]);
    }

    #[test]
    fn a_stamp_of_a_never_reused_id_is_the_id() {
        let mut t = KeyTable::default();
        let a = t.intern("A");
        assert_eq!(t.stamp(a).to_u64(), u64::from(a.0));
    }

    #[test]
    fn memory_follows_live_keys() {
        let mut t = KeyTable::default();
        for round in 0..50 {
            let ids: Vec<KeyId> = (0..100)
                .map(|i| t.intern(&format!("K{round}-{i}")))
                .collect();
            for id in ids {
                assert!(t.release(id));
            }
        }
        assert!(t.is_empty());
        assert_eq!(t.id_bound(), 100, "5,000 keys seen, at most 100 at once");
    }
}
