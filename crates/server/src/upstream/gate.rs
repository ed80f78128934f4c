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
//! - So does a failure rate: over the last `breaker_window_calls`
//!   answered or failed attempts (429s are not counted), once at least
//!   `breaker_min_calls` are in the window, a failed attempt that takes
//!   the failed share above `breaker_failure_ratio` opens the breaker. A
//!   host failing every other call thus opens it without ever failing
//!   five in a row. Opening empties the window, so after a probe closes
//!   the breaker the rate is measured afresh.
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
    /// Attempts remembered for the failure rate (the sliding window).
    pub breaker_window_calls: u32,
    /// Fewest attempts in the window before the failure rate can open the
    /// breaker.
    pub breaker_min_calls: u32,
    /// Failed share of the window, 0 to 1, above which the breaker opens
    /// (1: never by rate).
    pub breaker_failure_ratio: f64,
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
    /// The last attempts, oldest first: `true` when it failed.
    window: VecDeque<bool>,
    /// How many of `window` failed.
    window_failed: u32,
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
                window: VecDeque::new(),
                window_failed: 0,
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
                self.remember(&mut s, false);
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
                self.remember(&mut s, true);
                if was_probe || s.failures >= self.settings.breaker_failures || self.rate_trips(&s)
                {
                    self.open_breaker(&mut s, now_s);
                }
                if role == Role::Warm {
                    self.back_off_warming(&mut s, now_s, 0.0);
                }
            }
        }
    }

    /// Adds one attempt to the failure-rate window, dropping the oldest
    /// past `breaker_window_calls`.
    fn remember(&self, s: &mut State, failed: bool) {
        s.window.push_back(failed);
        s.window_failed += u32::from(failed);
        while s.window.len() > self.settings.breaker_window_calls.max(1) as usize {
            if s.window.pop_front() == Some(true) {
                s.window_failed -= 1;
            }
        }
    }

    /// Whether the window holds enough attempts and too many failed.
    fn rate_trips(&self, s: &State) -> bool {
        let calls = s.window.len();
        calls > 0
            && calls >= self.settings.breaker_min_calls as usize
            && f64::from(s.window_failed) / calls as f64 > self.settings.breaker_failure_ratio
    }

    /// Opens (or keeps open) the breaker from `now_s`; logs and counts a
    /// fresh opening. The failure-rate window starts afresh.
    fn open_breaker(&self, s: &mut State, now_s: f64) {
        if now_s >= s.open_until_s {
            tracing::warn!(
                host = %self.host,
                consecutive_failures = s.failures,
                window_failed = s.window_failed,
                window_calls = s.window.len(),
                open_s = self.settings.breaker_open_s,
                "upstream failing: circuit breaker open"
            );
            metrics::counter!("prewarm_upstream_breaker_opened_total").increment(1);
        }
        s.window.clear();
        s.window_failed = 0;
        s.open_until_s = now_s + self.settings.breaker_open_s;
        s.probe = Probe::Needed(HoldCause::Breaker);
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
mod tests;
