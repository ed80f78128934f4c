//! Loads: the spawned tasks that fetch from upstream, store, report a
//! `FetchEvent` and complete the flight's promise. A load runs to the
//! flight's own deadline, whoever waits for it.

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::{CacheService, FetchResult, FlightKey};
use crate::coalesce::Promise;
use crate::config::DatasetConfig;
use crate::events::{FetchEvent, FetchOrigin};
use crate::store::Entry;
use crate::upstream::{Call, FetchError, Fetched, RateLimitPolicy, Role};

/// What is known of the upstream call behind a fetch's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Called {
    /// How long it took, seconds, when it was made (and succeeded).
    pub(super) upstream_s: Option<f64>,
    /// Whether it reached the upstream (not refused before sending).
    pub(super) sent: bool,
    /// Whether the key rode in a batch call an earlier key counts.
    pub(super) batched: bool,
}

impl Called {
    /// A call that was sent, alone or first of its batch.
    pub(super) fn sent(upstream_s: Option<f64>) -> Self {
        Called {
            upstream_s,
            sent: true,
            batched: false,
        }
    }
}

/// The promise of one key's flight.
pub(super) type KeyPromise = Promise<FlightKey, FetchResult>;

/// How a flight calls upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Load {
    /// While the host is rate limiting.
    pub(super) policy: RateLimitPolicy,
    /// Whether 5xx, timeouts and transport errors are retried (as
    /// configured) or not at all.
    pub(super) retry: bool,
    /// Whether the call goes even if a fresh entry was stored meanwhile
    /// (a client's `no-cache`).
    pub(super) force: bool,
}

impl Load {
    /// A client waits: with a stale entry to fall back on, one attempt and
    /// no wait on a rate limit; without one, retried as configured and a
    /// rate limit waited out if it ends before `client_deadline`.
    pub(super) fn demand(has_stale: bool, client_deadline: Instant) -> Self {
        if has_stale {
            Self::refresh()
        } else {
            Self {
                policy: RateLimitPolicy::WaitUntil(client_deadline),
                retry: true,
                force: false,
            }
        }
    }

    /// This load, forced past a fresh entry when `force`.
    pub(super) fn forced(self, force: bool) -> Self {
        Self { force, ..self }
    }

    /// Nobody waits (a background refresh, warming): one attempt.
    pub(super) fn refresh() -> Self {
        Self {
            policy: RateLimitPolicy::FailFast,
            retry: false,
            force: false,
        }
    }
}

enum Loaded {
    /// Upstream answered after `took_s` seconds; the entry was stored.
    Fetched(Entry, f64),
    /// Another flight stored a fresh entry meanwhile; no call was made.
    AlreadyFresh(Entry),
    /// The fetch failed; whether a call reached the upstream.
    Failed(FetchError, bool),
}

impl CacheService {
    /// Spawns the load of one key; the promise is completed by the task
    /// (or dropped, waking waiters with `Abandoned`, if it panics).
    pub(super) fn spawn_load(
        self: &Arc<Self>,
        ds: Arc<DatasetConfig>,
        key: Arc<str>,
        promise: KeyPromise,
        origin: FetchOrigin,
        load: Load,
    ) {
        let svc = Arc::clone(self);
        tokio::spawn(async move {
            let loaded = svc.load_one(&ds, &key, &origin, load).await;
            svc.finish(&ds, &key, origin, loaded, promise).await;
        });
    }

    /// The upstream call of a flight started now.
    pub(super) fn call(&self, role: Role, load: Load) -> Call {
        Call {
            deadline: self.upstream.flight_deadline(),
            policy: load.policy,
            role,
            max_retries: if load.retry {
                self.upstream.config().max_retries
            } else {
                0
            },
        }
    }

    async fn load_one(
        &self,
        ds: &DatasetConfig,
        key: &str,
        origin: &FetchOrigin,
        load: Load,
    ) -> Loaded {
        if *origin == FetchOrigin::Demand && !load.force {
            // Closes the race between a client's store miss and its joining
            // the flight map just after an earlier flight ended.
            let now_s = self.clock.now_s();
            if let Some(e) = self
                .store_get(ds, key)
                .await
                .filter(|e| ds.is_fresh(e, now_s))
            {
                return Loaded::AlreadyFresh(e);
            }
        }
        let url = ds.url.render_key(key);
        let (kind, role) = match origin {
            FetchOrigin::Demand => ("demand", Role::Demand),
            FetchOrigin::Warm(_) => ("warm", Role::Warm),
        };
        let started = std::time::Instant::now();
        let call = self.call(role, load);
        let (result, sent) = self.upstream.get_sent(&url, ds.headers.map(), call).await;
        let took = started.elapsed();
        if sent {
            record_upstream_call(&ds.name, kind, took, result.is_ok());
        }
        match result {
            Ok(fetched) => Loaded::Fetched(
                self.store_fetched(ds, key, fetched).await,
                took.as_secs_f64(),
            ),
            Err(FetchError::Status { status: 404, .. }) if ds.negative_ttl_s > 0.0 => {
                Loaded::Fetched(self.store_negative(ds, key).await, took.as_secs_f64())
            }
            Err(e) => Loaded::Failed(e, sent),
        }
    }

    /// Stores a negative entry for `key` (the upstream answered 404),
    /// kept for the dataset's `negative_ttl_s`.
    async fn store_negative(&self, ds: &DatasetConfig, key: &str) -> Entry {
        let entry = Entry {
            fetched_at_s: self.clock.now_s(),
            negative: true,
            ..Entry::default()
        };
        self.put_entry(ds, key, &entry, ds.negative_ttl_s).await;
        entry
    }

    async fn put_entry(&self, ds: &DatasetConfig, key: &str, entry: &Entry, ttl_s: f64) {
        if let Err(e) = self.store.put(&ds.name, key, entry.clone(), ttl_s).await {
            metrics::counter!("prewarm_store_errors_total").increment(1);
            tracing::warn!(dataset = %ds.name, key, error = %e, "store write failed");
        }
    }

    /// Turns a fetched body into a stored entry (store errors are logged).
    pub(super) async fn store_fetched(
        &self,
        ds: &DatasetConfig,
        key: &str,
        fetched: Fetched,
    ) -> Entry {
        let entry = Entry {
            body: fetched.body,
            fetched_at_s: self.clock.now_s(),
            content_type: fetched.content_type,
            etag: fetched.etag,
            negative: false,
        };
        self.put_entry(ds, key, &entry, ds.entry_ttl_s(entry.fetched_at_s))
            .await;
        entry
    }

    /// Body of a batch item turned into a stored entry.
    pub(super) async fn store_batch_item(
        &self,
        ds: &DatasetConfig,
        key: &str,
        body: Bytes,
    ) -> Entry {
        let fetched = Fetched {
            body,
            content_type: Some("application/json".into()),
            etag: None,
        };
        self.store_fetched(ds, key, fetched).await
    }

    async fn finish(
        &self,
        ds: &DatasetConfig,
        key: &str,
        origin: FetchOrigin,
        loaded: Loaded,
        promise: KeyPromise,
    ) {
        match loaded {
            Loaded::AlreadyFresh(entry) => {
                // No call went; the engine stops awaiting this demand fetch.
                self.events.record_fetch(FetchEvent {
                    dataset: ds.name.clone(),
                    key: key.into(),
                    at_s: self.clock.now_s(),
                    origin,
                    ok: false,
                    upstream_s: None,
                    sent: false,
                    batched: false,
                });
                promise.complete(Ok(entry));
            }
            Loaded::Fetched(entry, took_s) => {
                let call = Called::sent(Some(took_s));
                self.complete_fetch(ds, key, origin, (Ok(entry), call), promise)
                    .await
            }
            Loaded::Failed(e, sent) => {
                let call = Called {
                    sent,
                    ..Called::sent(None)
                };
                self.complete_fetch(ds, key, origin, (Err(e), call), promise)
                    .await
            }
        }
    }

    /// Reports the fetch, completes the promise, writes the sidecar.
    /// `outcome` is the result and what is known of the call.
    pub(super) async fn complete_fetch(
        &self,
        ds: &DatasetConfig,
        key: &str,
        origin: FetchOrigin,
        outcome: (FetchResult, Called),
        promise: KeyPromise,
    ) {
        let (result, call) = outcome;
        // A negative entry answers the read but is no fetched value.
        let ok = result.as_ref().is_ok_and(|e| !e.negative);
        let label = match &origin {
            FetchOrigin::Demand => "demand",
            FetchOrigin::Warm(_) => "warm",
        };
        metrics::counter!("prewarm_fetches_total", "origin" => label, "ok" => if ok { "true" } else { "false" })
            .increment(1);
        // A stored entry's fetch time, not the time after the put: a store
        // eviction during the put then sorts after this event.
        let at_s = match &result {
            Ok(entry) => entry.fetched_at_s,
            Err(_) => self.clock.now_s(),
        };
        let flight: FlightKey = (ds.name.clone(), key.into());
        let outcome = result.as_ref().map(|_| ());
        self.failures.record(&flight, outcome, self.clock.now_s());
        self.events.record_fetch(FetchEvent {
            dataset: ds.name.clone(),
            key: key.into(),
            at_s,
            origin,
            ok,
            upstream_s: call.upstream_s.filter(|_| ok),
            sent: call.sent,
            batched: call.batched,
        });
        if let Err(e) = &result {
            tracing::warn!(dataset = %ds.name, key, error = %self.upstream.redactor().redact(&e.to_string()), "upstream fetch failed");
        }
        let body = result.as_ref().ok().filter(|_| ok).map(|e| e.body.clone());
        promise.complete(result);
        if let (Some(body), Some(writer)) = (body, self.sidecars.get(ds.name.as_ref()))
            && let Err(e) = writer.write(key, &body).await
        {
            metrics::counter!("prewarm_sidecar_errors_total").increment(1);
            let error = self.upstream.redactor().redact(&e.to_string());
            tracing::warn!(dataset = %ds.name, key, %error, "sidecar write failed");
        }
    }
}

/// Counts one upstream call of `dataset` (`kind` `demand` or `warm`) and
/// its latency, retries included.
pub(super) fn record_upstream_call(
    dataset: &str,
    kind: &'static str,
    took: std::time::Duration,
    ok: bool,
) {
    let result = if ok { "ok" } else { "error" };
    metrics::counter!("prewarm_upstream_calls_total", "dataset" => dataset.to_string(), "kind" => kind, "result" => result)
        .increment(1);
    metrics::histogram!("prewarm_upstream_duration_seconds", "dataset" => dataset.to_string(), "kind" => kind)
        .record(took.as_secs_f64());
}
