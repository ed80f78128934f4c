//! The key index: an open-addressing hash table of key ids.
//!
//! Each bucket holds only a `u32` id (4 bytes), the key string and its
//! 32-bit hash live once in the key table, so the index costs about 8 bytes
//! per key instead of the ~50 of a `HashMap<Box<str>, u32>` at the same
//! load. Linear probing with Fibonacci hashing; deletion shifts entries
//! back (no tombstones), so probe lengths stay short however long it runs.
//! Invariant: `len <= capacity * 3 / 4` and every stored id is distinct.

use std::hash::BuildHasher;

const EMPTY: u32 = u32::MAX;
const MIN_BUCKETS: usize = 16;

/// The 32-bit hash of a key string that the index and the table store.
#[inline]
pub(crate) fn hash_key(key: &str) -> u32 {
    let h = rustc_hash::FxBuildHasher.hash_one(key);
    (h ^ (h >> 32)) as u32
}

#[derive(Debug, Clone)]
pub(crate) struct KeyIndex {
    buckets: Vec<u32>,
    shift: u32,
    len: usize,
}

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex {
            buckets: vec![EMPTY; MIN_BUCKETS],
            shift: 32 - MIN_BUCKETS.trailing_zeros(),
            len: 0,
        }
    }
}

impl KeyIndex {
    #[inline]
    fn home(&self, hash: u32) -> usize {
        (hash.wrapping_mul(0x9E37_79B9) >> self.shift) as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes held by the bucket array.
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * 4
    }

    /// The id that matches (`is_match(id)`), probing from `hash`.
    #[inline]
    pub fn find(&self, hash: u32, mut is_match: impl FnMut(u32) -> bool) -> Option<u32> {
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            let id = self.buckets[i];
            if id == EMPTY {
                return None;
            }
            if is_match(id) {
                return Some(id);
            }
            i = (i + 1) & mask;
        }
    }

    /// Inserts `id` (absent) under `hash`. `hash_of` gives the stored hash
    /// of any id already present, for growing.
    pub fn insert(&mut self, hash: u32, id: u32, hash_of: impl Fn(u32) -> u32) {
        if (self.len + 1) * 4 > self.buckets.len() * 3 {
            self.grow(&hash_of);
        }
        self.place(hash, id);
        self.len += 1;
    }

    fn place(&mut self, hash: u32, id: u32) {
        let mask = self.mask();
        let mut i = self.home(hash);
        while self.buckets[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.buckets[i] = id;
    }

    fn grow(&mut self, hash_of: &impl Fn(u32) -> u32) {
        let new_len = self.buckets.len() * 2;
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; new_len]);
        self.shift = 32 - new_len.trailing_zeros();
        for id in old.into_iter().filter(|&id| id != EMPTY) {
            self.place(hash_of(id), id);
        }
    }

    /// Removes `id` stored under `hash`; returns whether it was present.
    pub fn remove(&mut self, hash: u32, id: u32, hash_of: impl Fn(u32) -> u32) -> bool {
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            match self.buckets[i] {
                EMPTY => return false,
                x if x == id => break,
                _ => i = (i + 1) & mask,
            }
        }
        // Backward-shift deletion: move later entries of the run into the
        // hole when their home does not lie cyclically in (hole, j].
        let mut hole = i;
        let mut j = (i + 1) & mask;
        while self.buckets[j] != EMPTY {
            let home = self.home(hash_of(self.buckets[j]));
            let dist_home = j.wrapping_sub(home) & mask;
            let dist_hole = j.wrapping_sub(hole) & mask;
            if dist_home >= dist_hole {
                self.buckets[hole] = self.buckets[j];
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.buckets[hole] = EMPTY;
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn behaves_like_a_set(ops in proptest::collection::vec((0u32..64, any::<bool>()), 0..400)) {
            // Tiny hash space forces collisions and long runs.
            let hash_of = |id: u32| id % 7;
            let mut idx = KeyIndex::default();
            let mut model = std::collections::BTreeSet::new();
            for (id, insert) in ops {
                if insert {
                    if model.insert(id) {
                        idx.insert(hash_of(id), id, hash_of);
                    }
                } else {
                    prop_assert_eq!(idx.remove(hash_of(id), id, hash_of), model.remove(&id));
                }
                prop_assert_eq!(idx.len(), model.len());
                for probe in 0..64u32 {
                    let found = idx.find(hash_of(probe), |x| x == probe);
                    prop_assert_eq!(found.is_some(), model.contains(&probe));
                }
            }
        }
    }

    #[test]
    fn hash_key_differs_for_similar_tickers() {
        assert_ne!(hash_key("AAPL"), hash_key("AAPM"));
        assert_eq!(hash_key("MSFT"), hash_key("MSFT"));
    }
}
