//! The admin router through `tower::ServiceExt::oneshot`: every route under
//! every auth case (no token configured, missing header, wrong token,
//! right token, protected reads), and `/metrics` after traffic.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use prewarm_server::admin::{self, AdminAuth, WarmingSlot};
use prewarm_server::config::{AdminConfig, AdminToken};
use prewarm_server::serve::Running;
use prewarm_server::upstream_sim::SimHandle;
use serde_json::Value;
use tower::ServiceExt;

use crate::support::{TestCfg, get, http, sim};

pub const TOKEN: &str = "admin-test-token-1234";

const READS: &[&str] = &[
    "/warming/stats",
    "/warming/status",
    "/warming/patterns",
    "/metrics",
];
const WRITES: &[&str] = &["/warming/run", "/warming/save"];
const OPEN: &[&str] = &["/healthz", "/readyz", "/", "/openapi.json"];

/// A daemon with its driver on an upstream-sim, state in `dir`.
pub async fn daemon(dir: &std::path::Path) -> (Running, SimHandle) {
    let upstream = sim(|_| {}).await;
    let mut c = TestCfg::new(upstream.addr());
    c.state_dir = dir.to_path_buf();
    let mut d = c.start().await;
    d.start_driver().expect("driver starts");
    (d, upstream)
}

fn app(d: &Running, token: Option<&str>, protect_reads: bool) -> Router {
    let slot = WarmingSlot::default();
    let _ = slot.set(d.driver().expect("driver").clone());
    let auth = AdminAuth::new(&AdminConfig {
        token: token.map(AdminToken::new),
        protect_reads,
    });
    admin::router(
        Arc::new(AtomicBool::new(true)),
        slot,
        auth,
        prewarm_server::store::StoreHealth::default(),
    )
}

/// Sends one request; returns status and body text.
pub async fn call(
    app: &Router,
    method: Method,
    path: &str,
    bearer: Option<&str>,
) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("router answers");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn error_code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

async fn traffic(d: &Running, keys: &[&str], rounds: usize) {
    let c = http();
    for _ in 0..rounds {
        for k in keys {
            let r = get(&c, format!("http://{}/v1/quote/{k}", d.proxy_addr)).await;
            assert_eq!(r.status(), 200);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_token_writes_are_disabled_and_reads_open() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _sim) = daemon(dir.path()).await;
    let app = app(&d, None, false);
    for path in READS.iter().chain(OPEN) {
        let (status, body) = call(&app, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    for path in WRITES {
        for bearer in [None, Some("anything")] {
            let (status, body) = call(&app, Method::POST, path, bearer).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
            assert_eq!(error_code(&body), "disabled", "{path}: {body}");
            assert!(body.contains("disabled"));
        }
    }
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_the_right_token() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _sim) = daemon(dir.path()).await;
    let app = app(&d, Some(TOKEN), false);
    for path in WRITES {
        let (status, body) = call(&app, Method::POST, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} missing: {body}");
        let (status, body) = call(&app, Method::POST, path, Some("wrong-token")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} wrong: {body}");
        assert!(!body.contains(TOKEN), "the token is never echoed");
        let (status, body) = call(&app, Method::POST, path, Some(TOKEN)).await;
        assert!(status.is_success(), "{path} right: {status} {body}");
    }
    for path in READS.iter().chain(OPEN) {
        let (status, _) = call(&app, Method::GET, path, None).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{path} is open without protect_reads"
        );
    }
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_reads_need_the_token_but_health_and_assets_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _sim) = daemon(dir.path()).await;
    let app = app(&d, Some(TOKEN), true);
    for path in READS {
        let (status, _) = call(&app, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} missing");
        let (status, _) = call(&app, Method::GET, path, Some("nope")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} wrong");
        let (status, body) = call(&app, Method::GET, path, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{path} right: {body}");
    }
    for path in OPEN {
        let (status, _) = call(&app, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path} stays open");
    }
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_one_strategy_answers_what_it_warmed() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _sim) = daemon(dir.path()).await;
    traffic(&d, &["AAPL", "MSFT"], 3).await;
    d.driver().unwrap().sync().await.unwrap();
    let app = app(&d, Some(TOKEN), false);
    let (status, body) = call(
        &app,
        Method::POST,
        "/warming/run?strategy=popular",
        Some(TOKEN),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["strategies"], serde_json::json!(["popular"]), "{body}");
    assert!(v["warmed"].is_array(), "{body}");
    for (uri, code) in [
        ("/warming/run?strategy=predictive", "missing_keys"),
        ("/warming/run?strategy=sector", "missing_group"),
        ("/warming/run?strategy=refresh", "unknown_strategy"),
        ("/warming/run?strategy=time&look_ahead_s=-5", "bad_seconds"),
        ("/warming/run?strategy=popular&limit=0", "bad_limit"),
    ] {
        let (status, body) = call(&app, Method::POST, uri, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(error_code(&body), code, "{uri}: {body}");
    }
    let (status, body) = call(&app, Method::POST, "/warming/run?dataset=nope", Some(TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = call(
        &app,
        Method::POST,
        "/warming/run?strategy=bogus",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_name_every_family_after_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _sim) = daemon(dir.path()).await;
    traffic(&d, &["AAPL", "MSFT", "AAPL"], 2).await;
    d.driver().unwrap().sync().await.unwrap();
    let app = app(&d, None, false);
    let (status, text) = call(&app, Method::GET, "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    for name in [
        "prewarm_requests_total{",
        "prewarm_upstream_calls_total{",
        "prewarm_warm_fetches_total",
        "prewarm_warm_used_total",
        "prewarm_request_duration_seconds_bucket{",
        "prewarm_upstream_duration_seconds_bucket{",
        "prewarm_budget_tokens{dataset=\"quote\"}",
    ] {
        assert!(text.contains(name), "missing {name} in:\n{text}");
    }
    assert!(text.contains("result=\"hit\""), "{text}");
    assert!(text.contains("result=\"miss\""), "{text}");
    assert!(text.contains("kind=\"demand\""), "{text}");
    assert!(!text.contains("AAPL"), "keys never become labels");
    d.shutdown().await.unwrap();
}

/// Resolves a local `$ref`.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let ptr = r.trim_start_matches('#');
            resolve(
                doc,
                doc.pointer(ptr)
                    .unwrap_or_else(|| panic!("dangling $ref {r}")),
            )
        }
        None => schema,
    }
}

/// Checks `value` against `schema`'s `type`, `required`, `properties`,
/// `additionalProperties` and `items`; returns the complaints.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if value.is_null() {
        return; // optional fields are serialized as null
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_u64() || value.is_i64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !ok {
            out.push(format!("{at}: expected {t}, got {value}"));
            return;
        }
    }
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            if value.get(r).is_none() {
                out.push(format!("{at}: missing required {r}"));
            }
        }
    }
    if let (Some(props), Some(obj)) = (schema.get("properties"), value.as_object()) {
        for (name, sub) in props.as_object().into_iter().flatten() {
            if let Some(v) = obj.get(name) {
                check(doc, sub, v, &format!("{at}.{name}"), out);
            }
        }
    }
    if let (Some(sub), Some(obj)) = (schema.get("additionalProperties"), value.as_object())
        && sub.is_object()
    {
        for (name, v) in obj {
            check(doc, sub, v, &format!("{at}.{name}"), out);
        }
    }
    if let (Some(sub), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            check(doc, sub, v, &format!("{at}[{i}]"), out);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_route_matches_its_openapi_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _sim) = daemon(dir.path()).await;
    traffic(&d, &["AAPL", "MSFT", "AAPL", "IBM"], 3).await;
    d.driver().unwrap().sync().await.unwrap();
    let app = app(&d, Some(TOKEN), false);
    let (_, text) = call(&app, Method::GET, "/openapi.json", None).await;
    let doc: Value = serde_json::from_str(&text).expect("openapi.json is JSON");
    let routes = [
        (
            Method::GET,
            "/warming/stats",
            "/warming/stats",
            "get",
            "200",
        ),
        (
            Method::GET,
            "/warming/status",
            "/warming/status",
            "get",
            "200",
        ),
        (
            Method::GET,
            "/warming/patterns?limit=5",
            "/warming/patterns",
            "get",
            "200",
        ),
        (Method::POST, "/warming/run", "/warming/run", "post", "200"),
        (
            Method::POST,
            "/warming/save",
            "/warming/save",
            "post",
            "200",
        ),
    ];
    let mut complaints = Vec::new();
    let mut bodies = std::collections::HashMap::new();
    for (method, uri, path, verb, code) in routes {
        let (status, body) = call(&app, method, uri, Some(TOKEN)).await;
        assert_eq!(status.as_str(), code, "{uri}: {body}");
        let value: Value = serde_json::from_str(&body).expect("JSON body");
        let schema =
            &doc["paths"][path][verb]["responses"][code]["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{path} {verb} {code} is documented");
        check(&doc, schema, &value, path, &mut complaints);
        bodies.insert(path, value);
    }
    learned_fields_are_served(&bodies);
    let (status, body) = call(
        &app,
        Method::POST,
        "/warming/run?strategy=nope",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let err_schema = &doc["components"]["schemas"]["ErrorBody"];
    check(
        &doc,
        err_schema,
        &serde_json::from_str(&body).unwrap(),
        "error",
        &mut complaints,
    );
    assert!(complaints.is_empty(), "{complaints:#?}");
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
    let model = &bodies["/warming/patterns"]["datasets"][0]["model"];
    let rows = model["calibration"].as_array().expect("calibration rows");
    assert_eq!(rows.len(), 10, "one row per tenth");
    let counted: u64 = rows.iter().filter_map(|r| r["examples"].as_u64()).sum();
    assert_eq!(Some(counted), model["trained_examples"].as_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_limits_out_of_range_and_unrunnable_strategies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _sim) = daemon(dir.path()).await;
    let app = app(&d, Some(TOKEN), false);
    for uri in [
        "/warming/patterns?limit=0",
        "/warming/patterns?limit=1001",
        "/warming/patterns?limit=5000",
    ] {
        let (status, body) = call(&app, Method::GET, uri, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(error_code(&body), "bad_limit", "{uri}: {body}");
    }
    for uri in ["/warming/patterns?limit=1", "/warming/patterns?limit=1000"] {
        let (status, body) = call(&app, Method::GET, uri, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    }
    // The strategies an unknown one lists are exactly those a run takes.
    let (status, body) = call(
        &app,
        Method::POST,
        "/warming/run?strategy=astrology",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = serde_json::from_str::<Value>(&body).unwrap()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!message.contains("refresh"), "{message}");
    for name in ["popular", "time", "trending", "predictive", "sector"] {
        assert!(message.contains(name), "{name} in {message}");
    }
    d.shutdown().await.unwrap();
}
