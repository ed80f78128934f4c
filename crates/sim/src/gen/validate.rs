//! Range checks of [`GenConfig`]; every error names the bad field.

use chrono::Datelike;

use super::config::{GenConfig, ScanSubset, ScannerSpec};
use super::error::GenError;

/// Largest index in each client kind's id space (see [`super::ClientKind`]).
const MAX_CLIENTS_PER_KIND: f64 = (1u32 << 30) as f64;

fn fail(field: impl Into<String>, reason: impl Into<String>) -> GenError {
    GenError::Config {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks `lo <= value <= hi` and finiteness.
fn in_range(field: &str, value: f64, lo: f64, hi: f64) -> Result<(), GenError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(fail(
            field,
            format!("must be within [{lo}, {hi}], got {value}"),
        ))
    }
}

fn ordered(field: &str, min: f64, max: f64) -> Result<(), GenError> {
    if min <= max {
        Ok(())
    } else {
        Err(fail(
            field,
            format!("must not be below its minimum ({max} < {min})"),
        ))
    }
}

impl GenConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), GenError> {
        in_range("days", f64::from(self.days), 1.0, 3660.0)?;
        in_range(
            "start_date",
            f64::from(self.start_date.year()),
            1971.0,
            2999.0,
        )
        .map_err(|_| fail("start_date", "must be in the years 1971..=2999"))?;
        let universe = self.universe_size as f64;
        in_range("universe_size", universe, 1.0, 1_000_000.0)?;
        in_range("sectors", self.sectors as f64, 1.0, universe.min(1000.0))?;
        in_range("zipf_exponent", self.zipf_exponent, 0.0, 10.0)?;
        in_range("daily_drift", self.daily_drift, 0.0, 5.0)?;
        in_range("users", self.users as f64, 0.0, MAX_CLIENTS_PER_KIND)?;
        in_range("lull_fraction", self.lull_fraction, 0.0, 1.0)?;
        self.validate_users()?;
        in_range(
            "scanners",
            self.scanners.len() as f64,
            0.0,
            MAX_CLIENTS_PER_KIND,
        )?;
        for (i, spec) in self.scanners.iter().enumerate() {
            self.validate_scanner(i, spec)?;
        }
        self.validate_news()?;
        self.validate_lookups_and_profile()
    }

    fn validate_users(&self) -> Result<(), GenError> {
        let u = &self.user;
        in_range(
            "user.poll_jitter_ms",
            f64::from(u.poll_jitter_ms),
            0.0,
            3_600_000.0,
        )?;
        let universe = self.universe_size as f64;
        in_range("user.watchlist_min", u.watchlist_min as f64, 1.0, universe)?;
        in_range("user.watchlist_max", u.watchlist_max as f64, 1.0, universe)?;
        ordered(
            "user.watchlist_max",
            u.watchlist_min as f64,
            u.watchlist_max as f64,
        )?;
        in_range(
            "user.watchlist_churn_per_day",
            u.watchlist_churn_per_day,
            0.0,
            1.0,
        )?;
        in_range("user.poll_period_min_s", u.poll_period_min_s, 1.0, 86_400.0)?;
        in_range("user.poll_period_max_s", u.poll_period_max_s, 1.0, 86_400.0)?;
        ordered(
            "user.poll_period_max_s",
            u.poll_period_min_s,
            u.poll_period_max_s,
        )?;
        in_range("user.open_start_fraction", u.open_start_fraction, 0.0, 1.0)?;
        in_range(
            "user.premarket_start_fraction",
            u.premarket_start_fraction,
            0.0,
            1.0,
        )?;
        in_range(
            "user.premarket_start_fraction",
            u.open_start_fraction + u.premarket_start_fraction,
            0.0,
            1.0,
        )
        .map_err(|_| {
            fail(
                "user.premarket_start_fraction",
                "plus open_start_fraction must not exceed 1",
            )
        })?;
        in_range("user.start_jitter_s", u.start_jitter_s, 0.0, 3600.0)?;
        in_range("user.absent_prob", u.absent_prob, 0.0, 1.0)?;
        in_range(
            "user.item_gap_min_ms",
            f64::from(u.item_gap_min_ms),
            1.0,
            10_000.0,
        )?;
        in_range(
            "user.item_gap_max_ms",
            f64::from(u.item_gap_max_ms),
            1.0,
            10_000.0,
        )?;
        ordered(
            "user.item_gap_max_ms",
            f64::from(u.item_gap_min_ms),
            f64::from(u.item_gap_max_ms),
        )
    }

    fn validate_scanner(&self, i: usize, spec: &ScannerSpec) -> Result<(), GenError> {
        let field = |name: &str| format!("scanners[{i}].{name}");
        match spec.subset {
            ScanSubset::Top(n) => {
                in_range(&field("subset"), n as f64, 1.0, self.universe_size as f64)?;
            }
            ScanSubset::Sector(s) if s >= self.sectors => {
                return Err(fail(
                    field("subset"),
                    format!("names sector {s} of only {}", self.sectors),
                ));
            }
            ScanSubset::Sector(_) => {}
        }
        in_range(&field("period_s"), f64::from(spec.period_s), 1.0, 86_400.0)?;
        in_range(
            &field("delay_ms"),
            f64::from(spec.delay_ms),
            0.0,
            3_600_000.0,
        )?;
        in_range(
            &field("item_gap_ms"),
            f64::from(spec.item_gap_ms),
            1.0,
            10_000.0,
        )
    }

    fn validate_news(&self) -> Result<(), GenError> {
        let n = &self.news;
        in_range(
            "news.events_per_trading_day",
            n.events_per_trading_day,
            0.0,
            100_000.0,
        )?;
        in_range("news.in_session_fraction", n.in_session_fraction, 0.0, 1.0)?;
        in_range("news.lookups_min", n.lookups_min, 1.0, 1_000_000.0)?;
        in_range("news.lookups_max", n.lookups_max, 1.0, 1_000_000.0)?;
        ordered("news.lookups_max", n.lookups_min, n.lookups_max)?;
        in_range("news.decay_min_s", n.decay_min_s, 1.0, 86_400.0)?;
        in_range("news.decay_max_s", n.decay_max_s, 1.0, 86_400.0)?;
        ordered("news.decay_max_s", n.decay_min_s, n.decay_max_s)?;
        in_range("news.peer_prob", n.peer_prob, 0.0, 1.0)?;
        in_range("news.peers_min", n.peers_min as f64, 0.0, 50.0)?;
        in_range("news.peers_max", n.peers_max as f64, 0.0, 50.0)?;
        ordered("news.peers_max", n.peers_min as f64, n.peers_max as f64)?;
        in_range(
            "news.popular_symbol_fraction",
            n.popular_symbol_fraction,
            0.0,
            1.0,
        )
    }

    fn validate_lookups_and_profile(&self) -> Result<(), GenError> {
        let l = &self.lookups;
        in_range(
            "lookups.per_trading_day",
            l.per_trading_day,
            0.0,
            100_000_000.0,
        )?;
        in_range("lookups.uniform_fraction", l.uniform_fraction, 0.0, 1.0)?;
        if let Some(share) = l.anonymous_share {
            in_range("lookups.anonymous_share", share, 0.0, 0.999)?;
        }
        in_range(
            "lookups.anon_clients",
            f64::from(l.anon_clients),
            1.0,
            MAX_CLIENTS_PER_KIND,
        )?;
        let p = &self.profile;
        for (name, level) in [
            ("profile.overnight", p.overnight),
            ("profile.premarket_start", p.premarket_start),
            ("profile.premarket_end", p.premarket_end),
            ("profile.open_boost", p.open_boost),
            ("profile.close_boost", p.close_boost),
            ("profile.after_hours_start", p.after_hours_start),
            ("profile.after_hours_end", p.after_hours_end),
        ] {
            in_range(name, level, 0.0, 1000.0)?;
        }
        in_range("profile.open_decay_s", p.open_decay_s, 1.0, 86_400.0)?;
        in_range("profile.close_rise_s", p.close_rise_s, 1.0, 86_400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        GenConfig::default().validate().expect("defaults validate");
    }

    #[test]
    fn errors_name_the_bad_field() {
        let mut cfg = GenConfig::default();
        cfg.user.poll_period_min_s = 0.0;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("user.poll_period_min_s"), "{err}");

        let mut cfg = GenConfig::default();
        cfg.scanners[2].subset = ScanSubset::Sector(99);
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("scanners[2].subset"), "{err}");

        let mut cfg = GenConfig::default();
        cfg.news.lookups_max = 10.0;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("news.lookups_max"), "{err}");

        let cfg = GenConfig {
            zipf_exponent: f64::NAN,
            ..GenConfig::default()
        };
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("zipf_exponent")
        );
    }
}
