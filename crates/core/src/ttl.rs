//! TTL policies: how long an entry stays fresh after its fetch, flat or by
//! market session. The one rule every freshness decision uses: the
//! engine's cache model and cost shadow, replay's baseline, bound and
//! reference policies, and the daemon's stores and read path.
//!
//! The rule ([`TtlRule::expires_at`]): an entry fetched at `f` expires at
//! - `f + ttl_s` under [`TtlPolicy::Flat`] (exactly: the same `f64` sum
//!   the replay semantics write);
//! - `f + ttl` of the session at the fetch instant `f` under
//!   [`TtlPolicy::BySession`] with [`SessionTtl::Seconds`], even when that
//!   crosses into another session (an after-hours entry fetched at 19:59:30
//!   with 60 s expires at 20:00:30);
//! - the next session start after `f` (04:00 New York of the next trading
//!   day, with holidays, early closes and DST from the calendar) with
//!   [`SessionTtl::UntilOpen`], allowed for the closed session only: a
//!   quote fetched after the after-hours close, over a weekend or a
//!   holiday stays fresh until pre-market opens.
//!
//! Sans-I/O: the instant always comes from the caller.

use crate::UnixSeconds;
use crate::calendar::{ExchangeCalendar, MarketSession};
use std::fmt;
use thiserror::Error;

/// The TTL of one market session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SessionTtl {
    /// Fresh for this many seconds after the fetch (> 0, finite).
    Seconds(f64),
    /// Fresh until the next session start (closed session only).
    UntilOpen,
}

impl fmt::Display for SessionTtl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionTtl::Seconds(s) => write!(f, "{s}"),
            SessionTtl::UntilOpen => f.write_str("until_open"),
        }
    }
}

/// One TTL per market session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionTtls {
    /// 04:00–09:30 New York on a trading day.
    pub pre_market: SessionTtl,
    /// 09:30–16:00 (13:00 on an early close).
    pub regular: SessionTtl,
    /// 16:00–20:00 (13:00–17:00 on an early close).
    pub after_hours: SessionTtl,
    /// Every other instant: nights, weekends, holidays.
    pub closed: SessionTtl,
}

impl SessionTtls {
    /// Every session at `ttl_s` (the flat policy written by session).
    pub fn all(ttl_s: f64) -> Self {
        let t = SessionTtl::Seconds(ttl_s);
        SessionTtls {
            pre_market: t,
            regular: t,
            after_hours: t,
            closed: t,
        }
    }

    /// The TTL of `session`.
    pub fn get(&self, session: MarketSession) -> SessionTtl {
        match session {
            MarketSession::PreMarket => self.pre_market,
            MarketSession::Regular => self.regular,
            MarketSession::AfterHours => self.after_hours,
            MarketSession::Closed => self.closed,
        }
    }

    /// Parses a spec such as `pre=60,regular=15,after=60,closed=until_open`:
    /// comma-separated `session=value` with sessions `pre` (or
    /// `pre_market`), `regular`, `after` (or `after_hours`), `closed`, and
    /// values in seconds or `until_open`. A session left out gets
    /// `default_ttl_s`. The result is validated.
    pub fn parse_spec(spec: &str, default_ttl_s: f64) -> Result<Self, TtlError> {
        let mut out = SessionTtls::all(default_ttl_s);
        let mut seen: Vec<&str> = Vec::new();
        if spec.trim().is_empty() {
            return Err(TtlError::Spec {
                part: spec.to_string(),
                problem: "expected at least one session=value".into(),
            });
        }
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| TtlError::Spec {
                part: part.to_string(),
                problem: "expected session=value".into(),
            })?;
            let value = parse_value(value.trim()).ok_or_else(|| TtlError::Spec {
                part: part.to_string(),
                problem: "the value must be seconds or `until_open`".into(),
            })?;
            let (session, slot) = match name.trim() {
                "pre" | "pre_market" => ("pre", &mut out.pre_market),
                "regular" => ("regular", &mut out.regular),
                "after" | "after_hours" => ("after", &mut out.after_hours),
                "closed" => ("closed", &mut out.closed),
                _ => {
                    return Err(TtlError::Spec {
                        part: part.to_string(),
                        problem: "sessions are pre, regular, after, closed".into(),
                    });
                }
            };
            if seen.contains(&session) {
                return Err(TtlError::Spec {
                    part: part.to_string(),
                    problem: format!("session {session} given twice"),
                });
            }
            seen.push(session);
            *slot = value;
        }
        TtlPolicy::BySession(out).validate()?;
        Ok(out)
    }

    fn each(&self) -> [(MarketSession, SessionTtl); 4] {
        MarketSession::ALL.map(|s| (s, self.get(s)))
    }
}

impl fmt::Display for SessionTtls {
    /// The spec form [`SessionTtls::parse_spec`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pre={},regular={},after={},closed={}",
            self.pre_market, self.regular, self.after_hours, self.closed
        )
    }
}

fn parse_value(value: &str) -> Option<SessionTtl> {
    if value == "until_open" {
        return Some(SessionTtl::UntilOpen);
    }
    value.parse::<f64>().ok().map(SessionTtl::Seconds)
}

/// How long entries stay fresh.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TtlPolicy {
    /// The same TTL, seconds, at every instant.
    Flat(f64),
    /// A TTL per market session, taken at the fetch instant.
    BySession(SessionTtls),
}

/// A policy that cannot work.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TtlError {
    /// A session's TTL (or the flat TTL) is not a positive finite number.
    #[error("the TTL of session `{session}` must be > 0 and finite, got {value}")]
    NotPositive {
        /// The session (`flat` for the flat policy).
        session: &'static str,
        /// The value given.
        value: f64,
    },
    /// `until_open` given for a session that is open.
    #[error("`until_open` is only for the closed session, not `{session}`")]
    UntilOpenWhileOpen {
        /// The session.
        session: &'static str,
    },
    /// A part of a spec string that does not parse.
    #[error("bad TTL-by-session spec part `{part}`: {problem}")]
    Spec {
        /// The part at fault.
        part: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl TtlPolicy {
    /// Checks every TTL, naming the first bad session.
    pub fn validate(&self) -> Result<(), TtlError> {
        let positive = |session, value: f64| {
            if value > 0.0 && value.is_finite() {
                Ok(())
            } else {
                Err(TtlError::NotPositive { session, value })
            }
        };
        match self {
            TtlPolicy::Flat(ttl_s) => positive("flat", *ttl_s),
            TtlPolicy::BySession(t) => t.each().into_iter().try_for_each(|(s, ttl)| match ttl {
                SessionTtl::Seconds(v) => positive(s.as_str(), v),
                SessionTtl::UntilOpen if s != MarketSession::Closed => {
                    Err(TtlError::UntilOpenWhileOpen {
                        session: s.as_str(),
                    })
                }
                SessionTtl::UntilOpen => Ok(()),
            }),
        }
    }

    /// When an entry fetched at `fetched_at_s` stops being fresh (module
    /// doc): always after `fetched_at_s` for a valid policy.
    pub fn expires_at(&self, fetched_at_s: UnixSeconds, cal: &ExchangeCalendar) -> UnixSeconds {
        match self {
            TtlPolicy::Flat(ttl_s) => fetched_at_s + ttl_s,
            TtlPolicy::BySession(t) => match t.get(cal.session_at(fetched_at_s)) {
                SessionTtl::Seconds(ttl_s) => fetched_at_s + ttl_s,
                SessionTtl::UntilOpen => cal.next_session_start_s(fetched_at_s),
            },
        }
    }

    /// The longest TTL in seconds of any session (the flat TTL; `until_open`
    /// not counted).
    pub fn longest_seconds_s(&self) -> f64 {
        match self {
            TtlPolicy::Flat(ttl_s) => *ttl_s,
            TtlPolicy::BySession(t) => t
                .each()
                .iter()
                .filter_map(|(_, ttl)| match ttl {
                    SessionTtl::Seconds(s) => Some(*s),
                    SessionTtl::UntilOpen => None,
                })
                .fold(0.0, f64::max),
        }
    }
}

/// Most session pieces [`TtlRule::earliest_covering_fetch_s`] looks back
/// through (about three weeks of pieces).
const MAX_PIECES_BACK: usize = 128;

/// A [`TtlPolicy`] on an exchange calendar: what the engine, replay and
/// the daemon hold.
#[derive(Debug, Clone, PartialEq)]
pub struct TtlRule {
    policy: TtlPolicy,
    calendar: ExchangeCalendar,
}

impl From<f64> for TtlRule {
    /// The flat policy at `ttl_s` on the NYSE calendar.
    fn from(ttl_s: f64) -> Self {
        TtlRule::new(TtlPolicy::Flat(ttl_s), ExchangeCalendar::nyse())
    }
}

impl From<&TtlRule> for TtlRule {
    fn from(rule: &TtlRule) -> Self {
        rule.clone()
    }
}

impl TtlRule {
    /// `policy` on `calendar` (validate the policy first:
    /// [`TtlPolicy::validate`]).
    /// A by-session policy that gives every session the same number of
    /// seconds is the flat policy, and is kept as such (so it gives the
    /// flat TTL's figures to the request).
    pub fn new(policy: TtlPolicy, calendar: ExchangeCalendar) -> Self {
        let policy = match policy {
            TtlPolicy::BySession(t) => match t.each().map(|(_, ttl)| ttl) {
                [
                    SessionTtl::Seconds(a),
                    SessionTtl::Seconds(b),
                    SessionTtl::Seconds(c),
                    SessionTtl::Seconds(d),
                ] if a == b && b == c && c == d => TtlPolicy::Flat(a),
                _ => TtlPolicy::BySession(t),
            },
            flat => flat,
        };
        TtlRule { policy, calendar }
    }

    /// The policy.
    pub fn policy(&self) -> &TtlPolicy {
        &self.policy
    }

    /// The calendar sessions are read from.
    pub fn calendar(&self) -> &ExchangeCalendar {
        &self.calendar
    }

    /// When an entry fetched at `fetched_at_s` expires
    /// ([`TtlPolicy::expires_at`]).
    #[inline]
    pub fn expires_at(&self, fetched_at_s: UnixSeconds) -> UnixSeconds {
        self.policy.expires_at(fetched_at_s, &self.calendar)
    }

    /// Seconds an entry fetched at `at_s` stays fresh: the flat TTL exactly,
    /// else `expires_at(at_s) - at_s`.
    pub fn ttl_at(&self, at_s: UnixSeconds) -> f64 {
        match self.policy {
            TtlPolicy::Flat(ttl_s) => ttl_s,
            TtlPolicy::BySession(_) => self.expires_at(at_s) - at_s,
        }
    }

    /// Seconds an entry fetched at `fetched_at_s` and expiring at
    /// `expires_at_s` lives: the flat TTL exactly (no rounding of the
    /// difference), else the difference.
    pub fn life_s(&self, fetched_at_s: UnixSeconds, expires_at_s: UnixSeconds) -> f64 {
        match self.policy {
            TtlPolicy::Flat(ttl_s) => ttl_s,
            TtlPolicy::BySession(_) => expires_at_s - fetched_at_s,
        }
    }

    /// The earliest instant `r` (a lower limit, exclusive) such that a
    /// fetch after `r` and at or before `latest_s` is fresh at
    /// `needed_at_s` (`latest_s <= needed_at_s`): `needed_at_s - ttl_s`
    /// under a flat TTL. Under a policy by session the fetches that cover
    /// `needed_at_s` need not be contiguous (a longer pre-market TTL before
    /// a shorter regular one); the earliest one is returned, so a window
    /// `(r, latest_s]` may hold instants that do not cover (the clairvoyant
    /// bound's relaxation). `latest_s` when nothing covers.
    pub fn earliest_covering_fetch_s(&self, needed_at_s: f64, latest_s: f64) -> f64 {
        let TtlPolicy::BySession(ttls) = self.policy else {
            return needed_at_s - self.policy.longest_seconds_s();
        };
        let longest_s = self.policy.longest_seconds_s();
        let mut best = latest_s;
        let mut cursor = latest_s;
        for _ in 0..MAX_PIECES_BACK {
            let (session, start_s, end_s) = self.calendar.session_piece(cursor);
            let reach_s = match ttls.get(session) {
                SessionTtl::Seconds(ttl_s) => {
                    if needed_at_s - ttl_s < cursor {
                        best = best.min(start_s.max(needed_at_s - ttl_s));
                    }
                    end_s + longest_s
                }
                SessionTtl::UntilOpen => {
                    let open_s = self.calendar.next_session_start_s(start_s);
                    if open_s > needed_at_s {
                        best = best.min(start_s);
                    }
                    open_s.max(end_s + longest_s)
                }
            };
            if reach_s <= needed_at_s && start_s < needed_at_s - longest_s {
                break;
            }
            cursor = start_s - 0.5;
        }
        best
    }
}

#[cfg(test)]
mod tests;
