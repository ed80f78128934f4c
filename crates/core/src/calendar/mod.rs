//! The exchange calendar: trading days, holidays, early closes, market
//! sessions and exchange-local wall-clock time (DST-correct via chrono-tz).
//!
//! Sans-I/O: every function takes the instant as [`UnixSeconds`]; nothing
//! reads a clock.
//!
//! Submodules:
//! - `nyse`: the NYSE holiday and early-close rules for any year, plus the
//!   table of one-off closures.
//! - `zone`: instant ↔ wall-clock conversions (gap → first instant after
//!   it, fold → earlier instant; inputs clamped to years 1..=9999, NaN → 0).
//! - `clock`: [`LocalClock`], the cached fast path for hot loops, which
//!   always agrees with [`ExchangeCalendar::local_time`].
//!
//! Invariants: a local day `d` spans `[start_s(d), start_s(d + 1))` where
//! `start_s` is the instant of local midnight (or the first instant after it
//! when midnight falls in a gap); sessions are defined on the wall clock, so
//! a 23- or 25-hour day still opens at 09:30 local.

mod clock;
mod nyse;
mod zone;

#[cfg(test)]
mod tests;

pub use clock::{LocalClock, LocalTime};

use crate::UnixSeconds;
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Seconds after local midnight at which pre-market opens (04:00).
pub const PRE_MARKET_OPEN_S: u32 = 4 * 3600;
/// Seconds after local midnight at which the regular session opens (09:30).
pub const REGULAR_OPEN_S: u32 = 9 * 3600 + 30 * 60;
/// Regular close on a full trading day (16:00).
pub const REGULAR_CLOSE_S: u32 = 16 * 3600;
/// Regular close on an early-close day (13:00).
pub const EARLY_CLOSE_S: u32 = 13 * 3600;
/// After-hours close on a full trading day (20:00).
pub const AFTER_HOURS_CLOSE_S: u32 = 20 * 3600;
/// After-hours close on an early-close day (17:00).
pub const EARLY_AFTER_HOURS_CLOSE_S: u32 = 17 * 3600;

/// What kind of day a local date is on the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// A full trading day (regular session 09:30–16:00).
    Trading,
    /// A trading day whose regular session ends at 13:00.
    EarlyClose,
    /// Saturday or Sunday.
    Weekend,
    /// An exchange holiday or one-off closure on a weekday.
    Holiday,
}

impl DayKind {
    /// Whether the exchange trades at all that day (`Trading` or `EarlyClose`).
    pub fn is_trading(self) -> bool {
        matches!(self, DayKind::Trading | DayKind::EarlyClose)
    }

    /// Seconds after local midnight of the regular close; `None` when closed.
    pub fn regular_close_s(self) -> Option<u32> {
        match self {
            DayKind::Trading => Some(REGULAR_CLOSE_S),
            DayKind::EarlyClose => Some(EARLY_CLOSE_S),
            DayKind::Weekend | DayKind::Holiday => None,
        }
    }

    /// Seconds after local midnight of the after-hours close; `None` when
    /// closed.
    pub fn after_hours_close_s(self) -> Option<u32> {
        match self {
            DayKind::Trading => Some(AFTER_HOURS_CLOSE_S),
            DayKind::EarlyClose => Some(EARLY_AFTER_HOURS_CLOSE_S),
            DayKind::Weekend | DayKind::Holiday => None,
        }
    }
}

/// The market session (see the glossary's "session (market)").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MarketSession {
    /// No trading: outside 04:00–20:00, or a weekend or holiday.
    Closed,
    /// 04:00–09:30 local on a trading day.
    PreMarket,
    /// 09:30–16:00 local (09:30–13:00 on an early close).
    Regular,
    /// 16:00–20:00 local (13:00–17:00 on an early close).
    AfterHours,
}

impl MarketSession {
    /// Every session, in the order of a trading day.
    pub const ALL: [MarketSession; 4] = [
        MarketSession::Closed,
        MarketSession::PreMarket,
        MarketSession::Regular,
        MarketSession::AfterHours,
    ];

    /// The session at wall-clock `second_of_day` (0..86_400) of a day of
    /// `kind`. Pure; the basis of [`ExchangeCalendar::session_at`] and
    /// [`LocalTime::session`].
    pub fn for_day_second(kind: DayKind, second_of_day: u32) -> MarketSession {
        let (Some(close_s), Some(after_close_s)) =
            (kind.regular_close_s(), kind.after_hours_close_s())
        else {
            return MarketSession::Closed;
        };
        match second_of_day {
            s if s < PRE_MARKET_OPEN_S => MarketSession::Closed,
            s if s < REGULAR_OPEN_S => MarketSession::PreMarket,
            s if s < close_s => MarketSession::Regular,
            s if s < after_close_s => MarketSession::AfterHours,
            _ => MarketSession::Closed,
        }
    }

    /// The serde name: `closed`, `pre_market`, `regular` or `after_hours`.
    pub fn as_str(self) -> &'static str {
        match self {
            MarketSession::Closed => "closed",
            MarketSession::PreMarket => "pre_market",
            MarketSession::Regular => "regular",
            MarketSession::AfterHours => "after_hours",
        }
    }
}

impl fmt::Display for MarketSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One exchange-local day and the UTC instants that bound it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayInfo {
    /// The local date.
    pub date: NaiveDate,
    /// Its kind on the exchange.
    pub kind: DayKind,
    /// Unix seconds of local midnight (first instant of the day).
    pub start_s: UnixSeconds,
    /// Unix seconds of the next local midnight (exclusive end); 23 or 25
    /// hours after `start_s` on DST days.
    pub end_s: UnixSeconds,
}

impl DayInfo {
    /// Length of the day in seconds (86 400, or 82 800 / 90 000 on DST days).
    pub fn len_s(&self) -> f64 {
        self.end_s - self.start_s
    }
}

/// NYSE trading-day rules in a time zone.
///
/// The rules (holidays, early closes, one-off closures) are always NYSE's;
/// the zone decides the local wall clock in which days begin and sessions
/// are timed. [`ExchangeCalendar::nyse`] uses America/New_York.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeCalendar {
    tz: Tz,
    special_days: BTreeMap<NaiveDate, DayKind>,
}

impl Default for ExchangeCalendar {
    fn default() -> Self {
        Self::nyse()
    }
}

impl ExchangeCalendar {
    /// The New York Stock Exchange: America/New_York, NYSE holidays, early
    /// closes and one-off closures.
    pub fn nyse() -> Self {
        Self::with_timezone(chrono_tz::America::New_York)
    }

    /// The same NYSE trading-day rules (holidays, early closes, one-off
    /// closures, session hours 04:00/09:30/16:00/20:00) applied to the wall
    /// clock of `tz` instead of New York: days start at local midnight in
    /// `tz` and sessions are timed in `tz` local time. Meant for testing DST
    /// handling in other zones or for a venue that follows NYSE's calendar
    /// in its own zone; it does not convert New York hours into `tz`.
    pub fn with_timezone(tz: Tz) -> Self {
        let special_days = nyse::SPECIAL_DAYS
            .iter()
            .filter_map(|&(y, m, d, _)| NaiveDate::from_ymd_opt(y, m, d))
            .map(|date| (date, DayKind::Holiday))
            .collect();
        ExchangeCalendar { tz, special_days }
    }

    /// Overrides the kind of `date` (e.g. a newly announced closure or early
    /// close); the override wins over the rules.
    pub fn with_special_day(mut self, date: NaiveDate, kind: DayKind) -> Self {
        self.special_days.insert(date, kind);
        self
    }

    /// The zone of the exchange-local wall clock.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The kind of the local date `date`: special-day table first, then
    /// weekend, holiday, early close, trading.
    pub fn day_kind(&self, date: NaiveDate) -> DayKind {
        match self.special_days.get(&date) {
            Some(&kind) => kind,
            None => nyse::rule_day_kind(date),
        }
    }

    /// The holidays and closures (weekdays of kind `Holiday`) of `year`, in
    /// order.
    pub fn holidays(&self, year: i32) -> Vec<NaiveDate> {
        self.days_of_kind(year, DayKind::Holiday)
    }

    /// The early-close days of `year`, in order.
    pub fn early_closes(&self, year: i32) -> Vec<NaiveDate> {
        self.days_of_kind(year, DayKind::EarlyClose)
    }

    fn days_of_kind(&self, year: i32, kind: DayKind) -> Vec<NaiveDate> {
        let Some(first) = NaiveDate::from_ymd_opt(year, 1, 1) else {
            return Vec::new();
        };
        first
            .iter_days()
            .take_while(|d| d.year() == year)
            .filter(|&d| self.day_kind(d) == kind)
            .collect()
    }

    /// The first trading day strictly after `date`.
    pub fn next_trading_day(&self, date: NaiveDate) -> NaiveDate {
        let mut day = date;
        while let Some(next) = day.succ_opt() {
            day = next;
            if self.day_kind(day).is_trading() {
                return day;
            }
        }
        day
    }

    /// The exchange-local wall-clock time of `now_s`.
    pub fn local_date_time(&self, now_s: UnixSeconds) -> NaiveDateTime {
        zone::local_naive(self.tz, now_s)
    }

    /// Unix seconds of the start (local midnight) of `date`.
    pub fn day_start_s(&self, date: NaiveDate) -> UnixSeconds {
        zone::resolve_local(self.tz, date.and_time(NaiveTime::MIN))
    }

    /// The local day `date` with its kind and UTC bounds.
    pub fn day_info_for(&self, date: NaiveDate) -> DayInfo {
        let start_s = self.day_start_s(date);
        let end_s = match date.succ_opt() {
            Some(next) => self.day_start_s(next),
            None => f64::INFINITY,
        };
        DayInfo {
            date,
            kind: self.day_kind(date),
            start_s,
            end_s,
        }
    }

    /// The local day containing `now_s`.
    pub fn day_info(&self, now_s: UnixSeconds) -> DayInfo {
        self.day_info_for(self.local_date_time(now_s).date())
    }

    /// The market session at `now_s`.
    pub fn session_at(&self, now_s: UnixSeconds) -> MarketSession {
        let local = self.local_date_time(now_s);
        let kind = self.day_kind(local.date());
        MarketSession::for_day_second(kind, local.num_seconds_from_midnight())
    }

    /// The local time of `now_s` computed directly through chrono-tz (the
    /// slow path; [`LocalClock::at`] returns the same, faster).
    pub fn local_time(&self, now_s: UnixSeconds) -> LocalTime {
        let local = self.local_date_time(now_s);
        let date = local.date();
        let second_of_day = local.num_seconds_from_midnight();
        LocalTime {
            date,
            day_index: day_index(date),
            kind: self.day_kind(date),
            minute_of_day: second_of_day / 60,
            second_of_day,
        }
    }

    /// The next instant strictly after `after_s` at which the local wall
    /// clock shows `at`, on a trading day when `trading_days_only` (any day
    /// otherwise). When `at` does not exist that day (DST gap) the first
    /// instant after the gap counts; when it happens twice (fold) only the
    /// earlier instant counts. A NaN `after_s` counts as the epoch;
    /// `f64::INFINITY` if no such instant lies within [`MAX_SCAN_DAYS`] days.
    pub fn next_local_time(
        &self,
        after_s: UnixSeconds,
        at: NaiveTime,
        trading_days_only: bool,
    ) -> UnixSeconds {
        let after_s = if after_s.is_nan() { 0.0 } else { after_s };
        let today = self.local_date_time(after_s).date();
        // Start a day early: a fold across midnight can put yesterday's `at`
        // after `after_s`.
        let first = today.pred_opt().unwrap_or(today);
        first
            .iter_days()
            .take(MAX_SCAN_DAYS)
            .filter(|&day| !trading_days_only || self.day_kind(day).is_trading())
            .map(|day| zone::resolve_local(self.tz, day.and_time(at)))
            .find(|&t| t > after_s)
            .unwrap_or(f64::INFINITY)
    }
}

impl ExchangeCalendar {
    /// The first instant strictly after `after_s` at which a session other
    /// than [`MarketSession::Closed`] starts: 04:00 local (pre-market) of
    /// the next trading day, or of today when `after_s` is before it.
    /// Holidays, weekends and DST follow the calendar; `f64::INFINITY` as
    /// [`ExchangeCalendar::next_local_time`].
    pub fn next_session_start_s(&self, after_s: UnixSeconds) -> UnixSeconds {
        let pre_open = NaiveTime::from_num_seconds_from_midnight_opt(PRE_MARKET_OPEN_S, 0)
            .unwrap_or(NaiveTime::MIN);
        self.next_local_time(after_s, pre_open, true)
    }

    /// The piece of one local day around `now_s` during which the session
    /// stays [`ExchangeCalendar::session_at`]`(now_s)`: `(session, start_s,
    /// end_s)`, `start_s <= now_s < end_s`. A closed spell over midnight
    /// (or a weekend) comes in one piece per local day.
    pub fn session_piece(&self, now_s: UnixSeconds) -> (MarketSession, UnixSeconds, UnixSeconds) {
        let local = self.local_date_time(now_s);
        let (date, second) = (local.date(), local.num_seconds_from_midnight());
        let kind = self.day_kind(date);
        let session = MarketSession::for_day_second(kind, second);
        let mut bounds = vec![0, 86_400];
        if let (Some(close_s), Some(after_s)) = (kind.regular_close_s(), kind.after_hours_close_s())
        {
            bounds = vec![
                0,
                PRE_MARKET_OPEN_S,
                REGULAR_OPEN_S,
                close_s,
                after_s,
                86_400,
            ];
        }
        let hi = bounds
            .iter()
            .position(|&b| b > second)
            .unwrap_or(bounds.len() - 1);
        let at = |s: u32| -> UnixSeconds {
            match NaiveTime::from_num_seconds_from_midnight_opt(s, 0) {
                Some(t) if s < 86_400 => zone::resolve_local(self.tz, date.and_time(t)),
                _ => self.day_info_for(date).end_s,
            }
        };
        let (start_s, end_s) = (at(bounds[hi - 1]), at(bounds[hi]));
        // A DST fold or gap can put `now_s` just outside the wall-clock
        // bounds; widen so the piece always holds it.
        let end_s = if end_s > now_s { end_s } else { now_s + 1.0 };
        (session, start_s.min(now_s), end_s)
    }
}

/// How many days [`ExchangeCalendar::next_local_time`] looks ahead (ten
/// years; NYSE never closes for more than a week).
pub const MAX_SCAN_DAYS: usize = 3660;

/// Days since 1970-01-01 of `date`.
pub fn day_index(date: NaiveDate) -> i32 {
    date.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;
