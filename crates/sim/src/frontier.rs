//! `prewarm replay --frontier FILE.svg`: the cost frontier, hit rate against
//! API cost, so a user can pick a budget.
//!
//! One point per run, each on the same trace, TTL and warming rate:
//! - `baseline`: no warming (cost 1 by definition);
//! - `prewarm`: a full warmed replay of the engine
//!   ([`crate::replay::replay`]) per cost cap (`warming.max_cost_ratio`) of
//!   [`FrontierSweep::max_cost_ratios`];
//! - `refresh-ahead`: [`crate::policies::refresh_ahead`] per fraction of
//!   the TTL of [`FrontierSweep::refresh_fractions`];
//! - `popular-30min`: [`crate::policies::popular_30min`];
//! - `bound`: the clairvoyant bound, at cost 1 (bucket full at the first
//!   release, as in the report).
//!
//! Cost is API calls / the no-warming run's API calls. The runs are
//! independent and run on up to [`std::thread::available_parallelism`]
//! threads; the result does not depend on their number. The reference
//! policies and the bound know no capacity, so the frontier needs an
//! unlimited cache.

use crate::baseline::{baseline_under_latency, ratio};
use crate::bound::{BucketStart, clairvoyant_bound_with};
use crate::policies::{PolicyError, PolicyResult, popular_30min, refresh_ahead};
use crate::replay::{ReplayConfig, ReplayReport, replay};
use crate::trace::Trace;
use prewarm_core::engine::ConfigError;
use serde::Serialize;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The settings swept.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontierSweep {
    /// Cost caps of the prewarm runs (each at least 1).
    pub max_cost_ratios: Vec<f64>,
    /// Refresh-ahead thresholds as fractions of the TTL (each in `[0, 1]`).
    pub refresh_fractions: Vec<f64>,
}

impl Default for FrontierSweep {
    fn default() -> Self {
        FrontierSweep {
            max_cost_ratios: vec![1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.4, 1.5],
            refresh_fractions: vec![0.5, 0.6, 0.7, 0.8, 0.9, 0.95],
        }
    }
}

/// The policy behind a point; serialized by [`Policy::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Policy {
    /// No warming.
    #[serde(rename = "baseline")]
    Baseline,
    /// The engine, at a cost cap.
    #[serde(rename = "prewarm")]
    Prewarm,
    /// Refresh-ahead at a fraction of the TTL.
    #[serde(rename = "refresh-ahead")]
    RefreshAhead,
    /// The 100 most requested keys every 30 minutes.
    #[serde(rename = "popular-30min")]
    Popular30Min,
    /// The clairvoyant bound.
    #[serde(rename = "bound")]
    Bound,
}

impl Policy {
    /// Every policy, in the order of the points.
    pub const ALL: [Policy; 5] = [
        Policy::Baseline,
        Policy::Prewarm,
        Policy::RefreshAhead,
        Policy::Popular30Min,
        Policy::Bound,
    ];

    /// The name in JSON, the table and the plot's legend.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Baseline => "baseline",
            Policy::Prewarm => "prewarm",
            Policy::RefreshAhead => "refresh-ahead",
            Policy::Popular30Min => "popular-30min",
            Policy::Bound => "bound",
        }
    }

    /// What [`FrontierPoint::setting`] means for this policy, if anything.
    pub fn setting_name(self) -> Option<&'static str> {
        match self {
            Policy::Prewarm => Some("max_cost_ratio"),
            Policy::RefreshAhead => Some("fraction of TTL"),
            _ => None,
        }
    }
}

/// One point of the frontier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FrontierPoint {
    /// The policy.
    pub policy: Policy,
    /// The cost cap (prewarm) or the fraction of the TTL (refresh-ahead);
    /// `None` for the others.
    pub setting: Option<f64>,
    /// Hits.
    pub hits: u64,
    /// Hits / requests.
    pub hit_rate: f64,
    /// Demand plus warming fetches.
    pub api_calls: u64,
    /// API calls / the no-warming run's API calls.
    pub cost_ratio: f64,
}

/// The frontier of one trace at one TTL and warming rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frontier {
    /// The trace's name.
    pub trace: String,
    /// Seconds an entry stays fresh.
    pub ttl_s: f64,
    /// Warming fetches per minute (all policies).
    pub warm_rate_per_min: f64,
    /// Baseline, prewarm by cap, refresh-ahead by fraction, popular-30min,
    /// bound, in that order.
    pub points: Vec<FrontierPoint>,
}

impl Frontier {
    /// The points of `policy`, in sweep order.
    pub fn points_of(&self, policy: Policy) -> impl Iterator<Item = &FrontierPoint> {
        self.points.iter().filter(move |p| p.policy == policy)
    }
}

/// Why the frontier could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrontierError {
    /// The reference policies and the bound assume an unlimited cache.
    #[error("the frontier needs an unlimited cache (capacity {0} entries given)")]
    Capacity(usize),
    /// A prewarm cap the engine rejects (below 1, say).
    #[error("frontier, prewarm at max_cost_ratio {cap}: {source}")]
    Engine {
        /// The cap.
        cap: f64,
        /// The engine's complaint.
        source: ConfigError,
    },
    /// A refresh-ahead fraction out of range.
    #[error("frontier: {0}")]
    Policy(#[from] PolicyError),
}

/// `prewarm replay --json` with `--frontier`: the report's fields and a
/// `frontier` array.
#[derive(Debug, Serialize)]
pub struct ReportWithFrontier<'a> {
    /// The report.
    #[serde(flatten)]
    pub report: &'a ReplayReport,
    /// The frontier's points.
    pub frontier: &'a [FrontierPoint],
}

/// One run of the frontier.
#[derive(Debug, Clone, Copy)]
enum Job {
    Prewarm(f64),
    RefreshAhead(f64),
    Popular,
}

/// The frontier of `trace` under `cfg` (TTL, rate, strategies and engine
/// settings; its cost cap is replaced by each of the sweep's), sweeping
/// `sweep`. `progress(done, total)` is called from the worker threads with
/// requests processed over all runs.
///
/// Errors: [`FrontierError::Capacity`] when `cfg` has a capacity;
/// [`FrontierError::Engine`] or [`FrontierError::Policy`] for a setting
/// out of range.
pub fn frontier(
    trace: &Trace,
    cfg: &ReplayConfig,
    sweep: &FrontierSweep,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Frontier, FrontierError> {
    if let Some(c) = cfg.engine.capacity_entries {
        return Err(FrontierError::Capacity(c));
    }
    let jobs: Vec<Job> = (sweep.max_cost_ratios.iter().map(|c| Job::Prewarm(*c)))
        .chain(
            sweep
                .refresh_fractions
                .iter()
                .map(|f| Job::RefreshAhead(*f)),
        )
        .chain([Job::Popular])
        .collect();
    let latency_s = cfg.engine.upstream_latency_s;
    let base = baseline_under_latency(trace, cfg.engine.ttl_rule(), latency_s);
    let points = run_jobs(trace, cfg, &jobs, base.api_calls(), progress)?;
    let bound = clairvoyant_bound_with(
        trace,
        cfg.engine.ttl_rule(),
        cfg.engine.warming.rate_limit_per_min,
        BucketStart::FirstRelease,
    );
    let fixed = |policy, hits, api_calls| FrontierPoint {
        policy,
        setting: None,
        hits,
        hit_rate: ratio(hits, base.requests),
        api_calls,
        cost_ratio: ratio(api_calls, base.api_calls()),
    };
    let mut all = vec![fixed(Policy::Baseline, base.hits, base.api_calls())];
    all.extend(points);
    all.push(fixed(Policy::Bound, bound.hits, bound.api_calls));
    Ok(Frontier {
        trace: trace.name.clone(),
        ttl_s: cfg.engine.ttl_s,
        warm_rate_per_min: cfg.engine.warming.rate_limit_per_min,
        points: all,
    })
}

/// Runs `jobs` on a few threads, each taking the next job; the points in
/// the order of `jobs`.
fn run_jobs(
    trace: &Trace,
    cfg: &ReplayConfig,
    jobs: &[Job],
    baseline_api_calls: u64,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Vec<FrontierPoint>, FrontierError> {
    let requests = trace.len() as u64;
    let total = requests * jobs.len() as u64;
    let done = AtomicU64::new(0);
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, jobs.len().max(1));
    let worker = || {
        let mut out = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(&job) = jobs.get(index) else {
                break;
            };
            let mut reported = 0;
            let mut tick = |run_done: u64, _| {
                let delta = run_done.saturating_sub(reported);
                reported = reported.max(run_done);
                progress(done.fetch_add(delta, Ordering::Relaxed) + delta, total);
            };
            let point = run_job(trace, cfg, job, baseline_api_calls, &mut tick);
            tick(requests, requests);
            out.push((index, point));
        }
        out
    };
    let mut results: Vec<(usize, Result<FrontierPoint, FrontierError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, p)| p).collect()
}

/// One run's point.
fn run_job(
    trace: &Trace,
    cfg: &ReplayConfig,
    job: Job,
    baseline_api_calls: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<FrontierPoint, FrontierError> {
    let reference = |policy, setting, r: PolicyResult| FrontierPoint {
        policy,
        setting,
        hits: r.hits,
        hit_rate: r.hit_rate(),
        api_calls: r.api_calls(),
        cost_ratio: ratio(r.api_calls(), baseline_api_calls),
    };
    Ok(match job {
        Job::Prewarm(cap) => {
            let w = prewarm_run(trace, cfg, cap, progress)?;
            FrontierPoint {
                policy: Policy::Prewarm,
                setting: Some(cap),
                hits: w.hits,
                hit_rate: w.hit_rate,
                api_calls: w.api_calls,
                cost_ratio: w.cost_ratio,
            }
        }
        Job::RefreshAhead(f) => {
            let r = refresh_ahead(
                trace,
                cfg.engine.ttl_rule(),
                cfg.engine.warming.rate_limit_per_min,
                f,
                cfg.engine.upstream_latency_s,
            )?;
            reference(Policy::RefreshAhead, Some(f), r)
        }
        Job::Popular => reference(
            Policy::Popular30Min,
            None,
            popular_30min(
                trace,
                cfg.engine.ttl_rule(),
                cfg.engine.warming.rate_limit_per_min,
                cfg.engine.upstream_latency_s,
            ),
        ),
    })
}

/// The warmed figures of a replay of `cfg` with its cost cap set to `cap`
/// (no hourly series, no explanation).
fn prewarm_run(
    trace: &Trace,
    cfg: &ReplayConfig,
    cap: f64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<crate::replay::WarmedFigures, FrontierError> {
    let mut c = cfg.clone();
    c.engine.warming.max_cost_ratio = cap;
    c.hourly_series = false;
    c.explain = false;
    let run =
        replay(trace, &c, progress).map_err(|source| FrontierError::Engine { cap, source })?;
    Ok(run.report.warmed)
}

/// The frontier as a table, for `prewarm replay` without `--json`.
pub fn render(f: &Frontier) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\ncost frontier (TTL {} s, warm rate {}/min; cost = API calls / no-warming API calls)",
        f.ttl_s, f.warm_rate_per_min
    );
    let _ = writeln!(
        s,
        "{:<14} {:>16} {:>10} {:>10} {:>12} {:>9}",
        "policy", "setting", "hit rate", "hits", "API calls", "cost"
    );
    for p in &f.points {
        let setting = match (p.policy, p.setting) {
            (Policy::Prewarm, Some(v)) => format!("cap {v:.2}"),
            (Policy::RefreshAhead, Some(v)) => format!("{v:.2}·TTL"),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "{:<14} {:>16} {:>10} {:>10} {:>12} {:>9}",
            p.policy.name(),
            setting,
            format!("{:.2} %", p.hit_rate * 100.0),
            p.hits,
            p.api_calls,
            format!("{:.3}x", p.cost_ratio)
        );
    }
    s
}
