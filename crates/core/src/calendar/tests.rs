//! Calendar tests against published NYSE schedules and both 2026 DST days.
//! Expected instants are written in UTC, independently of the code.

use super::*;
use proptest::prelude::*;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
}

fn hms(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("valid test time")
}

/// Unix seconds of `y-m-d h:mi:s` UTC.
fn utc(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> f64 {
    let t = date(y, m, d)
        .and_hms_opt(h, mi, s)
        .expect("valid test time");
    t.and_utc().timestamp() as f64
}

fn dates(year: i32, month_days: &[(u32, u32)]) -> Vec<NaiveDate> {
    month_days.iter().map(|&(m, d)| date(year, m, d)).collect()
}

/// A year of the published NYSE schedule: holidays, then early closes, as
/// (month, day).
type PublishedYear = (i32, &'static [(u32, u32)], &'static [(u32, u32)]);

#[test]
fn published_nyse_holidays_and_early_closes_2025_to_2027() {
    let cal = ExchangeCalendar::nyse();
    let published: [PublishedYear; 3] = [
        (
            2025,
            &[
                (1, 1),
                (1, 9), // national day of mourning for Jimmy Carter
                (1, 20),
                (2, 17),
                (4, 18),
                (5, 26),
                (6, 19),
                (7, 4),
                (9, 1),
                (11, 27),
                (12, 25),
            ],
            &[(7, 3), (11, 28), (12, 24)],
        ),
        (
            2026,
            &[
                (1, 1),
                (1, 19),
                (2, 16),
                (4, 3),
                (5, 25),
                (6, 19),
                (7, 3), // Independence Day observed (July 4 is a Saturday)
                (9, 7),
                (11, 26),
                (12, 25),
            ],
            &[(11, 27), (12, 24)],
        ),
        (
            2027,
            &[
                (1, 1),
                (1, 18),
                (2, 15),
                (3, 26),
                (5, 31),
                (6, 18), // Juneteenth observed (June 19 is a Saturday)
                (7, 5),  // Independence Day observed (July 4 is a Sunday)
                (9, 6),
                (11, 25),
                (12, 24), // Christmas observed (December 25 is a Saturday)
            ],
            &[(11, 26)],
        ),
    ];
    for (year, holidays, early_closes) in published {
        assert_eq!(cal.holidays(year), dates(year, holidays), "{year}");
        assert_eq!(cal.early_closes(year), dates(year, early_closes), "{year}");
    }
    // Neighbours that are full trading days by the published schedule.
    for (y, m, d) in [(2026, 7, 2), (2027, 7, 2), (2027, 12, 23), (2026, 12, 31)] {
        assert_eq!(cal.day_kind(date(y, m, d)), DayKind::Trading, "{y}-{m}-{d}");
    }
}

#[test]
fn holidays_are_closed_and_early_closes_end_regular_at_13() {
    let cal = ExchangeCalendar::nyse();
    // 2026-07-03 10:00 EDT = 14:00Z: observed Independence Day.
    assert_eq!(
        cal.session_at(utc(2026, 7, 3, 14, 0, 0)),
        MarketSession::Closed
    );
    // 2026-11-27 (day after Thanksgiving), EST = UTC-5.
    let cases = [
        ((14, 30, 0), MarketSession::Regular),
        ((17, 59, 59), MarketSession::Regular),
        ((18, 0, 0), MarketSession::AfterHours),
        ((21, 59, 59), MarketSession::AfterHours),
        ((22, 0, 0), MarketSession::Closed),
    ];
    for ((h, m, s), expected) in cases {
        assert_eq!(
            cal.session_at(utc(2026, 11, 27, h, m, s)),
            expected,
            "{h}:{m}:{s}Z"
        );
    }
}

#[test]
fn weekend_is_closed_all_day_and_skipped_by_next_trading_day() {
    let cal = ExchangeCalendar::nyse();
    let saturday = cal.day_info(utc(2026, 3, 7, 15, 0, 0));
    assert_eq!(
        (saturday.date, saturday.kind),
        (date(2026, 3, 7), DayKind::Weekend)
    );
    assert!(!saturday.kind.is_trading());
    assert_eq!(
        cal.session_at(utc(2026, 3, 7, 15, 0, 0)),
        MarketSession::Closed
    );
    assert_eq!(cal.next_trading_day(date(2026, 3, 6)), date(2026, 3, 9));
    assert_eq!(cal.next_trading_day(date(2026, 4, 2)), date(2026, 4, 6)); // Good Friday
    assert_eq!(cal.next_trading_day(date(2025, 12, 31)), date(2026, 1, 2));
    assert_eq!(cal.next_trading_day(date(2025, 1, 8)), date(2025, 1, 10)); // Carter
}

#[test]
fn special_day_override_wins_over_rules() {
    let closed = date(2026, 3, 9);
    let cal = ExchangeCalendar::nyse().with_special_day(closed, DayKind::Holiday);
    assert_eq!(cal.day_kind(closed), DayKind::Holiday);
    assert_eq!(cal.next_trading_day(date(2026, 3, 6)), date(2026, 3, 10));
    assert_eq!(
        ExchangeCalendar::nyse().day_kind(date(2001, 9, 11)),
        DayKind::Holiday
    );
}

#[test]
fn spring_forward_2026_is_a_23_hour_day() {
    let cal = ExchangeCalendar::nyse();
    let day = cal.day_info(utc(2026, 3, 8, 12, 0, 0));
    assert_eq!(day.date, date(2026, 3, 8));
    assert_eq!(day.kind, DayKind::Weekend);
    assert_eq!(day.start_s, utc(2026, 3, 8, 5, 0, 0)); // 00:00 EST
    assert_eq!(day.end_s, utc(2026, 3, 9, 4, 0, 0)); // 00:00 EDT
    assert_eq!(day.len_s(), 23.0 * 3600.0);
    assert_eq!(cal.day_info(day.start_s).date, day.date);
    assert_eq!(cal.day_info(day.end_s - 0.001).date, day.date);
    assert_eq!(cal.day_info(day.end_s).date, date(2026, 3, 9));
    // 01:59:59 EST is followed by 03:00:00 EDT.
    let mut clock = LocalClock::new(cal.clone());
    let before = clock.at(utc(2026, 3, 8, 6, 59, 59));
    let after = clock.at(utc(2026, 3, 8, 7, 0, 0));
    assert_eq!((before.minute_of_day, before.second_of_day), (119, 7199));
    assert_eq!((after.minute_of_day, after.second_of_day), (180, 10_800));
    assert_eq!(clock.at(day.end_s - 1.0).minute_of_day, 1439);
}

#[test]
fn fall_back_2026_is_a_25_hour_day() {
    let cal = ExchangeCalendar::nyse();
    let day = cal.day_info(utc(2026, 11, 1, 12, 0, 0));
    assert_eq!(day.date, date(2026, 11, 1));
    assert_eq!(day.start_s, utc(2026, 11, 1, 4, 0, 0)); // 00:00 EDT
    assert_eq!(day.end_s, utc(2026, 11, 2, 5, 0, 0)); // 00:00 EST
    assert_eq!(day.len_s(), 25.0 * 3600.0);
    // 01:59:59 EDT is followed by 01:00:00 EST.
    let mut clock = LocalClock::new(cal.clone());
    let before = clock.at(utc(2026, 11, 1, 5, 59, 59));
    let after = clock.at(utc(2026, 11, 1, 6, 0, 0));
    assert_eq!((before.minute_of_day, before.second_of_day), (119, 7199));
    assert_eq!((after.minute_of_day, after.second_of_day), (60, 3600));
    assert_eq!(clock.at(utc(2026, 11, 2, 4, 59, 59)).minute_of_day, 1439);
    assert_eq!(
        cal.local_time(utc(2026, 11, 2, 5, 0, 0)).date,
        date(2026, 11, 2)
    );
}

#[test]
fn sessions_open_at_0930_local_on_the_mondays_after_both_changes() {
    let cal = ExchangeCalendar::nyse();
    let mut clock = LocalClock::new(cal.clone());
    // (instant, session) on Monday 2026-03-09 (EDT) and 2026-11-02 (EST).
    let cases = [
        (utc(2026, 3, 9, 7, 59, 59), MarketSession::Closed),
        (utc(2026, 3, 9, 8, 0, 0), MarketSession::PreMarket),
        (utc(2026, 3, 9, 13, 29, 59), MarketSession::PreMarket),
        (utc(2026, 3, 9, 13, 30, 0), MarketSession::Regular),
        (utc(2026, 3, 9, 19, 59, 59), MarketSession::Regular),
        (utc(2026, 3, 9, 20, 0, 0), MarketSession::AfterHours),
        (utc(2026, 3, 10, 0, 0, 0), MarketSession::Closed),
        (utc(2026, 3, 6, 14, 29, 59), MarketSession::PreMarket), // Friday, EST
        (utc(2026, 3, 6, 14, 30, 0), MarketSession::Regular),
        (utc(2026, 11, 2, 14, 29, 59), MarketSession::PreMarket),
        (utc(2026, 11, 2, 14, 30, 0), MarketSession::Regular),
        (utc(2026, 11, 2, 21, 0, 0), MarketSession::AfterHours),
        (utc(2026, 11, 3, 1, 0, 0), MarketSession::Closed),
        (utc(2026, 10, 30, 13, 30, 0), MarketSession::Regular), // Friday, EDT
    ];
    for (t, expected) in cases {
        assert_eq!(cal.session_at(t), expected, "at {t}");
        assert_eq!(clock.session_at(t), expected, "clock at {t}");
    }
}

#[test]
fn next_0830_moves_from_1330_to_1230_utc_across_spring_forward() {
    let cal = ExchangeCalendar::nyse();
    // (after, trading days only, expected next 08:30 local), all UTC.
    let cases = [
        (utc(2026, 3, 5, 13, 0, 0), true, utc(2026, 3, 5, 13, 30, 0)),
        (utc(2026, 3, 6, 14, 0, 0), true, utc(2026, 3, 9, 12, 30, 0)),
        (utc(2026, 3, 6, 14, 0, 0), false, utc(2026, 3, 7, 13, 30, 0)),
        (utc(2026, 3, 7, 14, 0, 0), false, utc(2026, 3, 8, 12, 30, 0)),
        // Strictly after: the instant itself moves to the next trading day.
        (
            utc(2026, 3, 9, 12, 30, 0),
            true,
            utc(2026, 3, 10, 12, 30, 0),
        ),
        // Back to 13:30Z after the November change.
        (
            utc(2026, 10, 30, 12, 0, 0),
            true,
            utc(2026, 10, 30, 12, 30, 0),
        ),
        (
            utc(2026, 10, 30, 13, 0, 0),
            true,
            utc(2026, 11, 2, 13, 30, 0),
        ),
        // Holidays are skipped: Thanksgiving 2026-11-26.
        (
            utc(2026, 11, 25, 14, 0, 0),
            true,
            utc(2026, 11, 27, 13, 30, 0),
        ),
    ];
    for (after_s, trading, expected) in cases {
        let next = cal.next_local_time(after_s, hms(8, 30), trading);
        assert_eq!(next, expected, "after {after_s}, trading only {trading}");
    }
}

#[test]
fn next_local_time_in_gap_is_gap_end_and_in_fold_is_earlier_instant() {
    let cal = ExchangeCalendar::nyse();
    // 02:30 does not exist on 2026-03-08: the gap ends at 07:00Z (03:00 EDT).
    let gap_end = cal.next_local_time(utc(2026, 3, 8, 5, 0, 0), hms(2, 30), false);
    assert_eq!(gap_end, utc(2026, 3, 8, 7, 0, 0));
    let after_gap = cal.next_local_time(gap_end, hms(2, 30), false);
    assert_eq!(after_gap, utc(2026, 3, 9, 6, 30, 0));
    // 01:30 happens twice on 2026-11-01: only the EDT one (05:30Z) counts.
    let fold = cal.next_local_time(utc(2026, 11, 1, 4, 0, 0), hms(1, 30), false);
    assert_eq!(fold, utc(2026, 11, 1, 5, 30, 0));
    let after_fold = cal.next_local_time(fold, hms(1, 30), false);
    assert_eq!(after_fold, utc(2026, 11, 2, 6, 30, 0));
}

#[test]
fn next_local_time_keeps_sub_second_time_and_survives_nan() {
    let cal = ExchangeCalendar::nyse();
    let at = NaiveTime::from_hms_milli_opt(9, 30, 0, 500).expect("valid time");
    let t = cal.next_local_time(utc(2026, 3, 9, 0, 0, 0), at, true);
    assert_eq!(t, utc(2026, 3, 9, 13, 30, 0) + 0.5);
    // NaN counts as the epoch: Friday 1970-01-02 09:30:00.5 EST.
    let t = cal.next_local_time(f64::NAN, at, true);
    assert_eq!(t, utc(1970, 1, 2, 14, 30, 0) + 0.5);
}

#[test]
fn market_session_serializes_to_snake_case_names() {
    for session in MarketSession::ALL {
        let json = serde_json::to_string(&session).expect("serializes");
        assert_eq!(json, format!("\"{session}\""));
    }
    assert_eq!(MarketSession::PreMarket.to_string(), "pre_market");
    assert_eq!(MarketSession::AfterHours.to_string(), "after_hours");
}

#[test]
fn day_index_counts_days_since_epoch() {
    assert_eq!(day_index(date(1970, 1, 1)), 0);
    assert_eq!(day_index(date(1969, 12, 31)), -1);
    assert_eq!(day_index(date(2026, 3, 8)), 20_520);
}

proptest! {
    #[test]
    fn next_local_time_lands_on_the_requested_wall_time(
        after_s in 1_577_836_800.0f64..1_893_456_000.0,
        minute in 0u32..1440,
        trading in any::<bool>(),
    ) {
        let cal = ExchangeCalendar::nyse();
        let at = hms(minute / 60, minute % 60);
        let t = cal.next_local_time(after_s, at, trading);
        prop_assert!(t > after_s);
        prop_assert!(t - after_s <= 8.0 * 86_400.0);
        let local = cal.local_date_time(t);
        // In New York only 02:xx on spring-forward day can be missing.
        prop_assert!(local.time() == at || (local.time() == hms(3, 0) && minute / 60 == 2));
        if trading {
            prop_assert!(cal.day_kind(local.date()).is_trading());
        }
        // Nothing earlier qualifies: the wall time on the previous
        // qualifying day was not after `after_s`.
        let previous_day = local
            .date()
            .iter_days()
            .rev()
            .skip(1)
            .find(|&d| !trading || cal.day_kind(d).is_trading())
            .expect("a previous day exists");
        let previous = cal.next_local_time(cal.day_start_s(previous_day) - 1.0, at, false);
        prop_assert!(previous <= after_s, "previous {} after {}", previous, after_s);
    }
}
