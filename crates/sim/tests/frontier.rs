//! The cost frontier (`prewarm replay --frontier`): each point is the
//! standalone run it stands for, and the SVG shows every series.

use std::sync::Mutex;

use prewarm_sim::baseline::baseline;
use prewarm_sim::bound::{BucketStart, clairvoyant_bound_with};
use prewarm_sim::frontier::{
    Frontier, FrontierError, FrontierSweep, Policy, ReportWithFrontier, frontier,
};
use prewarm_sim::plot::write_frontier_svg;
use prewarm_sim::policies::{popular_30min, refresh_ahead};
use prewarm_sim::replay::{ReplayConfig, replay};
use prewarm_sim::trace::{Trace, read_trace_from};

/// Three hours of a mixed workload: a poller every 100 s, a hot key, a
/// tail of 60 keys requested at random.
fn workload(seed: u64) -> Trace {
    let mut x = seed;
    let mut t = 1_772_461_800.0;
    let mut csv = String::from("timestamp,key,client\n");
    for i in 0..3000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        t += ((x >> 40) % 5) as f64 + 0.5;
        let key = match i % 4 {
            0 => format!("P{}", (x >> 20) % 3),
            1 => "HOT".to_string(),
            _ => format!("K{}", (x >> 12) % 60),
        };
        csv.push_str(&format!("{t},{key},c{}\n", (x >> 30) % 4));
    }
    read_trace_from(csv.as_bytes(), "mixed.csv").unwrap()
}

fn sweep() -> FrontierSweep {
    FrontierSweep {
        max_cost_ratios: vec![1.0, 1.2, 1.5],
        refresh_fractions: vec![0.5, 0.8, 0.95],
    }
}

fn compute(trace: &Trace, cfg: &ReplayConfig) -> Frontier {
    frontier(trace, cfg, &sweep(), &|_, _| {}).unwrap()
}

#[test]
fn every_point_is_the_standalone_run_it_stands_for() {
    let trace = workload(3);
    let cfg = ReplayConfig::default();
    let f = compute(&trace, &cfg);
    let base = baseline(&trace, cfg.engine.ttl_s, None);
    let policies: Vec<Policy> = f.points.iter().map(|p| p.policy).collect();
    assert_eq!(policies.len(), 1 + 3 + 3 + 1 + 1);
    assert_eq!(policies.first(), Some(&Policy::Baseline));
    assert_eq!(policies.last(), Some(&Policy::Bound));

    let b = f.points_of(Policy::Baseline).next().unwrap();
    assert_eq!((b.hits, b.api_calls), (base.hits, base.api_calls()));
    assert_eq!((b.hit_rate, b.cost_ratio), (base.hit_rate(), 1.0));

    let caps: Vec<f64> = f
        .points_of(Policy::Prewarm)
        .filter_map(|p| p.setting)
        .collect();
    assert_eq!(caps, sweep().max_cost_ratios);
    for p in f.points_of(Policy::Prewarm) {
        let mut c = cfg.clone();
        c.engine.warming.max_cost_ratio = p.setting.unwrap();
        let w = replay(&trace, &c, &mut |_, _| {}).unwrap().report.warmed;
        assert_eq!(
            (p.hits, p.hit_rate, p.api_calls, p.cost_ratio),
            (w.hits, w.hit_rate, w.api_calls, w.cost_ratio),
            "cap {:?}",
            p.setting
        );
    }

    let fractions: Vec<f64> = f
        .points_of(Policy::RefreshAhead)
        .filter_map(|p| p.setting)
        .collect();
    assert_eq!(fractions, sweep().refresh_fractions);
    for p in f.points_of(Policy::RefreshAhead) {
        let r = refresh_ahead(
            &trace,
            cfg.engine.ttl_s,
            cfg.engine.warming.rate_limit_per_min,
            p.setting.unwrap(),
            0.0,
        )
        .unwrap();
        assert_eq!((p.hits, p.api_calls), (r.hits, r.api_calls()));
        assert_eq!(p.cost_ratio, r.api_calls() as f64 / base.api_calls() as f64);
        // Refresh-ahead only adds fetches to hits, never loses one.
        assert!(p.cost_ratio >= 1.0 && p.hits >= base.hits, "{p:?}");
    }

    let pop = f.points_of(Policy::Popular30Min).next().unwrap();
    let r = popular_30min(
        &trace,
        cfg.engine.ttl_s,
        cfg.engine.warming.rate_limit_per_min,
        0.0,
    );
    assert_eq!((pop.hits, pop.api_calls), (r.hits, r.api_calls()));

    let bound = f.points_of(Policy::Bound).next().unwrap();
    let want = clairvoyant_bound_with(
        &trace,
        cfg.engine.ttl_s,
        cfg.engine.warming.rate_limit_per_min,
        BucketStart::FirstRelease,
    );
    assert_eq!((bound.hits, bound.hit_rate), (want.hits, want.hit_rate));
    assert_eq!(bound.cost_ratio, 1.0);
}

#[test]
fn progress_reaches_the_total_of_all_runs() {
    let trace = workload(4);
    let seen = Mutex::new(Vec::new());
    frontier(
        &trace,
        &ReplayConfig::default(),
        &sweep(),
        &|done, total| {
            seen.lock().unwrap().push((done, total));
        },
    )
    .unwrap();
    let seen = seen.into_inner().unwrap();
    let runs = 3 + 3 + 1;
    let total = trace.len() as u64 * runs;
    assert!(seen.iter().all(|(d, t)| *t == total && *d <= total));
    assert_eq!(seen.iter().map(|(d, _)| *d).max(), Some(total));
}

#[test]
fn bad_settings_are_errors() {
    let trace = workload(5);
    let mut with_capacity = ReplayConfig::default();
    with_capacity.engine.capacity_entries = Some(10);
    assert_eq!(
        frontier(&trace, &with_capacity, &sweep(), &|_, _| {}),
        Err(FrontierError::Capacity(10))
    );
    let bad_cap = FrontierSweep {
        max_cost_ratios: vec![0.5],
        refresh_fractions: vec![],
    };
    let err = frontier(&trace, &ReplayConfig::default(), &bad_cap, &|_, _| {}).unwrap_err();
    assert!(
        matches!(err, FrontierError::Engine { cap: 0.5, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("max_cost_ratio"), "{err}");
    let bad_fraction = FrontierSweep {
        max_cost_ratios: vec![],
        refresh_fractions: vec![1.5],
    };
    let err = frontier(&trace, &ReplayConfig::default(), &bad_fraction, &|_, _| {}).unwrap_err();
    assert!(matches!(err, FrontierError::Policy(_)), "{err}");
}

#[test]
fn the_svg_is_written_with_every_series_and_the_json_carries_the_points() {
    let trace = workload(6);
    let cfg = ReplayConfig::default();
    let f = compute(&trace, &cfg);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frontier.svg");
    write_frontier_svg(&f, &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    for policy in Policy::ALL {
        assert!(svg.contains(policy.name()), "{} missing", policy.name());
    }
    assert!(svg.contains("mixed.csv") && svg.contains("TTL 60 s"));

    let report = replay(&trace, &cfg, &mut |_, _| {}).unwrap().report;
    let json = serde_json::to_value(ReportWithFrontier {
        report: &report,
        frontier: &f.points,
    })
    .unwrap();
    assert_eq!(json["requests"], trace.len() as u64);
    let points = json["frontier"].as_array().unwrap();
    assert_eq!(points.len(), f.points.len());
    assert_eq!(points[0]["policy"], "baseline");
    assert_eq!(points[1]["policy"], "prewarm");
    assert_eq!(points[1]["setting"], 1.0);
    assert_eq!(points[0]["setting"], serde_json::Value::Null);
}
