use super::*;

fn gate() -> HostGate {
    gate_opening_after(3)
}

fn gate_opening_after(breaker_failures: u32) -> HostGate {
    HostGate::new(
        "http://h:80".into(),
        GateSettings {
            breaker_failures,
            breaker_open_s: 10.0,
            breaker_window_calls: 20,
            breaker_min_calls: 10,
            breaker_failure_ratio: 1.0,
            warm_backoff_base_s: 1.0,
            warm_backoff_max_s: 8.0,
        },
    )
}

fn call(g: &HostGate, role: Role, outcome: Outcome, now_s: f64) {
    let a = g.admit(role, now_s).expect("admitted");
    g.report(a, role, outcome, now_s);
}

#[test]
fn consecutive_failures_open_the_breaker_and_one_probe_closes_it() {
    let g = gate();
    for t in [0.0, 0.1, 0.2] {
        call(&g, Role::Demand, Outcome::Failed, t);
    }
    let r = g.admit(Role::Demand, 1.0).unwrap_err();
    assert_eq!((r.cause, r.until_s), (HoldCause::Breaker, 10.2));
    assert!(g.breaker_open(1.0));
    // Half-open: one probe, the others held behind it.
    let probe = g.admit(Role::Demand, 10.2).expect("the probe");
    let held = g.admit(Role::Warm, 10.3).unwrap_err();
    assert_eq!(held.cause, HoldCause::Breaker);
    g.report(probe, Role::Demand, Outcome::Failed, 11.0);
    assert_eq!(g.admit(Role::Demand, 12.0).unwrap_err().until_s, 21.0);
    let probe = g.admit(Role::Demand, 21.0).expect("the next probe");
    g.report(probe, Role::Demand, Outcome::Answered, 21.5);
    assert!(!g.breaker_open(21.5));
    call(&g, Role::Demand, Outcome::Answered, 21.6);
    call(&g, Role::Demand, Outcome::Answered, 21.6);
}

#[test]
fn an_answer_resets_the_failure_count() {
    let g = gate();
    call(&g, Role::Demand, Outcome::Failed, 0.0);
    call(&g, Role::Demand, Outcome::Failed, 0.0);
    call(&g, Role::Demand, Outcome::Answered, 0.0);
    call(&g, Role::Demand, Outcome::Failed, 0.0);
    call(&g, Role::Demand, Outcome::Failed, 0.0);
    assert!(g.refusal(Role::Demand, 0.0).is_none());
}

#[test]
fn a_pause_ends_with_one_probe_and_a_cancelled_probe_hands_it_on() {
    let g = gate();
    call(&g, Role::Demand, Outcome::RateLimited(5.0), 0.0);
    let r = g.admit(Role::Demand, 1.0).unwrap_err();
    assert_eq!((r.cause, r.until_s), (HoldCause::RateLimit, 5.0));
    assert_eq!(g.warm_held_until_s(), 5.0);
    let probe = g.admit(Role::Demand, 5.0).expect("probe");
    assert_eq!(
        g.refusal(Role::Demand, 5.0).map(|r| r.cause),
        Some(HoldCause::RateLimit)
    );
    drop(probe);
    let probe = g.admit(Role::Demand, 5.1).expect("the next call probes");
    g.report(probe, Role::Demand, Outcome::Answered, 5.2);
    assert!(g.refusal(Role::Demand, 5.2).is_none());
}

#[test]
fn warming_rate_halves_on_429_and_grows_additively() {
    let g = gate();
    assert_eq!(g.reserve_warm_start(0.0), Ok(0.0), "unpaced at first");
    for i in 0..30 {
        call(&g, Role::Warm, Outcome::Answered, f64::from(i));
    }
    assert_eq!(g.warm_rate_per_s(), None);
    call(&g, Role::Demand, Outcome::RateLimited(1.0), 30.0);
    // 30 warming starts in the last minute (0.5/s), halved: 0.25/s.
    let rate = g.warm_rate_per_s().expect("paced after a 429");
    assert!((rate - 30.0 / 60.0 * 0.5).abs() < 1e-9, "{rate}");
    let starts: Vec<_> = (0..5).map(|_| g.reserve_warm_start(31.0)).collect();
    assert_eq!(starts, [Ok(31.0), Ok(35.0), Ok(39.0), Err(43.0), Err(43.0)]);
    assert_eq!(g.warm_held_until_s(), 43.0 - WARM_PACE_MAX_WAIT_S);
    // 15/min: each success adds 6/15 call/min, so a minute of them
    // (15 successes) adds about 6/min.
    for _ in 0..15 {
        call(&g, Role::Warm, Outcome::Answered, 40.0);
    }
    let grown_per_min = g.warm_rate_per_s().unwrap() * 60.0;
    assert!((20.0..21.0).contains(&grown_per_min), "{grown_per_min}");
    for _ in 0..20 {
        call(&g, Role::Demand, Outcome::RateLimited(0.0), 100.0);
    }
    assert_eq!(g.warm_rate_per_s(), Some(MIN_WARM_RATE_PER_S), "floored");
}

#[test]
fn warming_backs_off_exponentially_and_demand_does_not() {
    let g = gate_opening_after(100);
    let mut until = Vec::new();
    for t in [0.0, 10.0, 20.0, 30.0, 40.0] {
        call(&g, Role::Warm, Outcome::Failed, t);
        until.push(g.warm_held_until_s() - t);
    }
    assert_eq!(until, [1.0, 2.0, 4.0, 8.0, 8.0]);
    assert!(g.refusal(Role::Demand, 40.5).is_none());
    assert_eq!(
        g.refusal(Role::Warm, 40.5).map(|r| r.cause),
        Some(HoldCause::WarmBackoff)
    );
    // A 429 backs off at least its Retry-After.
    call(&g, Role::Warm, Outcome::Answered, 50.0);
    call(&g, Role::Warm, Outcome::RateLimited(5.0), 50.0);
    assert_eq!(g.warm_held_until_s(), 55.0);
}

/// A gate whose breaker opens after 5 failures in a row or more than half
/// of the last 20 attempts failed (at least 10 of them).
fn gate_with_a_failure_rate() -> HostGate {
    HostGate::new(
        "http://h:80".into(),
        GateSettings {
            breaker_failures: 5,
            breaker_open_s: 10.0,
            breaker_window_calls: 20,
            breaker_min_calls: 10,
            breaker_failure_ratio: 0.5,
            warm_backoff_base_s: 1.0,
            warm_backoff_max_s: 8.0,
        },
    )
}

/// Calls one a second from `start_s` with `pattern` repeated (`true`:
/// the attempt fails) until the breaker refuses one or `calls` are made;
/// the time of that refusal.
fn run_pattern(g: &HostGate, pattern: &[bool], calls: usize, start_s: f64) -> Option<f64> {
    for i in 0..calls {
        let now_s = start_s + i as f64;
        let Ok(a) = g.admit(Role::Demand, now_s) else {
            return Some(now_s);
        };
        let outcome = if pattern[i % pattern.len()] {
            Outcome::Failed
        } else {
            Outcome::Answered
        };
        g.report(a, Role::Demand, outcome, now_s);
    }
    None
}

#[test]
fn a_sixty_percent_failure_rate_opens_the_breaker_without_five_failures_in_a_row() {
    let g = gate_with_a_failure_rate();
    // 3 of every 5 fail, never more than 2 in a row.
    let sixty = [true, false, true, true, false];
    let refused_at = run_pattern(&g, &sixty, 100, 0.0).expect("the breaker opens");
    // The first failure with the minimum of 10 attempts in the window is
    // the 11th attempt (t = 10): 7 of 11 failed.
    assert_eq!(refused_at, 11.0);
    assert!(g.breaker_open(refused_at));
    let r = g.admit(Role::Warm, refused_at).unwrap_err();
    assert_eq!((r.cause, r.until_s), (HoldCause::Breaker, 20.0));
    // Half-open: one probe; it answers, the breaker closes and the rate
    // is measured afresh (one failure right after is not 100 %).
    let probe = g.admit(Role::Demand, 20.0).expect("the probe");
    assert!(
        g.admit(Role::Demand, 20.0).is_err(),
        "held behind the probe"
    );
    g.report(probe, Role::Demand, Outcome::Answered, 20.5);
    assert!(!g.breaker_open(20.5));
    call(&g, Role::Demand, Outcome::Failed, 21.0);
    assert!(g.refusal(Role::Demand, 21.0).is_none());
}

#[test]
fn a_ten_percent_failure_rate_never_opens_the_breaker() {
    let g = gate_with_a_failure_rate();
    let mut ten = [false; 10];
    ten[3] = true;
    assert_eq!(run_pattern(&g, &ten, 500, 0.0), None);
    assert!(!g.breaker_open(500.0));
}

#[test]
fn the_failure_rate_waits_for_the_minimum_and_forgets_calls_past_its_window() {
    let g = gate_with_a_failure_rate();
    // 4 failures of 4: above the ratio but below the minimum of 10 calls.
    assert_eq!(run_pattern(&g, &[true; 4], 4, 0.0), None);
    let g = gate_with_a_failure_rate();
    // 20 answers then alternating: the 20-call window holds 10 failed of
    // 20 (50 %, not above it) at best, and the old answers slide out only
    // as new attempts come in.
    assert_eq!(run_pattern(&g, &[false], 20, 0.0), None);
    assert_eq!(run_pattern(&g, &[true, false], 200, 20.0), None);
    // One more failure than answers in the window tips it over 50 %.
    assert!(run_pattern(&g, &[true, true, false], 30, 220.0).is_some());
}
