//! The warming monitoring API on the admin listener (JSON):
//!
//! - `GET /warming/stats`: per dataset, totals and today's figures (hit
//!   rate, API calls, warming fetches, efficiency, per strategy), budget
//!   tokens, queued candidates, warming outcomes.
//! - `GET /warming/status`: enabled, market session, gate, upstream pause,
//!   warms in flight, scheduled jobs (last and next run), snapshot files,
//!   tracker summaries, event counters.
//! - `GET /warming/patterns?dataset=&limit=&key=`: popular, trending,
//!   upcoming keys, group trends and (with `key`) predicted successors.
//! - `POST /warming/run`: queue a warming cycle now.
//! - `POST /warming/save`: save every snapshot now.
//!
//! Stats and status read the driver's published view and never wait on
//! it; patterns, run and save ask the driver through its command channel.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use prewarm_core::strategy::StrategyId;

use super::{AdminState, figures};
use crate::driver::{DatasetView, DriverGone, DriverSnapshot};
use crate::proxy::error_response;

/// Most keys a patterns list returns.
pub const MAX_PATTERN_LIMIT: usize = 1000;

fn not_running() -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "warming_not_running",
        "the warming driver is not running".into(),
    )
}

fn gone(_: DriverGone) -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "warming_not_running",
        "the warming driver stopped".into(),
    )
}

/// A JSON object of `part(dataset)` by dataset name.
fn per_dataset(view: &DriverSnapshot, part: impl Fn(&DatasetView) -> Value) -> Value {
    let map: Map<String, Value> = view
        .datasets
        .iter()
        .map(|(name, d)| (name.clone(), part(d)))
        .collect();
    Value::Object(map)
}

pub(super) async fn stats(State(st): State<AdminState>) -> Response {
    let Some(c) = st.warming.get() else {
        return not_running();
    };
    let view = c.view();
    st.history.observe(&view);
    let datasets: Map<String, Value> = view
        .datasets
        .iter()
        .map(|(name, d)| {
            let window = |s| st.history.window(name, &d.total, view.at_s, s);
            let v = json!({
                "since_start": figures::period(&d.total),
                "today": figures::period(&d.today),
                "last_minute": window(60.0),
                "last_hour": window(3600.0),
                "total": d.total,
                "budget_tokens": d.budget_tokens,
                "warm_rate_per_min": d.warm_rate_per_min,
                "queued_candidates": d.queued_candidates,
                "warm_outcomes": d.warm_outcomes,
            });
            (name.clone(), v)
        })
        .collect();
    Json(json!({"at_s": view.at_s, "datasets": datasets})).into_response()
}

pub(super) async fn status(State(st): State<AdminState>) -> Response {
    let Some(c) = st.warming.get() else {
        return not_running();
    };
    let view = c.view();
    st.history.observe(&view);
    let datasets = per_dataset(&view, |d| {
        json!({
            "gate": d.gate,
            "ttl_s": d.ttl_s,
            "budget_tokens": d.budget_tokens,
            "tracker": d.tracker,
            "snapshot": d.snapshot,
            "snapshot_age_s": d.snapshot.last_saved_s.map(|s| (view.at_s - s).max(0.0)),
        })
    });
    let schedules: Vec<Value> = view
        .jobs
        .iter()
        .map(|j| {
            json!({
                "job": j.kind,
                "last_run": figures::times(j.last_run_s),
                "next_run": figures::times(Some(j.next_run_s)),
                "last_outcome": j.last_outcome,
            })
        })
        .collect();
    let paused = view.upstream_paused_until_s.is_some_and(|u| u > view.at_s);
    Json(json!({
        "at_s": view.at_s,
        "now": figures::times(Some(view.at_s)),
        "running": true,
        "enabled": view.warming_enabled,
        "schedules": schedules,
        "upstream": {"health": if paused { "paused" } else { "ok" }, "paused_until_s": view.upstream_paused_until_s},
        "store": {"health": if st.ready.load(std::sync::atomic::Ordering::Acquire) { "connected" } else { "starting" }},
        "warming_enabled": view.warming_enabled,
        "session": view.session,
        "outside_sessions": view.outside_sessions,
        "upstream_paused_until_s": view.upstream_paused_until_s,
        "warms_in_flight": view.warms_in_flight,
        "max_concurrent": view.max_concurrent,
        "cycle_queued": view.cycle_queued,
        "events": view.events,
        "jobs": view.jobs,
        "datasets": datasets,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct PatternsQuery {
    dataset: Option<String>,
    limit: Option<usize>,
    key: Option<String>,
}

pub(super) async fn patterns(
    State(st): State<AdminState>,
    Query(q): Query<PatternsQuery>,
) -> Response {
    let Some(c) = st.warming.get() else {
        return not_running();
    };
    let limit = q.limit.unwrap_or(20).clamp(1, MAX_PATTERN_LIMIT);
    if let Some(d) = &q.dataset
        && !c.view().datasets.contains_key(d)
    {
        return error_response(
            StatusCode::NOT_FOUND,
            "unknown_dataset",
            format!("unknown dataset {d:?}"),
        );
    }
    match c.patterns(q.dataset, limit, q.key).await {
        Ok(p) => Json(json!({"datasets": p})).into_response(),
        Err(e) => gone(e),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct RunQuery {
    strategy: Option<String>,
}

pub(super) async fn run(State(st): State<AdminState>, Query(q): Query<RunQuery>) -> Response {
    let Some(c) = st.warming.get() else {
        return not_running();
    };
    let only = match q.strategy.as_deref().map(str::parse::<StrategyId>) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            return error_response(StatusCode::BAD_REQUEST, "unknown_strategy", e.to_string());
        }
    };
    match c.run_cycle_of(only).await {
        Ok(report) => (StatusCode::ACCEPTED, Json(json!(report))).into_response(),
        Err(e) => gone(e),
    }
}

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
            (status, Json(json!({"saved": reports}))).into_response()
        }
        Err(e) => gone(e),
    }
}
