//! A client read: what the store holds decides between a hit, a stale
//! answer with a background refresh, a remembered failure, and waiting on
//! the key's flight (see the module doc of [`crate::service`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::load::Load;
use super::{
    CacheService, CacheStatus, FetchResult, FlightKey, Forwarded, FwdReason, ReadError,
    ReadOptions, Served, serve_stale,
};
use crate::coalesce::{Abandoned, Flight, Waiter};
use crate::config::DatasetConfig;
use crate::events::{AccessFetch, FetchOrigin};
use crate::store::Entry;
use crate::upstream::{FetchError, HoldCause, Role};

/// What a read does once it has looked at the store.
#[derive(Debug)]
pub(super) enum Decision {
    /// Answered without waiting on upstream.
    Answer(Result<Served, ReadError>),
    /// Answered stale at once; the key is to be refreshed in the background.
    Revalidate(Served),
    /// Wait for the key's flight (`reason`: why); fall back on `stale`
    /// (within its grace).
    Fetch {
        /// The entry to fall back on.
        stale: Option<Entry>,
        /// Why the read goes upstream.
        reason: FwdReason,
    },
}

/// What a read's look at the store tells the engine, judged before the
/// entry goes to [`CacheService::decide`] (so it is not cloned for this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    /// A fresh negative entry: an unknown key, no warming target; no
    /// access is recorded.
    Unknown,
    /// A fresh entry, not skipped by `no_cache`.
    Hit,
    /// Anything else: the read goes past the cache or answers stale.
    Miss,
}

impl Seen {
    /// What a read at `now_s` that found `cached` saw (`no_cache`: the
    /// client asked past the cache).
    pub(super) fn of(
        ds: &DatasetConfig,
        cached: Option<&Entry>,
        now_s: f64,
        no_cache: bool,
    ) -> Self {
        match cached.filter(|e| ds.is_fresh(e, now_s)) {
            Some(e) if e.negative => Seen::Unknown,
            Some(_) if !no_cache => Seen::Hit,
            _ => Seen::Miss,
        }
    }
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
        let options = ReadOptions {
            client,
            no_cache: false,
        };
        self.read_with(dataset, key, options).await
    }

    /// Reads `dataset`/`key` (as the client spelled it) as `options` say.
    pub async fn read_with(
        self: &Arc<Self>,
        dataset: &str,
        key: &str,
        options: ReadOptions<'_>,
    ) -> Result<Served, ReadError> {
        let (ds, key) = self.checked(dataset, key)?;
        let deadline = Instant::now() + self.request_timeout;
        let cached = self.store_get(&ds, &key).await;
        let now_s = self.clock.now_s();
        let seen = Seen::of(&ds, cached.as_ref(), now_s, options.no_cache);
        let decision = self.decide(&ds, &key, cached, now_s, options.no_cache);
        self.access_seen(&ds, &key, (options, now_s), seen, &decision);
        match decision {
            Decision::Answer(answer) => answer,
            Decision::Revalidate(served) => Ok(self.revalidate(&ds, &key, served)),
            Decision::Fetch { stale, reason } => {
                let (waiter, collapsed) =
                    match self.flights.join_or_lead((ds.name.clone(), key.clone())) {
                        Flight::Follower(w) => (w, true),
                        Flight::Leader(promise, w) => {
                            let load = Load::demand(stale.is_some(), deadline)
                                .forced(reason == FwdReason::Request);
                            let origin = FetchOrigin::Demand;
                            self.spawn_load(Arc::clone(&ds), key, promise, origin, load);
                            (w, false)
                        }
                    };
                let fwd = Forwarded::Waited { reason, collapsed };
                self.await_flight(&ds, waiter, stale, deadline, fwd).await
            }
        }
    }

    /// Records the access of a read (`read`: its options and when it
    /// looked) that saw `seen` and decided `decision`: none for an unknown
    /// key; a miss says whether a demand fetch follows
    /// ([`CacheService::fetch_follows`]) or the read was answered without
    /// any upstream call.
    pub(super) fn access_seen(
        &self,
        ds: &DatasetConfig,
        key: &Arc<str>,
        (options, now_s): (ReadOptions<'_>, f64),
        seen: Seen,
        decision: &Decision,
    ) {
        let (hit, fetch) = match seen {
            Seen::Unknown => return,
            Seen::Hit => (true, AccessFetch::None),
            Seen::Miss if self.fetch_follows(ds, key, decision) => (false, AccessFetch::Follows),
            Seen::Miss => (false, AccessFetch::Refused),
        };
        self.access(ds, key, options, now_s, (hit, fetch));
    }

    /// Whether a demand fetch of `key` follows `decision` and is reported
    /// when it lands or is refused: the read waits on the key's flight, or
    /// its stale answer's refresh can start. An answer from the failure
    /// memo, or stale because upstream is held back or the quota spent,
    /// fetches nothing.
    pub(super) fn fetch_follows(
        &self,
        ds: &DatasetConfig,
        key: &Arc<str>,
        decision: &Decision,
    ) -> bool {
        match decision {
            Decision::Answer(_) => false,
            Decision::Revalidate(_) => self.may_refresh(ds, key),
            Decision::Fetch { .. } => true,
        }
    }

    /// Decides a read of `key` that found `cached` at `now_s`; `no_cache`
    /// skips a fresh entry (it becomes the fallback).
    pub(super) fn decide(
        &self,
        ds: &DatasetConfig,
        key: &Arc<str>,
        cached: Option<Entry>,
        now_s: f64,
        no_cache: bool,
    ) -> Decision {
        let fresh = cached.as_ref().filter(|e| ds.is_fresh(e, now_s));
        // `no_cache` forwards whatever is cached, a negative entry too.
        if let Some(entry) = fresh
            && !no_cache
        {
            return Decision::Answer(Ok(Served {
                entry: entry.clone(),
                status: CacheStatus::Hit,
                forwarded: Forwarded::No,
            }));
        }
        let was_fresh = fresh.is_some();
        let stale = cached
            .filter(|e| !e.negative && (was_fresh || ds.serve_stale) && now_s < grace_end_s(ds, e));
        if let Some(entry) = &stale
            && !no_cache
            && now_s < ds.expires_at(entry.fetched_at_s) + ds.stale_while_revalidate_s
        {
            let served = serve_stale(
                entry.clone(),
                Forwarded::Background,
                "stale-while-revalidate",
            );
            return Decision::Revalidate(served);
        }
        let reason = match (&stale, no_cache) {
            (_, true) => FwdReason::Request,
            (Some(_), false) => FwdReason::Stale,
            (None, false) => FwdReason::Miss,
        };
        let flight: FlightKey = (ds.name.clone(), key.clone());
        if let Some((error, _)) = self.failures.recall(&flight, now_s) {
            return Decision::Answer(match stale {
                Some(entry) => Ok(serve_stale(
                    entry,
                    Forwarded::No,
                    "the last fetch failed recently",
                )),
                None => Err(ReadError::Fetch(error)),
            });
        }
        let refusal = self.upstream.refusal(&ds.url.render_key(key), Role::Demand);
        let quota_spent = self.upstream.quota_free_at_s(Role::Demand).is_some();
        match (stale, refusal.map(|r| (r.cause, r.until_s))) {
            (Some(entry), Some(_)) => {
                Decision::Answer(Ok(serve_stale(entry, Forwarded::No, "upstream held back")))
            }
            (Some(entry), None) if quota_spent => Decision::Answer(Ok(serve_stale(
                entry,
                Forwarded::No,
                "upstream quota spent",
            ))),
            (stale, None) => Decision::Fetch { stale, reason },
            (None, Some((HoldCause::Breaker, until_s))) => {
                let retry_after_s = (until_s - now_s).max(0.0);
                Decision::Answer(Err(ReadError::Fetch(FetchError::Unavailable {
                    retry_after_s,
                })))
            }
            // A rate limit: the flight waits it out within the client's
            // deadline, or fails fast.
            (None, Some(_)) => Decision::Fetch {
                stale: None,
                reason,
            },
        }
    }

    /// `served` (stale) once its refresh is started; marked not
    /// forwarded when no refresh could go.
    pub(super) fn revalidate(
        self: &Arc<Self>,
        ds: &Arc<DatasetConfig>,
        key: &Arc<str>,
        mut served: Served,
    ) -> Served {
        if !self.refresh_in_background(ds, key) {
            served.forwarded = Forwarded::No;
        }
        served
    }

    /// Starts a refresh of `key` unless one is in flight (joined: true),
    /// its last fetch failed recently, its host is held back or the
    /// upstream quota has no call free (false). Nobody waits for it.
    fn refresh_in_background(self: &Arc<Self>, ds: &Arc<DatasetConfig>, key: &Arc<str>) -> bool {
        if !self.may_refresh(ds, key) {
            return false;
        }
        let flight: FlightKey = (ds.name.clone(), key.clone());
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
        true
    }

    /// Whether a background refresh of `key` may start now: its last
    /// fetch did not fail recently, its host is not held back and the
    /// upstream quota has a call free.
    fn may_refresh(&self, ds: &DatasetConfig, key: &Arc<str>) -> bool {
        let flight: FlightKey = (ds.name.clone(), key.clone());
        let now_s = self.clock.now_s();
        self.failures.recall(&flight, now_s).is_none()
            && self.upstream.quota_free_at_s(Role::Demand).is_none()
            && self
                .upstream
                .refusal(&ds.url.render_key(key), Role::Demand)
                .is_none()
    }

    /// Waits for a flight until the client's `deadline`, and no longer
    /// than `stale`'s grace; falls back on `stale` on failure. An answer
    /// is served as `fwd` says.
    pub(super) async fn await_flight(
        &self,
        ds: &DatasetConfig,
        waiter: Waiter<FetchResult>,
        stale: Option<Entry>,
        deadline: Instant,
        fwd: Forwarded,
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
                    forwarded: fwd,
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
            Some(entry) if capped || self.clock.now_s() < grace_end_s(ds, &entry) => Ok(
                serve_stale(entry, Forwarded::FellBack, "upstream failed or is slow"),
            ),
            _ => Err(err),
        }
    }
}
