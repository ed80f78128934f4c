//! [`LocalClock`]: exchange-local time for hot paths.
//!
//! Invariant: `LocalClock::at(t) == ExchangeCalendar::local_time(t)` for
//! every `t`. The clock caches one local day `[start_s, end_s)`, the instant
//! `change_s` of the UTC-offset change inside it (if any) and the shift from
//! Unix seconds to second-of-day on either side; a call inside the cached day
//! is a comparison, a floor and an add. The cache is only built after
//! checking that the offset is constant on both sides of `change_s` (sampled
//! every hour and at the ends) and that every instant maps into the cached
//! date; otherwise the call falls back to the slow path.

use super::{DayKind, ExchangeCalendar, MarketSession, day_index, zone};
use crate::UnixSeconds;
use chrono::NaiveDate;

/// Exchange-local time of an instant, as [`LocalClock::at`] returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalTime {
    /// The local date.
    pub date: NaiveDate,
    /// Days since 1970-01-01 of the local date.
    pub day_index: i32,
    /// The kind of the local date.
    pub kind: DayKind,
    /// Wall-clock minute of the day, 0..1440.
    pub minute_of_day: u32,
    /// Wall-clock second of the day, 0..86_400.
    pub second_of_day: u32,
}

impl LocalTime {
    /// The market session at this local time.
    pub fn session(&self) -> MarketSession {
        MarketSession::for_day_second(self.kind, self.second_of_day)
    }
}

/// A cheap cached clock over an [`ExchangeCalendar`] for hot paths.
///
/// Calls within the cached local day cost a few arithmetic operations;
/// chrono-tz is consulted only when `now_s` leaves that day (in either
/// direction), so feed it mostly-nearby instants for speed. It never reads
/// the system clock.
#[derive(Debug, Clone)]
pub struct LocalClock {
    cal: ExchangeCalendar,
    day: Option<CachedDay>,
}

impl LocalClock {
    /// A clock over `cal`, with an empty cache.
    pub fn new(cal: ExchangeCalendar) -> Self {
        LocalClock { cal, day: None }
    }

    /// The calendar this clock reads.
    pub fn calendar(&self) -> &ExchangeCalendar {
        &self.cal
    }

    /// Exchange-local time of `now_s`; equal to
    /// [`ExchangeCalendar::local_time`].
    #[inline]
    pub fn at(&mut self, now_s: UnixSeconds) -> LocalTime {
        match &self.day {
            Some(day) if day.contains(now_s) => day.local_time(now_s),
            _ => self.reload(now_s),
        }
    }

    /// The market session at `now_s`; equal to
    /// [`ExchangeCalendar::session_at`].
    #[inline]
    pub fn session_at(&mut self, now_s: UnixSeconds) -> MarketSession {
        self.at(now_s).session()
    }

    #[cold]
    fn reload(&mut self, now_s: UnixSeconds) -> LocalTime {
        self.day = CachedDay::load(&self.cal, now_s);
        match &self.day {
            Some(day) if day.contains(now_s) => day.local_time(now_s),
            _ => self.cal.local_time(now_s),
        }
    }
}

/// One local day, precomputed.
#[derive(Debug, Clone, Copy)]
struct CachedDay {
    /// First instant of the day (inclusive).
    start_s: f64,
    /// First instant of the next day (exclusive).
    end_s: f64,
    /// First instant with the second offset (`end_s` when none).
    change_s: f64,
    /// Second-of-day minus whole Unix seconds before `change_s`.
    shift_before_s: i64,
    /// The same from `change_s` on.
    shift_after_s: i64,
    date: NaiveDate,
    day_index: i32,
    kind: DayKind,
}

impl CachedDay {
    #[inline]
    fn contains(&self, now_s: UnixSeconds) -> bool {
        self.start_s <= now_s && now_s < self.end_s
    }

    #[inline]
    fn local_time(&self, now_s: UnixSeconds) -> LocalTime {
        let shift_s = if now_s < self.change_s {
            self.shift_before_s
        } else {
            self.shift_after_s
        };
        let second_of_day = (now_s.floor() as i64 + shift_s) as u32;
        LocalTime {
            date: self.date,
            day_index: self.day_index,
            kind: self.kind,
            minute_of_day: second_of_day / 60,
            second_of_day,
        }
    }

    /// The local day around `now_s`, or `None` if it cannot be cached safely.
    fn load(cal: &ExchangeCalendar, now_s: UnixSeconds) -> Option<CachedDay> {
        let tz = cal.tz();
        let (secs, _) = zone::split_seconds(now_s);
        let date = zone::local_naive_s(tz, secs).date();
        let info = cal.day_info_for(date);
        if !info.end_s.is_finite() {
            return None;
        }
        let (start, end) = (info.start_s as i64, info.end_s as i64);
        if !(start <= secs && secs < end) {
            return None;
        }
        let change = zone::offset_change_s(tz, start, end);
        let (before, after) = (zone::offset_s(tz, start), zone::offset_s(tz, end - 1));
        let offset_ok = |t: i64| zone::offset_s(tz, t) == if t < change { before } else { after };
        let hours_ok = (start..end).step_by(3600).chain([change - 1, change]);
        if !hours_ok.filter(|t| (start..end).contains(t)).all(offset_ok) {
            return None;
        }
        let day_index = day_index(date);
        let midnight = i64::from(day_index) * 86_400;
        let (shift_before_s, shift_after_s) = (before - midnight, after - midnight);
        let in_day = |local: i64| (0..86_400).contains(&local);
        let edges = [start + shift_before_s, end - 1 + shift_after_s];
        let change_edges = if change < end {
            [change - 1 + shift_before_s, change + shift_after_s]
        } else {
            edges
        };
        if !edges.into_iter().chain(change_edges).all(in_day) {
            return None;
        }
        Some(CachedDay {
            start_s: start as f64,
            end_s: end as f64,
            change_s: change as f64,
            shift_before_s,
            shift_after_s,
            date,
            day_index,
            kind: info.kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Tz;
    use proptest::prelude::*;

    /// 2020-01-01T00:00:00Z and 2030-01-01T00:00:00Z.
    const FROM_2020_S: f64 = 1_577_836_800.0;
    const TO_2030_S: f64 = 1_893_456_000.0;

    const ZONES: [Tz; 6] = [
        chrono_tz::America::New_York,
        chrono_tz::America::Santiago,    // DST changes at local midnight
        chrono_tz::America::Havana,      // fold across 00:00-01:00
        chrono_tz::Australia::Lord_Howe, // 30-minute DST shift
        chrono_tz::Europe::London,
        chrono_tz::Asia::Kolkata,
    ];

    fn assert_agrees_on_every_minute(cal: &ExchangeCalendar, from_s: f64, days: u32) {
        let mut clock = LocalClock::new(cal.clone());
        for minute in 0..days * 1440 {
            let t = from_s + f64::from(minute) * 60.0 + 0.25;
            assert_eq!(clock.at(t), cal.local_time(t), "at {t}");
            assert_eq!(clock.session_at(t), cal.session_at(t), "session at {t}");
        }
    }

    #[test]
    fn agrees_with_slow_path_on_every_minute_around_both_2026_dst_days() {
        let cal = ExchangeCalendar::nyse();
        // 2026-03-06T00:00Z for 5 days (spring forward on Sunday 03-08).
        assert_agrees_on_every_minute(&cal, 1_772_755_200.0, 5);
        // 2026-10-30T00:00Z for 5 days (fall back on Sunday 11-01).
        assert_agrees_on_every_minute(&cal, 1_793_318_400.0, 5);
        // 2025-12-23T00:00Z for 4 days (early close, holiday).
        assert_agrees_on_every_minute(&cal, 1_766_448_000.0, 4);
    }

    #[test]
    fn agrees_on_every_second_across_the_spring_forward_instant() {
        let cal = ExchangeCalendar::nyse();
        let mut clock = LocalClock::new(cal.clone());
        let change_s = 1_772_953_200.0; // 2026-03-08T07:00Z = 03:00 EDT
        for dt in -3600..3600 {
            let t = change_s + f64::from(dt);
            assert_eq!(clock.at(t), cal.local_time(t), "at {t}");
        }
        assert_eq!(clock.at(change_s - 1.0).second_of_day, 2 * 3600 - 1);
        assert_eq!(clock.at(change_s).second_of_day, 3 * 3600);
    }

    #[test]
    fn going_backwards_in_time_reloads_the_previous_day() {
        let cal = ExchangeCalendar::nyse();
        let mut clock = LocalClock::new(cal.clone());
        for t in [
            1_793_600_000.0,
            1_793_500_000.0,
            1_793_400_000.0,
            1_793_600_000.0,
        ] {
            assert_eq!(clock.at(t), cal.local_time(t), "at {t}");
        }
    }

    #[test]
    fn non_finite_and_extreme_instants_match_the_slow_path() {
        let cal = ExchangeCalendar::nyse();
        let mut clock = LocalClock::new(cal.clone());
        for t in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            -1e300,
            -0.5,
        ] {
            assert_eq!(clock.at(t), cal.local_time(t), "at {t}");
        }
    }

    #[test]
    fn every_zone_agrees_through_2026_and_caches_every_day() {
        for tz in ZONES {
            let cal = ExchangeCalendar::with_timezone(tz);
            let mut clock = LocalClock::new(cal.clone());
            // Every 7 minutes and 13 seconds: hits every minute phase.
            for step in 0..365 * 24 * 60 / 7 {
                let t = 1_767_225_600.0 + f64::from(step) * 433.0;
                assert_eq!(clock.at(t), cal.local_time(t), "{tz} at {t}");
                assert!(clock.day.is_some(), "{tz}: day of {t} not cached");
            }
        }
    }

    proptest! {
        #[test]
        fn random_instants_agree_with_slow_path(
            zone in 0..ZONES.len(),
            t in FROM_2020_S..TO_2030_S,
        ) {
            let cal = ExchangeCalendar::with_timezone(ZONES[zone]);
            let mut clock = LocalClock::new(cal.clone());
            prop_assert_eq!(clock.at(t), cal.local_time(t));
        }

        #[test]
        fn random_walks_agree_with_slow_path(
            zone in 0..ZONES.len(),
            start in FROM_2020_S..TO_2030_S,
            steps in proptest::collection::vec(-7_200.0f64..40_000.0, 1..200),
        ) {
            let cal = ExchangeCalendar::with_timezone(ZONES[zone]);
            let mut clock = LocalClock::new(cal.clone());
            let mut t = start;
            for step in steps {
                t += step;
                prop_assert_eq!(clock.at(t), cal.local_time(t), "at {}", t);
            }
        }
    }
}
