//! [`DriverSettings`]: what only the driver reads of `[warming]`: whether
//! it warms at all, how many warms fly at once, what it does while the
//! market is closed, and its schedules (pre-market cycle, snapshots).
//!
//! The engine's settings share the table
//! ([`prewarm_core::strategies::WarmingConfig`]); the config's `warming`
//! module hands each key of `[warming]` to its owner, this type reading
//! the keys in [`DriverSettings::KEYS`] through
//! [`DriverSettings::read_value`].

use std::fmt;
use std::str::FromStr;

use chrono::NaiveTime;
use prewarm_core::check;
use serde::de::{Error as _, MapAccess};
use serde::{Deserialize, Deserializer};

use crate::config::check::verdict;
use crate::config::error::ConfigError;

/// What warming does while the market is closed (nights, weekends,
/// holidays; pre-market and after-hours count as open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
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
    /// `run`, `reduce` or `pause`, in any case, spaces around ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "run" => Ok(OutsideSessions::Run),
            "reduce" => Ok(OutsideSessions::Reduce),
            "pause" => Ok(OutsideSessions::Pause),
            other => Err(format!("expected run, reduce or pause, got {other:?}")),
        }
    }
}

/// Read as [`OutsideSessions::from_str`] reads.
impl<'de> Deserialize<'de> for OutsideSessions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// When the start-up cycle runs after a restart, against `/readyz`
/// (`warming.startup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartupMode {
    /// `/readyz` answers 503 until the cycle is done or
    /// `warming.startup_deadline_s` passed (the proxy serves meanwhile).
    BeforeReady,
    /// `/readyz` answers 200 at once; the cycle runs beside traffic.
    AfterReady,
    /// No start-up cycle: warming starts with the first request.
    Off,
}

impl StartupMode {
    /// `before_ready`, `after_ready` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            StartupMode::BeforeReady => "before_ready",
            StartupMode::AfterReady => "after_ready",
            StartupMode::Off => "off",
        }
    }
}

impl fmt::Display for StartupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StartupMode {
    type Err = String;
    /// `before_ready`, `after_ready` or `off`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "before_ready" => Ok(StartupMode::BeforeReady),
            "after_ready" => Ok(StartupMode::AfterReady),
            "off" => Ok(StartupMode::Off),
            other => Err(format!(
                "expected before_ready, after_ready or off, got {other:?}"
            )),
        }
    }
}

/// Read as [`StartupMode::from_str`] reads.
impl<'de> Deserialize<'de> for StartupMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// An exchange-local wall-clock time written `HH:MM`.
struct HhMm(NaiveTime);

impl<'de> Deserialize<'de> for HhMm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        NaiveTime::parse_from_str(text.trim(), "%H:%M")
            .map(HhMm)
            .map_err(|_| D::Error::custom(format!("expected HH:MM, got {text:?}")))
    }
}

/// `[warming]`'s driver settings (the engine's are
/// [`prewarm_core::strategies::WarmingConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DriverSettings {
    /// Whether warming runs (accesses are learned either way): when off,
    /// the engines get no strategy and cycles are refused.
    pub enabled: bool,
    /// Most warming fetches in flight at once, all datasets together;
    /// `None`: as many as upstream's `max_concurrent`.
    pub max_concurrent: Option<usize>,
    /// Policy while the market is closed.
    pub outside_sessions: OutsideSessions,
    /// Share of the rate kept under [`OutsideSessions::Reduce`], in (0, 1].
    pub outside_rate_factor: f64,
    /// Exchange-local (America/New_York) time of the pre-market cycle,
    /// trading days only.
    pub pre_market_at: NaiveTime,
    /// Most keys one pre-market (or default manual) cycle warms per
    /// dataset and strategy; `None`: the engine's `popular_limit`.
    pub pre_market_limit: Option<usize>,
    /// How far ahead the cycle looks for habitual (time-of-day) keys, s.
    pub pre_market_look_ahead_s: f64,
    /// Seconds between snapshots of learned state.
    pub snapshot_interval_s: f64,
    /// When the start-up cycle runs (after a restore: the keys most likely
    /// requested within the next TTL, on `warming.startup_burst`). Default
    /// `after_ready`: a restart never delays readiness, and the cycle
    /// starts at once, before most traffic comes back; `before_ready`
    /// suits deployments that shift traffic on readiness.
    pub startup: StartupMode,
    /// Longest `/readyz` waits for the cycle under `before_ready`, seconds.
    pub startup_deadline_s: f64,
}

impl Default for DriverSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_concurrent: None,
            outside_sessions: OutsideSessions::Reduce,
            outside_rate_factor: 0.25,
            pre_market_at: NaiveTime::from_hms_opt(8, 30, 0).unwrap_or(NaiveTime::MIN),
            pre_market_limit: None,
            pre_market_look_ahead_s: 3600.0,
            snapshot_interval_s: 900.0,
            startup: StartupMode::AfterReady,
            startup_deadline_s: 30.0,
        }
    }
}

impl DriverSettings {
    /// The keys of `[warming]` that are the driver's.
    pub const KEYS: &'static [&'static str] = &[
        "enabled",
        "max_concurrent",
        "outside_sessions",
        "outside_rate_factor",
        "pre_market_at",
        "pre_market_limit",
        "pre_market_look_ahead_s",
        "snapshot_interval_s",
        "startup",
        "startup_deadline_s",
    ];

    /// Sets the setting `key` (one of [`Self::KEYS`]) from `map`'s next
    /// value. Errors: a value of the wrong type or form (`map`'s error,
    /// which locates it), or a key not in [`Self::KEYS`].
    pub fn read_value<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match key {
            "enabled" => self.enabled = map.next_value()?,
            "max_concurrent" => self.max_concurrent = Some(map.next_value()?),
            "outside_sessions" => self.outside_sessions = map.next_value()?,
            "outside_rate_factor" => self.outside_rate_factor = map.next_value()?,
            "pre_market_at" => self.pre_market_at = map.next_value::<HhMm>()?.0,
            "pre_market_limit" => self.pre_market_limit = Some(map.next_value()?),
            "pre_market_look_ahead_s" => self.pre_market_look_ahead_s = map.next_value()?,
            "snapshot_interval_s" => self.snapshot_interval_s = map.next_value()?,
            "startup" => self.startup = map.next_value()?,
            "startup_deadline_s" => self.startup_deadline_s = map.next_value()?,
            other => return Err(A::Error::unknown_field(other, Self::KEYS)),
        }
        Ok(())
    }

    /// Checks every setting, naming the first bad one
    /// (`warming.snapshot_interval_s: must be > 0`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(n) = self.max_concurrent {
            verdict("warming.max_concurrent", check::at_least(n, 1))?;
        }
        let factor = self.outside_rate_factor;
        verdict(
            "warming.outside_rate_factor",
            check::positive(factor).and_then(|()| check::at_most(factor, 1.0)),
        )?;
        verdict(
            "warming.pre_market_look_ahead_s",
            check::seconds_from(self.pre_market_look_ahead_s, check::MIN_SECONDS),
        )?;
        verdict(
            "warming.snapshot_interval_s",
            check::seconds_from(self.snapshot_interval_s, MIN_SNAPSHOT_INTERVAL_S),
        )?;
        verdict(
            "warming.startup_deadline_s",
            check::seconds_from(self.startup_deadline_s, check::MIN_SECONDS),
        )
    }

    /// Most warming fetches in flight at once, given upstream's limit.
    pub fn max_concurrent_or(&self, upstream_max_concurrent: usize) -> usize {
        self.max_concurrent.unwrap_or(upstream_max_concurrent)
    }
}

/// Shortest `warming.snapshot_interval_s`, seconds.
pub const MIN_SNAPSHOT_INTERVAL_S: f64 = 1.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_issue() {
        let d = DriverSettings::default();
        assert!(d.enabled);
        assert_eq!(d.max_concurrent_or(8), 8);
        assert_eq!(d.outside_sessions, OutsideSessions::Reduce);
        assert_eq!(d.pre_market_at, NaiveTime::from_hms_opt(8, 30, 0).unwrap());
        assert_eq!(d.snapshot_interval_s, 900.0);
        assert_eq!(d.pre_market_limit, None, "the engine's popular_limit");
        assert_eq!(d.startup, StartupMode::AfterReady);
        d.validate().unwrap();
    }

    #[test]
    fn bad_values_name_their_field() {
        type Set = fn(&mut DriverSettings);
        let cases: [(Set, &str); 6] = [
            (|d| d.startup_deadline_s = 0.0, "warming.startup_deadline_s"),
            (|d| d.max_concurrent = Some(0), "warming.max_concurrent"),
            (
                |d| d.outside_rate_factor = 2.0,
                "warming.outside_rate_factor",
            ),
            (
                |d| d.outside_rate_factor = 0.0,
                "warming.outside_rate_factor",
            ),
            (
                |d| d.pre_market_look_ahead_s = -1.0,
                "warming.pre_market_look_ahead_s",
            ),
            (
                |d| d.snapshot_interval_s = 0.0,
                "warming.snapshot_interval_s",
            ),
        ];
        for (set, field) in cases {
            let mut d = DriverSettings::default();
            set(&mut d);
            let err = d.validate().unwrap_err().to_string();
            assert!(err.starts_with(field), "{field}: {err}");
        }
    }

    #[test]
    fn policy_parses_in_any_case() {
        assert_eq!(
            " Pause ".parse::<OutsideSessions>(),
            Ok(OutsideSessions::Pause)
        );
        assert!("sleep".parse::<OutsideSessions>().is_err());
        assert_eq!(
            " Before_Ready".parse::<StartupMode>(),
            Ok(StartupMode::BeforeReady)
        );
        assert!("later".parse::<StartupMode>().is_err());
    }
}
