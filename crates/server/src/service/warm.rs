//! Warming calls: fetched without an access, paced by the host's warming
//! rate, never while the host is held back or the upstream quota has no
//! call above the demand reserve, never for a key with a negative entry,
//! never retried. A batch of keys (the engine's batched warming) goes out
//! as one call through the dataset's batch endpoint.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use prewarm_core::strategy::StrategyId;

use super::load::Load;
use super::{CacheService, FetchResult, FlightKey, WarmError, WarmOutcome};
use crate::coalesce::{Abandoned, Flight, Waiter};
use crate::config::DatasetConfig;
use crate::events::FetchOrigin;
use crate::upstream::{FetchError, HostGate, Role};

/// A key's warming result.
pub type WarmResult = Result<WarmOutcome, WarmError>;

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
    pub async fn warm<S>(self: &Arc<Self>, dataset: &str, key: &str, strategy: S) -> WarmResult
    where
        S: TryInto<StrategyId>,
        WarmError: From<S::Error>,
    {
        let strategy: StrategyId = strategy.try_into()?;
        let (ds, key) = self.warmable(dataset, key).await?;
        let gate = self.admit_warm_call(&ds.url.render_key(&key)).await?;
        let (waiter, led) = match self.flights.join_or_lead((ds.name.clone(), key.clone())) {
            Flight::Follower(w) => (w, false),
            Flight::Leader(promise, w) => {
                let origin = FetchOrigin::Warm(strategy);
                self.spawn_load(ds, key, promise, origin, Load::refresh());
                (w, true)
            }
        };
        self.warm_result(waiter, led, &gate).await
    }

    /// Fetches the keys of `dataset` in `orders` (each with the strategy
    /// it is charged to) in one upstream call through the dataset's batch
    /// endpoint, as [`CacheService::warm`] fetches one: the same per-key
    /// refusals, one admission (quota, host, pace) for the call, keys in
    /// flight joined. One result per order, in order. A dataset without a
    /// batch endpoint warms the keys one call each (the engine batches
    /// only where there is one).
    pub async fn warm_batch(
        self: &Arc<Self>,
        dataset: &str,
        orders: &[(String, StrategyId)],
    ) -> Vec<WarmResult> {
        let batch = self.dataset(dataset).and_then(|ds| ds.batch.clone());
        let Some(batch) = batch else {
            let each = orders.iter().map(|(k, s)| self.warm(dataset, k, *s));
            return join_all(each).await;
        };
        let mut results: Vec<Option<WarmResult>> = vec![None; orders.len()];
        let checked = join_all(orders.iter().map(|(k, _)| self.warmable(dataset, k))).await;
        let mut wanted = Vec::new();
        for (i, (check, (_, strategy))) in checked.into_iter().zip(orders).enumerate() {
            match check {
                Ok((ds, key)) => wanted.push((i, ds, key, *strategy)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let Some((_, ds, first, _)) = wanted.first() else {
            return results.into_iter().flatten().collect();
        };
        let ds: Arc<DatasetConfig> = Arc::clone(ds);
        let gate = match self.admit_warm_call(&batch.url.render_keys(&[first])).await {
            Ok(gate) => gate,
            Err(e) => {
                for (i, ..) in wanted {
                    results[i] = Some(Err(e.clone()));
                }
                return results.into_iter().flatten().collect();
            }
        };
        let (mut leaders, mut waits) = (Vec::new(), Vec::new());
        for (i, _, key, strategy) in wanted {
            match self.flights.join_or_lead((ds.name.clone(), key.clone())) {
                Flight::Follower(w) => waits.push((i, w, false)),
                Flight::Leader(promise, w) => {
                    leaders.push((key, promise, FetchOrigin::Warm(strategy)));
                    waits.push((i, w, true));
                }
            }
        }
        if !leaders.is_empty() {
            let (svc, ds) = (Arc::clone(self), Arc::clone(&ds));
            tokio::spawn(
                async move { svc.load_batch(&ds, &batch, leaders, Load::refresh()).await },
            );
        }
        let ended = join_all(waits.into_iter().map(|(i, w, led)| {
            let gate = &gate;
            async move { (i, self.warm_result(w, led, gate).await) }
        }))
        .await;
        for (i, r) in ended {
            results[i] = Some(r);
        }
        results.into_iter().flatten().collect()
    }

    /// The per-key refusals of a warming fetch: an invalid key, a recent
    /// failure, a negative entry. The dataset and canonical key otherwise.
    async fn warmable(
        &self,
        dataset: &str,
        key: &str,
    ) -> Result<(Arc<DatasetConfig>, Arc<str>), WarmError> {
        let (ds, key) = self.checked(dataset, key).map_err(WarmError::Rejected)?;
        let flight: FlightKey = (ds.name.clone(), key.clone());
        let now_s = self.clock.now_s();
        if let Some((error, _)) = self.failures.recall(&flight, now_s) {
            return Err(WarmError::Fetch(error));
        }
        if ds.negative_ttl_s > 0.0
            && self
                .store_get(&ds, &key)
                .await
                .is_some_and(|e| e.negative && ds.is_fresh(&e, now_s))
        {
            return Err(WarmError::Negative);
        }
        Ok((ds, key))
    }

    /// Admits one warming call to `url`: the upstream quota, the host's
    /// holds, then its warming pace (waiting for the start it reserves).
    /// The host's gate, or `Paused` until when a call may go.
    async fn admit_warm_call(&self, url: &str) -> Result<Arc<HostGate>, WarmError> {
        if let Some(until_s) = self.upstream.quota_free_at_s(Role::Warm) {
            return Err(WarmError::Paused { until_s });
        }
        let now_s = self.clock.now_s();
        let gate = self.upstream.gate(url);
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
        Ok(gate)
    }

    /// What a warming fetch came to, from its flight's waiter (`led`: this
    /// call started the flight).
    async fn warm_result(
        &self,
        waiter: Waiter<FetchResult>,
        led: bool,
        gate: &HostGate,
    ) -> WarmResult {
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
