//! A client read: what the store holds decides between a hit, a stale
//! answer with a background refresh, a remembered failure, and waiting on
//! the key's flight (see the module doc of [`crate::service`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::load::Load;
use super::{CacheService, CacheStatus, FetchResult, FlightKey, ReadError, Served, serve_stale};
use crate::coalesce::{Abandoned, Flight, Waiter};
use crate::config::DatasetConfig;
use crate::events::FetchOrigin;
use crate::store::Entry;
use crate::upstream::{FetchError, HoldCause, Role};

/// What a read does once it has looked at the store.
#[derive(Debug)]
pub(super) enum Decision {
    /// Answered without waiting on upstream.
    Answer(Result<Served, ReadError>),
    /// Answered stale at once; the key is to be refreshed in the background.
    Revalidate(Served),
    /// Wait for the key's flight; fall back on `stale` (within its grace).
    Fetch(Option<Entry>),
}

/// Unix seconds until which `entry` may be answered stale (exclusive, as
/// the store keeps it: its expiry (`fetched_at_s + ttl_s` under a flat
/// TTL) `+ stale_grace_s`).
pub(super) fn grace_end_s(ds: &DatasetConfig, entry: &Entry) -> f64 {
    ds.expires_at(entry.fetched_at_s) + ds.stale_grace_s
}

impl CacheService {
    /// Reads `dataset`/`key` through the cache for a client.
    pub async fn read(
        self: &Arc<Self>,
        dataset: &str,
        key: &str,
        client: Option<&str>,
    ) -> Result<Served, ReadError> {
        let ds = self.checked(dataset, key)?;
        let deadline = Instant::now() + self.request_timeout;
        let cached = self.store_get(&ds, key).await;
        let now_s = self.clock.now_s();
        let fresh = cached.as_ref().is_some_and(|e| ds.is_fresh(e, now_s));
        self.access(&ds, key, client, now_s, fresh);
        let key: Arc<str> = key.into();
        match self.decide(&ds, &key, cached, now_s) {
            Decision::Answer(answer) => answer,
            Decision::Revalidate(served) => {
                self.refresh_in_background(&ds, &key);
                Ok(served)
            }
            Decision::Fetch(stale) => {
                let waiter = match self.flights.join_or_lead((ds.name.clone(), key.clone())) {
                    Flight::Follower(w) => w,
                    Flight::Leader(promise, w) => {
                        let load = Load::demand(stale.is_some(), deadline);
                        self.spawn_load(Arc::clone(&ds), key, promise, FetchOrigin::Demand, load);
                        w
                    }
                };
                self.await_flight(&ds, waiter, stale, deadline).await
            }
        }
    }

    /// Decides a read of `key` that found `cached` at `now_s`.
    pub(super) fn decide(
        &self,
        ds: &DatasetConfig,
        key: &Arc<str>,
        cached: Option<Entry>,
        now_s: f64,
    ) -> Decision {
        if let Some(entry) = cached.as_ref().filter(|e| ds.is_fresh(e, now_s)) {
            return Decision::Answer(Ok(Served {
                entry: entry.clone(),
                status: CacheStatus::Hit,
            }));
        }
        let stale = cached.filter(|e| ds.serve_stale && now_s < grace_end_s(ds, e));
        if let Some(entry) = &stale
            && now_s < ds.expires_at(entry.fetched_at_s) + ds.stale_while_revalidate_s
        {
            return Decision::Revalidate(serve_stale(entry.clone(), "stale-while-revalidate"));
        }
        let flight: FlightKey = (ds.name.clone(), key.clone());
        if let Some((error, _)) = self.failures.recall(&flight, now_s) {
            return Decision::Answer(match stale {
                Some(entry) => Ok(serve_stale(entry, "the last fetch failed recently")),
                None => Err(ReadError::Fetch(error)),
            });
        }
        let Some(refusal) = self.upstream.refusal(&ds.url.render_key(key), Role::Demand) else {
            return Decision::Fetch(stale);
        };
        match (stale, refusal.cause) {
            (Some(entry), _) => Decision::Answer(Ok(serve_stale(entry, "upstream held back"))),
            (None, HoldCause::Breaker) => {
                let retry_after_s = (refusal.until_s - now_s).max(0.0);
                Decision::Answer(Err(ReadError::Fetch(FetchError::Unavailable {
                    retry_after_s,
                })))
            }
            // A rate limit: the flight waits it out within the client's
            // deadline, or fails fast.
            (None, _) => Decision::Fetch(None),
        }
    }

    /// Starts a refresh of `key` unless one is in flight, its last fetch
    /// failed recently, or its host is held back. Nobody waits for it.
    pub(super) fn refresh_in_background(self: &Arc<Self>, ds: &Arc<DatasetConfig>, key: &Arc<str>) {
        let flight: FlightKey = (ds.name.clone(), key.clone());
        let now_s = self.clock.now_s();
        if self.failures.recall(&flight, now_s).is_some()
            || self
                .upstream
                .refusal(&ds.url.render_key(key), Role::Demand)
                .is_some()
        {
            return;
        }
        if let Flight::Leader(promise, _) = self.flights.join_or_lead(flight) {
            let load = Load::refresh();
            self.spawn_load(
                Arc::clone(ds),
                key.clone(),
                promise,
                FetchOrigin::Demand,
                load,
            );
        }
    }

    /// Waits for a flight until the client's `deadline`, and no longer
    /// than `stale`'s grace; falls back on `stale` on failure.
    pub(super) async fn await_flight(
        &self,
        ds: &DatasetConfig,
        waiter: Waiter<FetchResult>,
        stale: Option<Entry>,
        deadline: Instant,
    ) -> Result<Served, ReadError> {
        let now_s = self.clock.now_s();
        let grace_cap = stale.as_ref().map(|e| {
            let left_s = (grace_end_s(ds, e) - now_s).max(0.0);
            Instant::now() + Duration::from_secs_f64(left_s)
        });
        let until = grace_cap.map_or(deadline, |cap| cap.min(deadline));
        let err = match tokio::time::timeout_at(until, waiter.wait()).await {
            Ok(Ok(Ok(entry))) => {
                return Ok(Served {
                    entry,
                    status: CacheStatus::Miss,
                });
            }
            Ok(Ok(Err(e))) => ReadError::Fetch(e),
            Ok(Err(Abandoned)) => ReadError::Fetch(FetchError::Abandoned),
            Err(_) => ReadError::Timeout,
        };
        // The wait ended at the grace's end at the latest (answered then,
        // still within it); an entry whose grace ran out while the flight
        // failed is no answer.
        let capped = grace_cap.is_some_and(|cap| until == cap && Instant::now() >= cap);
        match stale {
            Some(entry) if capped || self.clock.now_s() < grace_end_s(ds, &entry) => {
                Ok(serve_stale(entry, "upstream failed or is slow"))
            }
            _ => Err(err),
        }
    }
}
