//! The outside-session gate: whether the driver may issue a warming fetch
//! now, given the market session and `warming.outside_sessions`.
//!
//! During any session (pre-market, regular, after-hours) the gate is open.
//! While the market is closed it stays open (`run`), lets through
//! `outside_rate_factor` of the dataset's rate through its own token bucket
//! (`reduce`), or stays shut (`pause`). The engine's own budget is spent
//! only for orders the gate let through.

use prewarm_core::budget::TokenBucket;
use prewarm_core::calendar::{ExchangeCalendar, MarketSession};
use serde::Serialize;

use super::settings::OutsideSessions;

/// What the gate does right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateState {
    /// Warming at the full rate.
    Open,
    /// Market closed: warming at the reduced rate.
    Reduced,
    /// Market closed: no warming.
    Paused,
}

/// The session gate of one dataset.
#[derive(Debug)]
pub struct SessionGate {
    mode: OutsideSessions,
    reduced: TokenBucket,
    /// (whole second, session) of the last lookup.
    cached: Option<(i64, MarketSession)>,
}

/// How long a shut gate waits before it looks again, seconds.
pub const SHUT_RECHECK_S: f64 = 30.0;

impl SessionGate {
    /// A gate for a dataset warming at `rate_per_min` (burst `burst`).
    pub fn new(mode: OutsideSessions, factor: f64, rate_per_min: f64, burst: f64) -> Self {
        let r = rate_per_min * factor;
        Self {
            mode,
            reduced: TokenBucket::new(r, (burst * factor).max(1.0)),
            cached: None,
        }
    }

    /// The market session at `now_s` (cached per whole second).
    pub fn session(&mut self, cal: &ExchangeCalendar, now_s: f64) -> MarketSession {
        let sec = now_s.floor() as i64;
        match self.cached {
            Some((s, session)) if s == sec => session,
            _ => {
                let session = cal.session_at(now_s);
                self.cached = Some((sec, session));
                session
            }
        }
    }

    /// The gate's state at `now_s`.
    pub fn state(&mut self, cal: &ExchangeCalendar, now_s: f64) -> GateState {
        if self.session(cal, now_s) != MarketSession::Closed {
            return GateState::Open;
        }
        match self.mode {
            OutsideSessions::Run => GateState::Open,
            OutsideSessions::Reduce => GateState::Reduced,
            OutsideSessions::Pause => GateState::Paused,
        }
    }

    /// Whether one warming fetch may be issued at `now_s`; when it returns
    /// true the caller issues it (or calls [`SessionGate::refund`]).
    pub fn admit(&mut self, cal: &ExchangeCalendar, now_s: f64) -> bool {
        match self.state(cal, now_s) {
            GateState::Open => true,
            GateState::Paused => false,
            GateState::Reduced => self.reduced.try_take(now_s),
        }
    }

    /// Whether the gate would admit at `now_s`, without taking anything.
    pub fn would_admit(&mut self, cal: &ExchangeCalendar, now_s: f64) -> bool {
        match self.state(cal, now_s) {
            GateState::Open => true,
            GateState::Paused => false,
            GateState::Reduced => self.reduced.tokens_at(now_s) >= 1.0,
        }
    }

    /// When a shut gate is worth looking at again.
    pub fn reopen_hint_s(&mut self, cal: &ExchangeCalendar, now_s: f64) -> f64 {
        match self.state(cal, now_s) {
            GateState::Open => now_s,
            GateState::Paused => now_s + SHUT_RECHECK_S,
            GateState::Reduced => self
                .reduced
                .next_token_at(now_s)
                .unwrap_or(now_s + SHUT_RECHECK_S)
                .min(now_s + SHUT_RECHECK_S),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Saturday 2024-06-15 12:00 New York (EDT, UTC-4).
    const SATURDAY_NOON_S: f64 = 1_718_467_200.0;
    /// Tuesday 2024-06-18 10:00 New York.
    const TUESDAY_10_S: f64 = 1_718_719_200.0;

    #[test]
    fn open_in_sessions_whatever_the_policy() {
        let cal = ExchangeCalendar::nyse();
        let mut g = SessionGate::new(OutsideSessions::Pause, 0.25, 60.0, 60.0);
        assert_eq!(g.session(&cal, TUESDAY_10_S), MarketSession::Regular);
        assert!(g.admit(&cal, TUESDAY_10_S));
        assert_eq!(g.state(&cal, TUESDAY_10_S), GateState::Open);
    }

    #[test]
    fn pause_shuts_on_a_weekend() {
        let cal = ExchangeCalendar::nyse();
        let mut g = SessionGate::new(OutsideSessions::Pause, 0.25, 60.0, 60.0);
        assert_eq!(g.state(&cal, SATURDAY_NOON_S), GateState::Paused);
        assert!(!g.admit(&cal, SATURDAY_NOON_S));
        assert!(g.reopen_hint_s(&cal, SATURDAY_NOON_S) > SATURDAY_NOON_S);
    }

    #[test]
    fn reduce_lets_through_the_reduced_rate() {
        let cal = ExchangeCalendar::nyse();
        // 60/min at a quarter: 15/min, burst 15.
        let mut g = SessionGate::new(OutsideSessions::Reduce, 0.25, 60.0, 60.0);
        let t = SATURDAY_NOON_S;
        let admitted = (0..100).filter(|_| g.admit(&cal, t)).count();
        assert_eq!(admitted, 15);
        assert!(!g.would_admit(&cal, t));
        // one more token after 4 s
        assert!(g.admit(&cal, t + 4.0));
        let mut run = SessionGate::new(OutsideSessions::Run, 0.25, 60.0, 60.0);
        assert!((0..100).all(|_| run.admit(&cal, t)));
    }
}
