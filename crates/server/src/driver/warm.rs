//! The warm slots: warm orders (the engines' own and the cycles') become
//! warming calls in spawned tasks, at most `warming.max_concurrent` at
//! once. A call is one order and the orders that ride along in it (batched
//! warming: `CacheService::warm_batch`), else one key
//! (`CacheService::warm`). Each order comes back as one [`Ended`],
//! whatever happened to its call's task (returned, panicked, aborted), and
//! the driver ends the call's orders in one place.

use std::collections::HashMap;
use std::sync::Arc;

use prewarm_core::engine::{Engine, WarmOrder};
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
    /// Whether it rides in the call of the order before it (the engine
    /// counted no call for it).
    pub(super) rides_along: bool,
}

impl Order {
    /// The order of the engine's `order` of dataset `dataset` (its key
    /// named now), for cycle `cycle` if any.
    pub(super) fn from_engine(
        dataset: usize,
        engine: &Engine,
        order: &WarmOrder,
        cycle: Option<u64>,
    ) -> Self {
        Order {
            dataset,
            key: engine.keys().name(order.key).to_string(),
            strategy: order.strategy,
            cycle,
            issued_at_s: order.issued_at_s,
            rides_along: order.rides_along,
        }
    }
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

/// The warming calls in flight, each with its orders.
pub(super) struct WarmSlots {
    /// Most calls in flight at once (`warming.max_concurrent`, by
    /// default upstream's limit).
    max: usize,
    calls: JoinSet<Vec<WarmCall>>,
    /// The orders of each call in `calls`, by task id, so that a task that
    /// panics or is aborted still ends its orders.
    orders: HashMap<task::Id, Vec<Order>>,
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

    /// Issues the warming call of `call` (an order and those riding along
    /// in it, all of dataset `dataset`) on `service`.
    pub(super) fn spawn(
        &mut self,
        service: &Arc<CacheService>,
        dataset: Arc<str>,
        call: Vec<Order>,
    ) {
        let svc = Arc::clone(service);
        let keys: Vec<(String, StrategyId)> =
            call.iter().map(|o| (o.key.clone(), o.strategy)).collect();
        let task = self.calls.spawn(async move {
            match keys.as_slice() {
                [(key, strategy)] => vec![svc.warm(&dataset, key, *strategy).await],
                _ => svc.warm_batch(&dataset, &keys).await,
            }
        });
        self.orders.insert(task.id(), call);
    }

    /// The orders of the next call that ends, each with its end; `None`
    /// when none is in flight. Cancel safe.
    pub(super) async fn next_ended(&mut self) -> Option<Vec<Ended>> {
        loop {
            let (id, mut results) = match self.calls.join_next_with_id().await? {
                Ok((id, r)) => (id, r.into_iter().map(OrderEnd::Returned).collect()),
                Err(e) => {
                    tracing::error!(error = %e, "warming task failed");
                    (e.id(), Vec::new())
                }
            };
            if let Some(orders) = self.orders.remove(&id) {
                // A task that ended early ends its other orders as lost.
                results.resize_with(orders.len(), || OrderEnd::Lost);
                let ended = orders.into_iter().zip(results);
                return Some(ended.map(|(order, end)| Ended { order, end }).collect());
            }
        }
    }

    /// Aborts every call in flight; each still ends through
    /// [`WarmSlots::next_ended`], as [`OrderEnd::Lost`].
    pub(super) fn abort_all(&mut self) {
        self.calls.abort_all();
    }
}
