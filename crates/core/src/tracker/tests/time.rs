use super::super::record::NO_PROFILE;
use super::super::{AccessContext, TrackerConfig};
use super::Named as Tracker;
use super::{hit, ny, tracker};

fn eager_profiles() -> Tracker {
    let c = TrackerConfig {
        profile_min_accesses: 0.0,
        ..TrackerConfig::with_max_keys(1000)
    };
    Tracker::new(c).unwrap()
}

fn nonzero_buckets(t: &Tracker, key: &str) -> Vec<usize> {
    let r = t.record(key);
    assert_ne!(r.profile, NO_PROFILE, "{key} has a profile");
    let p = &t.profiles.slots[r.profile as usize];
    (0..p.buckets.len())
        .filter(|&b| p.buckets[b] != 0)
        .collect()
}

#[test]
fn dst_transition_days_land_in_the_0930_bucket() {
    // 2026-03-08 and 2026-11-01 are the DST changes; the next Mondays
    // trade with the new offset.
    for (mo, d) in [(3, 9), (11, 2)] {
        let mut t = eager_profiles();
        hit(&mut t, "SPY", ny(2026, mo, d, 9, 35));
        assert_eq!(
            nonzero_buckets(&t, "SPY"),
            vec![38],
            "2026-{mo}-{d} 09:35 ET is bucket 09:30"
        );
    }
    // On the transition Sunday itself (non-trading), hourly buckets.
    let mut t = eager_profiles();
    hit(&mut t, "SPY", ny(2026, 3, 8, 9, 35));
    assert_eq!(nonzero_buckets(&t, "SPY"), vec![96 + 9]);
}

#[test]
fn any_iana_zone_can_be_configured() {
    let c = TrackerConfig {
        profile_min_accesses: 0.0,
        timezone: "Europe/London".into(),
        ..TrackerConfig::default()
    };
    let mut t = Tracker::new(c).unwrap();
    // 09:35 New York on 2026-03-10 is 13:35 in London (UK still on GMT).
    hit(&mut t, "VOD", ny(2026, 3, 10, 9, 35));
    assert_eq!(nonzero_buckets(&t, "VOD"), vec![13 * 4 + 2]);
}

/// Weekday habit at 10:15 for WEEK, weekend habit at 10:15 for WKND,
/// over three weeks of June 2026.
fn habits() -> Tracker {
    let mut t = eager_profiles();
    for day in 1..=21u32 {
        let when = ny(2026, 6, day, 10, 15);
        let date = chrono::NaiveDate::from_ymd_opt(2026, 6, day).unwrap();
        // Juneteenth (Fri 2026-06-19) is a holiday: it counts as non-trading.
        if t.calendar().day_kind(date).is_trading() {
            hit(&mut t, "WEEK", when);
        } else {
            hit(&mut t, "WKND", when);
        }
        t.maintain(when);
    }
    t
}

#[test]
fn trading_days_and_weekends_are_learned_separately() {
    let t = habits();
    let sat = ny(2026, 6, 27, 10, 0);
    let up = t.upcoming(sat, 1800.0, 10);
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0].key, "WKND");
    let tue = ny(2026, 6, 23, 10, 0);
    let up = t.upcoming(tue, 1800.0, 10);
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0].key, "WEEK");
    // About one access per day in that quarter hour: calibrated rate.
    let rate = t.expected_rate("WEEK", ny(2026, 6, 23, 10, 20));
    let per_day = rate * 900.0;
    assert!((0.75..=1.1).contains(&per_day), "{per_day}");
    assert_eq!(t.expected_rate("WEEK", ny(2026, 6, 23, 11, 20)), 0.0);
    // A weekday holiday (Independence Day observed, Fri 2026-07-03) is
    // a non-trading day: the weekend habit applies.
    let up = t.upcoming(ny(2026, 7, 3, 10, 0), 1800.0, 10);
    assert_eq!(up.first().map(|k| k.key.as_str()), Some("WKND"), "{up:?}");
    // A look-ahead across the weekend sees both.
    let fri_evening = ny(2026, 6, 26, 18, 0);
    let up = t.upcoming(fri_evening, 3.0 * 86_400.0, 10);
    assert_eq!(up.len(), 2);
}

#[test]
fn profiles_go_only_to_keys_that_earn_them_and_are_reassigned() {
    let c = TrackerConfig {
        max_profiled_keys: Some(2),
        ..TrackerConfig::with_max_keys(100)
    };
    let mut t = Tracker::new(c).unwrap();
    let t0 = ny(2026, 6, 2, 10, 0);
    hit(&mut t, "ONCE", t0);
    assert_eq!(t.stats(t0).profiled_keys, 0, "one access earns no profile");
    for i in 0..5 {
        hit(&mut t, "A", t0 + f64::from(i));
        hit(&mut t, "B", t0 + f64::from(i));
    }
    assert_eq!(t.stats(t0).profiled_keys, 2);
    // C becomes far hotter later; maintain hands it the coldest profile.
    let later = t0 + 86_400.0;
    for i in 0..50 {
        hit(&mut t, "C", later + f64::from(i));
    }
    hit(&mut t, "B", later);
    t.maintain(later + 60.0);
    assert_eq!(t.stats(later).profiled_keys, 2);
    assert!(
        nonzero_buckets(&t, "C").is_empty(),
        "maintain counts no access"
    );
    hit(&mut t, "C", later + 120.0);
    assert_eq!(nonzero_buckets(&t, "C").len(), 1);
    assert!(t.expected_rate("C", later + 120.0) > 0.0);
    let a = t.record("A").profile;
    assert_eq!(a, NO_PROFILE, "the coldest profiled key lost its profile");
}

fn trending_keys(t: &Tracker, now: f64) -> Vec<String> {
    t.trending(now, 600.0, 10)
        .into_iter()
        .map(|k| k.key)
        .collect()
}

#[test]
fn trending_detects_a_burst_within_minutes_but_not_steady_keys() {
    let mut t = tracker(1000);
    let t0 = 1_780_000_000.0;
    // A day of history: QUIET once an hour, STEADY every 10 s.
    let mut now = t0;
    while now < t0 + 86_400.0 {
        if (now - t0) % 3600.0 == 0.0 {
            hit(&mut t, "QUIET", now);
        }
        hit(&mut t, "STEADY", now);
        now += 10.0;
        if (now - t0) % 60.0 == 0.0 {
            t.maintain(now);
        }
    }
    assert!(
        trending_keys(&t, now).is_empty(),
        "{:?}",
        t.trending(now, 600.0, 10)
    );
    // QUIET bursts: one access every 10 s. Within two minutes it trends.
    let burst = now;
    let mut detected = None;
    while now < burst + 600.0 {
        hit(&mut t, "QUIET", now);
        hit(&mut t, "STEADY", now);
        if detected.is_none() && trending_keys(&t, now) == ["QUIET"] {
            detected = Some(now - burst);
        }
        now += 10.0;
    }
    let after_s = detected.expect("burst detected");
    assert!(after_s <= 120.0, "detected after {after_s} s");
    let k = &t.trending(now, 600.0, 10)[0];
    assert!(
        k.short_rate_per_min > 5.0 * k.baseline_rate_per_min,
        "{k:?}"
    );
    // Not reported once the window of interest excludes it.
    assert!(t.trending(now + 3600.0, 60.0, 10).is_empty());
}

#[test]
fn fewer_than_min_count_accesses_never_trend() {
    let mut t = tracker(1000);
    let t0 = 1_780_000_000.0;
    hit(&mut t, "OTHER", t0 - 86_400.0); // the tracker has a day of history
    for _ in 0..4 {
        hit(&mut t, "RARE", t0);
    }
    assert!(trending_keys(&t, t0).is_empty());
    assert!(trending_keys(&t, t0 + 4.0).is_empty());
    hit(&mut t, "RARE", t0 + 1.0);
    assert!(
        trending_keys(&t, t0 + 1.0).is_empty(),
        "five accesses spread out decay below five"
    );
    hit(&mut t, "RARE", t0 + 1.0);
    assert_eq!(trending_keys(&t, t0 + 1.0), ["RARE"]);
    let ctx = AccessContext::default();
    let single = t.track_access("ONE", t0 + 5.0, &ctx);
    assert!(t.is_tracked(single));
    assert!(!trending_keys(&t, t0 + 5.0).contains(&"ONE".to_string()));
}

#[test]
fn upcoming_cached_reuses_an_answer_for_the_same_quarter_hour_until_it_ages() {
    let mut t = habits();
    let tue = ny(2026, 6, 23, 10, 16);
    let first = t.upcoming_cached(tue, 60.0, 10, 300.0);
    assert_eq!(first, t.upcoming(tue, 60.0, 10));
    // A new key read often in this quarter hour, within the minute.
    for i in 0..20 {
        hit(&mut t, "NEW", tue + 1.0 + f64::from(i));
    }
    let later = tue + 60.0;
    assert_eq!(t.upcoming_cached(later, 60.0, 10, 300.0), first, "cached");
    let fresh = t.upcoming(later, 60.0, 10);
    assert_ne!(fresh, first, "the exact answer moved");
    // Past max_age (or in another bucket) it is computed again.
    assert_eq!(
        t.upcoming_cached(tue + 301.0, 60.0, 10, 300.0),
        t.upcoming(tue + 301.0, 60.0, 10)
    );
}
