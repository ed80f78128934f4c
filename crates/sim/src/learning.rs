//! `prewarm replay --explain`: what the warmer learned: the learned
//! model's calibration (predicted against observed, by tenth of the
//! prediction) and the cost cap's price over the run.

use prewarm_core::engine::Engine;
use prewarm_core::model::reliability::ReliabilityRow;
use serde::Serialize;

/// Most price points reported (the history is thinned evenly to this).
const PRICE_POINTS: usize = 48;

/// The price at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PricePointFigures {
    /// Unix seconds.
    pub at_s: f64,
    /// The threshold a candidate's value had to beat.
    pub threshold: f64,
    /// API calls over the no-warming shadow's, then.
    pub cost_ratio: f64,
}

/// What the warmer learned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LearningFigures {
    /// Examples the model trained on (every candidate, once labelled).
    pub examples: u64,
    /// Example-weighted mean |predicted − observed| over the rows.
    pub calibration_error: f64,
    /// Calibration, lowest predictions first (examples scored before the
    /// model trained on them: a causal holdout).
    pub calibration: Vec<ReliabilityRow>,
    /// The price at the end of the run.
    pub price_threshold: f64,
    /// The price over the last day of the run, thinned to at most 48 points.
    pub price_history: Vec<PricePointFigures>,
    /// Keys at risk of a lost hit at the end (reserved by the cost account).
    pub at_risk: u64,
}

impl LearningFigures {
    /// The figures of `engine` after a run.
    pub fn of(engine: &Engine) -> Self {
        let learner = engine.learner();
        let cost = engine.cost_cap();
        let history: Vec<_> = cost.history().collect();
        let step = history.len().div_ceil(PRICE_POINTS).max(1);
        LearningFigures {
            examples: learner.model.trained(),
            calibration_error: learner.reliability.calibration_error(),
            calibration: learner.reliability.rows().to_vec(),
            price_threshold: cost.threshold(),
            price_history: history
                .iter()
                .step_by(step)
                .map(|p| PricePointFigures {
                    at_s: p.at_s,
                    threshold: p.threshold,
                    cost_ratio: p.cost_ratio,
                })
                .collect(),
            at_risk: cost.at_risk(),
        }
    }
}

/// The human-readable form.
pub fn render(l: &LearningFigures) -> String {
    let mut out = format!(
        "\nlearned model: {} examples, calibration error {:.3}\n  predicted   observed   examples\n",
        l.examples, l.calibration_error
    );
    for r in l.calibration.iter().filter(|r| r.examples > 0) {
        out.push_str(&format!(
            "  {:>8.3}   {:>8.3}   {:>8}\n",
            r.predicted, r.observed, r.examples
        ));
    }
    out.push_str(&format!(
        "price (value a warming fetch must beat): {:.3} at the end; {} keys at risk reserved\n",
        l.price_threshold, l.at_risk
    ));
    let thresholds: Vec<String> = l
        .price_history
        .iter()
        .map(|p| format!("{:.2}", p.threshold))
        .collect();
    if !thresholds.is_empty() {
        out.push_str(&format!("  over the last day: {}\n", thresholds.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prewarm_core::cache::FetchOrigin;
    use prewarm_core::engine::{EngineConfig, Lookup};
    use prewarm_core::tracker::AccessContext;

    #[test]
    fn a_run_reports_examples_calibration_and_price() {
        let mut e = Engine::new(EngineConfig::default()).unwrap();
        let k = e.intern("AAPL");
        for i in 0..2000u32 {
            let t = 1_700_000_000.0 + f64::from(i) * 20.0;
            if let Lookup::Miss { .. } = e.on_access(t, k, &AccessContext::default()) {
                e.on_fetched(t, k, FetchOrigin::Demand, true);
            }
            while let Some(o) = e.poll_warm(t) {
                e.on_fetched(t, o.key, FetchOrigin::Warm(o.strategy), true);
            }
        }
        let l = LearningFigures::of(&e);
        assert!(l.examples > 0, "{l:?}");
        let rows: u64 = l.calibration.iter().map(|r| r.examples).sum();
        assert_eq!(rows, l.examples);
        assert!(!l.price_history.is_empty() && l.price_history.len() <= PRICE_POINTS);
        let text = render(&l);
        assert!(
            text.contains("learned model") && text.contains("price"),
            "{text}"
        );
    }
}
