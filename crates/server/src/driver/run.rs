//! The driver task: events in, timeouts, jobs, warming out, view published.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::cycle::{Cycles, Honour};
use super::dataset::DatasetState;
use super::persist::{self, SaveJob, SaveReport};
use super::schedule::{JobKind, Schedule};
use super::view::{DriverSnapshot, EventFigures};
use super::warm::WarmMeta;
use super::{Command, DriverOptions, DriverReport};
use crate::clock::Clock;
use crate::events::{AccessEvent, EventReceivers, EvictionEvent, FetchEvent};
use crate::service::CacheService;

/// The kinds of events, in the order they are applied at equal times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EventKind {
    Access,
    Fetch,
    Eviction,
}

/// Most events taken from one channel per wake-up.
const BATCH: usize = 4096;
/// Longest the driver sleeps without looking at the clock, seconds.
const MAX_SLEEP_S: f64 = 60.0;
/// When warming is blocked (slots full, gate shut, upstream paused), the
/// engine's "act now" is looked at again after this long, seconds.
const BLOCKED_RECHECK_S: f64 = 1.0;

pub(super) struct Parts {
    pub service: Arc<CacheService>,
    pub clock: Arc<dyn Clock>,
    pub opts: DriverOptions,
    pub datasets: Vec<DatasetState>,
    pub events: EventReceivers,
    pub cmds: mpsc::Receiver<Command>,
    pub stop: oneshot::Receiver<()>,
    pub view: watch::Sender<Arc<DriverSnapshot>>,
}

type SaveDone = (Vec<SaveReport>, Option<oneshot::Sender<Vec<SaveReport>>>);

pub(super) struct Driver {
    pub(super) service: Arc<CacheService>,
    clock: Arc<dyn Clock>,
    pub(super) opts: DriverOptions,
    pub(super) datasets: Vec<DatasetState>,
    index: HashMap<Arc<str>, usize>,
    events: EventReceivers,
    /// Store evictions received, waiting for [`Driver::apply_events`].
    evictions: Vec<EvictionEvent>,
    cmds: mpsc::Receiver<Command>,
    stop: oneshot::Receiver<()>,
    view: watch::Sender<Arc<DriverSnapshot>>,
    pub(super) warms: JoinSet<Result<crate::service::WarmOutcome, crate::service::WarmError>>,
    /// What each warming task in `warms` is for, by task id.
    pub(super) warm_meta: HashMap<tokio::task::Id, WarmMeta>,
    pub(super) cycles: Cycles,
    saves: JoinSet<SaveDone>,
    pub(super) schedule: Schedule,
    /// The latest clock reading seen (the driver's clock never goes back).
    last_s: f64,
    /// The latest instant handed to an engine; event times are clamped to
    /// it, so the engines see time as non-decreasing.
    engine_s: f64,
    figures: EventFigures,
    last_publish: Option<Instant>,
    dirty: bool,
    /// Dataset polled first next time (round robin).
    pub(super) next_dataset: usize,
}

impl Driver {
    pub(super) fn new(p: Parts) -> Self {
        let now_s = p.clock.now_s();
        let index = p
            .datasets
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.clone(), i))
            .collect();
        let schedule = Schedule::new(
            p.opts.calendar.clone(),
            p.opts.warming.pre_market_at,
            p.opts.warming.snapshot_interval_s,
            now_s,
        );
        Self {
            service: p.service,
            clock: p.clock,
            opts: p.opts,
            datasets: p.datasets,
            index,
            events: p.events,
            evictions: Vec::new(),
            cmds: p.cmds,
            stop: p.stop,
            view: p.view,
            warms: JoinSet::new(),
            warm_meta: HashMap::new(),
            cycles: Cycles::default(),
            saves: JoinSet::new(),
            schedule,
            last_s: now_s,
            engine_s: f64::NEG_INFINITY,
            figures: EventFigures::default(),
            last_publish: None,
            dirty: true,
            next_dataset: 0,
        }
    }

    pub(super) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// [`Driver::now_s`] for a call into an engine (events after it are
    /// clamped to it).
    pub(super) fn engine_now_s(&mut self) -> f64 {
        let now_s = self.now_s();
        self.engine_s = self.engine_s.max(now_s);
        now_s
    }

    /// The clock, never behind what the driver has already seen.
    pub(super) fn now_s(&mut self) -> f64 {
        self.last_s = self.last_s.max(self.clock.now_s());
        self.last_s
    }

    pub(super) async fn run(mut self) -> DriverReport {
        let mut accesses: Vec<AccessEvent> = Vec::with_capacity(BATCH);
        let mut fetches: Vec<FetchEvent> = Vec::with_capacity(BATCH);
        let (mut accesses_open, mut fetches_open, mut cmds_open) = (true, true, true);
        let mut evictions_open = true;
        loop {
            let now_s = self.now_s();
            self.tick(now_s);
            let deadline_s = self.deadline_s(now_s);
            let wait = Duration::from_secs_f64((deadline_s - now_s).clamp(0.0, MAX_SLEEP_S));
            let sleep = tokio::time::sleep_until(Instant::now() + wait);
            tokio::select! {
                biased;
                _ = &mut self.stop => break,
                n = self.events.accesses.recv_many(&mut accesses, BATCH), if accesses_open => {
                    accesses_open = n > 0;
                    self.apply_events(&mut accesses, &mut fetches);
                }
                n = self.events.fetches.recv_many(&mut fetches, BATCH), if fetches_open => {
                    fetches_open = n > 0;
                    self.apply_events(&mut accesses, &mut fetches);
                }
                n = self.events.evictions.recv_many(&mut self.evictions, BATCH), if evictions_open => {
                    evictions_open = n > 0;
                    self.apply_events(&mut accesses, &mut fetches);
                }
                Some(done) = self.warms.join_next_with_id(), if !self.warms.is_empty() => {
                    self.on_warm_joined(done);
                }
                Some(saved) = self.saves.join_next(), if !self.saves.is_empty() => {
                    self.on_saved(saved);
                }
                cmd = self.cmds.recv(), if cmds_open => match cmd {
                    Some(cmd) => self.command(cmd, &mut accesses, &mut fetches),
                    None => cmds_open = false,
                },
                _ = sleep => {}
            }
        }
        self.finish(&mut accesses, &mut fetches).await
    }

    /// Runs engine timeouts and jobs that are due, issues warms, publishes.
    pub(super) fn tick(&mut self, now_s: f64) {
        self.engine_s = self.engine_s.max(now_s);
        for ds in &mut self.datasets {
            if ds.engine.next_timeout().is_some_and(|t| t <= now_s) {
                ds.engine.handle_timeout(now_s);
                self.dirty = true;
            }
        }
        for job in self.schedule.take_due(now_s) {
            self.run_job(job, now_s);
        }
        self.pump(now_s);
        self.maybe_publish(now_s);
    }

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
        let paused_until_s = self.service.upstream().paused_until_s();
        if paused_until_s > now_s {
            d = d.min(paused_until_s.max(now_s + 0.01));
        }
        if !self.cycles.queue.is_empty() {
            d = d.min(now_s + BLOCKED_RECHECK_S);
        }
        if self.dirty {
            let wait_s = self.publish_wait().as_secs_f64();
            d = d.min(now_s + wait_s);
        }
        d
    }

    /// Takes whatever else is queued, then applies accesses, fetches and
    /// store evictions in time order (at equal times in that order: an
    /// access before the fetch its miss caused, a fetch before the eviction
    /// of what it stored).
    pub(super) fn apply_events(
        &mut self,
        accesses: &mut Vec<AccessEvent>,
        fetches: &mut Vec<FetchEvent>,
    ) {
        while accesses.len() < 4 * BATCH
            && let Ok(ev) = self.events.accesses.try_recv()
        {
            accesses.push(ev);
        }
        while fetches.len() < 4 * BATCH
            && let Ok(ev) = self.events.fetches.try_recv()
        {
            fetches.push(ev);
        }
        let mut evictions = std::mem::take(&mut self.evictions);
        while evictions.len() < 4 * BATCH
            && let Ok(ev) = self.events.evictions.try_recv()
        {
            evictions.push(ev);
        }
        if accesses.is_empty() && fetches.is_empty() && evictions.is_empty() {
            self.evictions = evictions;
            return;
        }
        let clock_s = self.now_s();
        let mut order: Vec<(f64, EventKind, usize)> =
            Vec::with_capacity(accesses.len() + fetches.len() + evictions.len());
        order.extend(
            accesses
                .iter()
                .enumerate()
                .map(|(i, e)| (e.at_s, EventKind::Access, i)),
        );
        order.extend(
            fetches
                .iter()
                .enumerate()
                .map(|(i, e)| (e.at_s, EventKind::Fetch, i)),
        );
        order.extend(
            evictions
                .iter()
                .enumerate()
                .map(|(i, e)| (e.at_s, EventKind::Eviction, i)),
        );
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut latest = self.engine_s;
        for (at_s, kind, i) in order {
            // Clamp: never before what the engines saw, never past the clock.
            let t = at_s.min(clock_s).max(latest);
            latest = t;
            match kind {
                EventKind::Access => {
                    let ev = &accesses[i];
                    if let Some(&d) = self.index.get(&ev.dataset) {
                        self.datasets[d].on_access(t, ev);
                        self.figures.accesses += 1;
                    }
                }
                EventKind::Fetch => {
                    let ev = &fetches[i];
                    if let Some(&d) = self.index.get(&ev.dataset) {
                        self.datasets[d].on_fetch(t, ev);
                        self.figures.fetches += 1;
                    }
                }
                EventKind::Eviction => {
                    let ev = &evictions[i];
                    if let Some(&d) = self.index.get(&ev.dataset) {
                        self.datasets[d].on_evicted(ev);
                        self.figures.evictions += 1;
                    }
                }
            }
        }
        self.engine_s = latest;
        accesses.clear();
        fetches.clear();
        evictions.clear();
        self.evictions = evictions;
        self.dirty = true;
    }

    fn run_job(&mut self, job: JobKind, now_s: f64) {
        let outcome = match job {
            JobKind::PreMarket => {
                let requests = self.default_cycle();
                let r = self.start_cycle(now_s, None, &requests, Honour::EnabledOnly, None);
                match r.refused {
                    Some(why) => format!("skipped: {why}"),
                    None => format!("ordered {} keys, skipped {}", r.ordered, r.skipped.len()),
                }
            }
            JobKind::Snapshot => {
                if self.saves.is_empty() {
                    self.start_save(now_s, None);
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
        self.schedule.record(job, outcome);
        self.dirty = true;
    }

    pub(super) fn start_save(
        &mut self,
        now_s: f64,
        reply: Option<oneshot::Sender<Vec<SaveReport>>>,
    ) {
        let jobs = self.save_jobs(now_s);
        self.saves
            .spawn_blocking(move || (persist::write_all(jobs), reply));
    }

    fn save_jobs(&self, now_s: f64) -> Vec<SaveJob> {
        self.datasets
            .iter()
            .enumerate()
            .map(|(index, ds)| SaveJob {
                index,
                dataset: ds.name.clone(),
                path: ds.path.clone(),
                bytes: ds.engine.snapshot(now_s),
            })
            .collect()
    }

    fn on_saved(&mut self, done: Result<SaveDone, tokio::task::JoinError>) {
        let (reports, reply) = match done {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "snapshot writer failed");
                return;
            }
        };
        self.record_saves(&reports);
        let failed = reports.iter().filter(|r| r.error.is_some()).count();
        let bytes: u64 = reports.iter().map(|r| r.bytes).sum();
        self.schedule.record(
            JobKind::Snapshot,
            format!(
                "saved {} datasets ({bytes} bytes), {failed} failed",
                reports.len() - failed
            ),
        );
        if let Some(reply) = reply {
            let _ = reply.send(reports);
        }
    }

    fn record_saves(&mut self, reports: &[SaveReport]) {
        let now_s = self.now_s();
        for r in reports {
            if let Some(ds) = self.datasets.get_mut(r.index) {
                match &r.error {
                    None => {
                        ds.snapshot.last_saved_s = Some(now_s);
                        ds.snapshot.last_saved_bytes = Some(r.bytes);
                    }
                    Some(e) => ds.snapshot.last_error = Some(e.clone()),
                }
            }
        }
        self.dirty = true;
    }

    fn publish_wait(&self) -> Duration {
        match self.last_publish {
            None => Duration::ZERO,
            Some(at) => self.opts.publish_every.saturating_sub(at.elapsed()),
        }
    }

    fn maybe_publish(&mut self, _now_s: f64) {
        if self.dirty && self.publish_wait().is_zero() {
            self.publish_now();
        }
    }

    /// Builds and publishes the view now.
    pub(super) fn publish_now(&mut self) -> Arc<DriverSnapshot> {
        let now_s = self.now_s();
        let cal = self.schedule.calendar().clone();
        let counters = self.service.events().counters();
        let mut figures = self.figures;
        figures.dropped_accesses = counters.dropped_accesses.load(Ordering::Relaxed);
        figures.dropped_fetches = counters.dropped_fetches.load(Ordering::Relaxed);
        figures.dropped_evictions = counters.dropped_evictions.load(Ordering::Relaxed);
        let paused_until_s = self.service.upstream().paused_until_s();
        let datasets = self
            .datasets
            .iter_mut()
            .map(|ds| {
                let gate = ds.gate.state(&cal, now_s);
                (ds.name.to_string(), ds.view(now_s, gate))
            })
            .collect();
        let snap = Arc::new(DriverSnapshot {
            at_s: now_s,
            warming_enabled: self.opts.warming.enabled,
            session: cal.session_at(now_s),
            outside_sessions: self.opts.warming.outside_sessions,
            upstream_paused_until_s: (paused_until_s > now_s).then_some(paused_until_s),
            warms_in_flight: self.warms.len(),
            max_concurrent: self.opts.warming.max_concurrent,
            cycle_queued: self.cycles.queue.len(),
            cycles: self.cycles.figures(),
            events: figures,
            jobs: self.schedule.jobs().to_vec(),
            datasets,
        });
        self.view.send_replace(snap.clone());
        self.last_publish = Some(Instant::now());
        self.dirty = false;
        snap
    }

    /// Shutdown: finish warms in flight, apply the last events, save.
    async fn finish(mut self, a: &mut Vec<AccessEvent>, f: &mut Vec<FetchEvent>) -> DriverReport {
        tracing::info!(in_flight = self.warms.len(), "warming driver stopping");
        let now_s = self.engine_now_s();
        self.drop_queued_cycles(now_s);
        let deadline = Instant::now() + self.opts.shutdown_grace;
        while !self.warms.is_empty() {
            match tokio::time::timeout_at(deadline, self.warms.join_next_with_id()).await {
                Ok(Some(done)) => self.on_warm_joined(done),
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        left = self.warms.len(),
                        "warms still in flight at shutdown: abandoned"
                    );
                    self.warms.abort_all();
                    while let Some(done) = self.warms.join_next_with_id().await {
                        self.on_warm_joined(done);
                    }
                    break;
                }
            }
        }
        self.apply_events(a, f);
        while let Some(done) = self.saves.join_next().await {
            self.on_saved(done);
        }
        let now_s = self.now_s();
        let jobs = self.save_jobs(now_s);
        let saved = match tokio::task::spawn_blocking(move || persist::write_all(jobs)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "snapshot writer failed at shutdown");
                Vec::new()
            }
        };
        self.record_saves(&saved);
        for r in &saved {
            if r.error.is_none() {
                tracing::info!(dataset = %r.dataset, file = %r.path, bytes = r.bytes, "snapshot saved");
            }
        }
        self.publish_now();
        DriverReport { saved }
    }
}
