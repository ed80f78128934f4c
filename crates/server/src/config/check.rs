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

/// `value` (or `default` when left out), if finite and >= 0.
pub(crate) fn non_negative(
    field: &str,
    value: Option<f64>,
    default: f64,
) -> Result<f64, ConfigError> {
    let v = value.unwrap_or(default);
    verdict(field, check::non_negative(v)).map(|()| v)
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
            non_negative("a.c", Some(-1.0), 0.0)
                .unwrap_err()
                .to_string(),
            "a.c: must be >= 0"
        );
        assert_eq!(at_least("a.d", None, 8usize, 1).unwrap(), 8);
        assert_eq!(
            at_least("a.d", Some(0usize), 8, 1).unwrap_err().to_string(),
            "a.d: must be >= 1"
        );
    }
}
