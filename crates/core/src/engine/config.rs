//! [`EngineConfig`] and its validation (the warming settings validate
//! themselves: [`WarmingConfig::validate`]).

use crate::calendar::ExchangeCalendar;
use crate::check;
use crate::strategies::WarmingConfig;
use crate::tracker::{TrackerConfig, TrackerConfigError};
use crate::ttl::{SessionTtls, TtlPolicy, TtlRule};
use thiserror::Error;

/// Configuration of one engine (one dataset).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Seconds an entry stays fresh after its fetch (the flat TTL, and the
    /// TTL of any session `ttl_by_session` leaves out when parsed).
    pub ttl_s: f64,
    /// TTL per market session, replacing `ttl_s` when set
    /// ([`crate::ttl`]: the session at the fetch instant decides; the
    /// closed session may be `until_open`).
    pub ttl_by_session: Option<SessionTtls>,
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
    /// Most keys one warming call fetches (≥ 1): the upstream's batch
    /// endpoint's limit (the daemon's `batch_max_keys` when the dataset
    /// has a `batch_url`, replay's `--batch-max-keys`). Each call counts
    /// once in the figures and the cost cap; the keys after the first ride
    /// along (module `batch`). 1: a call per key.
    pub warm_batch_max_keys: usize,
}

/// The daemon's cost window: counts halve every trading day and its night.
pub const DAEMON_COST_HALF_LIFE_S: f64 = 86_400.0;

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ttl_s: 60.0,
            ttl_by_session: None,
            capacity_entries: None,
            warming: WarmingConfig::default(),
            tracker: TrackerConfig::default(),
            max_queued_candidates: 100_000,
            series_bucket_s: None,
            series_max_buckets: None,
            cost_half_life_s: None,
            upstream_latency_s: 0.0,
            warm_batch_max_keys: 1,
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
    /// The TTL rule entries expire by: [`EngineConfig::ttl_policy`] on
    /// the exchange calendar of the tracker's time zone (New York when
    /// the zone does not parse: validation reports that).
    pub fn ttl_rule(&self) -> TtlRule {
        let cal = self
            .tracker
            .parse_timezone()
            .map(ExchangeCalendar::with_timezone)
            .unwrap_or_default();
        TtlRule::new(self.ttl_policy(), cal)
    }

    /// The TTL policy: `ttl_by_session` when set, else flat `ttl_s`.
    pub fn ttl_policy(&self) -> TtlPolicy {
        match self.ttl_by_session {
            Some(t) => TtlPolicy::BySession(t),
            None => TtlPolicy::Flat(self.ttl_s),
        }
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive_s("ttl_s", self.ttl_s)?;
        self.ttl_policy().validate().map_err(|e| ConfigError {
            field: "ttl_by_session",
            problem: e.to_string(),
        })?;
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
        if self.warm_batch_max_keys == 0 {
            return bad("warm_batch_max_keys", "must be at least 1");
        }
        self.warming.validate()?;
        self.tracker.validate()?;
        Ok(())
    }
}
