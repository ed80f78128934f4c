//! Predictive: on an access, the keys the tracker predicts to follow the
//! one just requested (co-access) are warmed for the next seconds.
//! [`Successors`] is also how the trending strategy warms the keys that
//! follow a trending one.
//!
//! Settings: `[warming.strategy]` `predictive_confidence_threshold` and
//! `predictive_limit`. No timer.

use super::keystate::Worth;
use super::propose::Proposer;
use super::{Access, Strategy, WarmingConfig};
use crate::cache::KeyId;
use crate::strategy::StrategyId;

/// How far ahead a predicted successor is expected, at most: co-accessed
/// keys follow within seconds, and a prefetch must still be fresh then.
const SUCCESSOR_HORIZON_S: f64 = 5.0;

/// How successors are predicted and proposed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Successors {
    /// `[warming.strategy]` `predictive_confidence_threshold`: lowest
    /// P(next | current) a prediction needs.
    confidence_threshold: f64,
    /// `[warming.strategy]` `predictive_limit`: most predictions followed
    /// per key.
    limit: usize,
}

impl Successors {
    /// The settings of `cfg`.
    pub(super) fn new(cfg: &WarmingConfig) -> Self {
        Successors {
            confidence_threshold: cfg.strategy.predictive_confidence_threshold,
            limit: cfg.strategy.predictive_limit,
        }
    }

    /// Proposes the keys predicted to follow `current`, each with its
    /// confidence times `weight`, charged to `strategy`.
    pub(super) fn propose(
        &self,
        p: &mut Proposer<'_, '_>,
        current: KeyId,
        strategy: StrategyId,
        weight: f64,
    ) {
        let (now_s, ttl_s) = (p.now_s, p.ttl_s);
        let horizon_s = SUCCESSOR_HORIZON_S.min(ttl_s / 2.0);
        let predictions =
            p.ctx
                .tracker
                .predict_next(current, self.confidence_threshold, self.limit);
        for prediction in predictions {
            let (next, confidence) = (prediction.key, prediction.confidence);
            // The learned model judges the prediction; the confidence is
            // the strategy's own estimate.
            let raw = Worth::timed(confidence * weight, SUCCESSOR_HORIZON_S / 2.0, ttl_s);
            let until_s = now_s + horizon_s;
            p.propose(strategy, next, raw, now_s, until_s, until_s);
        }
    }
}

/// The predictive strategy.
#[derive(Debug)]
pub(super) struct Predictive {
    /// Its predictions.
    successors: Successors,
}

impl Predictive {
    /// The strategy with the settings of `cfg`.
    pub(super) fn new(cfg: &WarmingConfig) -> Self {
        Predictive {
            successors: Successors::new(cfg),
        }
    }
}

impl Strategy for Predictive {
    fn id(&self) -> StrategyId {
        StrategyId::Predictive
    }

    fn on_access(&mut self, p: &mut Proposer<'_, '_>, access: &Access) {
        self.successors
            .propose(p, access.key, StrategyId::Predictive, 1.0);
    }
}
