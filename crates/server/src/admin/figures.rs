//! Derived figures of the monitoring API: waste, cost against
//! demand-only, times in ET and UTC. Windowed hit rates come from the
//! engine's own history ([`crate::driver::history`]).

use std::collections::BTreeMap;

use prewarm_core::calendar::ExchangeCalendar;
use prewarm_core::stats::ratio;
use serde::Serialize;
use utoipa::ToSchema;

use crate::driver::Figures;

/// One strategy's warming figures over a period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StrategyPeriod {
    /// Warming fetches charged to it, cycles included.
    pub warmed: u64,
    /// Of `warmed`, those the engine ordered by itself (not cycles).
    pub engine_warmed: u64,
    /// Of `warmed`, those of cycles (pre-market, `POST /warming/run`).
    pub cycle_warmed: u64,
    /// Of `warmed`, the fetches whose entry served a hit.
    pub used: u64,
    /// Of `warmed`, the fetches whose entry left the cache unused
    /// (expired, replaced, evicted, purged) or that failed.
    pub wasted: u64,
    /// Of `warmed`, the fetches neither used nor wasted yet: in flight, or
    /// fresh and not yet read (`warmed = used + wasted + pending`).
    pub pending: u64,
    /// `used / warmed`, in [0, 1] (0 before any fetch).
    pub efficiency: f64,
    /// Hits on entries it fetched.
    pub hits: u64,
}

/// Per strategy name (`popular`, `time`, ...): fetches, used, wasted,
/// pending, efficiency, hits; only strategies that did anything.
pub fn strategies(f: &Figures) -> BTreeMap<String, StrategyPeriod> {
    f.strategies
        .iter()
        .map(|(name, s)| {
            // The engine counts cycle fetches among its warming fetches.
            let warmed = s.warm_fetches;
            let v = StrategyPeriod {
                warmed,
                engine_warmed: warmed.saturating_sub(s.cycle_warm_fetches),
                cycle_warmed: s.cycle_warm_fetches,
                used: s.warm_used,
                wasted: s.warm_wasted,
                pending: s.warm_pending,
                efficiency: ratio(s.warm_used, warmed),
                hits: s.hits,
            };
            (name.to_string(), v)
        })
        .collect()
}

/// Upstream calls of a period, by cause.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiCalls {
    /// Calls made because of a miss.
    pub demand: u64,
    /// Upstream calls warming made, cycles included (a batch call that
    /// carried several keys counts once).
    pub warming: u64,
    /// `demand + warming`.
    pub total: u64,
}

/// Totals of one period (since start, or today) with waste and cost
/// against demand-only.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Period {
    /// Accesses.
    pub requests: u64,
    /// Accesses that hit (by the engine's model of the cache).
    pub hits: u64,
    /// `hits / requests`, in [0, 1] (0 without requests).
    pub hit_rate: f64,
    /// Warming fetches (keys), cycles included.
    pub warmed: u64,
    /// Of `warmed`, the fetches whose entry served a hit.
    pub used: u64,
    /// Of `warmed`, the fetches whose entry left the cache unused
    /// (expired, replaced, evicted, purged) or that failed.
    pub wasted: u64,
    /// Of `warmed`, the fetches neither used nor wasted yet: in flight, or
    /// fresh and not yet read. Since start `warmed = used + wasted +
    /// pending`; over today, the day's fetches less what the day settled
    /// (never below 0).
    pub pending: u64,
    /// `used / warmed`, in [0, 1] (0 before any fetch).
    pub efficiency: f64,
    /// Upstream calls by cause.
    pub api_calls: ApiCalls,
    /// The calls the engine's no-warming shadow made on the same accesses
    /// (what the traffic would have cost without warming, measured).
    pub demand_only_api_calls: u64,
    /// `api_calls.total / demand_only_api_calls` (1 before the shadow made
    /// any call): above 1 warming costs calls.
    pub cost_ratio: f64,
    /// Per strategy name.
    pub strategies: BTreeMap<String, StrategyPeriod>,
}

/// Totals of one period with waste and cost against demand-only: the
/// calls the engine's no-warming shadow made on the same accesses.
pub fn period(f: &Figures) -> Period {
    let warmed = f.warm_fetches; // cycle fetches included
    let demand_only = f.shadow_api_calls;
    Period {
        requests: f.requests,
        hits: f.hits,
        hit_rate: f.hit_rate,
        warmed,
        used: f.warm_used,
        wasted: f.warm_wasted,
        pending: f.warm_pending,
        efficiency: f.efficiency,
        api_calls: ApiCalls {
            demand: f.demand_calls,
            warming: f.warm_calls,
            total: f.api_calls,
        },
        demand_only_api_calls: demand_only,
        cost_ratio: if demand_only == 0 {
            1.0
        } else {
            f.api_calls as f64 / demand_only as f64
        },
        strategies: strategies(f),
    }
}

/// The exchange's time zone (IANA name), in which `et` times are given.
pub const EXCHANGE_TZ: &str = "America/New_York";

/// An instant in three forms.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Times {
    /// Unix seconds.
    pub unix_s: f64,
    /// UTC, `YYYY-MM-DDTHH:MM:SSZ` (null outside chrono's range).
    pub utc: Option<String>,
    /// New York time, `YYYY-MM-DD HH:MM:SS ET`.
    pub et: String,
}

/// `at_s` (Unix seconds) in UTC and New York time (RFC 3339-like text).
pub fn times(at_s: f64) -> Times {
    let utc = chrono::DateTime::from_timestamp(at_s.floor() as i64, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let et = ExchangeCalendar::nyse()
        .local_date_time(at_s)
        .format("%Y-%m-%d %H:%M:%S ET")
        .to_string();
    Times {
        unix_s: at_s,
        utc,
        et,
    }
}

#[cfg(test)]
mod tests {
    use prewarm_core::stats::Counters;
    use prewarm_core::strategy::StrategyId;

    use super::*;

    /// 10 requests, 5 hits, 5 demand fetches; `popular` warmed `warmed`
    /// times, `used` of them served a hit, `wasted` left the cache unused.
    fn popular_warmed(warmed: u64, used: u64, wasted: u64) -> Counters {
        let mut c = Counters {
            requests: 10,
            hits: 5,
            demand_fetches: 5,
            ..Counters::default()
        };
        let s = &mut c.per_strategy[StrategyId::Popular.index()];
        (s.warm_fetches, s.warm_used, s.warm_wasted) = (warmed, used, wasted);
        c
    }

    #[test]
    fn period_reports_waste_and_cost_against_the_shadow() {
        let c = popular_warmed(4, 2, 1);
        let p = period(&Figures::new(&c, &[0; StrategyId::COUNT], 8));
        assert_eq!(p.wasted, 1);
        assert_eq!(p.demand_only_api_calls, 8);
        assert_eq!(p.cost_ratio, 9.0 / 8.0);
        assert_eq!(p.strategies["popular"].wasted, 1);
    }

    #[test]
    fn fresh_unused_warming_fetches_are_pending_not_wasted() {
        let none = [0; StrategyId::COUNT];
        // Right after a start-up cycle: 6 fetched, none requested yet.
        let p = period(&Figures::new(&popular_warmed(6, 0, 0), &none, 5));
        assert_eq!((p.wasted, p.pending), (0, 6));
        // Later: 3 used, 2 expired unused, 1 still fresh.
        let p = period(&Figures::new(&popular_warmed(6, 3, 2), &none, 5));
        let s = &p.strategies["popular"];
        assert_eq!((p.used, p.wasted, p.pending), (3, 2, 1));
        assert_eq!((s.used, s.wasted, s.pending), (3, 2, 1));
        assert_eq!(p.used + p.wasted + p.pending, p.warmed);
        assert_eq!(s.used + s.wasted + s.pending, s.warmed);
    }

    #[test]
    fn cycle_fetches_count_once_among_the_warming_calls() {
        // 4 warming fetches, 3 of them by cycles.
        let c = popular_warmed(4, 1, 3);
        let mut cycles = [0; StrategyId::COUNT];
        cycles[StrategyId::Popular.index()] = 3;
        let p = period(&Figures::new(&c, &cycles, 6));
        assert_eq!(p.warmed, 4);
        assert_eq!(p.wasted, 3);
        assert_eq!(p.api_calls.warming, 4);
        assert_eq!(p.api_calls.total, 9, "demand plus warming");
        assert_eq!(p.cost_ratio, 9.0 / 6.0);
        let s = &p.strategies["popular"];
        assert_eq!((s.warmed, s.engine_warmed, s.cycle_warmed), (4, 1, 3));
    }

    #[test]
    fn times_are_shown_in_utc_and_new_york() {
        let t = times(1_718_719_200.0);
        assert_eq!(t.utc.as_deref(), Some("2024-06-18T14:00:00Z"));
        assert_eq!(t.et, "2024-06-18 10:00:00 ET");
    }

    #[test]
    fn the_exchange_time_zone_is_the_calendars() {
        assert_eq!(ExchangeCalendar::nyse().tz().name(), EXCHANGE_TZ);
    }
}
