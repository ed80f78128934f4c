//! The generated OpenAPI document cannot drift from the routers: every
//! route the proxy and admin routers serve (path and method, read from the
//! routers themselves) is in it, and it documents nothing they do not
//! serve. Nor from the answers: each JSON answer of a live daemon
//! validates (JSON Schema 2020-12) against the schema the daemon serves
//! for it, whose objects forbid fields they do not list.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use prewarm_server::admin::{self, AdminAuth, WarmingSlot};
use prewarm_server::serve::Running;
use prewarm_server::store::{MemoryStore, StoreHealth};
use prewarm_server::upstream_sim::SimHandle;
use serde_json::{Value, json};

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

/// A validator of what the document's `path` `verb` answers with `code`:
/// the response's schema, with the document's `components` beside it so
/// its `$ref`s resolve.
fn validator(doc: &Value, path: &str, verb: &str, code: &str) -> jsonschema::Validator {
    let response = &doc["paths"][path][verb]["responses"][code];
    let mut schema = response["content"]["application/json"]["schema"].clone();
    assert!(schema.is_object(), "{verb} {path} {code} has a JSON schema");
    schema["components"] = doc["components"].clone();
    jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("{verb} {path} {code}: the schema compiles: {e}"))
}

/// The schema's complaints about `body`, each with the JSON path at fault.
fn complaints(doc: &Value, route: (&str, &str, &str), body: &Value) -> Vec<String> {
    let (verb, path, code) = route;
    let v = validator(doc, path, verb, code);
    v.iter_errors(body)
        .map(|e| format!("{verb} {path} {code} at {}: {e}", e.instance_path()))
        .collect()
}

/// One answer of the live daemon: status and JSON body.
async fn answer(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("the daemon answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON body"))
}

const ADMIN_TOKEN: &str = "openapi-admin-token";

/// A daemon on the upstream-sim with an admin token, a TTL by session and
/// some traffic, its driver caught up.
async fn daemon_with_traffic(dir: &std::path::Path) -> (Running, SimHandle) {
    let upstream = crate::support::sim(|_| {}).await;
    let mut cfg = TestCfg::new(upstream.addr());
    cfg.state_dir = dir.to_path_buf();
    cfg.extra = format!(
        "[datasets.quote.ttl_by_session]\nregular_s = 15\nclosed = \"until_open\"\n\
         [admin]\ntoken = \"{ADMIN_TOKEN}\"\n"
    );
    let mut d = cfg.start().await;
    d.start_driver().expect("driver starts");
    let c = crate::support::http();
    for key in ["AAPL", "MSFT", "AAPL", "IBM", "AAPL"] {
        let r = crate::support::get(&c, format!("http://{}/v1/quote/{key}", d.proxy_addr)).await;
        assert_eq!(r.status(), 200);
    }
    d.driver().unwrap().sync().await.unwrap();
    (d, upstream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_answer_validates_against_its_served_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _sim) = daemon_with_traffic(dir.path()).await;
    let c = crate::support::http();
    let admin = format!("http://{}", d.admin_addr);
    let (_, doc) = answer(c.get(format!("{admin}/openapi.json"))).await;
    let routes = [
        ("get", "/warming/stats", "/warming/stats"),
        ("get", "/warming/status", "/warming/status"),
        (
            "get",
            "/warming/patterns",
            "/warming/patterns?limit=5&key=AAPL",
        ),
        ("post", "/warming/run", "/warming/run"),
        (
            "post",
            "/warming/run",
            "/warming/run?strategy=popular&limit=3",
        ),
        ("post", "/warming/save", "/warming/save"),
        ("delete", "/cache/{dataset}/{key}", "/cache/quote/IBM"),
        ("delete", "/cache/{dataset}", "/cache/quote"),
    ];
    let mut found = Vec::new();
    let mut bodies = std::collections::HashMap::new();
    for (verb, path, uri) in routes {
        let method = reqwest::Method::from_bytes(verb.to_uppercase().as_bytes()).unwrap();
        let req = c.request(method, format!("{admin}{uri}"));
        let (status, body) = answer(req.bearer_auth(ADMIN_TOKEN)).await;
        assert_eq!(status, 200, "{verb} {uri}: {body}");
        found.extend(complaints(&doc, (verb, path, "200"), &body));
        bodies.insert(uri, body);
    }
    // The proxy's access feed and an error body, under the same rule.
    let proxy = format!("http://{}", d.proxy_addr);
    let feed = |items: Value| {
        c.post(format!("{proxy}/v1/access"))
            .bearer_auth(crate::support::ACCESS_TOKEN)
            .json(&items)
    };
    let (status, body) = answer(feed(json!([{"dataset": "quote", "key": "AAPL"}]))).await;
    assert_eq!(status, 202, "{body}");
    found.extend(complaints(&doc, ("post", "/v1/access", "202"), &body));
    let (status, body) = answer(feed(json!([{"dataset": "nope", "key": "AAPL"}]))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["errors"].is_array(), "{body}");
    found.extend(complaints(&doc, ("post", "/v1/access", "400"), &body));
    assert!(found.is_empty(), "answers off their schemas: {found:#?}");
    learned_fields_are_served(&bodies);
    let status = &bodies["/warming/status"]["datasets"]["quote"];
    assert_eq!(status["ttl_by_session"]["closed"], "until_open", "{status}");
    d.shutdown().await.unwrap();
}

/// The price (in `/warming/stats`) and the model's calibration (in
/// `/warming/patterns`) are served.
fn learned_fields_are_served(bodies: &std::collections::HashMap<&str, Value>) {
    let price = &bodies["/warming/stats"]["datasets"]["quote"]["price"];
    let history = price["history"].as_array().expect("price history");
    assert!(
        !history.is_empty(),
        "the price has a point once traffic ran"
    );
    assert!(history.len() <= 200, "{} points", history.len());
    let api_calls = price["api_calls"].as_u64().expect("api_calls");
    let since_start = &bodies["/warming/stats"]["datasets"]["quote"]["since_start"];
    assert_eq!(Some(api_calls), since_start["api_calls"]["total"].as_u64());
    assert_eq!(
        price["shadow_api_calls"], since_start["demand_only_api_calls"],
        "cost against demand-only is measured on the shadow"
    );
    let model = &bodies["/warming/patterns?limit=5&key=AAPL"]["datasets"][0]["model"];
    let rows = model["calibration"].as_array().expect("calibration rows");
    assert_eq!(rows.len(), 10, "one row per tenth");
    let counted: u64 = rows.iter().filter_map(|r| r["examples"].as_u64()).sum();
    assert_eq!(Some(counted), model["trained_examples"].as_u64());
}

#[test]
fn a_field_the_schema_lacks_fails_validation() {
    let doc: Value = serde_json::from_str(prewarm_server::openapi::json()).unwrap();
    let route = ("post", "/warming/save", "200");
    let ok = json!({"saved": [{"dataset": "quote", "path": "/s", "bytes": 3, "error": null}]});
    assert_eq!(complaints(&doc, route, &ok), Vec::<String>::new());
    let renamed = json!({"saved": [{"dataset": "quote", "file": "/s", "bytes": 3, "error": null}]});
    assert!(
        !complaints(&doc, route, &renamed).is_empty(),
        "a renamed field"
    );
    let added = json!({"saved": [], "extra": 1});
    assert!(
        !complaints(&doc, route, &added).is_empty(),
        "an added field"
    );
}

/// The field names and enum values of `schema` (not those of the
/// components it names), into `out`.
fn names_in(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(obj) => {
            if let Some(props) = obj.get("properties").and_then(Value::as_object) {
                out.extend(props.keys().cloned());
            }
            for v in obj
                .get("enum")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.insert(format!("={}", v.as_str().unwrap_or_default()));
            }
            obj.values().for_each(|v| names_in(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| names_in(v, out)),
        _ => {}
    }
}

/// One line per component schema: its name, then its field names and
/// (`=value`) enum values, sorted.
fn surface(doc: &Value) -> String {
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let mut text = String::new();
    for (name, schema) in schemas {
        let mut names = BTreeSet::new();
        names_in(schema, &mut names);
        let names: Vec<String> = names.into_iter().collect();
        text += &format!("{name}: {}\n", names.join(" "));
    }
    text
}

/// The field names of every answer are a contract with the Python client
/// (clients/python) and the dashboard (crates/server/assets): a rename, an
/// addition or a removal must show in `openapi_fields.txt` beside this
/// file, reviewed with the clients. `PREWARM_BLESS=1` rewrites the file.
#[test]
fn the_answers_field_names_are_the_reviewed_ones() {
    let doc: Value = serde_json::from_str(prewarm_server::openapi::json()).unwrap();
    let served = surface(&doc);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/openapi_fields.txt");
    if std::env::var_os("PREWARM_BLESS").is_some() {
        std::fs::write(&path, &served).unwrap();
    }
    let reviewed = std::fs::read_to_string(&path).unwrap_or_default();
    let lines = |t: &str| t.lines().map(str::to_string).collect::<BTreeSet<_>>();
    let (served, reviewed) = (lines(&served), lines(&reviewed));
    let new: Vec<_> = served.difference(&reviewed).collect();
    let gone: Vec<_> = reviewed.difference(&served).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "the schemas' fields changed (update the clients, then run with PREWARM_BLESS=1):\n\
         served now: {new:#?}\nreviewed: {gone:#?}"
    );
}
