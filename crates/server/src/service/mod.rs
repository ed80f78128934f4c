//! The read-through cache: single reads, batch reads, warming.
//!
//! Invariants:
//! - Every client read of a valid key records exactly one access (hit iff
//!   a fresh entry was found); warming records none.
//! - Misses for one key share one flight ([`crate::coalesce`]); the load
//!   runs in its own task, stores the entry, then reports a `FetchEvent`.
//! - A flight outlives the clients waiting on it: a client gives up at its
//!   request timeout, the flight runs to its own deadline
//!   ([`crate::upstream::UpstreamClient::flight_deadline`]) and stores what
//!   it gets, so the next read finds it fresh (or joins the same flight).
//! - A stale entry is answered only within the dataset's grace
//!   (`fetched_at_s + ttl_s + stale_grace_s`), checked when the answer is
//!   sent: a wait for upstream never outlasts the grace of the entry it
//!   falls back on.
//! - Within `stale_while_revalidate_s` past the TTL a stale entry is
//!   answered at once and refreshed in the background (one coalesced
//!   flight); past it, within the grace, a read waits for the refresh and
//!   falls back on the stale entry if it fails or outlasts the wait.
//! - A client is never failed when a stale entry within the grace could
//!   serve it: stale is served when upstream is paused, its breaker is
//!   open, the key's last fetch failed recently, or upstream fails.
//! - A failed fetch is remembered for the key ([`failures`]); a fetch with
//!   a stale entry to fall back on is not retried.
//! - Store errors degrade to misses (logged, counted), never to failures.
//! - Keys are read as their canonical key (upper-cased, aliases resolved:
//!   [`DatasetConfig::canonical_key`]); the store, the flights and the
//!   engine see only canonical keys.
//! - An upstream 404 is kept as a negative entry for `negative_ttl_s` and
//!   answered 404 from it without a call; a read answered from a negative
//!   entry records no access, and warming never fetches a key with one.
//! - Under the upstream quota a stale entry within the grace is answered
//!   when no call is free; a read without one queues for a call (up to
//!   `upstream.quota_queue_s` and the request timeout), then fails
//!   [`FetchError::QuotaExhausted`].
//! - A read with `no_cache` skips the fresh entry and waits for a fetch
//!   (joining one in flight), as demand and under the quota; the entry
//!   it skipped is its fallback.

mod batch;
mod failures;
mod load;
mod read;
mod warm;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prewarm_core::strategy::UnknownStrategy;

pub use batch::BatchItem;

use crate::clock::Clock;
use crate::coalesce::Coalescer;
use crate::config::{DatasetConfig, KeyProblem};
use crate::events::{AccessEvent, AccessFetch, EventSink};
use crate::store::{Entry, SidecarWriter, Store};
use crate::upstream::{FetchError, UpstreamClient};
use failures::FailureMemo;

type FlightKey = (Arc<str>, Arc<str>);
type FetchResult = Result<Entry, FetchError>;

/// How a read was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// A fresh entry was in the store.
    Hit,
    /// Fetched from upstream for this read (or a coalesced one).
    Miss,
    /// A stale entry within the grace: answered at once while it is
    /// refreshed, or because upstream could not answer.
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

/// Why a read went to the upstream (RFC 9211 `fwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FwdReason {
    /// No entry (or only a negative one past its TTL).
    Miss,
    /// The entry was stale.
    Stale,
    /// The client asked for it (`Cache-Control: no-cache`).
    Request,
}

/// Whether and how a read went to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarded {
    /// Answered from the store; nothing went upstream for this read.
    No,
    /// Answered stale at once; a refresh went upstream in the background.
    Background,
    /// Waited for an upstream fetch that answered: why it went, and
    /// whether it joined a fetch another request started (`collapsed`).
    Waited {
        /// Why the read went upstream.
        reason: FwdReason,
        /// Joined another request's fetch.
        collapsed: bool,
    },
    /// Waited for a fetch that failed or outlasted the wait; answered
    /// from the store.
    FellBack,
}

/// A served read.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    /// The entry (its `fetched_at_s` gives `Age`); a negative entry is
    /// answered 404.
    pub entry: Entry,
    /// Hit, miss or stale.
    pub status: CacheStatus,
    /// Whether and how the read went upstream.
    pub forwarded: Forwarded,
}

/// How a client reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions<'a> {
    /// The client, for access tracking (`X-Client-Id`).
    pub client: Option<&'a str>,
    /// `Cache-Control: no-cache`: fetch even when the entry is fresh.
    pub no_cache: bool,
}

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadError {
    /// No such dataset.
    #[error("unknown dataset {0:?}")]
    UnknownDataset(String),
    /// The key is refused (a dot segment, or no match of the pattern).
    #[error(
        "key {} of dataset {dataset} is refused: {problem}",
        crate::http::shown_key(key)
    )]
    InvalidKey {
        /// Dataset.
        dataset: String,
        /// The rejected key.
        key: String,
        /// What is wrong with it.
        problem: KeyProblem,
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
    /// Warming is held back on the key's host (429 pause, open breaker,
    /// warming back-off or rate) or by the upstream quota (no call above
    /// the demand reserve); nothing was fetched.
    #[error("warming held back by the upstream until {until_s:.1}")]
    Paused {
        /// Unix seconds when warming may resume.
        until_s: f64,
    },
    /// Warming is not done for a key the upstream does not know (a
    /// negative entry holds it).
    #[error(
        "the upstream does not know the key (404, kept as a negative entry for negative_ttl_s)"
    )]
    Negative,
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
    failures: FailureMemo,
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
        let cfg = parts.upstream.config();
        let failures = FailureMemo::new(cfg.failure_backoff_s, cfg.failure_backoff_max_s);
        Arc::new(Self {
            datasets,
            store: parts.store,
            upstream: parts.upstream,
            sidecars: parts.sidecars,
            flights: Coalescer::new(),
            failures,
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

    /// The upstream client (host gates and `paused_until_s` live there).
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

    /// The canonical form of `key` in `dataset` (upper-cased and aliased
    /// as the dataset's config says, as reads see it), or why it is
    /// refused ([`ReadError::UnknownDataset`], [`ReadError::InvalidKey`]).
    pub fn canonical_key(&self, dataset: &str, key: &str) -> Result<Arc<str>, ReadError> {
        self.checked(dataset, key).map(|(_, k)| k)
    }

    /// The dataset and the canonical key of `key`, or why not.
    fn checked(
        &self,
        dataset: &str,
        key: &str,
    ) -> Result<(Arc<DatasetConfig>, Arc<str>), ReadError> {
        let ds = self
            .datasets
            .get(dataset)
            .ok_or_else(|| ReadError::UnknownDataset(dataset.to_string()))?;
        let canonical = ds.canonical_key(key);
        if let Some(problem) = ds.key_problem(&canonical) {
            return Err(ReadError::InvalidKey {
                dataset: dataset.to_string(),
                key: key.to_string(),
                problem,
            });
        }
        Ok((Arc::clone(ds), canonical.as_ref().into()))
    }

    /// Records a proxied read's access (`read`: its client and whether
    /// it asked past the cache; `hit`, and what it does upstream).
    fn access(
        &self,
        ds: &DatasetConfig,
        key: &str,
        read: ReadOptions<'_>,
        at_s: f64,
        (hit, fetch): (bool, AccessFetch),
    ) {
        self.record_access(AccessEvent {
            dataset: ds.name.clone(),
            key: key.into(),
            client: read.client.map(Into::into),
            at_s,
            hit,
            forced: read.no_cache,
            fetch,
            groups: Box::default(),
        });
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

fn serve_stale(entry: Entry, forwarded: Forwarded, why: &str) -> Served {
    metrics::counter!("prewarm_stale_served_total").increment(1);
    tracing::debug!(why, "serving stale entry");
    Served {
        entry,
        status: CacheStatus::Stale,
        forwarded,
    }
}
