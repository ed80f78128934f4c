//! The admin listener (default `127.0.0.1:8003`).
//!
//! Routes and who may call them ([`auth`]):
//! - open: `GET /healthz` (answers as soon as the process listens),
//!   `GET /readyz` (200 `ready` once the proxy listens; 200 `degraded`
//!   while the store backend is down and requests are served from the
//!   in-process fallback and the upstream; 503 `starting` before), `GET /` (the dashboard page, [`assets`]) and
//!   `GET /openapi.json` (the API document, [`assets`]);
//! - reads (token only under `admin.protect_reads`): `GET /warming/stats`,
//!   `/warming/status`, `/warming/patterns` ([`warming`]) and `GET /metrics`
//!   ([`prometheus`]);
//! - writes (always the token; 403 `disabled` without one configured):
//!   `POST /warming/run`, `POST /warming/save`, and the purges
//!   `DELETE /cache/{dataset}[/{key}]` ([`purge`]).
//!
//! The warming routes answer 503 until the engine driver runs.

pub mod answers;
pub mod assets;
pub mod auth;
pub mod figures;
pub mod prometheus;
pub mod purge;
pub mod warming;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use metrics_exporter_prometheus::PrometheusHandle;

pub use auth::AdminAuth;

use crate::driver::DriverClient;
use crate::store::StoreHealth;

/// Shared readiness flag.
pub type Readiness = Arc<AtomicBool>;

/// Where the driver's client appears once the driver runs.
pub type WarmingSlot = Arc<OnceLock<DriverClient>>;

#[derive(Debug, Clone)]
struct AdminState {
    ready: Readiness,
    warming: WarmingSlot,
    metrics: PrometheusHandle,
    store: StoreHealth,
}

/// The admin routes, guarded by `auth`; `store` is the store's health.
pub fn router(
    ready: Readiness,
    warming: WarmingSlot,
    auth: AdminAuth,
    store: StoreHealth,
) -> Router {
    let state = AdminState {
        ready,
        warming,
        store,
        metrics: prometheus::install(),
    };
    // The token is checked per method route, so that a method a path does
    // not serve answers 405 before any token is asked for.
    let read = || from_fn_with_state(auth.clone(), auth::require_read);
    let write = || from_fn_with_state(auth.clone(), auth::require_write);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/", get(assets::dashboard))
        .route("/openapi.json", get(assets::openapi))
        .route("/warming/stats", get(warming::stats).route_layer(read()))
        .route("/warming/status", get(warming::status).route_layer(read()))
        .route(
            "/warming/patterns",
            get(warming::patterns).route_layer(read()),
        )
        .route("/metrics", get(metrics).route_layer(read()))
        .route("/warming/run", post(warming::run).route_layer(write()))
        .route("/warming/save", post(warming::save).route_layer(write()))
        .route(
            "/cache/{dataset}",
            delete(purge::dataset).route_layer(write()),
        )
        .route(
            "/cache/{dataset}/{key}",
            delete(purge::key).route_layer(write()),
        )
        .fallback(|| async {
            crate::proxy::error_response(
                axum::http::StatusCode::NOT_FOUND,
                "not_found",
                "no such route".into(),
            )
        })
        .with_state(state)
}

/// `GET /healthz`: answers as soon as the process listens.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "`ready`, or `degraded: store backend unreachable` (still serving from the fallback)", body = String, content_type = "text/plain"),
        (status = 503, description = "`starting`: not ready yet (listeners binding, or `warming.startup = \"before_ready\"` holds readiness until the start-up cycle is done or its deadline passes)", body = crate::openapi::ErrorBody),
    ))]
async fn readyz(State(st): State<AdminState>) -> Response {
    if !st.ready.load(Ordering::Acquire) {
        // An error like any other (JSON), with its own code: not a fault.
        crate::proxy::error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "starting: not ready yet (listeners binding, or the start-up cycle holds readiness)"
                .into(),
        )
    } else if st.store.is_degraded() {
        // Still serving (fallback and upstream): taking the instance out
        // of rotation would turn a store outage into a full one.
        (StatusCode::OK, "degraded: store backend unreachable\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

#[utoipa::path(get, path = "/metrics", tag = "admin",
    responses(
        (status = 200, description = "Prometheus text format (prewarm_* families)", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 401, description = "Under admin.protect_reads: missing or wrong admin token", body = crate::openapi::ErrorBody),
    ),
    security((), ("admin_token" = [])))]
async fn metrics(State(st): State<AdminState>) -> Response {
    let view = st.warming.get().map(DriverClient::view);
    let body = prometheus::render(&st.metrics, view.as_deref());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
