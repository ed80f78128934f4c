//! [`EngineConfig`] and its validation.

use crate::strategies::WarmingConfig;
use crate::strategy::StrategySet;
use crate::tracker::{TrackerConfig, TrackerConfigError};
use thiserror::Error;

/// Configuration of one engine (one dataset).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Seconds an entry stays fresh after its fetch.
    pub ttl_s: f64,
    /// Warming fetches allowed per minute (token bucket refill).
    pub warm_rate_per_min: f64,
    /// Token bucket capacity; `None` means equal to the rate.
    pub warm_burst: Option<f64>,
    /// Capacity of the cache in entries; `None` is unlimited.
    pub capacity_entries: Option<usize>,
    /// Strategies allowed to warm.
    pub strategies: StrategySet,
    /// Settings of the strategies.
    pub warming: WarmingConfig,
    /// Settings of the access tracker.
    pub tracker: TrackerConfig,
    /// Bound on queued candidates.
    pub max_queued_candidates: usize,
    /// Width of the buckets of the time series kept in the stats, if any.
    pub series_bucket_s: Option<f64>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ttl_s: 60.0,
            warm_rate_per_min: 100.0,
            warm_burst: None,
            capacity_entries: None,
            strategies: StrategySet::all(),
            warming: WarmingConfig::default(),
            tracker: TrackerConfig::default(),
            max_queued_candidates: 100_000,
            series_bucket_s: None,
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("invalid engine config: `{field}` {problem}")]
pub struct ConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl From<TrackerConfigError> for ConfigError {
    fn from(e: TrackerConfigError) -> Self {
        ConfigError {
            field: e.field,
            problem: e.to_string(),
        }
    }
}

fn bad(field: &'static str, problem: &str) -> Result<(), ConfigError> {
    Err(ConfigError {
        field,
        problem: problem.to_string(),
    })
}

fn positive_s(field: &'static str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        bad(field, "must be a positive number of seconds")
    }
}

impl EngineConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive_s("ttl_s", self.ttl_s)?;
        if !(self.warm_rate_per_min.is_finite() && self.warm_rate_per_min >= 0.0) {
            return bad("warm_rate_per_min", "must be zero or more");
        }
        if let Some(b) = self.warm_burst
            && !(b.is_finite() && b >= 0.0)
        {
            return bad("warm_burst", "must be zero or more");
        }
        if self.capacity_entries == Some(0) {
            return bad(
                "capacity_entries",
                "must be at least 1 (omit it for unlimited)",
            );
        }
        if let Some(b) = self.series_bucket_s {
            positive_s("series_bucket_s", b)?;
        }
        self.validate_warming()?;
        self.tracker.validate()?;
        Ok(())
    }

    fn validate_warming(&self) -> Result<(), ConfigError> {
        let w = &self.warming;
        if !(w.refresh_fraction > 0.0 && w.refresh_fraction < 1.0) {
            return bad(
                "warming.refresh_fraction",
                "must be strictly between 0 and 1",
            );
        }
        if !(0.0..=1.0).contains(&w.min_value) {
            return bad("warming.min_value", "must be between 0 and 1");
        }
        if !(0.0..=1.0).contains(&w.spare_min_value) {
            return bad("warming.spare_min_value", "must be between 0 and 1");
        }
        if !(0.0..=1.0).contains(&w.spare_floor_value) {
            return bad("warming.spare_floor_value", "must be between 0 and 1");
        }
        if !(w.max_cost_ratio >= 1.0 && w.max_cost_ratio.is_finite()) {
            return bad(
                "warming.max_cost_ratio",
                "must be a finite number of at least 1",
            );
        }
        if !(0.0..=1.0).contains(&w.exploration) {
            return bad("warming.exploration", "must be between 0 and 1");
        }
        if !(0.0..=1.0).contains(&w.predictive_confidence_threshold) {
            return bad(
                "warming.predictive_confidence_threshold",
                "must be between 0 and 1",
            );
        }
        positive_s("warming.popular_interval_s", w.popular_interval_s)?;
        positive_s("warming.trending_interval_s", w.trending_interval_s)?;
        positive_s("warming.sector_interval_s", w.sector_interval_s)?;
        positive_s("warming.maintain_interval_s", w.maintain_interval_s)?;
        Ok(())
    }
}
