//! `prewarm gen-trace`: a synthetic market-data workload generator.
//!
//! [`generate`] produces requests in non-decreasing time order from a
//! [`GenConfig`]; [`write_trace`] writes them as the `timestamp,key,client`
//! CSV of `replay-semantics.md` plus the universe beside it.
//!
//! The workload is the sum of independent, parameterised components, each
//! in its own submodule with its own random stream:
//! - `universe`: unique synthetic tickers (1–5 letters) with sectors, and a
//!   Zipf popularity whose log weights random-walk daily (`daily_drift`).
//! - `users`: registered users (`u<i>`) polling fixed-order watchlists at a
//!   fixed period between habitual start and stop times (sequence
//!   co-access; slow watchlist churn).
//! - `scanners`: fixed batches (`scan<i>`) at clock-aligned times.
//! - `news`: Poisson news events whose symbol many anonymous clients
//!   (`a<i>`) look up over decaying minutes, followed by sector peers.
//! - `lookups`: anonymous one-off lookups over the long tail, shaped over
//!   the day by `profile` (U-shaped session, pre-market ramp, after-hours,
//!   overnight trickle, weekend/holiday lull); `share` sizes them for a
//!   requested share of anonymous requests.
//! - `day`: local day ↔ UTC through chrono-tz (DST) and
//!   `prewarm_core::calendar` (weekends, holidays, early closes at 13:00).
//! - `rng`, `math`: SplitMix64 and libm-free `ln`/`exp`, so output is
//!   byte-identical across platforms for the same config.
//! - `write`: CSV/gzip output, the universe file, atomic replacement.
//!
//! Invariants: output is deterministic in the config; times are whole
//! milliseconds; requests are emitted in non-decreasing time order (each
//! local day is generated, stably sorted, and emitted; lookups of a late
//! news event that run past midnight carry over into the next day and are
//! dropped after the last day). Memory is one day of requests.

mod config;
mod day;
mod error;
mod lookups;
mod math;
mod news;
mod profile;
mod rng;
mod scanners;
mod share;
mod universe;
mod users;
mod validate;
mod write;

pub use config::{
    GenConfig, LookupParams, NewsParams, PollMode, ScanSubset, ScannerSpec, SessionProfile,
    UserParams,
};
pub use error::GenError;
pub use news::NewsEvent;
pub use universe::Universe;
pub use write::{universe_path, write_trace, write_universe};

use std::fmt;

use chrono::Days;
use serde::Serialize;

use day::LocalDay;
use scanners::Scanners;
use universe::{Market, Popularity};
use users::Users;

/// One generated request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request {
    /// When, Unix seconds; always a whole number of milliseconds.
    pub time_s: f64,
    /// The requested key: an index into [`Universe::tickers`].
    pub key: u32,
    /// Who asked; see [`ClientKind`] for the encoding and [`ClientLabel`]
    /// for the CSV spelling.
    pub client: u32,
}

/// The three kinds of client. A client id is `kind << 30 | index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKind {
    /// A registered user polling a watchlist: `u<index>`.
    User = 0,
    /// A scanner: `scan<index>`.
    Scanner = 1,
    /// An anonymous client (one-off lookups, news lookers): `a<index>`.
    Anonymous = 2,
}

const KIND_SHIFT: u32 = 30;
const INDEX_MASK: u32 = (1 << KIND_SHIFT) - 1;

/// The client id of the `index`-th client of `kind` (`index < 2^30`).
pub fn client_id(kind: ClientKind, index: u32) -> u32 {
    ((kind as u32) << KIND_SHIFT) | (index & INDEX_MASK)
}

/// The kind and index of a client id; `None` for ids no generator makes.
pub fn client_kind(client: u32) -> Option<(ClientKind, u32)> {
    let kind = match client >> KIND_SHIFT {
        0 => ClientKind::User,
        1 => ClientKind::Scanner,
        2 => ClientKind::Anonymous,
        _ => return None,
    };
    Some((kind, client & INDEX_MASK))
}

/// Displays a client id as written in the CSV: `u12`, `scan3`, `a4711`
/// (`c<id>` for ids no generator makes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLabel(pub u32);

impl fmt::Display for ClientLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match client_kind(self.0) {
            Some((ClientKind::User, i)) => write!(f, "u{i}"),
            Some((ClientKind::Scanner, i)) => write!(f, "scan{i}"),
            Some((ClientKind::Anonymous, i)) => write!(f, "a{i}"),
            None => write!(f, "c{}", self.0),
        }
    }
}

/// What a run generated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenSummary {
    /// Requests emitted.
    pub requests: u64,
    /// Requests by registered users.
    pub user_requests: u64,
    /// Requests by scanners.
    pub scanner_requests: u64,
    /// Requests by anonymous clients (one-off lookups and news lookers).
    pub anonymous_requests: u64,
    /// Distinct keys requested at least once.
    pub distinct_keys: u64,
    /// Mean anonymous lookups per trading day the run used: the config's,
    /// or the one resolved for `lookups.anonymous_share`.
    pub lookups_per_trading_day: f64,
    /// Calendar days generated.
    pub days: u32,
    /// Of which trading days (full or early close).
    pub trading_days: u32,
    /// Each day's date, kind and requests.
    pub per_day: Vec<DaySummary>,
    /// Every news event (ground truth for analysis).
    pub news: Vec<NewsEvent>,
}

/// One local day of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DaySummary {
    /// Local date, `YYYY-MM-DD`.
    pub date: String,
    /// `trading`, `early_close`, `weekend` or `holiday`.
    pub kind: &'static str,
    /// Requests timed within the day.
    pub requests: u64,
}

/// A request inside the generator: whole Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event {
    pub ms: i64,
    pub key: u32,
    pub client: u32,
}

/// Generates the workload of `cfg`, calling `emit` for every request in
/// non-decreasing time order. Fails only on an invalid config.
pub fn generate(cfg: &GenConfig, mut emit: impl FnMut(Request)) -> Result<GenSummary, GenError> {
    run(cfg, &mut |events: &[Event]| {
        for e in events {
            emit(Request {
                time_s: e.ms as f64 / 1000.0,
                key: e.key,
                client: e.client,
            });
        }
        Ok(())
    })
}

/// The generator proper: hands each day's sorted events to `sink`.
pub(crate) fn run(
    cfg: &GenConfig,
    sink: &mut dyn FnMut(&[Event]) -> Result<(), GenError>,
) -> Result<GenSummary, GenError> {
    cfg.validate()?;
    let resolved;
    let cfg = match cfg.lookups.anonymous_share {
        Some(share) => {
            resolved = share::resolve(cfg, share)?;
            &resolved
        }
        None => cfg,
    };
    let market = Market::new(cfg);
    let mut popularity = Popularity::new(cfg);
    let scanners = Scanners::new(cfg, &market, &popularity);
    let mut users = Users::new(cfg, &popularity);
    let mut summary = GenSummary {
        requests: 0,
        user_requests: 0,
        scanner_requests: 0,
        anonymous_requests: 0,
        distinct_keys: 0,
        lookups_per_trading_day: cfg.lookups.per_trading_day,
        days: cfg.days,
        trading_days: 0,
        per_day: Vec::with_capacity(cfg.days as usize),
        news: Vec::new(),
    };
    let mut seen = vec![false; cfg.universe_size];
    let mut events: Vec<Event> = Vec::new();
    for index in 0..cfg.days {
        if index > 0 {
            popularity.advance_day();
        }
        let date = cfg.start_date + Days::new(u64::from(index));
        let day = day::local_day(&cfg.calendar, date, index);
        users.generate_day(&day, &popularity, &mut events);
        scanners.generate_day(&day, &mut events);
        summary.news.extend(news::generate_day(
            cfg,
            &market,
            &popularity,
            &day,
            &mut events,
        ));
        lookups::generate_day(cfg, &popularity, &day, &mut events);
        events.sort_by_key(|e| e.ms);
        debug_assert!(events.first().is_none_or(|e| e.ms >= day.start_ms()));
        let done = events.partition_point(|e| e.ms < day.end_ms());
        sink(&events[..done])?;
        count_day(&mut summary, &mut seen, &day, &events[..done]);
        events.drain(..done);
    }
    summary.distinct_keys = seen.iter().filter(|&&s| s).count() as u64;
    Ok(summary)
}

fn count_day(summary: &mut GenSummary, seen: &mut [bool], day: &LocalDay, events: &[Event]) {
    for e in events {
        seen[e.key as usize] = true;
        match client_kind(e.client) {
            Some((ClientKind::User, _)) => summary.user_requests += 1,
            Some((ClientKind::Scanner, _)) => summary.scanner_requests += 1,
            _ => summary.anonymous_requests += 1,
        }
    }
    summary.requests += events.len() as u64;
    summary.trading_days += u32::from(day.is_trading());
    summary.per_day.push(DaySummary {
        date: day.date.format("%Y-%m-%d").to_string(),
        kind: day.kind_name(),
        requests: events.len() as u64,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_round_trip_and_print_as_in_the_csv() {
        assert_eq!(
            ClientLabel(client_id(ClientKind::User, 12)).to_string(),
            "u12"
        );
        assert_eq!(
            ClientLabel(client_id(ClientKind::Scanner, 3)).to_string(),
            "scan3"
        );
        assert_eq!(
            ClientLabel(client_id(ClientKind::Anonymous, 4711)).to_string(),
            "a4711"
        );
        assert_eq!(
            client_kind(client_id(ClientKind::Anonymous, 9)),
            Some((ClientKind::Anonymous, 9))
        );
        assert_eq!(client_kind(u32::MAX), None);
    }

    #[test]
    fn invalid_config_is_an_error_not_a_panic() {
        let cfg = GenConfig {
            days: 0,
            ..GenConfig::default()
        };
        let err = generate(&cfg, |_| {}).unwrap_err();
        assert!(err.to_string().contains("days"), "{err}");
    }
}
