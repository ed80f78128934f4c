//! Speed of reading a real trace and replaying the baseline and the bound.
//! Target: the whole replay, reading included, at 2 million requests/s or
//! more (criterion reports it as elements/s). The trace is the repository's
//! `data/traces/` copy.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prewarm_sim::baseline::baseline;
use prewarm_sim::bound::clairvoyant_bound;
use prewarm_sim::trace::read_trace;

const EDGAR: &str = "edgar_sec_weblog_20170101_1pct_cik.csv.gz";

fn trace_path() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/traces")
        .join(EDGAR);
    assert!(path.is_file(), "{} not found", path.display());
    path
}

fn replay_speed(c: &mut Criterion) {
    let path = trace_path();
    let trace = read_trace(&path).expect("reading the edgar trace");
    let mut group = c.benchmark_group("edgar");
    group.throughput(Throughput::Elements(trace.len() as u64));
    group.bench_function("read_trace_gz", |b| {
        b.iter(|| read_trace(black_box(&path)).expect("reading"))
    });
    group.bench_function("baseline_ttl_300", |b| {
        b.iter(|| baseline(black_box(&trace), 300.0, None))
    });
    group.bench_function("baseline_ttl_300_lru_1pct", |b| {
        b.iter(|| baseline(black_box(&trace), 300.0, Some(412)))
    });
    group.bench_function("bound_ttl_300", |b| {
        b.iter(|| clairvoyant_bound(black_box(&trace), 300.0, 100.0))
    });
    group.bench_function("read_baseline_and_bound", |b| {
        b.iter(|| {
            let t = read_trace(black_box(&path)).expect("reading");
            (
                baseline(&t, 300.0, None),
                clairvoyant_bound(&t, 300.0, 100.0),
            )
        })
    });
    group.finish();
}

/// A generated market workload of two trading days, as a `Trace`.
fn generated_trace() -> prewarm_sim::trace::Trace {
    let cfg = prewarm_sim::r#gen::GenConfig {
        days: 2,
        ..prewarm_sim::r#gen::GenConfig::default()
    };
    let universe = prewarm_sim::r#gen::Universe::generate(&cfg);
    let mut csv = String::from("timestamp,key,client\n");
    prewarm_sim::r#gen::generate(&cfg, |r| {
        let client = format!("c{}", r.client);
        csv.push_str(&format!(
            "{:.3},{},{}\n",
            r.time_s, universe.tickers[r.key as usize], client
        ));
    })
    .expect("generating");
    prewarm_sim::trace::read_trace_from(csv.as_bytes(), "gen").expect("reading generated")
}

/// The engine's replay speed (requests/s) with refresh-ahead alone and with
/// every strategy on, on virtual time, reading excluded.
fn engine_speed(c: &mut Criterion) {
    use prewarm_core::strategy::StrategySet;
    use prewarm_sim::replay::{ReplayConfig, replay};
    let edgar = read_trace(&trace_path()).expect("reading the edgar trace");
    let generated = generated_trace();
    for (name, trace) in [("edgar", &edgar), ("gen_2_days", &generated)] {
        let mut group = c.benchmark_group(format!("replay_{name}"));
        group.throughput(Throughput::Elements(trace.len() as u64));
        group.sample_size(10);
        for strategies in ["refresh", "all"] {
            let mut cfg = ReplayConfig::default();
            cfg.engine.warming.strategies =
                StrategySet::parse_list(strategies).expect("strategies");
            group.bench_function(format!("strategies_{strategies}"), |b| {
                b.iter(|| replay(black_box(trace), &cfg, &mut |_, _| {}).expect("replay"))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, replay_speed, engine_speed);
criterion_main!(benches);
