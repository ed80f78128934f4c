//! Groups (tags such as a sector): decayed share of all accesses, short
//! against long, and learned membership.
//!
//! Shares are ratios of forward-scaled sums at the same rate, so they need
//! no decay at query time: `share_short = short / total_short`. Member lists
//! are validated on read (live key, same generation, key still lists the
//! group) and compacted by `maintain`.

use super::record::{MAX_GROUPS_PER_KEY, NO_GROUP, Slab, TrackedKey};
use rustc_hash::FxHashMap;

/// One group's state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroupState {
    pub name: Box<str>,
    /// Forward-scaled accesses at the group-short rate.
    pub short: f64,
    /// Forward-scaled accesses at the long rate.
    pub long: f64,
    pub members: Vec<TrackedKey>,
}

/// The group registry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Groups {
    pub by_name: FxHashMap<Box<str>, u16>,
    pub list: Vec<GroupState>,
    /// Forward-scaled accesses of every key at the group-short rate.
    pub total_short: f64,
    /// Forward-scaled accesses of every key at the long rate.
    pub total_long: f64,
}

impl Groups {
    /// The id of group `name`, created if there is room under `max_groups`.
    pub fn intern(&mut self, name: &str, max_groups: usize) -> Option<u16> {
        if let Some(&g) = self.by_name.get(name) {
            return Some(g);
        }
        if self.list.len() >= max_groups.min(NO_GROUP as usize) {
            return None;
        }
        let g = self.list.len() as u16;
        self.by_name.insert(Box::from(name), g);
        self.list.push(GroupState {
            name: Box::from(name),
            short: 0.0,
            long: 0.0,
            members: Vec::new(),
        });
        Some(g)
    }

    pub fn find(&self, name: &str) -> Option<u16> {
        self.by_name.get(name).copied()
    }

    /// Counts one access of a key in `groups` (weights at the group-short
    /// and long rates).
    #[inline]
    pub fn on_access(&mut self, groups: &[u16; MAX_GROUPS_PER_KEY], w_short: f64, w_long: f64) {
        self.total_short += w_short;
        self.total_long += w_long;
        for &g in groups.iter().filter(|&&g| g != NO_GROUP) {
            let s = &mut self.list[g as usize];
            s.short += w_short;
            s.long += w_long;
        }
    }

    /// Makes record `key` a member of `g` (on the key and in the list).
    pub fn join(&mut self, slab: &mut Slab, key: TrackedKey, g: u16) {
        let r = &mut slab.records[key.id as usize];
        if !r.has_group(g) && r.add_group(g) {
            self.list[g as usize].members.push(key);
        }
    }

    /// Live, deduplicated members of `g`.
    pub fn members(&self, slab: &Slab, g: u16) -> Vec<TrackedKey> {
        let mut m: Vec<TrackedKey> = self.list[g as usize]
            .members
            .iter()
            .copied()
            .filter(|&k| slab.get(k).is_some_and(|r| r.has_group(g)))
            .collect();
        m.sort_unstable_by_key(|k| k.id);
        m.dedup();
        m
    }

    pub fn scale(&mut self, f_short: f64, f_long: f64) {
        self.total_short *= f_short;
        self.total_long *= f_long;
        for s in &mut self.list {
            s.short *= f_short;
            s.long *= f_long;
        }
    }

    pub fn heap_bytes(&self) -> usize {
        let names: usize = self.list.iter().map(|g| 2 * g.name.len()).sum();
        let members: usize = self
            .list
            .iter()
            .map(|g| g.members.capacity() * size_of::<TrackedKey>())
            .sum();
        self.by_name.capacity() * (size_of::<(Box<str>, u16)>() + 1)
            + self.list.capacity() * size_of::<GroupState>()
            + names
            + members
    }
}
