//! The start-up cycle in the daemon (`warming.startup`).
//!
//! Once, when the driver starts (after the snapshots are restored), each
//! engine plans its start-up cycle
//! ([`prewarm_core::engine::Engine::plan_startup`]: the keys most likely
//! requested within the next TTL, the keys cached at the last stop first,
//! on the start-up burst). Before that, the keys the snapshot handed over
//! are looked up in the store: an entry a store kept across the restart
//! (Redis) and still fresh is entered in the engine's model
//! ([`prewarm_core::engine::Engine::on_kept_entry`]) and not fetched, so
//! with Redis only what expired since is warmed. The orders run as one
//! cycle of the cycle book, ahead of the engines' own warming.
//!
//! Under `before_ready`, `/readyz` answers 503 until the cycle is done or
//! `warming.startup_deadline_s` has passed; the proxy serves meanwhile.
//! [`StartupProgress`] is shown in `/warming/status` (`startup`) and on the
//! dashboard.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prewarm_core::strategy::StrategyId;
use serde::Serialize;
use tokio::sync::oneshot;

use super::cycle::{CycleBook, WarmReport};
use super::dataset::DatasetState;
use super::settings::StartupMode;
use super::warm::Order;
use crate::service::CacheService;

/// Where the start-up cycle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StartupState {
    /// Not run: `warming.startup = "off"` or warming disabled.
    Off,
    /// Not started yet (the driver is starting).
    Pending,
    /// Fetches out.
    Running,
    /// Every fetch came back.
    Done,
}

/// The start-up cycle's progress, for `/warming/status` and the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StartupProgress {
    /// `warming.startup`.
    pub mode: StartupMode,
    /// Where it is.
    pub state: StartupState,
    /// Fetches planned, all datasets.
    pub planned: usize,
    /// Fetches back with an entry.
    pub done: usize,
    /// Fetches that failed.
    pub failed: usize,
    /// Keys the snapshots handed over (cached at the last stop).
    pub handed_over: usize,
    /// Of those, entries the store kept fresh (not fetched again).
    pub kept: usize,
    /// When it started, Unix seconds.
    pub started_at_s: Option<f64>,
    /// When its last fetch came back, Unix seconds.
    pub finished_at_s: Option<f64>,
    /// `warming.startup_deadline_s`.
    pub deadline_s: f64,
    /// Whether `/readyz` is held for it now (`before_ready` only).
    pub holding_readiness: bool,
}

impl StartupProgress {
    /// Before the driver's first publication.
    pub fn not_started() -> Self {
        StartupProgress {
            mode: StartupMode::Off,
            state: StartupState::Pending,
            planned: 0,
            done: 0,
            failed: 0,
            handed_over: 0,
            kept: 0,
            started_at_s: None,
            finished_at_s: None,
            deadline_s: 0.0,
            holding_readiness: false,
        }
    }
}

/// The driver's start-up cycle.
pub(super) struct Startup {
    progress: StartupProgress,
    cycle: Option<u64>,
    reply: Option<oneshot::Receiver<WarmReport>>,
    /// `/readyz`'s flag, held at false under `before_ready` until released.
    ready: Option<Arc<AtomicBool>>,
}

impl Startup {
    /// A cycle under `mode` with `deadline_s`; `ready` is `/readyz`'s flag,
    /// held under `before_ready`.
    pub(super) fn new(mode: StartupMode, deadline_s: f64, ready: Option<Arc<AtomicBool>>) -> Self {
        let holding = mode == StartupMode::BeforeReady && ready.is_some();
        Startup {
            progress: StartupProgress {
                mode,
                deadline_s,
                holding_readiness: holding,
                ..StartupProgress::not_started()
            },
            cycle: None,
            reply: None,
            ready,
        }
    }

    /// The progress now.
    pub(super) fn progress(&self) -> StartupProgress {
        self.progress.clone()
    }

    /// Looks the handed-over keys of every dataset up in the store and
    /// enters those it kept fresh at `now_s` in their engine.
    pub(super) async fn enter_kept(
        &mut self,
        service: &CacheService,
        datasets: &mut [DatasetState],
        now_s: f64,
    ) {
        for ds in datasets {
            let ttl_s = ds.engine.config().ttl_s;
            let names: Vec<Box<str>> = ds
                .engine
                .handed_over()
                .iter()
                .map(|h| h.key.clone())
                .collect();
            self.progress.handed_over += names.len();
            for name in names {
                let Some(id) = ds.engine.keys().get(&name) else {
                    continue;
                };
                match service.store().get(&ds.name, &name).await {
                    Ok(Some(e)) if e.fetched_at_s <= now_s && now_s < e.fetched_at_s + ttl_s => {
                        ds.engine.on_kept_entry(id, e.fetched_at_s);
                        self.progress.kept += 1;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(dataset = %ds.name, key = %name, %error,
                            "start-up: cannot look the key up in the store; it will be fetched");
                    }
                }
            }
        }
    }

    /// Plans the cycle on every engine at `now_s` and queues its orders
    /// (or records that it is off).
    pub(super) fn begin(
        &mut self,
        now_s: f64,
        datasets: &mut [DatasetState],
        cycles: &mut CycleBook,
        warming_enabled: bool,
    ) {
        if self.progress.mode == StartupMode::Off || !warming_enabled {
            self.progress.state = StartupState::Off;
            self.release(now_s);
            return;
        }
        let mut orders = Vec::new();
        for (ix, ds) in datasets.iter_mut().enumerate() {
            for o in ds.engine.plan_startup(now_s).orders {
                ds.cycle_fetches[o.strategy.index()] += 1;
                orders.push(Order::from_engine(ix, &ds.engine, &o, None));
            }
        }
        self.progress.planned = orders.len();
        self.progress.started_at_s = Some(now_s);
        tracing::info!(planned = orders.len(), handed_over = self.progress.handed_over,
            kept = self.progress.kept, mode = %self.progress.mode, "start-up cycle");
        if orders.is_empty() {
            // Nothing to fetch (a cold start): done, no cycle in the book.
            self.progress.state = StartupState::Done;
            self.progress.finished_at_s = Some(now_s);
            self.release(now_s);
            return;
        }
        self.progress.state = StartupState::Running;
        let strategies = vec![StrategyId::Popular.name(), StrategyId::Time.name()];
        let (tx, rx) = oneshot::channel();
        self.cycle = Some(cycles.start_orders(now_s, strategies, orders, Some(tx)));
        self.reply = Some(rx);
        self.poll(now_s, cycles);
    }

    /// Follows the cycle at `now_s`: its counts, its end, the deadline.
    /// Returns whether anything shown changed.
    pub(super) fn poll(&mut self, now_s: f64, cycles: &CycleBook) -> bool {
        if self.progress.state != StartupState::Running {
            return false;
        }
        let before = self.progress.clone();
        if let Some((done, failed)) = self.cycle.and_then(|id| cycles.counts(id)) {
            (self.progress.done, self.progress.failed) = (done, failed);
        }
        if let Some(Ok(report)) = self.reply.as_mut().map(oneshot::Receiver::try_recv) {
            self.progress.done = report.warmed.len();
            self.progress.failed = report.failed.len();
            self.progress.state = StartupState::Done;
            self.progress.finished_at_s = Some(now_s);
            self.reply = None;
            tracing::info!(
                done = self.progress.done,
                failed = self.progress.failed,
                duration_ms = report.duration_ms,
                "start-up cycle done"
            );
            self.release(now_s);
        } else if self.past_deadline(now_s) {
            self.release(now_s);
        }
        self.progress != before
    }

    fn past_deadline(&self, now_s: f64) -> bool {
        self.progress
            .started_at_s
            .is_some_and(|s| now_s >= s + self.progress.deadline_s)
    }

    /// When the driver must look again for the deadline, if it holds
    /// readiness.
    pub(super) fn wake_s(&self) -> Option<f64> {
        let started_s = self.progress.started_at_s?;
        self.progress
            .holding_readiness
            .then_some(started_s + self.progress.deadline_s)
    }

    /// Lets `/readyz` answer 200 (once).
    fn release(&mut self, now_s: f64) {
        if self.progress.holding_readiness {
            self.progress.holding_readiness = false;
            if let Some(r) = &self.ready {
                r.store(true, Ordering::Release);
            }
            let late = self.past_deadline(now_s) && self.progress.state == StartupState::Running;
            tracing::info!(
                deadline_passed = late,
                "ready: start-up cycle no longer holds /readyz"
            );
        }
    }
}
