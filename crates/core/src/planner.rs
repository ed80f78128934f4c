//! The planner: spends the warming budget on the best candidates.
//!
//! Strategies propose [`Candidate`]s: a key, the strategy to charge, an
//! expected value, and the window `[not_before_s, expires_s)` in which a
//! fetch is worth making. The planner keeps candidates whose window has not
//! opened in a time-ordered queue and open ones in a value-ordered queue;
//! [`Planner::pop_best`] returns the most valuable open candidate that the
//! caller still accepts (the engine rejects keys that will stay fresh long
//! enough anyway). Demand fetches never pass through the planner: they are
//! made at once and never wait for budget.
//!
//! Invariants: the queues are bounded (`max_queued`); ties are broken by key
//! and strategy so that replays are deterministic; the planner counts the
//! candidates it holds per key, so the engine never releases the id of a
//! key a candidate still names.

use crate::UnixSeconds;
use crate::cache::KeyId;
use crate::strategy::StrategyId;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A key a strategy proposes to warm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The key.
    pub key: KeyId,
    /// The strategy charged for the fetch.
    pub strategy: StrategyId,
    /// Expected misses saved (calibrated chance of a hit times the share
    /// of a miss saved); higher goes first.
    pub value: f32,
    /// The strategy's own chance of a hit, before calibration.
    pub raw_value: f32,
    /// The earliest instant the fetch is worth making.
    pub not_before_s: UnixSeconds,
    /// The instant the entry must be fresh at; a key already fresh then is
    /// not worth a fetch.
    pub needed_at_s: UnixSeconds,
    /// The instant after which the fetch is no longer worth making.
    pub expires_s: UnixSeconds,
}

#[derive(Debug, Clone, Copy)]
struct ByValue(Candidate);

fn value_band(value: f32) -> i32 {
    // Values are in [0, 1]: truncation is the floor, without a libm call
    // on the heap's hot comparison.
    (value.clamp(0.0, 0.999) * 10.0) as i32
}

impl PartialEq for ByValue {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for ByValue {}
impl PartialOrd for ByValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByValue {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (&self.0, &other.0);
        // Value in bands of a tenth, then earliest deadline first: among
        // candidates worth about the same, EDF meets the most deadlines
        // with a scarce budget (it is optimal for unit jobs).
        value_band(a.value)
            .cmp(&value_band(b.value))
            .then_with(|| b.expires_s.total_cmp(&a.expires_s))
            .then_with(|| a.value.total_cmp(&b.value))
            .then_with(|| b.key.cmp(&a.key))
            .then_with(|| b.strategy.cmp(&a.strategy))
    }
}

#[derive(Debug, Clone, Copy)]
struct ByOpening(Candidate);

impl PartialEq for ByOpening {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for ByOpening {}
impl PartialOrd for ByOpening {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByOpening {
    fn cmp(&self, other: &Self) -> Ordering {
        // Min-heap on the opening instant.
        let (a, b) = (&self.0, &other.0);
        b.not_before_s
            .total_cmp(&a.not_before_s)
            .then_with(|| ByValue(*a).cmp(&ByValue(*b)))
    }
}

/// Removes all but the `keep` greatest elements of `v`, telling `dropped`
/// of each one removed.
fn drop_smallest<T: Ord>(v: &mut Vec<T>, keep: usize, mut dropped: impl FnMut(&T)) {
    let excess = v.len().saturating_sub(keep);
    if excess == 0 {
        return;
    }
    v.select_nth_unstable(excess - 1);
    v.drain(..excess).for_each(|x| dropped(&x));
}

/// Candidates queued per key id (open and waiting).
#[derive(Debug, Clone, Default)]
struct PerKey(Vec<u32>);

impl PerKey {
    #[inline]
    fn add(&mut self, key: KeyId) {
        if self.0.len() <= key.ix() {
            self.0.resize(key.ix() + 1, 0);
        }
        self.0[key.ix()] += 1;
    }

    #[inline]
    fn remove(&mut self, key: KeyId) {
        self.0[key.ix()] -= 1;
    }

    fn get(&self, key: KeyId) -> u32 {
        self.0.get(key.ix()).copied().unwrap_or(0)
    }
}

/// Holds proposed candidates until the budget allows a fetch.
#[derive(Debug, Clone)]
pub struct Planner {
    open: BinaryHeap<ByValue>,
    waiting: BinaryHeap<ByOpening>,
    max_queued: usize,
    dropped: u64,
    counters: PlannerCounters,
    per_key: PerKey,
}

/// What became of the candidates: tells whether the budget or the
/// prediction is short.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlannerCounters {
    /// Candidates accepted into the queues.
    pub proposed: u64,
    /// Candidates turned into warming fetches.
    pub issued: u64,
    /// Candidates whose window closed before a token came: budget short.
    pub expired: u64,
    /// Candidates found not worth it when their turn came (the key was
    /// fresh through the moment it was needed, or already in flight).
    pub rejected: u64,
    /// Candidates shed because the queues were full.
    pub shed: u64,
}

impl Planner {
    /// A planner holding at most `max_queued` candidates in each queue.
    pub fn new(max_queued: usize) -> Self {
        Planner {
            open: BinaryHeap::new(),
            waiting: BinaryHeap::new(),
            max_queued: max_queued.max(1),
            dropped: 0,
            counters: PlannerCounters::default(),
            per_key: PerKey::default(),
        }
    }

    /// Adds a candidate. Candidates whose window is already over are ignored.
    pub fn propose(&mut self, c: Candidate, now_s: UnixSeconds) {
        if c.expires_s <= now_s || c.expires_s <= c.not_before_s || c.value.is_nan() {
            return;
        }
        self.counters.proposed += 1;
        self.per_key.add(c.key);
        if c.not_before_s <= now_s {
            self.open.push(ByValue(c));
        } else {
            self.waiting.push(ByOpening(c));
        }
        if self.open.len() > self.max_queued || self.waiting.len() > self.max_queued {
            self.shed(now_s);
        }
    }

    /// Drops expired candidates, then the least valuable ones over the cap.
    /// Linear time: a selection, not a sort (the order is total, so which
    /// candidates go is the same as with a sort).
    fn shed(&mut self, now_s: UnixSeconds) {
        let before = self.open.len() + self.waiting.len();
        let keep_n = self.max_queued / 2;
        let per_key = &mut self.per_key;
        let mut keep = |c: &Candidate| {
            let keep = c.expires_s > now_s;
            if !keep {
                per_key.remove(c.key);
            }
            keep
        };
        let mut open: Vec<ByValue> = std::mem::take(&mut self.open).into_vec();
        open.retain(|c| keep(&c.0));
        let mut waiting: Vec<ByOpening> = std::mem::take(&mut self.waiting).into_vec();
        waiting.retain(|c| keep(&c.0));
        drop_smallest(&mut open, keep_n, |c| per_key.remove(c.0.key));
        self.open = open.into();
        // ByOpening ranks the latest opening lowest: those go first.
        drop_smallest(&mut waiting, keep_n, |c| per_key.remove(c.0.key));
        self.waiting = waiting.into();
        let shed = (before - self.open.len() - self.waiting.len()) as u64;
        self.dropped += shed;
        self.counters.shed += shed;
    }

    /// The earliest instant a waiting candidate opens.
    pub fn next_opening(&self) -> Option<UnixSeconds> {
        self.waiting.peek().map(|c| c.0.not_before_s)
    }

    /// The value of the best open candidate at `now_s` (see
    /// [`Planner::advance`] for `needed`).
    pub fn best_open_value(
        &mut self,
        now_s: UnixSeconds,
        needed: impl FnMut(&Candidate) -> bool,
    ) -> Option<f32> {
        self.advance(now_s, needed);
        self.open.peek().map(|c| c.0.value)
    }

    /// The value of the best candidate already in the open queue.
    pub fn peek_open_value(&self) -> Option<f32> {
        self.open.peek().map(|c| c.0.value)
    }

    /// Whether any candidate is open.
    pub fn has_open(&self) -> bool {
        !self.open.is_empty()
    }

    /// Candidates queued (open and waiting).
    pub fn queued(&self) -> usize {
        self.open.len() + self.waiting.len()
    }

    /// Candidates queued for `key` (open and waiting).
    pub fn queued_for(&self, key: KeyId) -> u32 {
        self.per_key.get(key)
    }

    /// Candidates dropped because the queues were full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Moves candidates whose window opened by `now_s` to the open queue,
    /// dropping those `needed` says are no longer needed (the key became
    /// fresh through the moment it is needed while they waited): most
    /// candidates end that way, and dropping them here spares the open
    /// queue a push and a pop each.
    pub fn advance(&mut self, now_s: UnixSeconds, mut needed: impl FnMut(&Candidate) -> bool) {
        while let Some(c) = self.waiting.peek() {
            if c.0.not_before_s > now_s {
                break;
            }
            let c = self.waiting.pop().expect("peeked").0;
            if c.expires_s <= now_s {
                self.counters.expired += 1;
                self.per_key.remove(c.key);
            } else if !needed(&c) {
                self.counters.rejected += 1;
                self.per_key.remove(c.key);
            } else {
                self.open.push(ByValue(c));
            }
        }
    }

    /// The most valuable open candidate at `now_s` that `accept` takes.
    /// Expired and rejected candidates are dropped on the way.
    pub fn pop_best(
        &mut self,
        now_s: UnixSeconds,
        mut accept: impl FnMut(&Candidate) -> bool,
    ) -> Option<Candidate> {
        self.advance(now_s, &mut accept);
        while let Some(ByValue(c)) = self.open.pop() {
            self.per_key.remove(c.key);
            if c.expires_s <= now_s {
                self.counters.expired += 1;
            } else if accept(&c) {
                self.counters.issued += 1;
                return Some(c);
            } else {
                self.counters.rejected += 1;
            }
        }
        None
    }

    /// What became of the candidates so far.
    pub fn counters(&self) -> PlannerCounters {
        self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(key: u32, value: f32, not_before_s: f64, expires_s: f64) -> Candidate {
        Candidate {
            key: KeyId(key),
            strategy: StrategyId::Popular,
            value,
            raw_value: value,
            not_before_s,
            needed_at_s: not_before_s,
            expires_s,
        }
    }

    #[test]
    fn best_open_candidate_first() {
        let mut p = Planner::new(100);
        p.propose(cand(1, 1.0, 0.0, 100.0), 0.0);
        p.propose(cand(2, 3.0, 0.0, 100.0), 0.0);
        p.propose(cand(3, 9.0, 50.0, 100.0), 0.0);
        assert_eq!(p.next_opening(), Some(50.0));
        assert_eq!(p.pop_best(10.0, |_| true).unwrap().key, KeyId(2));
        assert_eq!(
            p.pop_best(50.0, |_| true).unwrap().key,
            KeyId(3),
            "opened at 50"
        );
        assert_eq!(p.pop_best(50.0, |_| true).unwrap().key, KeyId(1));
        assert!(p.pop_best(50.0, |_| true).is_none());
    }

    #[test]
    fn expired_and_rejected_are_dropped() {
        let mut p = Planner::new(100);
        p.propose(cand(1, 5.0, 0.0, 10.0), 0.0);
        p.propose(cand(2, 4.0, 0.0, 100.0), 0.0);
        p.propose(cand(3, 3.0, 0.0, 100.0), 0.0);
        p.propose(cand(4, 9.0, 0.0, 5.0), 6.0); // already over: ignored
        let got = p.pop_best(20.0, |c| c.key != KeyId(2)).unwrap();
        assert_eq!(got.key, KeyId(3));
        assert_eq!(p.queued(), 0);
    }

    #[test]
    fn a_waiting_candidate_no_longer_needed_never_reaches_the_open_queue() {
        let mut p = Planner::new(100);
        p.propose(cand(1, 5.0, 10.0, 100.0), 0.0);
        p.propose(cand(2, 4.0, 10.0, 100.0), 0.0);
        assert_eq!(p.best_open_value(20.0, |c| c.key != KeyId(1)), Some(4.0));
        assert_eq!(p.counters().rejected, 1);
        assert_eq!(p.queued(), 1);
    }

    #[test]
    fn queue_is_bounded() {
        let mut p = Planner::new(10);
        for k in 0..100 {
            p.propose(cand(k, k as f32, 0.0, 1e9), 0.0);
        }
        assert!(p.queued() <= 10);
        assert!(p.dropped() > 0);
        let per_key: u32 = (0..100).map(|k| p.queued_for(KeyId(k))).sum();
        assert_eq!(
            per_key as usize,
            p.queued(),
            "shed candidates are uncounted"
        );
        assert_eq!(
            p.pop_best(0.0, |_| true).unwrap().key,
            KeyId(99),
            "the most valuable survive"
        );
    }

    #[test]
    fn candidates_are_counted_per_key_until_they_leave() {
        let mut p = Planner::new(100);
        p.propose(cand(1, 5.0, 0.0, 10.0), 0.0);
        p.propose(cand(1, 4.0, 5.0, 100.0), 0.0);
        p.propose(cand(2, 3.0, 0.0, 100.0), 0.0);
        assert_eq!((p.queued_for(KeyId(1)), p.queued_for(KeyId(2))), (2, 1));
        assert_eq!(p.queued_for(KeyId(7)), 0, "never proposed");
        // At 20 the first expired, the second opened and is issued.
        assert_eq!(p.pop_best(20.0, |_| true).unwrap().key, KeyId(1));
        assert_eq!(p.queued_for(KeyId(1)), 0);
        assert!(
            p.pop_best(20.0, |c| c.key != KeyId(2)).is_none(),
            "rejected"
        );
        assert_eq!((p.queued_for(KeyId(2)), p.queued()), (0, 0));
    }
}
