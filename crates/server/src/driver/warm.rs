//! Warming calls: engine orders and cycle orders become
//! `CacheService::warm` calls in spawned tasks, at most
//! `warming.max_concurrent` at once; their outcomes come back to the
//! driver.

use std::sync::Arc;

use prewarm_core::cache::KeyId;
use prewarm_core::strategy::StrategyId;

use super::cycle::CycleOutcome;
use super::run::Driver;
use crate::service::{WarmError, WarmOutcome};

/// What a warming call in flight is for; kept by the driver under the
/// task's id, so that a task that panics or is aborted still ends its
/// order.
#[derive(Debug, Clone)]
pub(super) struct WarmMeta {
    dataset: usize,
    /// The cycle the order belongs to, if any.
    cycle: Option<u64>,
    strategy: StrategyId,
    key: String,
}

/// A finished warming task: its id, and the call's result.
pub(super) type WarmJoined =
    Result<(tokio::task::Id, Result<WarmOutcome, WarmError>), tokio::task::JoinError>;

impl Driver {
    /// Issues warming calls while slots, the gate, upstream's pause and the
    /// engines allow: cycle keys first, then engine orders round robin.
    pub(super) fn pump(&mut self, now_s: f64) {
        if !self.opts.warming.enabled || self.service.upstream().paused_until_s() > now_s {
            return;
        }
        let max = self.opts.warming.max_concurrent;
        while self.warms.len() < max
            && let Some(o) = self.cycles.queue.pop_front()
        {
            self.spawn_warm(o.dataset, o.key, Some(o.cycle), o.strategy);
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
            self.spawn_warm(ix, order.key, None, order.strategy);
            idle = 0;
        }
        self.next_dataset = if n == 0 { 0 } else { i % n };
    }

    fn spawn_warm(
        &mut self,
        dataset: usize,
        order: KeyId,
        cycle: Option<u64>,
        strategy: StrategyId,
    ) {
        let svc = Arc::clone(&self.service);
        let ds = &self.datasets[dataset];
        let (name, key) = (ds.name.clone(), ds.engine.keys().name(order).to_string());
        let meta = WarmMeta {
            dataset,
            cycle,
            strategy,
            key: key.clone(),
        };
        let task = self
            .warms
            .spawn(async move { svc.warm(&name, &key, strategy).await });
        self.warm_meta.insert(task.id(), meta);
    }

    /// Applies a finished warming call.
    pub(super) fn on_warm_joined(&mut self, joined: WarmJoined) {
        // `None` inside: the task itself panicked or was cancelled.
        let (id, result) = match joined {
            Ok((id, r)) => (id, Some(r)),
            Err(e) => {
                tracing::error!(error = %e, "warming task failed");
                (e.id(), None)
            }
        };
        let Some(done) = self.warm_meta.remove(&id) else {
            return;
        };
        let now_s = self.engine_now_s();
        let ds = &mut self.datasets[done.dataset];
        // A fetch this call made reports itself through its FetchEvent;
        // anything else ends the engine's order without storing.
        let stored_by_this_call = match &result {
            Some(Ok(WarmOutcome::Fetched { .. })) => {
                ds.outcomes.fetched += 1;
                true
            }
            Some(Ok(WarmOutcome::Joined { .. })) => {
                ds.outcomes.joined += 1;
                false
            }
            Some(Err(WarmError::Paused { until_s })) => {
                ds.outcomes.paused += 1;
                tracing::debug!(dataset = %ds.name, key = %done.key, until_s, "warming paused by upstream 429");
                false
            }
            Some(Err(e)) => {
                ds.outcomes.failed += 1;
                tracing::debug!(dataset = %ds.name, key = %done.key, error = %e, "warming fetch failed");
                false
            }
            None => {
                ds.outcomes.failed += 1;
                false
            }
        };
        if !stored_by_this_call {
            ds.warm_ended_without_store(now_s, &done.key, done.strategy);
        }
        if let Some(id) = done.cycle {
            let outcome = match result {
                Some(Ok(_)) => CycleOutcome::Warmed,
                Some(Err(e)) => CycleOutcome::Failed(e.to_string()),
                None => CycleOutcome::Failed("the warming task panicked or was cancelled".into()),
            };
            self.on_cycle_fetch(now_s, id, done.dataset, &done.key, done.strategy, outcome);
        }
        self.mark_dirty();
    }
}
