//! Purging on the admin listener: one key, a group's members, a whole
//! dataset; the store drops the entries and answers how many, the tracker
//! keeps what it learned, and the admin token is required.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::http::{Method, StatusCode};
use prewarm_server::admin::{self, AdminAuth, WarmingSlot};
use prewarm_server::config::AdminConfig;
use prewarm_server::serve::Running;
use serde_json::Value;

use crate::admin::{TOKEN, call, daemon};
use crate::support::{TestCfg, get, header, http, sim};

async fn read(d: &Running, key: &str) -> String {
    let r = get(&http(), format!("http://{}/v1/quote/{key}", d.proxy_addr)).await;
    assert_eq!(r.status(), 200);
    header(&r, "x-cache")
}

/// `DELETE path` on the admin listener with `token`; status and JSON body.
async fn purge(d: &Running, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = http().delete(format!("http://{}{path}", d.admin_addr));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purges_a_key_a_group_and_a_dataset_and_the_tracker_keeps_what_it_learned() {
    let upstream = sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let universe = dir.path().join("universe.csv");
    std::fs::write(&universe, "AAPL,Tech\nMSFT,Tech\nXOM,Energy\n").unwrap();
    let mut c = TestCfg::new(upstream.addr());
    c.state_dir = dir.path().join("state");
    // No strategy warms on its own: a purged key stays purged until read.
    c.extra = format!(
        "universe = {:?}\n\n[admin]\ntoken = \"{TOKEN}\"\n\n[warming]\nstrategies = \"none\"\n",
        universe.display().to_string()
    );
    let mut d = c.start().await;
    d.start_driver().expect("driver starts");
    for key in ["AAPL", "MSFT", "XOM", "IBM"] {
        assert_eq!(read(&d, key).await, "MISS");
    }
    let store = Arc::clone(d.service.store());
    assert_eq!(store.len().await.unwrap(), 4);

    // The token is required, and checked.
    assert_eq!(purge(&d, "/cache/quote/AAPL", None).await.0, 401);
    assert_eq!(purge(&d, "/cache/quote/AAPL", Some("wrong")).await.0, 401);
    assert_eq!(purge(&d, "/cache/quote", None).await.0, 401);
    assert_eq!(store.len().await.unwrap(), 4, "refused purges drop nothing");

    // One key.
    let (status, body) = purge(&d, "/cache/quote/AAPL", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["purged"], 1);
    assert_eq!(body["scope"], "key");
    assert_eq!(body["key"], "AAPL");
    assert_eq!(
        purge(&d, "/cache/quote/AAPL", Some(TOKEN)).await.1["purged"],
        0
    );
    assert_eq!(read(&d, "MSFT").await, "HIT", "other keys stay");
    assert_eq!(read(&d, "AAPL").await, "MISS", "purged: fetched again");

    // A group's members: AAPL and MSFT, not XOM.
    let (status, body) = purge(&d, "/cache/quote?group=Tech", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["scope"].as_str(), body["purged"].as_u64()),
        (Some("group"), Some(2))
    );
    assert_eq!(body["group"], "Tech");
    assert_eq!(read(&d, "XOM").await, "HIT");
    assert_eq!(store.len().await.unwrap(), 2, "XOM and IBM left");
    let (status, body) = purge(&d, "/cache/quote?group=", Some(TOKEN)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("missing_group"))
    );

    // The whole dataset.
    let (status, body) = purge(&d, "/cache/quote", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["scope"].as_str(), body["purged"].as_u64()),
        (Some("dataset"), Some(2))
    );
    assert_eq!(store.len().await.unwrap(), 0);
    let (status, body) = purge(&d, "/cache/nope", Some(TOKEN)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_dataset"))
    );

    // The tracker still knows every key it saw.
    d.driver().unwrap().sync().await.unwrap();
    let r = get(
        &http(),
        format!(
            "http://{}/warming/patterns?dataset=quote&limit=10",
            d.admin_addr
        ),
    )
    .await;
    let patterns: Value = r.json().await.unwrap();
    let popular: Vec<&str> = patterns["datasets"][0]["popular"]
        .as_array()
        .expect("popular keys")
        .iter()
        .filter_map(|k| k["key"].as_str())
        .collect();
    for key in ["AAPL", "MSFT", "XOM", "IBM"] {
        assert!(popular.contains(&key), "{key} in {popular:?}");
    }
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_is_disabled_without_an_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _sim) = daemon(dir.path()).await;
    let slot = WarmingSlot::default();
    let _ = slot.set(d.driver().expect("driver").clone());
    let app = admin::router(
        Arc::new(AtomicBool::new(true)),
        slot,
        AdminAuth::new(&AdminConfig {
            token: None,
            protect_reads: false,
        }),
        prewarm_server::store::StoreHealth::default(),
    );
    for path in [
        "/cache/quote/AAPL",
        "/cache/quote?group=Tech",
        "/cache/quote",
    ] {
        let (status, body) = call(&app, Method::DELETE, path, Some("anything")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(body.contains("\"disabled\""), "{body}");
    }
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_purge_parameter_is_refused_and_purge_keys_are_read_keys() {
    let upstream = sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = TestCfg::new(upstream.addr());
    c.state_dir = dir.path().join("state");
    c.extra = format!(
        "uppercase_keys = true\naliases = {{ \"BRKB\" = \"BRK.B\" }}\n\n[admin]\ntoken = \"{TOKEN}\"\n\n[warming]\nstrategies = \"none\"\n"
    );
    let mut d = c.start().await;
    d.start_driver().expect("driver starts");
    for key in ["AAPL", "MSFT", "BRK.B"] {
        assert_eq!(read(&d, key).await, "MISS");
    }
    let store = Arc::clone(d.service.store());

    // A misspelt or unknown parameter never widens the purge.
    for (path, name) in [
        ("/cache/quote?grop=Tech", "grop"),
        ("/cache/quote?Group=Tech", "Group"),
        ("/cache/quote?group=Tech&x=1", "x"),
        ("/cache/quote/AAPL?group=Tech", "group"),
    ] {
        let (status, body) = purge(&d, path, Some(TOKEN)).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "bad_parameter", "{path}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("{name:?}")), "{path}: {message}");
    }
    assert_eq!(store.len().await.unwrap(), 3, "refused purges drop nothing");

    // Keys are upper-cased and aliased as reads are.
    let (status, body) = purge(&d, "/cache/quote/aapl", Some(TOKEN)).await;
    assert_eq!((status, body["purged"].as_u64()), (200, Some(1)), "{body}");
    assert_eq!(body["key"], "AAPL");
    assert_eq!(read(&d, "AAPL").await, "MISS");
    let (status, body) = purge(&d, "/cache/quote/brkb", Some(TOKEN)).await;
    assert_eq!((status, body["purged"].as_u64()), (200, Some(1)), "{body}");
    assert_eq!(read(&d, "BRK.B").await, "MISS");

    // A key no read accepts is refused, naming the pattern.
    let (status, body) = purge(&d, "/cache/quote/a%20b", Some(TOKEN)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_key");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("key pattern"), "{message}");
    assert_eq!(read(&d, "MSFT").await, "HIT", "other keys stay");
    d.shutdown().await.unwrap();
}
