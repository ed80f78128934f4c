//! Rules for configured numbers, each with the words a user reads when a
//! value breaks it (`must be > 0`).
//!
//! The engine's settings and the daemon's config check with these, so a
//! rule and its message exist once. Each rule answers `Ok(())` or the
//! problem; the caller names the field (`warming.refresh_fraction: must be
//! between 0 and 1`). NaN breaks every rule, and a non-finite value (`inf`,
//! `-inf`, NaN) breaking a rule of numbers is told that it must be finite
//! (`must be a finite number > 0`), not that it is out of range.

use std::fmt::Display;

/// What is wrong with a value, in words (`must be > 0`).
pub type Problem = String;

/// A finite number above zero (seconds, factors, lifts).
pub fn positive(v: f64) -> Result<(), Problem> {
    number_rule(v, v > 0.0, "", "> 0")
}

/// A finite number of zero or more (rates, bursts, grace periods).
pub fn non_negative(v: f64) -> Result<(), Problem> {
    number_rule(v, v >= 0.0, "", ">= 0")
}

/// A share or a chance: 0 to 1, both included.
pub fn fraction(v: f64) -> Result<(), Problem> {
    number_rule(v, (0.0..=1.0).contains(&v), "", "between 0 and 1")
}

/// A share strictly inside 0 and 1 (both excluded).
pub fn open_fraction(v: f64) -> Result<(), Problem> {
    number_rule(v, v > 0.0 && v < 1.0, "", "strictly between 0 and 1")
}

/// A finite number of at least `min` (ratios).
pub fn finite_at_least(v: f64, min: f64) -> Result<(), Problem> {
    number_rule(v, v >= min, "a number ", &format!("of at least {min}"))
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
    let range = format!("of seconds from {min} to {MAX_SECONDS} (a year)");
    number_rule(v, v >= min && v <= MAX_SECONDS, "a number ", &range)
}

/// A rule of numbers: `holds` for a finite `v`, else `must be {noun}{bound}`
/// (`must be > 0`, `must be a number of at least 1`); a non-finite `v`
/// breaks it as `must be a finite number {bound}`.
fn number_rule(v: f64, holds: bool, noun: &str, bound: &str) -> Result<(), Problem> {
    if !v.is_finite() {
        Err(format!("must be a finite number {bound}"))
    } else {
        rule(holds, &format!("must be {noun}{bound}"))
    }
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

    #[test]
    fn infinity_and_nan_are_told_to_be_finite_not_out_of_range() {
        for v in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
            assert_eq!(positive(v).unwrap_err(), "must be a finite number > 0");
            assert_eq!(non_negative(v).unwrap_err(), "must be a finite number >= 0");
            assert_eq!(
                fraction(v).unwrap_err(),
                "must be a finite number between 0 and 1"
            );
            assert_eq!(
                open_fraction(v).unwrap_err(),
                "must be a finite number strictly between 0 and 1"
            );
            assert_eq!(
                finite_at_least(v, 1.0).unwrap_err(),
                "must be a finite number of at least 1"
            );
            assert_eq!(
                seconds_from(v, 1.0).unwrap_err(),
                "must be a finite number of seconds from 1 to 31536000 (a year)"
            );
        }
        // Finite values keep their words.
        assert_eq!(
            seconds_from(0.0, 1.0).unwrap_err(),
            "must be a number of seconds from 1 to 31536000 (a year)"
        );
        assert_eq!(
            open_fraction(1.0).unwrap_err(),
            "must be strictly between 0 and 1"
        );
    }
}
