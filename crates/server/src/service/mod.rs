//! The read-through cache: single reads, batch reads, warming.
//!
//! Invariants:
//! - Every client read of a valid key records exactly one access (hit iff
//!   a fresh entry was found); warming records none.
//! - Misses for one key share one flight ([`crate::coalesce`]); the load
//!   runs in its own task, stores the entry, then reports a `FetchEvent`.
//! - A client is never failed when a stale entry could serve it: stale is
//!   served when upstream is paused, fails, or outlasts the request timeout.
//! - Store errors degrade to misses (logged, counted), never to failures.

mod batch;
mod load;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prewarm_core::strategy::{StrategyId, UnknownStrategy};
use tokio::time::Instant;

pub use batch::BatchItem;

use crate::clock::Clock;
use crate::coalesce::{Abandoned, Coalescer, Flight, Waiter};
use crate::config::DatasetConfig;
use crate::events::{AccessEvent, EventSink, FetchOrigin};
use crate::store::{Entry, SidecarWriter, Store};
use crate::upstream::{FetchError, RateLimitPolicy, UpstreamClient};
use prewarm_core::time::{Seconds, UnixInstant};

type FlightKey = (Arc<str>, Arc<str>);
type FetchResult = Result<Entry, FetchError>;

/// How a read was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// A fresh entry was in the store.
    Hit,
    /// Fetched from upstream for this read (or a coalesced one).
    Miss,
    /// A stale entry, because upstream could not answer in time.
    Stale,
}

impl CacheStatus {
    /// `HIT`, `MISS` or `STALE`, as in the `X-Cache` header.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
        }
    }

    /// `hit`, `miss` or `stale`, as in the `result` label of metrics.
    pub fn label(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Stale => "stale",
        }
    }
}

/// A served read.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    /// The entry (its `fetched_at_s` gives `Age`).
    pub entry: Entry,
    /// Hit, miss or stale.
    pub status: CacheStatus,
}

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadError {
    /// No such dataset.
    #[error("unknown dataset {0:?}")]
    UnknownDataset(String),
    /// The key does not match the dataset's pattern.
    #[error(
        "key {} does not match the key pattern of dataset {dataset}",
        crate::http::shown_key(key)
    )]
    InvalidKey {
        /// Dataset.
        dataset: String,
        /// The rejected key.
        key: String,
    },
    /// Upstream failed and no stale entry exists.
    #[error("{0}")]
    Fetch(FetchError),
    /// Upstream did not answer within the request timeout.
    #[error("upstream did not answer within the request timeout")]
    Timeout,
}

/// What a warming call did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WarmOutcome {
    /// This call fetched and stored the entry.
    Fetched {
        /// Fetch time of the new entry.
        fetched_at_s: f64,
    },
    /// A fetch for the key was already in flight; its value was stored.
    Joined {
        /// Fetch time of the entry.
        fetched_at_s: f64,
    },
}

/// Why warming did not happen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WarmError {
    /// Unknown dataset or invalid key.
    #[error(transparent)]
    Rejected(ReadError),
    /// Upstream asked us to back off; nothing was fetched.
    #[error("warming paused by the upstream rate limit until {until_s:.1}")]
    Paused {
        /// Unix seconds when warming may resume.
        until_s: f64,
    },
    /// The fetch failed.
    #[error("{0}")]
    Fetch(FetchError),
    /// The strategy to charge was given by a name that is not one.
    #[error(transparent)]
    UnknownStrategy(#[from] UnknownStrategy),
}

impl From<std::convert::Infallible> for WarmError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

/// Everything the service is built from.
#[derive(Debug)]
pub struct ServiceParts {
    /// Datasets by name.
    pub datasets: Vec<DatasetConfig>,
    /// The entry store.
    pub store: Arc<dyn Store>,
    /// The upstream client.
    pub upstream: Arc<UpstreamClient>,
    /// Sidecar writers by dataset name.
    pub sidecars: HashMap<String, SidecarWriter>,
    /// Where accesses and fetches are reported.
    pub events: EventSink,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Longest a client waits on upstream.
    pub request_timeout: Duration,
}

/// The read-through cache service, shared as `Arc<CacheService>`.
#[derive(Debug)]
pub struct CacheService {
    datasets: HashMap<String, Arc<DatasetConfig>>,
    store: Arc<dyn Store>,
    upstream: Arc<UpstreamClient>,
    sidecars: HashMap<String, SidecarWriter>,
    flights: Coalescer<FlightKey, FetchResult>,
    events: EventSink,
    clock: Arc<dyn Clock>,
    request_timeout: Duration,
}

impl CacheService {
    /// Builds the service.
    pub fn new(parts: ServiceParts) -> Arc<Self> {
        let datasets = parts
            .datasets
            .into_iter()
            .map(|d| (d.name.to_string(), Arc::new(d)))
            .collect();
        Arc::new(Self {
            datasets,
            store: parts.store,
            upstream: parts.upstream,
            sidecars: parts.sidecars,
            flights: Coalescer::new(),
            events: parts.events,
            clock: parts.clock,
            request_timeout: parts.request_timeout,
        })
    }

    /// The dataset named `name`.
    pub fn dataset(&self, name: &str) -> Option<&Arc<DatasetConfig>> {
        self.datasets.get(name)
    }

    /// Dataset names.
    pub fn dataset_names(&self) -> impl Iterator<Item = &str> {
        self.datasets.keys().map(String::as_str)
    }

    /// The entry store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The upstream client (`paused_until_s` lives there).
    pub fn upstream(&self) -> &Arc<UpstreamClient> {
        &self.upstream
    }

    /// The event sink (drop counters live there).
    pub fn events(&self) -> &EventSink {
        &self.events
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Flights in progress.
    pub fn in_flight(&self) -> usize {
        self.flights.in_flight()
    }

    /// Reports a client access (used by the proxy and `/v1/access`).
    pub fn record_access(&self, event: AccessEvent) -> bool {
        metrics::counter!("prewarm_accesses_total", "hit" => if event.hit { "true" } else { "false" }).increment(1);
        self.events.record_access(event)
    }

    fn checked(&self, dataset: &str, key: &str) -> Result<Arc<DatasetConfig>, ReadError> {
        let ds = self
            .datasets
            .get(dataset)
            .ok_or_else(|| ReadError::UnknownDataset(dataset.to_string()))?;
        if !ds.key_is_valid(key) {
            return Err(ReadError::InvalidKey {
                dataset: dataset.to_string(),
                key: key.to_string(),
            });
        }
        Ok(Arc::clone(ds))
    }

    fn access(&self, ds: &DatasetConfig, key: &str, client: Option<&str>, at_s: f64, hit: bool) {
        self.record_access(AccessEvent {
            dataset: ds.name.clone(),
            key: key.into(),
            client: client.map(Into::into),
            at_s,
            hit,
        });
    }

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
        let fresh = cached
            .as_ref()
            .is_some_and(|e| e.is_fresh(Seconds(ds.ttl_s), UnixInstant(now_s)));
        self.access(&ds, key, client, now_s, fresh);
        match cached {
            Some(entry) if fresh => Ok(Served {
                entry,
                status: CacheStatus::Hit,
            }),
            other => {
                let stale = other.filter(|_| ds.serve_stale);
                self.read_miss(ds, key.into(), stale, deadline).await
            }
        }
    }

    async fn read_miss(
        self: &Arc<Self>,
        ds: Arc<DatasetConfig>,
        key: Arc<str>,
        stale: Option<Entry>,
        deadline: Instant,
    ) -> Result<Served, ReadError> {
        if let Some(entry) = stale.as_ref().filter(|_| self.upstream.is_paused()) {
            return Ok(serve_stale(entry.clone(), "upstream rate limit"));
        }
        let policy = policy_for(stale.is_some());
        let waiter = match self.flights.join_or_lead((ds.name.clone(), key.clone())) {
            Flight::Follower(w) => w,
            Flight::Leader(promise, w) => {
                self.spawn_load(ds, key, promise, FetchOrigin::Demand, policy, deadline);
                w
            }
        };
        await_flight(waiter, stale, deadline).await
    }

    /// Fetches `dataset`/`key` for `strategy` without recording an access,
    /// stores it and reports a warming `FetchEvent` charged to it. Respects
    /// `max_concurrent` and the 429 pause (never waits it out). `strategy`
    /// is a [`StrategyId`], or a name parsed here (an unknown name is
    /// [`WarmError::UnknownStrategy`]).
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
        let ds = self.checked(dataset, key).map_err(WarmError::Rejected)?;
        if self.upstream.is_paused() {
            return Err(WarmError::Paused {
                until_s: self.upstream.paused_until_s(),
            });
        }
        let deadline = Instant::now() + self.request_timeout;
        let key: Arc<str> = key.into();
        let (waiter, led) = match self.flights.join_or_lead((ds.name.clone(), key.clone())) {
            Flight::Follower(w) => (w, false),
            Flight::Leader(promise, w) => {
                let origin = FetchOrigin::Warm(strategy);
                self.spawn_load(
                    ds,
                    key,
                    promise,
                    origin,
                    RateLimitPolicy::FailFast,
                    deadline,
                );
                (w, true)
            }
        };
        let result = match tokio::time::timeout_at(deadline, waiter.wait()).await {
            Ok(Ok(r)) => r,
            Ok(Err(Abandoned)) => Err(FetchError::Abandoned),
            Err(_) => Err(FetchError::Timeout),
        };
        match result {
            Ok(e) if led => Ok(WarmOutcome::Fetched {
                fetched_at_s: e.fetched_at_s,
            }),
            Ok(e) => Ok(WarmOutcome::Joined {
                fetched_at_s: e.fetched_at_s,
            }),
            Err(FetchError::RateLimited { .. }) => Err(WarmError::Paused {
                until_s: self.upstream.paused_until_s(),
            }),
            Err(e) => Err(WarmError::Fetch(e)),
        }
    }

    async fn store_get(&self, ds: &DatasetConfig, key: &str) -> Option<Entry> {
        match self.store.get(&ds.name, key).await {
            Ok(found) => found,
            Err(e) => {
                metrics::counter!("prewarm_store_errors_total").increment(1);
                tracing::warn!(dataset = %ds.name, key, error = %e, "store read failed; treating as a miss");
                None
            }
        }
    }
}

fn policy_for(has_stale: bool) -> RateLimitPolicy {
    if has_stale {
        RateLimitPolicy::FailFast
    } else {
        RateLimitPolicy::WaitWithinDeadline
    }
}

fn serve_stale(entry: Entry, why: &str) -> Served {
    metrics::counter!("prewarm_stale_served_total").increment(1);
    tracing::debug!(why, "serving stale entry");
    Served {
        entry,
        status: CacheStatus::Stale,
    }
}

/// Waits for a flight until `deadline`; falls back to `stale` on failure.
async fn await_flight(
    waiter: Waiter<FetchResult>,
    stale: Option<Entry>,
    deadline: Instant,
) -> Result<Served, ReadError> {
    let err = match tokio::time::timeout_at(deadline, waiter.wait()).await {
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
    match stale {
        Some(entry) => Ok(serve_stale(entry, "upstream failed")),
        None => Err(err),
    }
}
