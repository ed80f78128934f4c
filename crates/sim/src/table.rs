//! The human-readable table of `prewarm replay`.

use crate::replay::ReplayReport;
use std::fmt::Write;

fn pct(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

/// Renders `r` as the table `prewarm replay` prints by default.
pub fn render(r: &ReplayReport) -> String {
    let w = &r.warmed;
    let b = &r.baseline;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "trace {}: {} requests, TTL {} s, warm rate {}/min",
        r.trace, r.requests, r.ttl_s, r.warm_rate_per_min
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<10} {:>10} {:>10} {:>12} {:>10}",
        "run", "hit rate", "hits", "API calls", "cost"
    );
    let _ = writeln!(
        s,
        "{:<10} {:>10} {:>10} {:>12} {:>10}",
        "baseline",
        pct(b.hit_rate),
        b.hits,
        b.api_calls,
        "1.000x"
    );
    let _ = writeln!(
        s,
        "{:<10} {:>10} {:>10} {:>12} {:>10}",
        "warmed",
        pct(w.hit_rate),
        w.hits,
        w.api_calls,
        format!("{:.3}x", w.cost_ratio)
    );
    let _ = writeln!(
        s,
        "{:<10} {:>10} {:>10} {:>12} {:>10}",
        "bound",
        pct(r.bound.hit_rate),
        "",
        "",
        "1.000x"
    );
    if let Some(ra) = &r.refresh_ahead {
        let _ = writeln!(
            s,
            "refresh-ahead at {} of the TTL: hit rate {}, cost {:.3}x; warming removes {} of the misses it leaves",
            ra.fraction,
            pct(ra.hit_rate),
            ra.cost_ratio,
            pct(ra.misses_removed_by_warming)
        );
    }
    if r.latency_ms > 0.0 {
        let _ = writeln!(
            s,
            "\nupstream latency {} ms: coalesced requests (no call, not a hit): baseline {} (waited {:.1} s), warmed {} (waited {:.1} s); the bound is the zero-latency ceiling",
            r.latency_ms, b.coalesced, b.coalesced_wait_s, w.coalesced, w.coalesced_wait_s
        );
    }
    if r.warm_batch_max_keys > 1 {
        let _ = writeln!(
            s,
            "\nbatch calls of up to {} keys: {} warming fetches in {} calls; the bound may fetch {} keys per token",
            r.warm_batch_max_keys, w.warm_fetches, w.warm_calls, r.warm_batch_max_keys
        );
    }
    let gap = r.bound.hit_rate - b.hit_rate;
    let closed = if gap > 0.0 {
        (w.hit_rate - b.hit_rate) / gap
    } else {
        0.0
    };
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "miss reduction {}, warming efficiency {} ({} of {} warming fetches used, {} wasted, {} pending), gap to bound closed {}",
        pct(w.miss_reduction),
        pct(w.warming_efficiency),
        w.warm_used,
        w.warm_fetches,
        w.warm_wasted,
        w.warm_pending,
        pct(closed)
    );
    if !w.strategies.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<12} {:>12} {:>10} {:>10} {:>10} {:>10} {:>11}",
            "strategy", "warm fetches", "used", "wasted", "pending", "hits", "efficiency"
        );
        for (name, f) in &w.strategies {
            let eff = if f.warm_fetches == 0 {
                0.0
            } else {
                f.warm_used as f64 / f.warm_fetches as f64
            };
            let _ = writeln!(
                s,
                "{:<12} {:>12} {:>10} {:>10} {:>10} {:>10} {:>11}",
                name,
                f.warm_fetches,
                f.warm_used,
                f.warm_wasted,
                f.warm_pending,
                f.hits,
                pct(eff)
            );
        }
    }
    s
}
