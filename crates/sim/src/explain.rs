//! `prewarm replay --explain`: which misses remain, by kind.
//!
//! Misses of the baseline and of the warmed run are classed by how long
//! before the request its key was last requested (a key seen for the first
//! time can be predicted by nothing but its group or its predecessor; one
//! seen a second ago is about to be refreshed), and by client class (the
//! client id without its trailing digits, when the trace has clients).

use crate::trace::Trace;
use prewarm_core::cache::{FetchOrigin, is_fresh_until};
use prewarm_core::time::UnixInstant;
use prewarm_core::ttl::TtlRule;
use serde::Serialize;
use std::collections::BTreeMap;

/// Classes of the gap since the key's previous request, as multiples of
/// the TTL and in wall-clock terms.
const GAP_CLASSES: [(&str, f64); 6] = [
    ("< 1 TTL", 1.0),
    ("1-5 TTL", 5.0),
    ("5-60 TTL", 60.0),
    ("60-1440 TTL", 1440.0),
    ("> 1440 TTL", f64::INFINITY),
    ("first request", f64::NAN),
];

/// Misses of one class.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MissClass {
    /// Requests in the class.
    pub requests: u64,
    /// Misses without warming.
    pub baseline_misses: u64,
    /// Misses with warming.
    pub warmed_misses: u64,
}

/// The breakdown.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MissBreakdown {
    /// By gap since the key's previous request.
    pub by_gap: BTreeMap<String, MissClass>,
    /// By client class (empty without a client column).
    pub by_client: BTreeMap<String, MissClass>,
    /// Requests that missed without warming and hit with it.
    pub gained_hits: u64,
    /// Requests that hit without warming and missed with it: warming a key
    /// early shortens its entry's life, so a later request can miss.
    pub lost_hits: u64,
    /// Lost hits by who fetched the stale entry the request found.
    pub lost_by_origin: BTreeMap<String, u64>,
    /// Baseline, warmed and bound by market session.
    pub by_session: BTreeMap<String, crate::sessions::SessionFigures>,
}

/// Collects outcomes request by request.
#[derive(Debug)]
pub struct Explainer<'t> {
    trace: &'t Trace,
    gap_class: Vec<u8>,
    baseline_hit: Vec<bool>,
    out: MissBreakdown,
}

impl<'t> Explainer<'t> {
    /// An explainer for `trace` at `ttl` (seconds or a TTL rule); computes
    /// the baseline outcome of every request up front. Gaps are measured
    /// in TTLs of an entry fetched at the earlier access.
    pub fn new(trace: &'t Trace, ttl: impl Into<TtlRule>) -> Self {
        let ttl = ttl.into();
        let mut last_seen_s = vec![f64::NAN; trace.keys.len()];
        let mut fetched_s = vec![f64::NEG_INFINITY; trace.keys.len()];
        let mut expires_s = vec![f64::NEG_INFINITY; trace.keys.len()];
        let mut gap_class = Vec::with_capacity(trace.len());
        let mut baseline_hit = Vec::with_capacity(trace.len());
        for (&t, &k) in trace.times_s.iter().zip(&trace.key_ids) {
            let k = k as usize;
            let gap_ttls = (t - last_seen_s[k]) / ttl.ttl_at(last_seen_s[k]);
            let class = GAP_CLASSES
                .iter()
                .position(|(_, limit)| gap_ttls < *limit)
                .unwrap_or(GAP_CLASSES.len() - 1);
            gap_class.push(class as u8);
            last_seen_s[k] = t;
            let hit = is_fresh_until(
                UnixInstant(fetched_s[k]),
                UnixInstant(expires_s[k]),
                UnixInstant(t),
            );
            if !hit {
                fetched_s[k] = t;
                expires_s[k] = ttl.expires_at(t);
            }
            baseline_hit.push(hit);
        }
        Explainer {
            trace,
            gap_class,
            baseline_hit,
            out: MissBreakdown::default(),
        }
    }

    /// Records whether request `i` hit in the warmed run.
    pub fn record(&mut self, i: usize, warmed_hit: bool, origin: Option<FetchOrigin>) {
        let base_miss = u64::from(!self.baseline_hit[i]);
        let warm_miss = u64::from(!warmed_hit);
        self.out.gained_hits += base_miss & u64::from(warmed_hit);
        if warm_miss == 1 && self.baseline_hit[i] {
            self.out.lost_hits += 1;
            let by = match origin {
                Some(FetchOrigin::Warm(s)) => s.name(),
                Some(FetchOrigin::Demand) => "demand",
                None => "absent",
            };
            *self.out.lost_by_origin.entry(by.to_string()).or_default() += 1;
        }
        let gap = GAP_CLASSES[self.gap_class[i] as usize].0;
        let add = |m: &mut BTreeMap<String, MissClass>, class: &str| {
            let c = m.entry(class.to_string()).or_default();
            c.requests += 1;
            c.baseline_misses += base_miss;
            c.warmed_misses += warm_miss;
        };
        add(&mut self.out.by_gap, gap);
        if let Some(ids) = &self.trace.client_ids {
            let name = &self.trace.clients[ids[i] as usize];
            add(
                &mut self.out.by_client,
                name.trim_end_matches(|c: char| c.is_ascii_digit()),
            );
        }
    }

    /// The breakdown.
    pub fn finish(self) -> MissBreakdown {
        self.out
    }
}

/// Renders the breakdown as text.
pub fn render(b: &MissBreakdown) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nagainst the baseline: {} requests gained a hit, {} lost one (an early warm shortens an entry's life)",
        b.gained_hits, b.lost_hits
    );
    if !b.lost_by_origin.is_empty() {
        let by: Vec<String> = b
            .lost_by_origin
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "lost hits by who fetched the stale entry: {}",
            by.join(", ")
        );
    }
    for (title, m) in [
        ("gap since the key's previous request", &b.by_gap),
        ("client class", &b.by_client),
    ] {
        if m.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\nmisses by {title}:");
        let _ = writeln!(
            s,
            "{:<16} {:>10} {:>12} {:>12} {:>9}",
            "class", "requests", "base misses", "warm misses", "reduced"
        );
        // Gap classes in order of the gap (the map sorts them by name).
        let mut rows: Vec<(&String, &MissClass)> = m.iter().collect();
        rows.sort_by_key(|(class, _)| {
            GAP_CLASSES
                .iter()
                .position(|(name, _)| name == class)
                .unwrap_or(usize::MAX)
        });
        for (class, c) in rows {
            let reduced = if c.baseline_misses == 0 {
                0.0
            } else {
                1.0 - c.warmed_misses as f64 / c.baseline_misses as f64
            };
            let _ = writeln!(
                s,
                "{:<16} {:>10} {:>12} {:>12} {:>8.1}%",
                class,
                c.requests,
                c.baseline_misses,
                c.warmed_misses,
                reduced * 100.0
            );
        }
    }
    if !b.by_session.is_empty() {
        s.push_str(&crate::sessions::render(&b.by_session));
    }
    s
}
