use super::*;
use crate::cache::{FetchOrigin, KeyId};
use crate::calendar::MarketSession;
use crate::engine::{Engine, EngineConfig, Lookup};
use crate::model::{FeatureInputs, Features};
use crate::snapshot::FORMAT_VERSION;
use crate::strategy::StrategyId;
use crate::tracker::AccessContext;
use proptest::prelude::*;

const T0: f64 = 1_750_000_000.0;

fn config() -> EngineConfig {
    let mut cfg = EngineConfig {
        ttl_s: 30.0,
        cost_half_life_s: Some(86_400.0),
        ..EngineConfig::default()
    };
    cfg.warming.max_cost_ratio = 1.0;
    cfg.warming.rate_limit_per_min = 600.0;
    cfg
}

/// An engine driven like the replay driver over two hours of traffic on
/// a few keys with cadences; returns it and the last instant.
fn trained() -> (Engine, f64) {
    let mut e = Engine::new(config()).unwrap();
    let mut t = T0;
    for i in 0..4000u32 {
        t = T0 + f64::from(i) * 2.0;
        let k = e.intern(&format!("K{}", (i * 7) % 13 + (i % 3)));
        while let Some(at) = e.next_timeout().filter(|&at| at <= t) {
            e.handle_timeout(at);
            drain(&mut e, at);
        }
        if let Lookup::Miss { .. } = e.on_access(t, k, &AccessContext::default()) {
            e.on_fetched(t, k, FetchOrigin::Demand, true);
        }
        drain(&mut e, t);
    }
    (e, t)
}

fn drain(e: &mut Engine, t: f64) {
    while let Some(o) = e.poll_warm(t) {
        e.on_fetched(t, o.key, FetchOrigin::Warm(o.strategy), true);
    }
}

fn candidates() -> Vec<Features> {
    let mut out = Vec::new();
    for (i, s) in StrategyId::ALL.into_iter().enumerate() {
        for p in [0.05, 0.4, 0.9] {
            out.push(Features::from_inputs(&FeatureInputs {
                strategy: s,
                session: MarketSession::Regular,
                strategy_p: p,
                rate_short_per_ttl: 0.3 * i as f64,
                popularity: 12.0,
                since_last_ttl: 0.5,
                cadence_score: 0.7,
                cadence_spread: 0.2,
                lead_ttl: 0.1,
                entry_age_ttl: Some(0.9),
                gaps: 5,
            }));
        }
    }
    out
}

fn section_of(e: &Engine) -> Section {
    section(e.learner(), e.cost_cap())
}

/// `bytes` with its `model` section replaced by `s`.
fn with_section(bytes: &[u8], s: Section) -> Vec<u8> {
    let mut env = Envelope::from_bytes(bytes).unwrap();
    env.put(s);
    env.to_bytes()
}

#[test]
fn a_restored_engine_scores_and_prices_as_the_saved_one() {
    let (a, now) = trained();
    let learner = a.learner();
    assert!(learner.model.trained() > 100, "{}", learner.model.trained());
    assert!(
        a.cost_cap().lambda() > 0.0,
        "a cap of 1 puts a price on warming"
    );
    let mut b = Engine::new(config()).unwrap();
    b.restore(&a.snapshot(now)).unwrap();
    for f in candidates() {
        assert_eq!(learner.model.predict(&f), b.learner().model.predict(&f));
    }
    assert_eq!(b.learner().model, learner.model);
    assert_eq!(b.learner().reliability, learner.reliability);
    assert_eq!(
        b.learner().pending.len(),
        0,
        "pending examples are not saved"
    );
    let (ca, cb) = (a.cost_cap(), b.cost_cap());
    assert_eq!((ca.lambda(), ca.threshold()), (cb.lambda(), cb.threshold()));
    assert_eq!(ca.ratio(), cb.ratio());
    assert!(ca.history().eq(cb.history()));
    assert_eq!(b.tracker().len(), a.tracker().len());
    // Saved again, it is the same section.
    assert_eq!(section_of(&b), section_of(&a));
}

#[test]
fn a_restored_engine_keeps_learning_and_pricing() {
    let (a, now) = trained();
    let mut b = Engine::new(config()).unwrap();
    b.restore(&a.snapshot(now)).unwrap();
    let before = b.learner().model.trained();
    let k = b.intern("K1");
    for i in 1..200u32 {
        let t = now + 600.0 + f64::from(i) * 5.0;
        b.handle_timeout(t);
        if let Lookup::Miss { .. } = b.on_access(t, k, &AccessContext::default()) {
            b.on_fetched(t, k, FetchOrigin::Demand, true);
        }
        drain(&mut b, t);
    }
    assert!(b.learner().model.trained() > before);
    let last = b.cost_cap().history().last().unwrap().at_s;
    assert!(last > now + 600.0, "the price steps again after a restore");
}

#[test]
fn an_older_snapshot_without_the_model_section_restores_a_fresh_model() {
    let (a, now) = trained();
    let old = a.tracker().snapshot(now, a.keys()); // a tracker section only
    assert!(
        Envelope::from_bytes(&old)
            .unwrap()
            .section(SECTION_NAME)
            .is_none()
    );
    let mut b = Engine::new(config()).unwrap();
    b.restore(&old).unwrap();
    assert_eq!(b.tracker().len(), a.tracker().len());
    assert_eq!(b.learner().model, DemandModel::default());
    assert_eq!(b.learner().reliability.examples(), 0);
    assert_eq!(b.cost_cap().lambda(), 0.0);
}

#[test]
fn another_feature_layout_restores_a_fresh_model_and_keeps_the_price() {
    let (a, now) = trained();
    let mut w = Writer::default();
    w.u32(FEATURES as u32 + 1);
    (0..2 * (FEATURES + 1)).for_each(|_| w.f64(0.5));
    w.u64(7);
    for _ in 0..10 {
        w.u64(0);
        w.f64(0.0);
        w.u64(0);
    }
    a.cost_cap().price_state().write(&mut w);
    let s = Section {
        name: SECTION_NAME.into(),
        version: SECTION_VERSION,
        bytes: w.into_bytes(),
    };
    let mut b = Engine::new(config()).unwrap();
    b.restore(&with_section(&a.snapshot(now), s)).unwrap();
    assert_eq!(b.learner().model, DemandModel::default());
    assert_eq!(b.cost_cap().lambda(), a.cost_cap().lambda());
}

/// Restoring `bytes` fails as `expected` says and leaves the engine fresh.
fn fails(bytes: &[u8], expected: impl Fn(&SnapshotError) -> bool, what: &str) {
    let mut b = Engine::new(config()).unwrap();
    let err = b.restore(bytes).expect_err(what);
    assert!(expected(&err), "{what}: {err}");
    assert_eq!(b.tracker().len(), 0, "{what}: the engine is unchanged");
    assert_eq!(b.learner().model, DemandModel::default(), "{what}");
}

fn malformed(e: &SnapshotError) -> bool {
    matches!(e, SnapshotError::Malformed(_))
}

#[test]
fn malformed_or_newer_model_sections_are_typed_errors() {
    let (a, now) = trained();
    let bytes = a.snapshot(now);
    let good = section_of(&a);
    let edit = |f: &dyn Fn(&mut Section)| {
        let mut s = good.clone();
        f(&mut s);
        with_section(&bytes, s)
    };
    let newer = edit(&|s| s.version = SECTION_VERSION + 1);
    fails(
        &newer,
        |e| matches!(e, SnapshotError::NewerVersion { what, .. } if what == SECTION_NAME),
        "newer",
    );
    fails(
        &edit(&|s| s.bytes.truncate(s.bytes.len() / 2)),
        malformed,
        "cut",
    );
    fails(&edit(&|s| s.bytes.push(0)), malformed, "trailing byte");
    fails(&edit(&|s| s.bytes.clear()), malformed, "empty");
    let nan = f64::NAN.to_le_bytes();
    fails(
        &edit(&|s| s.bytes[4..12].copy_from_slice(&nan)),
        malformed,
        "NaN z",
    );
    let negative = (-1.0f64).to_le_bytes();
    let n0 = 4 + 8 * FEATURES;
    fails(
        &edit(&|s| s.bytes[n0..n0 + 8].copy_from_slice(&negative)),
        malformed,
        "n < 0",
    );
    // The first tenth: more requested than examples.
    let tenth0 = 4 + 16 * FEATURES + 8;
    let requested = 1u64 << 40;
    fails(
        &edit(&|s| s.bytes[tenth0 + 16..tenth0 + 24].copy_from_slice(&requested.to_le_bytes())),
        malformed,
        "calibration",
    );
    let price = tenth0 + 10 * 24;
    fails(
        &edit(&|s| s.bytes[price..price + 8].copy_from_slice(&negative)),
        malformed,
        "λ < 0",
    );
    let count = price + 6 * 8;
    let many = (HISTORY_POINTS_OVER as u32).to_le_bytes();
    fails(
        &edit(&|s| s.bytes[count..count + 4].copy_from_slice(&many)),
        malformed,
        "history length",
    );
    let huge = u32::MAX.to_le_bytes();
    fails(
        &edit(&|s| s.bytes[..4].copy_from_slice(&huge)),
        malformed,
        "feature count",
    );
    assert_eq!(FORMAT_VERSION, 1, "the envelope itself is unchanged");
}

/// One more price point than a snapshot may hold (a day of steps).
const HISTORY_POINTS_OVER: usize = 1441;

/// The section of a trained engine, built once for the property tests.
fn trained_section() -> &'static Section {
    static SECTION: std::sync::OnceLock<Section> = std::sync::OnceLock::new();
    SECTION.get_or_init(|| section_of(&trained().0))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn flipping_bytes_of_a_real_section_never_panics(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..5)
    ) {
        let mut s = trained_section().clone();
        for (at, mask) in flips {
            let i = at.index(s.bytes.len());
            s.bytes[i] ^= mask;
        }
        let _ = LearnedState::from_section(&s);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let s = Section { name: SECTION_NAME.into(), version: SECTION_VERSION, bytes };
        let _ = LearnedState::from_section(&s);
    }

    #[test]
    fn decoding_a_cut_section_is_an_error(cut in 0usize..4096) {
        let mut w = Writer::default();
        w.u32(FEATURES as u32);
        (0..2 * FEATURES).for_each(|i| w.f64(i as f64));
        w.u64(3);
        (0..10).for_each(|_| { w.u64(0); w.f64(0.0); w.u64(0); });
        crate::cost::CostCap::new(1.25, 10.0, None).price_state().write(&mut w);
        let full = w.into_bytes();
        let s = Section { name: SECTION_NAME.into(), version: SECTION_VERSION, bytes: full[..cut.min(full.len())].to_vec() };
        let r = LearnedState::from_section(&s);
        prop_assert_eq!(r.is_ok(), cut >= full.len());
    }
}

#[test]
fn the_price_state_round_trips() {
    let mut c = CostCap::new(1.1, 20.0, Some(3600.0));
    for i in 0..300u32 {
        let t = T0 + f64::from(i) * 30.0;
        c.on_access(t, KeyId(i % 5), &crate::ttl::TtlRule::from(60.0), None);
        c.on_call(t);
        c.on_call(t);
    }
    let s = c.price_state();
    assert!(s.lambda > 0.0 && !s.history.is_empty());
    let mut w = Writer::default();
    s.write(&mut w);
    let bytes = w.into_bytes();
    let mut r = Reader::new(&bytes, "test");
    assert_eq!(PriceState::read(&mut r).unwrap(), s);
    r.finish().unwrap();
    let mut fresh = CostCap::new(1.1, 20.0, Some(3600.0));
    fresh.resume(s.clone());
    assert_eq!(fresh.price_state(), s);
    assert_eq!(
        (fresh.threshold(), fresh.ratio()),
        (c.threshold(), c.ratio())
    );
}
