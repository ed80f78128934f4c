//! One exchange-local calendar day: its kind and the map from local clock
//! time to UTC.
//!
//! The day's kind (trading, early close, weekend, holiday) and its session
//! hours come from `prewarm_core::calendar`. Generators think in local milliseconds since local midnight
//! (`local_ms`); [`LocalDay::utc_ms`] turns them into Unix milliseconds
//! through a per-minute table built with chrono-tz, so DST changes are
//! handled in one place. On the spring-forward day the missing local hour
//! maps to zero-length minutes at the transition; on the fall-back day the
//! repeated hour is taken once (its first occurrence stretched over both).

use chrono::{NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;
use prewarm_core::calendar::{DayKind, ExchangeCalendar, PRE_MARKET_OPEN_S, REGULAR_OPEN_S};

/// Milliseconds in one local hour.
pub(crate) const HOUR_MS: u32 = 3_600_000;
/// Milliseconds in one minute.
pub(crate) const MINUTE_MS: u32 = 60_000;
/// Local minutes in a day.
pub(crate) const MINUTES_PER_DAY: usize = 1440;
/// Start of pre-market, 04:00.
pub(crate) const PREMARKET_OPEN_MS: u32 = PRE_MARKET_OPEN_S * 1000;
/// Start of the regular session, 09:30.
pub(crate) const OPEN_MS: u32 = REGULAR_OPEN_S * 1000;
/// The regular close when no session is held (only bounds clock maths).
const CLOSED_CLOSE_S: u32 = 16 * 3600;

/// One local day of the trace.
#[derive(Debug, Clone)]
pub(crate) struct LocalDay {
    /// The local date.
    pub date: NaiveDate,
    /// Position of the day in the trace (0 for `start_date`).
    pub index: u32,
    /// The day's kind on the exchange calendar.
    pub kind: DayKind,
    /// Unix milliseconds of the start of each local minute, and of the next
    /// local midnight at the end (1441 entries, non-decreasing).
    minute_ms: Vec<i64>,
}

/// The trace's day `index`, dated `date`, on `calendar`.
pub(crate) fn local_day(calendar: &ExchangeCalendar, date: NaiveDate, index: u32) -> LocalDay {
    LocalDay::new(date, index, calendar.day_kind(date), calendar.tz())
}

impl LocalDay {
    pub fn new(date: NaiveDate, index: u32, kind: DayKind, tz: Tz) -> Self {
        let mut minute_ms: Vec<Option<i64>> = (0..MINUTES_PER_DAY as u32)
            .map(|m| {
                let time = NaiveTime::from_num_seconds_from_midnight_opt(m * 60, 0)?;
                let local = tz.from_local_datetime(&date.and_time(time)).earliest()?;
                Some(local.timestamp_millis())
            })
            .collect();
        let next_midnight = date.succ_opt().and_then(|d| {
            tz.from_local_datetime(&d.and_time(NaiveTime::MIN))
                .earliest()
        });
        minute_ms.push(next_midnight.map(|t| t.timestamp_millis()));
        // Minutes that do not exist locally (spring forward) collapse onto
        // the next minute that does.
        let mut next = minute_ms.last().copied().flatten().unwrap_or(i64::MAX);
        let minute_ms = minute_ms
            .into_iter()
            .rev()
            .map(|m| {
                next = m.unwrap_or(next);
                next
            })
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Self {
            date,
            index,
            kind,
            minute_ms,
        }
    }

    /// `trading`, `early_close`, `weekend` or `holiday`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            DayKind::Trading => "trading",
            DayKind::EarlyClose => "early_close",
            DayKind::Weekend => "weekend",
            DayKind::Holiday => "holiday",
        }
    }

    /// Whether the exchange holds a session (full or early close).
    pub fn is_trading(&self) -> bool {
        self.kind.is_trading()
    }

    /// A trading day's volume factor on this day: 1 when trading,
    /// `lull_fraction` on a weekend or holiday.
    pub fn volume_scale(&self, lull_fraction: f64) -> f64 {
        if self.is_trading() {
            1.0
        } else {
            lull_fraction
        }
    }

    /// Unix milliseconds of local midnight starting the day.
    pub fn start_ms(&self) -> i64 {
        self.minute_ms[0]
    }

    /// Unix milliseconds of the next local midnight.
    pub fn end_ms(&self) -> i64 {
        self.minute_ms[MINUTES_PER_DAY]
    }

    /// Unix milliseconds of `local_ms` after local midnight (clamped to the
    /// day).
    pub fn utc_ms(&self, local_ms: u32) -> i64 {
        let minute = (local_ms / MINUTE_MS) as usize;
        if minute >= MINUTES_PER_DAY {
            return self.end_ms();
        }
        let within = i64::from(local_ms % MINUTE_MS);
        (self.minute_ms[minute] + within).min(self.minute_ms[minute + 1])
    }

    /// Unix milliseconds of the start of local minute `minute`, and the
    /// minute's real length in milliseconds (0 in a skipped DST hour).
    pub fn minute_span(&self, minute: usize) -> (i64, i64) {
        let start = self.minute_ms[minute];
        (start, self.minute_ms[minute + 1] - start)
    }

    /// End of the regular session, local ms (16:00, or 13:00 on an early
    /// close; 16:00 on a closed day).
    pub fn close_ms(&self) -> u32 {
        self.kind.regular_close_s().unwrap_or(CLOSED_CLOSE_S) * 1000
    }

    /// End of after-hours, local ms (four hours after the close).
    pub fn after_hours_end_ms(&self) -> u32 {
        self.kind
            .after_hours_close_s()
            .unwrap_or(CLOSED_CLOSE_S + 4 * 3600)
            * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> LocalDay {
        let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
        LocalDay::new(date, 0, DayKind::Trading, chrono_tz::America::New_York)
    }

    #[test]
    fn open_is_1430_utc_in_winter_and_1330_in_summer() {
        let winter = day(2026, 3, 6);
        assert_eq!(winter.utc_ms(OPEN_MS), 1_772_807_400_000); // 2026-03-06T14:30Z
        let summer = day(2026, 3, 9);
        assert_eq!(summer.utc_ms(OPEN_MS), 1_773_063_000_000); // 2026-03-09T13:30Z
    }

    #[test]
    fn spring_forward_day_has_23_hours_and_monotone_minutes() {
        let d = day(2026, 3, 8);
        assert_eq!(d.end_ms() - d.start_ms(), 23 * i64::from(HOUR_MS));
        assert!((0..MINUTES_PER_DAY).all(|m| d.minute_span(m).1 >= 0));
        assert_eq!(d.minute_span(150).1, 0, "02:30 does not exist");
        assert_eq!(d.utc_ms(3 * HOUR_MS) - d.start_ms(), 2 * i64::from(HOUR_MS));
    }

    #[test]
    fn fall_back_day_has_25_hours() {
        let d = day(2026, 11, 1);
        assert_eq!(d.end_ms() - d.start_ms(), 25 * i64::from(HOUR_MS));
        assert!((0..MINUTES_PER_DAY).all(|m| d.minute_span(m).1 >= 0));
    }
}
