//! `[datasets.NAME.ttl_by_session]`: a TTL per market session, raw and
//! validated, and the dataset's expiry rule built from it.
//!
//! ```toml
//! [datasets.quote.ttl_by_session]
//! pre_market_s = 60      # 04:00-09:30 New York on a trading day
//! regular_s = 15         # 09:30-16:00 (13:00 on an early close)
//! after_hours_s = 60     # 16:00-20:00 (13:00-17:00 on an early close)
//! closed = "until_open"  # nights, weekends, holidays: fresh until 04:00 of the next trading day
//! # or closed_s = 600
//! ```
//!
//! A session left out keeps the dataset's `ttl_s`. The session at the
//! fetch instant decides an entry's expiry (`prewarm_core::ttl`): the
//! engine, the stores' retention and the read path's freshness all use
//! [`DatasetConfig::expires_at`].

use prewarm_core::cache::is_fresh_until;
use prewarm_core::calendar::ExchangeCalendar;
use prewarm_core::time::UnixInstant;
use prewarm_core::ttl::{SessionTtl, SessionTtls, TtlPolicy, TtlRule};
use serde::Deserialize;

use crate::store::Entry;

use super::check::{invalid, seconds};
use super::dataset::DatasetConfig;
use super::error::ConfigError;

/// `[datasets.NAME.ttl_by_session]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessionTtl {
    /// Pre-market TTL, seconds (default: the dataset's `ttl_s`).
    pub pre_market_s: Option<f64>,
    /// Regular-session TTL, seconds (default: the dataset's `ttl_s`).
    pub regular_s: Option<f64>,
    /// After-hours TTL, seconds (default: the dataset's `ttl_s`).
    pub after_hours_s: Option<f64>,
    /// Closed-session TTL, seconds (default: the dataset's `ttl_s`);
    /// exclusive with `closed`.
    pub closed_s: Option<f64>,
    /// `"until_open"`: an entry fetched while closed stays fresh until the
    /// next session starts (pre-market of the next trading day, NYSE
    /// calendar).
    pub closed: Option<String>,
}

/// Validates `raw` for dataset `name` whose flat TTL is `ttl_s`; errors
/// name the field (`datasets.quote.ttl_by_session.regular_s: must be > 0`).
pub(super) fn validate_session_ttl(
    name: &str,
    raw: &RawSessionTtl,
    ttl_s: f64,
) -> Result<SessionTtls, ConfigError> {
    let field = |f: &str| format!("datasets.{name}.ttl_by_session.{f}");
    let seconds = |f: &str, v: Option<f64>| -> Result<SessionTtl, ConfigError> {
        seconds(&field(f), v, ttl_s, prewarm_core::check::MIN_SECONDS).map(SessionTtl::Seconds)
    };
    let closed = match (&raw.closed, raw.closed_s) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                field("closed"),
                "give `closed` or `closed_s`, not both",
            ));
        }
        (Some(word), None) if word == "until_open" => SessionTtl::UntilOpen,
        (Some(word), None) => {
            return Err(invalid(
                field("closed"),
                format!("must be \"until_open\" (or use closed_s), got {word:?}"),
            ));
        }
        (None, v) => seconds("closed_s", v)?,
    };
    Ok(SessionTtls {
        pre_market: seconds("pre_market_s", raw.pre_market_s)?,
        regular: seconds("regular_s", raw.regular_s)?,
        after_hours: seconds("after_hours_s", raw.after_hours_s)?,
        closed,
    })
}

/// The expiry rule of a dataset: by session when `by_session` is set,
/// else flat `ttl_s`, on the NYSE calendar (the engine's default zone).
pub(super) fn ttl_rule(ttl_s: f64, by_session: Option<SessionTtls>) -> TtlRule {
    let policy = by_session.map_or(TtlPolicy::Flat(ttl_s), TtlPolicy::BySession);
    TtlRule::new(policy, ExchangeCalendar::nyse())
}

impl DatasetConfig {
    /// When an entry fetched at `fetched_at_s` stops being fresh (the one
    /// rule, `prewarm_core::ttl`).
    pub fn expires_at(&self, fetched_at_s: f64) -> f64 {
        self.ttl_rule.expires_at(fetched_at_s)
    }

    /// When `entry` stops being fresh: a negative entry (an upstream 404)
    /// after `negative_ttl_s`, any other by [`Self::expires_at`].
    pub fn entry_expires_at(&self, entry: &Entry) -> f64 {
        if entry.negative {
            entry.fetched_at_s + self.negative_ttl_s
        } else {
            self.expires_at(entry.fetched_at_s)
        }
    }

    /// Whether `entry` is fresh at `now_s`: the engine's rule
    /// ([`prewarm_core::cache::is_fresh_until`]) with the entry's expiry
    /// ([`Self::entry_expires_at`]).
    pub fn is_fresh(&self, entry: &Entry, now_s: f64) -> bool {
        is_fresh_until(
            UnixInstant(entry.fetched_at_s),
            UnixInstant(self.entry_expires_at(entry)),
            UnixInstant(now_s),
        )
    }

    /// Seconds an entry fetched at `fetched_at_s` is fresh for: `ttl_s`
    /// exactly under a flat TTL, else up to its session's expiry.
    pub fn entry_ttl_s(&self, fetched_at_s: f64) -> f64 {
        self.ttl_rule.ttl_at(fetched_at_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawSessionTtl {
        toml::from_str(text).expect("valid TOML")
    }

    #[test]
    fn left_out_sessions_keep_the_flat_ttl_and_until_open_is_read() {
        let t = validate_session_ttl(
            "quote",
            &raw("regular_s = 15\nclosed = \"until_open\""),
            60.0,
        )
        .expect("valid");
        assert_eq!(t.regular, SessionTtl::Seconds(15.0));
        assert_eq!(t.pre_market, SessionTtl::Seconds(60.0));
        assert_eq!(t.closed, SessionTtl::UntilOpen);
    }

    #[test]
    fn bad_values_name_their_field() {
        for (text, field) in [
            ("regular_s = 0", "datasets.quote.ttl_by_session.regular_s"),
            ("closed = \"later\"", "datasets.quote.ttl_by_session.closed"),
            (
                "closed = \"until_open\"\nclosed_s = 5",
                "datasets.quote.ttl_by_session.closed",
            ),
        ] {
            let err = validate_session_ttl("quote", &raw(text), 60.0)
                .expect_err(text)
                .to_string();
            assert!(err.contains(field), "{text}: {err}");
        }
        assert!(toml::from_str::<RawSessionTtl>("weekend_s = 5").is_err());
    }
}
