//! Conversions between [`UnixSeconds`] and wall-clock time in a zone.
//!
//! Invariants: inputs are clamped to 0001-01-01T00:00:00Z ..=
//! 9999-12-31T23:59:59Z (NaN counts as the epoch), so nothing here panics;
//! a local time in a DST gap resolves to the first instant after the gap,
//! an ambiguous one (fold) to the earlier instant.

use crate::UnixSeconds;
use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// Earliest second handled: 0001-01-01T00:00:00Z.
const MIN_S: i64 = -62_135_596_800;
/// Latest second handled: 9999-12-31T23:59:59Z.
const MAX_S: i64 = 253_402_300_799;
/// Wider than any UTC offset chrono-tz knows (local mean times reach ±16 h).
const OFFSET_BOUND_S: i64 = 26 * 3600;

/// `now_s` as whole seconds (floor) and nanoseconds, clamped to the range
/// handled; NaN becomes the epoch.
pub(super) fn split_seconds(now_s: UnixSeconds) -> (i64, u32) {
    if now_s.is_nan() {
        return (0, 0);
    }
    if now_s < MIN_S as f64 {
        return (MIN_S, 0);
    }
    if now_s >= MAX_S as f64 + 1.0 {
        return (MAX_S, 999_999_999);
    }
    let secs = now_s.floor();
    let nanos = ((now_s - secs) * 1e9) as u32;
    (secs as i64, nanos.min(999_999_999))
}

/// The UTC instant `secs` + `nanos` (always in range after [`split_seconds`]).
fn utc(secs: i64, nanos: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, nanos).unwrap_or(DateTime::UNIX_EPOCH)
}

/// Local wall-clock time of `now_s` in `tz`.
pub(super) fn local_naive(tz: Tz, now_s: UnixSeconds) -> NaiveDateTime {
    let (secs, nanos) = split_seconds(now_s);
    utc(secs, nanos).with_timezone(&tz).naive_local()
}

/// Local wall-clock time of the whole second `secs` in `tz`.
pub(super) fn local_naive_s(tz: Tz, secs: i64) -> NaiveDateTime {
    utc(secs, 0).with_timezone(&tz).naive_local()
}

/// UTC offset (local minus UTC, seconds) in force at second `secs`.
pub(super) fn offset_s(tz: Tz, secs: i64) -> i64 {
    let offset = tz.offset_from_utc_datetime(&utc(secs, 0).naive_utc());
    i64::from(offset.fix().local_minus_utc())
}

/// Seconds since the epoch of `t`, with its fraction.
fn to_unix_s<T: TimeZone>(t: &DateTime<T>) -> UnixSeconds {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9
}

/// The instant at which `tz` shows wall-clock time `local`: the earlier one
/// in a fold, the first instant after the gap when `local` does not exist.
pub(super) fn resolve_local(tz: Tz, local: NaiveDateTime) -> UnixSeconds {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => to_unix_s(&t),
        LocalResult::Ambiguous(a, b) => to_unix_s(&a.min(b)),
        LocalResult::None => gap_end_s(tz, local) as f64,
    }
}

/// First second whose wall-clock time in `tz` is later than `local`, for a
/// `local` inside a gap: the instant the clock jumps over it.
///
/// Transitions fall on whole seconds, so the fraction of `local` does not
/// matter. Binary search between two instants that surely lie before and
/// after `local` in any zone.
fn gap_end_s(tz: Tz, local: NaiveDateTime) -> i64 {
    let target = local.and_utc().timestamp();
    let is_past = |secs: i64| secs + offset_s(tz, secs) > target;
    // Invariant: !is_past(lo) && is_past(hi).
    let (mut lo, mut hi) = (target - OFFSET_BOUND_S, target + OFFSET_BOUND_S);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if is_past(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// First second in `(after, before)` whose offset differs from the offset at
/// `after`, assuming at most one change in between; `before` if none.
pub(super) fn offset_change_s(tz: Tz, after: i64, before: i64) -> i64 {
    let first = offset_s(tz, after);
    if before - after < 2 || offset_s(tz, before - 1) == first {
        return before;
    }
    // Invariant: offset(lo) == first && offset(hi) != first.
    let (mut lo, mut hi) = (after, before - 1);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_s(tz, mid) == first {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use chrono_tz::America::New_York;

    fn ndt(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|date| date.and_hms_opt(h, min, 0))
            .expect("valid test date")
    }

    #[test]
    fn split_seconds_floors_negative_and_clamps_non_finite() {
        assert_eq!(split_seconds(-1.5), (-2, 500_000_000));
        assert_eq!(split_seconds(f64::NAN), (0, 0));
        assert_eq!(split_seconds(f64::NEG_INFINITY), (MIN_S, 0));
        assert_eq!(split_seconds(f64::INFINITY), (MAX_S, 999_999_999));
        assert_eq!(split_seconds(1e300).0, MAX_S);
    }

    #[test]
    fn gap_resolves_to_transition_and_fold_to_earlier_instant() {
        // 2026-03-08 02:30 does not exist in New York; 03:00 EDT = 07:00Z.
        let gap = resolve_local(New_York, ndt(2026, 3, 8, 2, 30));
        assert_eq!(gap, 1_772_953_200.0);
        // 2026-11-01 01:30 happens twice; the EDT one is 05:30Z.
        let fold = resolve_local(New_York, ndt(2026, 11, 1, 1, 30));
        assert_eq!(fold, 1_793_511_000.0);
    }

    #[test]
    fn offset_change_found_to_the_second() {
        let (start, end) = (1_772_946_000, 1_773_028_800); // 2026-03-08 local day
        assert_eq!(offset_change_s(New_York, start, end), 1_772_953_200);
        assert_eq!(offset_change_s(New_York, end, end + 86_400), end + 86_400);
    }
}
