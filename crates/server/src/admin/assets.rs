//! What the admin listener serves besides JSON: the checked-in dashboard
//! page (`assets/dashboard.html`, self-contained: inline CSS and JS, no
//! CDN) and the OpenAPI document ([`crate::openapi`], generated).

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The dashboard page.
pub const DASHBOARD_HTML: &str = include_str!("../../assets/dashboard.html");

#[utoipa::path(get, path = "/", tag = "health",
    responses((status = 200, description = "The live dashboard (self-contained HTML)", body = String, content_type = "text/html")))]
pub(super) async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        DASHBOARD_HTML,
    )
        .into_response()
}

#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object)))]
pub(super) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::json(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashboard_is_self_contained() {
        assert!(!DASHBOARD_HTML.contains("http://") && !DASHBOARD_HTML.contains("https://"));
        assert!(DASHBOARD_HTML.contains("data-testid=\"chart-hit-rate\""));
    }
}
