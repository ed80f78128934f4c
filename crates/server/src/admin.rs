//! The admin listener: `/healthz` (answers as soon as the process listens),
//! `/readyz` (200 once the store is connected and the proxy listens) and
//! the warming monitoring API (see [`warming`]), which answers 503 until
//! the engine driver runs.

pub mod warming;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::driver::DriverClient;

/// Shared readiness flag.
pub type Readiness = Arc<AtomicBool>;

/// Where the driver's client appears once the driver runs.
pub type WarmingSlot = Arc<OnceLock<DriverClient>>;

#[derive(Debug, Clone)]
struct AdminState {
    ready: Readiness,
    warming: WarmingSlot,
}

/// The admin routes.
pub fn router(ready: Readiness, warming: WarmingSlot) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/warming/stats", get(warming::stats))
        .route("/warming/status", get(warming::status))
        .route("/warming/patterns", get(warming::patterns))
        .route("/warming/run", post(warming::run))
        .route("/warming/save", post(warming::save))
        .with_state(AdminState { ready, warming })
}

async fn readyz(State(st): State<AdminState>) -> (StatusCode, &'static str) {
    if st.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}
