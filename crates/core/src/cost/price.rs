//! The learned price of the cost cap: the dual step on `λ` and the
//! thresholds a warming candidate's worth must exceed (see the module
//! docs of `cost`, "The price").

use super::{
    CostCap, HISTORY_LEN, MAX_THRESHOLD, PRICE_GAIN, PRICE_STEP_S, PricePoint, RATE_TAU_S,
};
use crate::UnixSeconds;

impl CostCap {
    /// One dual-descent step on `λ` from the calls since the last step.
    pub(super) fn step_price(&mut self, now_s: UnixSeconds) {
        if self.next_step_s.is_finite() {
            let dc = self.calls_total.saturating_sub(self.last_totals.0) as f64;
            let ds = self.shadow_total.saturating_sub(self.last_totals.1) as f64;
            let dt = (now_s - self.next_step_s + PRICE_STEP_S).max(PRICE_STEP_S);
            let a = 1.0 - (-dt / RATE_TAU_S).exp();
            self.recent.0 += a * (dc - self.recent.0);
            self.recent.1 += a * (ds - self.recent.1);
            // The constraint is over the account's window: its excess.
            let excess = (self.calls - self.cap * self.shadow_calls) / self.shadow_calls.max(1.0);
            let theta = (self.dual_threshold() + PRICE_GAIN * excess).clamp(0.0, MAX_THRESHOLD);
            self.lambda = theta / (1.0 - theta);
        }
        self.last_totals = (self.calls_total, self.shadow_total);
        self.next_step_s = now_s + PRICE_STEP_S;
        if self.history.len() == HISTORY_LEN {
            self.history.pop_front();
        }
        self.history.push_back(PricePoint {
            at_s: now_s,
            lambda: self.lambda(),
            threshold: self.threshold(),
            cost_ratio: self.ratio(),
        });
    }

    /// The price threshold of a start-up cycle lent `loan` calls: the
    /// higher of the dual step's and the backlog price of the reserve
    /// `b + loan`, `(b − slack) / (b + loan)`.
    pub fn threshold_with(&self, loan: f64) -> f64 {
        let reserve = self.burst + loan.max(0.0);
        let backlog = ((self.burst - self.slack()) / reserve).clamp(0.0, MAX_THRESHOLD);
        self.dual_threshold().max(backlog)
    }

    /// The price threshold: a candidate must be worth more than this many
    /// demand calls saved per fetch. The higher of the dual step's and the
    /// account's backlog price ([`CostCap::backlog_threshold`]).
    pub fn threshold(&self) -> f64 {
        self.dual_threshold().max(self.backlog_threshold())
    }

    /// The threshold the dual steps have learned, `λ_dual / (1 + λ_dual)`.
    fn dual_threshold(&self) -> f64 {
        self.lambda / (1.0 + self.lambda)
    }

    /// The price of the account's backlog: the share of the burst `b` of
    /// slack already spent, `(b − slack) / b` in `[0, 0.99]`. A full
    /// reserve costs nothing; as warming spends the slack faster than the
    /// traffic earns it, the price rises until only the candidates worth
    /// the slack's rate of earning pass, and falls again as it refills. It
    /// reads the account as it is at each call, so it needs no step.
    pub fn backlog_threshold(&self) -> f64 {
        ((self.burst - self.slack()) / self.burst).clamp(0.0, MAX_THRESHOLD)
    }

    /// The multiplier `λ` of the price [`CostCap::threshold`].
    pub fn lambda(&self) -> f64 {
        let t = self.threshold();
        t / (1.0 - t)
    }

    /// The cap `c` (`max_cost_ratio`).
    pub fn cap(&self) -> f64 {
        self.cap
    }

    /// The price at each step, oldest first (at most a day).
    pub fn history(&self) -> impl ExactSizeIterator<Item = &PricePoint> {
        self.history.iter()
    }
}
