//! Warming calls: engine orders and cycle keys become `CacheService::warm`
//! calls in spawned tasks, at most `warming.max_concurrent` at once; their
//! outcomes come back to the driver.

use std::sync::Arc;

use prewarm_core::cache::KeyId;
use prewarm_core::strategy::StrategyId;

use super::run::Driver;
use super::{CycleKey, CycleReport};
use crate::service::{WarmError, WarmOutcome};

/// A key a cycle wants warmed.
#[derive(Debug, Clone)]
pub(super) struct CycleOrder {
    dataset: usize,
    key: String,
    strategy: StrategyId,
}

/// A finished warming call.
#[derive(Debug)]
pub(super) struct WarmDone {
    dataset: usize,
    /// The engine's key id for an engine order; `None` for a cycle key.
    order: Option<KeyId>,
    strategy: StrategyId,
    key: String,
    result: Result<WarmOutcome, WarmError>,
}

impl Driver {
    /// Issues warming calls while slots, the gate, upstream's pause and the
    /// engines allow: cycle keys first, then engine orders round robin.
    pub(super) fn pump(&mut self, now_s: f64) {
        if !self.opts.warming.enabled || self.service.upstream().paused_until_s() > now_s {
            return;
        }
        let max = self.opts.warming.max_concurrent;
        while self.warms.len() < max
            && let Some(o) = self.cycle_queue.pop_front()
        {
            self.datasets[o.dataset].manual[o.strategy.index()] += 1;
            self.spawn_warm(o.dataset, None, o.strategy, o.key);
        }
        let n = self.datasets.len();
        let cal = self.schedule.calendar().clone();
        let (mut idle, mut i) = (0, self.next_dataset);
        while n > 0 && idle < n && self.warms.len() < max {
            let ix = i % n;
            i += 1;
            let ds = &mut self.datasets[ix];
            if !ds.gate.would_admit(&cal, now_s) {
                idle += 1;
                continue;
            }
            let Some(order) = ds.engine.poll_warm(now_s) else {
                idle += 1;
                continue;
            };
            ds.gate.admit(&cal, now_s);
            let key = ds.engine.keys().name(order.key).to_string();
            self.spawn_warm(ix, Some(order.key), order.strategy, key);
            idle = 0;
        }
        self.next_dataset = if n == 0 { 0 } else { i % n };
    }

    fn spawn_warm(
        &mut self,
        dataset: usize,
        order: Option<KeyId>,
        strategy: StrategyId,
        key: String,
    ) {
        let svc = Arc::clone(&self.service);
        let name = self.datasets[dataset].name.clone();
        self.warms.spawn(async move {
            let result = svc.warm(&name, &key, strategy.name()).await;
            WarmDone {
                dataset,
                order,
                strategy,
                key,
                result,
            }
        });
    }

    /// Applies a finished warming call.
    pub(super) fn on_warm_joined(&mut self, done: Result<WarmDone, tokio::task::JoinError>) {
        let done = match done {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "warming task failed");
                return;
            }
        };
        let now_s = self.engine_now_s();
        let ds = &mut self.datasets[done.dataset];
        // A fetch this call made reports itself through its FetchEvent;
        // anything else ends the engine's order without storing.
        let stored_by_this_call = match &done.result {
            Ok(WarmOutcome::Fetched { .. }) => {
                ds.outcomes.fetched += 1;
                true
            }
            Ok(WarmOutcome::Joined { .. }) => {
                ds.outcomes.joined += 1;
                false
            }
            Err(WarmError::Paused { until_s }) => {
                ds.outcomes.paused += 1;
                tracing::debug!(dataset = %ds.name, key = %done.key, until_s, "warming paused by upstream 429");
                false
            }
            Err(e) => {
                ds.outcomes.failed += 1;
                tracing::debug!(dataset = %ds.name, key = %done.key, error = %e, "warming fetch failed");
                false
            }
        };
        if let (false, Some(key)) = (stored_by_this_call, done.order) {
            ds.warm_ended_without_store(now_s, key, done.strategy);
        }
        self.mark_dirty();
    }

    /// Queues a cycle on every dataset: popular and upcoming keys not
    /// fresh, at most `pre_market_limit` each, skipping keys queued already.
    /// `only` keeps one strategy's keys.
    pub(super) fn queue_cycle(&mut self, now_s: f64, only: Option<StrategyId>) -> CycleReport {
        let w = &self.opts.warming;
        let mut report = CycleReport {
            strategy: only.map(StrategyId::name),
            ..CycleReport::default()
        };
        if !w.enabled {
            report.skipped = Some("warming disabled".into());
            return report;
        }
        if let Some(s) = only
            && !matches!(s, StrategyId::Popular | StrategyId::Time)
        {
            report.skipped = Some(format!(
                "cycles warm popular and time keys only, not {}",
                s.name()
            ));
            return report;
        }
        let (limit, look_ahead_s) = (w.pre_market_limit, w.pre_market_look_ahead_s);
        for (ix, ds) in self.datasets.iter().enumerate() {
            let mut picked = Vec::new();
            let keys = ds.cycle_keys(now_s, limit, look_ahead_s);
            for (key, strategy) in keys
                .into_iter()
                .filter(|(_, s)| only.is_none_or(|o| o == *s))
            {
                let dup = self
                    .cycle_queue
                    .iter()
                    .any(|o| o.dataset == ix && o.key == key);
                if !dup {
                    picked.push(CycleKey {
                        key: key.clone(),
                        strategy: strategy.name(),
                    });
                    self.cycle_queue.push_back(CycleOrder {
                        dataset: ix,
                        key,
                        strategy,
                    });
                }
            }
            report.queued.insert(ds.name.to_string(), picked.len());
            report.keys.insert(ds.name.to_string(), picked);
        }
        self.mark_dirty();
        report
    }
}
