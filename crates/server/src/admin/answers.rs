//! The typed 200 answers of the warming API: what the handlers of
//! [`super::warming`] serialize, and so what `/openapi.json` documents
//! field by field (one type, so the two cannot drift apart).

use std::collections::BTreeMap;

use prewarm_core::calendar::MarketSession;
use prewarm_core::cost::PriceFigures;
use prewarm_core::tracker::TrackerStats;
use prewarm_core::ttl::{SessionTtl, SessionTtls};
use serde::Serialize;
use utoipa::ToSchema;

use super::figures::{self, Period, Times};
use crate::driver::dataset::{SnapshotInfo, WarmOutcomes};
use crate::driver::gate::GateState;
use crate::driver::history::{History, Window};
use crate::driver::schedule::{Job, JobKind};
use crate::driver::settings::OutsideSessions;
use crate::driver::startup::StartupProgress;
use crate::driver::view::EventFigures;
use crate::driver::{CycleFigures, DatasetView, DriverSnapshot, Figures, Patterns, SaveReport};
use crate::store::HealthReport;

/// `GET /warming/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsAnswer {
    /// When the driver's view was taken, Unix seconds.
    pub at_s: f64,
    /// The store backend's health.
    pub store: HealthReport,
    /// Per dataset name.
    pub datasets: BTreeMap<String, DatasetStats>,
}

/// One dataset in `GET /warming/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetStats {
    /// Totals since the daemon started, with waste and cost.
    pub since_start: Period,
    /// Totals since the last midnight (New York), with waste and cost.
    pub today: Period,
    /// Requests and hits over the last 60 s.
    pub last_minute: Window,
    /// Requests and hits over the last 3600 s.
    pub last_hour: Window,
    /// The raw counters since start, with their ratios.
    pub total: Figures,
    /// Warming tokens available now (fetches).
    pub budget_tokens: f64,
    /// Warming budget, fetches per minute.
    pub warm_rate_per_min: f64,
    /// Candidates waiting for budget or their window.
    pub queued_candidates: usize,
    /// API calls over those of the no-warming shadow over about the last
    /// day (the cost governor's ratio).
    pub cost_ratio_recent: f64,
    /// The cost cap's price, its account and its history.
    pub price: PriceFigures,
    /// What warming calls returned, counts.
    pub warm_outcomes: WarmOutcomes,
    /// The last hour in buckets of `bucket_s` seconds.
    pub history: History,
}

impl StatsAnswer {
    /// The answer for `view`, the store's health being `store`.
    pub fn of(view: &DriverSnapshot, store: HealthReport) -> Self {
        let datasets = view
            .datasets
            .iter()
            .map(|(name, d)| (name.clone(), DatasetStats::of(d, view.at_s)))
            .collect();
        StatsAnswer {
            at_s: view.at_s,
            store,
            datasets,
        }
    }
}

impl DatasetStats {
    fn of(d: &DatasetView, at_s: f64) -> Self {
        DatasetStats {
            since_start: figures::period(&d.total),
            today: figures::period(&d.today),
            last_minute: d.history.window(at_s, 60.0),
            last_hour: d.history.window(at_s, 3600.0),
            total: d.total.clone(),
            budget_tokens: d.budget_tokens,
            warm_rate_per_min: d.warm_rate_per_min,
            queued_candidates: d.queued_candidates,
            cost_ratio_recent: d.cost_ratio_recent,
            price: d.price.clone(),
            warm_outcomes: d.warm_outcomes,
            history: d.history.clone(),
        }
    }
}

/// The health of the upstream as warming sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamHealthState {
    /// Warming may call.
    Ok,
    /// A 429 pause or an open circuit holds warming until `paused_until_s`.
    Paused,
    /// The quota (`upstream.rate_limit_per_min` less the demand reserve)
    /// leaves warming no call now; no failure of the upstream.
    Quota,
}

/// `upstream` of `GET /warming/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamHealth {
    /// `ok`, `paused` or `quota`.
    pub health: UpstreamHealthState,
    /// Until when warming waits on the upstream, Unix seconds (null: no
    /// wait, or one with no known end).
    pub paused_until_s: Option<f64>,
}

/// One scheduled job in `schedules` of `GET /warming/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleEntry {
    /// Which job.
    pub job: JobKind,
    /// When it last ran (null: not yet).
    pub last_run: Option<Times>,
    /// When it runs next.
    pub next_run: Times,
    /// What its last run did (or why it did nothing).
    pub last_outcome: Option<String>,
}

/// A session's TTL as shown: seconds, or `"until_open"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum SessionTtlShown {
    /// Fresh for this many seconds after the fetch.
    Seconds(f64),
    /// Fresh until the next session start (closed session only).
    Word(UntilOpen),
}

/// The word `until_open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UntilOpen {
    /// Fresh until pre-market of the next trading day.
    UntilOpen,
}

impl From<SessionTtl> for SessionTtlShown {
    fn from(t: SessionTtl) -> Self {
        match t {
            SessionTtl::Seconds(s) => SessionTtlShown::Seconds(s),
            SessionTtl::UntilOpen => SessionTtlShown::Word(UntilOpen::UntilOpen),
        }
    }
}

/// `[datasets.NAME.ttl_by_session]` as validated: every session's TTL
/// (a session the file left out has the dataset's `ttl_s`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct SessionTtlsShown {
    /// 04:00–09:30 New York on a trading day: seconds.
    pub pre_market: SessionTtlShown,
    /// 09:30–16:00 (13:00 on an early close): seconds.
    pub regular: SessionTtlShown,
    /// 16:00–20:00 (13:00–17:00 on an early close): seconds.
    pub after_hours: SessionTtlShown,
    /// Nights, weekends, holidays: seconds or `until_open`.
    pub closed: SessionTtlShown,
}

impl From<SessionTtls> for SessionTtlsShown {
    fn from(t: SessionTtls) -> Self {
        SessionTtlsShown {
            pre_market: t.pre_market.into(),
            regular: t.regular.into(),
            after_hours: t.after_hours.into(),
            closed: t.closed.into(),
        }
    }
}

/// One dataset in `GET /warming/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetStatus {
    /// The outside-session gate now.
    pub gate: GateState,
    /// Freshness lifetime, seconds (every session's without
    /// `ttl_by_session`).
    pub ttl_s: f64,
    /// The TTL per market session (null: not set, `ttl_s` throughout).
    pub ttl_by_session: Option<SessionTtlsShown>,
    /// Warming tokens available now (fetches).
    pub budget_tokens: f64,
    /// The tracker's counters and top keys.
    pub tracker: TrackerStats,
    /// The snapshot file and its last save and restore.
    pub snapshot: SnapshotInfo,
    /// Seconds since the last save (null: none yet).
    pub snapshot_age_s: Option<f64>,
}

impl DatasetStatus {
    fn of(d: &DatasetView, at_s: f64) -> Self {
        DatasetStatus {
            gate: d.gate,
            ttl_s: d.ttl_s,
            ttl_by_session: d.ttl_by_session.map(Into::into),
            budget_tokens: d.budget_tokens,
            tracker: d.tracker.clone(),
            snapshot: d.snapshot.clone(),
            snapshot_age_s: d.snapshot.last_saved_s.map(|s| (at_s - s).max(0.0)),
        }
    }
}

/// `GET /warming/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusAnswer {
    /// When the driver's view was taken, Unix seconds.
    pub at_s: f64,
    /// `at_s` in UTC and New York time.
    pub now: Times,
    /// The exchange's time zone (IANA name) of the `et` times.
    pub exchange_tz: &'static str,
    /// Always true: the driver runs (else the route answers 503).
    pub running: bool,
    /// `warming.enabled`.
    pub enabled: bool,
    /// The scheduled jobs, their last and next runs in three forms.
    pub schedules: Vec<ScheduleEntry>,
    /// The upstream's health as warming sees it.
    pub upstream: UpstreamHealth,
    /// The store backend's health.
    pub store: HealthReport,
    /// `warming.enabled` (the same as `enabled`).
    pub warming_enabled: bool,
    /// The market session now.
    pub session: MarketSession,
    /// `warming.outside_sessions`.
    pub outside_sessions: OutsideSessions,
    /// `upstream.paused_until_s`, kept at the top level too.
    pub upstream_paused_until_s: Option<f64>,
    /// Warming fetches in flight.
    pub warms_in_flight: usize,
    /// Bound on warming fetches in flight.
    pub max_concurrent: usize,
    /// Cycle fetches still waiting for a slot.
    pub cycle_queued: usize,
    /// Cycles run, in progress, and the last one's counts.
    pub cycles: CycleFigures,
    /// The start-up cycle after a restart.
    pub startup: StartupProgress,
    /// Events applied to the engines and dropped on the way.
    pub events: EventFigures,
    /// The scheduled jobs, times in Unix seconds.
    pub jobs: Vec<Job>,
    /// Per dataset name.
    pub datasets: BTreeMap<String, DatasetStatus>,
}

impl StatusAnswer {
    /// The answer for `view`, the store's health being `store`.
    pub fn of(view: &DriverSnapshot, store: HealthReport) -> Self {
        let schedules = view
            .jobs
            .iter()
            .map(|j| ScheduleEntry {
                job: j.kind,
                last_run: j.last_run_s.map(figures::times),
                next_run: figures::times(j.next_run_s),
                last_outcome: j.last_outcome.clone(),
            })
            .collect();
        let paused = view.upstream_paused_until_s.is_some_and(|u| u > view.at_s);
        // The quota's hold is its own state: it is no failure of the upstream.
        let health = match (view.upstream_quota_held, paused) {
            (true, _) => UpstreamHealthState::Quota,
            (false, true) => UpstreamHealthState::Paused,
            (false, false) => UpstreamHealthState::Ok,
        };
        StatusAnswer {
            at_s: view.at_s,
            now: figures::times(view.at_s),
            exchange_tz: figures::EXCHANGE_TZ,
            running: true,
            enabled: view.warming_enabled,
            schedules,
            upstream: UpstreamHealth {
                health,
                paused_until_s: view.upstream_paused_until_s,
            },
            store,
            warming_enabled: view.warming_enabled,
            session: view.session,
            outside_sessions: view.outside_sessions,
            upstream_paused_until_s: view.upstream_paused_until_s,
            warms_in_flight: view.warms_in_flight,
            max_concurrent: view.max_concurrent,
            cycle_queued: view.cycle_queued,
            cycles: view.cycles,
            startup: view.startup.clone(),
            events: view.events,
            jobs: view.jobs.clone(),
            datasets: view
                .datasets
                .iter()
                .map(|(name, d)| (name.clone(), DatasetStatus::of(d, view.at_s)))
                .collect(),
        }
    }
}

/// `GET /warming/patterns`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatternsAnswer {
    /// What each asked dataset's tracker learned.
    pub datasets: Vec<Patterns>,
}

/// `POST /warming/save` (200, and 500 when a save failed).
#[derive(Debug, Serialize, ToSchema)]
pub struct SaveAnswer {
    /// One report per dataset.
    pub saved: Vec<SaveReport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ttls_show_seconds_and_until_open() {
        let mut t = SessionTtls::all(30.0);
        t.closed = SessionTtl::UntilOpen;
        let shown = serde_json::to_value(SessionTtlsShown::from(t)).unwrap();
        assert_eq!(shown["regular"], 30.0);
        assert_eq!(shown["closed"], "until_open");
    }
}
