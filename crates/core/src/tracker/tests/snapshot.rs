use super::super::{AccessContext, TrackerConfig};
use super::Named as Tracker;
use super::{hit, hit_by, ny};
use crate::snapshot::{Envelope, FORMAT_VERSION, SnapshotError};

fn busy() -> (Tracker, f64) {
    let c = TrackerConfig {
        profile_min_accesses: 2.0,
        max_clients: 50,
        ..TrackerConfig::with_max_keys(500)
    };
    let mut t = Tracker::new(c).unwrap();
    let mut now = ny(2026, 6, 1, 9, 0);
    for i in 0..5000u32 {
        let k = format!("K{}", (i * 7919) % 700); // more keys than max_keys
        let client = format!("c{}", i % 60);
        if i % 3 == 0 {
            hit_by(&mut t, &client, &k, now);
        } else if i % 3 == 1 {
            t.track_access(
                &k,
                now,
                &AccessContext {
                    client: None,
                    groups: &["g1", "g2"],
                },
            );
        } else {
            hit(&mut t, &k, now);
        }
        now += 37.0;
        if i % 50 == 0 {
            t.maintain(now);
        }
    }
    for _ in 0..10 {
        hit(&mut t, "BURST", now);
    }
    (t, now)
}

fn answers(t: &Tracker, now: f64) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{}",
        t.popular(now, 50),
        t.trending(now, 3600.0, 20),
        t.upcoming(now, 7200.0, 20),
        t.predict_next("K7", 5),
        t.group_trends(now, 5),
        t.group_members("g1", 10),
        super::super::TrackerStats {
            approx_memory_bytes: 0,
            ..t.stats(now)
        },
        t.expected_rate("K14", now),
    )
}

#[test]
fn round_trip_answers_identically() {
    let (t, now) = busy();
    let bytes = t.snapshot(now);
    let r = Tracker::restore(&bytes, t.config().clone()).unwrap();
    assert_eq!(answers(&t, now), answers(&r, now));
    assert_eq!(answers(&t, now + 5000.0), answers(&r, now + 5000.0));
    assert!(!t.trending(now, 3600.0, 5).is_empty());
    assert!(!t.upcoming(now, 7200.0, 5).is_empty());
    // And it keeps learning the same way.
    let (mut a, mut b) = (t, r);
    for i in 0..200 {
        hit_by(&mut a, "c1", &format!("K{i}"), now + f64::from(i));
        hit_by(&mut b, "c1", &format!("K{i}"), now + f64::from(i));
    }
    assert_eq!(answers(&a, now + 300.0), answers(&b, now + 300.0));
    assert_eq!(a.snapshot(now + 300.0), b.snapshot(now + 300.0));
}

#[test]
fn restore_into_a_smaller_config_fits_it() {
    let (t, now) = busy();
    let c = TrackerConfig {
        max_clients: 5,
        ..TrackerConfig::with_max_keys(100)
    };
    let r = Tracker::restore(&t.snapshot(now), c).unwrap();
    let s = r.stats(now);
    assert_eq!(s.tracked_keys, 100);
    assert!(s.profiled_keys <= 12 && s.tracked_clients <= 5);
    assert_eq!(
        r.popular(now, 10),
        t.popular(now, 10),
        "the hottest keys are kept"
    );
}

#[test]
fn restore_with_other_half_lives_carries_decayed_counts() {
    let (t, now) = busy();
    let c = TrackerConfig {
        popularity_half_life_s: 3600.0,
        ..t.config().clone()
    };
    let r = Tracker::restore(&t.snapshot(now), c).unwrap();
    let (a, b) = (t.popular(now, 5), r.popular(now, 5));
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.key, y.key);
        assert!((x.score - y.score).abs() < 1e-6 * x.score);
    }
}

#[test]
fn corrupt_truncated_and_newer_snapshots_are_typed_errors() {
    let (t, now) = busy();
    let bytes = t.snapshot(now);
    let c = || t.config().clone();
    assert!(matches!(
        Tracker::restore(b"hello world, not a snapshot", c()),
        Err(SnapshotError::BadMagic)
    ));
    let cut = &bytes[..bytes.len() / 2];
    assert!(matches!(
        Tracker::restore(cut, c()),
        Err(SnapshotError::Truncated { .. })
    ));
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    assert!(matches!(
        Tracker::restore(&flipped, c()),
        Err(SnapshotError::ChecksumMismatch { .. })
    ));
    let mut newer = bytes.clone();
    newer[6..10].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let e = Tracker::restore(&newer, c()).unwrap_err();
    assert!(
        matches!(e, SnapshotError::NewerVersion { found, supported, .. } if found == FORMAT_VERSION + 1 && supported == FORMAT_VERSION)
    );
    // A newer tracker section inside a valid envelope.
    let mut env = Envelope::from_bytes(&bytes).unwrap();
    env.sections[0].version += 1;
    assert!(matches!(
        Tracker::restore(&env.to_bytes(), c()),
        Err(SnapshotError::NewerVersion { .. })
    ));
    // A valid envelope whose section is garbage: malformed, no panic.
    let mut env = Envelope::from_bytes(&bytes).unwrap();
    env.sections[0].bytes.truncate(1000);
    assert!(matches!(
        Tracker::restore(&env.to_bytes(), c()),
        Err(SnapshotError::Malformed(_))
    ));
    let mut env = Envelope::from_bytes(&bytes).unwrap();
    env.sections.clear();
    assert!(matches!(
        Tracker::restore(&env.to_bytes(), c()),
        Err(SnapshotError::MissingSection(_))
    ));
}

#[test]
fn section_garbage_never_panics() {
    let (t, now) = busy();
    let section = t.snapshot_section(now);
    let mut x: u64 = 12345;
    for _ in 0..200 {
        let mut s = section.clone();
        for _ in 0..4 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (x >> 33) as usize % s.bytes.len();
            s.bytes[i] ^= (x >> 13) as u8 | 1;
        }
        let _ = Tracker::from_section(&s, t.config().clone());
    }
}
