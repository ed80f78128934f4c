//! The driver task. [`Driver`] composes the parts and runs the `select!`
//! loop: events in ([`EventMerger`]), engine timeouts and scheduled jobs,
//! warm orders out and back ([`WarmSlots`], [`CycleBook`]), snapshots
//! ([`Saver`]), requests from the monitoring API, and the view out
//! ([`Publisher`]).
//!
//! Every warm order, an engine's or a cycle's, ends in
//! [`Driver::end_order`] and nowhere else.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prewarm_core::calendar::ExchangeCalendar;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinError;
use tokio::time::Instant;

use super::clock::DriverClock;
use super::commands::Command;
use super::cycle::{CycleAsk, CycleBook, CycleKey, Honour, WarmReport, default_requests};
use super::dataset::DatasetState;
use super::merge::EventMerger;
use super::persist::SaveReport;
use super::publish::Publisher;
use super::purge::{PurgeError, PurgeReply, PurgeScope, Purges};
use super::saver::{Saved, Saver};
use super::schedule::{JobKind, Schedule};
use super::settings::DriverSettings;
use super::startup::Startup;
use super::view::{DatasetView, DriverSnapshot, Patterns};
use super::warm::{Ended, Order, OrderEnd, WarmSlots};
use crate::clock::Clock;
use crate::events::EventReceivers;
use crate::service::CacheService;

/// Longest the driver sleeps without looking at the clock, seconds.
const MAX_SLEEP_S: f64 = 60.0;
/// When warming is blocked (slots full, gate shut, upstream paused), the
/// engine's "act now" is looked at again after this long, seconds.
const BLOCKED_RECHECK_S: f64 = 1.0;

/// What the driver is built from.
pub(super) struct Parts {
    /// The read-through cache the warming calls go through.
    pub(super) service: Arc<CacheService>,
    /// The daemon's clock.
    pub(super) clock: Arc<dyn Clock>,
    /// `[warming]`'s driver settings.
    pub(super) warming: DriverSettings,
    /// The exchange calendar of the jobs and the gate.
    pub(super) calendar: ExchangeCalendar,
    /// Least time between two publications of the view.
    pub(super) publish_every: Duration,
    /// Longest wait for warms in flight at shutdown.
    pub(super) shutdown_grace: Duration,
    /// One engine per dataset, restored.
    pub(super) datasets: Vec<DatasetState>,
    /// Accesses, fetch completions and store evictions.
    pub(super) events: EventReceivers,
    /// Requests from the monitoring API.
    pub(super) cmds: mpsc::Receiver<Command>,
    /// Fires (or closes) to stop the driver.
    pub(super) stop: oneshot::Receiver<()>,
    /// Where the view is published.
    pub(super) view: watch::Sender<Arc<DriverSnapshot>>,
    /// `/readyz`'s flag, held under `warming.startup = "before_ready"`.
    pub(super) ready: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// The driver: one engine per dataset and the parts around them.
pub(super) struct Driver {
    service: Arc<CacheService>,
    warming: DriverSettings,
    shutdown_grace: Duration,
    datasets: Vec<DatasetState>,
    time: DriverClock,
    merger: EventMerger,
    slots: WarmSlots,
    cycles: CycleBook,
    saver: Saver,
    purges: Purges,
    schedule: Schedule,
    publisher: Publisher,
    cmds: mpsc::Receiver<Command>,
    stop: oneshot::Receiver<()>,
    /// Dataset polled first next time (round robin).
    next_dataset: usize,
    /// The start-up cycle.
    startup: Startup,
}

impl Driver {
    pub(super) fn new(p: Parts) -> Self {
        let mut time = DriverClock::new(p.clock);
        let upstream_max = p.service.upstream().max_concurrent();
        let max_warms = p.warming.max_concurrent_or(upstream_max);
        let schedule = Schedule::new(
            p.calendar,
            p.warming.pre_market_at,
            p.warming.snapshot_interval_s,
            time.now_s(),
        );
        let startup = Startup::new(p.warming.startup, p.warming.startup_deadline_s, p.ready);
        Self {
            startup,
            service: p.service,
            slots: WarmSlots::new(max_warms),
            warming: p.warming,
            shutdown_grace: p.shutdown_grace,
            merger: EventMerger::new(p.events, &p.datasets),
            datasets: p.datasets,
            time,
            cycles: CycleBook::default(),
            saver: Saver::default(),
            purges: Purges::default(),
            schedule,
            publisher: Publisher::new(p.view, p.publish_every),
            cmds: p.cmds,
            stop: p.stop,
            next_dataset: 0,
        }
    }

    /// Runs until stopped; returns the final snapshot saves.
    pub(super) async fn run(mut self) -> Vec<SaveReport> {
        self.start_up().await;
        let mut cmds_open = true;
        loop {
            let now_s = self.time.now_s();
            self.tick(now_s);
            let deadline_s = self.deadline_s(now_s);
            let wait = Duration::from_secs_f64((deadline_s - now_s).clamp(0.0, MAX_SLEEP_S));
            let sleep = tokio::time::sleep_until(Instant::now() + wait);
            tokio::select! {
                biased;
                _ = &mut self.stop => break,
                () = self.merger.recv(), if self.merger.is_open() => self.apply_events(),
                Some(call) = self.slots.next_ended(), if !self.slots.is_empty() => {
                    self.end_call(call);
                }
                Some(done) = self.saver.next_done(), if !self.saver.is_idle() => {
                    self.on_saved(done);
                }
                Some(done) = self.purges.next_done(), if !self.purges.is_idle() => {
                    Purges::finished(done, &mut self.datasets);
                    self.publisher.mark_dirty();
                }
                cmd = self.cmds.recv(), if cmds_open => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => cmds_open = false,
                },
                _ = sleep => {}
            }
        }
        self.finish().await
    }

    /// The start-up cycle: the store's kept entries entered, the cycle
    /// planned and queued (module `startup`).
    async fn start_up(&mut self) {
        let now_s = self.time.now_s();
        let on = self.warming.enabled && self.warming.startup != super::settings::StartupMode::Off;
        if on {
            self.startup
                .enter_kept(&self.service, &mut self.datasets, now_s)
                .await;
        }
        let now_s = self.time.now_s();
        self.time.handed(now_s);
        let enabled = self.warming.enabled;
        self.startup
            .begin(now_s, &mut self.datasets, &mut self.cycles, enabled);
        self.publisher.mark_dirty();
    }

    /// Runs engine timeouts and jobs that are due, issues warms, publishes.
    fn tick(&mut self, now_s: f64) {
        self.time.handed(now_s);
        for ds in &mut self.datasets {
            if ds.engine.next_timeout().is_some_and(|t| t <= now_s) {
                ds.engine.handle_timeout(now_s);
                self.publisher.mark_dirty();
            }
        }
        for job in self.schedule.take_due(now_s) {
            self.run_job(job, now_s);
        }
        self.pump(now_s);
        if self.startup.poll(now_s, &self.cycles) {
            self.publisher.mark_dirty();
        }
        if self.publisher.is_due() {
            self.publish_now();
        }
    }

    /// When the loop must look again, at the latest.
    fn deadline_s(&mut self, now_s: f64) -> f64 {
        let mut d = now_s + MAX_SLEEP_S;
        for ds in &self.datasets {
            if let Some(t) = ds.engine.next_timeout() {
                // Still "now" after a tick: warming is blocked, look later.
                d = d.min(if t <= now_s {
                    now_s + BLOCKED_RECHECK_S
                } else {
                    t
                });
            }
        }
        d = d.min(self.schedule.next_due_s());
        if let Some(t) = self.startup.wake_s() {
            d = d.min(t.max(now_s + 0.01));
        }
        let paused_until_s = self.service.upstream().paused_until_s();
        if paused_until_s > now_s {
            d = d.min(paused_until_s.max(now_s + 0.01));
        }
        if self.cycles.queued() > 0 {
            d = d.min(now_s + BLOCKED_RECHECK_S);
        }
        if let Some(wait) = self.publisher.pending_wait() {
            d = d.min(now_s + wait.as_secs_f64());
        }
        d
    }

    /// Applies every event received or queued so far.
    fn apply_events(&mut self) {
        if self.merger.apply(&mut self.datasets, &mut self.time) {
            self.publisher.mark_dirty();
        }
    }

    fn run_job(&mut self, job: JobKind, now_s: f64) {
        let outcome = match job {
            JobKind::PreMarket => {
                let requests = default_requests(&self.warming);
                let r = self.start_cycle(
                    now_s,
                    CycleAsk {
                        dataset: None,
                        requests: &requests,
                        honour: Honour::EnabledOnly,
                        reply: None,
                    },
                );
                match r.refused {
                    Some(why) => format!("skipped: {why}"),
                    None => format!("ordered {} keys, skipped {}", r.ordered, r.skipped.len()),
                }
            }
            JobKind::Snapshot => {
                if self.saver.is_idle() {
                    self.saver.start(now_s, &self.datasets, None);
                    format!("saving {} datasets", self.datasets.len())
                } else {
                    "skipped: a save is still running".into()
                }
            }
            JobKind::Cleanup => {
                for ds in &mut self.datasets {
                    let t = ds.engine.stats().total;
                    tracing::info!(dataset = %ds.name, requests = t.requests, hits = t.hits,
                        api_calls = t.api_calls(), warm_fetches = t.warm_fetches(),
                        "daily rollover (totals since start)");
                    ds.roll_day();
                }
                format!("rolled over {} datasets", self.datasets.len())
            }
        };
        tracing::info!(job = ?job, %outcome, "scheduled job ran");
        self.schedule.record(job, outcome, now_s);
        self.publisher.mark_dirty();
    }

    fn on_saved(&mut self, done: Result<Saved, JoinError>) {
        let now_s = self.time.now_s();
        if let Some(outcome) = Saver::finished(done, &mut self.datasets, now_s) {
            self.schedule.record(JobKind::Snapshot, outcome, now_s);
            self.publisher.mark_dirty();
        }
    }

    /// Issues warming calls while slots, the gate, upstream's pause and the
    /// engines allow: cycle orders first, then engine orders round robin.
    fn pump(&mut self, now_s: f64) {
        if !self.warming.enabled || self.service.upstream().paused_until_s() > now_s {
            return;
        }
        while self.slots.has_free()
            && let Some(call) = self.cycles.next_call()
        {
            self.issue(call);
        }
        let n = self.datasets.len();
        let cal = self.schedule.calendar().clone();
        let (mut idle, mut i) = (0, self.next_dataset);
        while n > 0 && idle < n && self.slots.has_free() {
            let ix = i % n;
            i += 1;
            let ds = &mut self.datasets[ix];
            if !ds.gate.would_admit(&cal, now_s) {
                idle += 1;
                continue;
            }
            let Some(w) = ds.engine.poll_warm(now_s) else {
                idle += 1;
                continue;
            };
            ds.gate.admit(&cal, now_s);
            // The keys that ride in this order's batch call (module
            // `batch` of the engine), if the dataset has a batch endpoint.
            let mut call = vec![Order::from_engine(ix, &ds.engine, &w, None)];
            while let Some(r) = ds.engine.poll_ride_along(now_s) {
                call.push(Order::from_engine(ix, &ds.engine, &r, None));
            }
            self.issue(call);
            idle = 0;
        }
        self.next_dataset = if n == 0 { 0 } else { i % n };
    }

    /// Issues one warming call: `call`'s orders, all of one dataset.
    fn issue(&mut self, call: Vec<Order>) {
        let Some(first) = call.first() else { return };
        let ds = &mut self.datasets[first.dataset];
        for order in &call {
            ds.open_warm_order(&order.key);
        }
        let dataset = ds.name.clone();
        self.slots.spawn(&self.service, dataset, call);
    }

    /// Ends the orders of one warming call, the only place any order ends,
    /// whatever became of it: each outcome is counted, the engine stops
    /// counting it in flight, and its cycle, if any, counts it down.
    fn end_call(&mut self, call: Vec<Ended>) {
        // A fetch the call made or joined reported itself before the call
        // returned: the engine learns what was stored before the order ends.
        self.apply_events();
        let now_s = self.time.engine_now_s();
        // Whether the call reached the upstream: a fetch of any of its
        // keys reported itself, or its task was lost (aborted at shutdown,
        // panicked) and may have sent it: counted, so that the cost
        // account never undercounts.
        let call_made = call.iter().any(|e| {
            matches!(e.end, OrderEnd::Lost)
                || self.datasets[e.order.dataset].warm_order_called(&e.order.key)
        });
        for ended in call {
            self.end_order(now_s, ended, call_made);
        }
    }

    fn end_order(&mut self, now_s: f64, ended: Ended, call_made: bool) {
        let Ended { order, end } = ended;
        let ds = &mut self.datasets[order.dataset];
        end.tally(&mut ds.outcomes, &ds.name, &order.key);
        ds.end_warm_order(now_s, &order, call_made);
        if let Some(cycle) = order.cycle {
            let key = CycleKey {
                dataset: ds.name.to_string(),
                key: order.key,
                strategy: order.strategy.name(),
            };
            self.cycles.count_down(now_s, cycle, key, end.failure());
        }
        self.publisher.mark_dirty();
    }

    fn start_cycle(&mut self, now_s: f64, ask: CycleAsk<'_>) -> WarmReport {
        let enabled = self.warming.enabled;
        let report = self.cycles.start(now_s, &mut self.datasets, enabled, ask);
        self.publisher.mark_dirty();
        report
    }

    /// Answers a request from the monitoring API.
    fn command(&mut self, cmd: Command) {
        let now_s = self.time.now_s();
        match cmd {
            Command::Sync(reply) => {
                self.apply_events();
                self.tick(now_s);
                let _ = reply.send(self.publish_now());
            }
            Command::Warm {
                dataset,
                requests,
                reply,
            } => {
                self.apply_events();
                let (requests, honour) = match requests {
                    Some(r) => (r, Honour::Always),
                    None => (default_requests(&self.warming), Honour::EnabledOnly),
                };
                let ask = CycleAsk {
                    dataset: dataset.as_deref(),
                    requests: &requests,
                    honour,
                    reply: Some(reply),
                };
                self.start_cycle(now_s, ask);
                self.pump(now_s);
            }
            Command::Save(reply) => self.saver.start(now_s, &self.datasets, Some(reply)),
            Command::Patterns {
                dataset,
                limit,
                key,
                reply,
            } => {
                let look_ahead_s = self.warming.pre_market_look_ahead_s;
                let patterns = self
                    .datasets
                    .iter()
                    .filter(|ds| dataset.as_deref().is_none_or(|d| d == &*ds.name))
                    .map(|ds| Patterns::new(ds, now_s, look_ahead_s, limit, key.as_deref()))
                    .collect();
                let _ = reply.send(patterns);
            }
            Command::Purge {
                dataset,
                scope,
                reply,
            } => self.purge(dataset, scope, reply),
        }
    }

    /// Starts dropping the entries from the store ([`Purges`]); the
    /// engine forgets them once they are gone.
    fn purge(&mut self, dataset: String, scope: PurgeScope, reply: PurgeReply) {
        self.apply_events();
        let Some(ds) = self.datasets.iter().find(|d| *d.name == *dataset) else {
            let _ = reply.send(Err(PurgeError::UnknownDataset(dataset)));
            return;
        };
        // A key is purged under the name reads store it under.
        let scope = match scope {
            PurgeScope::Key { key } => match self.service.canonical_key(&dataset, &key) {
                Ok(key) => PurgeScope::Key {
                    key: key.to_string(),
                },
                Err(e) => {
                    let _ = reply.send(Err(PurgeError::InvalidKey(e.to_string())));
                    return;
                }
            },
            other => other,
        };
        self.purges
            .start(Arc::clone(self.service.store()), ds, scope, reply);
    }

    /// Builds and publishes the view now.
    pub(super) fn publish_now(&mut self) -> Arc<DriverSnapshot> {
        let now_s = self.time.now_s();
        let cal = self.schedule.calendar().clone();
        let counters = self.service.events().counters();
        let mut events = self.merger.figures();
        events.dropped_accesses = counters.dropped_accesses.load(Ordering::Relaxed);
        events.dropped_fetches = counters.dropped_fetches.load(Ordering::Relaxed);
        events.dropped_evictions = counters.dropped_evictions.load(Ordering::Relaxed);
        let paused_until_s = self.service.upstream().paused_until_s();
        let datasets = self
            .datasets
            .iter_mut()
            .map(|ds| {
                let gate = ds.gate.state(&cal, now_s);
                (ds.name.to_string(), DatasetView::new(ds, now_s, gate))
            })
            .collect();
        self.publisher.publish(DriverSnapshot {
            at_s: now_s,
            warming_enabled: self.warming.enabled,
            session: cal.session_at(now_s),
            outside_sessions: self.warming.outside_sessions,
            upstream_paused_until_s: (paused_until_s > now_s && paused_until_s.is_finite())
                .then_some(paused_until_s),
            upstream_quota_held: self
                .service
                .upstream()
                .quota_free_at_s(crate::upstream::Role::Warm)
                .is_some(),
            warms_in_flight: self.slots.len(),
            max_concurrent: self.slots.max(),
            cycle_queued: self.cycles.queued(),
            cycles: self.cycles.figures(),
            startup: self.startup.progress(),
            events,
            jobs: self.schedule.jobs().to_vec(),
            datasets,
        })
    }

    /// Shutdown: drop the cycle orders still queued, finish warms in
    /// flight, apply the last events, save every snapshot.
    async fn finish(mut self) -> Vec<SaveReport> {
        tracing::info!(in_flight = self.slots.len(), "warming driver stopping");
        for order in self.cycles.take_queued() {
            let end = OrderEnd::Dropped;
            self.end_call(vec![Ended { order, end }]);
        }
        self.finish_warms().await;
        self.apply_events();
        while let Some(done) = self.saver.next_done().await {
            self.on_saved(done);
        }
        let now_s = self.time.now_s();
        let saved = Saver::save_now(now_s, &mut self.datasets).await;
        self.publish_now();
        saved
    }

    /// Waits for the warms in flight, up to `shutdown_grace`; then aborts
    /// the rest. Every one ends through [`Driver::end_order`].
    async fn finish_warms(&mut self) {
        let deadline = Instant::now() + self.shutdown_grace;
        while !self.slots.is_empty() {
            match tokio::time::timeout_at(deadline, self.slots.next_ended()).await {
                Ok(Some(call)) => self.end_call(call),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        left = self.slots.len(),
                        "warms still in flight at shutdown: abandoned"
                    );
                    self.slots.abort_all();
                    while let Some(call) = self.slots.next_ended().await {
                        self.end_call(call);
                    }
                    break;
                }
            }
        }
    }
}
