//! The cycle book: warming cycles, the seed's `warm_popular`,
//! `warm_by_time_pattern`, `warm_trending`, `warm_predictive` and
//! `warm_sector` calls ([`super::DriverClient::warm`]), `POST /warming/run`
//! and the pre-market job.
//!
//! Each engine plans the cycle on its own budget
//! ([`prewarm_core::engine::Engine::plan_cycle`]): keys fresh or in flight
//! are skipped, and so are keys past the tokens left. The orders wait in
//! the book's queue for a warming slot (ahead of the engines' own orders);
//! the cycle's report is complete once every order has come back, and only
//! then is it sent to whoever asked, with its duration on the driver's
//! clock.
//!
//! Invariants: every order queued belongs to exactly one pending cycle
//! and is counted down exactly once (warmed, or failed with why: the call
//! failed, or the order was dropped at shutdown); a cycle with nothing to
//! fetch answers at once.

use std::collections::{HashMap, VecDeque};

use prewarm_core::engine::{CycleRequest, SkipReason};
use serde::Serialize;
use tokio::sync::oneshot;

use super::dataset::DatasetState;
use super::settings::DriverSettings;
use super::warm::Order;

/// What a warming cycle did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CycleKey {
    /// The dataset.
    pub dataset: String,
    /// The key.
    pub key: String,
    /// The strategy its fetch is charged to.
    pub strategy: &'static str,
}

/// One key a cycle skipped.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
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

/// Which strategies a cycle request honours: a job runs only the
/// strategies a dataset has enabled; an explicit request runs anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Honour {
    EnabledOnly,
    Always,
}

/// The pre-market cycle (and `POST /warming/run` without a strategy):
/// the popular keys, then those the time-of-day profile expects within
/// `warming.pre_market_look_ahead_s`, at most `pre_market_limit` each
/// (unset: the engine's `popular_limit`).
pub(super) fn default_requests(w: &DriverSettings) -> Vec<CycleRequest> {
    vec![
        CycleRequest::Popular {
            limit: w.pre_market_limit,
        },
        CycleRequest::TimePattern {
            look_ahead_s: w.pre_market_look_ahead_s,
            limit: w.pre_market_limit,
        },
    ]
}

/// A cycle asked for.
pub(super) struct CycleAsk<'a> {
    /// The dataset to warm; `None`: every dataset.
    pub(super) dataset: Option<&'a str>,
    /// What to warm.
    pub(super) requests: &'a [CycleRequest],
    /// Which strategies the requests run.
    pub(super) honour: Honour,
    /// Who gets the report once every order is back.
    pub(super) reply: Option<oneshot::Sender<WarmReport>>,
}

/// A cycle waiting for its orders.
struct Pending {
    started_s: f64,
    remaining: usize,
    report: WarmReport,
    reply: Option<oneshot::Sender<WarmReport>>,
}

/// The cycles of one driver: those waiting for their orders, and the
/// orders waiting for a warming slot.
#[derive(Default)]
pub(super) struct CycleBook {
    queue: VecDeque<Order>,
    pending: HashMap<u64, Pending>,
    next_id: u64,
    figures: CycleFigures,
}

impl CycleBook {
    /// The counters now.
    pub(super) fn figures(&self) -> CycleFigures {
        CycleFigures {
            in_progress: self.pending.len(),
            queued_fetches: self.queue.len(),
            ..self.figures
        }
    }

    /// Orders waiting for a warming slot.
    pub(super) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The next call to issue, first queued first: an order and the
    /// orders queued after it that ride along in its call.
    pub(super) fn next_call(&mut self) -> Option<Vec<Order>> {
        let first = self.queue.pop_front()?;
        let dataset = first.dataset;
        let mut call = vec![first];
        while let Some(next) = self.queue.front()
            && next.rides_along
            && next.dataset == dataset
        {
            call.extend(self.queue.pop_front());
        }
        Some(call)
    }

    /// Shutdown: takes every order still queued; none will be issued, and
    /// each must still be counted down.
    pub(super) fn take_queued(&mut self) -> Vec<Order> {
        self.queue.drain(..).collect()
    }

    /// Plans `ask` on `datasets` at `now_s` and queues the orders (or
    /// refuses: warming disabled, unknown dataset); the returned report
    /// lists what was skipped, and the full one goes to `ask.reply` once
    /// every order is back.
    pub(super) fn start(
        &mut self,
        now_s: f64,
        datasets: &mut [DatasetState],
        warming_enabled: bool,
        ask: CycleAsk<'_>,
    ) -> WarmReport {
        let mut report = WarmReport {
            strategies: ask.requests.iter().map(|r| r.strategy().name()).collect(),
            ..WarmReport::default()
        };
        report.refused = refusal(warming_enabled, datasets, ask.dataset);
        let id = self.next_id;
        if report.refused.is_none() {
            self.next_id += 1;
            self.figures.started += 1;
            for (ix, ds) in datasets.iter_mut().enumerate() {
                if ask.dataset.is_none_or(|d| d == &*ds.name) {
                    let ordered = self.plan(now_s, id, ix, ds, &ask, &mut report);
                    report.ordered += ordered;
                }
            }
        }
        let summary = report.clone();
        let pending = Pending {
            started_s: now_s,
            remaining: report.ordered,
            report,
            reply: ask.reply,
        };
        if pending.remaining == 0 {
            self.complete(now_s, pending);
        } else {
            self.pending.insert(id, pending);
        }
        summary
    }

    /// Starts a cycle of orders already planned (the start-up cycle's),
    /// charged to `strategies`: each is queued under the new cycle's id,
    /// and its report goes to `reply` once every order is back. Returns
    /// the id.
    pub(super) fn start_orders(
        &mut self,
        now_s: f64,
        strategies: Vec<&'static str>,
        orders: Vec<Order>,
        reply: Option<oneshot::Sender<WarmReport>>,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.figures.started += 1;
        let report = WarmReport {
            strategies,
            ordered: orders.len(),
            ..WarmReport::default()
        };
        for o in orders {
            self.queue.push_back(Order {
                cycle: Some(id),
                ..o
            });
        }
        let pending = Pending {
            started_s: now_s,
            remaining: report.ordered,
            report,
            reply,
        };
        if pending.remaining == 0 {
            self.complete(now_s, pending);
        } else {
            self.pending.insert(id, pending);
        }
        id
    }

    /// Keys warmed and failed so far by the pending cycle `id`; `None`
    /// once it is complete (or unknown).
    pub(super) fn counts(&self, id: u64) -> Option<(usize, usize)> {
        self.pending
            .get(&id)
            .map(|p| (p.report.warmed.len(), p.report.failed.len()))
    }

    /// Plans `ask`'s requests on one dataset, queues its orders under
    /// cycle `id` and adds its skipped keys to `report`; returns how many
    /// orders it queued.
    fn plan(
        &mut self,
        now_s: f64,
        id: u64,
        ix: usize,
        ds: &mut DatasetState,
        ask: &CycleAsk<'_>,
        report: &mut WarmReport,
    ) -> usize {
        let enabled = ds.engine.config().warming.strategies;
        let mut ordered = 0;
        for req in ask.requests {
            if ask.honour == Honour::EnabledOnly && !enabled.contains(req.strategy()) {
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
                self.queue
                    .push_back(Order::from_engine(ix, &ds.engine, &o, Some(id)));
                ordered += 1;
            }
        }
        ordered
    }

    /// Counts down one order of cycle `id`: `key` warmed, or failed with
    /// `failure`.
    pub(super) fn count_down(
        &mut self,
        now_s: f64,
        id: u64,
        key: CycleKey,
        failure: Option<String>,
    ) {
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        match failure {
            None => p.report.warmed.push(key),
            Some(error) => p.report.failed.push(FailedKey {
                dataset: key.dataset,
                key: key.key,
                strategy: key.strategy,
                error,
            }),
        }
        p.remaining -= 1;
        if p.remaining == 0
            && let Some(p) = self.pending.remove(&id)
        {
            self.complete(now_s, p);
        }
    }

    fn complete(&mut self, now_s: f64, mut p: Pending) {
        p.report.duration_ms = ((now_s - p.started_s) * 1000.0).max(0.0);
        if p.report.refused.is_none() {
            self.figures.completed += 1;
            self.figures.last = Some(CycleSummary {
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
    }
}

/// Why a cycle cannot run: warming disabled, or `dataset` unknown.
fn refusal(enabled: bool, datasets: &[DatasetState], dataset: Option<&str>) -> Option<String> {
    if !enabled {
        return Some("warming disabled".into());
    }
    if let Some(d) = dataset
        && !datasets.iter().any(|ds| &*ds.name == d)
    {
        return Some(format!("unknown dataset {d:?}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::dataset::test_dataset;
    use crate::events::AccessEvent;

    const T: f64 = 1_718_719_200.0;

    /// A dataset whose tracker saw A three times, B twice and C once.
    fn learned() -> Vec<DatasetState> {
        let mut ds = test_dataset();
        for (key, n) in [("A", 3), ("B", 2), ("C", 1)] {
            for _ in 0..n {
                ds.on_access(T, &AccessEvent::reported_miss("quote", key, T));
            }
        }
        vec![ds]
    }

    fn ask<'a>(
        dataset: Option<&'a str>,
        requests: &'a [CycleRequest],
        reply: oneshot::Sender<WarmReport>,
    ) -> CycleAsk<'a> {
        CycleAsk {
            dataset,
            requests,
            honour: Honour::Always,
            reply: Some(reply),
        }
    }

    fn key_of(o: &Order) -> CycleKey {
        CycleKey {
            dataset: "quote".into(),
            key: o.key.clone(),
            strategy: o.strategy.name(),
        }
    }

    #[test]
    fn a_cycle_answers_once_its_last_order_is_counted_down() {
        let mut datasets = learned();
        let mut book = CycleBook::default();
        let requests = [CycleRequest::Popular { limit: Some(2) }];
        let (tx, mut rx) = oneshot::channel();
        let summary = book.start(T, &mut datasets, true, ask(None, &requests, tx));
        assert_eq!((summary.ordered, book.queued()), (2, 2));
        let popular = prewarm_core::strategy::StrategyId::Popular.index();
        assert_eq!(datasets[0].cycle_fetches[popular], 2);
        let call = book.next_call().expect("queued");
        assert_eq!(call.len(), 1, "the test dataset has no batch endpoint");
        let first = &call[0];
        assert_eq!((first.key.as_str(), first.cycle), ("A", Some(0)));
        book.count_down(T + 1.0, 0, key_of(first), None);
        assert!(rx.try_recv().is_err(), "one order still out");
        assert_eq!(book.figures().in_progress, 1);
        let rest = book.take_queued();
        assert_eq!(rest.len(), 1);
        book.count_down(T + 2.0, 0, key_of(&rest[0]), Some("stopping".into()));
        let report = rx.try_recv().expect("answered");
        assert_eq!(report.warmed.len(), 1);
        assert_eq!(report.failed[0].key, "B");
        assert_eq!(report.failed[0].error, "stopping");
        assert_eq!(report.duration_ms, 2000.0);
        let f = book.figures();
        assert_eq!((f.started, f.completed, f.in_progress), (1, 1, 0));
        assert_eq!(f.last.map(|l| (l.warmed, l.failed)), Some((1, 1)));
    }

    #[test]
    fn a_refused_or_empty_cycle_answers_at_once() {
        let mut datasets = learned();
        let mut book = CycleBook::default();
        let requests = [CycleRequest::Popular { limit: Some(2) }];
        let (tx, mut rx) = oneshot::channel();
        book.start(T, &mut datasets, false, ask(None, &requests, tx));
        let report = rx.try_recv().expect("answered at once");
        assert_eq!(report.refused.as_deref(), Some("warming disabled"));
        let (tx, mut rx) = oneshot::channel();
        book.start(T, &mut datasets, true, ask(Some("nope"), &requests, tx));
        let report = rx.try_recv().expect("answered at once");
        assert_eq!(report.refused.as_deref(), Some("unknown dataset \"nope\""));
        let none = [CycleRequest::Popular { limit: Some(0) }];
        let (tx, mut rx) = oneshot::channel();
        book.start(T, &mut datasets, true, ask(None, &none, tx));
        assert_eq!(rx.try_recv().expect("answered at once").ordered, 0);
        let f = book.figures();
        assert_eq!((f.started, f.completed, book.queued()), (1, 1, 0));
    }
}
