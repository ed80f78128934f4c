//! `gen-trace`: determinism, ordering, the calendar (DST, holidays,
//! weekends, early closes), scanner alignment, news bursts and the universe
//! file. Runs use a small universe and reduced volumes to stay fast; the
//! proportions between components stay close to the defaults.

mod common;
use common::collect;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::Path;

use chrono::{NaiveDate, TimeZone, Timelike};
use chrono_tz::America::New_York;
use prewarm_sim::r#gen::{ClientKind, GenConfig, Request, client_kind, universe_path, write_trace};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A run of `days` days from `start` with about a quarter of the default
/// volume.
fn small(start: NaiveDate, days: u32) -> GenConfig {
    let mut cfg = GenConfig {
        start_date: start,
        days,
        universe_size: 400,
        users: 15,
        ..GenConfig::default()
    };
    cfg.lookups.per_trading_day = 60_000.0;
    cfg.news.events_per_trading_day = 10.0;
    cfg
}

/// FNV-1a, to compare runs by hash.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn local_ms_of_day(time_s: f64) -> u32 {
    let ms = (time_s * 1000.0).round() as i64;
    let local = New_York.timestamp_millis_opt(ms).unwrap();
    local.num_seconds_from_midnight() * 1000 + local.timestamp_subsec_millis()
}

/// Requests per UTC minute of one local day, and the busiest minute.
fn busiest_minute(requests: &[Request], day: NaiveDate) -> (i64, u64) {
    let start = New_York
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .timestamp();
    let end = start + 86_400;
    let mut per_minute: HashMap<i64, u64> = HashMap::new();
    for r in requests
        .iter()
        .filter(|r| (start as f64..end as f64).contains(&r.time_s))
    {
        *per_minute.entry(r.time_s as i64 / 60).or_default() += 1;
    }
    let (&minute, &count) = per_minute.iter().max_by_key(|&(m, c)| (*c, -*m)).unwrap();
    (minute * 60, count)
}

/// Named so that `cargo test gen` selects these tests.
mod gen_trace {
    use super::*;

    #[test]
    fn same_seed_gives_identical_bytes_and_another_seed_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = small(date(2026, 3, 2), 2);
        let write = |name: &str, cfg: &GenConfig| {
            let path = dir.path().join(name);
            write_trace(cfg, &path, |_| {}).unwrap();
            (
                fs::read(&path).unwrap(),
                fs::read(universe_path(&path)).unwrap(),
            )
        };
        let (a, a_universe) = write("a.csv", &cfg);
        let (b, b_universe) = write("b.csv", &cfg);
        assert!(a.len() > 1_000_000);
        assert_eq!(fnv1a(&a), fnv1a(&b));
        assert_eq!(a_universe, b_universe);
        let (c, _) = write(
            "c.csv",
            &GenConfig {
                seed: cfg.seed + 1,
                ..cfg.clone()
            },
        );
        assert_ne!(fnv1a(&a), fnv1a(&c));
        // The gzip'd trace holds the same CSV.
        let gz = dir.path().join("a.csv.gz");
        write_trace(&cfg, &gz, |_| {}).unwrap();
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(fs::File::open(&gz).unwrap())
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(fnv1a(&unzipped), fnv1a(&a));
    }

    #[test]
    fn written_trace_is_sorted_millisecond_csv_with_clients() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let cfg = small(date(2026, 3, 6), 2);
        let mut reported = 0;
        let summary = write_trace(&cfg, &path, |n| reported = n).unwrap();
        assert_eq!(reported, summary.requests);
        let text = fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("timestamp,key,client"));
        let mut previous = 0.0;
        let mut keys = HashSet::new();
        let mut count = 0;
        for line in lines {
            count += 1;
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 3, "{line}");
            let (secs, millis) = fields[0].split_once('.').expect("decimal timestamp");
            assert!(secs.len() == 10 && millis.len() == 3, "{line}");
            let t: f64 = fields[0].parse().unwrap();
            assert!(t >= previous, "time decreases at {line}");
            previous = t;
            keys.insert(fields[1]);
            let client = fields[2];
            assert!(["u", "scan", "a"].iter().any(|p| {
                client
                    .strip_prefix(p)
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            }));
        }
        assert_eq!(count, summary.requests);
        assert_eq!(keys.len() as u64, summary.distinct_keys);
    }

    #[test]
    fn universe_file_holds_every_key_of_the_trace_with_its_sector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.csv.gz");
        let cfg = small(date(2026, 3, 2), 1);
        write_trace(&cfg, &path, |_| {}).unwrap();
        let universe_file = dir.path().join("u.universe.csv");
        assert_eq!(universe_path(&path), universe_file);
        let text = fs::read_to_string(&universe_file).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("key,sector"));
        let sectors: HashMap<&str, &str> = lines
            .map(|l| l.split_once(',').expect("two columns"))
            .collect();
        assert_eq!(sectors.len(), cfg.universe_size, "tickers are unique");
        let distinct: HashSet<&str> = sectors.values().copied().collect();
        assert_eq!(distinct.len(), cfg.sectors);
        let mut csv = String::new();
        flate2::read::GzDecoder::new(fs::File::open(&path).unwrap())
            .read_to_string(&mut csv)
            .unwrap();
        for line in csv.lines().skip(1) {
            let key = line.split(',').nth(1).expect("key column");
            assert!(sectors.contains_key(key), "{key} missing from the universe");
        }
    }

    #[test]
    fn the_open_peak_is_at_0930_new_york_on_both_sides_of_the_dst_change() {
        // Friday 2026-03-06 (EST, UTC-5), DST starts Sunday 03-08, Monday 03-09 (EDT, UTC-4).
        let (requests, summary) = collect(&small(date(2026, 3, 6), 4));
        assert_eq!(
            summary.per_day.iter().map(|d| d.kind).collect::<Vec<_>>(),
            ["trading", "weekend", "weekend", "trading"]
        );
        let (friday_peak, _) = busiest_minute(&requests, date(2026, 3, 6));
        assert_eq!(friday_peak, 1_772_807_400, "2026-03-06T14:30Z");
        let (monday_peak, _) = busiest_minute(&requests, date(2026, 3, 9));
        assert_eq!(monday_peak, 1_773_063_000, "2026-03-09T13:30Z");
    }

    #[test]
    fn holidays_and_weekends_are_lulls() {
        // Wed 04-01, Thu 04-02, Good Friday 04-03 (NYSE holiday), Sat, Sun.
        let (_, summary) = collect(&small(date(2026, 4, 1), 5));
        let kinds: Vec<&str> = summary.per_day.iter().map(|d| d.kind).collect();
        assert_eq!(
            kinds,
            ["trading", "trading", "holiday", "weekend", "weekend"]
        );
        let trading = summary.per_day[..2]
            .iter()
            .map(|d| d.requests)
            .min()
            .unwrap() as f64;
        for lull in &summary.per_day[2..] {
            let share = lull.requests as f64 / trading;
            assert!(
                (0.005..0.08).contains(&share),
                "{}: {share:.3} of a trading day",
                lull.date
            );
        }
        assert_eq!(summary.trading_days, 2);
    }

    #[test]
    fn an_early_close_ends_the_session_at_1300() {
        // Friday 2026-11-27, the day after Thanksgiving.
        let (requests, summary) = collect(&small(date(2026, 11, 27), 1));
        assert_eq!(summary.per_day[0].kind, "early_close");
        for r in &requests {
            let local_ms = local_ms_of_day(r.time_s);
            match client_kind(r.client) {
                Some((ClientKind::Scanner, 0)) => assert!(local_ms < 13 * 3_600_000 + 10_000),
                Some((ClientKind::User, _)) => {
                    assert!(local_ms <= 17 * 3_600_000 + 60_000, "{local_ms}")
                }
                _ => {}
            }
        }
    }

    #[test]
    fn scanner_batches_start_at_their_aligned_times() {
        let cfg = small(date(2026, 3, 9), 1);
        let (requests, _) = collect(&cfg);
        let mut batches: HashMap<u32, Vec<u32>> = HashMap::new();
        for r in &requests {
            let Some((ClientKind::Scanner, index)) = client_kind(r.client) else {
                continue;
            };
            let spec = &cfg.scanners[index as usize];
            let since_aligned =
                (local_ms_of_day(r.time_s) % (spec.period_s * 1000)).wrapping_sub(spec.delay_ms);
            // Every request falls within its batch: aligned time + delay + at
            // most a few seconds of item gaps.
            assert!(
                since_aligned < 5_000,
                "scan{index} at {} ms after alignment",
                since_aligned
            );
            if since_aligned == 0 {
                batches
                    .entry(index)
                    .or_default()
                    .push(local_ms_of_day(r.time_s));
            }
        }
        let scan0 = &batches[&0];
        assert_eq!(scan0.len(), 78, "09:30 to 15:55 every 5 minutes");
        assert_eq!(
            scan0[0],
            9 * 3_600_000 + 30 * 60_000 + cfg.scanners[0].delay_ms
        );
        assert_eq!(batches[&1].len(), 64, "04:00 to 19:45 every 15 minutes");
    }

    #[test]
    fn news_bursts_raise_the_symbols_rate_and_pull_in_peers() {
        let mut cfg = small(date(2026, 3, 3), 2);
        cfg.news.events_per_trading_day = 20.0;
        let (requests, summary) = collect(&cfg);
        assert!(summary.news.len() >= 20);
        let window_s = 600.0;
        let count = |key: u32, from: f64, to: f64| {
            requests
                .iter()
                .filter(|r| r.key == key && (from..to).contains(&r.time_s))
                .count()
        };
        let (mut before, mut after, mut peers_after, mut peers_before) = (0, 0, 0, 0);
        for e in &summary.news {
            before += count(e.key, e.time_s - window_s, e.time_s);
            after += count(e.key, e.time_s, e.time_s + window_s);
            peers_before += count(e.peers[0], e.time_s - window_s, e.time_s);
            peers_after += count(e.peers[0], e.time_s, e.time_s + window_s);
        }
        assert!(
            after > 3 * before + 100,
            "symbol: {before} before, {after} after"
        );
        assert!(
            peers_after > peers_before + 100,
            "first peer: {peers_before} before, {peers_after} after"
        );
    }

    #[test]
    fn invalid_config_names_the_field_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        let mut cfg = small(date(2026, 3, 2), 1);
        cfg.user.watchlist_min = 50;
        let err = write_trace(&cfg, &path, |_| {}).unwrap_err();
        assert!(err.to_string().contains("user.watchlist_max"), "{err}");
        assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[test]
    fn unwritable_path_is_an_error_naming_it() {
        let path = Path::new("/nonexistent-dir/trace.csv");
        let err = write_trace(&small(date(2026, 3, 2), 1), path, |_| {}).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/"), "{err}");
    }
}
