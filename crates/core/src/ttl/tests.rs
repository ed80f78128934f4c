use super::*;
use chrono::{NaiveDate, TimeZone};
use proptest::prelude::*;

/// Unix seconds of a New York wall-clock time.
fn ny(y: i32, m: u32, d: u32, h: u32, mi: u32) -> f64 {
    let local = NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|day| day.and_hms_opt(h, mi, 0))
        .expect("valid test time");
    chrono_tz::America::New_York
        .from_local_datetime(&local)
        .earliest()
        .expect("not in a gap")
        .timestamp() as f64
}

fn quote_rule() -> TtlRule {
    let spec = "pre=60,regular=15,after=60,closed=until_open";
    let ttls = SessionTtls::parse_spec(spec, 30.0).expect("valid spec");
    TtlRule::new(TtlPolicy::BySession(ttls), ExchangeCalendar::nyse())
}

#[test]
fn each_session_uses_its_own_ttl_at_the_fetch_instant() {
    let r = quote_rule();
    let pre = ny(2026, 3, 4, 5, 0);
    assert_eq!(r.expires_at(pre), pre + 60.0);
    let regular = ny(2026, 3, 4, 10, 0);
    assert_eq!(r.expires_at(regular), regular + 15.0);
    // Fetched in the last seconds of after-hours: the after-hours TTL
    // carries it past 20:00.
    let late = ny(2026, 3, 4, 19, 59) + 30.0;
    assert_eq!(r.expires_at(late), late + 60.0);
}

#[test]
fn until_open_over_a_weekend_with_the_spring_dst_change() {
    let r = quote_rule();
    // Friday 2026-03-06 20:30 EST; DST starts Sunday 03-08.
    let fetched = ny(2026, 3, 6, 20, 30);
    let open = ny(2026, 3, 9, 4, 0);
    assert_eq!(r.expires_at(fetched), open);
    assert_eq!(open, 1_773_043_200.0, "04:00 EDT is 08:00 UTC");
    // Fetched at 02:00 Monday (still closed): fresh until 04:00 that day.
    assert_eq!(r.expires_at(ny(2026, 3, 9, 2, 0)), open);
}

#[test]
fn until_open_over_the_autumn_dst_change() {
    let r = quote_rule();
    // Friday 2026-10-30 21:00 EDT; DST ends Sunday 11-01.
    let open = r.expires_at(ny(2026, 10, 30, 21, 0));
    assert_eq!(open, ny(2026, 11, 2, 4, 0));
    assert_eq!(open, 1_793_610_000.0, "04:00 EST is 09:00 UTC");
}

#[test]
fn until_open_skips_holidays() {
    let r = quote_rule();
    // 2026-07-03 (Friday) is the observed Independence Day.
    assert_eq!(
        r.expires_at(ny(2026, 7, 2, 20, 0)),
        ny(2026, 7, 6, 4, 0),
        "Thursday's close lasts to Monday"
    );
    // Thanksgiving 2026-11-26: Wednesday night lasts to Friday.
    assert_eq!(
        r.expires_at(ny(2026, 11, 25, 22, 0)),
        ny(2026, 11, 27, 4, 0)
    );
}

#[test]
fn an_early_close_moves_the_sessions() {
    let r = quote_rule();
    // 2026-11-27 closes at 13:00, after-hours until 17:00.
    let after = ny(2026, 11, 27, 13, 30);
    assert_eq!(r.expires_at(after), after + 60.0, "after-hours at 13:30");
    assert_eq!(
        r.expires_at(ny(2026, 11, 27, 17, 30)),
        ny(2026, 11, 30, 4, 0)
    );
    // A full day's 13:30 is regular.
    let full = ny(2026, 11, 24, 13, 30);
    assert_eq!(r.expires_at(full), full + 15.0);
}

#[test]
fn bad_specs_name_the_part() {
    for (spec, part) in [
        ("pre=0", "pre_market"),
        ("regular=until_open", "regular"),
        ("weekend=5", "weekend=5"),
        ("closed", "closed"),
        ("after=soon", "after=soon"),
        ("regular=15,regular=30", "given twice"),
        ("closed=until_open,closed=60", "given twice"),
        ("", "at least one"),
    ] {
        let err = SessionTtls::parse_spec(spec, 60.0)
            .expect_err(spec)
            .to_string();
        assert!(err.contains(part), "{spec}: {err}");
    }
    let t = SessionTtls::parse_spec("closed=until_open", 45.0).unwrap();
    assert_eq!(
        t.regular,
        SessionTtl::Seconds(45.0),
        "left out: the default"
    );
}

#[test]
fn covering_fetches_reach_back_into_the_closed_spell() {
    let r = quote_rule();
    // Needed at 04:00:10 Monday: a fetch in pre-market after 03:59:10
    // would do, but so would any fetch of the closed spell since Friday's
    // 20:00 close — only until 04:00, so none of them: the earliest is
    // 04:00 itself (a pre-market fetch lasting 60 s).
    let monday_open = ny(2026, 3, 9, 4, 0);
    let got = r.earliest_covering_fetch_s(monday_open + 10.0, monday_open + 5.0);
    assert_eq!(got, monday_open);
    // Needed at 03:00 Monday: every fetch since Friday 20:00 covers it.
    let needed = ny(2026, 3, 9, 3, 0);
    let got = r.earliest_covering_fetch_s(needed, needed);
    assert_eq!(got, ny(2026, 3, 6, 20, 0));
}

/// 2024-01-01 to 2028-01-01.
const FROM_S: f64 = 1_704_067_200.0;
const TO_S: f64 = 1_830_297_600.0;

proptest! {
    #[test]
    fn expiry_is_after_the_fetch(t in FROM_S..TO_S) {
        prop_assert!(quote_rule().expires_at(t) > t);
    }

    #[test]
    fn a_flat_policy_by_session_is_the_plain_ttl(t in FROM_S..TO_S, ttl in 0.5f64..4000.0) {
        let by_session = TtlRule::new(
            TtlPolicy::BySession(SessionTtls::all(ttl)),
            ExchangeCalendar::nyse(),
        );
        let flat = TtlRule::from(ttl);
        prop_assert_eq!(by_session.expires_at(t), t + ttl);
        prop_assert_eq!(flat.expires_at(t), t + ttl);
        prop_assert_eq!(flat.ttl_at(t), ttl);
    }

    #[test]
    fn the_earliest_covering_fetch_matches_a_scan(t in FROM_S..TO_S, back in 0.0f64..300.0, ahead in 0.0f64..120.0) {
        let r = quote_rule();
        let (latest, needed) = (t.floor(), t.floor() + ahead.floor());
        let got = r.earliest_covering_fetch_s(needed, latest);
        // The earliest whole second of the last 400 s and more that covers.
        let mut first = None;
        let mut w = latest - back.floor() - 400.0;
        while w <= latest && first.is_none() {
            if r.expires_at(w) > needed {
                first = Some(w);
            }
            w += 1.0;
        }
        if let Some(first) = first {
            prop_assert!(got <= first, "got {}, a scan found {}", got, first);
        }
        if got < latest {
            prop_assert!(r.expires_at(got + 0.25) > needed, "got {} does not cover", got);
        }
    }
}

#[test]
fn a_fetch_in_the_closed_spell_does_not_extend_an_entry_that_lasts_to_the_open() {
    use crate::cache::{CacheModel, FetchOrigin, KeyId};
    let mut c = CacheModel::new(quote_rule(), None);
    let k = KeyId(0);
    assert!(
        c.fetch_would_extend(k, ny(2026, 3, 6, 20, 30)),
        "nothing cached"
    );
    c.insert(k, ny(2026, 3, 6, 20, 30), FetchOrigin::Demand);
    assert!(!c.fetch_would_extend(k, ny(2026, 3, 9, 3, 59)));
    assert!(
        c.fetch_would_extend(k, ny(2026, 3, 9, 4, 0)),
        "pre-market: 60 s more"
    );
    let mut flat = CacheModel::new(60.0, None);
    flat.insert(k, 100.0, FetchOrigin::Demand);
    assert!(flat.fetch_would_extend(k, 100.0), "flat: always");
}

#[test]
fn a_by_session_policy_with_one_ttl_everywhere_is_the_flat_policy() {
    let t = SessionTtls::parse_spec("pre=60,regular=60,after=60,closed=60", 30.0).unwrap();
    let r = TtlRule::new(TtlPolicy::BySession(t), ExchangeCalendar::nyse());
    assert_eq!(r.policy(), &TtlPolicy::Flat(60.0));
    let t = SessionTtls::parse_spec("regular=15", 60.0).unwrap();
    let r = TtlRule::new(TtlPolicy::BySession(t), ExchangeCalendar::nyse());
    assert!(matches!(r.policy(), TtlPolicy::BySession(_)));
}
