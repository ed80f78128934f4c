//! `prewarm replay`: the engine on virtual time, against the baseline and
//! the clairvoyant bound, per `docs/replay-semantics.md`.
//!
//! Causality: before request `i` the driver runs every engine timer due at
//! or before its timestamp (at the timer's own instant), then the access,
//! then the demand fetch of a miss, then every warming fetch the engine
//! orders in reaction; all of it takes effect before request `i + 1`.
//! Fetches take the engine's `upstream_latency_s` (0 by default: no time;
//! module [`crate::flights`]). The engine never sees a request before it is
//! processed: there is no look-ahead.

use crate::baseline::{BaselineResult, baseline, baseline_under_latency};
use crate::bound::{BucketStart, clairvoyant_bound_with};
use crate::explain::{Explainer, MissBreakdown};
use crate::flights::{Coalescing, Flights};
use crate::trace::Trace;
use crate::universe::{Membership, apply_universe};
use prewarm_core::cache::{FetchOrigin, KeyStamp};
use prewarm_core::engine::{ConfigError, Engine, EngineConfig, Lookup};
use prewarm_core::planner::PlannerCounters;
use prewarm_core::stats::{Counters, ratio};
use prewarm_core::strategy::{StrategyId, StrategySet};
use prewarm_core::tracker::AccessContext;
use serde::Serialize;
use std::collections::BTreeMap;

/// What to replay: the engine's config, and what only a replay needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplayConfig {
    /// The engine replayed: TTL, capacity, warming budget, strategies and
    /// their settings. Its `series_bucket_s` is set by the replay (hourly
    /// when `hourly_series` or `explain` asks for it).
    pub engine: EngineConfig,
    /// Keep an hourly series of the warmed run (for plots).
    pub hourly_series: bool,
    /// Group memberships (sectors, indices) known before the first request.
    pub universe: Vec<Membership>,
    /// Break the remaining misses down by kind.
    pub explain: bool,
}

impl ReplayConfig {
    fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            series_bucket_s: (self.hourly_series || self.explain).then_some(3600.0),
            ..self.engine.clone()
        }
    }
}

/// The no-warming run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineFigures {
    /// Hits.
    pub hits: u64,
    /// Hits / requests.
    pub hit_rate: f64,
    /// Demand fetches (all of its API calls).
    pub api_calls: u64,
    /// Requests that waited on a fetch in flight (only with a latency).
    pub coalesced: u64,
    /// Their total wait, seconds.
    pub coalesced_wait_s: f64,
}

/// Per-strategy figures of the warmed run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategyFigures {
    /// Warming fetches charged to the strategy.
    pub warm_fetches: u64,
    /// Of those, the ones that served a hit.
    pub warm_used: u64,
    /// Of those, the ones whose entry left the cache unused
    /// ([`prewarm_core::stats`]).
    pub warm_wasted: u64,
    /// Of those, the ones still fresh and unused when the trace ended.
    pub warm_pending: u64,
    /// Hits on entries the strategy fetched.
    pub hits: u64,
}

/// The warmed run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarmedFigures {
    /// Hits.
    pub hits: u64,
    /// Hits / requests.
    pub hit_rate: f64,
    /// Misses that were not coalesced, each a demand fetch.
    pub demand_fetches: u64,
    /// Requests that waited on a fetch in flight (only with a latency).
    pub coalesced: u64,
    /// Their total wait, seconds.
    pub coalesced_wait_s: f64,
    /// Warming fetches of all strategies (keys fetched).
    pub warm_fetches: u64,
    /// Upstream calls warming made: `warm_fetches` less the keys that rode
    /// in another key's batch call (equal without batches).
    pub warm_calls: u64,
    /// Demand fetches plus warming calls.
    pub api_calls: u64,
    /// API calls / the baseline's API calls.
    pub cost_ratio: f64,
    /// Warming fetches that served a hit.
    pub warm_used: u64,
    /// Warming fetches whose entry left the cache unused (expired,
    /// replaced, evicted).
    pub warm_wasted: u64,
    /// Warming fetches whose entry was still fresh and unused when the
    /// trace ended: warm_fetches = warm_used + warm_wasted + warm_pending.
    pub warm_pending: u64,
    /// warm_used / warm_fetches.
    pub warming_efficiency: f64,
    /// 1 - misses / the baseline's misses.
    pub miss_reduction: f64,
    /// Per enabled strategy, by name.
    pub strategies: BTreeMap<String, StrategyFigures>,
}

/// Refresh-ahead on the same trace, budget and latency: the plain cache
/// policy warming must beat ([`crate::policies::refresh_ahead`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefreshAheadFigures {
    /// Its refresh point, a fraction of the TTL.
    pub fraction: f64,
    /// Hits / requests.
    pub hit_rate: f64,
    /// API calls / the baseline's.
    pub cost_ratio: f64,
    /// Share of the baseline's misses it removes.
    pub miss_reduction: f64,
    /// Share of the misses it leaves that the warmed run removes (negative
    /// when the warmed run misses more).
    pub misses_removed_by_warming: f64,
}

/// The clairvoyant bound.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoundFigures {
    /// Hit rate of the bound.
    pub hit_rate: f64,
}

/// Everything `prewarm replay --json` prints, in the documented shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The trace's file name.
    pub trace: String,
    /// Requests in the trace.
    pub requests: u64,
    /// The TTL replayed.
    pub ttl_s: f64,
    /// The TTL by market session replayed, in `--ttl-by-session` form
    /// (absent: the flat `ttl_s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_by_session: Option<String>,
    /// The warming rate replayed.
    pub warm_rate_per_min: f64,
    /// The upstream latency replayed, milliseconds.
    pub latency_ms: f64,
    /// Most keys per warming call replayed (1: a call per key; more: the
    /// upstream's batch endpoint, `--batch-max-keys`).
    pub warm_batch_max_keys: usize,
    /// The no-warming run.
    pub baseline: BaselineFigures,
    /// The warmed run.
    pub warmed: WarmedFigures,
    /// The clairvoyant bound.
    pub bound: BoundFigures,
    /// Refresh-ahead at 0.8 of the TTL, for comparison (unlimited cache
    /// only: `None` with a capacity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_ahead: Option<RefreshAheadFigures>,
    /// The remaining misses by kind, with `--explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<MissBreakdown>,
    /// What became of the planner's candidates, with `--explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planner: Option<PlannerCounters>,
    /// The model's calibration and the cost cap's price, with `--explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning: Option<crate::learning::LearningFigures>,
    /// What restarts cost, with `--restart-at` ([`restarts`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<restarts::RestartReport>,
}

/// A replay and the engine it ran, for callers that want more than the
/// report (the hourly series for plots).
#[derive(Debug)]
pub struct ReplayRun {
    /// The report.
    pub report: ReplayReport,
    /// The engine after the last request.
    pub engine: Engine,
}

/// Replays `trace` under `cfg`. `progress(done, total)` is called now and
/// then with the number of requests processed.
pub fn replay(
    trace: &Trace,
    cfg: &ReplayConfig,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReplayRun, ConfigError> {
    if cfg.engine.upstream_latency_s > 0.0 && cfg.engine.capacity_entries.is_some() {
        return Err(ConfigError {
            field: "upstream_latency_s",
            problem: "cannot be combined with a capacity: under a latency the \
                      replay models an unlimited cache"
                .to_string(),
        });
    }
    let mut engine = Engine::new(cfg.engine_config())?;
    // The trace's keys first, in trace order, then the universe's others:
    // key ids break the planner's ties, so a universe must not renumber
    // the trace's keys.
    for k in &trace.keys {
        engine.intern(k);
    }
    apply_universe(&mut engine, &cfg.universe);
    let (ttl_s, rate_per_min) = (cfg.engine.ttl_s, cfg.engine.warming.rate_limit_per_min);
    // The engine's own rule: baseline, bound and reference policies expire
    // entries exactly as the warmed run does.
    let ttl = engine.cache().ttl_rule().clone();
    let mut explainer = cfg.explain.then(|| Explainer::new(trace, &ttl));
    let coalescing = run_warmed(&mut engine, trace, progress, &mut |i, hit, origin| {
        if let Some(e) = explainer.as_mut() {
            e.record(i, hit, origin);
        }
    });
    let latency_s = cfg.engine.upstream_latency_s;
    let base = if latency_s > 0.0 {
        baseline_under_latency(trace, &ttl, latency_s)
    } else {
        baseline(trace, &ttl, cfg.engine.capacity_entries)
    };
    // The bound's bucket is full at the earliest job release: the oracle may
    // warm before the first request (the reference figures use this rule).
    // With batch calls the oracle may fetch that many keys per token: a
    // relaxation, so still an upper bound.
    let batch = cfg.engine.warm_batch_max_keys.max(1);
    let bound_rate = rate_per_min * batch as f64;
    let bound = clairvoyant_bound_with(trace, &ttl, bound_rate, BucketStart::FirstRelease);
    let report = ReplayReport {
        trace: trace.name.clone(),
        requests: trace.len() as u64,
        ttl_s,
        ttl_by_session: cfg.engine.ttl_by_session.map(|t| t.to_string()),
        warm_rate_per_min: rate_per_min,
        latency_ms: latency_s * 1000.0,
        warm_batch_max_keys: batch,
        baseline: baseline_figures(&base),
        warmed: WarmedFigures {
            coalesced: coalescing.requests,
            coalesced_wait_s: coalescing.wait_s,
            ..warmed_figures(
                &engine.stats().total,
                base.api_calls(),
                base.misses,
                cfg.engine.warming.strategies,
            )
        },
        bound: BoundFigures {
            hit_rate: bound.hit_rate,
        },
        refresh_ahead: cfg
            .engine
            .capacity_entries
            .is_none()
            .then(|| refresh_ahead_figures(trace, cfg, &base, &engine.stats().total)),
        explain: explainer.map(|e| {
            let mut b = e.finish();
            let series = &engine.stats().series()[0];
            let hourly = crate::plot::hourly(trace, &ttl, rate_per_min, series);
            let cal = prewarm_core::calendar::ExchangeCalendar::nyse();
            b.by_session = crate::sessions::by_session(&hourly, &cal);
            b
        }),
        planner: cfg.explain.then(|| engine.planner_counters()),
        learning: cfg
            .explain
            .then(|| crate::learning::LearningFigures::of(&engine)),
        restarts: None,
    };
    Ok(ReplayRun { report, engine })
}

/// Refresh-ahead at [`REFRESH_AHEAD_FRACTION`] on `trace` under `cfg`'s
/// TTL, warming rate and latency, against the baseline and the warmed run.
fn refresh_ahead_figures(
    trace: &Trace,
    cfg: &ReplayConfig,
    base: &BaselineResult,
    warmed: &Counters,
) -> RefreshAheadFigures {
    let e = &cfg.engine;
    let ra = crate::policies::refresh_ahead(
        trace,
        e.ttl_rule(),
        e.warming.rate_limit_per_min,
        REFRESH_AHEAD_FRACTION,
        e.upstream_latency_s,
    )
    .expect("the fraction is within [0, 1]");
    let ra_misses = ra.requests - ra.hits;
    let reduction = |misses: u64, of: u64| {
        if of == 0 {
            0.0
        } else {
            1.0 - misses as f64 / of as f64
        }
    };
    RefreshAheadFigures {
        fraction: REFRESH_AHEAD_FRACTION,
        hit_rate: ra.hit_rate(),
        cost_ratio: ratio(ra.api_calls(), base.api_calls()),
        miss_reduction: reduction(ra_misses, base.misses),
        misses_removed_by_warming: reduction(warmed.misses(), ra_misses),
    }
}

/// Refresh-ahead's refresh point in the report: Caffeine's and Coherence's
/// usual setting, and the traces README's reference column.
pub const REFRESH_AHEAD_FRACTION: f64 = 0.8;

/// The baseline's figures.
pub fn baseline_figures(base: &BaselineResult) -> BaselineFigures {
    BaselineFigures {
        hits: base.hits,
        hit_rate: base.hit_rate(),
        api_calls: base.api_calls(),
        coalesced: base.coalesced,
        coalesced_wait_s: base.coalesced_wait_s,
    }
}

/// The figures of the warmed run against the baseline's API calls and
/// misses (its coalesced requests are 0 here: the driver knows them).
pub fn warmed_figures(
    c: &Counters,
    baseline_api_calls: u64,
    baseline_misses: u64,
    strategies: StrategySet,
) -> WarmedFigures {
    let strategies = strategies
        .iter()
        .map(|id: StrategyId| {
            let s = c.strategy(id);
            let f = StrategyFigures {
                warm_fetches: s.warm_fetches,
                warm_used: s.warm_used,
                warm_wasted: s.warm_wasted,
                warm_pending: s.warm_pending(),
                hits: s.hits,
            };
            (id.name().to_string(), f)
        })
        .collect();
    WarmedFigures {
        hits: c.hits,
        hit_rate: ratio(c.hits, c.requests),
        demand_fetches: c.demand_fetches,
        coalesced: 0,
        coalesced_wait_s: 0.0,
        warm_fetches: c.warm_fetches(),
        warm_calls: c.warm_calls(),
        api_calls: c.api_calls(),
        cost_ratio: ratio(c.api_calls(), baseline_api_calls),
        warm_used: c.warm_used(),
        warm_wasted: c.warm_wasted(),
        warm_pending: c.warm_pending(),
        warming_efficiency: ratio(c.warm_used(), c.warm_fetches()),
        miss_reduction: if baseline_misses == 0 {
            0.0
        } else {
            1.0 - ratio(c.misses(), baseline_misses)
        },
        strategies,
    }
}

/// Drives `engine` over every request of `trace`, each fetch taking the
/// engine's `upstream_latency_s`; `outcome(i, hit, origin)` is told whether
/// request `i` hit, and who fetched the entry it found. Returns the
/// requests coalesced on a fetch in flight.
pub fn run_warmed(
    engine: &mut Engine,
    trace: &Trace,
    progress: &mut dyn FnMut(u64, u64),
    outcome: &mut dyn FnMut(usize, bool, Option<FetchOrigin>),
) -> Coalescing {
    // Without restarts no snapshot is read: nothing can fail.
    run_warmed_restarting(engine, trace, None, progress, outcome).unwrap_or_default()
}

/// [`run_warmed`], restarting the process at `restarts`' instants (module
/// [`restarts`]): before each request, every restart due at or before it
/// replaces `engine` with a restored one. Fails only if a restart's
/// snapshot does not restore.
pub fn run_warmed_restarting(
    engine: &mut Engine,
    trace: &Trace,
    mut restarts: Option<&mut restarts::Restarter>,
    progress: &mut dyn FnMut(u64, u64),
    outcome: &mut dyn FnMut(usize, bool, Option<FetchOrigin>),
) -> Result<Coalescing, prewarm_core::snapshot::SnapshotError> {
    let mut flights = Flights::new(engine.config().upstream_latency_s);
    // The engine may release the id of a key its tracker forgot (and give
    // it to another key): each trace key's id is kept with its stamp and
    // interned again once the stamp is no longer current.
    let mut ids = stamps(engine, trace);
    let total = trace.len() as u64;
    const PROGRESS_EVERY: usize = 1 << 16;
    for (i, (&t, &k)) in trace.times_s.iter().zip(&trace.key_ids).enumerate() {
        if let Some(r) = restarts.as_deref_mut()
            && r.restart_due(engine, &mut flights, t)?
        {
            ids = stamps(engine, trace);
        }
        flights.run_until(engine, t);
        let stamp = &mut ids[k as usize];
        if !engine.keys().is_current(*stamp) {
            let id = engine.intern(&trace.keys[k as usize]);
            *stamp = engine.keys().stamp(id);
        }
        let key = stamp.id;
        let client = trace
            .client_ids
            .as_ref()
            .map(|c| &*trace.clients[c[i] as usize]);
        let ctx = AccessContext {
            client,
            groups: &[],
        };
        let before = engine.cache().entry(key).map(|e| e.origin);
        let lookup = engine.on_access(t, key, &ctx);
        if let Lookup::Miss { .. } = lookup {
            flights.on_miss(engine, t, key);
        }
        outcome(i, matches!(lookup, Lookup::Hit { .. }), before);
        flights.perform_warming(engine, t);
        if i % PROGRESS_EVERY == 0 {
            progress(i as u64, total);
        }
    }
    progress(total, total);
    let mut c = flights.coalescing();
    if let Some(r) = restarts {
        c.requests += r.coalescing().requests;
        c.wait_s += r.coalescing().wait_s;
    }
    Ok(c)
}

/// The id of each trace key in `engine`, with its stamp.
fn stamps(engine: &mut Engine, trace: &Trace) -> Vec<KeyStamp> {
    trace
        .keys
        .iter()
        .map(|k| {
            let id = engine.intern(k);
            engine.keys().stamp(id)
        })
        .collect()
}

pub mod restarts;

#[cfg(test)]
mod tests;
