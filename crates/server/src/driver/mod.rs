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
//!   `on_fetched` through its `FetchEvent`; a warming order that stored
//!   nothing through its own call (joined, paused, failed) is closed with
//!   `on_fetched(ok = false)`.
//! - At most `warming.max_concurrent` warming fetches are in flight; none
//!   is issued while upstream's 429 pause lasts, nor past the
//!   outside-session gate ([`gate`]).
//! - Shutdown: stop issuing, finish warms in flight (bounded wait), apply
//!   the last events, save every snapshot, return.
//!
//! Submodules: [`settings`] (what only the driver reads of `[warming]`),
//! [`dataset`] (engine config mapping, events in), [`gate`]
//! (outside sessions), [`schedule`] (pre-market cycle, snapshots, midnight
//! cleanup, on the exchange calendar), [`persist`] (snapshot files),
//! [`view`] (what is published), `run` (the task), `warm` (warming calls),
//! `cycle` (cycles on request), `commands` (requests from the monitoring
//! API).
//!
//! A *cycle* ([`cycle`]: the pre-market job at 08:30 New York,
//! `POST /warming/run`, or the seed's `warm_*` calls on [`DriverClient`])
//! is planned by each engine on its own budget and answers with what was
//! warmed, skipped and failed, and how long it took.

mod commands;
mod cycle;
pub mod dataset;
pub mod gate;
pub mod persist;
mod run;
pub mod schedule;
pub mod settings;
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
pub use view::{DatasetView, DriverSnapshot, Figures, Patterns};

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

pub(crate) enum Command {
    Sync(oneshot::Sender<Arc<DriverSnapshot>>),
    Warm {
        dataset: Option<String>,
        /// `None`: the default cycle (popular and time, as the pre-market
        /// job runs it).
        requests: Option<Vec<CycleRequest>>,
        reply: oneshot::Sender<WarmReport>,
    },
    Save(oneshot::Sender<Vec<SaveReport>>),
    Patterns {
        dataset: Option<String>,
        limit: usize,
        key: Option<String>,
        reply: oneshot::Sender<Vec<Patterns>>,
    },
}

/// A cheap, cloneable way to read and ask the driver.
#[derive(Debug, Clone)]
pub struct DriverClient {
    view: watch::Receiver<Arc<DriverSnapshot>>,
    cmds: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Sync(_) => "Sync",
            Command::Warm { .. } => "Warm",
            Command::Save(_) => "Save",
            Command::Patterns { .. } => "Patterns",
        })
    }
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
        persist::restore(&mut state);
        datasets.push(state);
    }
    let (view_tx, view_rx) = watch::channel(Arc::new(DriverSnapshot::empty()));
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (stop_tx, stop_rx) = oneshot::channel();
    let mut driver = run::Driver::new(run::Parts {
        service,
        clock,
        opts,
        datasets,
        events,
        cmds: cmd_rx,
        stop: stop_rx,
        view: view_tx,
    });
    driver.publish_now();
    let join = tokio::spawn(driver.run());
    Ok(DriverHandle {
        client: DriverClient {
            view: view_rx,
            cmds: cmd_tx,
        },
        stop: Some(stop_tx),
        join,
    })
}
