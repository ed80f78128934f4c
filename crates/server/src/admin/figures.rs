//! Derived figures of the monitoring API: waste, cost against
//! demand-only, times in ET and UTC. Windowed hit rates come from the
//! engine's own history ([`crate::driver::history`]).

use prewarm_core::calendar::ExchangeCalendar;
use prewarm_core::stats::ratio;
use serde_json::{Value, json};

use crate::driver::Figures;

/// Per strategy: fetches, used, wasted, efficiency, hits.
pub fn strategies(f: &Figures) -> Value {
    let map: serde_json::Map<String, Value> = f
        .strategies
        .iter()
        .map(|(name, s)| {
            // The engine counts cycle fetches among its warming fetches.
            let warmed = s.warm_fetches;
            let v = json!({
                "warmed": warmed,
                "engine_warmed": warmed.saturating_sub(s.cycle_warm_fetches),
                "cycle_warmed": s.cycle_warm_fetches,
                "used": s.warm_used,
                "wasted": warmed.saturating_sub(s.warm_used),
                "efficiency": ratio(s.warm_used, warmed),
                "hits": s.hits,
            });
            (name.to_string(), v)
        })
        .collect();
    Value::Object(map)
}

/// Totals of one period with waste and cost against demand-only: the
/// calls the engine's no-warming shadow made on the same accesses.
pub fn period(f: &Figures) -> Value {
    let warmed = f.warm_fetches; // cycle fetches included
    let demand_only = f.shadow_api_calls;
    json!({
        "requests": f.requests,
        "hits": f.hits,
        "hit_rate": f.hit_rate,
        "warmed": warmed,
        "used": f.warm_used,
        "wasted": warmed.saturating_sub(f.warm_used),
        "efficiency": f.efficiency,
        "api_calls": {"demand": f.demand_fetches, "warming": f.warm_calls, "total": f.api_calls},
        "demand_only_api_calls": demand_only,
        "cost_ratio": if demand_only == 0 { 1.0 } else { f.api_calls as f64 / demand_only as f64 },
        "strategies": strategies(f),
    })
}

/// The exchange's time zone (IANA name), in which `et` times are given.
pub const EXCHANGE_TZ: &str = "America/New_York";

/// `at_s` in UTC and New York time (RFC 3339-like text).
pub fn times(at_s: Option<f64>) -> Value {
    let Some(s) = at_s else {
        return Value::Null;
    };
    let utc = chrono::DateTime::from_timestamp(s.floor() as i64, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let et = ExchangeCalendar::nyse()
        .local_date_time(s)
        .format("%Y-%m-%d %H:%M:%S ET")
        .to_string();
    json!({"unix_s": s, "utc": utc, "et": et})
}

#[cfg(test)]
mod tests {
    use prewarm_core::stats::Counters;
    use prewarm_core::strategy::StrategyId;

    use super::*;

    /// 10 requests, 5 hits, 5 demand fetches; `popular` warmed `warmed`
    /// times, `used` of them served a hit.
    fn popular_warmed(warmed: u64, used: u64) -> Counters {
        let mut c = Counters {
            requests: 10,
            hits: 5,
            demand_fetches: 5,
            ..Counters::default()
        };
        c.per_strategy[StrategyId::Popular.index()].warm_fetches = warmed;
        c.per_strategy[StrategyId::Popular.index()].warm_used = used;
        c
    }

    #[test]
    fn period_reports_waste_and_cost_against_the_shadow() {
        let c = popular_warmed(4, 3);
        let p = period(&Figures::new(&c, &[0; StrategyId::COUNT], 8));
        assert_eq!(p["wasted"], 1);
        assert_eq!(p["demand_only_api_calls"], 8);
        assert_eq!(p["cost_ratio"], 9.0 / 8.0);
        assert_eq!(p["strategies"]["popular"]["wasted"], 1);
    }

    #[test]
    fn cycle_fetches_count_once_among_the_warming_calls() {
        // 4 warming fetches, 3 of them by cycles.
        let c = popular_warmed(4, 1);
        let mut cycles = [0; StrategyId::COUNT];
        cycles[StrategyId::Popular.index()] = 3;
        let p = period(&Figures::new(&c, &cycles, 6));
        assert_eq!(p["warmed"], 4);
        assert_eq!(p["wasted"], 3);
        assert_eq!(p["api_calls"]["warming"], 4);
        assert_eq!(p["api_calls"]["total"], 9, "demand plus warming");
        assert_eq!(p["cost_ratio"], 9.0 / 6.0);
        let s = &p["strategies"]["popular"];
        assert_eq!(
            (&s["warmed"], &s["engine_warmed"], &s["cycle_warmed"]),
            (&4.into(), &1.into(), &3.into())
        );
    }

    #[test]
    fn times_are_shown_in_utc_and_new_york() {
        let t = times(Some(1_718_719_200.0));
        assert_eq!(t["utc"], "2024-06-18T14:00:00Z");
        assert_eq!(t["et"], "2024-06-18 10:00:00 ET");
    }

    #[test]
    fn the_exchange_time_zone_is_the_calendars() {
        assert_eq!(ExchangeCalendar::nyse().tz().name(), EXCHANGE_TZ);
    }
}
