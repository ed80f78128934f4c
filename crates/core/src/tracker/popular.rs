//! Top-N selection and the incremental candidate set of popular keys.
//!
//! Forward-scaled popularity only grows between rebases (which scale every
//! key alike), so the set of the [`TOP_CANDIDATES`] most popular keys can be
//! kept incrementally. Invariant of [`TopSet`]: every live key outside the
//! set has stored popularity `<= threshold`, every member `>= threshold`.
//! Hence while at least `limit` members are live, the top `limit` keys are
//! all members and `popular(limit)` looks at no other key.

use super::record::{IN_TOP, Slab, TrackedKey};
use std::cmp::Ordering;

/// Candidates the popularity set keeps after compaction.
pub(crate) const TOP_CANDIDATES: usize = 1024;

/// Collects the `k` best `(score, item)` pairs in O(n) amortised: a buffer
/// of at most `2k` that is cut back to `k` by `select_nth_unstable`.
#[derive(Debug)]
pub(crate) struct TopK<T> {
    k: usize,
    floor: f64,
    buf: Vec<(f64, T)>,
}

fn better<T: Ord>(a: &(f64, T), b: &(f64, T)) -> Ordering {
    b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1))
}

impl<T: Ord> TopK<T> {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            floor: f64::NEG_INFINITY,
            buf: Vec::with_capacity(if k > 4096 { 4096 } else { 2 * k }),
        }
    }

    /// Offers one item; NaN scores are ignored.
    #[inline]
    pub fn push(&mut self, score: f64, item: T) {
        if self.k == 0 || score.is_nan() || score < self.floor {
            return;
        }
        self.buf.push((score, item));
        if self.buf.len() >= 2 * self.k {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if self.buf.len() > self.k {
            self.buf.select_nth_unstable_by(self.k - 1, better);
            self.buf.truncate(self.k);
            self.floor = self.buf[self.k - 1].0;
        }
    }

    /// The best `k`, best first (ties by item order).
    pub fn into_sorted(mut self) -> Vec<(f64, T)> {
        self.cut();
        self.buf.sort_unstable_by(better);
        self.buf
    }
}

/// The incremental set of popularity candidates.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopSet {
    pub members: Vec<TrackedKey>,
    /// Stored (forward-scaled) popularity bound, see the module invariant.
    pub threshold: f64,
}

impl TopSet {
    /// Adds live record `id` (not yet a member, popularity above the
    /// threshold).
    #[inline]
    pub fn admit(&mut self, slab: &mut Slab, id: u32) {
        slab.records[id as usize].flags |= IN_TOP;
        self.members.push(slab.handle(id));
        if self.members.len() >= 2 * TOP_CANDIDATES {
            self.compact(slab);
        }
    }

    /// Keeps the best [`TOP_CANDIDATES`] live members and raises the
    /// threshold to the worst kept one (never lowers it).
    pub fn compact(&mut self, slab: &mut Slab) {
        self.members.retain(|&m| slab.get(m).is_some());
        if self.members.len() > TOP_CANDIDATES {
            let pop = |s: &Slab, m: &TrackedKey| s.records[m.id as usize].pop;
            self.members
                .select_nth_unstable_by(TOP_CANDIDATES - 1, |a, b| {
                    pop(slab, b).total_cmp(&pop(slab, a)).then(a.id.cmp(&b.id))
                });
            for m in self.members.drain(TOP_CANDIDATES..) {
                slab.records[m.id as usize].flags &= !IN_TOP;
            }
            let worst = self
                .members
                .iter()
                .map(|m| pop(slab, m))
                .fold(f64::INFINITY, f64::min);
            self.threshold = self.threshold.max(worst);
        }
    }

    /// Live members (for the exactness check).
    pub fn live_members(&self, slab: &Slab) -> usize {
        self.members
            .iter()
            .filter(|m| slab.get(**m).is_some())
            .count()
    }

    /// Rebuilds from a scan of every key: exact top [`TOP_CANDIDATES`].
    pub fn rebuild(&mut self, slab: &mut Slab) {
        for m in self.members.drain(..) {
            if let Some(r) = slab.records.get_mut(m.id as usize) {
                r.flags &= !IN_TOP;
            }
        }
        let mut top = TopK::new(TOP_CANDIDATES);
        for (i, r) in slab.records.iter().enumerate() {
            if r.is_live() {
                top.push(r.pop, i as u32);
            }
        }
        let best = top.into_sorted();
        // With fewer keys than the cap every key is a member: threshold 0.
        self.threshold = if best.len() < TOP_CANDIDATES {
            0.0
        } else {
            best[best.len() - 1].0
        };
        for (_, id) in best {
            slab.records[id as usize].flags |= IN_TOP;
            self.members.push(slab.handle(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn topk_matches_sorting(xs in proptest::collection::vec(0u32..50, 0..300), k in 0usize..40) {
            let mut t = TopK::new(k);
            for (i, x) in xs.iter().enumerate() {
                t.push(f64::from(*x), i);
            }
            let got: Vec<f64> = t.into_sorted().into_iter().map(|p| p.0).collect();
            let mut want: Vec<f64> = xs.iter().map(|&x| f64::from(x)).collect();
            want.sort_by(|a, b| b.total_cmp(a));
            want.truncate(k);
            prop_assert_eq!(got, want);
        }
    }
}
