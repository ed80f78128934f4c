//! Checked-in files served by the admin listener: the dashboard page
//! (`assets/dashboard.html`, self-contained: inline CSS and JS, no CDN)
//! and the OpenAPI 3 document (`assets/openapi.json`).

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The dashboard page.
pub const DASHBOARD_HTML: &str = include_str!("../../assets/dashboard.html");

/// The OpenAPI 3 document of the admin and proxy routes.
pub const OPENAPI_JSON: &str = include_str!("../../assets/openapi.json");

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

pub(super) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_document_is_json_with_paths() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        assert!(doc["paths"]["/warming/stats"].is_object());
    }

    #[test]
    fn openapi_documents_the_store_and_the_access_feeds_refusals() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        let schemas = &doc["components"]["schemas"];
        let store = serde_json::json!({"$ref": "#/components/schemas/StoreHealth"});
        assert_eq!(schemas["Stats"]["properties"]["store"], store);
        assert!(
            schemas["Stats"]["required"]
                .as_array()
                .unwrap()
                .contains(&"store".into())
        );
        assert_eq!(schemas["Status"]["properties"]["store"], store);
        let health = crate::store::StoreHealth::new("redis").report();
        let served = serde_json::to_value(&health).unwrap();
        let documented = schemas["StoreHealth"]["properties"].as_object().unwrap();
        for field in served.as_object().unwrap().keys() {
            assert!(
                documented.contains_key(field),
                "store.{field} is not documented"
            );
        }
        let responses = &doc["paths"]["/v1/access"]["post"]["responses"];
        for code in ["202", "400", "401", "403", "429"] {
            assert!(responses[code].is_object(), "/v1/access {code}");
        }
        let limited = &doc["components"]["responses"]["RateLimited"];
        assert!(limited["headers"]["Retry-After"].is_object());
    }

    #[test]
    fn dashboard_is_self_contained() {
        assert!(!DASHBOARD_HTML.contains("http://") && !DASHBOARD_HTML.contains("https://"));
        assert!(DASHBOARD_HTML.contains("data-testid=\"chart-hit-rate\""));
    }
}
