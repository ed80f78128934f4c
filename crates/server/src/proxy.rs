//! The proxy's HTTP routes (axum).
//!
//! - `GET /v1/{dataset}/{key}`: the upstream's body, `X-Cache: HIT|MISS|STALE`,
//!   `Age` (whole seconds since the fetch), `Cache-Status` (RFC 9211),
//!   `Cache-Control: max-age` and the upstream's `ETag` (a matching
//!   `If-None-Match` gets 304); a request's `Cache-Control: no-cache`
//!   forces a fetch ([`cache_headers`]). A key the upstream answered 404
//!   for is answered 404 from its negative entry.
//! - `GET /v1/{dataset}?keys=A,B` and `POST /v1/{dataset}` with
//!   `{"keys":[...]}`: a JSON object keyed by key, each item with the cache
//!   facts a single read gives as headers ([`batch_entry`]); per-key errors
//!   inside.
//! - `POST /v1/access`: the sidecar access feed (see [`crate::proxy::access`]).
//!
//! The client is named by the `X-Client-Id` header. Errors are JSON
//! `{"error":{"code","message"}}`; upstream failures are described in
//! general terms ([`public_message`]), never with the upstream's URL or
//! body: the details go to the logs, redacted.

pub mod access;
pub mod batch_entry;
pub mod cache_headers;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::service::{CacheService, ReadError, ReadOptions};
use crate::upstream::FetchError;

/// Header naming the client for access tracking.
pub const CLIENT_HEADER: &str = "x-client-id";

#[derive(Debug, Clone)]
struct AppState {
    service: Arc<CacheService>,
    max_batch_keys: usize,
    access_limit: Arc<access::AccessLimiter>,
}

/// The proxy routes over `service`; `POST /v1/access` accepts at most
/// `access_rate_limit_per_min` items per minute ([`access::AccessLimiter`]).
pub fn router(
    service: Arc<CacheService>,
    max_batch_keys: usize,
    access_rate_limit_per_min: f64,
) -> Router {
    Router::new()
        .route("/v1/access", post(access::feed))
        .route("/v1/{dataset}/{key}", get(get_one))
        .route("/v1/{dataset}", get(get_many).post(post_many))
        .with_state(AppState {
            service,
            max_batch_keys,
            access_limit: Arc::new(access::AccessLimiter::new(access_rate_limit_per_min)),
        })
        .fallback(|| async {
            error_response(StatusCode::NOT_FOUND, "not_found", "no such route".into())
        })
}

/// A JSON error response.
pub fn error_response(status: StatusCode, code: &str, message: String) -> Response {
    let body = crate::openapi::ErrorBody {
        error: crate::openapi::ErrorDetail {
            code: code.to_string(),
            message,
            errors: None,
        },
    };
    (status, Json(body)).into_response()
}

fn client_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .map(str::to_string)
}

/// HTTP status and error code for a read error.
fn classify(err: &ReadError) -> (StatusCode, &'static str) {
    match err {
        ReadError::UnknownDataset(_) => (StatusCode::NOT_FOUND, "unknown_dataset"),
        ReadError::InvalidKey { .. } => (StatusCode::BAD_REQUEST, "invalid_key"),
        ReadError::Timeout | ReadError::Fetch(FetchError::Timeout) => {
            (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout")
        }
        ReadError::Fetch(FetchError::RateLimited { .. }) => {
            (StatusCode::SERVICE_UNAVAILABLE, "upstream_rate_limited")
        }
        ReadError::Fetch(FetchError::Unavailable { .. }) => {
            (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable")
        }
        ReadError::Fetch(FetchError::QuotaExhausted { .. }) => {
            (StatusCode::SERVICE_UNAVAILABLE, "upstream_quota_exhausted")
        }
        ReadError::Fetch(FetchError::Status { status: 404, .. })
        | ReadError::Fetch(FetchError::NotInBatch) => (StatusCode::NOT_FOUND, "upstream_not_found"),
        ReadError::Fetch(_) => (StatusCode::BAD_GATEWAY, "upstream_error"),
    }
}

/// What a client is told about `err`: the request's own problem in full
/// (unknown dataset, refused key), an upstream failure only in general
/// terms (its status code at most; no URL, no body, no transport detail).
pub fn public_message(err: &ReadError) -> String {
    match err {
        ReadError::UnknownDataset(_) | ReadError::InvalidKey { .. } => err.to_string(),
        ReadError::Timeout => "upstream did not answer within the request timeout".into(),
        ReadError::Fetch(e) => match e {
            FetchError::Status { status, .. } => format!("upstream answered HTTP {status}"),
            FetchError::RateLimited { .. } => "upstream is rate limiting; retry later".into(),
            FetchError::QuotaExhausted { .. } => {
                "the upstream call quota is spent; retry later".into()
            }
            FetchError::Unavailable { .. } => {
                "upstream is failing repeatedly (circuit open); retry later".into()
            }
            FetchError::Timeout => "upstream did not answer in time".into(),
            FetchError::Transport(_) => "upstream could not be reached".into(),
            FetchError::BadBatch(_) => "upstream sent a batch answer that could not be read".into(),
            FetchError::NotInBatch => "upstream's batch answer lacks this key".into(),
            FetchError::Abandoned => "the upstream fetch stopped without a result".into(),
        },
    }
}

/// Seconds a client should wait before asking again, for `Retry-After`.
fn retry_after_s(err: &ReadError) -> Option<f64> {
    match err {
        ReadError::Fetch(
            FetchError::RateLimited { retry_after_s }
            | FetchError::Unavailable { retry_after_s }
            | FetchError::QuotaExhausted { retry_after_s },
        ) => Some(*retry_after_s),
        _ => None,
    }
}

fn read_error_response(err: &ReadError) -> Response {
    let (status, code) = classify(err);
    let mut resp = error_response(status, code, public_message(err));
    cache_headers::mark_error(&mut resp, code);
    if let Some(s) = retry_after_s(err)
        && let Ok(v) = HeaderValue::from_str(&format!("{}", s.ceil().max(1.0) as u64))
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

#[utoipa::path(
    get, path = "/v1/{dataset}/{key}", tag = "proxy",
    params(
        ("dataset" = String, Path, description = "Dataset, e.g. `quote`"),
        ("key" = String, Path, description = "Key, e.g. `AAPL`"),
        ("X-Client-Id" = Option<String>, Header, description = "Names the client for access tracking"),
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer: 304 when the entry still has it"),
        ("Cache-Control" = Option<String>, Header, description = "`no-cache` forces an upstream fetch (coalesced, counted as demand)"),
    ),
    responses(
        (status = 200, description = "The upstream's body as fetched (its content type)",
         headers(("X-Cache" = String, description = "HIT, MISS or STALE"),
                 ("Age" = u64, description = "Whole seconds since the fetch"),
                 ("Cache-Status" = String, description = "RFC 9211, cache `prewarm`: e.g. `prewarm; hit; ttl=42`, `prewarm; fwd=miss; fwd-status=200; stored; ttl=60`"),
                 ("Cache-Control" = String, description = "`max-age=N`: whole seconds of freshness left (0 when stale)"),
                 ("ETag" = String, description = "The upstream's ETag of the entry, when it gave one"))),
        (status = 304, description = "`If-None-Match` matched the entry's ETag: no body, the same headers as a 200"),
        (status = 400, description = "`invalid_key`: the key fails the dataset's pattern", body = crate::openapi::ErrorBody),
        (status = 404, description = "`unknown_dataset`, or `upstream_not_found` (kept for `negative_ttl_s`: then `X-Cache: HIT`, `Cache-Status: prewarm; hit; ttl=N` and `Cache-Control: max-age=N` while it lasts)", body = crate::openapi::ErrorBody),
        (status = 502, description = "`upstream_error`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`upstream_rate_limited`, `upstream_unavailable` or `upstream_quota_exhausted`",
         body = crate::openapi::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 504, description = "`upstream_timeout`", body = crate::openapi::ErrorBody),
    )
)]
async fn get_one(
    State(st): State<AppState>,
    Path((dataset, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let client = client_of(&headers);
    let options = ReadOptions {
        client: client.as_deref(),
        no_cache: cache_headers::wants_no_cache(&headers),
    };
    let started = std::time::Instant::now();
    let read = st.service.read_with(&dataset, &key, options).await;
    let result = match &read {
        Ok(served) => served.status.label(),
        Err(_) => "error",
    };
    record_request(&st.service, &dataset, &[result], started.elapsed());
    match (read, st.service.dataset(&dataset)) {
        (Ok(served), Some(ds)) => {
            let now_s = st.service.clock().now_s();
            cache_headers::served_response(ds, served, &headers, now_s)
        }
        (Ok(_), None) => read_error_response(&ReadError::UnknownDataset(dataset)),
        (Err(e), _) => read_error_response(&e),
    }
}

/// Counts a request's items by `results` (`hit`, `miss`, `stale`, `error`)
/// and its latency. Unknown datasets are labelled `unknown` so labels stay
/// low-cardinality.
fn record_request(
    svc: &CacheService,
    dataset: &str,
    results: &[&'static str],
    took: std::time::Duration,
) {
    let dataset = if svc.dataset(dataset).is_some() {
        dataset.to_string()
    } else {
        "unknown".to_string()
    };
    for result in results {
        metrics::counter!("prewarm_requests_total", "dataset" => dataset.clone(), "result" => *result)
            .increment(1);
    }
    metrics::histogram!("prewarm_request_duration_seconds", "dataset" => dataset)
        .record(took.as_secs_f64());
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct KeysQuery {
    /// Comma-separated keys, e.g. `AAPL,MSFT`.
    keys: Option<String>,
}

/// The body of `POST /v1/{dataset}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct KeysBody {
    /// The keys, at most `server.max_batch_keys`.
    keys: Vec<String>,
}

#[utoipa::path(
    get, path = "/v1/{dataset}", tag = "proxy",
    params(("dataset" = String, Path, description = "Dataset, e.g. `quote`"), KeysQuery,
           ("X-Client-Id" = Option<String>, Header, description = "Names the client for access tracking")),
    responses(
        (status = 200, description = "A JSON object keyed by key: each a `BatchEntry` (value with its cache status, max-age and ETag, or that key's error)",
         body = std::collections::HashMap<String, batch_entry::BatchEntry>),
        (status = 400, description = "`missing_keys`, `too_many_keys`, `invalid_body`, `invalid_key`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`unknown_dataset`", body = crate::openapi::ErrorBody),
    )
)]
async fn get_many(
    State(st): State<AppState>,
    Path(dataset): Path<String>,
    Query(q): Query<KeysQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(list) = q.keys else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "missing_keys",
            "query parameter `keys` is required".into(),
        );
    };
    let keys: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect();
    batch(&st, &dataset, keys, &headers).await
}

#[utoipa::path(
    post, path = "/v1/{dataset}", tag = "proxy",
    params(("dataset" = String, Path, description = "Dataset, e.g. `quote`"),
           ("X-Client-Id" = Option<String>, Header, description = "Names the client for access tracking")),
    request_body = KeysBody,
    responses(
        (status = 200, description = "A JSON object keyed by key: each a `BatchEntry` (value with its cache status, max-age and ETag, or that key's error)",
         body = std::collections::HashMap<String, batch_entry::BatchEntry>),
        (status = 400, description = "`missing_keys`, `too_many_keys`, `invalid_body`, `invalid_key`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`unknown_dataset`", body = crate::openapi::ErrorBody),
    )
)]
async fn post_many(
    State(st): State<AppState>,
    Path(dataset): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<KeysBody>(&body) {
        Ok(b) => batch(&st, &dataset, b.keys, &headers).await,
        Err(e) => error_response(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("expected {{\"keys\": [\"A\", ...]}}: {e}"),
        ),
    }
}

async fn batch(st: &AppState, dataset: &str, keys: Vec<String>, headers: &HeaderMap) -> Response {
    if keys.is_empty() {
        return error_response(
            StatusCode::BAD_REQUEST,
            "missing_keys",
            "no keys given".into(),
        );
    }
    if keys.len() > st.max_batch_keys {
        let msg = format!(
            "{} keys given; at most {} per request",
            keys.len(),
            st.max_batch_keys
        );
        return error_response(StatusCode::BAD_REQUEST, "too_many_keys", msg);
    }
    let client = client_of(headers);
    let options = ReadOptions {
        client: client.as_deref(),
        no_cache: cache_headers::wants_no_cache(headers),
    };
    let started = std::time::Instant::now();
    let read = st.service.read_many_with(dataset, &keys, options).await;
    let results: Vec<&'static str> = match &read {
        Ok(items) => items
            .iter()
            .map(|i| i.result.as_ref().map_or("error", |s| s.status.label()))
            .collect(),
        Err(_) => vec!["error"],
    };
    record_request(&st.service, dataset, &results, started.elapsed());
    match (read, st.service.dataset(dataset)) {
        (Ok(items), Some(ds)) => {
            let now_s = st.service.clock().now_s();
            let out: std::collections::BTreeMap<String, batch_entry::BatchEntry> = items
                .into_iter()
                .map(|item| batch_entry::BatchEntry::of(ds, item, now_s))
                .collect();
            (StatusCode::OK, Json(out)).into_response()
        }
        (Ok(_), None) => read_error_response(&ReadError::UnknownDataset(dataset.to_string())),
        (Err(e), _) => read_error_response(&e),
    }
}
