//! The warming budget: a token bucket.
//!
//! Invariants: tokens never exceed `burst` and never go below zero; refill is
//! continuous at `rate_per_min / 60` tokens per second; the bucket is full at
//! the first instant it sees (replay semantics: "full at the first request").
//! Demand fetches never draw from it.

use crate::UnixSeconds;

/// A token bucket of `rate_per_min` tokens per minute and capacity `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_s: f64,
    burst: f64,
    tokens: f64,
    /// The instant `tokens` was last brought up to date; `None` before the
    /// bucket has seen any time (it is then full).
    last_s: Option<UnixSeconds>,
}

impl TokenBucket {
    /// A bucket that refills at `rate_per_min` and holds at most `burst`.
    /// Negative or non-finite inputs are treated as zero.
    pub fn new(rate_per_min: f64, burst: f64) -> Self {
        let clean = |x: f64| if x.is_finite() && x > 0.0 { x } else { 0.0 };
        let burst = clean(burst);
        TokenBucket {
            rate_per_s: clean(rate_per_min) / 60.0,
            burst,
            tokens: burst,
            last_s: None,
        }
    }

    /// Tokens per minute.
    pub fn rate_per_min(&self) -> f64 {
        self.rate_per_s * 60.0
    }

    /// Capacity of the bucket.
    pub fn burst(&self) -> f64 {
        self.burst
    }

    fn refill(&mut self, now_s: UnixSeconds) {
        match self.last_s {
            None => self.last_s = Some(now_s),
            Some(last) if now_s > last => {
                self.tokens = (self.tokens + (now_s - last) * self.rate_per_s).min(self.burst);
                self.last_s = Some(now_s);
            }
            // Time never runs backwards for the bucket: an earlier `now_s`
            // (a late report in the daemon) sees the tokens as they are.
            Some(_) => {}
        }
    }

    /// Tokens available at `now_s`.
    pub fn available(&mut self, now_s: UnixSeconds) -> f64 {
        self.refill(now_s);
        self.tokens
    }

    /// Takes one token if one is available at `now_s`.
    pub fn try_take(&mut self, now_s: UnixSeconds) -> bool {
        self.try_take_n(now_s, 1.0)
    }

    /// Takes `n` tokens if all are available at `now_s`; takes none
    /// otherwise (`n <= 0` always succeeds and takes nothing).
    pub fn try_take_n(&mut self, now_s: UnixSeconds, n: f64) -> bool {
        self.refill(now_s);
        if n <= 0.0 {
            return true;
        }
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Tokens the bucket would hold at `now_s`, without changing it.
    pub fn tokens_at(&self, now_s: UnixSeconds) -> f64 {
        match self.last_s {
            Some(last) if now_s > last => {
                (self.tokens + (now_s - last) * self.rate_per_s).min(self.burst)
            }
            _ => self.tokens,
        }
    }

    /// The earliest instant at or after `now_s` when one token is available,
    /// or `None` when the bucket never refills (rate zero and empty).
    pub fn next_token_at(&self, now_s: UnixSeconds) -> Option<UnixSeconds> {
        self.next_tokens_at(now_s, 1.0)
    }

    /// The earliest instant at or after `now_s` when `n` tokens are
    /// available, or `None` when that never happens.
    pub fn next_tokens_at(&self, now_s: UnixSeconds, n: f64) -> Option<UnixSeconds> {
        let base = self.last_s.map_or(now_s, |l| l.max(now_s));
        let tokens = self.tokens_at(base);
        if tokens >= n {
            return Some(base);
        }
        if self.rate_per_s <= 0.0 || self.burst < n {
            return None;
        }
        // Round up so that the tokens are really there at the instant
        // returned (a driver waking at it must not find 0.999… and wait
        // for the same instant forever).
        let mut at = base + (n - tokens) / self.rate_per_s;
        while self.tokens_at(at) < n {
            at += (at.abs() * f64::EPSILON).max(1e-9) * 4.0;
        }
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn starts_full_and_refills_continuously() {
        let mut b = TokenBucket::new(60.0, 3.0);
        let t0 = 1_000.0;
        assert_eq!(b.available(t0), 3.0);
        assert!(b.try_take(t0) && b.try_take(t0) && b.try_take(t0));
        assert!(!b.try_take(t0), "empty after the burst");
        assert!(!b.try_take(t0 + 0.999));
        assert!(b.try_take(t0 + 1.0), "one token per second at 60/min");
        assert_eq!(b.next_token_at(t0 + 1.0), Some(t0 + 2.0));
        assert_eq!(b.available(t0 + 100.0), 3.0, "never above burst");
    }

    #[test]
    fn taking_n_takes_all_or_none() {
        let mut b = TokenBucket::new(60.0, 10.0);
        let t0 = 50.0;
        assert!(b.try_take_n(t0, 7.0));
        assert!(!b.try_take_n(t0, 4.0), "3 left");
        assert_eq!(b.available(t0), 3.0, "a refused take takes nothing");
        assert!(b.try_take_n(t0, 0.0));
        assert_eq!(b.next_tokens_at(t0, 4.0), Some(t0 + 1.0));
        assert!(b.try_take_n(t0 + 1.0, 4.0));
    }

    #[test]
    fn zero_rate_never_refills() {
        let mut b = TokenBucket::new(0.0, 0.0);
        assert!(!b.try_take(0.0));
        assert_eq!(b.next_token_at(0.0), None);
    }

    /// Regression: the instant of the next token was computed a rounding
    /// error too early, so a driver woke, found 0.999… tokens and asked
    /// again for the same instant, forever.
    #[test]
    fn next_token_instant_has_a_whole_token() {
        let mut b = TokenBucket::new(1.0, 1.0);
        let t0 = 1_772_461_800.123;
        assert!(b.try_take(t0));
        for i in 0..1000 {
            let now = t0 + f64::from(i) * 0.37;
            let at = b.next_token_at(now).unwrap();
            assert!(b.tokens_at(at) >= 1.0, "at {at}");
            if at <= now + 0.37 {
                assert!(b.try_take(at));
            }
        }
    }

    proptest! {
        /// Over any span, the tokens taken never exceed burst + rate * span.
        #[test]
        fn never_exceeds_rate(rate in 1.0f64..500.0, gaps in proptest::collection::vec(0.0f64..5.0, 1..300)) {
            let mut b = TokenBucket::new(rate, rate);
            let mut t = 0.0;
            let mut taken = 0u32;
            for g in gaps {
                t += g;
                while b.try_take(t) { taken += 1; }
            }
            let allowed = rate + rate / 60.0 * t + 1e-6;
            prop_assert!(f64::from(taken) <= allowed);
            prop_assert!(b.available(t) >= 0.0);
        }
    }
}
