//! Time-of-day profiles in exchange-local time, for the keys that earn one.
//!
//! A profile has 96 quarter-hour buckets for trading days (early closes
//! included) and 24 hourly buckets for weekends and holidays, as `u16`
//! fixed point. Buckets are forward-decayed per local calendar day: the
//! real decayed count of bucket `b` on day `today` is
//! `buckets[b] * 2^(shift - 6 - (today - base_day) / half_life_days)`.
//! An access adds `2^(6 - shift + (today - base_day) / half_life_days)`
//! units with stochastic rounding; when a bucket would overflow, every
//! bucket is halved and `shift` grows, so no per-day sweep is needed and
//! the largest bucket keeps 15+ bits of precision.
//!
//! Expected accesses per day of a kind divide by the decayed number of days
//! of that kind since the profile was created ([`DayCounters`]).

use super::record::TrackedKey;

/// Quarter-hour buckets of a trading day.
pub const TRADING_BUCKETS: usize = 96;
/// Hourly buckets of a non-trading day.
pub const OTHER_BUCKETS: usize = 24;
pub(crate) const BUCKETS: usize = TRADING_BUCKETS + OTHER_BUCKETS;
const _: () = assert!(BUCKETS <= 128, "a profile's bucket mask is a u128");
/// Seconds covered by a trading-day bucket.
pub const TRADING_BUCKET_S: u32 = 900;
/// Seconds covered by a non-trading-day bucket.
pub const OTHER_BUCKET_S: u32 = 3600;
const UNIT_LOG2: i32 = 6;
/// Waitlisted keys kept for profile reassignment.
pub(crate) const MAX_WAITLIST: usize = 1024;

/// Index of the bucket holding local `second_of_day` on a day of the kind.
#[inline]
pub(crate) fn bucket_of(trading: bool, second_of_day: u32) -> usize {
    let s = second_of_day.min(86_399);
    if trading {
        (s / TRADING_BUCKET_S) as usize
    } else {
        TRADING_BUCKETS + (s / OTHER_BUCKET_S) as usize
    }
}

/// Seconds covered by bucket `b`.
pub(crate) fn bucket_len_s(b: usize) -> f64 {
    if b < TRADING_BUCKETS {
        f64::from(TRADING_BUCKET_S)
    } else {
        f64::from(OTHER_BUCKET_S)
    }
}

/// Kind slot of a bucket: 0 trading, 1 other.
fn kind_of_bucket(b: usize) -> usize {
    usize::from(b >= TRADING_BUCKETS)
}

/// Decayed numbers of trading and non-trading local days seen so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DayCounters {
    /// Last local day counted (days since 1970-01-01), `i32::MIN` before
    /// the first.
    pub day: i32,
    /// `[trading, other]`, including `day`.
    pub counts: [f64; 2],
}

impl Default for DayCounters {
    fn default() -> Self {
        DayCounters {
            day: i32::MIN,
            counts: [0.0; 2],
        }
    }
}

impl DayCounters {
    /// Counts every day after `self.day` up to `day`, whose kinds
    /// `is_trading(day)` tells. Long gaps only count their last days (older
    /// ones have decayed to nothing).
    pub fn advance(&mut self, day: i32, hl_days: f64, is_trading: impl Fn(i32) -> bool) {
        if day <= self.day {
            return;
        }
        let d = (-1.0 / hl_days).exp2();
        let horizon = (hl_days * 40.0).ceil() as i32;
        let fresh = self.day == i32::MIN;
        let first = if fresh {
            day
        } else {
            (self.day + 1).max(day - horizon)
        };
        if !fresh && first - self.day - 1 > 0 {
            let skipped = first - self.day - 1;
            let f = d.powi(skipped);
            self.counts.iter_mut().for_each(|c| *c *= f);
        }
        for x in first..=day {
            self.counts.iter_mut().for_each(|c| *c *= d);
            self.counts[usize::from(!is_trading(x))] += 1.0;
        }
        self.day = day;
    }
}

/// One key's profile (264 bytes).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Profile {
    pub owner: TrackedKey,
    pub base_day: i32,
    pub created_day: i32,
    pub shift: i32,
    /// Day counters just before the creation day, `[trading, other]`.
    pub days_before: [f32; 2],
    /// Bit `b` is set when `buckets[b]` may be non-zero (a superset):
    /// queries skip a profile with nothing in the buckets they cover by
    /// reading this word instead of the buckets.
    pub maybe_nonzero: u128,
    pub buckets: [u16; BUCKETS],
}

impl Profile {
    pub fn new(owner: TrackedKey, today: i32, today_trading: bool, days: &DayCounters) -> Self {
        let mut before = days.counts;
        if days.day == today {
            before[usize::from(!today_trading)] -= 1.0;
        }
        Profile {
            owner,
            base_day: today,
            created_day: today,
            shift: 0,
            days_before: [before[0].max(0.0) as f32, before[1].max(0.0) as f32],
            maybe_nonzero: 0,
            buckets: [0; BUCKETS],
        }
    }

    /// Adds one access to bucket `b` on local day `today`.
    pub fn add(&mut self, b: usize, today: i32, hl_days: f64, rng: &mut u64) {
        let age = f64::from(today - self.base_day) / hl_days;
        let mut inc = (age + f64::from(UNIT_LOG2 - self.shift)).exp2();
        if inc.is_nan() || inc > 4_294_967_296.0 {
            // Idle for ages: everything has decayed away; start over.
            self.buckets = [0; BUCKETS];
            self.base_day = today;
            self.shift = 0;
            inc = f64::from(1u32 << UNIT_LOG2);
        }
        while f64::from(self.buckets[b]) + inc > f64::from(u16::MAX) {
            self.halve(rng);
            inc *= 0.5;
        }
        let whole = inc.floor();
        let frac = inc - whole;
        let up = frac > 0.0 && unit_f64(rng) < frac;
        self.buckets[b] += whole as u16 + u16::from(up);
        self.maybe_nonzero |= 1u128 << b;
    }

    /// The mask of `buckets` recomputed (after a restore).
    pub fn nonzero_mask(buckets: &[u16; BUCKETS]) -> u128 {
        buckets
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != 0)
            .fold(0, |m, (b, _)| m | 1u128 << b)
    }

    fn halve(&mut self, rng: &mut u64) {
        let mut bits = next_u64(rng);
        for (i, x) in self.buckets.iter_mut().enumerate() {
            if i % 64 == 0 && i > 0 {
                bits = next_u64(rng);
            }
            *x = (*x >> 1) + (*x & 1 & (bits >> (i % 64)) as u16);
        }
        self.shift += 1;
    }

    /// Factor from bucket units to decayed accesses on day `today`.
    pub fn unit(&self, today: i32, hl_days: f64) -> f64 {
        let age = f64::from(today - self.base_day) / hl_days;
        (f64::from(self.shift - UNIT_LOG2) - age).exp2()
    }

    /// Decayed number of days of each kind this profile has observed
    /// (at least 1, so a fresh profile is not divided by zero).
    pub fn days_observed(&self, today: i32, days: &DayCounters, hl_days: f64) -> [f64; 2] {
        let f = (-f64::from(today - self.created_day) / hl_days).exp2();
        [0, 1].map(|k| (days.counts[k] - f64::from(self.days_before[k]) * f).max(1.0))
    }

    /// Expected accesses per day of bucket `b`'s kind, falling in `b`.
    pub fn expected_in_bucket(&self, b: usize, unit: f64, days: [f64; 2]) -> f64 {
        f64::from(self.buckets[b]) * unit / days[kind_of_bucket(b)]
    }
}

/// The bounded slab of profiles.
#[derive(Debug, Clone, Default)]
pub(crate) struct Profiles {
    pub slots: Vec<Profile>,
    /// Slots whose profile is unowned.
    pub free: Vec<u32>,
    /// Keys that earned a profile while none was free.
    pub waitlist: Vec<TrackedKey>,
}

impl Profiles {
    pub fn assigned(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Gives `p` a slot if fewer than `cap` are assigned.
    pub fn assign(&mut self, p: Profile, cap: usize) -> Option<u32> {
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = p;
            return Some(i);
        }
        if self.slots.len() < cap {
            super::record::reserve_capped(&mut self.slots, cap);
            self.slots.push(p);
            return Some((self.slots.len() - 1) as u32);
        }
        None
    }

    pub fn release(&mut self, i: u32) {
        self.slots[i as usize].owner = TrackedKey {
            id: u32::MAX,
            generation: 0,
        };
        self.free.push(i);
    }

    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Profile>()
            + self.free.capacity() * 4
            + self.waitlist.capacity() * size_of::<TrackedKey>()
    }
}

/// xorshift64* step: deterministic, so snapshots replay identically.
#[inline]
pub(crate) fn next_u64(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// Uniform in `[0, 1)`.
#[inline]
pub(crate) fn unit_f64(state: &mut u64) -> f64 {
    (next_u64(state) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> TrackedKey {
        TrackedKey {
            id: 0,
            generation: 0,
        }
    }

    #[test]
    fn buckets_split_trading_quarter_hours_from_other_hours() {
        assert_eq!(bucket_of(true, 9 * 3600 + 35 * 60), 38); // 09:30 bucket
        assert_eq!(bucket_of(false, 9 * 3600 + 35 * 60), 96 + 9);
        assert_eq!(bucket_of(true, 86_399), 95);
        assert_eq!(bucket_of(false, 90_000), BUCKETS - 1);
    }

    #[test]
    fn counts_decay_by_half_life_and_survive_overflow() {
        let days = DayCounters {
            day: 100,
            counts: [1.0, 0.0],
        };
        let mut p = Profile::new(owner(), 100, true, &days);
        let mut rng = 7;
        for _ in 0..5000 {
            p.add(38, 100, 10.0, &mut rng);
        }
        let now = f64::from(p.buckets[38]) * p.unit(100, 10.0);
        assert!((now - 5000.0).abs() < 5000.0 * 0.002, "{now}");
        let later = f64::from(p.buckets[38]) * p.unit(110, 10.0);
        assert!((later - now / 2.0).abs() < 1e-9 * now);
        assert!(
            p.shift > 0,
            "5000 accesses overflow 1023 per bucket at unit 64"
        );
    }

    #[test]
    fn day_counters_count_kinds_and_decay() {
        let mut d = DayCounters::default();
        // day 1..=7 with days 6 and 7 a weekend
        d.advance(1, 1e9, |_| true);
        d.advance(7, 1e9, |x| x < 6);
        assert!((d.counts[0] - 5.0).abs() < 1e-6 && (d.counts[1] - 2.0).abs() < 1e-6);
        let mut e = DayCounters::default();
        e.advance(1, 1.0, |_| true);
        e.advance(2, 1.0, |_| true);
        assert!((e.counts[0] - 1.5).abs() < 1e-12);
    }
}
