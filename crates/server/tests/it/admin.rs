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

/// A method a path does not serve answers 405 before any token is asked
/// for, and an unknown path the proxy's JSON 404 (regressions: 401 for
/// `GET /warming/run` without a token; a plain "Not Found").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_is_405_before_the_token_and_unknown_routes_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _sim) = daemon(dir.path()).await;
    let app = app(&d, Some(TOKEN), true);
    for path in WRITES {
        let (status, _) = call(&app, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
    let (status, _) = call(&app, Method::POST, "/warming/stats", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = call(&app, Method::GET, "/warming/stats", None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the right method still needs it"
    );
    let (status, body) = call(&app, Method::GET, "/no/such/route", None).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    assert!(body.contains("no such route"), "{body}");
    d.shutdown().await.unwrap();
}
