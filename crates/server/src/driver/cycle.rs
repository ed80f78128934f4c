//! Warming cycles: the seed's `warm_popular`, `warm_by_time_pattern`,
//! `warm_trending`, `warm_predictive` and `warm_sector` calls
//! ([`super::DriverClient::warm`]), `POST /warming/run` and the
//! pre-market job.
//!
//! Each engine plans the cycle on its own budget
//! ([`prewarm_core::engine::Engine::plan_cycle`]): keys fresh or in flight
//! are skipped, and so are keys past the tokens left. The orders wait in a
//! queue for a warming slot (ahead of the engines' own orders); the
//! cycle's report is complete once every order has come back, and only
//! then is it sent to whoever asked, with its duration on the driver's
//! clock.
//!
//! Invariants: every order queued belongs to exactly one pending cycle
//! and is counted down exactly once (fetched, joined, failed, or dropped
//! at shutdown); a cycle with nothing to fetch answers at once.

use std::collections::{HashMap, VecDeque};

use prewarm_core::cache::KeyId;
use prewarm_core::engine::{CycleRequest, SkipReason};
use prewarm_core::strategy::StrategyId;
use serde::Serialize;
use tokio::sync::oneshot;

use super::run::Driver;

/// What a warming cycle did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WarmReport {
    /// The strategies the cycle ran (its fetches are charged to them).
    pub strategies: Vec<&'static str>,
    /// Fetches the cycle made (warmed plus failed).
    pub ordered: usize,
    /// Keys fetched (or joined to a fetch in flight): fresh now.
    pub warmed: Vec<CycleKey>,
    /// Keys not fetched: fresh already, in flight, or no budget left.
    pub skipped: Vec<SkippedKey>,
    /// Keys whose fetch failed, with the error.
    pub failed: Vec<FailedKey>,
    /// From the request to the last fetch's return, milliseconds.
    pub duration_ms: f64,
    /// Why the cycle did not run at all, if so (warming disabled, unknown
    /// dataset, driver stopping).
    pub refused: Option<String>,
}

/// One key a cycle warmed.
#[derive(Debug, Clone, Serialize)]
pub struct CycleKey {
    /// The dataset.
    pub dataset: String,
    /// The key.
    pub key: String,
    /// The strategy its fetch is charged to.
    pub strategy: &'static str,
}

/// One key a cycle skipped.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedKey {
    /// The dataset.
    pub dataset: String,
    /// The key.
    pub key: String,
    /// The strategy that picked it.
    pub strategy: &'static str,
    /// Why it was not fetched.
    pub reason: SkipReason,
}

/// One key whose cycle fetch failed.
#[derive(Debug, Clone, Serialize)]
pub struct FailedKey {
    /// The dataset.
    pub dataset: String,
    /// The key.
    pub key: String,
    /// The strategy charged.
    pub strategy: &'static str,
    /// What went wrong (upstream error, timeout, 429 pause, shutdown).
    pub error: String,
}

/// Cycle counters, for `/warming/status`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CycleFigures {
    /// Cycles started since the daemon started.
    pub started: u64,
    /// Cycles whose every fetch came back.
    pub completed: u64,
    /// Cycles still waiting for fetches.
    pub in_progress: usize,
    /// Cycle fetches waiting for a warming slot.
    pub queued_fetches: usize,
    /// The last completed cycle: keys warmed, skipped, failed.
    pub last: Option<CycleSummary>,
}

/// The counts of one completed cycle.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CycleSummary {
    /// When it completed, unix seconds.
    pub at_s: f64,
    /// Keys warmed.
    pub warmed: usize,
    /// Keys skipped.
    pub skipped: usize,
    /// Keys failed.
    pub failed: usize,
    /// Its duration, milliseconds.
    pub duration_ms: f64,
}

/// A cycle order waiting for a warming slot.
#[derive(Debug, Clone, Copy)]
pub(super) struct CycleOrder {
    pub dataset: usize,
    pub key: KeyId,
    pub strategy: StrategyId,
    pub cycle: u64,
}

struct Pending {
    started_s: f64,
    remaining: usize,
    report: WarmReport,
    reply: Option<oneshot::Sender<WarmReport>>,
}

/// The cycles of one driver.
#[derive(Default)]
pub(super) struct Cycles {
    pub queue: VecDeque<CycleOrder>,
    pending: HashMap<u64, Pending>,
    next_id: u64,
    figures: CycleFigures,
}

impl Cycles {
    /// The counters now.
    pub fn figures(&self) -> CycleFigures {
        CycleFigures {
            in_progress: self.pending.len(),
            queued_fetches: self.queue.len(),
            ..self.figures
        }
    }
}

/// How a cycle fetch ended.
pub(super) enum CycleOutcome {
    Warmed,
    Failed(String),
}

/// Which strategies a cycle request honours: a job runs only the
/// strategies a dataset has enabled; an explicit request runs anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Honour {
    EnabledOnly,
    Always,
}

impl Driver {
    /// The pre-market cycle (and `POST /warming/run` without a strategy):
    /// the popular keys, then those the time-of-day profile expects within
    /// `warming.pre_market_look_ahead_s`, at most `pre_market_limit` each.
    pub(super) fn default_cycle(&self) -> Vec<CycleRequest> {
        let w = &self.opts.warming;
        vec![
            CycleRequest::Popular {
                limit: Some(w.pre_market_limit),
            },
            CycleRequest::TimePattern {
                look_ahead_s: w.pre_market_look_ahead_s,
                limit: Some(w.pre_market_limit),
            },
        ]
    }

    /// Plans `requests` on every dataset (or `dataset` alone) and queues
    /// the orders; `reply` gets the report once they are all back.
    pub(super) fn start_cycle(
        &mut self,
        now_s: f64,
        dataset: Option<&str>,
        requests: &[CycleRequest],
        honour: Honour,
        reply: Option<oneshot::Sender<WarmReport>>,
    ) -> WarmReport {
        let mut report = WarmReport {
            strategies: requests.iter().map(|r| r.strategy().name()).collect(),
            ..WarmReport::default()
        };
        report.refused = self.cycle_refusal(dataset);
        let id = self.cycles.next_id;
        let mut remaining = 0;
        if report.refused.is_none() {
            self.cycles.next_id += 1;
            self.cycles.figures.started += 1;
            for (ix, ds) in self.datasets.iter_mut().enumerate() {
                if dataset.is_some_and(|d| d != &*ds.name) {
                    continue;
                }
                let enabled = ds.engine.config().strategies;
                for req in requests {
                    if honour == Honour::EnabledOnly && !enabled.contains(req.strategy()) {
                        continue;
                    }
                    let plan = ds.engine.plan_cycle(now_s, req);
                    let strategy = plan.strategy.name();
                    for (key, reason) in plan.skipped {
                        report.skipped.push(SkippedKey {
                            dataset: ds.name.to_string(),
                            key: ds.engine.keys().name(key).to_string(),
                            strategy,
                            reason,
                        });
                    }
                    for o in plan.orders {
                        ds.cycle_fetches[o.strategy.index()] += 1;
                        remaining += 1;
                        self.cycles.queue.push_back(CycleOrder {
                            dataset: ix,
                            key: o.key,
                            strategy: o.strategy,
                            cycle: id,
                        });
                    }
                }
            }
        }
        self.mark_dirty();
        report.ordered = remaining;
        let summary = report.clone();
        let pending = Pending {
            started_s: now_s,
            remaining,
            report,
            reply,
        };
        if remaining == 0 {
            self.complete_cycle(now_s, pending);
        } else {
            self.cycles.pending.insert(id, pending);
        }
        summary
    }

    fn cycle_refusal(&self, dataset: Option<&str>) -> Option<String> {
        if !self.opts.warming.enabled {
            return Some("warming disabled".into());
        }
        if let Some(d) = dataset
            && !self.datasets.iter().any(|ds| &*ds.name == d)
        {
            return Some(format!("unknown dataset {d:?}"));
        }
        None
    }

    /// Counts down one order of cycle `id`.
    pub(super) fn on_cycle_fetch(
        &mut self,
        now_s: f64,
        id: u64,
        dataset: usize,
        key: &str,
        strategy: StrategyId,
        outcome: CycleOutcome,
    ) {
        let Some(p) = self.cycles.pending.get_mut(&id) else {
            return;
        };
        let (dataset, strategy) = (self.datasets[dataset].name.to_string(), strategy.name());
        let key = key.to_string();
        match outcome {
            CycleOutcome::Warmed => p.report.warmed.push(CycleKey {
                dataset,
                key,
                strategy,
            }),
            CycleOutcome::Failed(error) => p.report.failed.push(FailedKey {
                dataset,
                key,
                strategy,
                error,
            }),
        }
        p.remaining -= 1;
        if p.remaining == 0
            && let Some(p) = self.cycles.pending.remove(&id)
        {
            self.complete_cycle(now_s, p);
        }
    }

    fn complete_cycle(&mut self, now_s: f64, mut p: Pending) {
        p.report.duration_ms = ((now_s - p.started_s) * 1000.0).max(0.0);
        if p.report.refused.is_none() {
            self.cycles.figures.completed += 1;
            self.cycles.figures.last = Some(CycleSummary {
                at_s: now_s,
                warmed: p.report.warmed.len(),
                skipped: p.report.skipped.len(),
                failed: p.report.failed.len(),
                duration_ms: p.report.duration_ms,
            });
        }
        tracing::info!(
            strategies = ?p.report.strategies,
            warmed = p.report.warmed.len(),
            skipped = p.report.skipped.len(),
            failed = p.report.failed.len(),
            duration_ms = p.report.duration_ms,
            refused = p.report.refused.as_deref().unwrap_or(""),
            "warming cycle done"
        );
        if let Some(reply) = p.reply.take() {
            let _ = reply.send(p.report);
        }
        self.mark_dirty();
    }

    /// Shutdown: the orders still queued are never made. Each ends in its
    /// engine and fails in its cycle's report.
    pub(super) fn drop_queued_cycles(&mut self, now_s: f64) {
        while let Some(o) = self.cycles.queue.pop_front() {
            let ds = &mut self.datasets[o.dataset];
            let key = ds.engine.keys().name(o.key).to_string();
            ds.warm_ended_without_store(now_s, &key, o.strategy);
            let outcome = CycleOutcome::Failed("the daemon is stopping".into());
            self.on_cycle_fetch(now_s, o.cycle, o.dataset, &key, o.strategy, outcome);
        }
    }
}
