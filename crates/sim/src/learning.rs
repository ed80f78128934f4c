//! `prewarm replay --explain`: what the warmer learned: the learned
//! model's calibration (predicted against observed, by tenth of the
//! prediction) and the cost cap's price over the run.

use prewarm_core::cost::PriceFigures;
use prewarm_core::engine::Engine;
use prewarm_core::model::figures::ModelFigures;
use serde::Serialize;

/// Most price points reported (the history is thinned evenly to this).
const PRICE_POINTS: usize = 48;

/// What the warmer learned: the model's figures (flattened: `examples`,
/// `calibration_error`, `calibration`, …) and the price (`price`), both
/// as core defines them for every report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LearningFigures {
    /// The learned model and its calibration.
    #[serde(flatten)]
    pub model: ModelFigures,
    /// The cost cap's price at the end of the run and over its last day,
    /// thinned to at most 48 points.
    pub price: PriceFigures,
}

impl LearningFigures {
    /// The figures of `engine` after a run.
    pub fn of(engine: &Engine) -> Self {
        LearningFigures {
            model: ModelFigures::of(engine.learner()),
            price: PriceFigures::of(engine.cost_cap(), PRICE_POINTS),
        }
    }
}

/// The human-readable form.
pub fn render(l: &LearningFigures) -> String {
    let mut out = format!(
        "\nlearned model: {} examples, calibration error {:.3}\n  predicted   observed   examples\n",
        l.model.trained_examples, l.model.calibration_error
    );
    for r in l.model.calibration.iter().filter(|r| r.examples > 0) {
        out.push_str(&format!(
            "  {:>8.3}   {:>8.3}   {:>8}\n",
            r.predicted, r.observed, r.examples
        ));
    }
    out.push_str(&format!(
        "price (value a warming fetch must beat): {:.3} at the end; {} keys at risk reserved\n",
        l.price.threshold, l.price.at_risk
    ));
    let thresholds: Vec<String> = l
        .price
        .history
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
        assert!(l.model.trained_examples > 0, "{l:?}");
        let rows: u64 = l.model.calibration.iter().map(|r| r.examples).sum();
        assert_eq!(rows, l.model.trained_examples);
        assert!(!l.price.history.is_empty() && l.price.history.len() <= PRICE_POINTS);
        let json = serde_json::to_value(&l).unwrap();
        assert!(json["calibration"].is_array() && json["price"]["threshold"].is_number());
        let text = render(&l);
        assert!(
            text.contains("learned model") && text.contains("price"),
            "{text}"
        );
    }
}
