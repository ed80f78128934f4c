use super::super::popular::TOP_CANDIDATES;
use super::{AccessContext, hit, tracker};
use proptest::prelude::*;

const HL: f64 = 6.0 * 3600.0;

fn brute(log: &[(usize, f64)], now_s: f64, keys: usize) -> Vec<f64> {
    let mut score = vec![0.0; keys];
    for &(k, t) in log {
        score[k] += (-(now_s - t) / HL).exp2();
    }
    score
}

#[test]
fn half_life_halves_the_score_exactly() {
    let mut t = tracker(100);
    let t0 = 1_700_000_000.0;
    for _ in 0..8 {
        hit(&mut t, "AAPL", t0);
    }
    let p0 = t.popularity("AAPL", t0).unwrap();
    assert!((p0 - 8.0).abs() < 1e-9);
    let p1 = t.popularity("AAPL", t0 + HL).unwrap();
    assert!((p1 - 4.0).abs() < 1e-9, "{p1}");
    let p3 = t.popularity("AAPL", t0 + 3.0 * HL).unwrap();
    assert!((p3 - 1.0).abs() < 1e-9, "{p3}");
}

#[test]
fn rebase_over_days_keeps_scores_and_order() {
    let mut t = tracker(100);
    let t0 = 1_700_000_000.0;
    let mut log = Vec::new();
    for step in 0..2000 {
        let now = t0 + f64::from(step) * 120.0; // ~2.8 days, many rebases
        let k = (step * 7 % 5) as usize;
        hit(&mut t, &format!("K{k}"), now);
        log.push((k, now));
        if step % 10 == 0 {
            t.maintain(now);
        }
    }
    let now = t0 + 2000.0 * 120.0;
    let want = brute(&log, now, 5);
    for (k, w) in want.iter().enumerate() {
        let got = t.popularity(&format!("K{k}"), now).unwrap();
        assert!((got - w).abs() < 1e-6 * w.max(1.0), "K{k}: {got} vs {w}");
    }
}

fn check_top(t: &super::Named, log: &[(usize, f64)], now: f64, keys: usize, limit: usize) {
    let want = brute(log, now, keys);
    let mut sorted: Vec<f64> = want.iter().copied().filter(|x| *x > 0.0).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    sorted.truncate(limit);
    let got = t.popular(now, limit);
    assert_eq!(got.len(), sorted.len());
    for (g, w) in got.iter().zip(&sorted) {
        assert!(
            (g.score - w).abs() < 1e-6 * w.max(1.0),
            "{} {} vs {}",
            g.key,
            g.score,
            w
        );
        let k: usize = g.key[1..].parse().unwrap();
        assert!(
            (want[k] - g.score).abs() < 1e-6 * w.max(1.0),
            "reported score is the key's own"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn popular_top_n_matches_brute_force(
        accesses in proptest::collection::vec((0usize..3000, 0u32..600), 1..6000),
        limit in 1usize..120,
    ) {
        let mut t = tracker(1_000_000);
        let mut now = 1_700_000_000.0;
        let mut log = Vec::new();
        for (k, dt) in accesses {
            now += f64::from(dt);
            hit(&mut t, &format!("K{k}"), now);
            log.push((k, now));
        }
        check_top(&t, &log, now, 3000, limit);
        check_top(&t, &log, now + 3600.0, 3000, limit);
        // Beyond the candidate set the full scan answers.
        check_top(&t, &log, now, 3000, TOP_CANDIDATES + 5);
    }
}

#[test]
fn bounded_memory_under_ten_times_max_keys() {
    let max = 2000;
    let mut t = tracker(max);
    let t0 = 1_700_000_000.0;
    let mut mem_at_full = 0;
    for i in 0..10 * max {
        let now = t0 + i as f64 * 0.01;
        hit(&mut t, &format!("key-{i:08}"), now);
        hit(&mut t, "HOT", now);
        if i == 2 * max {
            mem_at_full = t.approx_memory_bytes();
        }
        assert!(t.len() <= max);
    }
    let s = t.stats(t0 + 200.0);
    assert_eq!(s.tracked_keys, max);
    assert!(s.evicted_keys >= (9 * max) as u64);
    assert!(
        t.approx_memory_bytes() as f64 <= mem_at_full as f64 * 1.05,
        "{} vs {}",
        t.approx_memory_bytes(),
        mem_at_full
    );
    assert_eq!(s.top_10[0].key, "HOT", "the hot key survives eviction");
    let per_key = s.approx_memory_bytes as f64 / max as f64;
    assert!(per_key <= 256.0, "{per_key} bytes per key");
}

#[test]
fn forget_after_drops_idle_keys_in_maintain() {
    let mut t = tracker(100);
    let t0 = 1_700_000_000.0;
    hit(&mut t, "OLD", t0);
    hit(&mut t, "NEW", t0 + 29.0 * 86_400.0);
    t.maintain(t0 + 31.0 * 86_400.0);
    assert!(t.lookup("OLD").is_none());
    assert!(t.lookup("NEW").is_some());
    assert_eq!(t.stats(t0).forgotten_keys, 1);
}

#[test]
fn keys_given_groups_before_any_access_are_not_forgotten_at_the_first_upkeep() {
    let mut t = tracker(100);
    t.set_groups("XOM", &["energy"]);
    t.maintain(1_000.0); // no access yet: nothing is idle
    let t0 = 1_700_000_000.0;
    hit(&mut t, "AAPL", t0);
    t.maintain(t0 + 60.0);
    assert!(
        t.lookup("XOM").is_some(),
        "set at the reference time, not idle"
    );
    assert_eq!(t.groups_of("XOM"), ["energy"]);
    // Idle for forget_after_s after the first access, it goes.
    hit(&mut t, "AAPL", t0 + 31.0 * 86_400.0);
    t.maintain(t0 + 31.0 * 86_400.0);
    assert!(t.lookup("XOM").is_none());
}

#[test]
fn an_evicted_key_answers_none_and_is_reported_once_asked() {
    use crate::keys::KeyTable;
    use crate::tracker::{Tracker, TrackerConfig};
    let mut keys = KeyTable::default();
    let (a, b, c) = (keys.intern("A"), keys.intern("B"), keys.intern("C"));
    let mut t = Tracker::new(TrackerConfig::with_max_keys(1)).unwrap();
    let ctx = AccessContext::default();
    t.track_access(a, 1.0, &ctx);
    assert!(t.popularity(a, 1.0).is_some());
    t.track_access(b, 2.0, &ctx);
    assert!(!t.is_tracked(a));
    assert_eq!(t.popularity(a, 2.0), None);
    assert!(!t.has_dropped(), "not collected unless asked");
    t.report_drops();
    t.track_access(c, 3.0, &ctx);
    let mut dropped = Vec::new();
    t.take_dropped(&mut dropped);
    assert_eq!(dropped, [b]);
    assert!(!t.has_dropped());
}

#[test]
fn a_key_tracked_again_after_eviction_starts_afresh() {
    let mut t = tracker(2);
    let ctx = AccessContext::default();
    t.track_access("A", 0.0, &ctx);
    // A goes cold and is evicted; its slot is reused by another key.
    for (i, k) in ["B", "C", "D", "E"].into_iter().enumerate() {
        for _ in 0..5 {
            t.track_access(k, 1.0 + i as f64, &ctx);
        }
    }
    assert!(t.lookup("A").is_none(), "A was evicted");
    let before: Vec<_> = ["D", "E"].iter().map(|k| t.popularity(k, 10.0)).collect();
    t.track_access("A", 10.0, &ctx);
    assert!(t.lookup("A").is_some(), "the access went to A");
    assert!((t.popularity("A", 10.0).unwrap() - 1.0).abs() < 1e-9);
    // The key that took A's old slot (if still there) did not get A's hit.
    let after: Vec<_> = ["D", "E"].iter().map(|k| t.popularity(k, 10.0)).collect();
    for (b, a) in before.iter().zip(&after) {
        if let (Some(b), Some(a)) = (b, a) {
            assert!(a <= b, "{a} > {b}");
        }
    }
}
