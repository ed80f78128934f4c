//! Checks of configured values, each failure a [`ConfigError::Invalid`]
//! naming its dotted field (`server.request_timeout_s: must be > 0`).
//!
//! The rules and their words are the engine's ([`prewarm_core::check`]);
//! this module adds the field and, for settings that may be left out, the
//! default.

use prewarm_core::check::{self, Problem};

use super::error::ConfigError;

/// An [`ConfigError::Invalid`] for `field`.
pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// A rule's verdict on `field`, as a [`ConfigError`].
pub(crate) fn verdict(field: &str, verdict: Result<(), Problem>) -> Result<(), ConfigError> {
    verdict.map_err(|problem| invalid(field, problem))
}

/// `value` (or `default` when left out), if finite and > 0.
pub(crate) fn positive(field: &str, value: Option<f64>, default: f64) -> Result<f64, ConfigError> {
    let v = value.unwrap_or(default);
    verdict(field, check::positive(v)).map(|()| v)
}

/// A duration in seconds: `value` (or `default` when left out), if finite
/// and from `min_s` to a year ([`check::MAX_SECONDS`]). Durations above
/// zero take `min_s` = [`check::MIN_SECONDS`] or a longer floor of their
/// own (intervals); those that may be zero take 0.
pub(crate) fn seconds(
    field: &str,
    value: Option<f64>,
    default: f64,
    min_s: f64,
) -> Result<f64, ConfigError> {
    let v = value.unwrap_or(default);
    verdict(field, check::seconds_from(v, min_s)).map(|()| v)
}

/// A duration in milliseconds: `value` (or `default`), from `min_ms` to a
/// year.
pub(crate) fn millis(
    field: &str,
    value: Option<u64>,
    default: u64,
    min_ms: u64,
) -> Result<u64, ConfigError> {
    let v = value.unwrap_or(default);
    let max_ms = (check::MAX_SECONDS * 1000.0) as u64;
    verdict(
        field,
        check::at_least(v, min_ms).and_then(|()| check::at_most(v, max_ms)),
    )
    .map(|()| v)
}

/// `value` (or `default` when left out), if a share from 0 to 1.
pub(crate) fn fraction(field: &str, value: Option<f64>, default: f64) -> Result<f64, ConfigError> {
    let v = value.unwrap_or(default);
    verdict(field, check::fraction(v)).map(|()| v)
}

/// `value` (or `default` when left out), if at least `min`.
pub(crate) fn at_least<T: PartialOrd + Copy + std::fmt::Display>(
    field: &str,
    value: Option<T>,
    default: T,
    min: T,
) -> Result<T, ConfigError> {
    let v = value.unwrap_or(default);
    verdict(field, check::at_least(v, min)).map(|()| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_field_and_defaults_fill_gaps() {
        assert_eq!(positive("a.b", None, 2.0).unwrap(), 2.0);
        assert_eq!(
            positive("a.b", Some(0.0), 2.0).unwrap_err().to_string(),
            "a.b: must be > 0"
        );
        assert_eq!(
            seconds("a.c", Some(-1.0), 0.0, 0.0)
                .unwrap_err()
                .to_string(),
            "a.c: must be a number of seconds from 0 to 31536000 (a year)"
        );
        assert_eq!(at_least("a.d", None, 8usize, 1).unwrap(), 8);
        assert_eq!(
            at_least("a.d", Some(0usize), 8, 1).unwrap_err().to_string(),
            "a.d: must be >= 1"
        );
    }
}
