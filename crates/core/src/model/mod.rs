//! The learned demand model: P(a key is requested within the window a
//! warming fetch would cover | what is known now).
//!
//! Strategies propose candidates; each candidate is described by a fixed
//! [`Features`] vector built from the tracker and the strategy's own
//! estimate ([`FeatureInputs`]). The model is online logistic regression
//! trained with FTRL-Proximal (per-coordinate learning rates, McMahan et
//! al. 2013), with the strategy's own estimate as its offset: before any
//! training, and for a feature vector the data says nothing about, the
//! model answers what the strategy said. Training examples come from
//! [`examples`]: every proposed candidate, fetched or not, is labelled when
//! its window closes (requested in it or not), so labels are causal and not
//! skewed by what the warmer chose to fetch. Each example is scored before
//! the model trains on it, which makes [`reliability`] a causal holdout.
//!
//! The model, its calibration and the cost cap's price go into the
//! engine's snapshot as the `model` section ([`codec`]); [`figures`] is
//! what reports show of them.
//!
//! Invariants: O(features) per score and per update, no allocation; the
//! learning constants are the textbook defaults of FTRL-Proximal, not fitted
//! to any workload; nothing here reads a clock.

pub mod codec;
pub mod examples;
pub mod figures;
pub mod learner;
pub mod reliability;

use crate::calendar::MarketSession;
use crate::strategy::StrategyId;

/// Number of features (the offset is separate).
pub const FEATURES: usize = 1 + 2 * StrategyId::COUNT + 4 + 10;

/// FTRL-Proximal learning rate `alpha` (McMahan et al.'s default scale).
const ALPHA: f64 = 0.1;
/// FTRL-Proximal `beta` (1, as in the paper).
const BETA: f64 = 1.0;
/// L2 regularisation: pulls weights toward 0, i.e. the model toward the
/// strategy's own estimate, while evidence is thin.
const L2: f64 = 1.0;
/// Predictions and offsets stay within `[EPS, 1 - EPS]`.
const EPS: f64 = 1e-4;

/// What a strategy knows of a candidate when it proposes it. Rates are in
/// accesses per TTL; times in TTLs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureInputs {
    /// The proposing strategy.
    pub strategy: StrategyId,
    /// Market session at the window's opening.
    pub session: MarketSession,
    /// The strategy's own chance that the key is requested in the window.
    pub strategy_p: f64,
    /// Short-term access rate (10-minute time constant), per TTL.
    pub rate_short_per_ttl: f64,
    /// Decayed popularity from the tracker (long half-life), as a count.
    pub popularity: f64,
    /// Time since the key's last access, in TTLs (`INFINITY`: never).
    pub since_last_ttl: f64,
    /// How often the key's cadence predicted its next access (0..1; 0 if
    /// it has none).
    pub cadence_score: f64,
    /// Spread of the key's gaps over their mean (0 if no cadence).
    pub cadence_spread: f64,
    /// Seconds from now until the window opens, in TTLs.
    pub lead_ttl: f64,
    /// Age of the cached entry in TTLs (`None`: nothing cached).
    pub entry_age_ttl: Option<f64>,
    /// Gaps observed for the key (cadence evidence).
    pub gaps: u16,
}

/// A candidate's feature vector, as stored with its training example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Features {
    /// Values; see [`Features::from_inputs`] for the layout.
    pub x: [f32; FEATURES],
    /// The strategy's own estimate as a logit (the model's offset).
    pub offset: f32,
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(EPS, 1.0 - EPS);
    (p / (1.0 - p)).ln()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn session_index(s: MarketSession) -> usize {
    match s {
        MarketSession::Regular => 0,
        MarketSession::PreMarket => 1,
        MarketSession::AfterHours => 2,
        MarketSession::Closed => 3,
    }
}

impl Features {
    /// The layout: bias; strategy one-hot; the strategy's logit in its own
    /// strategy's slot (so each strategy's estimate is rescaled on its own);
    /// session one-hot; then the numeric features, each squashed to about
    /// `[0, 2]` so that one learning rate suits all.
    pub fn from_inputs(i: &FeatureInputs) -> Self {
        let mut x = [0f32; FEATURES];
        let s = i.strategy.index();
        let z = logit(i.strategy_p);
        x[0] = 1.0;
        x[1 + s] = 1.0;
        x[1 + StrategyId::COUNT + s] = (z / 4.0) as f32;
        let base = 1 + 2 * StrategyId::COUNT;
        x[base + session_index(i.session)] = 1.0;
        let n = base + 4;
        x[n] = (i.rate_short_per_ttl.max(0.0).ln_1p() / 2.0) as f32;
        x[n + 1] = (i.popularity.max(0.0).ln_1p() / 4.0) as f32;
        x[n + 2] = if i.since_last_ttl.is_finite() {
            (i.since_last_ttl.max(0.0).ln_1p() / 2.0) as f32
        } else {
            2.0
        };
        x[n + 3] = i.cadence_score.clamp(0.0, 1.0) as f32;
        x[n + 4] = (i.cadence_spread.clamp(0.0, 4.0) / 2.0) as f32;
        x[n + 5] = i.lead_ttl.clamp(0.0, 2.0) as f32;
        x[n + 6] = i.entry_age_ttl.map_or(0.0, |a| a.clamp(0.0, 2.0)) as f32;
        x[n + 7] = f32::from(u8::from(i.entry_age_ttl.is_some()));
        x[n + 8] = (f64::from(i.gaps).ln_1p() / 4.0) as f32;
        // The Poisson chance of an access within one TTL at the short
        // rate, as a logit: the rate's natural scale for this question.
        let poisson = 1.0 - (-i.rate_short_per_ttl.max(0.0)).exp();
        x[n + 9] = (logit(poisson) / 4.0) as f32;
        Features {
            x,
            offset: z as f32,
        }
    }
}

/// Online logistic regression (FTRL-Proximal) with an offset.
#[derive(Debug, Clone, PartialEq)]
pub struct DemandModel {
    /// FTRL `z` per coordinate.
    z: [f64; FEATURES],
    /// FTRL `n` (sum of squared gradients) per coordinate.
    n: [f64; FEATURES],
    /// Examples trained on.
    trained: u64,
}

impl Default for DemandModel {
    fn default() -> Self {
        DemandModel {
            z: [0.0; FEATURES],
            n: [0.0; FEATURES],
            trained: 0,
        }
    }
}

impl DemandModel {
    fn weight(&self, i: usize) -> f64 {
        // L1 is 0: the features are few and dense.
        -self.z[i] / ((BETA + self.n[i].sqrt()) / ALPHA + L2)
    }

    /// P(requested in the window | `f`), in `[EPS, 1 - EPS]`.
    pub fn predict(&self, f: &Features) -> f64 {
        let mut m = f64::from(f.offset);
        for (i, &xi) in f.x.iter().enumerate() {
            if xi != 0.0 {
                m += self.weight(i) * f64::from(xi);
            }
        }
        sigmoid(m).clamp(EPS, 1.0 - EPS)
    }

    /// One FTRL-Proximal step on an example with label `requested`.
    pub fn train(&mut self, f: &Features, requested: bool) {
        let p = self.predict(f);
        let g = p - if requested { 1.0 } else { 0.0 };
        for (i, &xi) in f.x.iter().enumerate() {
            if xi == 0.0 {
                continue;
            }
            let gi = g * f64::from(xi);
            let sigma = ((self.n[i] + gi * gi).sqrt() - self.n[i].sqrt()) / ALPHA;
            self.z[i] += gi - sigma * self.weight(i);
            self.n[i] += gi * gi;
        }
        self.trained += 1;
    }

    /// Examples trained on so far.
    pub fn trained(&self) -> u64 {
        self.trained
    }

    /// The current weights (for the monitoring API), in layout order.
    pub fn weights(&self) -> [f64; FEATURES] {
        std::array::from_fn(|i| self.weight(i))
    }

    /// The state as `(z, n, trained)`, for snapshots.
    pub fn to_parts(&self) -> (Vec<f64>, Vec<f64>, u64) {
        (self.z.to_vec(), self.n.to_vec(), self.trained)
    }

    /// A model from [`DemandModel::to_parts`]; `None` if the lengths do not
    /// match this build's feature count or a value is not finite (a
    /// snapshot of another layout starts a fresh model).
    pub fn from_parts(z: &[f64], n: &[f64], trained: u64) -> Option<Self> {
        if z.len() != FEATURES || n.len() != FEATURES {
            return None;
        }
        if !z.iter().chain(n).all(|v| v.is_finite()) || n.iter().any(|&v| v < 0.0) {
            return None;
        }
        let mut m = DemandModel {
            trained,
            ..DemandModel::default()
        };
        m.z.copy_from_slice(z);
        m.n.copy_from_slice(n);
        Some(m)
    }
}

#[cfg(test)]
mod tests;
