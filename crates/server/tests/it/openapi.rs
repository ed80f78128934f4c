//! The generated OpenAPI document cannot drift from the routers: every
//! route the proxy and admin routers serve (path and method, read from the
//! routers themselves) is in it, and it documents nothing they do not
//! serve.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use prewarm_server::admin::{self, AdminAuth, WarmingSlot};
use prewarm_server::store::{MemoryStore, StoreHealth};
use serde_json::Value;

use crate::support::{TestCfg, service_with_store};

/// Methods a route may be served with (HEAD and OPTIONS come with GET and
/// CORS, never documented on their own).
const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// The routes of `router` as `(method, path)`, from its `Debug` form: the
/// path table (`RouteId(n): "/path"`) and each route's method router
/// (`get: Route`, `post: None`, ...). axum offers no other way to list
/// them; a change of that form fails this parse loudly (no routes found).
fn routes_of(router: &Router) -> BTreeSet<(String, String)> {
    let text = format!("{router:?}");
    // Only the main path router; the fallback router comes after it.
    let main = text.split("fallback_router").next().unwrap_or("");
    let paths_at = main.find("paths: {").expect("a path table");
    let (routes, paths) = main.split_at(paths_at);
    let path_re = regex::Regex::new(r#"RouteId\((\d+)\): "([^"]+)""#).unwrap();
    let id_path: std::collections::HashMap<String, String> = path_re
        .captures_iter(paths)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect();
    let route_re = regex::Regex::new(r"RouteId\((\d+)\): MethodRouter\(").unwrap();
    let starts: Vec<(usize, String)> = route_re
        .captures_iter(routes)
        .map(|c| (c.get(0).unwrap().start(), c[1].to_string()))
        .collect();
    let mut out = BTreeSet::new();
    for (i, (start, id)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(routes.len(), |s| s.0);
        let body = &routes[*start..end];
        let path = id_path.get(id).expect("every route has a path");
        for m in METHODS {
            let served = [format!("{m}: Route"), format!("{m}: BoxedHandler")];
            if served.iter().any(|s| body.contains(s.as_str())) {
                out.insert((m.to_string(), path.clone()));
            }
        }
    }
    assert!(!out.is_empty(), "no route found in the router's Debug form");
    out
}

/// The `(method, path)` pairs of the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((m.to_string(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_route_of_both_listeners_is_in_the_generated_document() {
    let cfg = TestCfg::new("127.0.0.1:9".parse().unwrap());
    let store = Arc::new(MemoryStore::new(
        1,
        60.0,
        Arc::new(prewarm_server::clock::SystemClock),
    ));
    let (service, _events) = service_with_store(&cfg, store);
    let proxy = prewarm_server::proxy::router(service, 100, 6000.0);
    let admin = admin::router(
        Arc::new(AtomicBool::new(true)),
        WarmingSlot::default(),
        AdminAuth::default(),
        StoreHealth::default(),
    );
    let doc: Value = serde_json::from_str(prewarm_server::openapi::json()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let served: BTreeSet<_> = routes_of(&proxy)
        .into_iter()
        .chain(routes_of(&admin))
        .collect();
    let documented = documented(&doc);
    let missing: Vec<_> = served.difference(&documented).collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(extra.is_empty(), "documented but not served: {extra:?}");
    for route in [
        ("get", "/v1/{dataset}/{key}"),
        ("post", "/v1/access"),
        ("delete", "/cache/{dataset}/{key}"),
        ("get", "/healthz"),
    ] {
        let route = (route.0.to_string(), route.1.to_string());
        assert!(served.contains(&route), "the walk finds {route:?}");
    }
}

#[test]
fn the_document_names_its_schemas_and_security() {
    let doc: Value = serde_json::from_str(prewarm_server::openapi::json()).unwrap();
    let schemas = &doc["components"]["schemas"];
    for name in [
        "ErrorBody",
        "BatchEntry",
        "AccessItem",
        "PurgeReport",
        "HealthReport",
    ] {
        assert!(schemas[name].is_object(), "schema {name}");
    }
    let groups = &schemas["AccessItem"]["properties"]["groups"];
    assert!(groups.is_object(), "AccessItem.groups is documented");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["admin_token"]["scheme"], "bearer");
    assert_eq!(schemes["access_token"]["scheme"], "bearer");
    let access = &doc["paths"]["/v1/access"]["post"]["responses"];
    for code in ["202", "400", "401", "403", "429"] {
        assert!(access[code].is_object(), "/v1/access {code}");
    }
    assert!(access["429"]["headers"]["Retry-After"].is_object());
    let one = &doc["paths"]["/v1/{dataset}/{key}"]["get"]["responses"]["200"];
    assert!(one["headers"]["X-Cache"].is_object());
    // The store's health report is documented field for field.
    let health = prewarm_server::store::StoreHealth::new("redis").report();
    let served = serde_json::to_value(&health).unwrap();
    let fields = schemas["HealthReport"]["properties"].as_object().unwrap();
    for field in served.as_object().unwrap().keys() {
        assert!(fields.contains_key(field), "HealthReport.{field}");
    }
}
