//! Periodic upkeep and statistics.
//!
//! `maintain` is cheap enough to call every minute: apart from the rare
//! rebase (O(keys), every couple of hours at the default trending window)
//! each step is bounded: the forget sweep visits a slice of the slab per
//! call, the trending list holds only recently active keys, profile
//! reassignment runs only while keys wait for a profile.

use super::decay::SOFT_REBASE_EXPONENT;
use super::popular::TOP_CANDIDATES;
use super::record::{IN_TRENDING, NO_PROFILE, PROFILE_WAIT, TrackedKey};
use super::{NameKeys, Tracker, TrackerStats};
use crate::keys::KeyTable;

/// Member entries of group lists compacted per `maintain` call at most.
const GROUP_COMPACT_BUDGET: usize = 1 << 16;

impl Tracker {
    /// Periodic upkeep at `now_s`: rebase of decayed counts when due, day
    /// counters, a slice of the forget sweep (keys idle longer than
    /// `forget_after_s`), pruning of the trending list, repair of the
    /// popularity candidates, profile reassignment from the coldest
    /// profiled keys to hotter waiting ones, and group list compaction.
    pub fn maintain(&mut self, now_s: f64) {
        if !now_s.is_finite() {
            return;
        }
        if now_s > self.last_now_s {
            self.last_now_s = now_s;
        }
        if self.decay.exponent(now_s) > SOFT_REBASE_EXPONENT {
            self.rebase(now_s);
        }
        self.local_day(now_s);
        self.forget_sweep(now_s);
        self.prune_trending(now_s);
        let live_members = self.top.live_members(&self.slab);
        if live_members < TOP_CANDIDATES.min(self.slab.live()) / 2 {
            self.top.rebuild(&mut self.slab);
        }
        self.reassign_profiles();
        self.compact_groups();
    }

    fn forget_sweep(&mut self, now_s: f64) {
        let n = self.slab.records.len();
        if n == 0 {
            return;
        }
        // A key tracked before the first access (given groups by a
        // universe) is idle since that first access, not since its
        // `last_s` of the reference time; before any access, none is idle.
        let started_s = self.started_s;
        if started_s.is_nan() {
            return;
        }
        let chunk = (n / 64).max(4096).min(n);
        let mut id = self.sweep_cursor as usize % n;
        for _ in 0..chunk {
            let r = &self.slab.records[id];
            if r.is_live() && now_s - r.last_s.max(started_s) > self.config.forget_after_s {
                self.remove_key(id as u32);
                self.forgotten_keys += 1;
            }
            id = (id + 1) % n;
        }
        self.sweep_cursor = id as u32;
    }

    fn prune_trending(&mut self, now_s: f64) {
        let w = self.decay.weights_at(now_s).short;
        let keep_at = self.config.trending_min_count * 0.5 * w;
        let slab = &mut self.slab;
        self.trending.retain(|&k| {
            let Some(r) = slab.get(k) else { return false };
            let keep = f64::from(r.short) >= keep_at;
            if !keep {
                slab.records[k.id as usize].flags &= !IN_TRENDING;
            }
            keep
        });
    }

    /// Hands profiles of the coldest profiled keys to waitlisted keys that
    /// are at least twice as popular (free slots go first).
    fn reassign_profiles(&mut self) {
        if self.profiles.waitlist.is_empty() {
            return;
        }
        let mut waiting: Vec<TrackedKey> = std::mem::take(&mut self.profiles.waitlist);
        waiting.retain(|&k| self.slab.get(k).is_some_and(|r| r.profile == NO_PROFILE));
        for k in &waiting {
            self.slab.records[k.id as usize].flags &= !PROFILE_WAIT;
        }
        let pop = |t: &Tracker, k: TrackedKey| t.slab.records[k.id as usize].pop;
        waiting.sort_unstable_by(|a, b| pop(self, *b).total_cmp(&pop(self, *a)));
        // Owners of the coldest profiles (invalid owners count as coldest).
        let mut owned: Vec<(f64, u32)> = self
            .profiles
            .slots
            .iter()
            .enumerate()
            .filter(|(_, p)| p.owner.id != u32::MAX)
            .map(|(i, p)| {
                (
                    self.slab.get(p.owner).map_or(f64::NEG_INFINITY, |r| r.pop),
                    i as u32,
                )
            })
            .collect();
        let take = waiting.len().min(owned.len());
        if take > 0 && take < owned.len() {
            owned.select_nth_unstable_by(take - 1, |a, b| a.0.total_cmp(&b.0));
        }
        owned.truncate(take);
        owned.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut cold = owned.into_iter();
        let now_s = self.last_now_s;
        for k in waiting {
            if self.profiles.assigned() < self.config.profiled_key_cap()
                || !self.profiles.free.is_empty()
            {
                self.grant_profile(k.id, now_s, false);
                continue;
            }
            let Some((cold_pop, slot)) = cold.next() else {
                break;
            };
            if pop(self, k) <= 2.0 * cold_pop {
                break;
            }
            let old = self.profiles.slots[slot as usize].owner;
            if self.slab.get(old).is_some() {
                self.slab.records[old.id as usize].profile = NO_PROFILE;
            }
            self.profiles.release(slot);
            self.grant_profile(k.id, now_s, false);
        }
    }

    fn compact_groups(&mut self) {
        let n = self.groups.list.len();
        let mut budget = GROUP_COMPACT_BUDGET;
        for _ in 0..n {
            let g = self.group_cursor % n;
            self.group_cursor = (g + 1) % n;
            let m = self.groups.members(&self.slab, g as u16);
            budget = budget.saturating_sub(self.groups.list[g].members.len());
            self.groups.list[g].members = m;
            if budget == 0 {
                break;
            }
        }
    }

    /// Estimated bytes of the whole tracker, heap included (key strings
    /// live in the key table and are not counted here).
    pub fn approx_memory_bytes(&self) -> usize {
        size_of::<Tracker>()
            + (self.slot_of.capacity() + self.dropped.capacity()) * 4
            + self.slab.heap_bytes()
            + self.profiles.heap_bytes()
            + self.groups.heap_bytes()
            + self.coaccess.heap_bytes()
            + (self.top.members.capacity() + self.trending.capacity()) * size_of::<TrackedKey>()
    }

    /// Counters and the top 10 at `now_s`, keys named through `keys` (the
    /// table whose ids the tracker holds, counted in the memory estimate).
    pub fn stats(&self, now_s: f64, keys: &KeyTable) -> TrackerStats {
        TrackerStats {
            tracked_keys: self.slab.live(),
            total_accesses: self.total_accesses,
            evicted_keys: self.evicted_keys,
            forgotten_keys: self.forgotten_keys,
            profiled_keys: self.profiles.assigned(),
            tracked_clients: self.coaccess.clients.len(),
            groups: self.groups.list.len(),
            approx_memory_bytes: self.approx_memory_bytes() + keys.heap_bytes(),
            top_10: self.popular(now_s, 10).named(keys),
        }
    }
}
