//! One upstream host's health: its 429 pause, its circuit breaker, the
//! warming back-off and the warming rate (AIMD), as a state machine driven
//! by `now_s` (Unix seconds) so it is tested without a clock.
//!
//! Invariants:
//! - A call is admitted only outside a 429 pause and outside an open
//!   breaker; warming calls also wait out the warming back-off.
//! - When a pause or an open period ends, one call goes first (the probe,
//!   half-open); the others are held until it answers. A probe that fails
//!   opens the breaker again (so probes go at most one per
//!   `breaker_open_s`); one that succeeds closes it.
//! - `breaker_failures` consecutive failed attempts (5xx, timeout,
//!   transport) open the breaker; any answer that is not a failure (2xx,
//!   4xx other than 429) resets the count.
//! - Every 429 halves the warming rate (multiplicative decrease, never
//!   below [`MIN_WARM_RATE_PER_S`]); warming successes raise it by
//!   [`WARM_RATE_GAIN_PER_MIN`] calls/min per minute of successes at
//!   whatever rate (additive increase). Before the first 429 warming is
//!   not paced; the first sets the rate to half the warming rate measured
//!   over the last minute. Demand is never paced.
//! - A warming 429 or failure doubles the warming back-off (from
//!   `warm_backoff_base_s` up to `warm_backoff_max_s`); a warming success
//!   resets it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Floor of the warming rate after decreases: one call a minute.
pub const MIN_WARM_RATE_PER_S: f64 = 1.0 / 60.0;
/// Additive increase of the warming rate: calls/min gained per minute of
/// warming successes (each success at `r` calls/min adds `GAIN / r`).
pub const WARM_RATE_GAIN_PER_MIN: f64 = 6.0;
/// Window over which the warming rate in use is measured, seconds.
const WARM_RATE_WINDOW_S: f64 = 60.0;
/// Warming starts remembered to measure the rate.
const WARM_STARTS_KEPT: usize = 256;
/// How soon a call held behind a probe looks again, seconds.
pub const PROBE_RECHECK_S: f64 = 0.1;
/// Longest a warming call waits for its start under the warming rate,
/// seconds; beyond it the call is refused and warming is held back until
/// a start comes within reach.
pub const WARM_PACE_MAX_WAIT_S: f64 = 10.0;

/// The thresholds of a host's gate (from `[upstream]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateSettings {
    /// Consecutive failed attempts that open the breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before a probe, seconds.
    pub breaker_open_s: f64,
    /// First warming back-off after a 429 or failure, seconds.
    pub warm_backoff_base_s: f64,
    /// Longest warming back-off, seconds.
    pub warm_backoff_max_s: f64,
}

/// Who makes a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A client is (or was) waiting for it.
    Demand,
    /// Warming: paced, backed off, never retried.
    Warm,
}

/// Why calls to a host are held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldCause {
    /// The upstream answered 429 (`Retry-After`).
    RateLimit,
    /// The breaker is open after repeated failures.
    Breaker,
    /// Warming backs off after 429s or failures (warming only).
    WarmBackoff,
}

/// A call not admitted: why, and when to look again (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refusal {
    /// Why.
    pub cause: HoldCause,
    /// When the hold ends (or, behind a probe, when to look again).
    pub until_s: f64,
}

/// How one attempt ended, as the gate counts it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// The host answered (2xx, or a 4xx other than 429).
    Answered,
    /// 429: pause this long, seconds (already capped).
    RateLimited(f64),
    /// 5xx, timeout or transport error.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// Calls flow.
    No,
    /// A hold began: the first call after it is a probe.
    Needed(HoldCause),
    /// The probe is out.
    Out(HoldCause),
}

#[derive(Debug)]
struct State {
    paused_until_s: f64,
    open_until_s: f64,
    failures: u32,
    probe: Probe,
    warm_backoff_level: u32,
    warm_backoff_until_s: f64,
    warm_rate_per_s: Option<f64>,
    warm_next_s: f64,
    warm_starts: VecDeque<f64>,
}

/// A host's gate, shared by every call to that host.
#[derive(Debug)]
pub struct HostGate {
    /// The host as logged (redacted).
    host: String,
    settings: GateSettings,
    state: Arc<Mutex<State>>,
}

/// An admitted call. Report its outcome with [`HostGate::report`]; dropped
/// unreported (cancelled), a probe lets the next call probe.
#[derive(Debug)]
pub struct Admission {
    probe: bool,
    state: Arc<Mutex<State>>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.probe {
            let mut s = lock(&self.state);
            if let Probe::Out(cause) = s.probe {
                s.probe = Probe::Needed(cause);
            }
        }
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // Every field is valid on its own: a poisoned lock is taken over.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl HostGate {
    /// A gate for `host` (as logged) with calls flowing and warming
    /// unpaced.
    pub fn new(host: String, settings: GateSettings) -> Self {
        Self {
            host,
            settings,
            state: Arc::new(Mutex::new(State {
                paused_until_s: 0.0,
                open_until_s: 0.0,
                failures: 0,
                probe: Probe::No,
                warm_backoff_level: 0,
                warm_backoff_until_s: 0.0,
                warm_rate_per_s: None,
                warm_next_s: 0.0,
                warm_starts: VecDeque::new(),
            })),
        }
    }

    /// Admits a call of `role` at `now_s`, or says why not. An admitted
    /// call after a hold is the probe.
    pub fn admit(&self, role: Role, now_s: f64) -> Result<Admission, Refusal> {
        let mut s = lock(&self.state);
        if let Some(r) = held(&s, role, now_s) {
            return Err(r);
        }
        let probe = match s.probe {
            Probe::No => false,
            Probe::Needed(cause) => {
                s.probe = Probe::Out(cause);
                true
            }
            Probe::Out(cause) => {
                return Err(Refusal {
                    cause,
                    until_s: now_s + PROBE_RECHECK_S,
                });
            }
        };
        if role == Role::Warm {
            s.warm_starts.push_back(now_s);
            if s.warm_starts.len() > WARM_STARTS_KEPT {
                s.warm_starts.pop_front();
            }
        }
        Ok(Admission {
            probe,
            state: Arc::clone(&self.state),
        })
    }

    /// Whether a call of `role` would be refused now (nothing is taken).
    pub fn refusal(&self, role: Role, now_s: f64) -> Option<Refusal> {
        let s = lock(&self.state);
        held(&s, role, now_s).or(match s.probe {
            Probe::Out(cause) => Some(Refusal {
                cause,
                until_s: now_s + PROBE_RECHECK_S,
            }),
            Probe::No | Probe::Needed(_) => None,
        })
    }

    /// Until when warming is held back by a pause, an open breaker, the
    /// warming back-off or the warming rate (no start within
    /// [`WARM_PACE_MAX_WAIT_S`]), Unix seconds; past = not held.
    pub fn warm_held_until_s(&self) -> f64 {
        let s = lock(&self.state);
        s.paused_until_s
            .max(s.open_until_s)
            .max(s.warm_backoff_until_s)
            .max(s.warm_next_s - WARM_PACE_MAX_WAIT_S)
    }

    /// Reserves the next warming start at or after `now_s` under the
    /// warming rate; `Err(start)` (nothing reserved) when it is more than
    /// [`WARM_PACE_MAX_WAIT_S`] away.
    pub fn reserve_warm_start(&self, now_s: f64) -> Result<f64, f64> {
        let mut s = lock(&self.state);
        let Some(rate) = s.warm_rate_per_s else {
            return Ok(now_s);
        };
        let start = s.warm_next_s.max(now_s);
        if start - now_s > WARM_PACE_MAX_WAIT_S {
            return Err(start);
        }
        s.warm_next_s = start + 1.0 / rate;
        Ok(start)
    }

    /// The warming rate in force (calls per second); `None`: unpaced.
    pub fn warm_rate_per_s(&self) -> Option<f64> {
        lock(&self.state).warm_rate_per_s
    }

    /// Whether the breaker is open (or half-open) at `now_s`.
    pub fn breaker_open(&self, now_s: f64) -> bool {
        let s = lock(&self.state);
        now_s < s.open_until_s || matches!(s.probe, Probe::Out(HoldCause::Breaker))
    }

    /// Counts how an admitted call's attempt ended at `now_s`.
    pub fn report(&self, mut admission: Admission, role: Role, outcome: Outcome, now_s: f64) {
        let was_probe = std::mem::take(&mut admission.probe);
        drop(admission);
        let mut s = lock(&self.state);
        if was_probe && matches!(s.probe, Probe::Out(_)) {
            s.probe = Probe::No;
        }
        match outcome {
            Outcome::Answered => {
                s.failures = 0;
                if role == Role::Warm {
                    s.warm_backoff_level = 0;
                    s.warm_backoff_until_s = 0.0;
                    if let Some(r) = s.warm_rate_per_s.as_mut() {
                        let per_min = *r * 60.0;
                        *r = (per_min + WARM_RATE_GAIN_PER_MIN / per_min) / 60.0;
                    }
                }
            }
            Outcome::RateLimited(pause_s) => {
                s.paused_until_s = s.paused_until_s.max(now_s + pause_s);
                s.probe = Probe::Needed(HoldCause::RateLimit);
                let measured = measured_warm_rate(&s.warm_starts, now_s);
                let current = s.warm_rate_per_s.unwrap_or(f64::INFINITY);
                s.warm_rate_per_s = Some((current.min(measured) * 0.5).max(MIN_WARM_RATE_PER_S));
                if role == Role::Warm {
                    self.back_off_warming(&mut s, now_s, pause_s);
                }
            }
            Outcome::Failed => {
                s.failures = s.failures.saturating_add(1);
                if was_probe || s.failures >= self.settings.breaker_failures {
                    if now_s >= s.open_until_s {
                        tracing::warn!(
                            host = %self.host,
                            failures = s.failures,
                            open_s = self.settings.breaker_open_s,
                            "upstream failing: circuit breaker open"
                        );
                        metrics::counter!("prewarm_upstream_breaker_opened_total").increment(1);
                    }
                    s.open_until_s = now_s + self.settings.breaker_open_s;
                    s.probe = Probe::Needed(HoldCause::Breaker);
                }
                if role == Role::Warm {
                    self.back_off_warming(&mut s, now_s, 0.0);
                }
            }
        }
    }

    fn back_off_warming(&self, s: &mut State, now_s: f64, at_least_s: f64) {
        let base = self.settings.warm_backoff_base_s;
        let step = base * 2f64.powi(s.warm_backoff_level.min(30) as i32);
        s.warm_backoff_level = s.warm_backoff_level.saturating_add(1);
        let wait = step.max(at_least_s).min(self.settings.warm_backoff_max_s);
        s.warm_backoff_until_s = s.warm_backoff_until_s.max(now_s + wait);
    }
}

fn held(s: &State, role: Role, now_s: f64) -> Option<Refusal> {
    let hold = |cause, until_s: f64| (now_s < until_s).then_some(Refusal { cause, until_s });
    hold(HoldCause::RateLimit, s.paused_until_s)
        .or_else(|| hold(HoldCause::Breaker, s.open_until_s))
        .or_else(|| match role {
            Role::Warm => hold(HoldCause::WarmBackoff, s.warm_backoff_until_s),
            Role::Demand => None,
        })
}

/// Warming starts per second over the last window (0 without any).
fn measured_warm_rate(starts: &VecDeque<f64>, now_s: f64) -> f64 {
    let n = starts
        .iter()
        .filter(|t| now_s - **t <= WARM_RATE_WINDOW_S)
        .count();
    n as f64 / WARM_RATE_WINDOW_S
}

#[cfg(test)]
mod tests {
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
}
