//! The learning loop: score a candidate, keep it as an example, label it
//! when its window closes or its key is requested, train, and keep the
//! calibration table.

use crate::UnixSeconds;
use crate::cache::KeyId;

use super::examples::{Example, PendingExamples};
use super::reliability::Reliability;
use super::{DemandModel, FeatureInputs, Features};

/// Most examples waiting for a label per engine (about 130 bytes each).
pub const MAX_PENDING_EXAMPLES: usize = 1 << 16;

/// The model with its pending examples and calibration table.
#[derive(Debug, Clone)]
pub struct Learner {
    /// The model.
    pub model: DemandModel,
    /// Examples waiting for their label.
    pub pending: PendingExamples,
    /// Predicted against observed, on examples scored before training.
    pub reliability: Reliability,
}

impl Default for Learner {
    fn default() -> Self {
        Learner {
            model: DemandModel::default(),
            pending: PendingExamples::new(MAX_PENDING_EXAMPLES),
            reliability: Reliability::default(),
        }
    }
}

impl Learner {
    /// P(`key` is requested in `[open_s, close_s)`) for a candidate
    /// described by `inputs`; the candidate becomes a training example.
    pub fn score(
        &mut self,
        key: KeyId,
        open_s: UnixSeconds,
        close_s: UnixSeconds,
        inputs: &FeatureInputs,
    ) -> f64 {
        let features = Features::from_inputs(inputs);
        let p = self.model.predict(&features);
        self.pending.offer(Example {
            key,
            open_s,
            close_s,
            features,
            score: p as f32,
        });
        p
    }

    /// A client access of `key` at `now_s` (labels its open examples).
    pub fn on_access(&mut self, key: KeyId, now_s: UnixSeconds) {
        let (model, reliability) = (&mut self.model, &mut self.reliability);
        self.pending.on_access(key, now_s, &mut |ex, y| {
            reliability.record(f64::from(ex.score), y);
            model.train(&ex.features, y);
        });
    }

    /// Labels and trains on every example whose window closed by `now_s`.
    pub fn advance(&mut self, now_s: UnixSeconds) {
        let (model, reliability) = (&mut self.model, &mut self.reliability);
        self.pending.expire(now_s, &mut |ex, y| {
            reliability.record(f64::from(ex.score), y);
            model.train(&ex.features, y);
        });
    }
}
