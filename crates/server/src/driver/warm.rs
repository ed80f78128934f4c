//! The warm slots: warm orders (the engines' own and the cycles') become
//! `CacheService::warm` calls in spawned tasks, at most
//! `warming.max_concurrent` at once. Each comes back as one [`Ended`]
//! order, whatever happened to its task (returned, panicked, aborted), and
//! the driver ends it in one place.

use std::collections::HashMap;
use std::sync::Arc;

use prewarm_core::strategy::StrategyId;
use tokio::task::{self, JoinSet};

use super::dataset::WarmOutcomes;
use crate::service::{CacheService, WarmError, WarmOutcome};

/// One warm order the driver performs: an engine's order or a cycle's.
#[derive(Debug, Clone)]
pub(super) struct Order {
    /// Index of the dataset in the driver.
    pub(super) dataset: usize,
    /// The key, by name: its engine id may be released and reused while
    /// the order is out.
    pub(super) key: String,
    /// The strategy the fetch is charged to.
    pub(super) strategy: StrategyId,
    /// The cycle the order belongs to, if any.
    pub(super) cycle: Option<u64>,
    /// When the engine issued it (and counted its call), engine seconds.
    pub(super) issued_at_s: f64,
}

/// What a warming call returned.
type WarmCall = Result<WarmOutcome, WarmError>;

/// How a warm order ended.
#[derive(Debug)]
pub(super) enum OrderEnd {
    /// Its warming call returned.
    Returned(WarmCall),
    /// Its warming task panicked or was aborted.
    Lost,
    /// It was never issued: the daemon stopped while it waited for a slot.
    Dropped,
}

/// An order and how it ended.
#[derive(Debug)]
pub(super) struct Ended {
    /// The order.
    pub(super) order: Order,
    /// How it ended.
    pub(super) end: OrderEnd,
}

impl OrderEnd {
    /// Counts what the call returned in `outcomes` (a dropped order made no
    /// call) and logs a pause or failure of `dataset`/`key`.
    pub(super) fn tally(&self, outcomes: &mut WarmOutcomes, dataset: &str, key: &str) {
        match self {
            OrderEnd::Returned(Ok(WarmOutcome::Fetched { .. })) => outcomes.fetched += 1,
            OrderEnd::Returned(Ok(WarmOutcome::Joined { .. })) => outcomes.joined += 1,
            OrderEnd::Returned(Err(WarmError::Paused { until_s })) => {
                outcomes.paused += 1;
                tracing::debug!(dataset = %dataset, key = %key, until_s, "warming paused by upstream 429");
            }
            OrderEnd::Returned(Err(e)) => {
                outcomes.failed += 1;
                tracing::debug!(dataset = %dataset, key = %key, error = %e, "warming fetch failed");
            }
            OrderEnd::Lost => outcomes.failed += 1,
            OrderEnd::Dropped => {}
        }
    }

    /// Why the order warmed nothing, as a cycle reports it; `None` when it
    /// warmed its key (fetched, or joined a fetch in flight).
    pub(super) fn failure(&self) -> Option<String> {
        match self {
            OrderEnd::Returned(Ok(_)) => None,
            OrderEnd::Returned(Err(e)) => Some(e.to_string()),
            OrderEnd::Lost => Some("the warming task panicked or was cancelled".into()),
            OrderEnd::Dropped => Some("the daemon is stopping".into()),
        }
    }
}

/// The warming calls in flight, each with its order.
pub(super) struct WarmSlots {
    /// Most calls in flight at once (`warming.max_concurrent`, by
    /// default upstream's limit).
    max: usize,
    calls: JoinSet<WarmCall>,
    /// The order of each call in `calls`, by task id, so that a task that
    /// panics or is aborted still ends its order.
    orders: HashMap<task::Id, Order>,
}

impl WarmSlots {
    /// Slots for at most `max_concurrent` calls in flight.
    pub(super) fn new(max_concurrent: usize) -> Self {
        Self {
            max: max_concurrent,
            calls: JoinSet::new(),
            orders: HashMap::new(),
        }
    }

    /// Most calls in flight at once.
    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// Calls in flight.
    pub(super) fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether no call is in flight.
    pub(super) fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Whether another call may be issued.
    pub(super) fn has_free(&self) -> bool {
        self.calls.len() < self.max
    }

    /// Issues the warming call of `order` on `service`, dataset `dataset`.
    pub(super) fn spawn(&mut self, service: &Arc<CacheService>, dataset: Arc<str>, order: Order) {
        let svc = Arc::clone(service);
        let (key, strategy) = (order.key.clone(), order.strategy);
        let task = self
            .calls
            .spawn(async move { svc.warm(&dataset, &key, strategy).await });
        self.orders.insert(task.id(), order);
    }

    /// The next order whose call ends; `None` when none is in flight.
    /// Cancel safe.
    pub(super) async fn next_ended(&mut self) -> Option<Ended> {
        loop {
            let (id, end) = match self.calls.join_next_with_id().await? {
                Ok((id, r)) => (id, OrderEnd::Returned(r)),
                Err(e) => {
                    tracing::error!(error = %e, "warming task failed");
                    (e.id(), OrderEnd::Lost)
                }
            };
            if let Some(order) = self.orders.remove(&id) {
                return Some(Ended { order, end });
            }
        }
    }

    /// Aborts every call in flight; each still ends through
    /// [`WarmSlots::next_ended`], as [`OrderEnd::Lost`].
    pub(super) fn abort_all(&mut self) {
        self.calls.abort_all();
    }
}
