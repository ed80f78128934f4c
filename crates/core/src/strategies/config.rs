//! [`WarmingConfig`]: the engine's warming settings, shaped as the
//! daemon's `[warming]` table (with [`StrategyTuning`] as its
//! `[warming.strategy]` table), and their validation.
//!
//! The daemon's file and `prewarm replay --config` deserialize straight
//! into these types (serde, unknown fields rejected); every setting left
//! out keeps the default given here. [`WarmingConfig::validate`] is the
//! one place their rules live; errors name the field as written in the
//! file (`warming.strategy.trending_interval_s`).
//!
//! Which table a setting is in: `[warming]` holds the budget, the strategy
//! set and what every strategy shares (value thresholds, cost cap,
//! refresh-ahead, the popular list); `[warming.strategy]` holds the
//! thresholds of spare tokens and each timer strategy's limits and
//! intervals.

use crate::check;
use crate::engine::ConfigError;
use crate::strategy::StrategySet;
use serde::{Deserialize, Serialize};

/// The engine's warming settings (`[warming]`). Defaults follow the seed
/// where it has a value that still makes sense.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WarmingConfig {
    /// Warming fetches allowed per minute (the token bucket's refill);
    /// demand fetches never draw from it.
    pub rate_limit_per_min: f64,
    /// Token bucket capacity, in fetches; `None`: equal to the rate.
    pub burst: Option<f64>,
    /// Warming fetches the start-up cycle may make at once after a restore
    /// (`crate::engine::Engine::plan_startup`), beside the bucket; `None`:
    /// one bucket (`burst`). Every one still needs room under the cost cap.
    pub startup_burst: Option<f64>,
    /// Strategies allowed to warm (`"all"`, `"none"` or a comma list).
    pub strategies: StrategySet,
    /// Size of the popular list kept fresh (the seed's `popular.limit`).
    pub popular_limit: usize,
    /// The cost cap: API calls (demand and warming) stay at most this
    /// multiple of what a cache without warming would make on the same
    /// traffic (measured on a shadow of the cache), plus one bucket burst;
    /// over the whole run in replay, over about the last day in the daemon.
    /// A hard limit; the learned price keeps spending under it
    /// (`crate::cost`).
    pub max_cost_ratio: f64,
    /// Refresh-ahead starts when an entry's age reaches this share of its
    /// TTL (the seed's `refresh_threshold`).
    pub refresh_fraction: f64,
    /// Seconds between recomputations of the popular list.
    pub popular_interval_s: f64,
    /// `[warming.strategy]`: spare-token thresholds and the timer
    /// strategies' limits and intervals.
    pub strategy: StrategyTuning,
    /// Seconds between tracker upkeep runs. Not read from files.
    #[serde(skip)]
    pub maintain_interval_s: f64,
    /// Most (client, key) cadences tracked; the idlest are dropped beyond.
    /// Not read from files.
    #[serde(skip)]
    pub max_client_pairs: usize,
}

/// `[warming.strategy]`: the engine's per-strategy settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StrategyTuning {
    /// Lowest P(next | current) a prediction needs (the seed's
    /// `predictive.confidence_threshold`; calibration decides the rest).
    pub predictive_confidence_threshold: f64,
    /// Most predictions followed per access.
    pub predictive_limit: usize,
    /// Seconds between trending scans.
    pub trending_interval_s: f64,
    /// Most trending keys acted on per scan.
    pub trending_limit: usize,
    /// Seconds between sector-rotation scans (the seed's
    /// `sector_rotation.interval` is 3,600; bursts move faster).
    pub sector_interval_s: f64,
    /// A group whose short share over its long share exceeds this lift is
    /// rotating in.
    pub sector_min_lift: f64,
    /// Members of a rotating group warmed per scan.
    pub sector_members: usize,
}

impl Default for WarmingConfig {
    fn default() -> Self {
        WarmingConfig {
            rate_limit_per_min: 100.0,
            burst: None,
            startup_burst: None,
            strategies: StrategySet::all(),
            popular_limit: 100,
            max_cost_ratio: 1.25,
            refresh_fraction: 0.8,
            popular_interval_s: 60.0,
            strategy: StrategyTuning::default(),
            maintain_interval_s: 300.0,
            max_client_pairs: 200_000,
        }
    }
}

impl Default for StrategyTuning {
    fn default() -> Self {
        StrategyTuning {
            predictive_confidence_threshold: 0.7,
            predictive_limit: 4,
            trending_interval_s: 10.0,
            trending_limit: 20,
            sector_interval_s: 300.0,
            sector_min_lift: 1.5,
            sector_members: 10,
        }
    }
}

/// `verdict` on the field `field`, as a [`ConfigError`].
fn field(field: &'static str, verdict: Result<(), check::Problem>) -> Result<(), ConfigError> {
    verdict.map_err(|problem| ConfigError { field, problem })
}

impl WarmingConfig {
    /// The token bucket's capacity, in fetches: `burst`, or the rate.
    pub fn bucket_burst(&self) -> f64 {
        self.burst.unwrap_or(self.rate_limit_per_min)
    }

    /// Fetches the start-up cycle may make at once: `startup_burst`, or one
    /// bucket ([`WarmingConfig::bucket_burst`]).
    pub fn startup_allowance(&self) -> f64 {
        self.startup_burst.unwrap_or_else(|| self.bucket_burst())
    }

    /// Checks every setting, naming the first bad one by its path in the
    /// daemon's file (`warming.max_cost_ratio`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        use check::{finite_at_least, non_negative, open_fraction};
        field(
            "warming.rate_limit_per_min",
            non_negative(self.rate_limit_per_min),
        )?;
        if let Some(b) = self.burst {
            field("warming.burst", non_negative(b))?;
        }
        if let Some(b) = self.startup_burst {
            field("warming.startup_burst", non_negative(b))?;
        }
        field(
            "warming.max_cost_ratio",
            finite_at_least(self.max_cost_ratio, 1.0),
        )?;
        field(
            "warming.refresh_fraction",
            open_fraction(self.refresh_fraction),
        )?;
        field(
            "warming.popular_interval_s",
            check::seconds_from(self.popular_interval_s, MIN_INTERVAL_S),
        )?;
        field(
            "warming.maintain_interval_s",
            check::seconds_from(self.maintain_interval_s, MIN_INTERVAL_S),
        )?;
        self.strategy.validate()
    }
}

/// Shortest interval between a strategy's rounds, seconds.
pub const MIN_INTERVAL_S: f64 = 1.0;

impl StrategyTuning {
    /// Checks every setting, naming the first bad one
    /// (`warming.strategy.trending_interval_s`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        use check::{fraction, positive};
        field(
            "warming.strategy.predictive_confidence_threshold",
            fraction(self.predictive_confidence_threshold),
        )?;
        field(
            "warming.strategy.trending_interval_s",
            check::seconds_from(self.trending_interval_s, MIN_INTERVAL_S),
        )?;
        field(
            "warming.strategy.sector_interval_s",
            check::seconds_from(self.sector_interval_s, MIN_INTERVAL_S),
        )?;
        field(
            "warming.strategy.sector_min_lift",
            positive(self.sector_min_lift),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        WarmingConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_values_name_their_field() {
        type Set = fn(&mut WarmingConfig);
        let cases: [(Set, &str); 7] = [
            (
                |w| w.rate_limit_per_min = -1.0,
                "warming.rate_limit_per_min",
            ),
            (|w| w.burst = Some(f64::NAN), "warming.burst"),
            (|w| w.max_cost_ratio = 0.9, "warming.max_cost_ratio"),
            (|w| w.refresh_fraction = 1.0, "warming.refresh_fraction"),
            (|w| w.popular_interval_s = 0.0, "warming.popular_interval_s"),
            (
                |w| w.strategy.trending_interval_s = 0.0,
                "warming.strategy.trending_interval_s",
            ),
            (
                |w| w.strategy.sector_min_lift = -1.0,
                "warming.strategy.sector_min_lift",
            ),
        ];
        for (set, name) in cases {
            let mut w = WarmingConfig::default();
            set(&mut w);
            assert_eq!(w.validate().unwrap_err().field, name);
        }
    }

    #[test]
    fn the_tables_read_only_their_own_fields_and_default_the_rest() {
        let w: WarmingConfig = serde_json::from_str(
            r#"{"rate_limit_per_min": 40, "strategies": "popular,time",
                "strategy": {"trending_limit": 7}}"#,
        )
        .unwrap();
        assert_eq!(w.rate_limit_per_min, 40.0);
        assert_eq!(w.strategies, "popular,time".parse().unwrap());
        assert_eq!(w.strategy.trending_limit, 7);
        assert_eq!(
            w.strategy.sector_members,
            StrategyTuning::default().sector_members
        );
        for unknown in [
            r#"{"trending_limit": 7}"#,
            r#"{"min_value": 0.5}"#,
            r#"{"strategy": {"min_value": 0.5}}"#,
        ] {
            let err = serde_json::from_str::<WarmingConfig>(unknown).unwrap_err();
            assert!(
                err.to_string().contains("unknown field"),
                "{unknown}: {err}"
            );
        }
    }
}
