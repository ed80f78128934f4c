//! NYSE trading-day rules, computed for any year.
//!
//! Holidays (NYSE Rule 7.2): New Year's Day, Martin Luther King Jr. Day
//! (third Monday of January, from 1998), Washington's Birthday (third Monday
//! of February), Good Friday (Easter computus), Memorial Day (last Monday of
//! May), Juneteenth (from 2022), Independence Day, Labor Day (first Monday of
//! September), Thanksgiving (fourth Thursday of November) and Christmas.
//! A fixed-date holiday on a Sunday is observed the Monday after; on a
//! Saturday, the Friday before, unless that Friday ends a month (an
//! accounting period): so New Year's Day on a Saturday is not observed at
//! all and December 31 stays a trading day.
//!
//! Early closes (13:00): July 3, the day after Thanksgiving and December 24,
//! each when it is a weekday that is not itself a holiday (in 2026 July 3 is
//! the observed Independence Day; in 2027 July 3 is a Saturday and December
//! 24 the observed Christmas, so neither July 2 nor December 23 closes early).
//!
//! One-off closures (national days of mourning, storms) come from
//! [`SPECIAL_DAYS`], which the calendar consults before these rules. Older
//! closures that the current rules do not produce (e.g. Lincoln's Birthday
//! or election days before 1985) are not modelled.

use super::DayKind;
use chrono::{Datelike, Days, NaiveDate, Weekday};

/// One-off NYSE closures since 1985, as (year, month, day, reason).
pub(super) const SPECIAL_DAYS: &[(i32, u32, u32, &str)] = &[
    (1985, 9, 27, "Hurricane Gloria"),
    (1994, 4, 27, "National day of mourning for Richard Nixon"),
    (2001, 9, 11, "September 11 attacks"),
    (2001, 9, 12, "September 11 attacks"),
    (2001, 9, 13, "September 11 attacks"),
    (2001, 9, 14, "September 11 attacks"),
    (2004, 6, 11, "National day of mourning for Ronald Reagan"),
    (2007, 1, 2, "National day of mourning for Gerald Ford"),
    (2012, 10, 29, "Hurricane Sandy"),
    (2012, 10, 30, "Hurricane Sandy"),
    (
        2018,
        12,
        5,
        "National day of mourning for George H. W. Bush",
    ),
    (2025, 1, 9, "National day of mourning for Jimmy Carter"),
];

/// The kind of `date` by the NYSE rules alone (no special days).
pub(super) fn rule_day_kind(date: NaiveDate) -> DayKind {
    if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
        DayKind::Weekend
    } else if is_rule_holiday(date) {
        DayKind::Holiday
    } else if is_rule_early_close(date) {
        DayKind::EarlyClose
    } else {
        DayKind::Trading
    }
}

/// Whether the weekday `date` is a regular NYSE holiday (as observed).
fn is_rule_holiday(date: NaiveDate) -> bool {
    let year = date.year();
    let holiday = match date.month() {
        1 => {
            let mlk = (year >= 1998).then(|| nth_weekday(year, 1, Weekday::Mon, 3));
            return Some(date) == observed_fixed(year, 1, 1) || Some(date) == mlk.flatten();
        }
        2 => nth_weekday(year, 2, Weekday::Mon, 3),
        3 | 4 => good_friday(year),
        5 => last_weekday(year, 5, Weekday::Mon),
        6 if year >= 2022 => observed_fixed(year, 6, 19),
        7 => observed_fixed(year, 7, 4),
        9 => nth_weekday(year, 9, Weekday::Mon, 1),
        11 => thanksgiving(year),
        12 => observed_fixed(year, 12, 25),
        _ => None,
    };
    holiday == Some(date)
}

/// Whether the weekday non-holiday `date` closes at 13:00.
fn is_rule_early_close(date: NaiveDate) -> bool {
    match (date.month(), date.day()) {
        (7, 3) | (12, 24) => true,
        (11, _) => thanksgiving(date.year()).and_then(|t| t.succ_opt()) == Some(date),
        _ => false,
    }
}

/// The weekday on which the fixed-date holiday `month`/`day` is observed.
fn observed_fixed(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    match date.weekday() {
        Weekday::Sun => date.succ_opt(),
        Weekday::Sat => {
            let friday = date.pred_opt()?;
            let ends_month = friday.month() != date.month();
            (!ends_month).then_some(friday)
        }
        _ => Some(date),
    }
}

/// The `n`-th (1-based) `weekday` of `month`.
fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

/// The last `weekday` of `month`.
fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    nth_weekday(year, month, weekday, 5).or_else(|| nth_weekday(year, month, weekday, 4))
}

/// Thanksgiving: the fourth Thursday of November.
fn thanksgiving(year: i32) -> Option<NaiveDate> {
    nth_weekday(year, 11, Weekday::Thu, 4)
}

/// Good Friday: two days before Easter Sunday.
fn good_friday(year: i32) -> Option<NaiveDate> {
    easter_sunday(year)?.checked_sub_days(Days::new(2))
}

/// Western (Gregorian) Easter Sunday by the anonymous Meeus/Jones/Butcher
/// computus.
pub(super) fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let (d, e) = (b.div_euclid(4), b.rem_euclid(4));
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let n = h + l - 7 * m + 114;
    let month = u32::try_from(n / 31).ok()?;
    let day = u32::try_from(n % 31 + 1).ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    #[test]
    fn easter_matches_known_dates() {
        for (y, m, d) in [
            (2000, 4, 23),
            (2008, 3, 23),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
        ] {
            assert_eq!(easter_sunday(y), Some(date(y, m, d)), "Easter {y}");
        }
    }

    #[test]
    fn observance_rules_match_past_published_schedules() {
        use DayKind::{EarlyClose, Holiday, Trading};
        let cases = [
            // 2022-01-01 was a Saturday: NYSE traded on Friday 2021-12-31.
            ((2021, 12, 31), Trading),
            ((2022, 1, 3), Trading),
            // 2023-01-01 was a Sunday: observed Monday 2023-01-02.
            ((2023, 1, 2), Holiday),
            // Juneteenth from 2022 on; 2022-06-19 was a Sunday.
            ((2021, 6, 18), Trading),
            ((2022, 6, 17), Trading),
            ((2022, 6, 20), Holiday),
            // Christmas 2022 on a Sunday, 2021 on a Saturday.
            ((2022, 12, 23), Trading),
            ((2022, 12, 26), Holiday),
            ((2021, 12, 24), Holiday),
            // July 3 closes early only on a weekday that is not the holiday.
            ((2023, 7, 3), EarlyClose),
            ((2024, 7, 3), EarlyClose),
            ((2020, 7, 3), Holiday),
            ((2021, 7, 2), Trading),
            ((2021, 7, 5), Holiday),
        ];
        for ((y, m, d), expected) in cases {
            assert_eq!(rule_day_kind(date(y, m, d)), expected, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn special_days_are_valid_weekdays() {
        for &(y, m, d, reason) in SPECIAL_DAYS {
            let day = NaiveDate::from_ymd_opt(y, m, d).expect(reason);
            assert_eq!(rule_day_kind(day), DayKind::Trading, "{day} {reason}");
        }
    }
}
