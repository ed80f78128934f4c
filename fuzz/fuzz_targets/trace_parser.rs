//! The replay trace parser (`prewarm_sim::trace::read_trace_from`) and the
//! universe parser (`prewarm_core::universe::parse_universe`) on arbitrary
//! bytes: a typed error or a value that keeps the documented invariants.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prewarm_core::universe::parse_universe;
use prewarm_sim::trace::{MAX_ABS_TIMESTAMP_S, Trace, TraceError, read_trace_from};

fuzz_target!(|data: &[u8]| {
    check_trace(data);
    if let Ok(text) = std::str::from_utf8(data) {
        check_universe(text);
    }
});

/// Lines in `data` as the parser counts them (the last may lack `\n`).
fn line_count(data: &[u8]) -> u64 {
    let newlines = data.iter().filter(|&&b| b == b'\n').count() as u64;
    newlines + u64::from(!data.ends_with(b"\n"))
}

fn check_trace(data: &[u8]) {
    match read_trace_from(data, "fuzz.csv") {
        Ok(trace) => check_trace_invariants(&trace),
        Err(e) => {
            let line = e.line().expect("an in-memory trace fails on a line");
            assert!(line >= 1 && line <= line_count(data), "{e}");
            assert!(matches!(e, TraceError::Line { .. }));
            assert!(e.to_string().starts_with(&format!("fuzz.csv:{line}: ")));
        }
    }
}

fn check_trace_invariants(t: &Trace) {
    assert_eq!(t.name, "fuzz.csv");
    assert_eq!(t.key_ids.len(), t.times_s.len());
    assert!(t.times_s.windows(2).all(|w| w[0] <= w[1]), "non-decreasing");
    assert!(
        t.times_s
            .iter()
            .all(|s| s.is_finite() && s.abs() <= MAX_ABS_TIMESTAMP_S)
    );
    check_interned(&t.key_ids, &t.keys);
    match &t.client_ids {
        Some(ids) => {
            assert_eq!(ids.len(), t.times_s.len());
            check_interned(ids, &t.clients);
        }
        None => assert!(t.clients.is_empty()),
    }
}

/// Ids are dense in order of first appearance; names are distinct,
/// non-empty, trimmed and comma-free.
fn check_interned(ids: &[u32], names: &[Box<str>]) {
    let mut next = 0u32;
    for &id in ids {
        assert!(id <= next, "ids are given in order of first appearance");
        next = next.max(id + 1);
    }
    assert_eq!(next as usize, names.len());
    let mut sorted: Vec<&str> = names.iter().map(|n| &**n).collect();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "names are distinct");
    for name in names {
        assert!(!name.is_empty() && !name.contains(','));
        assert_eq!(name.trim_ascii(), &**name);
    }
}

fn check_universe(text: &str) {
    match parse_universe(text) {
        Ok(memberships) => {
            for m in &memberships {
                assert!(!m.key.is_empty() && !m.group.is_empty());
                assert!(!m.key.contains(',') && !m.group.contains(','));
                assert!(m.weight.is_finite() && m.weight >= 0.0);
            }
        }
        Err(e) => {
            assert!(e.line >= 1 && e.line <= text.lines().count() as u64, "{e}");
            assert!(e.to_string().starts_with(&format!("line {}, ", e.line)));
        }
    }
}
