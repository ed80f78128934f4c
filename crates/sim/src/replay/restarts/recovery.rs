//! What restarts cost a replayed run: the same trace is replayed without
//! restarts (the reference) and with them, start-up warming on and/or off,
//! and the runs are compared request by request.
//!
//! - **Time to recover** of a restart at `r`: the least `k` (whole
//!   seconds, `k ≥ 0`) such that the hit rate of the requests in
//!   `[r + k, r + k + 60 s)` is at least the reference's over the same
//!   requests minus 2 points ([`RECOVERY_WINDOW_S`],
//!   [`RECOVERY_TOLERANCE`]); windows without requests are skipped. `None`
//!   if it does not recover before the next restart or the trace's end.
//! - **Hits lost**: the reference's hits minus the run's, over the
//!   requests of the [`HITS_LOST_HORIZON_S`] after the restart (or until
//!   the next one): a restart's own cost. Later the two runs drift apart
//!   by chance (another budget, other cadences), which the whole run's
//!   difference (`hits_lost_whole_run`) includes.
//! - **Cost**: API calls over those of the baseline (no warming) under
//!   the same restarts: a cache without warming loses its entries at a
//!   restart too, and the engine's cost cap counts against that shadow.

use super::{RestartEvent, RestartSchedule, Restarter, Startup};
use crate::baseline::{BaselineResult, baseline, baseline_under_latency};
use crate::replay::{BaselineFigures, ReplayConfig, baseline_figures, run_warmed_restarting};
use crate::trace::Trace;
use prewarm_core::engine::ConfigError;
use prewarm_core::snapshot::SnapshotError;
use prewarm_core::stats::{Counters, ratio};
use serde::Serialize;

/// The window of the hit rate a restart must recover, seconds.
pub const RECOVERY_WINDOW_S: f64 = 60.0;
/// How close to the reference's hit rate counts as recovered (2 points).
pub const RECOVERY_TOLERANCE: f64 = 0.02;
/// How long after a restart its hits lost are counted, seconds.
pub const HITS_LOST_HORIZON_S: f64 = 600.0;

/// Why a replay with restarts failed.
#[derive(Debug, thiserror::Error)]
pub enum RestartReplayError {
    /// The engine's configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A restart's snapshot did not restore (a bug: it was just written).
    #[error("restart: {0}")]
    Snapshot(#[from] SnapshotError),
}

/// Which restarted runs to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupRuns {
    /// Start-up warming on, and off.
    Both,
    /// Only one.
    Only(Startup),
}

/// One restart of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestartOutcome {
    /// When, Unix seconds.
    pub at_s: f64,
    /// Fetches the start-up cycle made.
    pub startup_fetches: usize,
    /// Seconds until the run's 60 s hit rate is back within 2 points of
    /// the reference's; `None`: not before the next restart or the end.
    pub time_to_recover_s: Option<f64>,
    /// The reference's hits minus the run's, over the
    /// [`HITS_LOST_HORIZON_S`] after the restart (or until the next).
    pub hits_lost: i64,
}

/// One run with restarts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestartFigures {
    /// Start-up warming on or off.
    pub startup: Startup,
    /// Hits.
    pub hits: u64,
    /// Hits / requests.
    pub hit_rate: f64,
    /// Hits lost to the restarts: the sum of theirs.
    pub hits_lost: i64,
    /// The reference's hits minus the run's, over the whole trace.
    pub hits_lost_whole_run: i64,
    /// Demand plus warming fetches (start-up ones included).
    pub api_calls: u64,
    /// API calls / the baseline's under the same restarts.
    pub cost_ratio: f64,
    /// Median time to recover over the restarts that recovered, seconds.
    pub median_time_to_recover_s: Option<f64>,
    /// Longest time to recover over those, seconds.
    pub max_time_to_recover_s: Option<f64>,
    /// Restarts that did not recover.
    pub unrecovered: usize,
    /// Each restart.
    pub restarts: Vec<RestartOutcome>,
}

/// The reference run: the same replay without restarts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceFigures {
    /// Hits.
    pub hits: u64,
    /// Hits / requests.
    pub hit_rate: f64,
    /// Demand plus warming fetches.
    pub api_calls: u64,
}

/// `restarts` in `prewarm replay --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestartReport {
    /// The restart instants within the trace, Unix seconds.
    pub instants: Vec<f64>,
    /// The hit-rate window of the time to recover, seconds.
    pub recovery_window_s: f64,
    /// How close counts as recovered (a share: 0.02 is 2 points).
    pub recovery_tolerance: f64,
    /// The run without restarts.
    pub reference: ReferenceFigures,
    /// The baseline (no warming) under the same restarts.
    pub baseline: BaselineFigures,
    /// The runs with restarts: start-up warming on, then off.
    pub runs: Vec<RestartFigures>,
}

/// One replayed run: its counters, hit flags and restarts.
struct Run {
    counters: Counters,
    hits: Vec<bool>,
    events: Vec<RestartEvent>,
}

fn run(
    trace: &Trace,
    cfg: &ReplayConfig,
    instants: &[f64],
    startup: Startup,
) -> Result<Run, RestartReplayError> {
    let mut r = Restarter::new(
        instants.to_vec(),
        startup,
        cfg.engine_config(),
        trace,
        &cfg.universe,
    );
    let mut engine = r.fresh_engine()?;
    let mut hits = vec![false; trace.len()];
    run_warmed_restarting(
        &mut engine,
        trace,
        Some(&mut r),
        &mut |_, _| {},
        &mut |i, hit, _| hits[i] = hit,
    )?;
    Ok(Run {
        counters: r.total(&engine),
        hits,
        events: r.events,
    })
}

/// Replays `trace` under `cfg` without restarts and with `schedule`'s
/// (start-up warming as `runs` says), the runs in parallel, and compares
/// them (module docs).
pub fn replay_restarts(
    trace: &Trace,
    cfg: &ReplayConfig,
    schedule: &RestartSchedule,
    runs: StartupRuns,
) -> Result<RestartReport, RestartReplayError> {
    let (first_s, last_s) = match (trace.times_s.first(), trace.times_s.last()) {
        (Some(&f), Some(&l)) => (f, l),
        _ => (0.0, 0.0),
    };
    let cal = prewarm_core::calendar::ExchangeCalendar::nyse();
    let instants = schedule.instants(first_s, last_s, &cal);
    let modes: Vec<Startup> = match runs {
        StartupRuns::Both => vec![Startup::On, Startup::Off],
        StartupRuns::Only(s) => vec![s],
    };
    let at: &[f64] = &instants;
    let (reference, restarted) = std::thread::scope(|s| {
        let reference = s.spawn(|| run(trace, cfg, &[], Startup::Off));
        let handles: Vec<_> = modes
            .iter()
            .map(|&m| s.spawn(move || run(trace, cfg, at, m)))
            .collect();
        let restarted: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("a replay thread panicked"))
            .collect();
        (
            reference.join().expect("a replay thread panicked"),
            restarted,
        )
    });
    let reference = reference?;
    let base = baseline_with_restarts(trace, cfg, &instants);
    let mut figures = Vec::new();
    for (m, r) in modes.into_iter().zip(restarted) {
        figures.push(compare(trace, &reference, &r?, m, base.api_calls()));
    }
    Ok(RestartReport {
        instants,
        recovery_window_s: RECOVERY_WINDOW_S,
        recovery_tolerance: RECOVERY_TOLERANCE,
        reference: ReferenceFigures {
            hits: reference.counters.hits,
            hit_rate: ratio(reference.counters.hits, reference.counters.requests),
            api_calls: reference.counters.api_calls(),
        },
        baseline: baseline_figures(&base),
        runs: figures,
    })
}

/// The baseline with the cache emptied at each instant: the baseline of
/// each stretch between restarts, added up.
fn baseline_with_restarts(trace: &Trace, cfg: &ReplayConfig, instants: &[f64]) -> BaselineResult {
    let (ttl_s, latency_s) = (cfg.engine.ttl_s, cfg.engine.upstream_latency_s);
    let mut total = BaselineResult::default();
    for (from, to) in stretches(trace, instants) {
        let part = Trace {
            name: trace.name.clone(),
            times_s: trace.times_s[from..to].to_vec(),
            key_ids: trace.key_ids[from..to].to_vec(),
            keys: trace.keys.clone(),
            client_ids: trace.client_ids.as_ref().map(|c| c[from..to].to_vec()),
            clients: trace.clients.clone(),
        };
        let b = if latency_s > 0.0 {
            baseline_under_latency(&part, ttl_s, latency_s)
        } else {
            baseline(&part, ttl_s, cfg.engine.capacity_entries)
        };
        total.requests += b.requests;
        total.hits += b.hits;
        total.misses += b.misses;
        total.coalesced += b.coalesced;
        total.coalesced_wait_s += b.coalesced_wait_s;
    }
    total
}

/// The request ranges between restarts: `[0, i1), [i1, i2), …`, where
/// `i` is the first request at or after each instant.
fn stretches(trace: &Trace, instants: &[f64]) -> Vec<(usize, usize)> {
    let mut cuts: Vec<usize> = vec![0];
    cuts.extend(instants.iter().map(|&t| first_at(trace, t)));
    cuts.push(trace.len());
    cuts.windows(2).map(|w| (w[0], w[1])).collect()
}

/// The first request at or after `t`.
fn first_at(trace: &Trace, t: f64) -> usize {
    trace.times_s.partition_point(|&x| x < t)
}

fn compare(
    trace: &Trace,
    reference: &Run,
    r: &Run,
    startup: Startup,
    base_calls: u64,
) -> RestartFigures {
    let prefix = |hits: &[bool]| -> Vec<u64> {
        let mut p = Vec::with_capacity(hits.len() + 1);
        p.push(0);
        for &h in hits {
            p.push(p[p.len() - 1] + u64::from(h));
        }
        p
    };
    let (pr, pw) = (prefix(&reference.hits), prefix(&r.hits));
    let mut restarts = Vec::new();
    for (n, e) in r.events.iter().enumerate() {
        let end_s = r.events.get(n + 1).map_or(f64::INFINITY, |x| x.at_s);
        let horizon_s = end_s.min(e.at_s + HITS_LOST_HORIZON_S);
        let (from, to) = (first_at(trace, e.at_s), first_at(trace, horizon_s));
        let lost = (pr[to] - pr[from]) as i64 - (pw[to] - pw[from]) as i64;
        restarts.push(RestartOutcome {
            at_s: e.at_s,
            startup_fetches: e.startup_fetches,
            time_to_recover_s: time_to_recover(trace, &pr, &pw, e.at_s, end_s),
            hits_lost: lost,
        });
    }
    let mut ttr: Vec<f64> = restarts
        .iter()
        .filter_map(|o| o.time_to_recover_s)
        .collect();
    ttr.sort_by(f64::total_cmp);
    let c = &r.counters;
    RestartFigures {
        startup,
        hits: c.hits,
        hit_rate: ratio(c.hits, c.requests),
        hits_lost: restarts.iter().map(|o| o.hits_lost).sum(),
        hits_lost_whole_run: reference.counters.hits as i64 - c.hits as i64,
        api_calls: c.api_calls(),
        cost_ratio: ratio(c.api_calls(), base_calls),
        median_time_to_recover_s: median(&ttr),
        max_time_to_recover_s: ttr.last().copied(),
        unrecovered: restarts.len() - ttr.len(),
        restarts,
    }
}

/// The time to recover of a restart at `at_s` (module docs), looking no
/// later than `end_s`; `pr`, `pw` are prefix sums of the reference's and
/// the run's hits.
fn time_to_recover(trace: &Trace, pr: &[u64], pw: &[u64], at_s: f64, end_s: f64) -> Option<f64> {
    let last_s = *trace.times_s.last()?;
    let mut k = 0.0;
    while at_s + k < end_s.min(last_s + 1.0) {
        let (from, to) = (
            first_at(trace, at_s + k),
            first_at(trace, (at_s + k + RECOVERY_WINDOW_S).min(end_s)),
        );
        if to > from {
            let n = (to - from) as f64;
            let reference = (pr[to] - pr[from]) as f64 / n;
            let run = (pw[to] - pw[from]) as f64 / n;
            if run >= reference - RECOVERY_TOLERANCE {
                return Some(k);
            }
        }
        k += 1.0;
    }
    None
}

fn median(sorted: &[f64]) -> Option<f64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The restarts section of the text report.
pub fn render(r: &RestartReport) -> String {
    let mut s = format!(
        "\nrestarts: {} (the cache and fetches in flight emptied, the learned state kept)\n\
         reference without restarts: hit rate {:.2} %, {} API calls\n\
         baseline under the same restarts: hit rate {:.2} %, {} API calls\n",
        r.instants.len(),
        100.0 * r.reference.hit_rate,
        r.reference.api_calls,
        100.0 * r.baseline.hit_rate,
        r.baseline.api_calls,
    );
    if r.instants.is_empty() {
        s += "no restart instant falls within the trace: nothing to measure\n";
        return s;
    }
    let secs = |t: Option<f64>| t.map_or("not recovered".to_string(), |t| format!("{t:.0} s"));
    for f in &r.runs {
        s += &format!(
            "start-up warming {}: hit rate {:.2} %, hits lost {} ({} over the run), cost ratio {:.3}, \
             time to recover: median {}, max {}, {} not recovered\n",
            f.startup.name(),
            100.0 * f.hit_rate,
            f.hits_lost,
            f.hits_lost_whole_run,
            f.cost_ratio,
            secs(f.median_time_to_recover_s),
            secs(f.max_time_to_recover_s),
            f.unrecovered,
        );
        for o in &f.restarts {
            s += &format!(
                "  at {:.0}: {} start-up fetches, time to recover {}, hits lost {}\n",
                o.at_s,
                o.startup_fetches,
                secs(o.time_to_recover_s),
                o.hits_lost
            );
        }
    }
    s + &format!(
        "(time to recover: until the hit rate over the next {:.0} s is within {:.0} points of the run without restarts; \
         hits lost: against that run, over the {:.0} s after each restart)\n",
        r.recovery_window_s,
        100.0 * r.recovery_tolerance,
        HITS_LOST_HORIZON_S
    )
}
