//! `upstream.rate_limit_per_min` and its companions, validated (stage
//! two) into the upstream quota's settings.

use std::time::Duration;

use super::check::{at_least, invalid, seconds};
use super::error::ConfigError;
use super::raw::RawUpstream;
use crate::upstream::quota::{MAX_RATE_PER_MIN, QuotaConfig};

/// `upstream.rate_limit_per_min` and its companions; the queue is
/// capped by `request_timeout`.
pub(super) fn validate_quota(
    u: &RawUpstream,
    request_timeout: Duration,
) -> Result<Option<QuotaConfig>, ConfigError> {
    let queue_s = seconds(
        "upstream.quota_queue_s",
        u.quota_queue_s,
        3.0,
        prewarm_core::check::MIN_SECONDS,
    )?;
    let Some(rate) = u.rate_limit_per_min else {
        if u.demand_reserve_per_min.is_some() {
            return Err(invalid(
                "upstream.demand_reserve_per_min",
                "needs upstream.rate_limit_per_min",
            ));
        }
        return Ok(None);
    };
    let rate = at_least("upstream.rate_limit_per_min", Some(rate), rate, 1)?;
    if rate > MAX_RATE_PER_MIN {
        return Err(invalid(
            "upstream.rate_limit_per_min",
            format!("must be <= {MAX_RATE_PER_MIN}"),
        ));
    }
    let reserve = u
        .demand_reserve_per_min
        .unwrap_or_else(|| QuotaConfig::default_reserve(rate));
    if reserve > rate {
        return Err(invalid(
            "upstream.demand_reserve_per_min",
            "must be <= upstream.rate_limit_per_min",
        ));
    }
    Ok(Some(QuotaConfig {
        rate_per_min: rate,
        demand_reserve_per_min: reserve,
        queue_s: queue_s.min(request_timeout.as_secs_f64()),
    }))
}
#[cfg(test)]
mod tests {
    use super::*;

    fn quota(rate: Option<u32>, reserve: Option<u32>) -> Result<Option<QuotaConfig>, ConfigError> {
        let raw = RawUpstream {
            rate_limit_per_min: rate,
            demand_reserve_per_min: reserve,
            quota_queue_s: Some(30.0),
            ..RawUpstream::default()
        };
        validate_quota(&raw, Duration::from_secs(10))
    }

    #[test]
    fn the_quota_is_optional_its_reserve_a_tenth_and_its_queue_within_the_request_timeout() {
        assert_eq!(quota(None, None).unwrap(), None);
        let q = quota(Some(95), None).unwrap().unwrap();
        assert_eq!((q.rate_per_min, q.demand_reserve_per_min), (95, 10));
        assert_eq!(q.queue_s, 10.0, "capped by the request timeout");
        let e = quota(Some(10), Some(11)).unwrap_err().to_string();
        assert_eq!(
            e,
            "upstream.demand_reserve_per_min: must be <= upstream.rate_limit_per_min"
        );
        let e = quota(None, Some(1)).unwrap_err().to_string();
        assert!(e.contains("needs upstream.rate_limit_per_min"), "{e}");
        assert!(quota(Some(0), None).is_err());
    }
}
