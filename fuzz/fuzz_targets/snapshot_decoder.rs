//! The snapshot decoder on arbitrary bytes: `Envelope::from_bytes` and an
//! engine's `restore` give a typed error or a value, and a value survives
//! a round trip through the project's own encoder.
//!
//! The first input byte picks the mode: even, the rest is a whole snapshot
//! file; odd, the rest is a section table that `prewarm_core::snapshot::seal`
//! wraps in a valid header, so the fuzzer gets past the checksum.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prewarm_core::engine::{Engine, EngineConfig};
use prewarm_core::snapshot::{Envelope, seal};

/// Snapshot time of the re-encoded engine state, Unix seconds.
const NOW_S: f64 = 1_772_000_000.0;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let sealed;
    let bytes = if mode % 2 == 0 {
        rest
    } else {
        sealed = seal(rest);
        &sealed
    };
    check_envelope(bytes);
    check_engine_restore(bytes);
});

/// Decodes; a decoded envelope re-encodes to the same bytes and decodes to
/// the same value.
fn check_envelope(bytes: &[u8]) {
    let Ok(envelope) = Envelope::from_bytes(bytes) else {
        return;
    };
    let again = envelope.to_bytes();
    assert_eq!(again, bytes, "the encoding is canonical");
    assert_eq!(Envelope::from_bytes(&again).as_ref(), Ok(&envelope));
}

fn fresh_engine() -> Engine {
    Engine::new(EngineConfig::default()).expect("the default engine config is valid")
}

/// Restores into a fresh engine; restored state snapshots to bytes that
/// restore again and snapshot to the same bytes.
fn check_engine_restore(bytes: &[u8]) {
    let mut first = fresh_engine();
    if first.restore(bytes).is_err() {
        return;
    }
    let encoded = first.snapshot(NOW_S);
    let mut second = fresh_engine();
    if let Err(e) = second.restore(&encoded) {
        panic!("the engine's own snapshot of restored state is refused: {e}");
    }
    assert_eq!(
        second.snapshot(NOW_S),
        encoded,
        "restore and snapshot agree"
    );
}
