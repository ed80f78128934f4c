//! The upstream latency the engine plans with, measured: the 90th
//! percentile of the successful calls of the last hour.
//!
//! The daemon reports each upstream call's duration
//! ([`crate::engine::Engine::observe_upstream_latency`]); a warming fetch
//! must land before the request it is for, so the engine leads by a
//! latency most calls beat. Replay gives a fixed latency instead.
//!
//! Invariants: memory is bounded ([`MAX_SAMPLES`]); the percentile is
//! recomputed at most once per [`RECOMPUTE_S`] of engine time; nothing
//! reads a clock.

use crate::UnixSeconds;
use std::collections::VecDeque;

/// How far back samples count, seconds.
pub const WINDOW_S: f64 = 3600.0;
/// Most samples kept; older ones go first.
pub const MAX_SAMPLES: usize = 4096;
/// Engine time between two recomputations of the percentile, seconds.
pub const RECOMPUTE_S: f64 = 10.0;
/// The percentile planned with.
const QUANTILE: f64 = 0.9;

/// Recent upstream call durations and their 90th percentile.
#[derive(Debug, Clone, Default)]
pub struct LatencyWindow {
    /// `(at_s, took_s)`, oldest first.
    samples: VecDeque<(UnixSeconds, f64)>,
    p90_s: Option<f64>,
    next_recompute_s: UnixSeconds,
}

impl LatencyWindow {
    /// Records a call that took `took_s` seconds, ending at `now_s`; returns
    /// the new percentile when it was recomputed. A negative or non-finite
    /// duration is ignored.
    pub fn observe(&mut self, now_s: UnixSeconds, took_s: f64) -> Option<f64> {
        if !(took_s.is_finite() && took_s >= 0.0) {
            return None;
        }
        if self.samples.len() == MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((now_s, took_s));
        if now_s < self.next_recompute_s && self.p90_s.is_some() {
            return None;
        }
        self.next_recompute_s = now_s + RECOMPUTE_S;
        while self
            .samples
            .front()
            .is_some_and(|&(at_s, _)| at_s < now_s - WINDOW_S)
        {
            self.samples.pop_front();
        }
        let mut took: Vec<f64> = self.samples.iter().map(|s| s.1).collect();
        let rank = ((took.len() as f64 * QUANTILE).ceil() as usize).clamp(1, took.len()) - 1;
        let (_, p, _) = took.select_nth_unstable_by(rank, f64::total_cmp);
        self.p90_s = Some(*p);
        self.p90_s
    }

    /// The 90th percentile of the last hour's calls, seconds (`None`
    /// before the first).
    pub fn p90_s(&self) -> Option<f64> {
        self.p90_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_is_the_ninetieth_of_the_samples() {
        let mut w = LatencyWindow::default();
        // 100 calls of 10 ms, 20 ms, …, 1 s, all at once, shuffled.
        let mut got = None;
        for i in (1..=100).rev() {
            got = w.observe(1000.0, f64::from(i) / 100.0).or(got);
        }
        // Recomputed at the first sample only (same instant): 1.0 s.
        assert_eq!(got, Some(1.0));
        let p = w.observe(1000.0 + RECOMPUTE_S, 0.5).unwrap();
        // 101 samples: the 91st smallest is 0.9 (0.5 appears twice).
        assert_eq!(p, 0.9);
    }

    #[test]
    fn samples_older_than_the_window_stop_counting() {
        let mut w = LatencyWindow::default();
        for i in 0..50 {
            w.observe(f64::from(i), 2.0);
        }
        let p = w.observe(WINDOW_S + 100.0, 0.1).unwrap();
        assert_eq!(p, 0.1, "only the newest sample is within the hour");
    }

    #[test]
    fn memory_is_bounded_and_bad_durations_are_ignored() {
        let mut w = LatencyWindow::default();
        for i in 0..(3 * MAX_SAMPLES) {
            w.observe(i as f64 * 0.1, 0.2);
        }
        assert!(w.samples.len() <= MAX_SAMPLES);
        assert_eq!(w.observe(1e6, f64::NAN), None);
        assert_eq!(w.observe(1e6, -1.0), None);
        assert_eq!(w.p90_s(), Some(0.2));
    }
}
