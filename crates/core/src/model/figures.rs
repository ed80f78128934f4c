//! The learned model as reports show it: `learning` of `prewarm replay
//! --explain --json` and `model` of the daemon's `GET /warming/patterns`.

use super::learner::Learner;
use super::reliability::ReliabilityRow;

/// What the model learned and how well it predicted.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelFigures {
    /// Examples the model trained on (every proposed candidate, once its
    /// window closed or its key was requested).
    pub trained_examples: u64,
    /// Examples waiting for their label now.
    pub pending_examples: usize,
    /// Expected calibration error: the example-weighted mean of
    /// |predicted − observed| over the tenths (0 before any example).
    pub calibration_error: f64,
    /// Predicted against observed by tenth of the prediction, lowest first,
    /// all ten (empty tenths have 0 examples). Each example was scored
    /// before the model trained on it: a causal holdout.
    pub calibration: Vec<ReliabilityRow>,
}

impl ModelFigures {
    /// The figures of `learner` now.
    pub fn of(learner: &Learner) -> Self {
        ModelFigures {
            trained_examples: learner.model.trained(),
            pending_examples: learner.pending.len(),
            calibration_error: learner.reliability.calibration_error(),
            calibration: learner.reliability.rows().to_vec(),
        }
    }
}
