use super::super::{AccessContext, TrackerConfig};
use super::Named as Tracker;
use super::{hit, hit_by, tracker};

fn keys(p: &[super::super::Prediction<String>]) -> Vec<&str> {
    p.iter().map(|x| x.key.as_str()).collect()
}

#[test]
fn interleaved_client_sessions_are_not_mixed() {
    let mut t = tracker(100);
    let t0 = 1_780_000_000.0;
    let (s1, s2) = (["A", "B", "C"], ["X", "Y", "Z"]);
    for i in 0..30 {
        let now = t0 + f64::from(i) * 2.0;
        hit_by(&mut t, "c1", s1[i as usize % 3], now);
        hit_by(&mut t, "c2", s2[i as usize % 3], now + 1.0);
    }
    let p = t.predict_next("A", 10);
    assert_eq!(keys(&p), ["B"]);
    assert!(p[0].confidence > 0.99, "{p:?}");
    assert_eq!(keys(&t.predict_next("X", 10)), ["Y"]);
    let c = t.predict_next("C", 10);
    assert_eq!(keys(&c), ["A"]);
    // The last C has no successor yet: 9 of 10 occurrences were followed.
    assert!((c[0].confidence - 0.9).abs() < 1e-3, "{c:?}");
    assert_eq!(t.stats(t0).tracked_clients, 2);
}

#[test]
fn an_idle_gap_splits_sessions() {
    let mut t = tracker(100);
    let t0 = 1_780_000_000.0;
    hit_by(&mut t, "c1", "A", t0);
    hit_by(&mut t, "c1", "B", t0 + 1801.0);
    assert!(t.predict_next("A", 10).is_empty());
    hit_by(&mut t, "c1", "C", t0 + 3000.0);
    assert_eq!(keys(&t.predict_next("B", 10)), ["C"]);
}

#[test]
fn confidence_is_the_share_of_occurrences_followed() {
    let mut t = tracker(100);
    let t0 = 1_780_000_000.0;
    let mut now = t0;
    for next in ["B", "B", "B", "C"] {
        hit_by(&mut t, "c1", "A", now);
        hit_by(&mut t, "c1", next, now + 1.0);
        now += 5.0;
    }
    let p = t.predict_next("A", 10);
    assert_eq!(keys(&p), ["B", "C"]);
    assert!((p[0].confidence - 0.75).abs() < 1e-3, "{p:?}");
    assert!((p[1].confidence - 0.25).abs() < 1e-3, "{p:?}");
    assert_eq!(keys(&t.predict_next_above("A", 0.5, 10)), ["B"]);
    // Repeats of the same key are one step, not new occurrences.
    hit_by(&mut t, "c2", "A", now);
    hit_by(&mut t, "c2", "A", now + 1.0);
    hit_by(&mut t, "c2", "B", now + 2.0);
    assert!((t.predict_next("A", 1)[0].confidence - 0.8).abs() < 1e-3);
}

#[test]
fn anonymous_stream_uses_the_window() {
    let mut t = tracker(100);
    let t0 = 1_780_000_000.0;
    hit(&mut t, "A", t0);
    hit(&mut t, "B", t0 + 5.0);
    hit(&mut t, "C", t0 + 100.0); // outside the 30 s window of A and B
    hit(&mut t, "D", t0 + 110.0);
    assert_eq!(keys(&t.predict_next("A", 10)), ["B"]);
    assert!(t.predict_next("B", 10).is_empty());
    assert_eq!(keys(&t.predict_next("C", 10)), ["D"]);
}

#[test]
fn client_state_is_bounded_and_evicted_successors_vanish() {
    let c = TrackerConfig {
        max_clients: 8,
        ..TrackerConfig::with_max_keys(3)
    };
    let mut t = Tracker::new(c).unwrap();
    let t0 = 1_780_000_000.0;
    for i in 0..50 {
        hit_by(&mut t, &format!("client-{i}"), "A", t0 + f64::from(i));
        assert!(t.stats(t0).tracked_clients <= 8);
    }
    for _ in 0..5 {
        hit_by(&mut t, "c", "A", t0 + 100.0);
        hit_by(&mut t, "c", "A", t0 + 100.0);
    }
    hit_by(&mut t, "c", "B", t0 + 101.0);
    assert_eq!(keys(&t.predict_next("A", 10)), ["B"]);
    // Fill the tracker with hotter keys until B is evicted.
    for i in 0..20 {
        for _ in 0..3 {
            hit(&mut t, &format!("HOT{i}"), t0 + 200.0);
        }
        if t.lookup("B").is_none() {
            break;
        }
    }
    assert!(t.lookup("B").is_none());
    if t.lookup("A").is_some() {
        assert!(t.predict_next("A", 10).is_empty());
    }
}

#[test]
fn groups_track_share_and_members() {
    let mut t = tracker(100);
    let t0 = 1_780_000_000.0;
    t.set_groups("AAPL", &["tech"]);
    t.set_groups("XOM", &["energy"]);
    let energy = AccessContext {
        client: None,
        groups: &["energy"],
    };
    for i in 0..200 {
        let now = t0 + f64::from(i) * 60.0;
        hit(&mut t, "AAPL", now);
        t.track_access("CVX", now, &energy);
        if i % 4 == 0 {
            hit(&mut t, "XOM", now);
        }
    }
    // Then energy surges for ten minutes.
    let surge = t0 + 200.0 * 60.0;
    for i in 0..300 {
        t.track_access("XOM", surge + f64::from(i) * 2.0, &AccessContext::default());
    }
    let now = surge + 600.0;
    let g = t.group_trends(now, 10);
    assert_eq!(g[0].group, "energy", "{g:?}");
    assert!(g[0].lift > 1.0 && g[1].lift < 1.0, "{g:?}");
    assert!((0.0..=1.0).contains(&g[0].share_short));
    let m: Vec<String> = t
        .group_members("energy", 10)
        .into_iter()
        .map(|k| k.key)
        .collect();
    assert_eq!(m, ["XOM", "CVX"]);
    assert_eq!(t.groups_of("CVX"), ["energy"]);
    // set_groups replaces learned membership.
    t.set_groups("CVX", &["oil"]);
    let m: Vec<String> = t
        .group_members("energy", 10)
        .into_iter()
        .map(|k| k.key)
        .collect();
    assert_eq!(m, ["XOM"]);
}
