//! `prewarm load`'s time to recover: a restart of the daemon under load
//! shows as a sudden drop of the share of requests served from its cache
//! (`X-Cache` HIT or STALE: a restart with the memory store loses both;
//! counting STALE keeps the wave of first expiries one TTL into a cold
//! run from looking like a restart). From every answered request, by the
//! second it was sent:
//!
//! - a **drop** when the hit rate over `[s, s + W)` is more than [`DROP`]
//!   below the one over `[s − W, s)` (`W` = [`WINDOW_S`], each window with
//!   at least [`MIN_ANSWERED`] answers); the level before it is the
//!   latter, and the drop instant `d` the first second of `[s, s + W)`
//!   whose own answers fall below `level − DROP`;
//! - it has **recovered** at the first second `r ≥ d` whose window
//!   `[r, r + W)` is back within [`TOLERANCE`] of that level; the time to
//!   recover is `r − d` (not recovered if no later window is).
//!
//! Requests that got no answer (refused while the daemon was down) count
//! in neither window.

/// The rolling window, seconds.
pub const WINDOW_S: usize = 10;
/// A fall of the rolling hit rate larger than this is a drop (10 points).
pub const DROP: f64 = 0.10;
/// Back within this of the level before the drop is recovered (2 points).
pub const TOLERANCE: f64 = 0.02;
/// Fewest answers a window needs to be judged.
pub const MIN_ANSWERED: u64 = 20;

/// One answered request: the second it was sent (since the start of the
/// run) and whether the cache served it (HIT or STALE).
pub type Sample = (f64, bool);

/// One drop and its recovery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recovery {
    /// The second of the drop, since the start of the run.
    pub drop_at_s: usize,
    /// The hit rate over the window before it.
    pub level: f64,
    /// The hit rate over the window after it.
    pub fell_to: f64,
    /// Seconds until a window is back within [`TOLERANCE`] of `level`.
    pub time_to_recover_s: Option<usize>,
}

/// Hits and answers per second.
fn per_second(samples: &[Sample]) -> Vec<(u64, u64)> {
    let last = samples.iter().map(|s| s.0).fold(0.0, f64::max) as usize;
    let mut bins = vec![(0u64, 0u64); last + 1];
    for &(t, hit) in samples {
        let b = &mut bins[t.max(0.0) as usize];
        b.0 += u64::from(hit);
        b.1 += 1;
    }
    bins
}

/// The hit rate of seconds `[from, from + WINDOW_S)`, if judged.
fn window(bins: &[(u64, u64)], from: usize) -> Option<f64> {
    let to = (from + WINDOW_S).min(bins.len());
    let (h, n) = bins[from.min(to)..to]
        .iter()
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    (n >= MIN_ANSWERED).then(|| h as f64 / n as f64)
}

/// Every drop in `samples` and its recovery, in order.
pub fn recoveries(samples: &[Sample]) -> Vec<Recovery> {
    let bins = per_second(samples);
    let mut out = Vec::new();
    let mut s = WINDOW_S;
    while s < bins.len() {
        let (Some(level), Some(after)) = (window(&bins, s - WINDOW_S), window(&bins, s)) else {
            s += 1;
            continue;
        };
        if after >= level - DROP {
            s += 1;
            continue;
        }
        let low = |b: &(u64, u64)| b.1 > 0 && (b.0 as f64) < (level - DROP) * b.1 as f64;
        let d = (s..(s + WINDOW_S).min(bins.len()))
            .find(|&i| low(&bins[i]))
            .unwrap_or(s);
        let back =
            (d..bins.len()).find(|&r| window(&bins, r).is_some_and(|h| h >= level - TOLERANCE));
        out.push(Recovery {
            drop_at_s: d,
            level,
            fell_to: after,
            time_to_recover_s: back.map(|r| r - d),
        });
        match back {
            Some(r) => s = r + WINDOW_S,
            None => break,
        }
    }
    out
}

/// The lines `prewarm load` prints about drops (nothing when none).
pub fn render(samples: &[Sample]) -> String {
    let mut s = String::new();
    for r in recoveries(samples) {
        s += &format!(
            "served-from-cache drop at {} s (a restart?): {:.1}% over the {WINDOW_S} s before, {:.1}% over the {WINDOW_S} s after; ",
            r.drop_at_s,
            100.0 * r.level,
            100.0 * r.fell_to
        );
        s += &match r.time_to_recover_s {
            Some(t) => format!(
                "time to recover {t} s (rolling {WINDOW_S} s rate back within {:.0} points)\n",
                100.0 * TOLERANCE
            ),
            None => "not recovered by the end of the run\n".to_string(),
        };
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `per_s` requests a second for `secs` seconds from `from_s`, the
    /// first `hits_per_s` of each second hits.
    fn steady(from_s: usize, secs: usize, per_s: usize, hits_per_s: usize) -> Vec<Sample> {
        (from_s..from_s + secs)
            .flat_map(|s| {
                (0..per_s).map(move |i| (s as f64 + i as f64 / per_s as f64, i < hits_per_s))
            })
            .collect()
    }

    #[test]
    fn a_restart_shows_as_one_drop_and_its_recovery() {
        // 80 % for 30 s, down for 2 s, 20 % for 5 s, then 80 % again.
        let mut s = steady(0, 30, 10, 8);
        s.extend(steady(32, 5, 10, 2));
        s.extend(steady(37, 30, 10, 8));
        let r = recoveries(&s);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!((r[0].level - 0.8).abs() < 1e-9);
        // The drop at the first low second; the windows clear of the low
        // seconds from 37.
        assert_eq!((r[0].drop_at_s, r[0].time_to_recover_s), (32, Some(5)));
        assert!(render(&s).contains("time to recover"));
    }

    #[test]
    fn a_steady_run_has_no_drop() {
        assert!(recoveries(&steady(0, 60, 10, 7)).is_empty());
        assert_eq!(render(&steady(0, 60, 10, 7)), "");
    }
}
