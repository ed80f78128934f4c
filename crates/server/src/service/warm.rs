//! Warming calls: fetched without an access, paced by the host's warming
//! rate, never while the host is held back or the upstream quota has no
//! call above the demand reserve, never for a key with a negative entry,
//! never retried.

use std::sync::Arc;
use std::time::Duration;

use prewarm_core::strategy::StrategyId;

use super::load::Load;
use super::{CacheService, FlightKey, WarmError, WarmOutcome};
use crate::coalesce::{Abandoned, Flight};
use crate::events::FetchOrigin;
use crate::upstream::{FetchError, Role};

impl CacheService {
    /// Fetches `dataset`/`key` for `strategy` without recording an access,
    /// stores it and reports a warming `FetchEvent` charged to it.
    ///
    /// Never calls upstream while the key's host is held back (429 pause,
    /// open breaker, warming back-off: [`WarmError::Paused`]) or while the
    /// key's last fetch failed recently ([`WarmError::Fetch`] with that
    /// error), while the upstream quota has no call above the demand
    /// reserve (`Paused` until one frees), or for a key whose upstream
    /// answered 404 within `negative_ttl_s` ([`WarmError::Negative`]);
    /// waits for its start under the host's warming rate (at most
    /// [`crate::upstream::gate::WARM_PACE_MAX_WAIT_S`], else `Paused`);
    /// joins a flight in progress. `strategy` is a [`StrategyId`], or a
    /// name parsed here (an unknown name is [`WarmError::UnknownStrategy`]).
    pub async fn warm<S>(
        self: &Arc<Self>,
        dataset: &str,
        key: &str,
        strategy: S,
    ) -> Result<WarmOutcome, WarmError>
    where
        S: TryInto<StrategyId>,
        WarmError: From<S::Error>,
    {
        let strategy: StrategyId = strategy.try_into()?;
        let (ds, key) = self.checked(dataset, key).map_err(WarmError::Rejected)?;
        let flight: FlightKey = (ds.name.clone(), key.clone());
        let now_s = self.clock.now_s();
        if let Some((error, _)) = self.failures.recall(&flight, now_s) {
            return Err(WarmError::Fetch(error));
        }
        if let Some(until_s) = self.upstream.quota_free_at_s(Role::Warm) {
            return Err(WarmError::Paused { until_s });
        }
        if ds.negative_ttl_s > 0.0
            && self
                .store_get(&ds, &key)
                .await
                .is_some_and(|e| e.negative && ds.is_fresh(&e, now_s))
        {
            return Err(WarmError::Negative);
        }
        let gate = self.upstream.gate(&ds.url.render_key(&key));
        if let Some(refusal) = gate.refusal(Role::Warm, now_s) {
            return Err(WarmError::Paused {
                until_s: refusal.until_s,
            });
        }
        match gate.reserve_warm_start(now_s) {
            Ok(start_s) if start_s > now_s => {
                tokio::time::sleep(Duration::from_secs_f64(start_s - now_s)).await;
            }
            Ok(_) => {}
            Err(until_s) => return Err(WarmError::Paused { until_s }),
        }
        let (waiter, led) = match self.flights.join_or_lead(flight) {
            Flight::Follower(w) => (w, false),
            Flight::Leader(promise, w) => {
                let origin = FetchOrigin::Warm(strategy);
                self.spawn_load(ds, key, promise, origin, Load::refresh());
                (w, true)
            }
        };
        let result = match waiter.wait().await {
            Ok(r) => r,
            Err(Abandoned) => Err(FetchError::Abandoned),
        };
        match result {
            Ok(e) if e.negative => Err(WarmError::Negative),
            Ok(e) if led => Ok(WarmOutcome::Fetched {
                fetched_at_s: e.fetched_at_s,
            }),
            Ok(e) => Ok(WarmOutcome::Joined {
                fetched_at_s: e.fetched_at_s,
            }),
            Err(FetchError::RateLimited { .. } | FetchError::Unavailable { .. }) => {
                Err(WarmError::Paused {
                    until_s: gate.warm_held_until_s().max(self.clock.now_s()),
                })
            }
            Err(FetchError::QuotaExhausted { retry_after_s }) => Err(WarmError::Paused {
                until_s: self.clock.now_s() + retry_after_s,
            }),
            Err(e) => Err(WarmError::Fetch(e)),
        }
    }
}
