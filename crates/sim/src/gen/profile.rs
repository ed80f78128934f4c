//! The intraday shape of the anonymous traffic: how a day's lookups spread
//! over its local minutes.
//!
//! On a trading day the level (1.0 = the regular session at midday) is
//! `overnight` before 04:00, ramps geometrically from `premarket_start` to
//! `premarket_end` over pre-market, follows the U-shape
//! `1 + open_boost·e^(-(t-open)/open_decay) + close_boost·e^(-(close-t)/close_rise)`
//! over the regular session (which ends at 13:00 on an early close), decays
//! geometrically from `after_hours_start` to `after_hours_end` over the four
//! hours of after-hours, and is `overnight` again after that. A weekend or
//! holiday is a flat lull: level 1 from 08:00 to 22:00, a quarter of that
//! otherwise (its total volume is set by `lull_fraction`).
//! Each minute's weight is its level times its real length, so a skipped
//! DST hour gets no traffic.

use super::config::SessionProfile;
use super::day::{HOUR_MS, LocalDay, MINUTE_MS, MINUTES_PER_DAY, OPEN_MS, PREMARKET_OPEN_MS};
use super::math::{exp, powf};

/// Level of a lull day's night hours relative to its daytime.
const LULL_NIGHT_LEVEL: f64 = 0.25;

/// Relative weight of each local minute of `day`.
pub(crate) fn minute_weights(day: &LocalDay, profile: &SessionProfile) -> Vec<f64> {
    (0..MINUTES_PER_DAY)
        .map(|minute| {
            let (_, len_ms) = day.minute_span(minute);
            let mid_ms = minute as u32 * MINUTE_MS + MINUTE_MS / 2;
            let level = if day.is_trading() {
                trading_level(day, profile, mid_ms)
            } else {
                lull_level(mid_ms)
            };
            level * len_ms as f64 / f64::from(MINUTE_MS)
        })
        .collect()
}

/// The level at local time `t_ms` of a trading day.
pub(crate) fn trading_level(day: &LocalDay, p: &SessionProfile, t_ms: u32) -> f64 {
    let close_ms = day.close_ms();
    let after_end_ms = day.after_hours_end_ms();
    let secs = |ms: u32| f64::from(ms) / 1000.0;
    if t_ms < PREMARKET_OPEN_MS || t_ms >= after_end_ms {
        p.overnight
    } else if t_ms < OPEN_MS {
        let x = secs(t_ms - PREMARKET_OPEN_MS) / secs(OPEN_MS - PREMARKET_OPEN_MS);
        ramp(p.premarket_start, p.premarket_end, x)
    } else if t_ms < close_ms {
        let since_open_s = secs(t_ms - OPEN_MS);
        let to_close_s = secs(close_ms - t_ms);
        1.0 + p.open_boost * exp(-since_open_s / p.open_decay_s)
            + p.close_boost * exp(-to_close_s / p.close_rise_s)
    } else {
        let x = secs(t_ms - close_ms) / secs(after_end_ms - close_ms);
        ramp(p.after_hours_start, p.after_hours_end, x)
    }
}

fn lull_level(t_ms: u32) -> f64 {
    if (8 * HOUR_MS..22 * HOUR_MS).contains(&t_ms) {
        1.0
    } else {
        LULL_NIGHT_LEVEL
    }
}

/// Geometric interpolation from `from` (x = 0) to `to` (x = 1), linear when
/// either end is zero.
fn ramp(from: f64, to: f64, x: f64) -> f64 {
    if from > 0.0 && to > 0.0 {
        from * powf(to / from, x)
    } else {
        from + (to - from) * x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use prewarm_core::calendar::DayKind;

    fn day(d: u32, kind: DayKind) -> LocalDay {
        let date = NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        LocalDay::new(date, 0, kind, chrono_tz::America::New_York)
    }

    fn argmax(w: &[f64]) -> usize {
        (0..w.len()).max_by(|&a, &b| w[a].total_cmp(&w[b])).unwrap()
    }

    #[test]
    fn trading_day_peaks_at_the_open_and_rises_into_the_close() {
        let d = day(4, DayKind::Trading);
        let w = minute_weights(&d, &SessionProfile::default());
        assert_eq!(argmax(&w), 9 * 60 + 30);
        let midday = w[12 * 60];
        assert!(w[15 * 60 + 59] > 2.0 * midday, "close ramp");
        assert!(
            w[9 * 60 + 29] < midday && w[9 * 60 + 29] > w[5 * 60],
            "pre-market ramps up"
        );
        assert!(w[2 * 60] < 0.05 * midday, "overnight trickle");
        assert!(w[17 * 60] > w[19 * 60 + 30], "after-hours fades");
    }

    #[test]
    fn early_close_moves_the_close_ramp_to_13h() {
        let d = day(4, DayKind::EarlyClose);
        let w = minute_weights(&d, &SessionProfile::default());
        assert!(w[12 * 60 + 59] > 2.0 * w[11 * 60]);
        assert!(w[14 * 60] < w[12 * 60 + 59] / 3.0, "after-hours from 13:00");
    }

    #[test]
    fn lull_day_is_flat_and_the_skipped_dst_hour_is_empty() {
        let d = day(8, DayKind::Weekend);
        let w = minute_weights(&d, &SessionProfile::default());
        assert_eq!(w[2 * 60 + 30], 0.0);
        assert_eq!(w[10 * 60], w[15 * 60]);
    }
}
