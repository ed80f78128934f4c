//! Tracker benchmarks: hot-path throughput, memory per key, query latency.
//!
//! `cargo bench -p prewarm-core --bench tracker -- --warm-up-time 1 --measurement-time 3`
//!
//! - `track_access/1_thread`: one tracker, a Zipf-like stream over 5,000
//!   keys, a distinct `now_s` per access (the worst case: the decay weights
//!   are recomputed every access), 30 % of accesses with a client id.
//! - `track_access/2_threads`: two independent trackers on two threads,
//!   each fed half the stream — what a daemon does by sharding keys over
//!   trackers (one tracker, one lock per shard; co-access then learns
//!   within a shard). Throughput counts both threads.
//! - memory: a counting global allocator (`stats_alloc`) measures the live
//!   heap of a tracker at 5,000 and 1,000,000 keys, before and after ten
//!   more accesses per key (flat in accesses), printed as bytes/key. Keys
//!   are interned into a key table first: the strings live there, and
//!   `approx_memory_bytes` counts them with the tracker.
//! - queries: latency of `popular(100)`, `trending`, `upcoming(1 h, 100)`
//!   and `predict_next` at 5,000 and 1,000,000 keys.

use chrono::TimeZone;
use criterion::{BenchmarkId, Criterion, Throughput};
use prewarm_core::keys::{KeyId, KeyTable};
use prewarm_core::tracker::{AccessContext, Tracker, TrackerConfig};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;
use std::hint::black_box;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SECTORS: [&str; 11] = [
    "tech", "energy", "health", "fin", "util", "mat", "ind", "cons", "stap", "re", "comm",
];

/// 09:30 New York on Tuesday 2026-06-02.
fn market_open_s() -> f64 {
    chrono_tz::America::New_York
        .with_ymd_and_hms(2026, 6, 2, 9, 30, 0)
        .unwrap()
        .timestamp() as f64
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One access of the synthetic stream.
struct Access {
    key: u32,
    client: Option<u16>,
}

/// A Zipf(1)-like stream over `keys` keys (log-uniform ranks).
fn stream(keys: usize, len: usize, seed: u64) -> Vec<Access> {
    let mut rng = Rng(seed | 1);
    let ln_n = (keys as f64).ln();
    (0..len)
        .map(|_| {
            let rank = ((rng.unit() * ln_n).exp() as usize)
                .saturating_sub(1)
                .min(keys - 1);
            let client = (rng.next() % 10 < 3).then(|| (rng.next() % 1000) as u16);
            Access {
                key: rank as u32,
                client,
            }
        })
        .collect()
}

/// A key table of `keys` symbols, and their ids.
fn key_names(keys: usize) -> (KeyTable, Vec<KeyId>) {
    let mut table = KeyTable::default();
    let ids = (0..keys)
        .map(|i| table.intern(&format!("SYM{i:07}")))
        .collect();
    (table, ids)
}

fn client_names() -> Vec<String> {
    (0..1000).map(|i| format!("client-{i}")).collect()
}

/// Feeds `accesses` at 10,000 accesses per second of virtual time from
/// `start_s`; returns the time after the last one.
fn feed(
    t: &mut Tracker,
    names: &[KeyId],
    clients: &[String],
    accesses: &[Access],
    start_s: f64,
) -> f64 {
    let mut now = start_s;
    for a in accesses {
        let ctx = AccessContext {
            client: a.client.map(|c| clients[c as usize].as_str()),
            groups: &[],
        };
        t.track_access(names[a.key as usize], now, &ctx);
        now += 1e-4;
    }
    now
}

/// A tracker with `keys` keys seen (each at least once) and a Zipf stream
/// of `per_key` accesses per key on top, with sectors set.
fn populated(names: &[KeyId], per_key: usize) -> (Tracker, f64) {
    let keys = names.len();
    let clients = client_names();
    let mut t = Tracker::new(TrackerConfig::with_max_keys(keys)).unwrap();
    let start = market_open_s();
    for (i, n) in names.iter().enumerate() {
        t.set_groups(*n, &[SECTORS[i % SECTORS.len()]]);
    }
    let once: Vec<Access> = (0..keys as u32)
        .map(|key| Access { key, client: None })
        .collect();
    let mut now = feed(&mut t, names, &clients, &once, start);
    now = feed(
        &mut t,
        names,
        &clients,
        &stream(keys, keys * per_key, 7),
        now,
    );
    t.maintain(now);
    (t, now)
}

fn live_bytes(r: &Region<'_, System>) -> isize {
    // stats_alloc already folds reallocations into allocated/deallocated.
    let s = r.change();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

fn report_memory() {
    for keys in [5_000usize, 1_000_000] {
        // Key strings and client names the bench itself holds are made
        // before the region, so only the tracker is measured.
        let (table, names) = key_names(keys);
        let clients = client_names();
        let region = Region::new(GLOBAL);
        let (mut t, now) = populated(&names, 10);
        let before = live_bytes(&region);
        let after_s = feed(&mut t, &names, &clients, &stream(keys, keys * 10, 11), now);
        t.maintain(after_s);
        let after = live_bytes(&region);
        let s = t.stats(after_s, &table);
        println!(
            "memory/{keys}_keys: {:.1} bytes/key measured (allocator), {:.1} after 10 more accesses/key, \
             {:.1} estimated by approx_memory_bytes; {} profiled, {} clients",
            before as f64 / keys as f64,
            after as f64 / keys as f64,
            s.approx_memory_bytes as f64 / keys as f64,
            s.profiled_keys,
            s.tracked_clients,
        );
        drop((t, names, table));
    }
}

fn bench_track(c: &mut Criterion) {
    const BATCH: usize = 100_000;
    let keys = 5_000;
    let (_table, names) = key_names(keys);
    let clients = client_names();
    let accesses = stream(keys, 1 << 20, 3);
    let mut g = c.benchmark_group("track_access");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut t = Tracker::new(TrackerConfig::default()).unwrap();
    let mut now = market_open_s();
    let mut pos = 0;
    g.bench_function("1_thread", |b| {
        b.iter(|| {
            let end = (pos + BATCH).min(accesses.len());
            now = feed(&mut t, &names, &clients, &accesses[pos..end], now);
            pos = if end == accesses.len() { 0 } else { end };
        })
    });
    g.throughput(Throughput::Elements(2 * BATCH as u64));
    let mut shards = [
        Tracker::new(TrackerConfig::default()).unwrap(),
        Tracker::new(TrackerConfig::default()).unwrap(),
    ];
    let halves: [Vec<Access>; 2] = [0, 1].map(|s| {
        accesses
            .iter()
            .filter(|a| a.key % 2 == s)
            .map(|a| Access {
                key: a.key,
                client: a.client,
            })
            .collect()
    });
    let mut now2 = [market_open_s(); 2];
    let mut pos2 = [0usize; 2];
    g.bench_function("2_threads", |b| {
        b.iter(|| {
            std::thread::scope(|sc| {
                for (((t, half), now), pos) in
                    shards.iter_mut().zip(&halves).zip(&mut now2).zip(&mut pos2)
                {
                    let (names, clients) = (&names, &clients);
                    sc.spawn(move || {
                        let end = (*pos + BATCH).min(half.len());
                        *now = feed(t, names, clients, &half[*pos..end], *now);
                        *pos = if end == half.len() { 0 } else { end };
                    });
                }
            })
        })
    });
    g.finish();
}

fn bench_queries(c: &mut Criterion) {
    let mut g = c.benchmark_group("query");
    for keys in [5_000usize, 1_000_000] {
        let (_table, names) = key_names(keys);
        let (mut t, now) = populated(&names, 10);
        // An hour later, a burst so trending has something to report (a
        // tracker younger than its windows trends nothing).
        let now = now + 3600.0;
        for i in 0..50 {
            for k in &names[keys / 2..keys / 2 + 20] {
                t.track_access(*k, now + f64::from(i), &AccessContext::default());
            }
        }
        let now = now + 60.0;
        // Upcoming: the hour around the next day's open (Wed 09:15-10:15).
        let next_open = market_open_s() + 86_400.0;
        g.bench_with_input(BenchmarkId::new("popular_100", keys), &t, |b, t| {
            b.iter(|| black_box(t.popular(now, 100)))
        });
        g.bench_with_input(BenchmarkId::new("trending_50", keys), &t, |b, t| {
            b.iter(|| black_box(t.trending(now, 600.0, 50)))
        });
        g.bench_with_input(BenchmarkId::new("upcoming_1h_100", keys), &t, |b, t| {
            b.iter(|| black_box(t.upcoming(next_open - 900.0, 3600.0, 100)))
        });
        g.bench_with_input(BenchmarkId::new("predict_next_5", keys), &t, |b, t| {
            b.iter(|| black_box(t.predict_next(names[1], 0.0, 5)))
        });
        g.bench_with_input(BenchmarkId::new("group_trends_11", keys), &t, |b, t| {
            b.iter(|| black_box(t.group_trends(now, 11)))
        });
        println!(
            "sizes at {keys} keys: popular {} trending {} upcoming {} predict {}",
            t.popular(now, 100).len(),
            t.trending(now, 600.0, 50).len(),
            t.upcoming(next_open - 900.0, 3600.0, 100).len(),
            t.predict_next(names[1], 0.0, 5).len()
        );
    }
    g.finish();
}

fn main() {
    report_memory();
    let mut c = Criterion::default().configure_from_args();
    bench_track(&mut c);
    bench_queries(&mut c);
    c.final_summary();
}
