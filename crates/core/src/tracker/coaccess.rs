//! Co-access: which keys follow which.
//!
//! Every key keeps [`SUCCESSOR_SLOTS`] successor slots with decayed
//! weights plus `total`, the decayed number of its *occurrences* (accesses
//! that start a new step of a session or of the global stream). A
//! transition `P → K` is credited with the weight of P's occurrence, so
//! `weight(K) / total <= 1` is the calibrated share of P's occurrences that
//! were followed by K. When the slots are full a newcomer charges the
//! weakest slot and takes it over only once that slot's weight is used up,
//! so weights never overestimate (confidences are conservative).
//!
//! With a client id the successor is the client's next distinct key within
//! its session (split by an idle gap). Without one, the keys among the last
//! [`RING`] distinct keys of the global stream within the co-access window
//! each gain the new key as successor (so the confidence reads "K follows P
//! within a few keys").

use super::record::{Slab, TrackedKey};
use rustc_hash::FxHashMap;

/// Successor slots per key.
pub const SUCCESSOR_SLOTS: usize = 4;
/// Distinct recent keys of the global stream that count as predecessors.
pub(crate) const RING: usize = 4;
/// Decayed occurrences after which a key's counts are halved (ratios kept)
/// so `f32` increments stay exact.
const HALVE_AT: f32 = (1u32 << 22) as f32;

/// The successor slots of one key (44 bytes).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Successors {
    pub ids: [u32; SUCCESSOR_SLOTS],
    pub weights: [f32; SUCCESSOR_SLOTS],
    pub gens: [u16; SUCCESSOR_SLOTS],
    pub total: f32,
}

impl Successors {
    /// Counts one occurrence of the owner with forward weight `w`.
    #[inline]
    pub fn add_occurrence(&mut self, w: f32) {
        self.total += w;
        if self.total > HALVE_AT * w {
            self.total *= 0.5;
            self.weights.iter_mut().for_each(|x| *x *= 0.5);
        }
    }

    pub fn scale(&mut self, f: f32) {
        self.total *= f;
        self.weights.iter_mut().for_each(|x| *x *= f);
    }
}

/// Credits `from → to` with weight `w` (the forward weight of `from`'s
/// occurrence). Stale slots (evicted targets) are reused first.
pub(crate) fn credit(slab: &mut Slab, from: TrackedKey, to: TrackedKey, w: f32) {
    if from.id == to.id || slab.get(from).is_none() {
        return;
    }
    let g = to.generation as u16;
    let s = &slab.records[from.id as usize].succ;
    let hit =
        (0..SUCCESSOR_SLOTS).find(|&i| s.weights[i] > 0.0 && s.ids[i] == to.id && s.gens[i] == g);
    let slot = match hit {
        Some(i) => {
            slab.records[from.id as usize].succ.weights[i] += w;
            return;
        }
        None => (0..SUCCESSOR_SLOTS)
            .find(|&i| s.weights[i] <= 0.0)
            .or_else(|| {
                (0..SUCCESSOR_SLOTS).find(|&i| {
                    let t = &slab.records[s.ids[i] as usize];
                    !t.is_live() || t.generation as u16 != s.gens[i]
                })
            }),
    };
    let s = &mut slab.records[from.id as usize].succ;
    let i = match slot {
        Some(i) => i,
        None => {
            let (i, min) = s
                .weights
                .iter()
                .enumerate()
                .fold(
                    (0, f32::INFINITY),
                    |acc, (i, &x)| {
                        if x < acc.1 { (i, x) } else { acc }
                    },
                );
            if min > w {
                s.weights[i] = min - w;
                return;
            }
            i
        }
    };
    s.ids[i] = to.id;
    s.gens[i] = g;
    s.weights[i] = w;
}

/// The valid successors of `key` with confidence `weight / total`, best
/// first.
pub(crate) fn successors(slab: &Slab, key: TrackedKey) -> Vec<(TrackedKey, f64)> {
    let Some(r) = slab.get(key) else {
        return Vec::new();
    };
    let s = &r.succ;
    if s.total <= 0.0 {
        return Vec::new();
    }
    let mut out: Vec<(TrackedKey, f64)> = (0..SUCCESSOR_SLOTS)
        .filter(|&i| s.weights[i] > 0.0)
        .filter_map(|i| {
            let t = &slab.records[s.ids[i] as usize];
            let valid = t.is_live() && t.generation as u16 == s.gens[i];
            let conf = (f64::from(s.weights[i]) / f64::from(s.total)).min(1.0);
            valid.then(|| {
                (
                    TrackedKey {
                        id: s.ids[i],
                        generation: t.generation,
                    },
                    conf,
                )
            })
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.id.cmp(&b.0.id)));
    out
}

/// Where one client's session stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ClientState {
    pub last: TrackedKey,
    pub last_s: f64,
    /// Forward weight of the occurrence of `last`.
    pub last_w: f64,
}

/// One entry of the global stream ring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RingEntry {
    pub key: TrackedKey,
    pub t_s: f64,
    pub w: f64,
}

/// Client sessions and the global stream ring.
#[derive(Debug, Clone, Default)]
pub(crate) struct CoAccess {
    pub clients: FxHashMap<Box<str>, ClientState>,
    /// Most recent first, distinct keys.
    pub ring: Vec<RingEntry>,
}

impl CoAccess {
    /// An access of `key` by client `client` at `now_s` (forward weight `w`).
    pub fn on_client_access(
        &mut self,
        slab: &mut Slab,
        client: &str,
        key: TrackedKey,
        now_s: f64,
        w: f64,
        idle_gap_s: f64,
    ) {
        let fresh = ClientState {
            last: key,
            last_s: now_s,
            last_w: w,
        };
        let Some(st) = self.clients.get_mut(client) else {
            self.clients.insert(Box::from(client), fresh);
            slab.records[key.id as usize].succ.add_occurrence(w as f32);
            return;
        };
        let in_session = (now_s - st.last_s).abs() <= idle_gap_s;
        if in_session && st.last == key {
            st.last_s = now_s; // a repeat is the same step
            return;
        }
        if in_session {
            credit(slab, st.last, key, st.last_w as f32);
        }
        *st = fresh;
        slab.records[key.id as usize].succ.add_occurrence(w as f32);
    }

    /// An access of `key` with no client id, at `now_s` (forward weight `w`).
    pub fn on_anonymous_access(
        &mut self,
        slab: &mut Slab,
        key: TrackedKey,
        now_s: f64,
        w: f64,
        window_s: f64,
    ) {
        self.ring
            .retain(|e| now_s - e.t_s <= window_s && slab.get(e.key).is_some());
        let pos = self.ring.iter().position(|e| e.key == key);
        if pos == Some(0) {
            self.ring[0].t_s = now_s; // a repeat is the same step
            return;
        }
        let newer = pos.unwrap_or(self.ring.len());
        for e in &self.ring[..newer] {
            credit(slab, e.key, key, e.w as f32);
        }
        if let Some(p) = pos {
            self.ring.remove(p);
        }
        self.ring.insert(0, RingEntry { key, t_s: now_s, w });
        self.ring.truncate(RING);
        slab.records[key.id as usize].succ.add_occurrence(w as f32);
    }

    /// Evicts the idlest eighth of the clients when there are more than
    /// `max_clients` (amortised O(1) per new client).
    pub fn bound_clients(&mut self, max_clients: usize) {
        if self.clients.len() <= max_clients {
            return;
        }
        let mut last: Vec<f64> = self.clients.values().map(|c| c.last_s).collect();
        let target = max_clients - max_clients / 8;
        let evict = last.len() - target; // >= 1
        let (_, cutoff, _) = last.select_nth_unstable_by(evict - 1, f64::total_cmp);
        let cutoff = *cutoff;
        let mut budget = evict;
        self.clients.retain(|_, c| {
            if budget > 0 && c.last_s <= cutoff {
                budget -= 1;
                false
            } else {
                true
            }
        });
    }

    /// Multiplies stored forward weights by `f` (rebase).
    pub fn scale(&mut self, f: f64) {
        self.clients.values_mut().for_each(|c| c.last_w *= f);
        self.ring.iter_mut().for_each(|e| e.w *= f);
    }

    pub fn heap_bytes(&self) -> usize {
        let keys: usize = self.clients.keys().map(|k| k.len()).sum();
        self.clients.capacity() * (size_of::<(Box<str>, ClientState)>() + 1)
            + keys
            + self.ring.capacity() * size_of::<RingEntry>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slab_with(keys: &[&str]) -> (Slab, Vec<TrackedKey>) {
        let mut s = Slab::default();
        let ids = (0..keys.len() as u32)
            .map(|k| s.alloc(crate::keys::KeyId(k), 0.0, 100))
            .collect::<Vec<_>>();
        let handles = ids.iter().map(|&i| s.handle(i)).collect();
        (s, handles)
    }

    #[test]
    fn full_slots_never_overestimate() {
        let (mut s, k) = slab_with(&["P", "A", "B", "C", "D", "E"]);
        for _ in 0..10 {
            s.records[0].succ.add_occurrence(1.0);
            credit(&mut s, k[0], k[1], 1.0);
        }
        for t in &k[2..] {
            s.records[0].succ.add_occurrence(1.0);
            credit(&mut s, k[0], *t, 1.0);
        }
        let p = successors(&s, k[0]);
        assert_eq!(p[0].0, k[1]);
        assert!((p[0].1 - 10.0 / 14.0).abs() < 1e-6);
        let sum: f64 = p.iter().map(|x| x.1).sum();
        assert!(sum <= 1.0 + 1e-9);
    }

    #[test]
    fn evicted_successor_disappears_and_slot_is_reused() {
        let (mut s, k) = slab_with(&["P", "A"]);
        s.records[0].succ.add_occurrence(1.0);
        credit(&mut s, k[0], k[1], 1.0);
        s.release(k[1].id);
        assert!(successors(&s, k[0]).is_empty());
    }

    #[test]
    fn bound_clients_evicts_the_idlest() {
        let (mut s, k) = slab_with(&["A"]);
        let mut c = CoAccess::default();
        for i in 0..20 {
            c.on_client_access(&mut s, &format!("c{i}"), k[0], f64::from(i), 1.0, 100.0);
        }
        c.bound_clients(16);
        assert!(c.clients.len() <= 16);
        assert!(c.clients.contains_key("c19"));
        assert!(!c.clients.contains_key("c0"));
    }
}
