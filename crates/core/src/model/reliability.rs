//! The model's calibration: predicted against observed, by tenth of the
//! predicted probability.
//!
//! Every labelled example was scored before the model trained on it, so
//! this table is a causal holdout: it says how well the model predicted
//! requests it had not yet seen. A well-calibrated model has, in each row,
//! a mean prediction close to the share of examples that were requested.

/// One row: examples whose score fell in `[lo, lo + 0.1)`.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReliabilityRow {
    /// Lower edge of the score range.
    pub lo: f64,
    /// Examples labelled.
    pub examples: u64,
    /// Mean score given (0 when empty).
    pub predicted: f64,
    /// Share requested (0 when empty).
    pub observed: f64,
}

/// Counts by tenth of the predicted probability.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reliability {
    count: [u64; 10],
    sum_predicted: [f64; 10],
    sum_observed: [u64; 10],
}

impl Reliability {
    /// Records an example scored `score` and its label.
    pub fn record(&mut self, score: f64, requested: bool) {
        let b = ((score.clamp(0.0, 1.0) * 10.0) as usize).min(9);
        self.count[b] += 1;
        self.sum_predicted[b] += score;
        self.sum_observed[b] += u64::from(requested);
    }

    /// The ten rows, lowest scores first.
    pub fn rows(&self) -> [ReliabilityRow; 10] {
        std::array::from_fn(|b| {
            let n = self.count[b];
            let d = n.max(1) as f64;
            ReliabilityRow {
                lo: b as f64 / 10.0,
                examples: n,
                predicted: self.sum_predicted[b] / d,
                observed: self.sum_observed[b] as f64 / d,
            }
        })
    }

    /// Examples recorded.
    pub fn examples(&self) -> u64 {
        self.count.iter().sum()
    }

    /// Expected calibration error: the example-weighted mean of
    /// |predicted − observed| over the rows (0 when empty).
    pub fn calibration_error(&self) -> f64 {
        let total = self.examples();
        if total == 0 {
            return 0.0;
        }
        self.rows()
            .iter()
            .map(|r| r.examples as f64 * (r.predicted - r.observed).abs())
            .sum::<f64>()
            / total as f64
    }

    /// The counts per tenth as `(examples, sum of scores, requested)`,
    /// lowest first, for snapshots.
    pub fn to_parts(&self) -> [(u64, f64, u64); 10] {
        std::array::from_fn(|b| (self.count[b], self.sum_predicted[b], self.sum_observed[b]))
    }

    /// A table from [`Reliability::to_parts`]; `None` unless every tenth
    /// is consistent: a finite score sum within the tenth's range times its
    /// examples (with rounding slack), and no more requested than examples.
    pub fn from_parts(parts: &[(u64, f64, u64); 10]) -> Option<Self> {
        let mut r = Reliability::default();
        for (b, &(n, sum, requested)) in parts.iter().enumerate() {
            let (lo, hi) = (b as f64 / 10.0, (b + 1) as f64 / 10.0);
            let slack = 1e-6 * n as f64 + 1e-9;
            let in_range = sum >= lo * n as f64 - slack && sum <= hi * n as f64 + slack;
            if !sum.is_finite() || !in_range || requested > n {
                return None;
            }
            r.count[b] = n;
            r.sum_predicted[b] = sum;
            r.sum_observed[b] = requested;
        }
        Some(r)
    }

    /// Brier-style summary: mean score and share requested over all rows.
    pub fn totals(&self) -> (f64, f64) {
        let n = self.examples().max(1) as f64;
        (
            self.sum_predicted.iter().sum::<f64>() / n,
            self.sum_observed.iter().sum::<u64>() as f64 / n,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_hold_mean_prediction_and_observed_share() {
        let mut r = Reliability::default();
        for i in 0..100 {
            r.record(0.15, i % 5 == 0); // 20 % requested
            r.record(0.95, i % 10 != 0); // 90 % requested
        }
        let rows = r.rows();
        assert_eq!(rows[1].examples, 100);
        assert!((rows[1].predicted - 0.15).abs() < 1e-9);
        assert!((rows[1].observed - 0.2).abs() < 1e-9);
        assert_eq!(rows[9].examples, 100);
        assert!((rows[9].observed - 0.9).abs() < 1e-9);
        assert!((r.calibration_error() - 0.05).abs() < 1e-9);
        assert_eq!(rows[5].examples, 0);
    }

    #[test]
    fn a_score_of_one_lands_in_the_top_row() {
        let mut r = Reliability::default();
        r.record(1.0, true);
        r.record(0.0, false);
        assert_eq!(r.rows()[9].examples, 1);
        assert_eq!(r.rows()[0].examples, 1);
    }
}
