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
    /// Warming fetches of all strategies.
    pub warm_fetches: u64,
    /// Demand plus warming fetches.
    pub api_calls: u64,
    /// API calls / the baseline's API calls.
    pub cost_ratio: f64,
    /// Warming fetches that served a hit.
    pub warm_used: u64,
    /// warm_used / warm_fetches.
    pub warming_efficiency: f64,
    /// 1 - misses / the baseline's misses.
    pub miss_reduction: f64,
    /// Per enabled strategy, by name.
    pub strategies: BTreeMap<String, StrategyFigures>,
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
    /// The warming rate replayed.
    pub warm_rate_per_min: f64,
    /// The upstream latency replayed, milliseconds.
    pub latency_ms: f64,
    /// The no-warming run.
    pub baseline: BaselineFigures,
    /// The warmed run.
    pub warmed: WarmedFigures,
    /// The clairvoyant bound.
    pub bound: BoundFigures,
    /// The remaining misses by kind, with `--explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<MissBreakdown>,
    /// What became of the planner's candidates, with `--explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planner: Option<PlannerCounters>,
    /// The model's calibration and the cost cap's price, with `--explain`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning: Option<crate::learning::LearningFigures>,
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
    let mut explainer = cfg.explain.then(|| Explainer::new(trace, ttl_s));
    let coalescing = run_warmed(&mut engine, trace, progress, &mut |i, hit, origin| {
        if let Some(e) = explainer.as_mut() {
            e.record(i, hit, origin);
        }
    });
    let latency_s = cfg.engine.upstream_latency_s;
    let base = if latency_s > 0.0 {
        baseline_under_latency(trace, ttl_s, latency_s)
    } else {
        baseline(trace, ttl_s, cfg.engine.capacity_entries)
    };
    // The bound's bucket is full at the earliest job release: the oracle may
    // warm before the first request (the reference figures use this rule).
    let bound = clairvoyant_bound_with(trace, ttl_s, rate_per_min, BucketStart::FirstRelease);
    let report = ReplayReport {
        trace: trace.name.clone(),
        requests: trace.len() as u64,
        ttl_s,
        warm_rate_per_min: rate_per_min,
        latency_ms: latency_s * 1000.0,
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
        explain: explainer.map(|e| {
            let mut b = e.finish();
            let series = &engine.stats().series()[0];
            let hourly = crate::plot::hourly(trace, ttl_s, rate_per_min, series);
            let cal = prewarm_core::calendar::ExchangeCalendar::nyse();
            b.by_session = crate::sessions::by_session(&hourly, &cal);
            b
        }),
        planner: cfg.explain.then(|| engine.planner_counters()),
        learning: cfg
            .explain
            .then(|| crate::learning::LearningFigures::of(&engine)),
    };
    Ok(ReplayRun { report, engine })
}

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
        api_calls: c.api_calls(),
        cost_ratio: ratio(c.api_calls(), baseline_api_calls),
        warm_used: c.warm_used(),
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
    let mut flights = Flights::new(engine.config().upstream_latency_s);
    // The engine may release the id of a key its tracker forgot (and give
    // it to another key): each trace key's id is kept with its stamp and
    // interned again once the stamp is no longer current.
    let mut ids: Vec<KeyStamp> = trace
        .keys
        .iter()
        .map(|k| {
            let id = engine.intern(k);
            engine.keys().stamp(id)
        })
        .collect();
    let total = trace.len() as u64;
    const PROGRESS_EVERY: usize = 1 << 16;
    for (i, (&t, &k)) in trace.times_s.iter().zip(&trace.key_ids).enumerate() {
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
    flights.coalescing()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::read_trace_from;

    fn trace(lines: &[(f64, &str, &str)]) -> Trace {
        let mut csv = String::from("timestamp,key,client\n");
        for (t, k, c) in lines {
            csv.push_str(&format!("{t},{k},{c}\n"));
        }
        read_trace_from(csv.as_bytes(), "t.csv").unwrap()
    }

    fn owned_trace(lines: &[(f64, String, String)]) -> Trace {
        let refs: Vec<(f64, &str, &str)> = lines
            .iter()
            .map(|(t, k, c)| (*t, k.as_str(), c.as_str()))
            .collect();
        trace(&refs)
    }

    /// A mixed workload: a poller every 100 s, a hot key, random one-offs.
    fn workload(n: usize, seed: u64) -> Vec<(f64, String, String)> {
        let mut x = seed;
        let mut out = Vec::new();
        let mut t = 1_772_461_800.0;
        for i in 0..n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            t += ((x >> 40) % 7) as f64 + 0.25;
            let (k, c) = match i % 4 {
                0 => (format!("P{}", (x >> 20) % 3), "u1".to_string()),
                1 => ("HOT".to_string(), "a".to_string()),
                _ => (
                    format!("K{}", (x >> 12) % 40),
                    format!("a{}", (x >> 30) % 5),
                ),
            };
            out.push((t, k, c));
        }
        out
    }

    fn outcomes(lines: &[(f64, String, String)]) -> (Vec<bool>, Counters) {
        let tr = owned_trace(lines);
        let mut engine = Engine::new(ReplayConfig::default().engine_config()).unwrap();
        let mut hits = Vec::new();
        run_warmed(&mut engine, &tr, &mut |_, _| {}, &mut |_, hit, _| {
            hits.push(hit)
        });
        (hits, engine.stats().total)
    }

    /// Causality: the warmer never sees a request before it is processed,
    /// so the outcome of every request of a prefix is the same whether or
    /// not the rest of the trace follows.
    #[test]
    fn outcomes_of_a_prefix_do_not_depend_on_what_follows() {
        for seed in 1..6 {
            let full = workload(3000, seed);
            let (all, _) = outcomes(&full);
            for cut in [1, 17, 500, 1999] {
                let (prefix, _) = outcomes(&full[..cut]);
                assert_eq!(prefix[..], all[..cut], "seed {seed}, cut {cut}");
            }
        }
    }

    /// With warming off, the engine's figures are exactly the baseline's.
    #[test]
    fn warming_off_equals_the_baseline() {
        let lines = workload(2000, 9);
        let tr = owned_trace(&lines);
        let mut cfg = ReplayConfig::default();
        cfg.engine.warming.strategies = StrategySet::NONE;
        let run = replay(&tr, &cfg, &mut |_, _| {}).unwrap();
        assert_eq!(run.report.warmed.hits, run.report.baseline.hits);
        assert_eq!(run.report.warmed.api_calls, run.report.baseline.api_calls);
        assert_eq!(run.report.warmed.cost_ratio, 1.0);
    }

    /// Under a latency, with warming off, the engine's driver coalesces
    /// and hits exactly as the baseline under latency does.
    #[test]
    fn warming_off_under_latency_is_the_baseline_under_latency() {
        let lines = workload(3000, 5);
        let tr = owned_trace(&lines);
        for latency_s in [0.0, 0.25, 3.0, 45.0] {
            let mut cfg = ReplayConfig::default();
            cfg.engine.warming.strategies = StrategySet::NONE;
            cfg.engine.upstream_latency_s = latency_s;
            let r = replay(&tr, &cfg, &mut |_, _| {}).unwrap().report;
            let base = baseline_under_latency(&tr, 60.0, latency_s);
            assert_eq!(r.warmed.hits, base.hits, "L={latency_s}");
            assert_eq!(r.warmed.coalesced, base.coalesced, "L={latency_s}");
            assert_eq!(r.warmed.api_calls, base.api_calls(), "L={latency_s}");
            assert_eq!(r.baseline.coalesced, base.coalesced);
            assert!((r.warmed.coalesced_wait_s - base.coalesced_wait_s).abs() < 1e-6);
            if latency_s >= 3.0 {
                assert!(base.coalesced > 0, "the workload coalesces at {latency_s}");
            }
        }
    }

    /// Under a latency, a warming fetch is not a hit until it lands, and
    /// the cost cap still holds against the baseline under latency.
    #[test]
    fn warming_under_latency_keeps_the_cap_and_counts_every_request_once() {
        let lines = workload(4000, 6);
        let tr = owned_trace(&lines);
        let mut cfg = ReplayConfig::default();
        cfg.engine.upstream_latency_s = 2.0;
        cfg.engine.warming.max_cost_ratio = 1.1;
        let r = replay(&tr, &cfg, &mut |_, _| {}).unwrap().report;
        let w = &r.warmed;
        assert_eq!(w.hits + w.coalesced + w.demand_fetches, r.requests);
        let burst = cfg.engine.warming.rate_limit_per_min;
        assert!(
            w.api_calls as f64 <= 1.1 * r.baseline.api_calls as f64 + burst,
            "{w:?} vs {:?}",
            r.baseline
        );
        assert!(w.warm_fetches > 0);
    }

    #[test]
    fn a_latency_with_a_capacity_is_refused_naming_the_field() {
        let tr = trace(&[(1.0, "a", "c")]);
        let mut cfg = ReplayConfig::default();
        cfg.engine.upstream_latency_s = 0.1;
        cfg.engine.capacity_entries = Some(10);
        let err = replay(&tr, &cfg, &mut |_, _| {}).unwrap_err();
        assert_eq!(err.field, "upstream_latency_s");
    }

    /// Under a tracker much smaller than the trace's keys, the engine
    /// releases and reuses key ids as it goes; the replay follows them by
    /// stamp, so every request still reaches its own key (warming off: the
    /// hits are the baseline's), and the key table stays small.
    #[test]
    fn released_key_ids_are_followed_by_stamp() {
        let lines = workload(3000, 4);
        let tr = owned_trace(&lines);
        let mut cfg = ReplayConfig::default().engine_config();
        cfg.warming.strategies = StrategySet::NONE;
        cfg.tracker = prewarm_core::tracker::TrackerConfig::with_max_keys(3);
        let mut engine = Engine::new(cfg).unwrap();
        run_warmed(&mut engine, &tr, &mut |_, _| {}, &mut |_, _, _| {});
        let base = baseline(&tr, 60.0, None);
        assert_eq!(engine.stats().total.hits, base.hits);
        assert_eq!(tr.distinct_keys(), 44);
        let live = engine.keys().len();
        assert!(live < 30, "{live} keys live");
        // Every tracked id names a key of the trace (none was used after
        // its release).
        for k in engine.tracker().tracked_keys() {
            let name = engine.keys().name(k);
            assert!(tr.keys.iter().any(|t| **t == *name), "{k:?} named {name:?}");
        }
        assert_eq!(engine.keys().id_bound(), 44, "released ids were reused");
    }

    /// A timer due between two requests takes effect at its own instant: a
    /// key polled every 100 s with a 60 s TTL is warmed just before each
    /// poll, not at the poll, so the polls hit once the cadence is learned.
    #[test]
    fn timer_warms_take_effect_before_the_next_request() {
        let lines: Vec<(f64, String, String)> = (0..40)
            .map(|i| {
                (
                    1_772_461_800.0 + f64::from(i) * 100.0,
                    "AAPL".to_string(),
                    "u1".to_string(),
                )
            })
            .collect();
        let (hits, c) = outcomes(&lines);
        assert!(!hits[0], "nothing to predict from yet");
        assert!(hits[10..].iter().all(|h| *h), "{hits:?}");
        // The cadence makes warms that are used (spare tokens may also keep
        // the key fresh in between: `engine::tests` bounds their cost).
        let time = c.strategy(StrategyId::Time);
        assert!(time.warm_used >= 10, "{time:?}");
        // Accounting: every request is a hit or a demand fetch.
        assert_eq!(c.hits + c.demand_fetches, c.requests);
    }
}
