//! The cost cap's state as a snapshot keeps it: the price and what its
//! controller needs to resume, the decayed account, and the price history.
//!
//! The shadow's per-key entries and the keys at risk are not kept: they
//! describe cache entries, and a restored engine starts with an empty cache
//! model, so its shadow starts empty too (both make their first call of a
//! key alike). The undecayed totals start again at 0 with the engine's
//! other since-start counters.

use super::{CostCap, HISTORY_LEN, MAX_THRESHOLD, PricePoint};
use crate::snapshot::{Reader, SnapshotError, Writer};

/// What a cost cap resumes from (see the module docs for what is left out).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceState {
    /// The multiplier `λ` (≥ 0; its threshold at most 0.99).
    pub lambda: f64,
    /// Recent calls and shadow calls per price step: the rates the price
    /// follows (≥ 0).
    pub recent_per_step: (f64, f64),
    /// The account's calls and shadow calls, decayed as of `decayed_at_s`
    /// (≥ 0).
    pub account: (f64, f64),
    /// When the account last decayed, Unix seconds (`-inf`: never).
    pub decayed_at_s: f64,
    /// The price at each step, oldest first (at most a day of steps).
    pub history: Vec<PricePoint>,
}

impl CostCap {
    /// The state a snapshot keeps.
    pub fn price_state(&self) -> PriceState {
        PriceState {
            lambda: self.lambda,
            recent_per_step: self.recent,
            // Held calls are kept as refused: a restored account cannot
            // take them back.
            account: (
                self.calls,
                (self.shadow_calls - self.held_calls() as f64).max(0.0),
            ),
            decayed_at_s: self.decayed_at_s,
            history: self.history.iter().copied().collect(),
        }
    }

    /// Resumes from `s`, for an engine that has not run yet (keys already
    /// at risk stay counted). The next price step only sets its clock: the
    /// time the engine was down is not taken for one step.
    pub fn resume(&mut self, s: PriceState) {
        self.lambda = s.lambda;
        self.recent = s.recent_per_step;
        (self.calls, self.shadow_calls) = s.account;
        self.decayed_at_s = s.decayed_at_s;
        self.last_totals = (self.calls_total, self.shadow_total);
        self.next_step_s = f64::NEG_INFINITY;
        let skip = s.history.len().saturating_sub(HISTORY_LEN);
        self.history = s.history.into_iter().skip(skip).collect();
    }
}

impl PriceState {
    /// Appends the state to a section body.
    pub fn write(&self, w: &mut Writer) {
        w.f64(self.lambda);
        w.f64(self.recent_per_step.0);
        w.f64(self.recent_per_step.1);
        w.f64(self.account.0);
        w.f64(self.account.1);
        w.f64(self.decayed_at_s);
        w.u32(self.history.len() as u32);
        for p in &self.history {
            for x in [p.at_s, p.lambda, p.threshold, p.cost_ratio] {
                w.f64(x);
            }
        }
    }

    /// Reads what [`PriceState::write`] wrote; a value out of its range or
    /// a history longer than a day is [`SnapshotError::Malformed`].
    pub fn read(r: &mut Reader<'_>) -> Result<PriceState, SnapshotError> {
        let lambda = r.f64()?;
        let max_lambda = MAX_THRESHOLD / (1.0 - MAX_THRESHOLD) * (1.0 + 1e-9);
        if !(0.0..=max_lambda).contains(&lambda) {
            return Err(r.error(format_args!(
                "price lambda {lambda} out of [0, {max_lambda}]"
            )));
        }
        let mut counts = [0.0; 4];
        for (x, name) in counts.iter_mut().zip([
            "recent calls",
            "recent shadow calls",
            "account calls",
            "account shadow calls",
        ]) {
            *x = non_negative(r, name)?;
        }
        let decayed_at_s = r.f64()?;
        if decayed_at_s.is_nan() || decayed_at_s == f64::INFINITY {
            return Err(r.error(format_args!("account decay time {decayed_at_s}")));
        }
        let n = r.u32()? as usize;
        if n > HISTORY_LEN {
            return Err(r.error(format_args!("{n} price points, at most {HISTORY_LEN}")));
        }
        let mut history = Vec::with_capacity(n);
        for _ in 0..n {
            let at_s = r.f64()?;
            if !at_s.is_finite() {
                return Err(r.error(format_args!("price point time {at_s}")));
            }
            let lambda = non_negative(r, "price point lambda")?;
            let threshold = non_negative(r, "price point threshold")?;
            if threshold > 1.0 {
                return Err(r.error(format_args!("price point threshold {threshold} above 1")));
            }
            let cost_ratio = non_negative(r, "price point cost ratio")?;
            history.push(PricePoint {
                at_s,
                lambda,
                threshold,
                cost_ratio,
            });
        }
        Ok(PriceState {
            lambda,
            recent_per_step: (counts[0], counts[1]),
            account: (counts[2], counts[3]),
            decayed_at_s,
            history,
        })
    }
}

/// Reads an `f64` that must be finite and ≥ 0.
fn non_negative(r: &mut Reader<'_>, what: &str) -> Result<f64, SnapshotError> {
    let x = r.f64()?;
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(r.error(format_args!("{what} {x} is not a finite count ≥ 0")))
    }
}
