//! The engine driver: one tokio task owning one
//! [`prewarm_core::engine::Engine`] per dataset.
//!
//! Invariants:
//! - Nothing on the request path waits for the driver: accesses and fetch
//!   completions reach it through the non-blocking event channels, and the
//!   monitoring API reads a published [`DriverSnapshot`] (an `Arc` in a
//!   watch channel) or asks through a command channel.
//! - Events are applied in time order per batch, with times clamped to the
//!   latest seen (a sidecar's `ts` may be old) and never past the clock.
//! - Only client accesses reach `on_access`; every completed fetch reaches
//!   `on_fetched` through its `FetchEvent`.
//! - Every warm order, an engine's or a cycle's, ends exactly once and in one
//!   place, whatever became of its call (returned, panicked, aborted, never
//!   issued): the events queued so far are applied first, then the engine
//!   stops counting the order in flight (`end_warm_order`, which stores
//!   and counts nothing) and its cycle counts it down.
//! - At most `warming.max_concurrent` warming fetches are in flight; none
//!   is issued while upstream's 429 pause lasts, nor past the
//!   outside-session gate ([`gate`]).
//! - Shutdown: stop issuing, finish warms in flight (bounded wait), apply
//!   the last events, save every snapshot, return.
//!
//! A *cycle* (the pre-market job at 08:30 New York, `POST /warming/run`, or
//! the seed's `warm_*` calls on [`DriverClient`]) is planned by each engine
//! on its own budget and answers with what was warmed, skipped and failed,
//! and how long it took.
//!
//! # Parts
//!
//! The driver task (`run`) composes these parts, each a struct in its own
//! file, and runs the `select!` over them:
//! - `merge`: the event merger; the three event channels in, applied to the
//!   engines in one time order, with the event counters;
//! - `warm`: the warm slots; warming calls in flight, at most
//!   `warming.max_concurrent` (by default upstream's limit), each coming
//!   back as one ended order;
//! - `cycle`: the cycle book; cycles pending, their orders waiting for a
//!   slot, and the reports they answer with;
//! - `saver`: snapshot writes off the runtime, recorded per dataset;
//! - `purge`: purges asked for on the admin listener; the store's
//!   deletions off the driver, then the engine forgets the keys;
//! - `publish`: the view, published at most every `publish_every`;
//! - `clock`: the driver's non-decreasing time and the engines' clamp.
//!
//! Beside them: [`settings`] (what only the driver reads of `[warming]`;
//! the engine's settings are core's `WarmingConfig`), [`dataset`] (one
//! engine, its config mapping and counters), [`gate`] (outside sessions),
//! [`schedule`] (pre-market cycle, snapshots, midnight cleanup, on the
//! exchange calendar), [`persist`] (snapshot files), [`view`] (what is
//! published) and `commands` (requests from the monitoring API). Imports
//! among these files go one way, from the driver task down to the leaves;
//! none imports this file's items.
//!
//! # The engine's cache model and the real store
//!
//! Each engine keeps its own model of what is cached
//! (`prewarm_core::cache::CacheModel`): per key, the fetch time of the
//! entry, who fetched it (demand or a warming strategy) and whether it has
//! served a hit. The daemon's real store (memory or Redis) holds the
//! bodies. The driver keeps the two in step from events; it never asks the
//! store.
//!
//! Why a model beside the store:
//! - The engine is sans-I/O and shared with the replay driver, which has no
//!   store: the same code makes the same decisions on a trace and in the
//!   daemon, and `prewarm replay` and `/warming/stats` count hits the same
//!   way.
//! - The engine decides on every event, synchronously: hit or miss, which
//!   strategy a hit is credited to (the entry's origin and used bit, which
//!   no store keeps), whether a candidate is still worth warming (is it
//!   fresh long enough?), which cycle keys to skip (fresh already, or in
//!   flight). Asking the store (a Redis round trip) for each of those would
//!   make the driver wait on I/O.
//! - Accesses reported through `POST /v1/access` were served from the
//!   application's own Redis: the store never sees them. The `hit` flag of
//!   an access event is not used by the engine; the model decides hit or
//!   miss for every access alike.
//! - Freshness has one definition, the model's: an entry fetched at `f` is
//!   fresh at `t` iff `f <= t < expiry(f)` (`f + ttl_s`, or by market
//!   session: `prewarm_core::ttl`), the rule `DatasetConfig::is_fresh`
//!   applies to store entries. The store keeps an entry `stale_grace_s`
//!   longer (to serve stale when upstream fails); past its expiry it is
//!   stale for both.
//!
//! How they are reconciled (every event goes through the driver's event
//! merger, in time order per batch; at equal times an access, then a fetch,
//! then an eviction; times clamped to the latest instant handed to an
//! engine and never past the clock):
//! - Fetch completions: the task that loads a key stores the entry, then
//!   sends a `FetchEvent` whose time is the entry's `fetched_at_s`, then
//!   wakes whoever waits. The engine enters the entry on `ok`, with that
//!   fetch time (clamped as above), so both agree on when it goes stale.
//!   This is the only way an entry enters the model; a failed fetch stores
//!   nothing in either.
//! - Warm orders: a warming call that leads a flight reports through that
//!   flight's `FetchEvent` like a demand fetch (origin `Warm(strategy)`);
//!   one that joins a flight in flight is reported by that flight's event.
//!   The engine counts the key in flight from the order until the order
//!   ends, so it never orders it twice. The driver ends every order, an
//!   engine's or a cycle's, in one place once its call returns (or its task
//!   is lost, or at shutdown it was never issued): it first applies the
//!   events queued so far (the flight's event was sent before the call
//!   returned), then ends the order in the engine with
//!   `end_warm_order`, which only clears the in-flight mark.
//! - Evictions: the memory store reports every entry it drops to respect
//!   its size cap (including a new entry its admission policy refuses) as
//!   an `EvictionEvent` on its own channel, naming the entry's
//!   `fetched_at_s`; the engine drops the entry and may warm the key again.
//!   Channels are not ordered with each other, so an eviction can overtake
//!   the fetch event of the entry it drops: each dataset remembers recent
//!   evictions (key → `fetched_at_s`, at most 4096 keys), and a fetch event
//!   with the same key and time is undone as soon as it is applied.
//!   Replacements, expiries and removals the daemon asked for are not
//!   reported: the engine knows of those already.
//! - Expiry needs no event: the model computes it from the fetch time.
//!
//! Where they can still differ:
//! - An event dropped on a full channel (counted as `dropped_accesses`,
//!   `dropped_fetches` or `dropped_evictions` in `/warming/stats`): a lost
//!   fetch event leaves an entry the model does not know (a hit counted as
//!   a miss, a key warmed again); a lost eviction leaves one the store no
//!   longer holds (counted as cached until its TTL).
//! - Redis evicts under `maxmemory` without telling anyone (see the Redis
//!   store's module doc): the model counts the key as cached until its TTL
//!   runs out.
//! - A store write that fails is logged and counted, but the fetch still
//!   reports `ok`: the model holds an entry the store does not.
//! - A purge (`DELETE /cache/...`) drops entries from the store first and
//!   only then from the model, so a warm fetch ordered meanwhile is never
//!   deleted while the model counts it as cached.
//! - The model starts empty at every start, but for the entries the last
//!   snapshot handed over (its `cache` section) that a Redis store still
//!   holds fresh: the start-up cycle enters those (module `startup`). Other
//!   entries Redis kept are hits for the store and misses for the model
//!   until they are fetched again.
//! - `cached_entries` and `evictions` per dataset in `/warming/stats` show
//!   the model's side; `prewarm_store_evictions_total` counts the memory
//!   store's.

mod clock;
mod commands;
mod cycle;
pub mod dataset;
pub mod gate;
pub mod history;
mod merge;
pub mod persist;
mod publish;
pub mod purge;
mod run;
mod saver;
pub mod schedule;
pub mod settings;
pub mod startup;
pub mod view;
mod warm;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prewarm_core::calendar::ExchangeCalendar;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use cycle::{CycleFigures, CycleKey, CycleSummary, FailedKey, SkippedKey, WarmReport};
pub use persist::SaveReport;
pub use prewarm_core::engine::{CycleRequest, SkipReason};
pub use purge::{PurgeError, PurgeReport, PurgeScope};
pub use view::{DatasetView, DriverSnapshot, Figures, Patterns};

use commands::Command;

use crate::clock::Clock;
use crate::config::ServeConfig;
use crate::events::EventReceivers;
use crate::service::CacheService;
use prewarm_core::strategies::WarmingConfig;
use settings::DriverSettings;

/// How the driver runs.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// `[warming]`'s driver settings.
    pub warming: DriverSettings,
    /// `[warming]`'s engine settings, shared by every dataset's engine.
    pub engine: WarmingConfig,
    /// Where snapshots live.
    pub state_dir: PathBuf,
    /// The exchange calendar of the jobs and the gate.
    pub calendar: ExchangeCalendar,
    /// Least time between two publications of the view.
    pub publish_every: Duration,
    /// Longest wait for warms in flight at shutdown.
    pub shutdown_grace: Duration,
    /// Longest a store read may take before a demand fetch starts
    /// (`store.timeout_ms`): part of how long a read's fetch is awaited.
    pub store_timeout: Duration,
    /// `/readyz`'s flag: under `warming.startup = "before_ready"` the
    /// driver sets it once the start-up cycle is done or its deadline
    /// passed (module `startup`); `None`: readiness is not the driver's.
    pub ready: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl DriverOptions {
    /// Options from the daemon's config (NYSE calendar).
    pub fn from_config(cfg: &ServeConfig) -> Self {
        Self {
            warming: cfg.warming.driver.clone(),
            engine: cfg.warming.engine.clone(),
            state_dir: cfg.server.state_dir.clone(),
            calendar: ExchangeCalendar::nyse(),
            publish_every: Duration::from_millis(250),
            shutdown_grace: cfg.server.request_timeout + Duration::from_secs(1),
            store_timeout: cfg.store.timeout,
            ready: None,
        }
    }
}

/// Why the driver could not start.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A dataset maps to an invalid engine configuration.
    #[error("dataset {dataset}: {source}")]
    Engine {
        /// The dataset.
        dataset: String,
        /// The engine's complaint, naming the field.
        source: prewarm_core::engine::ConfigError,
    },
}

/// The driver task is gone (it stopped or panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the warming driver is not running")]
pub struct DriverGone;

/// What the driver did at shutdown.
#[derive(Debug, Clone, Default)]
pub struct DriverReport {
    /// The final snapshot saves.
    pub saved: Vec<SaveReport>,
}

/// A cheap, cloneable way to read and ask the driver.
#[derive(Debug, Clone)]
pub struct DriverClient {
    view: watch::Receiver<Arc<DriverSnapshot>>,
    cmds: mpsc::Sender<Command>,
}

impl DriverClient {
    /// The latest published view (never waits on the driver).
    pub fn view(&self) -> Arc<DriverSnapshot> {
        self.view.borrow().clone()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, DriverGone> {
        let (tx, rx) = oneshot::channel();
        self.cmds.send(make(tx)).await.map_err(|_| DriverGone)?;
        rx.await.map_err(|_| DriverGone)
    }

    /// Applies every event queued so far, then returns a fresh view.
    pub async fn sync(&self) -> Result<Arc<DriverSnapshot>, DriverGone> {
        self.ask(Command::Sync).await
    }

    /// Runs a warming cycle now and answers when its fetches are back:
    /// `requests` on every dataset (or `dataset`), or the default cycle
    /// (popular and time-of-day keys, as at 08:30) when `None`.
    pub async fn warm(
        &self,
        dataset: Option<String>,
        requests: Option<Vec<CycleRequest>>,
    ) -> Result<WarmReport, DriverGone> {
        self.ask(|reply| Command::Warm {
            dataset,
            requests,
            reply,
        })
        .await
    }

    /// The seed's `warm_popular(limit)`: the `limit` most popular keys.
    pub async fn warm_popular(&self, limit: usize) -> Result<WarmReport, DriverGone> {
        let req = CycleRequest::Popular { limit: Some(limit) };
        self.warm(None, Some(vec![req])).await
    }

    /// The seed's `warm_by_time_pattern(look_ahead)`: keys the time-of-day
    /// profile expects within `look_ahead`.
    pub async fn warm_by_time_pattern(
        &self,
        look_ahead: Duration,
    ) -> Result<WarmReport, DriverGone> {
        let req = CycleRequest::TimePattern {
            look_ahead_s: look_ahead.as_secs_f64(),
            limit: None,
        };
        self.warm(None, Some(vec![req])).await
    }

    /// The seed's `warm_trending(window)`: keys trending over `window`,
    /// with the keys that follow them.
    pub async fn warm_trending(&self, window: Duration) -> Result<WarmReport, DriverGone> {
        let req = CycleRequest::Trending {
            window_s: window.as_secs_f64(),
            limit: None,
        };
        self.warm(None, Some(vec![req])).await
    }

    /// The seed's `warm_predictive(current_keys)`: the keys likely to
    /// follow them.
    pub async fn warm_predictive(&self, current_keys: &[&str]) -> Result<WarmReport, DriverGone> {
        let req = CycleRequest::Predictive {
            current_keys: current_keys.iter().map(|k| k.to_string()).collect(),
            limit: None,
        };
        self.warm(None, Some(vec![req])).await
    }

    /// The seed's `warm_sector(group)`: the group's leading members.
    pub async fn warm_sector(&self, group: &str) -> Result<WarmReport, DriverGone> {
        let req = CycleRequest::Sector {
            group: group.to_string(),
            limit: None,
        };
        self.warm(None, Some(vec![req])).await
    }

    /// Drops `scope`'s entries of `dataset` from the store (the engine
    /// stops counting them as cached; the tracker keeps what it learned);
    /// answers once they are gone.
    pub async fn purge(
        &self,
        dataset: String,
        scope: PurgeScope,
    ) -> Result<Result<PurgeReport, PurgeError>, DriverGone> {
        self.ask(|reply| Command::Purge {
            dataset,
            scope,
            reply,
        })
        .await
    }

    /// Saves every dataset's snapshot now; answers when written.
    pub async fn save(&self) -> Result<Vec<SaveReport>, DriverGone> {
        self.ask(Command::Save).await
    }

    /// What the trackers learned; `dataset` `None` means all.
    pub async fn patterns(
        &self,
        dataset: Option<String>,
        limit: usize,
        key: Option<String>,
    ) -> Result<Vec<Patterns>, DriverGone> {
        self.ask(|reply| Command::Patterns {
            dataset,
            limit,
            key,
            reply,
        })
        .await
    }
}

/// The running driver; [`DriverHandle::shutdown`] stops it.
#[derive(Debug)]
pub struct DriverHandle {
    client: DriverClient,
    stop: Option<oneshot::Sender<()>>,
    join: JoinHandle<DriverReport>,
}

impl DriverHandle {
    /// A client for reading and asking.
    pub fn client(&self) -> &DriverClient {
        &self.client
    }

    /// Stops issuing warms, finishes those in flight, applies the last
    /// events and saves every snapshot.
    pub async fn shutdown(mut self) -> DriverReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.join.await {
            Ok(report) => report,
            Err(e) => {
                tracing::error!(error = %e, "warming driver task failed");
                DriverReport::default()
            }
        }
    }
}

/// Builds one engine per dataset of `service`, restores their snapshots
/// (a corrupt file is moved aside and logged; that dataset starts cold)
/// and spawns the driver task.
pub fn spawn(
    service: Arc<CacheService>,
    events: EventReceivers,
    opts: DriverOptions,
    clock: Arc<dyn Clock>,
) -> Result<DriverHandle, DriverError> {
    let mut names: Vec<String> = service.dataset_names().map(str::to_string).collect();
    names.sort();
    let mut datasets = Vec::new();
    for name in names {
        let Some(ds) = service.dataset(&name) else {
            continue;
        };
        let mut state =
            dataset::DatasetState::new(ds, &opts.engine, &opts.warming, &opts.state_dir).map_err(
                |source| DriverError::Engine {
                    dataset: name.clone(),
                    source,
                },
            )?;
        // The read's store look, then the fetch's queue and flight.
        state.demand_wait_s =
            opts.store_timeout.as_secs_f64() + service.upstream().longest_demand_fetch_s();
        persist::restore(&mut state);
        datasets.push(state);
    }
    let (view_tx, view_rx) = watch::channel(Arc::new(DriverSnapshot::empty()));
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (stop_tx, stop_rx) = oneshot::channel();
    let mut driver = run::Driver::new(run::Parts {
        service,
        clock,
        warming: opts.warming,
        calendar: opts.calendar,
        publish_every: opts.publish_every,
        shutdown_grace: opts.shutdown_grace,
        datasets,
        events,
        cmds: cmd_rx,
        stop: stop_rx,
        view: view_tx,
        ready: opts.ready,
    });
    driver.publish_now();
    let join = tokio::spawn(async move {
        DriverReport {
            saved: driver.run().await,
        }
    });
    Ok(DriverHandle {
        client: DriverClient {
            view: view_rx,
            cmds: cmd_tx,
        },
        stop: Some(stop_tx),
        join,
    })
}
