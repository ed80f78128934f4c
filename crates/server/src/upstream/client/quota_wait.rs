//! How a call waits for the upstream quota (see the module doc of
//! [`super`]).

use std::time::Duration;

use tokio::time::Instant;

use super::{Call, FetchError, RateLimitPolicy, UpstreamClient};
use crate::upstream::gate::{Admission, HostGate, Role};

impl UpstreamClient {
    /// Waits for the gate to admit the call, then for a call of the quota
    /// (demand while its policy and `queue_until` allow; warming never).
    /// The gate's admission is let go while the call waits for the quota.
    pub(super) async fn admit_within_quota(
        &self,
        gate: &HostGate,
        call: &Call,
        queue_until: Option<Instant>,
    ) -> Result<Admission, FetchError> {
        loop {
            let admission = self.admit(gate, call).await?;
            let Some(quota) = &self.quota else {
                return Ok(admission);
            };
            let now_s = self.clock.now_s();
            let Err(at_s) = quota.try_take(call.role, now_s) else {
                return Ok(admission);
            };
            drop(admission);
            let left_s = (at_s - now_s).max(0.0);
            let wake = Instant::now() + Duration::from_secs_f64(left_s.min(1e9));
            let limit = match call.policy {
                RateLimitPolicy::WaitUntil(limit) if call.role == Role::Demand => queue_until
                    .map_or(limit, |q| q.min(limit))
                    .min(call.deadline),
                _ => Instant::now(),
            };
            if wake > limit {
                metrics::counter!("prewarm_upstream_quota_refused_total", "role" => role_label(call.role)).increment(1);
                return Err(FetchError::QuotaExhausted {
                    retry_after_s: left_s,
                });
            }
            tokio::time::sleep_until(wake).await;
        }
    }
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Demand => "demand",
        Role::Warm => "warm",
    }
}
