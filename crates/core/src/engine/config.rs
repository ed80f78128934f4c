//! [`EngineConfig`] and its validation (the warming settings validate
//! themselves: [`WarmingConfig::validate`]).

use crate::check;
use crate::strategies::WarmingConfig;
use crate::tracker::{TrackerConfig, TrackerConfigError};
use thiserror::Error;

/// Configuration of one engine (one dataset).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Seconds an entry stays fresh after its fetch.
    pub ttl_s: f64,
    /// Capacity of the cache in entries; `None` is unlimited.
    pub capacity_entries: Option<usize>,
    /// How the engine warms: budget, strategies and their settings (the
    /// daemon's `[warming]` table).
    pub warming: WarmingConfig,
    /// Settings of the access tracker.
    pub tracker: TrackerConfig,
    /// Bound on queued candidates.
    pub max_queued_candidates: usize,
    /// Width of the buckets of the time series kept in the stats, if any.
    pub series_bucket_s: Option<f64>,
    /// Most buckets of that series kept, newest first; `None` keeps them
    /// all (replay). The daemon keeps the last hour.
    pub series_max_buckets: Option<usize>,
    /// Half-life of the cost cap's call counts, seconds; `None` counts the
    /// whole run (replay). The daemon uses [`DAEMON_COST_HALF_LIFE_S`].
    pub cost_half_life_s: Option<f64>,
    /// How long an upstream fetch takes, seconds (≥ 0): a fetch started at
    /// `f` serves from `f + upstream_latency_s`. Warming plans its lead
    /// times with it, and the cost cap's shadow cache coalesces with it.
    /// Replay sets it from `--latency-ms`; the daemon updates it from the
    /// measured latency ([`crate::engine::Engine::set_upstream_latency_s`]).
    pub upstream_latency_s: f64,
}

/// The daemon's cost window: counts halve every trading day and its night.
pub const DAEMON_COST_HALF_LIFE_S: f64 = 86_400.0;

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ttl_s: 60.0,
            capacity_entries: None,
            warming: WarmingConfig::default(),
            tracker: TrackerConfig::default(),
            max_queued_candidates: 100_000,
            series_bucket_s: None,
            series_max_buckets: None,
            cost_half_life_s: None,
            upstream_latency_s: 0.0,
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
    check::positive(v).map_err(|problem| ConfigError { field, problem })
}

impl EngineConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive_s("ttl_s", self.ttl_s)?;
        if self.capacity_entries == Some(0) {
            return bad(
                "capacity_entries",
                "must be at least 1 (omit it for unlimited)",
            );
        }
        if let Some(b) = self.series_bucket_s {
            positive_s("series_bucket_s", b)?;
        }
        if let Some(h) = self.cost_half_life_s {
            positive_s("cost_half_life_s", h)?;
        }
        check::non_negative(self.upstream_latency_s).map_err(|problem| ConfigError {
            field: "upstream_latency_s",
            problem,
        })?;
        self.warming.validate()?;
        self.tracker.validate()?;
        Ok(())
    }
}
