//! `prewarm replay --explain`, by market session: where the warmed run
//! stands between the baseline and the bound during the regular session,
//! pre-market, after-hours and closed hours (New York exchange calendar).
//!
//! Built from the hourly figures of [`crate::plot::hourly`]; each hour is
//! classed by the session at its midpoint (the 09:00 hour counts as
//! regular), which is exact enough to see where the gap lies.

use crate::plot::Hourly;
use prewarm_core::calendar::{ExchangeCalendar, MarketSession};
use serde::Serialize;
use std::collections::BTreeMap;

/// One session's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionFigures {
    /// Requests.
    pub requests: u64,
    /// Hits without warming.
    pub baseline_hits: u64,
    /// Hits with warming.
    pub warmed_hits: u64,
    /// Hits of the clairvoyant bound.
    pub bound_hits: u64,
    /// Warming fetches.
    pub warm_fetches: u64,
    /// Warming fetches whose entry served a hit.
    pub warm_used: u64,
}

impl SessionFigures {
    /// (warmed − baseline) / (bound − baseline); 0 when the bound gains
    /// nothing.
    pub fn gap_closed(&self) -> f64 {
        let room = self.bound_hits as f64 - self.baseline_hits as f64;
        if room <= 0.0 {
            return 0.0;
        }
        (self.warmed_hits as f64 - self.baseline_hits as f64) / room
    }
}

fn session_name(s: MarketSession) -> &'static str {
    match s {
        MarketSession::Regular => "regular",
        MarketSession::PreMarket => "pre-market",
        MarketSession::AfterHours => "after-hours",
        MarketSession::Closed => "closed",
    }
}

/// The hourly figures summed by the session of each hour's midpoint.
pub fn by_session(h: &Hourly, cal: &ExchangeCalendar) -> BTreeMap<String, SessionFigures> {
    let mut out: BTreeMap<String, SessionFigures> = BTreeMap::new();
    for (hour, x) in &h.hours {
        let mid_s = *hour as f64 * 3600.0 + 1800.0;
        let f = out
            .entry(session_name(cal.session_at(mid_s)).to_string())
            .or_default();
        f.requests += x.requests;
        f.baseline_hits += x.baseline_hits;
        f.warmed_hits += x.warmed_hits;
        f.bound_hits += x.bound_hits;
        f.warm_fetches += x.strategies.iter().map(|s| s.0).sum::<u64>();
        f.warm_used += x.strategies.iter().map(|s| s.1).sum::<u64>();
    }
    out
}

/// The table `--explain` prints.
pub fn render(m: &BTreeMap<String, SessionFigures>) -> String {
    use std::fmt::Write;
    let mut s = String::from("\nby market session (New York; hours classed by their midpoint):\n");
    let _ = writeln!(
        s,
        "{:<12} {:>10} {:>9} {:>9} {:>9} {:>11} {:>13} {:>10}",
        "session", "requests", "baseline", "warmed", "bound", "gap closed", "warm fetches", "used"
    );
    let pct = |n: u64, d: u64| {
        if d == 0 {
            0.0
        } else {
            n as f64 * 100.0 / d as f64
        }
    };
    for (name, f) in m {
        let _ = writeln!(
            s,
            "{:<12} {:>10} {:>8.2}% {:>8.2}% {:>8.2}% {:>11.3} {:>13} {:>9.1}%",
            name,
            f.requests,
            pct(f.baseline_hits, f.requests),
            pct(f.warmed_hits, f.requests),
            pct(f.bound_hits, f.requests),
            f.gap_closed(),
            f.warm_fetches,
            pct(f.warm_used, f.warm_fetches),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::Hour;

    #[test]
    fn hours_are_summed_by_their_session_and_the_gap_is_per_session() {
        let cal = ExchangeCalendar::nyse();
        // Tuesday 2026-03-10: 14:00 UTC is 10:00 EDT (regular), 02:00 UTC
        // that day is 22:00 EDT on Monday (closed).
        let regular_h = 1_773_151_200 / 3600;
        let closed_h = 1_773_108_000 / 3600;
        let mut h = Hourly::default();
        for (hour, base, warmed, bound) in [(regular_h, 50, 90, 100), (closed_h, 10, 12, 20)] {
            h.hours.insert(
                hour,
                Hour {
                    requests: 100,
                    baseline_hits: base,
                    warmed_hits: warmed,
                    bound_hits: bound,
                    ..Hour::default()
                },
            );
        }
        let m = by_session(&h, &cal);
        assert_eq!(m["regular"].gap_closed(), 0.8);
        assert_eq!(m["closed"].gap_closed(), 0.2);
        assert_eq!(m.len(), 2);
        assert!(render(&m).contains("regular"));
    }
}
