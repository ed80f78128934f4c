//! The OpenAPI 3 document of both listeners, generated at run time from
//! the `#[utoipa::path]` annotations on the handlers and the schemas of
//! their request and response types, and served by the admin listener at
//! `GET /openapi.json`.
//!
//! The paths are listed once, in [`ApiDoc`]; a test walks the proxy's and
//! the admin listener's routers and checks that every route (path and
//! method) is in the document, so the two cannot drift apart.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::{admin, proxy};

/// Every error body of both listeners (what [`proxy::error_response`]
/// writes).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The `error` object of an [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `unknown_dataset`, `invalid_key`,
    /// `upstream_timeout`, `unauthorized`, `rate_limited`.
    pub code: String,
    /// What a person reads; names the field or key at fault.
    pub message: String,
    /// `invalid_access` only: every item at fault (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<proxy::access::ItemError>>,
}

pub use crate::proxy::batch_entry::{BatchEntry, BatchItemError};

/// One item of `POST /v1/access`.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code, reason = "describes what `proxy::access::validate` reads")]
pub struct AccessItem {
    /// Dataset, e.g. `quote`.
    pub dataset: String,
    /// The key the application served, e.g. `AAPL`.
    pub key: String,
    /// The client, at most 128 bytes.
    pub client: Option<String>,
    /// When, Unix seconds (default: on arrival).
    pub ts: Option<f64>,
    /// Whether the application's own cache had it (informational).
    pub hit: Option<bool>,
    /// Groups of the key (a sector, a watchlist name): at most 4, each 1
    /// to 64 bytes; learned as membership for the sector strategy.
    pub groups: Option<Vec<String>>,
}

/// The 202 answer of `POST /v1/access`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessAccepted {
    /// Items queued for the engine.
    pub accepted: u64,
    /// Items dropped because the engine's queue was full.
    pub dropped: u64,
}

/// The two security schemes: the admin token and the access token, both
/// `Authorization: Bearer`.
struct Tokens;

impl Modify for Tokens {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, what) in [
            (
                "admin_token",
                "`PREWARM_ADMIN_TOKEN` (admin.token): every write of the admin listener; its reads too under admin.protect_reads",
            ),
            (
                "access_token",
                "`PREWARM_ACCESS_TOKEN` (server.access_token): POST /v1/access",
            ),
        ] {
            let scheme = HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(what))
                .build();
            components.add_security_scheme(name, SecurityScheme::Http(scheme));
        }
    }
}

/// The document's source: every annotated route of both listeners.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "prewarm",
        description = "The proxy listener (default 127.0.0.1:8080): cached reads and the access feed. \
The admin listener (default 127.0.0.1:8003): monitoring, warming, purging, health, this document. \
Errors are JSON `{\"error\":{\"code\",\"message\"}}`. docs/api.md has a curl example of each route."
    ),
    paths(
        proxy::get_one,
        proxy::get_many,
        proxy::post_many,
        proxy::access::feed,
        admin::healthz,
        admin::readyz,
        admin::metrics,
        admin::assets::dashboard,
        admin::assets::openapi,
        admin::warming::stats,
        admin::warming::status,
        admin::warming::patterns,
        admin::warming::run,
        admin::warming::save,
        admin::purge::key,
        admin::purge::dataset,
    ),
    components(schemas(
        ErrorBody,
        ErrorDetail,
        proxy::KeysBody,
        BatchEntry,
        BatchItemError,
        AccessItem,
        AccessAccepted,
        crate::driver::PurgeReport,
        crate::driver::PurgeScope,
        crate::store::HealthReport,
    )),
    modifiers(&Tokens),
    tags(
        (name = "proxy", description = "Cached reads (proxy listener)"),
        (name = "access", description = "The access feed (proxy listener)"),
        (name = "admin", description = "Monitoring, warming and purging (admin listener)"),
        (name = "health", description = "Liveness, readiness, dashboard, this document (admin listener)"),
    )
)]
pub struct ApiDoc;

/// The document as JSON, built once, its object schemas closed
/// ([`close_objects`]).
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::to_value(ApiDoc::openapi())
            .map(|mut doc| {
                close_objects(&mut doc);
                doc
            })
            .and_then(|doc| serde_json::to_string_pretty(&doc))
            .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    })
}

/// Forbids the fields a schema of `doc` does not list: every object
/// schema that lists its `properties` and says nothing of others gets
/// `additionalProperties: false`, and a composition (`allOf`, what
/// `#[serde(flatten)]` gives) `unevaluatedProperties: false`, its parts
/// and the components they name left open. The answers are typed
/// structs, so a field the schema lacks is drift, and a validator reports
/// it. Maps (`additionalProperties` set) are left as they are.
pub fn close_objects(doc: &mut Value) {
    let mut parts = BTreeSet::new();
    composed_parts(doc, &mut parts);
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, schema) in schemas.iter_mut() {
            if !parts.contains(name) {
                close(schema);
            }
        }
    }
    if let Some(paths) = doc.get_mut("paths") {
        close(paths);
    }
}

/// The components named by a part of an `allOf` anywhere in `doc`.
fn composed_parts(doc: &Value, out: &mut BTreeSet<String>) {
    match doc {
        Value::Object(obj) => {
            for part in obj
                .get("allOf")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = part
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    out.insert(name.to_string());
                }
            }
            obj.values().for_each(|v| composed_parts(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| composed_parts(v, out)),
        _ => {}
    }
}

/// [`close_objects`] on one schema and everything below it.
fn close(schema: &mut Value) {
    match schema {
        Value::Object(obj) => {
            if let Some(Value::Array(parts)) = obj.get_mut("allOf") {
                // The parts stay open (each sees only its own fields);
                // their fields' schemas are closed.
                for part in parts.iter_mut() {
                    if let Some(Value::Object(props)) = part.get_mut("properties") {
                        props.values_mut().for_each(close);
                    }
                }
                obj.insert("unevaluatedProperties".into(), Value::Bool(false));
                return;
            }
            let lists_properties = obj.get("properties").is_some_and(Value::is_object)
                && obj.get("type").and_then(Value::as_str) == Some("object");
            if lists_properties && !obj.contains_key("additionalProperties") {
                obj.insert("additionalProperties".into(), Value::Bool(false));
            }
            obj.values_mut().for_each(close);
        }
        Value::Array(items) => items.iter_mut().for_each(close),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_are_closed_but_maps_and_the_parts_of_a_composition_stay_open() {
        let mut doc = json!({
            "components": {"schemas": {
                "Plain": {"type": "object", "properties": {"a": {"type": "integer"}}},
                "Map": {"type": "object", "additionalProperties": {"type": "integer"}},
                "Scope": {"oneOf": [{"type": "object", "properties": {"key": {}}}]},
                "Report": {"allOf": [
                    {"$ref": "#/components/schemas/Scope"},
                    {"type": "object", "properties": {"n": {"type": "object", "properties": {"x": {}}}}},
                ]},
            }},
        });
        close_objects(&mut doc);
        let s = &doc["components"]["schemas"];
        assert_eq!(s["Plain"]["additionalProperties"], false);
        assert_eq!(s["Map"]["additionalProperties"]["type"], "integer");
        assert!(s["Scope"]["oneOf"][0].get("additionalProperties").is_none());
        let report = &s["Report"];
        assert_eq!(report["unevaluatedProperties"], false);
        assert!(report["allOf"][1].get("additionalProperties").is_none());
        assert_eq!(
            report["allOf"][1]["properties"]["n"]["additionalProperties"],
            false
        );
    }
}
