//! Validation of `[warming]` (stage two): the settings the engine driver
//! maps into one `EngineConfig` per dataset, plus the driver's own
//! schedules (pre-market cycle, snapshots) and its outside-session policy.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveTime;
use prewarm_core::strategy::StrategySet;

use super::ConfigError;
use super::raw::{RawStrategyTuning, RawWarming};
use super::validated::{at_least, invalid, non_negative, positive};
use prewarm_core::strategies::WarmingConfig as CoreWarming;

/// What warming does while the market is closed (nights, weekends,
/// holidays; pre-market and after-hours count as open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutsideSessions {
    /// Warm as during sessions.
    Run,
    /// Warm at `outside_rate_factor` of the rate.
    Reduce,
    /// Do not warm at all.
    Pause,
}

impl OutsideSessions {
    /// `run`, `reduce` or `pause`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutsideSessions::Run => "run",
            OutsideSessions::Reduce => "reduce",
            OutsideSessions::Pause => "pause",
        }
    }
}

impl fmt::Display for OutsideSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutsideSessions {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "run" => Ok(OutsideSessions::Run),
            "reduce" => Ok(OutsideSessions::Reduce),
            "pause" => Ok(OutsideSessions::Pause),
            other => Err(format!("expected run, reduce or pause, got {other:?}")),
        }
    }
}

/// `[warming]`, validated (consumed by the engine driver).
#[derive(Debug, Clone, PartialEq)]
pub struct WarmingConfig {
    /// Whether warming runs (accesses are learned either way).
    pub enabled: bool,
    /// Popular keys kept warm.
    pub popular_limit: u32,
    /// Warming fetches per minute, per dataset.
    pub rate_limit_per_min: f64,
    /// Token-bucket capacity; `None`: equal to the rate.
    pub burst: Option<f64>,
    /// Strategies allowed to warm.
    pub strategies: StrategySet,
    /// Most warming fetches in flight at once (all datasets).
    pub max_concurrent: usize,
    /// Policy while the market is closed.
    pub outside_sessions: OutsideSessions,
    /// Share of the rate kept under [`OutsideSessions::Reduce`], in (0, 1].
    pub outside_rate_factor: f64,
    /// Exchange-local (America/New_York) time of the pre-market cycle.
    pub pre_market_at: NaiveTime,
    /// Most keys one pre-market or manual cycle warms per dataset.
    pub pre_market_limit: usize,
    /// How far ahead the cycle looks for habitual (time-of-day) keys, s.
    pub pre_market_look_ahead_s: f64,
    /// Seconds between snapshots of learned state.
    pub snapshot_interval_s: f64,
    /// Lowest calibrated candidate value; `None`: the engine's default.
    pub min_value: Option<f64>,
    /// Cap on API calls over a cache without warming for spare-token
    /// spending; `None`: the engine's default.
    pub max_cost_ratio: Option<f64>,
    /// Refresh-ahead share of the TTL; `None`: the engine's default.
    pub refresh_fraction: Option<f64>,
    /// Popular-list period, s; `None`: the engine's default.
    pub popular_interval_s: Option<f64>,
    /// `[warming.strategy]`, validated (`None`: the engine's default).
    pub strategy: RawStrategyTuning,
}

impl WarmingConfig {
    /// The engine's strategy settings: its defaults, overridden by what
    /// `[warming]` and `[warming.strategy]` set.
    pub fn core(&self) -> CoreWarming {
        let d = CoreWarming::default();
        let t = &self.strategy;
        CoreWarming {
            popular_limit: self.popular_limit as usize,
            min_value: self.min_value.unwrap_or(d.min_value),
            max_cost_ratio: self.max_cost_ratio.unwrap_or(d.max_cost_ratio),
            refresh_fraction: self.refresh_fraction.unwrap_or(d.refresh_fraction),
            popular_interval_s: self.popular_interval_s.unwrap_or(d.popular_interval_s),
            spare_min_value: t.spare_min_value.unwrap_or(d.spare_min_value),
            spare_floor_value: t.spare_floor_value.unwrap_or(d.spare_floor_value),
            predictive_confidence_threshold: t
                .predictive_confidence_threshold
                .unwrap_or(d.predictive_confidence_threshold),
            predictive_limit: t.predictive_limit.unwrap_or(d.predictive_limit),
            trending_interval_s: t.trending_interval_s.unwrap_or(d.trending_interval_s),
            trending_limit: t.trending_limit.unwrap_or(d.trending_limit),
            sector_interval_s: t.sector_interval_s.unwrap_or(d.sector_interval_s),
            sector_min_lift: t.sector_min_lift.unwrap_or(d.sector_min_lift),
            sector_members: t.sector_members.unwrap_or(d.sector_members),
            ..d
        }
    }
}

/// `[warming.strategy]` checked field by field.
fn validate_tuning(t: Option<&RawStrategyTuning>) -> Result<RawStrategyTuning, ConfigError> {
    let Some(t) = t else {
        return Ok(RawStrategyTuning::default());
    };
    Ok(RawStrategyTuning {
        spare_min_value: unit_interval("warming.strategy.spare_min_value", t.spare_min_value)?,
        spare_floor_value: unit_interval(
            "warming.strategy.spare_floor_value",
            t.spare_floor_value,
        )?,
        predictive_confidence_threshold: unit_interval(
            "warming.strategy.predictive_confidence_threshold",
            t.predictive_confidence_threshold,
        )?,
        trending_interval_s: optional_positive(
            "warming.strategy.trending_interval_s",
            t.trending_interval_s,
        )?,
        sector_interval_s: optional_positive(
            "warming.strategy.sector_interval_s",
            t.sector_interval_s,
        )?,
        sector_min_lift: optional_positive("warming.strategy.sector_min_lift", t.sector_min_lift)?,
        ..t.clone()
    })
}

fn unit_interval(field: &str, v: Option<f64>) -> Result<Option<f64>, ConfigError> {
    match v {
        Some(x) if !(0.0..=1.0).contains(&x) => Err(invalid(field, "must be between 0 and 1")),
        other => Ok(other),
    }
}

fn optional_positive(field: &str, v: Option<f64>) -> Result<Option<f64>, ConfigError> {
    v.map(|x| positive(field, Some(x), x)).transpose()
}

/// Validates `[warming]`; `upstream_max_concurrent` is the default of
/// `warming.max_concurrent`.
pub(super) fn validate_warming(
    w: &RawWarming,
    upstream_max_concurrent: usize,
) -> Result<WarmingConfig, ConfigError> {
    let strategies = match &w.strategies {
        None => StrategySet::all(),
        Some(list) => StrategySet::parse_list(list)
            .map_err(|e| invalid("warming.strategies", e.to_string()))?,
    };
    let outside_sessions = match &w.outside_sessions {
        None => OutsideSessions::Reduce,
        Some(s) => s
            .parse()
            .map_err(|e: String| invalid("warming.outside_sessions", e))?,
    };
    let factor = positive("warming.outside_rate_factor", w.outside_rate_factor, 0.25)?;
    if factor > 1.0 {
        return Err(invalid("warming.outside_rate_factor", "must be <= 1"));
    }
    let pre_market_at = match &w.pre_market_at {
        None => NaiveTime::from_hms_opt(8, 30, 0).unwrap_or(NaiveTime::MIN),
        Some(s) => NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| {
            invalid(
                "warming.pre_market_at",
                format!("expected HH:MM, got {s:?}"),
            )
        })?,
    };
    let burst = match w.burst {
        None => None,
        Some(b) => Some(non_negative("warming.burst", Some(b), b)?),
    };
    let refresh_fraction = unit_interval("warming.refresh_fraction", w.refresh_fraction)?;
    if matches!(refresh_fraction, Some(f) if f <= 0.0 || f >= 1.0) {
        return Err(invalid(
            "warming.refresh_fraction",
            "must be strictly between 0 and 1",
        ));
    }
    let popular_limit = w.popular_limit.unwrap_or(100);
    let cfg = WarmingConfig {
        enabled: w.enabled.unwrap_or(true),
        popular_limit,
        rate_limit_per_min: non_negative(
            "warming.rate_limit_per_min",
            w.rate_limit_per_min,
            100.0,
        )?,
        burst,
        strategies,
        max_concurrent: at_least(
            "warming.max_concurrent",
            w.max_concurrent,
            upstream_max_concurrent,
            1,
        )?,
        outside_sessions,
        outside_rate_factor: factor,
        pre_market_at,
        pre_market_limit: w.pre_market_limit.unwrap_or(popular_limit as usize),
        pre_market_look_ahead_s: positive(
            "warming.pre_market_look_ahead_s",
            w.pre_market_look_ahead_s,
            3600.0,
        )?,
        snapshot_interval_s: positive("warming.snapshot_interval_s", w.snapshot_interval_s, 900.0)?,
        min_value: unit_interval("warming.min_value", w.min_value)?,
        max_cost_ratio: match w.max_cost_ratio {
            Some(x) if !(x.is_finite() && x >= 1.0) => {
                return Err(invalid(
                    "warming.max_cost_ratio",
                    "must be a number of at least 1",
                ));
            }
            other => other,
        },
        refresh_fraction,
        popular_interval_s: optional_positive("warming.popular_interval_s", w.popular_interval_s)?,
        strategy: validate_tuning(w.strategy.as_ref())?,
    };
    // The engine's own checks, at start rather than when the driver runs.
    let engine = prewarm_core::engine::EngineConfig {
        warming: cfg.core(),
        ..prewarm_core::engine::EngineConfig::default()
    };
    engine.validate().map_err(|e| invalid(e.field, e.problem))?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(f: impl FnOnce(&mut RawWarming)) -> RawWarming {
        let mut w = RawWarming::default();
        f(&mut w);
        w
    }

    #[test]
    fn strategy_table_reaches_the_engine_settings_and_unknown_fields_are_named() {
        let w: RawWarming =
            toml::from_str("[strategy]\ntrending_limit = 5\nsector_min_lift = 2.0\n").unwrap();
        let core = validate_warming(&w, 10).unwrap().core();
        assert_eq!(core.trending_limit, 5);
        assert_eq!(core.sector_min_lift, 2.0);
        assert_eq!(
            core.predictive_limit,
            CoreWarming::default().predictive_limit
        );
        let err = toml::from_str::<RawWarming>("[strategy]\ntrending_limt = 5\n").unwrap_err();
        assert!(err.to_string().contains("trending_limt"), "{err}");
    }

    #[test]
    fn defaults_follow_the_issue() {
        let w = validate_warming(&RawWarming::default(), 8).unwrap();
        assert!(w.enabled);
        assert_eq!(w.rate_limit_per_min, 100.0);
        assert_eq!(w.strategies, StrategySet::all());
        assert_eq!(w.max_concurrent, 8);
        assert_eq!(w.outside_sessions, OutsideSessions::Reduce);
        assert_eq!(w.pre_market_at, NaiveTime::from_hms_opt(8, 30, 0).unwrap());
        assert_eq!(w.snapshot_interval_s, 900.0);
        assert_eq!(w.popular_limit, 100, "the seed's top 100");
        assert_eq!(w.pre_market_limit, 100);
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases: Vec<(RawWarming, &str)> = vec![
            (
                raw(|w| w.strategies = Some("popular,bogus".into())),
                "warming.strategies",
            ),
            (
                raw(|w| w.outside_sessions = Some("sleep".into())),
                "warming.outside_sessions",
            ),
            (
                raw(|w| w.outside_rate_factor = Some(2.0)),
                "warming.outside_rate_factor",
            ),
            (
                raw(|w| w.pre_market_at = Some("8h30".into())),
                "warming.pre_market_at",
            ),
            (
                raw(|w| w.max_concurrent = Some(0)),
                "warming.max_concurrent",
            ),
            (raw(|w| w.min_value = Some(1.5)), "warming.min_value"),
            (
                raw(|w| {
                    w.strategy = Some(RawStrategyTuning {
                        trending_interval_s: Some(0.0),
                        ..RawStrategyTuning::default()
                    })
                }),
                "warming.strategy.trending_interval_s",
            ),
            (
                raw(|w| {
                    w.strategy = Some(RawStrategyTuning {
                        predictive_confidence_threshold: Some(1.2),
                        ..RawStrategyTuning::default()
                    })
                }),
                "warming.strategy.predictive_confidence_threshold",
            ),
            (
                raw(|w| w.max_cost_ratio = Some(0.9)),
                "warming.max_cost_ratio",
            ),
            (
                raw(|w| w.refresh_fraction = Some(1.0)),
                "warming.refresh_fraction",
            ),
            (
                raw(|w| w.snapshot_interval_s = Some(0.0)),
                "warming.snapshot_interval_s",
            ),
        ];
        for (w, field) in cases {
            let err = validate_warming(&w, 8).unwrap_err().to_string();
            assert!(err.starts_with(field), "{field}: {err}");
        }
    }

    #[test]
    fn strategies_and_policy_parse() {
        let w = validate_warming(
            &raw(|w| {
                w.strategies = Some("popular,refresh".into());
                w.outside_sessions = Some("Pause".into());
                w.pre_market_at = Some("07:45".into());
            }),
            4,
        )
        .unwrap();
        assert_eq!(
            w.strategies,
            StrategySet::parse_list("popular,refresh").unwrap()
        );
        assert_eq!(w.outside_sessions, OutsideSessions::Pause);
        assert_eq!(w.pre_market_at, NaiveTime::from_hms_opt(7, 45, 0).unwrap());
    }
}
