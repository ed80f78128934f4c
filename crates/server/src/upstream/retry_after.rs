//! `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date.
//!
//! Invariants:
//! - The seconds form is digits only (`120`); anything else that is not an
//!   HTTP-date (`1e9`, `-1`, `1.5`, `soon`) is invalid and treated as
//!   absent (the caller logs it).
//! - A date is read against the daemon's clock; a date in the past means
//!   "now".
//! - The pause honoured is capped by the caller (`upstream.retry_after_max_s`),
//!   so no header can stop calls for longer.

use std::time::{Duration, UNIX_EPOCH};

/// What a `Retry-After` header said.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryAfter {
    /// No header.
    Absent,
    /// A valid header: wait this many seconds from now (>= 0).
    After(f64),
    /// A header that is neither digits nor an HTTP-date.
    Invalid,
}

/// Reads a `Retry-After` value against `now_s` (Unix seconds).
pub fn parse_retry_after(value: Option<&[u8]>, now_s: f64) -> RetryAfter {
    let Some(raw) = value else {
        return RetryAfter::Absent;
    };
    let Ok(text) = std::str::from_utf8(raw).map(str::trim) else {
        return RetryAfter::Invalid;
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only; an absurdly long number saturates (and is capped later).
        return RetryAfter::After(text.parse::<u64>().map_or(f64::MAX, |s| s as f64));
    }
    match httpdate::parse_http_date(text) {
        Ok(at) => {
            let at_s = at
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_secs_f64();
            RetryAfter::After((at_s - now_s).max(0.0))
        }
        Err(_) => RetryAfter::Invalid,
    }
}

impl RetryAfter {
    /// Seconds to pause: the header's, or `default_s` when absent or
    /// invalid; at least `min_s`, at most `max_s`.
    pub fn pause_s(self, default_s: f64, min_s: f64, max_s: f64) -> f64 {
        let s = match self {
            RetryAfter::After(s) => s,
            RetryAfter::Absent | RetryAfter::Invalid => default_s,
        };
        s.clamp(min_s, max_s.max(min_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    const NOW_S: f64 = 1_700_000_000.0;

    fn parse(text: &str) -> RetryAfter {
        parse_retry_after(Some(text.as_bytes()), NOW_S)
    }

    fn date_in(s: u64) -> String {
        httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(NOW_S as u64 + s))
    }

    #[test]
    fn seconds_form_is_digits_only() {
        assert_eq!(parse("120"), RetryAfter::After(120.0));
        assert_eq!(parse(" 7 "), RetryAfter::After(7.0));
        assert_eq!(parse("0"), RetryAfter::After(0.0));
        for bad in ["1e9", "-1", "1.5", "+3", "soon", "", "0x10", "inf", "NaN"] {
            assert_eq!(parse(bad), RetryAfter::Invalid, "{bad:?}");
        }
        assert_eq!(parse_retry_after(None, NOW_S), RetryAfter::Absent);
        assert_eq!(
            parse("99999999999999999999999"),
            RetryAfter::After(f64::MAX),
            "too long to read: saturates, then the cap applies"
        );
    }

    #[test]
    fn http_date_form_is_read_against_the_clock() {
        assert_eq!(parse(&date_in(120)), RetryAfter::After(120.0));
        let past = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000));
        assert_eq!(parse(&past), RetryAfter::After(0.0), "a past date is now");
        // The obsolete forms RFC 9110 still asks recipients to accept.
        assert!(matches!(
            parse("Sunday, 06-Nov-94 08:49:37 GMT"),
            RetryAfter::After(_)
        ));
        assert!(matches!(
            parse("Sun Nov  6 08:49:37 1994"),
            RetryAfter::After(_)
        ));
    }

    #[test]
    fn the_pause_is_capped_and_floored() {
        assert_eq!(parse(&date_in(120)).pause_s(1.0, 0.05, 300.0), 120.0);
        assert_eq!(parse("1000000000").pause_s(1.0, 0.05, 300.0), 300.0);
        assert_eq!(parse("1e9").pause_s(1.0, 0.05, 300.0), 1.0);
        assert_eq!(RetryAfter::Absent.pause_s(1.0, 0.05, 300.0), 1.0);
        assert_eq!(parse("0").pause_s(1.0, 0.05, 300.0), 0.05);
    }
}
