use super::learner::Learner;
use super::*;
use crate::cache::KeyId;

fn inputs(strategy_p: f64, rate_short_per_ttl: f64) -> FeatureInputs {
    FeatureInputs {
        strategy: StrategyId::Popular,
        session: MarketSession::Regular,
        strategy_p,
        rate_short_per_ttl,
        popularity: 0.0,
        since_last_ttl: 1.0,
        cadence_score: 0.0,
        cadence_spread: 0.0,
        lead_ttl: 0.0,
        entry_age_ttl: None,
        gaps: 0,
    }
}

/// A small deterministic generator (splitmix64).
fn uniform(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

#[test]
fn untrained_model_answers_the_strategys_own_estimate() {
    let m = DemandModel::default();
    for p in [0.01, 0.3, 0.9] {
        let got = m.predict(&Features::from_inputs(&inputs(p, 1.0)));
        assert!((got - p).abs() < 1e-6, "{p} -> {got}");
    }
}

/// log loss of `predict` over examples drawn like the training data.
fn log_loss(m: &DemandModel, truth: impl Fn(f64) -> f64, seed: u64) -> f64 {
    let mut s = seed;
    let mut sum = 0.0;
    for _ in 0..20_000 {
        let rate = uniform(&mut s) * 5.0;
        let y = uniform(&mut s) < truth(rate);
        let p = m.predict(&Features::from_inputs(&inputs(0.5, rate)));
        sum -= if y { p.ln() } else { (1.0 - p).ln() };
    }
    sum / 20_000.0
}

#[test]
fn training_learns_a_signal_the_strategy_missed_and_stays_calibrated() {
    // The strategy always says 0.5; the truth is the Poisson chance of an
    // access within one TTL at the key's rate.
    let truth = |rate: f64| 1.0 - (-rate).exp();
    let mut learner = Learner::default();
    let mut s = 7u64;
    for i in 0..50_000u32 {
        let rate = uniform(&mut s) * 5.0;
        let t = f64::from(i);
        learner.score(KeyId(i), t, t + 1.0, &inputs(0.5, rate));
        if uniform(&mut s) < truth(rate) {
            learner.on_access(KeyId(i), t + 0.5);
        }
        learner.advance(t + 1.0);
    }
    assert_eq!(learner.model.trained(), 50_000);
    let untrained = log_loss(&DemandModel::default(), truth, 99);
    let trained = log_loss(&learner.model, truth, 99);
    assert!(trained < untrained * 0.85, "{trained} vs {untrained}");
    assert!(
        learner.reliability.calibration_error() < 0.05,
        "{:?}",
        learner.reliability.rows()
    );
}

#[test]
fn parts_round_trip_and_reject_another_layout() {
    let mut m = DemandModel::default();
    let f = Features::from_inputs(&inputs(0.2, 3.0));
    for _ in 0..100 {
        m.train(&f, true);
    }
    let (z, n, trained) = m.to_parts();
    assert_eq!(DemandModel::from_parts(&z, &n, trained), Some(m.clone()));
    assert_eq!(DemandModel::from_parts(&z[1..], &n[1..], trained), None);
    let mut bad = z.clone();
    bad[0] = f64::NAN;
    assert_eq!(DemandModel::from_parts(&bad, &n, trained), None);
}
