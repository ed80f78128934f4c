//! Rules for configured numbers, each with the words a user reads when a
//! value breaks it (`must be > 0`).
//!
//! The engine's settings and the daemon's config check with these, so a
//! rule and its message exist once. Each rule answers `Ok(())` or the
//! problem; the caller names the field (`warming.refresh_fraction: must be
//! between 0 and 1`). NaN breaks every rule.

use std::fmt::Display;

/// What is wrong with a value, in words (`must be > 0`).
pub type Problem = String;

/// A finite number above zero (seconds, factors, lifts).
pub fn positive(v: f64) -> Result<(), Problem> {
    rule(v.is_finite() && v > 0.0, "must be > 0")
}

/// A finite number of zero or more (rates, bursts, grace periods).
pub fn non_negative(v: f64) -> Result<(), Problem> {
    rule(v.is_finite() && v >= 0.0, "must be >= 0")
}

/// A share or a chance: 0 to 1, both included.
pub fn fraction(v: f64) -> Result<(), Problem> {
    rule((0.0..=1.0).contains(&v), "must be between 0 and 1")
}

/// A share strictly inside 0 and 1 (both excluded).
pub fn open_fraction(v: f64) -> Result<(), Problem> {
    rule(v > 0.0 && v < 1.0, "must be strictly between 0 and 1")
}

/// A finite number of at least `min` (ratios).
pub fn finite_at_least(v: f64, min: f64) -> Result<(), Problem> {
    rule(
        v.is_finite() && v >= min,
        &format!("must be a number of at least {min}"),
    )
}

/// A count (or any ordered value) of at least `min`.
pub fn at_least<T: PartialOrd + Display>(v: T, min: T) -> Result<(), Problem> {
    if v >= min {
        Ok(())
    } else {
        Err(format!("must be >= {min}"))
    }
}

/// A value of at most `max`.
pub fn at_most<T: PartialOrd + Display>(v: T, max: T) -> Result<(), Problem> {
    if v <= max {
        Ok(())
    } else {
        Err(format!("must be <= {max}"))
    }
}

/// Longest duration any setting may take, seconds (a year): more is a
/// typo, and would overflow clocks and timers.
pub const MAX_SECONDS: f64 = 31_536_000.0;

/// Shortest duration a setting that must be above zero may take, seconds
/// (a millisecond, the timers' resolution).
pub const MIN_SECONDS: f64 = 0.001;

/// A finite number of seconds from `min` to [`MAX_SECONDS`] (durations,
/// intervals, timeouts).
pub fn seconds_from(v: f64, min: f64) -> Result<(), Problem> {
    rule(
        v.is_finite() && v >= min && v <= MAX_SECONDS,
        &format!("must be a number of seconds from {min} to {MAX_SECONDS} (a year)"),
    )
}

fn rule(holds: bool, problem: &str) -> Result<(), Problem> {
    if holds {
        Ok(())
    } else {
        Err(problem.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_hold_inside_and_fail_outside_with_their_words() {
        assert!(positive(0.5).is_ok());
        assert_eq!(positive(0.0).unwrap_err(), "must be > 0");
        assert!(positive(f64::INFINITY).is_err());
        assert!(non_negative(0.0).is_ok());
        assert_eq!(non_negative(-1.0).unwrap_err(), "must be >= 0");
        assert!(fraction(0.0).is_ok() && fraction(1.0).is_ok());
        assert_eq!(fraction(1.5).unwrap_err(), "must be between 0 and 1");
        assert!(open_fraction(0.5).is_ok());
        assert!(open_fraction(0.0).is_err() && open_fraction(1.0).is_err());
        assert!(finite_at_least(1.0, 1.0).is_ok());
        assert_eq!(
            finite_at_least(0.9, 1.0).unwrap_err(),
            "must be a number of at least 1"
        );
        assert!(finite_at_least(f64::INFINITY, 1.0).is_err());
        assert!(at_least(1usize, 1).is_ok());
        assert_eq!(at_least(0usize, 1).unwrap_err(), "must be >= 1");
        assert_eq!(at_most(2.0, 1.0).unwrap_err(), "must be <= 1");
        for rule in [positive, non_negative, fraction, open_fraction] {
            assert!(rule(f64::NAN).is_err());
        }
    }
}
