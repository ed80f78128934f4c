//! Purging on the admin listener (always the admin token, like every
//! write):
//!
//! - `DELETE /cache/{dataset}/{key}`: one key's entry, the key taken as
//!   reads take it (upper-cased and aliased as the dataset says; a key
//!   reads refuse is a 400 `invalid_key`); no query parameter;
//! - `DELETE /cache/{dataset}?group=NAME`: the entries of the group's
//!   members (as the engine knows them: universe file and `/v1/access`
//!   groups);
//! - `DELETE /cache/{dataset}`: every entry of the dataset.
//!
//! Any other query parameter (a misspelt `grop=`) is a 400
//! `bad_parameter` naming it, never a wider purge.
//!
//! 200 `{"dataset","scope","key"|"group"?,"purged":N}` with `purged` the
//! number of keys whose entries the store held and dropped (each key once,
//! whether Redis, the in-process fallback or both held it). When the
//! store cannot delete from its backend (Redis down, or skipped while it
//! backs off after a failure) the purge is not done: 503 `store_error`
//! with `Retry-After`; the in-process fallback still drops its copies. The engine stops counting
//! them as cached; the tracker keeps what it learned, so warming may fetch
//! them again.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AdminState;
use super::warming::{gone, not_running, unknown_dataset};
use crate::driver::{PurgeError, PurgeReport, PurgeScope};
use crate::openapi::ErrorBody;
use crate::proxy::error_response;
use crate::store::StoreError;

/// The query of `DELETE /cache/{dataset}`; any other parameter is a 400
/// `bad_parameter` (a misspelt `group` must not widen the purge to the
/// whole dataset).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PurgeQuery {
    /// Purge this group's members only (a sector, a watchlist name).
    group: Option<String>,
}

/// `DELETE /cache/{dataset}/{key}`.
#[utoipa::path(
    delete, path = "/cache/{dataset}/{key}", tag = "admin",
    params(("dataset" = String, Path, description = "Dataset, e.g. `quote`"),
           ("key" = String, Path, description = "The key, e.g. `AAPL`")),
    responses(
        (status = 200, description = "Purged; `purged` is 1 if an entry was there, else 0", body = PurgeReport),
        (status = 400, description = "A query parameter (`bad_parameter`), or a key reads refuse (`invalid_key`, naming the key pattern)", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "No admin token configured (`disabled`)", body = ErrorBody),
        (status = 404, description = "Unknown dataset", body = ErrorBody),
        (status = 503, description = "Warming driver not running, or the store failed", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn key(
    State(st): State<AdminState>,
    Path((dataset, key)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(name) = query.as_deref().and_then(first_parameter) {
        return bad_parameter(&name, "the key route takes no parameters");
    }
    purge(&st, dataset, PurgeScope::Key { key }).await
}

/// The name of the first parameter of a query string, if any.
fn first_parameter(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, _)| name.into_owned())
        .next()
}

/// 400 `bad_parameter` naming the parameter.
fn bad_parameter(name: &str, why: &str) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        "bad_parameter",
        format!("unknown query parameter {name:?}: {why}"),
    )
}

/// `DELETE /cache/{dataset}[?group=NAME]`.
#[utoipa::path(
    delete, path = "/cache/{dataset}", tag = "admin",
    params(("dataset" = String, Path, description = "Dataset, e.g. `quote`"), PurgeQuery),
    responses(
        (status = 200, description = "Purged: the group's members' entries, or every entry of the dataset", body = PurgeReport),
        (status = 400, description = "Empty group name, or a parameter other than `group` (`bad_parameter`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "No admin token configured (`disabled`)", body = ErrorBody),
        (status = 404, description = "Unknown dataset", body = ErrorBody),
        (status = 503, description = "Warming driver not running, or the store failed", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub(super) async fn dataset(
    State(st): State<AdminState>,
    Path(dataset): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut q = PurgeQuery { group: None };
    for (name, value) in url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        if name != "group" {
            return bad_parameter(&name, "only `group` is accepted");
        }
        q.group = Some(value.into_owned());
    }
    let scope = match q.group {
        Some(g) if g.is_empty() => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "missing_group",
                "group must not be empty".into(),
            );
        }
        Some(group) => PurgeScope::Group { group },
        None => PurgeScope::Dataset,
    };
    purge(&st, dataset, scope).await
}

async fn purge(st: &AdminState, dataset: String, scope: PurgeScope) -> Response {
    let Some(c) = st.warming.get() else {
        return not_running();
    };
    if let Some(resp) = unknown_dataset(c, Some(&dataset)) {
        return resp;
    }
    match c.purge(dataset, scope).await {
        Ok(Ok(report)) => {
            tracing::info!(dataset = %report.dataset, scope = ?report.scope, purged = report.purged, "purged");
            Json(report).into_response()
        }
        Ok(Err(e @ PurgeError::InvalidKey(_))) => {
            error_response(StatusCode::BAD_REQUEST, "invalid_key", e.to_string())
        }
        Ok(Err(e @ PurgeError::UnknownDataset(_))) => {
            error_response(StatusCode::NOT_FOUND, "unknown_dataset", e.to_string())
        }
        Ok(Err(PurgeError::Store(e))) => store_failed(st, &e),
        Err(e) => gone(e),
    }
}

/// 503 `store_error` with a `Retry-After` (whole seconds, at least 1) for
/// a purge the store could not finish: nothing is reported purged.
fn store_failed(st: &AdminState, err: &StoreError) -> Response {
    let retry_in_s = match err {
        StoreError::Unavailable { retry_in_s } => Some(*retry_in_s),
        _ => st.store.report().next_probe_in_s,
    };
    let retry_after_s = retry_in_s.unwrap_or(1.0).ceil().clamp(1.0, 3600.0) as u64;
    tracing::warn!(error = %err, "purge failed in the store");
    let mut resp = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_error",
        format!("purge not done: {err}"),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    resp
}
