//! The price and the cost account as reports show them: `learning.price`
//! of `prewarm replay --explain --json` and `price` of the daemon's
//! `GET /warming/stats`.

use super::{CostCap, PRICE_STEP_S, PricePoint};

/// The cost cap's price, its account and the price's recent history.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PriceFigures {
    /// The price: the multiplier `λ` of the cap (0 while calls run under
    /// it).
    pub lambda: f64,
    /// The value threshold it implies, `λ / (1 + λ)`: a warming fetch is
    /// made only if it is worth more expected demand calls saved than this.
    pub threshold: f64,
    /// The cap, `warming.max_cost_ratio`.
    pub max_cost_ratio: f64,
    /// API calls over those of the no-warming shadow, over the account's
    /// window (the whole run in replay; about the last day in the daemon,
    /// carried over a restart). The price follows it.
    pub cost_ratio_recent: f64,
    /// API calls of the engine since it started: demand and warming.
    pub api_calls: u64,
    /// API calls the no-warming shadow (unbounded cache, each key's last
    /// demand fetch) made on the same accesses since the engine started.
    pub shadow_api_calls: u64,
    /// `api_calls / shadow_api_calls` (1 before the shadow made any).
    pub cost_ratio: f64,
    /// Keys at risk of a lost hit now (reserved by the account).
    pub at_risk: u64,
    /// Engine seconds between two price steps.
    pub step_s: f64,
    /// The price at each step over the last day, oldest first, thinned
    /// evenly to at most the points asked (the newest is always kept).
    pub history: Vec<PricePoint>,
}

impl PriceFigures {
    /// The figures of `cost` now, with at most `max_points` (≥ 1) points of
    /// history.
    pub fn of(cost: &CostCap, max_points: usize) -> Self {
        let (api_calls, shadow_api_calls) = cost.totals();
        PriceFigures {
            lambda: cost.lambda(),
            threshold: cost.threshold(),
            max_cost_ratio: cost.cap(),
            cost_ratio_recent: cost.ratio(),
            api_calls,
            shadow_api_calls,
            cost_ratio: if shadow_api_calls == 0 {
                1.0
            } else {
                api_calls as f64 / shadow_api_calls as f64
            },
            at_risk: cost.at_risk(),
            step_s: PRICE_STEP_S,
            history: thin(cost.history().copied().collect(), max_points),
        }
    }
}

/// Every `k`-th point counting back from the newest, `k` the smallest
/// step that leaves at most `max_points`.
fn thin(points: Vec<PricePoint>, max_points: usize) -> Vec<PricePoint> {
    let step = points.len().div_ceil(max_points.max(1)).max(1);
    let mut kept: Vec<PricePoint> = points.into_iter().rev().step_by(step).collect();
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::KeyId;

    #[test]
    fn thinning_keeps_the_newest_point_and_at_most_the_asked_number() {
        let mut c = CostCap::new(1.25, 10.0, None);
        for i in 0..500u32 {
            let t = f64::from(i) * PRICE_STEP_S;
            c.on_access(t, KeyId(i % 7), &crate::ttl::TtlRule::from(30.0), None);
            c.on_call(t);
        }
        let all = c.history().len();
        assert_eq!(all, 500);
        for max in [1, 7, 48, 200, 1000] {
            let f = PriceFigures::of(&c, max);
            assert!(f.history.len() <= max && !f.history.is_empty(), "{max}");
            assert_eq!(f.history.last(), c.history().last(), "{max}");
            assert!(f.history.windows(2).all(|w| w[0].at_s < w[1].at_s));
        }
        assert_eq!(PriceFigures::of(&c, 1000).history.len(), all);
    }

    #[test]
    fn cost_ratio_is_calls_over_the_shadows_since_start() {
        let mut c = CostCap::new(1.25, 10.0, Some(3600.0));
        // Two keys read every 10 s with a 30 s TTL: the shadow fetches each
        // every 30 s; the engine calls for each access (as if it never
        // cached) plus nothing else.
        for i in 0..60u32 {
            let t = f64::from(i) * 10.0;
            for k in 0..2 {
                c.on_access(t, KeyId(k), &crate::ttl::TtlRule::from(30.0), None);
                c.on_call(t);
            }
        }
        let f = PriceFigures::of(&c, 10);
        assert_eq!((f.api_calls, f.shadow_api_calls), (120, 40));
        assert_eq!(f.cost_ratio, 3.0);
        assert_eq!(f.max_cost_ratio, 1.25);
        assert!(f.threshold > 0.0, "calls over the cap raise the price");
        assert!((f.threshold - f.lambda / (1.0 + f.lambda)).abs() < 1e-12);
    }
}
