//! Tracker configuration: raw serde form with defaults, then [`TrackerConfig::validate`].

use serde::{Deserialize, Serialize};

/// Configuration of the [`Tracker`](super::Tracker).
///
/// Every duration is in seconds unless its name says otherwise. Parse it
/// with serde (every field has a default), then call
/// [`TrackerConfig::validate`] (or [`Tracker::new`](super::Tracker::new),
/// which validates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerConfig {
    /// Most keys tracked at once (count). When full, the coldest key of a
    /// small random sample (lowest decayed popularity) is evicted. Default
    /// 1,000,000.
    pub max_keys: usize,
    /// Most keys given a time-of-day profile at once (count), at most
    /// `max_keys`. `None` (the default) means `max_keys / 8`.
    pub max_profiled_keys: Option<usize>,
    /// Decayed accesses (count, at the popularity half-life) a key needs
    /// before it earns a time-of-day profile. Default 4.
    pub profile_min_accesses: f64,
    /// Half-life of the popularity score and of co-access counts, in
    /// seconds. Default 21,600 (6 hours).
    pub popularity_half_life_s: f64,
    /// Half-life of the time-of-day profile, in exchange-local calendar
    /// days. Default 10.
    pub profile_half_life_days: f64,
    /// IANA time zone of the exchange whose local time the profile uses.
    /// Default `America/New_York`.
    pub timezone: String,
    /// Time constant of the short trending rate (an EWMA), in seconds.
    /// Default 300.
    pub trending_window_s: f64,
    /// Half-life of a key's long-run baseline rate (an EWMA), in seconds.
    /// Also the half-life of the long group share. Default 86,400 (24 h).
    pub trending_baseline_half_life_s: f64,
    /// Decayed accesses (count, at `trending_window_s`) a key needs within
    /// the short window before it can trend at all. Default 5.
    pub trending_min_count: f64,
    /// Lowest score (a Poisson z-score of the short-window count against
    /// the baseline expectation) for a key to be reported as trending.
    /// Default 3.
    pub trending_min_score: f64,
    /// Half-life of the short group share, in seconds. Default 1,800.
    pub group_short_half_life_s: f64,
    /// Most distinct groups (count, at most 65,535). Further groups are
    /// ignored. Default 4,096.
    pub max_groups: usize,
    /// Idle gap that ends a client session, in seconds. Default 1,800.
    pub session_idle_gap_s: f64,
    /// Window of the global access stream within which earlier keys count
    /// as predecessors when no client id is known, in seconds. Default 30.
    pub coaccess_window_s: f64,
    /// Most client sessions tracked at once (count); the idlest are
    /// evicted. Default 10,000.
    pub max_clients: usize,
    /// A key not accessed for this long is forgotten by `maintain`, in
    /// seconds. Default 2,592,000 (30 days).
    pub forget_after_s: f64,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            max_keys: 1_000_000,
            max_profiled_keys: None,
            profile_min_accesses: 4.0,
            popularity_half_life_s: 6.0 * 3600.0,
            profile_half_life_days: 10.0,
            timezone: "America/New_York".to_string(),
            trending_window_s: 300.0,
            trending_baseline_half_life_s: 24.0 * 3600.0,
            trending_min_count: 5.0,
            trending_min_score: 3.0,
            group_short_half_life_s: 1800.0,
            max_groups: 4096,
            session_idle_gap_s: 1800.0,
            coaccess_window_s: 30.0,
            max_clients: 10_000,
            forget_after_s: 30.0 * 86_400.0,
        }
    }
}

/// A [`TrackerConfig`] field with an invalid value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("tracker config field `{field}` is invalid: {reason}")]
pub struct TrackerConfigError {
    /// Name of the bad field, as spelled in the config file.
    pub field: &'static str,
    /// Why the value was rejected, including the value.
    pub reason: String,
}

fn positive(field: &'static str, v: f64) -> Result<(), TrackerConfigError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(TrackerConfigError {
            field,
            reason: format!("must be a finite number > 0, got {v}"),
        })
    }
}

fn non_negative(field: &'static str, v: f64) -> Result<(), TrackerConfigError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(TrackerConfigError {
            field,
            reason: format!("must be a finite number >= 0, got {v}"),
        })
    }
}

fn count_in(field: &'static str, v: usize, lo: usize, hi: usize) -> Result<(), TrackerConfigError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(TrackerConfigError {
            field,
            reason: format!("must be in {lo}..={hi}, got {v}"),
        })
    }
}

impl TrackerConfig {
    /// Largest accepted `max_keys` (key ids are `u32`).
    pub const MAX_KEYS_LIMIT: usize = (u32::MAX - 1) as usize;

    /// A default config with `max_keys` set.
    pub fn with_max_keys(max_keys: usize) -> Self {
        TrackerConfig {
            max_keys,
            ..Self::default()
        }
    }

    /// The effective cap on profiled keys: `max_profiled_keys`, or
    /// `max_keys / 8` when unset.
    pub fn profiled_key_cap(&self) -> usize {
        self.max_profiled_keys.unwrap_or(self.max_keys / 8)
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), TrackerConfigError> {
        count_in("max_keys", self.max_keys, 1, Self::MAX_KEYS_LIMIT)?;
        count_in(
            "max_profiled_keys",
            self.profiled_key_cap(),
            0,
            self.max_keys,
        )?;
        non_negative("profile_min_accesses", self.profile_min_accesses)?;
        positive("popularity_half_life_s", self.popularity_half_life_s)?;
        positive("profile_half_life_days", self.profile_half_life_days)?;
        self.parse_timezone()?;
        positive("trending_window_s", self.trending_window_s)?;
        positive(
            "trending_baseline_half_life_s",
            self.trending_baseline_half_life_s,
        )?;
        non_negative("trending_min_count", self.trending_min_count)?;
        if !self.trending_min_score.is_finite() {
            return Err(TrackerConfigError {
                field: "trending_min_score",
                reason: format!("must be finite, got {}", self.trending_min_score),
            });
        }
        positive("group_short_half_life_s", self.group_short_half_life_s)?;
        count_in("max_groups", self.max_groups, 0, u16::MAX as usize)?;
        non_negative("session_idle_gap_s", self.session_idle_gap_s)?;
        non_negative("coaccess_window_s", self.coaccess_window_s)?;
        count_in("max_clients", self.max_clients, 0, u32::MAX as usize)?;
        positive("forget_after_s", self.forget_after_s)?;
        Ok(())
    }

    /// The exchange time zone named by `timezone`.
    pub fn parse_timezone(&self) -> Result<chrono_tz::Tz, TrackerConfigError> {
        self.timezone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| TrackerConfigError {
                field: "timezone",
                reason: format!("`{}` is not an IANA time zone name", self.timezone),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_matches_documented_values() {
        let c = TrackerConfig::default();
        c.validate().unwrap();
        assert_eq!(c.profiled_key_cap(), 125_000);
        assert_eq!(c.popularity_half_life_s, 21_600.0);
        assert_eq!(c.parse_timezone().unwrap(), chrono_tz::America::New_York);
    }

    #[test]
    fn validate_names_the_bad_field() {
        let c = TrackerConfig {
            popularity_half_life_s: 0.0,
            ..TrackerConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "popularity_half_life_s");
        let c = TrackerConfig {
            timezone: "Mars/Olympus".into(),
            ..TrackerConfig::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "timezone");
        assert!(e.to_string().contains("Mars/Olympus"));
        let c = TrackerConfig {
            max_profiled_keys: Some(11),
            ..TrackerConfig::with_max_keys(10)
        };
        assert_eq!(c.validate().unwrap_err().field, "max_profiled_keys");
        let c = TrackerConfig {
            trending_window_s: f64::NAN,
            ..TrackerConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "trending_window_s");
    }

    #[test]
    fn serde_fills_defaults_and_rejects_unknown_fields() {
        let c: TrackerConfig = serde_json::from_str(r#"{"max_keys": 10}"#).unwrap();
        assert_eq!(c.max_keys, 10);
        assert_eq!(c.trending_window_s, 300.0);
        assert!(serde_json::from_str::<TrackerConfig>(r#"{"max_kyes": 10}"#).is_err());
    }
}
