//! Training examples waiting for their label.
//!
//! An example is a proposed candidate: a key, the window `[open_s,
//! close_s)` a fetch would cover, the candidate's features and the score
//! the model gave it when it was proposed. It is labelled *requested* at
//! the first client access of its key inside the window, and *not
//! requested* once the window has closed with none. Requests arrive
//! whatever the warmer did, so every label is observed, and no label is
//! known before its window's events have happened: no look-ahead.
//!
//! Invariants: at most `capacity` examples wait (when more than half full,
//! new ones are thinned uniformly, which keeps the label distribution
//! unbiased); each example is labelled exactly once; O(examples of the key)
//! per access, O(log n) per expiry; no allocation once the slab is grown.

use crate::UnixSeconds;
use crate::cache::KeyId;
use rustc_hash::FxHashMap;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::Features;

/// A candidate waiting for its label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Example {
    /// The key.
    pub key: KeyId,
    /// Start of the window a fetch would cover.
    pub open_s: UnixSeconds,
    /// End (exclusive) of that window.
    pub close_s: UnixSeconds,
    /// The candidate's features.
    pub features: Features,
    /// The model's score when the candidate was proposed.
    pub score: f32,
}

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Slot {
    ex: Example,
    prev: u32,
    next: u32,
    /// Bumped when the slot is freed, so stale heap entries are skipped.
    generation: u32,
    live: bool,
}

#[derive(Debug, Clone, Copy)]
struct Closing {
    close_s: UnixSeconds,
    slot: u32,
    generation: u32,
}

impl PartialEq for Closing {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Closing {}
impl PartialOrd for Closing {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Closing {
    fn cmp(&self, o: &Self) -> Ordering {
        self.close_s
            .total_cmp(&o.close_s)
            .then(self.slot.cmp(&o.slot))
            .then(self.generation.cmp(&o.generation))
    }
}

/// Examples waiting for their label, by key and by closing time.
#[derive(Debug, Clone)]
pub struct PendingExamples {
    slots: Vec<Slot>,
    free: Vec<u32>,
    head: FxHashMap<KeyId, u32>,
    closing: BinaryHeap<Reverse<Closing>>,
    live: usize,
    capacity: usize,
    offered: u64,
    thinned: u64,
}

impl PendingExamples {
    /// Room for `capacity` waiting examples (at least 1).
    pub fn new(capacity: usize) -> Self {
        PendingExamples {
            slots: Vec::new(),
            free: Vec::new(),
            head: FxHashMap::default(),
            closing: BinaryHeap::new(),
            live: 0,
            capacity: capacity.max(1),
            offered: 0,
            thinned: 0,
        }
    }

    /// Examples waiting.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Whether an example of `key` waits for its label (the key's id must
    /// not be released then: a reuse would label it).
    pub fn holds(&self, key: KeyId) -> bool {
        self.head.contains_key(&key)
    }

    /// Examples offered, and those left out by thinning.
    pub fn counts(&self) -> (u64, u64) {
        (self.offered, self.thinned)
    }

    /// Keeps `ex` until it is labelled, unless thinning leaves it out
    /// (returns whether it was kept). Above half full, one offer in 2, 4,
    /// 8, … is kept, by a counter, so the kept ones are a uniform sample.
    pub fn offer(&mut self, ex: Example) -> bool {
        self.offered += 1;
        let half = self.capacity / 2;
        if self.live >= self.capacity {
            self.thinned += 1;
            return false;
        }
        if self.live > half {
            let excess = (self.live - half) * 8 / half.max(1);
            let stride = 1u64 << excess.min(16);
            if !self.offered.is_multiple_of(stride) {
                self.thinned += 1;
                return false;
            }
        }
        let slot = self.alloc(ex);
        let generation = self.slots[slot as usize].generation;
        self.closing.push(Reverse(Closing {
            close_s: ex.close_s,
            slot,
            generation,
        }));
        true
    }

    fn alloc(&mut self, ex: Example) -> u32 {
        let next = self.head.get(&ex.key).copied().unwrap_or(NONE);
        let slot = match self.free.pop() {
            Some(s) => {
                let gen_ = self.slots[s as usize].generation;
                self.slots[s as usize] = Slot {
                    ex,
                    prev: NONE,
                    next,
                    generation: gen_,
                    live: true,
                };
                s
            }
            None => {
                self.slots.push(Slot {
                    ex,
                    prev: NONE,
                    next,
                    generation: 0,
                    live: true,
                });
                (self.slots.len() - 1) as u32
            }
        };
        if next != NONE {
            self.slots[next as usize].prev = slot;
        }
        self.head.insert(ex.key, slot);
        self.live += 1;
        slot
    }

    fn release(&mut self, slot: u32) -> Example {
        let s = &mut self.slots[slot as usize];
        let (prev, next, ex) = (s.prev, s.next, s.ex);
        s.live = false;
        s.generation = s.generation.wrapping_add(1);
        if prev == NONE {
            if next == NONE {
                self.head.remove(&ex.key);
            } else {
                self.head.insert(ex.key, next);
            }
        } else {
            self.slots[prev as usize].next = next;
        }
        if next != NONE {
            self.slots[next as usize].prev = prev;
        }
        self.free.push(slot);
        self.live -= 1;
        ex
    }

    /// A client access of `key` at `now_s`: every waiting example of the
    /// key whose window holds `now_s` is labelled requested.
    pub fn on_access(
        &mut self,
        key: KeyId,
        now_s: UnixSeconds,
        label: &mut impl FnMut(&Example, bool),
    ) {
        let mut cur = self.head.get(&key).copied().unwrap_or(NONE);
        while cur != NONE {
            let s = &self.slots[cur as usize];
            let next = s.next;
            if s.ex.open_s <= now_s && now_s < s.ex.close_s {
                let ex = self.release(cur);
                label(&ex, true);
            }
            cur = next;
        }
    }

    /// Labels not-requested every example whose window closed at or
    /// before `now_s`.
    pub fn expire(&mut self, now_s: UnixSeconds, label: &mut impl FnMut(&Example, bool)) {
        while let Some(Reverse(top)) = self.closing.peek().copied() {
            if top.close_s > now_s {
                break;
            }
            self.closing.pop();
            let s = &self.slots[top.slot as usize];
            if s.live && s.generation == top.generation {
                let ex = self.release(top.slot);
                label(&ex, false);
            }
        }
    }

    /// The earliest instant an example's window closes, if any waits.
    pub fn next_close_s(&self) -> Option<UnixSeconds> {
        self.closing.peek().map(|Reverse(c)| c.close_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FEATURES;

    fn ex(key: u32, open_s: f64, close_s: f64) -> Example {
        Example {
            key: KeyId(key),
            open_s,
            close_s,
            features: Features {
                x: [0.0; FEATURES],
                offset: 0.0,
            },
            score: 0.5,
        }
    }

    fn labels(p: &mut PendingExamples, steps: &[(u32, f64)], end_s: f64) -> Vec<(u32, bool)> {
        let mut out = Vec::new();
        for &(k, t) in steps {
            p.expire(t, &mut |e, y| out.push((e.key.0, y)));
            p.on_access(KeyId(k), t, &mut |e, y| out.push((e.key.0, y)));
        }
        p.expire(end_s, &mut |e, y| out.push((e.key.0, y)));
        out
    }

    #[test]
    fn an_access_inside_the_window_labels_requested_and_outside_does_not() {
        let mut p = PendingExamples::new(16);
        p.offer(ex(1, 10.0, 70.0));
        p.offer(ex(2, 10.0, 70.0));
        p.offer(ex(3, 10.0, 70.0));
        // Key 1 before its window, key 2 inside, key 3 exactly at its end.
        let got = labels(&mut p, &[(1, 5.0), (2, 10.0), (3, 70.0)], 1000.0);
        assert_eq!(got, vec![(2, true), (1, false), (3, false)]);
        assert!(p.is_empty());
    }

    #[test]
    fn each_example_is_labelled_once_even_with_many_on_one_key() {
        let mut p = PendingExamples::new(64);
        for i in 0..10 {
            p.offer(ex(7, f64::from(i) * 10.0, f64::from(i) * 10.0 + 30.0));
        }
        let got = labels(&mut p, &[(7, 25.0), (7, 26.0), (7, 95.0)], 1e9);
        assert_eq!(got.len(), 10);
        // Windows holding 25: opened at 0, 10, 20; holding 95: 70, 80, 90.
        assert_eq!(got.iter().filter(|(_, y)| *y).count(), 6, "{got:?}");
    }

    #[test]
    fn a_crowded_store_thins_offers_and_never_exceeds_its_capacity() {
        let mut p = PendingExamples::new(100);
        for i in 0..10_000 {
            p.offer(ex(i, 0.0, 1e9));
            assert!(p.len() <= 100);
        }
        let (offered, thinned) = p.counts();
        assert_eq!(offered, 10_000);
        assert_eq!(offered - thinned, p.len() as u64);
    }

    #[test]
    fn freed_slots_are_reused_without_mixing_up_keys() {
        let mut p = PendingExamples::new(8);
        for round in 0..100u32 {
            let t = f64::from(round) * 100.0;
            p.offer(ex(round % 3, t, t + 50.0));
            let mut got = Vec::new();
            p.on_access(KeyId(round % 3), t + 1.0, &mut |e, y| {
                got.push((e.key.0, y))
            });
            assert_eq!(got, vec![(round % 3, true)]);
        }
        assert!(p.is_empty());
        assert!(p.slots.len() <= 2);
    }
}
