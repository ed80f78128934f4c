//! Restarts in replay (`prewarm replay --restart-at`): at each instant the
//! process stops and a new one starts on its snapshot, exactly as the
//! daemon restarts with the memory store. The old engine handles every
//! event due up to the instant, then writes its snapshot
//! ([`Engine::snapshot`]: what it learned, and which entries it held); a
//! new engine of the same config restores it. The cache and the fetches in
//! flight are gone (a fetch in flight counted its call and never lands);
//! the learned state (tracker, model, price, cost account) is kept. With
//! start-up warming on, the new engine then plans its start-up cycle
//! ([`Engine::plan_startup`]) and its fetches start at the instant.
//!
//! The figures of a run across restarts add the counters of its engines.
//! What restarts cost is measured against the same run without restarts
//! (module `recovery`).

use crate::flights::{Coalescing, Flights};
use crate::trace::Trace;
use crate::universe::{Membership, apply_universe};
use chrono::NaiveTime;
use prewarm_core::calendar::ExchangeCalendar;
use prewarm_core::engine::{Engine, EngineConfig};
use prewarm_core::snapshot::SnapshotError;
use prewarm_core::stats::Counters;
use serde::Serialize;

mod recovery;
pub use recovery::{
    HITS_LOST_HORIZON_S, RECOVERY_TOLERANCE, RECOVERY_WINDOW_S, RestartFigures, RestartOutcome,
    RestartReplayError, RestartReport, StartupRuns, render, replay_restarts,
};

/// When the replayed process restarts.
#[derive(Debug, Clone, PartialEq)]
pub enum RestartSchedule {
    /// At these instants, Unix seconds (`T1,T2,...`).
    At(Vec<f64>),
    /// Every trading day at this exchange-local time (`daily@HH:MM`).
    Daily(NaiveTime),
}

/// A `--restart-at` value that cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--restart-at {given:?}: {problem} (expected T1,T2,... in Unix seconds or daily@HH:MM)")]
pub struct RestartScheduleError {
    /// The value given.
    pub given: String,
    /// What is wrong with it.
    pub problem: String,
}

impl std::str::FromStr for RestartSchedule {
    type Err = RestartScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |problem: String| RestartScheduleError {
            given: s.to_string(),
            problem,
        };
        if let Some(hhmm) = s.trim().strip_prefix("daily@") {
            return NaiveTime::parse_from_str(hhmm, "%H:%M")
                .map(RestartSchedule::Daily)
                .map_err(|e| bad(format!("time {hhmm:?}: {e}")));
        }
        let mut at = Vec::new();
        for part in s.split(',') {
            let t: f64 = part
                .trim()
                .parse()
                .map_err(|e| bad(format!("instant {part:?}: {e}")))?;
            if !t.is_finite() {
                return Err(bad(format!("instant {part:?} is not finite")));
            }
            at.push(t);
        }
        at.sort_by(f64::total_cmp);
        // One restart per instant: a repeated instant is the same restart.
        at.dedup();
        Ok(RestartSchedule::At(at))
    }
}

impl RestartSchedule {
    /// The instants in `(first_s, last_s]`, in order (`cal` gives the
    /// exchange time and the trading days of `daily@`).
    pub fn instants(&self, first_s: f64, last_s: f64, cal: &ExchangeCalendar) -> Vec<f64> {
        match self {
            RestartSchedule::At(at) => at
                .iter()
                .copied()
                .filter(|&t| t > first_s && t <= last_s)
                .collect(),
            RestartSchedule::Daily(at) => {
                let mut out = Vec::new();
                let mut t = cal.next_local_time(first_s, *at, true);
                while t <= last_s {
                    out.push(t);
                    t = cal.next_local_time(t, *at, true);
                }
                out
            }
        }
    }
}

/// Whether a restarted process runs its start-up cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Startup {
    /// It plans and performs its start-up cycle.
    On,
    /// It waits for traffic (the daemon's `warming.startup = "off"`).
    Off,
}

impl Startup {
    /// `on` or `off`.
    pub fn name(self) -> &'static str {
        match self {
            Startup::On => "on",
            Startup::Off => "off",
        }
    }
}

/// What one restart did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartEvent {
    /// When, Unix seconds.
    pub at_s: f64,
    /// Fetches its start-up cycle made.
    pub startup_fetches: usize,
}

/// Restarts one replayed run at its instants.
#[derive(Debug)]
pub struct Restarter<'a> {
    instants: Vec<f64>,
    next: usize,
    startup: Startup,
    config: EngineConfig,
    trace: &'a Trace,
    universe: &'a [Membership],
    /// The counters of the engines replaced so far.
    carried: Counters,
    coalescing: Coalescing,
    /// One per restart made.
    pub events: Vec<RestartEvent>,
}

impl<'a> Restarter<'a> {
    /// Restarts at `instants` (sorted) of engines of `config` replaying
    /// `trace` with `universe`.
    pub fn new(
        instants: Vec<f64>,
        startup: Startup,
        config: EngineConfig,
        trace: &'a Trace,
        universe: &'a [Membership],
    ) -> Self {
        Restarter {
            instants,
            next: 0,
            startup,
            config,
            trace,
            universe,
            carried: Counters::default(),
            coalescing: Coalescing::default(),
            events: Vec::new(),
        }
    }

    /// A new engine as a replay makes it: the trace's keys first, in
    /// trace order, then the universe's.
    pub fn fresh_engine(&self) -> Result<Engine, prewarm_core::engine::ConfigError> {
        let mut e = Engine::new(self.config.clone())?;
        for k in &self.trace.keys {
            e.intern(k);
        }
        apply_universe(&mut e, self.universe);
        Ok(e)
    }

    /// Makes every restart due at or before `t`; whether `engine` was
    /// replaced (its key ids changed).
    pub fn restart_due(
        &mut self,
        engine: &mut Engine,
        flights: &mut Flights,
        t: f64,
    ) -> Result<bool, SnapshotError> {
        let mut replaced = false;
        while let Some(&at_s) = self.instants.get(self.next) {
            if at_s > t {
                break;
            }
            self.next += 1;
            self.restart(engine, flights, at_s)?;
            replaced = true;
        }
        Ok(replaced)
    }

    fn restart(
        &mut self,
        engine: &mut Engine,
        flights: &mut Flights,
        at_s: f64,
    ) -> Result<(), SnapshotError> {
        flights.run_until(engine, at_s);
        self.carried.merge(&engine.stats().total);
        let c = flights.coalescing();
        self.coalescing.requests += c.requests;
        self.coalescing.wait_s += c.wait_s;
        let saved = engine.snapshot(at_s);
        let mut next = self
            .fresh_engine()
            .map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        next.restore(&saved)?;
        *flights = Flights::new(next.config().upstream_latency_s);
        let mut startup_fetches = 0;
        if self.startup == Startup::On {
            for order in next.plan_startup(at_s).orders {
                flights.perform(&mut next, at_s, order);
                startup_fetches += 1;
            }
        }
        *engine = next;
        self.events.push(RestartEvent {
            at_s,
            startup_fetches,
        });
        Ok(())
    }

    /// The counters of the whole run: the replaced engines' and `last`'s.
    pub fn total(&self, last: &Engine) -> Counters {
        let mut c = self.carried;
        c.merge(&last.stats().total);
        c
    }

    /// Requests coalesced in the processes replaced so far.
    pub fn coalescing(&self) -> Coalescing {
        self.coalescing
    }
}

#[cfg(test)]
mod tests;
