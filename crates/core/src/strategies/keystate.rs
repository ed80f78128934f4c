//! Per-key timing state the strategies share: when the key was last
//! accessed, its short-term access rate, and its cadence (the typical gap
//! between accesses, with its spread, and how often the cadence predicted
//! the next access right).
//!
//! Invariants: a slot is a few words and is indexed by the engine's dense
//! [`KeyId`]; it is updated only by client accesses (never by warming), and
//! only with non-decreasing times.

use crate::UnixSeconds;
use crate::cache::KeyId;

/// Time constant of the short-term rate, in seconds. Ten minutes: long
/// enough to smooth a poll cycle, short enough to fall within minutes when
/// a key goes quiet (after the close, overnight).
pub const RATE_TAU_S: f64 = 600.0;
/// Weight of the newest gap in the cadence averages.
const GAP_ALPHA: f32 = 0.3;
/// Decay of past outcomes per new outcome in the prediction score.
const SCORE_DECAY: f32 = 0.8;
/// Prior of the prediction score: half a success in two trials, so a key
/// must see its cadence come true twice before it scores above 0.5.
const SCORE_PRIOR: (f32, f32) = (0.5, 2.0);

/// Timing state of one key.
#[derive(Debug, Clone, Copy)]
pub struct KeyState {
    /// Last client access; `NEG_INFINITY` before the first.
    pub last_access_s: UnixSeconds,
    /// Short-term rate, accesses per second, as of `last_access_s`.
    rate_per_s: f32,
    /// Mean gap between accesses, seconds.
    pub gap_mean_s: f32,
    /// Mean absolute deviation of the gap, seconds.
    pub gap_dev_s: f32,
    /// Gaps observed (saturating).
    pub gaps: u16,
    /// Decayed count of cadence predictions that came true.
    cadence_hits: f32,
    /// Decayed count of cadence predictions evaluated.
    cadence_trials: f32,
    /// Consecutive gaps far longer than the cadence (session breaks).
    long_gaps: u8,
}

const NEW: KeyState = KeyState {
    last_access_s: f64::NEG_INFINITY,
    rate_per_s: 0.0,
    gap_mean_s: 0.0,
    gap_dev_s: 0.0,
    gaps: 0,
    cadence_hits: 0.0,
    cadence_trials: 0.0,
    long_gaps: 0,
};

/// A gap longer than this many mean gaps (and than [`BREAK_MIN_S`]) is a
/// break between sessions (overnight, a weekend), not part of the cadence.
const BREAK_FACTOR: f32 = 4.0;
/// Shortest gap that can count as a break, seconds.
const BREAK_MIN_S: f32 = 900.0;
/// After this many breaks in a row, the cadence itself has changed.
const BREAKS_TO_RESET: u8 = 2;

/// A predicted next access.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NextAccess {
    /// The predicted instant.
    pub at_s: UnixSeconds,
    /// Half-width of the window the prediction is expected to fall in.
    pub margin_s: f64,
    /// How often such predictions came true for this key.
    pub score: f32,
}

impl KeyState {
    /// How often the cadence predicted the next access right, in [0, 1],
    /// shrunk toward the prior while there is little evidence.
    pub fn cadence_score(&self) -> f32 {
        (self.cadence_hits + SCORE_PRIOR.0) / (self.cadence_trials + SCORE_PRIOR.1)
    }

    /// Short-term rate at `now_s`, accesses per second.
    pub fn rate_at(&self, now_s: UnixSeconds) -> f64 {
        if self.last_access_s == f64::NEG_INFINITY {
            return 0.0;
        }
        f64::from(self.rate_per_s) * (-(now_s - self.last_access_s).max(0.0) / RATE_TAU_S).exp()
    }

    /// [`Worth::keep_fresh`] at this key's rate as of `at_s`.
    pub fn keep_fresh(&self, at_s: UnixSeconds, ttl_s: f64) -> Worth {
        Worth::keep_fresh(self.rate_at(at_s), ttl_s)
    }

    /// Probability of at least one access in a window of `len_s` seconds
    /// starting at `now_s`, if accesses were Poisson at the current rate.
    pub fn p_access_within(&self, now_s: UnixSeconds, len_s: f64) -> f64 {
        1.0 - (-self.rate_at(now_s) * len_s).exp()
    }

    /// The cadence's next predicted access, once it has seen enough gaps.
    /// `ttl_s` bounds the margin so that a warm at `at_s - margin_s` still
    /// covers `at_s + margin_s`.
    pub fn next_access(&self, ttl_s: f64) -> Option<NextAccess> {
        if self.gaps < 2 || self.gap_mean_s <= 0.0 {
            return None;
        }
        let margin_s = (2.0 * f64::from(self.gap_dev_s) + 0.5).min(ttl_s / 2.0);
        Some(NextAccess {
            at_s: self.last_access_s + f64::from(self.gap_mean_s),
            margin_s,
            score: self.cadence_score(),
        })
    }

    fn on_access(&mut self, now_s: UnixSeconds, ttl_s: f64) {
        if self.last_access_s == f64::NEG_INFINITY {
            self.last_access_s = now_s;
            self.rate_per_s = (1.0 / RATE_TAU_S) as f32;
            return;
        }
        let gap = (now_s - self.last_access_s).max(0.0) as f32;
        let is_break = self.gaps >= 2
            && gap > BREAK_MIN_S
            && gap > BREAK_FACTOR * self.gap_mean_s
            && self.long_gaps + 1 < BREAKS_TO_RESET;
        if is_break {
            // A new session: the cadence resumes from here, unjudged.
            self.long_gaps += 1;
            self.rate_per_s = (self.rate_at(now_s) + 1.0 / RATE_TAU_S) as f32;
            self.last_access_s = now_s;
            return;
        }
        if self.long_gaps + 1 >= BREAKS_TO_RESET && gap > BREAK_FACTOR * self.gap_mean_s {
            self.gaps = 0; // the cadence changed: learn it again
        }
        self.long_gaps = 0;
        // Was the cadence right? The access had to fall inside the window a
        // warm at `at - margin` would have kept fresh.
        if let Some(p) = self.next_access(ttl_s) {
            let start = p.at_s - p.margin_s;
            let hit = now_s >= start && now_s < start + ttl_s;
            self.cadence_hits = self.cadence_hits * SCORE_DECAY + if hit { 1.0 } else { 0.0 };
            self.cadence_trials = self.cadence_trials * SCORE_DECAY + 1.0;
        }
        if self.gaps == 0 {
            self.gap_mean_s = gap;
        } else {
            let dev = (gap - self.gap_mean_s).abs();
            self.gap_dev_s += GAP_ALPHA * (dev - self.gap_dev_s);
            self.gap_mean_s += GAP_ALPHA * (gap - self.gap_mean_s);
        }
        self.gaps = self.gaps.saturating_add(1);
        self.rate_per_s = (self.rate_at(now_s) + 1.0 / RATE_TAU_S) as f32;
        self.last_access_s = now_s;
    }
}

/// The worth of a warming fetch: the chance it serves a hit, and the share
/// of a miss it saves when it does.
///
/// A fetch moves the entry's life earlier: made `lead` seconds before the
/// access that needs it, the entry goes stale `lead` seconds sooner than a
/// demand fetch at the access would, so a later access may miss. It saves
/// `ttl / (ttl + lead)` of a miss. The clairvoyant bound has no lead, which
/// is why precise timing matters. Calibration corrects `p_hit` only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Worth {
    /// Probability that the fetch serves at least one hit.
    pub p_hit: f64,
    /// Share of a miss saved when it does, in (0, 1].
    pub net: f64,
}

impl Worth {
    /// A fetch made `lead_s` before an access that comes with probability
    /// `p_hit`.
    pub fn timed(p_hit: f64, lead_s: f64, ttl_s: f64) -> Self {
        Worth {
            p_hit,
            net: ttl_s / (ttl_s + lead_s.max(0.0)),
        }
    }

    /// A fetch that keeps a key fresh for another `ttl_s` when accesses
    /// come at random at `rate_per_s`: the next access is `1 / rate` away
    /// on average. Near one for a hot key, little for one a minute apart.
    pub fn keep_fresh(rate_per_s: f64, ttl_s: f64) -> Self {
        if rate_per_s <= 0.0 {
            return Worth {
                p_hit: 0.0,
                net: 0.0,
            };
        }
        let p_hit = 1.0 - (-rate_per_s * ttl_s).exp();
        Worth::timed(p_hit, 1.0 / rate_per_s, ttl_s)
    }
}

/// Timing state of every key, indexed by [`KeyId`].
#[derive(Debug, Clone, Default)]
pub struct KeyStates {
    slots: Vec<KeyState>,
}

impl KeyStates {
    /// The state of `key` (a fresh state if never accessed).
    pub fn get(&self, key: KeyId) -> KeyState {
        self.slots.get(key.0 as usize).copied().unwrap_or(NEW)
    }

    /// Resets the state of `key` to that of a key never accessed (its id is
    /// being released).
    pub fn forget(&mut self, key: KeyId) {
        if let Some(s) = self.slots.get_mut(key.ix()) {
            *s = NEW;
        }
    }

    /// Records a client access of `key` at `now_s` and returns its state.
    pub fn on_access(&mut self, key: KeyId, now_s: UnixSeconds, ttl_s: f64) -> KeyState {
        let ix = key.0 as usize;
        if self.slots.len() <= ix {
            self.slots.resize(ix + 1, NEW);
        }
        self.slots[ix].on_access(now_s, ttl_s);
        self.slots[ix]
    }
}

/// Timing state per (client, key): the cadence of one client polling one
/// key, which the key's own mixed stream hides when several clients poll
/// it. Bounded: past `max_pairs`, the idlest pairs are dropped.
///
/// Most pairs are seen once (an anonymous lookup) and never get a cadence,
/// which needs three accesses. So a pair's first access goes to a small
/// direct-mapped table (a fingerprint and the time), and only a pair seen
/// again gets a full state: the map then holds the pairs that repeat, and
/// one-off lookups cost one slot write instead of a map entry to shed.
/// A slot overwritten by another pair before the second access only
/// delays that pair by one access.
#[derive(Debug, Clone)]
pub struct PairStates {
    map: rustc_hash::FxHashMap<(u64, u32), KeyState>,
    max_pairs: usize,
    /// First accesses: `fingerprint << 32 | tenths of a second since
    /// `first_epoch_s``; 0 is an empty slot.
    first: Vec<u64>,
    first_epoch_s: UnixSeconds,
}

/// Resolution of a first access's time in [`PairStates`], seconds.
const FIRST_TICK_S: f64 = 0.1;

/// The splitmix64 finalizer: every input bit moves every output bit.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl PairStates {
    /// At most `max_pairs` pairs.
    pub fn new(max_pairs: usize) -> Self {
        PairStates {
            map: rustc_hash::FxHashMap::default(),
            max_pairs,
            first: vec![0; max_pairs.clamp(1, 1 << 20).next_power_of_two()],
            first_epoch_s: f64::NAN,
        }
    }

    /// Pairs tracked with a full state (seen at least twice).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no pair is tracked.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Records an access of `key` by the client hashed to `client`.
    pub fn on_access(
        &mut self,
        client: u64,
        key: KeyId,
        now_s: UnixSeconds,
        ttl_s: f64,
    ) -> KeyState {
        if let Some(st) = self.map.get_mut(&(client, key.0)) {
            st.on_access(now_s, ttl_s);
            return *st;
        }
        let mut st = NEW;
        if let Some(first_s) = self.take_first(client, key, now_s) {
            if self.map.len() >= self.max_pairs {
                self.shed(now_s);
            }
            st.on_access(first_s, ttl_s);
            st.on_access(now_s, ttl_s);
            self.map.insert((client, key.0), st);
        } else {
            st.on_access(now_s, ttl_s);
        }
        st
    }

    /// The time of the pair's first access if its slot still holds it
    /// (emptying the slot); otherwise records `now_s` as its first.
    fn take_first(&mut self, client: u64, key: KeyId, now_s: UnixSeconds) -> Option<UnixSeconds> {
        if self.first_epoch_s.is_nan() {
            self.first_epoch_s = now_s;
        }
        let h = mix64(client ^ u64::from(key.0).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let slot = h as usize & (self.first.len() - 1);
        let fp = (h >> 32).max(1); // never 0: 0 marks an empty slot
        let old = self.first[slot];
        if old >> 32 == fp {
            self.first[slot] = 0;
            let ticks = (old & 0xFFFF_FFFF) as f64;
            return Some(self.first_epoch_s + ticks * FIRST_TICK_S);
        }
        let ticks = ((now_s - self.first_epoch_s).max(0.0) / FIRST_TICK_S) as u64;
        self.first[slot] = fp << 32 | ticks.min(0xFFFF_FFFF);
        None
    }

    /// Drops the idlest half of the pairs.
    fn shed(&mut self, now_s: UnixSeconds) {
        let mut idle: Vec<f64> = self.map.values().map(|s| now_s - s.last_access_s).collect();
        let mid = idle.len() / 2;
        if idle.is_empty() {
            return;
        }
        let (_, cutoff, _) = idle.select_nth_unstable_by(mid, |a, b| b.total_cmp(a));
        let cutoff = *cutoff;
        self.map.retain(|_, s| now_s - s.last_access_s < cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_period_is_learned_and_predicted() {
        let mut s = KeyStates::default();
        let k = KeyId(0);
        for i in 0..20 {
            s.on_access(k, 1000.0 + f64::from(i) * 120.0, 60.0);
        }
        let st = s.get(k);
        let p = st.next_access(60.0).unwrap();
        assert!(
            (p.at_s - (1000.0 + 20.0 * 120.0)).abs() < 1.0,
            "next poll: {p:?}"
        );
        assert!(p.margin_s < 2.0);
        assert!(p.score > 0.75, "a strict period scores high: {}", p.score);
    }

    #[test]
    fn random_gaps_score_low() {
        let mut s = KeyStates::default();
        let k = KeyId(0);
        let mut t = 0.0;
        let mut x: u64 = 42;
        for _ in 0..200 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((x >> 11) as f64) / ((1u64 << 53) as f64);
            t += -(1.0 - u).ln() * 600.0; // Poisson, mean gap 10 min
            s.on_access(k, t, 60.0);
        }
        assert!(
            s.get(k).cadence_score() < 0.5,
            "{}",
            s.get(k).cadence_score()
        );
    }

    #[test]
    fn overnight_breaks_do_not_spoil_the_cadence() {
        let mut s = KeyStates::default();
        let k = KeyId(0);
        for day in 0..5 {
            let open = f64::from(day) * 86_400.0;
            for i in 0..30 {
                s.on_access(k, open + f64::from(i) * 120.0, 60.0);
            }
        }
        let st = s.get(k);
        assert!(
            (f64::from(st.gap_mean_s) - 120.0).abs() < 1.0,
            "{}",
            st.gap_mean_s
        );
        assert!(st.cadence_score() > 0.75);
    }

    #[test]
    fn a_changed_cadence_is_relearned() {
        let mut s = KeyStates::default();
        let k = KeyId(0);
        let mut t = 0.0;
        for _ in 0..20 {
            t += 60.0;
            s.on_access(k, t, 60.0);
        }
        for _ in 0..20 {
            t += 1800.0;
            s.on_access(k, t, 60.0);
        }
        assert!(
            (f64::from(s.get(k).gap_mean_s) - 1800.0).abs() < 10.0,
            "{}",
            s.get(k).gap_mean_s
        );
    }

    #[test]
    fn pairs_separate_clients_and_stay_bounded() {
        let mut p = PairStates::new(100);
        let k = KeyId(7);
        for i in 0..50 {
            let t = f64::from(i) * 90.0;
            p.on_access(1, k, t, 60.0); // client 1 every 90 s
            p.on_access(2, k, t + 45.0 * f64::from(i % 3), 60.0); // client 2 irregular
        }
        let a = p.on_access(1, k, 50.0 * 90.0, 60.0);
        assert!((f64::from(a.gap_mean_s) - 90.0).abs() < 1.0);
        assert!(a.cadence_score() > 0.75);
        for c in 0..1000 {
            p.on_access(100 + c, k, 10_000.0 + c as f64, 60.0);
            p.on_access(100 + c, k, 10_001.0 + c as f64, 60.0);
        }
        assert!(p.len() <= 100);
    }

    #[test]
    fn a_pair_seen_once_takes_no_map_entry_and_its_first_gap_counts_later() {
        let mut p = PairStates::new(100);
        let k = KeyId(3);
        for c in 0..1000 {
            p.on_access(c, k, f64::from(c as u32), 60.0);
        }
        assert_eq!(p.len(), 0, "one-off lookups stay out of the map");
        // A client polling every 90 s: its first gap is measured from the
        // access kept in the first-access table.
        let mut st = p.on_access(5000, k, 2000.0, 60.0);
        assert_eq!(st.gaps, 0);
        for i in 1..4 {
            st = p.on_access(5000, k, 2000.0 + f64::from(i) * 90.0, 60.0);
        }
        assert_eq!(p.len(), 1);
        assert_eq!(st.gaps, 3);
        assert!((f64::from(st.gap_mean_s) - 90.0).abs() < 0.2, "{st:?}");
        assert!(st.next_access(60.0).is_some());
    }

    #[test]
    fn keeping_a_hot_key_fresh_is_worth_more_than_a_lukewarm_one() {
        let hot = Worth::keep_fresh(1.0, 60.0);
        let warm = Worth::keep_fresh(1.0 / 60.0, 60.0);
        assert!(hot.p_hit * hot.net > 0.98, "{hot:?}");
        assert!(warm.p_hit * warm.net < 0.35, "{warm:?}");
        assert_eq!(Worth::keep_fresh(0.0, 60.0).p_hit, 0.0);
        assert_eq!(Worth::timed(1.0, 0.0, 60.0).net, 1.0);
        assert_eq!(Worth::timed(0.9, 60.0, 60.0).net, 0.5);
    }

    #[test]
    fn rate_decays_when_the_key_goes_quiet() {
        let mut s = KeyStates::default();
        let k = KeyId(1);
        for i in 0..600 {
            s.on_access(k, f64::from(i), 60.0); // one a second
        }
        let st = s.get(k);
        assert!(st.p_access_within(600.0, 60.0) > 0.99);
        assert!(st.p_access_within(600.0 + 6.0 * 3600.0, 60.0) < 0.01);
        assert_eq!(KeyStates::default().get(k).rate_at(5.0), 0.0);
    }
}
