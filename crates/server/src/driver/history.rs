//! The last hour of one dataset's counters, bucket by bucket, as the
//! monitoring API and the dashboard's charts show it.
//!
//! The engine keeps the series itself (its stats' bounded time series,
//! [`super::dataset::HISTORY_BUCKETS`] buckets of
//! [`super::dataset::HISTORY_BUCKET_S`] seconds), so the history exists
//! whether or not anyone polls, and a dashboard opened now draws the last
//! hour at once.

use prewarm_core::stats::{Counters, Series, ratio};
use serde::Serialize;

/// One bucket of the history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HistoryPoint {
    /// Start of the bucket, Unix seconds.
    pub start_s: f64,
    /// Accesses in the bucket.
    pub requests: u64,
    /// Of those, hits (by the engine's model of the cache).
    pub hits: u64,
    /// Upstream calls made because of a miss.
    pub demand_fetches: u64,
    /// Warming fetches (cycles included).
    pub warm_fetches: u64,
}

/// The buckets of the last hour, oldest first; buckets with no event are
/// left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct History {
    /// Width of a bucket, seconds.
    pub bucket_s: f64,
    /// The buckets.
    pub points: Vec<HistoryPoint>,
}

/// Requests and hits over a window, as `/warming/stats` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Window {
    /// Span the history actually covers, seconds (shorter than asked until
    /// the daemon has run that long).
    pub window_s: f64,
    /// Accesses in the window.
    pub requests: u64,
    /// Of those, hits.
    pub hits: u64,
    /// hits / requests (0 without requests).
    pub hit_rate: f64,
}

impl History {
    /// The history kept in `series`, of `bucket_s`-second buckets.
    pub fn of(series: &Series, bucket_s: f64) -> Self {
        let points = series
            .buckets()
            .map(|(start_s, c): (f64, &Counters)| HistoryPoint {
                start_s,
                requests: c.requests,
                hits: c.hits,
                demand_fetches: c.demand_fetches,
                warm_fetches: c.warm_fetches(),
            })
            .collect();
        History { bucket_s, points }
    }

    /// Requests and hits of the buckets that overlap the last `window_s`
    /// seconds before `now_s` (the current bucket included).
    pub fn window(&self, now_s: f64, window_s: f64) -> Window {
        let from_s = now_s - window_s;
        let inside = self
            .points
            .iter()
            .filter(|p| p.start_s + self.bucket_s > from_s && p.start_s <= now_s);
        let (mut requests, mut hits, mut first) = (0, 0, None::<f64>);
        for p in inside {
            requests += p.requests;
            hits += p.hits;
            first = Some(first.map_or(p.start_s, |f| f.min(p.start_s)));
        }
        let covered_s = first.map_or(0.0, |f| (now_s - f.max(from_s)).clamp(0.0, window_s));
        Window {
            window_s: covered_s,
            requests,
            hits,
            hit_rate: ratio(hits, requests),
        }
    }
}

#[cfg(test)]
mod tests {
    use prewarm_core::stats::{Event, Stats};
    use prewarm_core::strategy::StrategyId;

    use super::*;

    fn stats_with(events: &[(f64, Event)]) -> Stats {
        let mut s = Stats::default().with_series(Series::new(10.0, 360));
        for &(t, ev) in events {
            s.record(t, ev);
        }
        s
    }

    #[test]
    fn buckets_carry_requests_hits_and_both_kinds_of_calls() {
        let s = stats_with(&[
            (
                1000.0,
                Event::Request {
                    hit: false,
                    credited: None,
                },
            ),
            (1001.0, Event::DemandFetch),
            (
                1005.0,
                Event::Request {
                    hit: true,
                    credited: None,
                },
            ),
            (1012.0, Event::WarmFetch(StrategyId::Popular)),
        ]);
        let h = History::of(&s.series()[0], 10.0);
        assert_eq!(h.points.len(), 2);
        assert_eq!(
            h.points[0],
            HistoryPoint {
                start_s: 1000.0,
                requests: 2,
                hits: 1,
                demand_fetches: 1,
                warm_fetches: 0
            }
        );
        assert_eq!(h.points[1].warm_fetches, 1);
    }

    #[test]
    fn a_window_counts_only_the_buckets_inside_it() {
        let mut events = Vec::new();
        // An hour of one miss per 10 s, then a minute of hits.
        for i in 0..360 {
            events.push((
                i as f64 * 10.0,
                Event::Request {
                    hit: false,
                    credited: None,
                },
            ));
        }
        for i in 0..6 {
            events.push((
                3600.0 + i as f64 * 10.0,
                Event::Request {
                    hit: true,
                    credited: None,
                },
            ));
        }
        let h = History::of(&stats_with(&events).series()[0], 10.0);
        assert_eq!(h.points.len(), 360, "only the last hour is kept");
        let w = h.window(3660.0, 60.0);
        assert_eq!((w.requests, w.hits), (6, 6), "{w:?}");
        assert_eq!(w.window_s, 60.0);
        let w = h.window(3660.0, 3600.0);
        assert_eq!(w.requests, 360);
        assert!((w.hit_rate - 6.0 / 360.0).abs() < 1e-12);
    }

    #[test]
    fn an_empty_history_covers_nothing() {
        let w = History::default().window(100.0, 60.0);
        assert_eq!((w.window_s, w.requests, w.hit_rate), (0.0, 0, 0.0));
    }
}
