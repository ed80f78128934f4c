//! The warming monitoring API on the admin listener (JSON):
//!
//! - `GET /warming/stats`: per dataset, totals and today's figures (hit
//!   rate, API calls, warming fetches, efficiency, per strategy, cost
//!   against the no-warming shadow), budget tokens, queued candidates,
//!   warming outcomes, the cost cap's price with its history, and the
//!   last hour in 10-second buckets (`history`).
//! - `GET /warming/status`: enabled, market session, gate, upstream pause,
//!   warms in flight, scheduled jobs (last and next run), snapshot files,
//!   tracker summaries, event counters.
//! - `GET /warming/patterns?dataset=&limit=&key=`: popular, trending,
//!   upcoming keys, group trends, (with `key`) predicted successors, and
//!   the learned model's calibration.
//! - `POST /warming/run?strategy=&dataset=&limit=&look_ahead_s=&window_s=&keys=&group=`:
//!   run a warming cycle now (the default cycle without `strategy`) and
//!   answer with what it warmed, skipped and failed once it is done.
//! - `POST /warming/save`: save every snapshot now.
//!
//! Stats and status read the driver's published view and never wait on
//! it; patterns, run and save ask the driver through its command channel.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use prewarm_core::strategy::StrategyId;

use super::AdminState;
use super::answers::{PatternsAnswer, SaveAnswer, StatsAnswer, StatusAnswer};
use crate::driver::{CycleRequest, DriverGone, WarmReport};
use crate::proxy::error_response;

/// Most keys a patterns list returns.
pub const MAX_PATTERN_LIMIT: usize = 1000;

pub(super) fn not_running() -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "warming_not_running",
        "the warming driver is not running".into(),
    )
}

pub(super) fn gone(_: DriverGone) -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "warming_not_running",
        "the warming driver stopped".into(),
    )
}

/// A 404 when `dataset` names no dataset the driver runs.
pub(super) fn unknown_dataset(
    c: &crate::driver::DriverClient,
    dataset: Option<&str>,
) -> Option<Response> {
    let d = dataset?;
    (!c.view().datasets.contains_key(d)).then(|| {
        error_response(
            StatusCode::NOT_FOUND,
            "unknown_dataset",
            format!("unknown dataset {d:?}"),
        )
    })
}

#[utoipa::path(get, path = "/warming/stats", tag = "admin",
    responses(
        (status = 200, description = "Per dataset: hit rate, API calls, warming fetches and efficiency, per strategy too; the cost cap's price; the last hour in 10 s buckets", body = StatsAnswer),
        (status = 401, description = "Under admin.protect_reads: missing or wrong admin token", body = crate::openapi::ErrorBody),
        (status = 503, description = "`warming_not_running`", body = crate::openapi::ErrorBody),
    ),
    security((), ("admin_token" = [])))]
pub(super) async fn stats(State(st): State<AdminState>) -> Response {
    let Some(c) = st.warming.get() else {
        return not_running();
    };
    Json(StatsAnswer::of(&c.view(), st.store.report())).into_response()
}

#[utoipa::path(get, path = "/warming/status", tag = "admin",
    responses(
        (status = 200, description = "The driver, its schedules, the market session, the health of upstream and store, the start-up cycle's progress, and per dataset its gate, TTLs, tracker and snapshot", body = StatusAnswer),
        (status = 401, description = "Under admin.protect_reads: missing or wrong admin token", body = crate::openapi::ErrorBody),
        (status = 503, description = "`warming_not_running`", body = crate::openapi::ErrorBody),
    ),
    security((), ("admin_token" = [])))]
pub(super) async fn status(State(st): State<AdminState>) -> Response {
    let Some(c) = st.warming.get() else {
        return not_running();
    };
    Json(StatusAnswer::of(&c.view(), st.store.report())).into_response()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(super) struct PatternsQuery {
    /// This dataset only (default: every dataset).
    dataset: Option<String>,
    /// Most keys of each kind, 1..=1000 (default 20).
    limit: Option<usize>,
    /// Also predict the keys likely to follow this one.
    key: Option<String>,
}

#[utoipa::path(get, path = "/warming/patterns", tag = "admin", params(PatternsQuery),
    responses(
        (status = 200, description = "What the trackers learned, per dataset", body = PatternsAnswer),
        (status = 400, description = "`bad_limit`: limit outside 1..=1000", body = crate::openapi::ErrorBody),
        (status = 404, description = "`unknown_dataset`", body = crate::openapi::ErrorBody),
        (status = 401, description = "Under admin.protect_reads: missing or wrong admin token", body = crate::openapi::ErrorBody),
        (status = 503, description = "`warming_not_running`", body = crate::openapi::ErrorBody),
    ),
    security((), ("admin_token" = [])))]
pub(super) async fn patterns(
    State(st): State<AdminState>,
    Query(q): Query<PatternsQuery>,
) -> Response {
    let Some(c) = st.warming.get() else {
        return not_running();
    };
    let limit = match q.limit {
        None => 20,
        Some(l) if (1..=MAX_PATTERN_LIMIT).contains(&l) => l,
        Some(l) => return bad_limit(l, MAX_PATTERN_LIMIT).into_response(),
    };
    if let Some(resp) = unknown_dataset(c, q.dataset.as_deref()) {
        return resp;
    }
    match c.patterns(q.dataset, limit, q.key).await {
        Ok(datasets) => Json(PatternsAnswer { datasets }).into_response(),
        Err(e) => gone(e),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(super) struct RunQuery {
    /// `popular`, `time`, `trending`, `predictive` or `sector` (default:
    /// the pre-market cycle, popular and time).
    strategy: Option<String>,
    /// This dataset only (default: every dataset).
    dataset: Option<String>,
    /// Most keys, 1..=10000 (default: the strategy's setting).
    limit: Option<usize>,
    /// For `time`: seconds ahead (default 1800).
    look_ahead_s: Option<f64>,
    /// For `trending`: the window, seconds (default 300).
    window_s: Option<f64>,
    /// Comma-separated current keys, for `predictive`.
    keys: Option<String>,
    /// The group, for `sector`.
    group: Option<String>,
}

/// Most keys one `POST /warming/run` may ask for.
pub const MAX_RUN_LIMIT: usize = 10_000;

/// A 400 with its error code and message, built by the caller.
struct BadRequest(&'static str, String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error_response(StatusCode::BAD_REQUEST, self.0, self.1)
    }
}

fn bad_request(code: &'static str, message: String) -> BadRequest {
    BadRequest(code, message)
}

/// The cycle a run query asks for: `None` is the default cycle.
fn run_request(q: &RunQuery) -> Result<Option<CycleRequest>, BadRequest> {
    let Some(name) = q.strategy.as_deref() else {
        return Ok(None);
    };
    let strategy = name
        .parse::<StrategyId>()
        .ok()
        .filter(|id| RUN_STRATEGIES.contains(id))
        .ok_or_else(|| unknown_run_strategy(name))?;
    if let Some(l) = q.limit
        && !(1..=MAX_RUN_LIMIT).contains(&l)
    {
        return Err(bad_limit(l, MAX_RUN_LIMIT));
    }
    let seconds = |field: &str, v: Option<f64>, default_s: f64| match v {
        None => Ok(default_s),
        Some(s) if s.is_finite() && s > 0.0 && s <= 7.0 * 86_400.0 => Ok(s),
        Some(s) => Err(bad_request(
            "bad_seconds",
            format!("{field} must be in (0, 604800] seconds, not {s}"),
        )),
    };
    let limit = q.limit;
    Ok(Some(match strategy {
        StrategyId::Popular => CycleRequest::Popular { limit },
        StrategyId::Time => CycleRequest::TimePattern {
            look_ahead_s: seconds("look_ahead_s", q.look_ahead_s, 1800.0)?,
            limit,
        },
        StrategyId::Trending => CycleRequest::Trending {
            window_s: seconds("window_s", q.window_s, 300.0)?,
            limit,
        },
        StrategyId::Predictive => {
            let keys: Vec<String> = q
                .keys
                .as_deref()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect();
            if keys.is_empty() {
                return Err(bad_request(
                    "missing_keys",
                    "strategy=predictive needs keys=A,B,... (the keys just requested)".into(),
                ));
            }
            CycleRequest::Predictive {
                current_keys: keys,
                limit,
            }
        }
        StrategyId::Sector => match q.group.as_deref().filter(|g| !g.is_empty()) {
            Some(g) => CycleRequest::Sector {
                group: g.to_string(),
                limit,
            },
            None => {
                return Err(bad_request(
                    "missing_group",
                    "strategy=sector needs group=NAME".into(),
                ));
            }
        },
        StrategyId::Refresh => return Err(unknown_run_strategy(name)),
    }))
}

/// The strategies `POST /warming/run?strategy=` runs (`refresh` runs on
/// each entry's expiry; it has no cycle).
const RUN_STRATEGIES: [StrategyId; 5] = [
    StrategyId::Popular,
    StrategyId::Time,
    StrategyId::Trending,
    StrategyId::Predictive,
    StrategyId::Sector,
];

/// 400 `unknown_strategy` listing the strategies a run accepts.
fn unknown_run_strategy(name: &str) -> BadRequest {
    let accepted: Vec<&str> = RUN_STRATEGIES.iter().map(|id| id.name()).collect();
    bad_request(
        "unknown_strategy",
        format!(
            "unknown strategy {:?}; a run takes one of: {}",
            name.trim(),
            accepted.join(", ")
        ),
    )
}

/// 400 `bad_limit`: `limit` outside `1..=max`.
fn bad_limit(limit: usize, max: usize) -> BadRequest {
    bad_request("bad_limit", format!("limit must be 1..={max}, not {limit}"))
}

#[utoipa::path(post, path = "/warming/run", tag = "admin", params(RunQuery),
    responses(
        (status = 200, description = "Once its fetches are back: what the cycle warmed, skipped and failed", body = WarmReport),
        (status = 400, description = "`unknown_strategy`, `bad_limit`, `bad_seconds`, `missing_keys`, `missing_group`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`unknown_dataset`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`cycle_refused` (warming disabled)", body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorBody),
        (status = 403, description = "No admin token configured (`disabled`)", body = crate::openapi::ErrorBody),
        (status = 503, description = "`warming_not_running`", body = crate::openapi::ErrorBody),
    ),
    security(("admin_token" = [])))]
pub(super) async fn run(State(st): State<AdminState>, Query(q): Query<RunQuery>) -> Response {
    let Some(c) = st.warming.get() else {
        return not_running();
    };
    let req = match run_request(&q) {
        Ok(r) => r,
        Err(bad) => return bad.into_response(),
    };
    if let Some(resp) = unknown_dataset(c, q.dataset.as_deref()) {
        return resp;
    }
    match c.warm(q.dataset, req.map(|r| vec![r])).await {
        Ok(report) => match &report.refused {
            Some(why) => error_response(StatusCode::CONFLICT, "cycle_refused", why.clone()),
            None => Json(report).into_response(),
        },
        Err(e) => gone(e),
    }
}

#[utoipa::path(post, path = "/warming/save", tag = "admin",
    responses(
        (status = 200, description = "Every snapshot saved", body = SaveAnswer),
        (status = 500, description = "A snapshot could not be written (`saved[].error`)", body = SaveAnswer),
        (status = 401, description = "Missing or wrong admin token", body = crate::openapi::ErrorBody),
        (status = 403, description = "No admin token configured (`disabled`)", body = crate::openapi::ErrorBody),
        (status = 503, description = "`warming_not_running`", body = crate::openapi::ErrorBody),
    ),
    security(("admin_token" = [])))]
pub(super) async fn save(State(st): State<AdminState>) -> Response {
    let Some(c) = st.warming.get() else {
        return not_running();
    };
    match c.save().await {
        Ok(reports) => {
            let failed = reports.iter().any(|r| r.error.is_some());
            let status = if failed {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            };
            (status, Json(SaveAnswer { saved: reports })).into_response()
        }
        Err(e) => gone(e),
    }
}
