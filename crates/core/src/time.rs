//! Instants and durations as distinct types where they meet.
//!
//! Most of the code passes time as `f64` seconds ([`crate::UnixSeconds`]
//! for instants, `*_s` names for durations). Where an instant and a
//! duration are arguments of the same call, as in the freshness rule
//! [`crate::cache::is_fresh`], they are typed: [`UnixInstant`] and
//! [`Seconds`] do not convert into each other, so swapping them does not
//! compile. Both are plain `f64` inside, with `f64` arithmetic and
//! comparison: wrapping changes no figure.

use std::ops::{Add, Sub};

/// An instant: seconds since the Unix epoch (possibly fractional, possibly
/// infinite for "never").
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct UnixInstant(pub f64);

/// A duration in seconds, such as a TTL.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Seconds(pub f64);

impl Add<Seconds> for UnixInstant {
    type Output = UnixInstant;
    #[inline]
    fn add(self, d: Seconds) -> UnixInstant {
        UnixInstant(self.0 + d.0)
    }
}

impl Sub for UnixInstant {
    type Output = Seconds;
    #[inline]
    fn sub(self, earlier: UnixInstant) -> Seconds {
        Seconds(self.0 - earlier.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_that_of_seconds() {
        let t = UnixInstant(100.0);
        assert_eq!(t + Seconds(60.0), UnixInstant(160.0));
        assert_eq!(UnixInstant(160.5) - t, Seconds(60.5));
        assert!(t < t + Seconds(1e-9));
        assert!(UnixInstant(f64::NEG_INFINITY) < t);
    }
}
