//! Batch read items carry the cache facts a single read gives as headers
//! (`Cache-Status`, `Cache-Control: max-age`, `ETag`), against the
//! built-in upstream-sim on tokio's paused time.

use std::time::Duration;

use prewarm_server::clock::TokioClock;
use prewarm_server::serve::Running;
use serde_json::Value;

use crate::support::{self, TestCfg, header, http};

async fn daemon(upstream: std::net::SocketAddr, batch: bool) -> Running {
    let mut cfg = TestCfg::new(upstream);
    cfg.batch = batch;
    cfg.extra = "negative_ttl_s = 5\n[warming]\nenabled = false\n".into();
    cfg.start_paused(&TokioClock::default()).await
}

async fn batch(d: &Running, keys: &str) -> Value {
    let url = format!("http://{}/v1/quote?keys={keys}", d.proxy_addr);
    let r = http().get(url).send().await.expect("the proxy answers");
    assert_eq!(r.status(), 200);
    r.json().await.expect("a JSON answer")
}

async fn single(d: &Running, key: &str) -> reqwest::Response {
    let url = format!("http://{}/v1/quote/{key}", d.proxy_addr);
    http().get(url).send().await.expect("the proxy answers")
}

/// The item's cache facts are the headers a single read gives at the same
/// instant (paused time does not move between the two reads).
async fn assert_same_as_single(d: &Running, item: &Value, key: &str) {
    let r = single(d, key).await;
    assert_eq!(item["cache_status"], header(&r, "cache-status"), "{item}");
    let max_age = format!("max-age={}", item["max_age_s"]);
    assert_eq!(max_age, header(&r, "cache-control"), "{item}");
    match item.get("etag") {
        Some(etag) => assert_eq!(etag, &header(&r, "etag"), "{item}"),
        None => assert_eq!(header(&r, "etag"), "", "{item}"),
    }
}

#[tokio::test(start_paused = true)]
async fn batch_items_carry_cache_status_max_age_and_etag_for_miss_hit_stale_and_404() {
    let sim = support::sim(|c| c.unknown_keys = vec!["NOPE".into()]).await;
    let d = daemon(sim.addr(), false).await;
    let body = batch(&d, "AAPL,NOPE").await;
    let (aapl, nope) = (&body["AAPL"], &body["NOPE"]);
    assert_eq!(aapl["cache"], "MISS", "{body}");
    assert_eq!(
        aapl["cache_status"],
        "prewarm; fwd=miss; fwd-status=200; stored; ttl=30"
    );
    assert_eq!(aapl["max_age_s"], 30);
    let etag = aapl["etag"].as_str().expect("the sim's ETag").to_string();
    assert!(etag.starts_with('"') && etag.len() > 2, "{etag}");
    assert_eq!(nope["error"]["status"], 404, "{body}");
    assert_eq!(
        nope["cache_status"],
        "prewarm; fwd=miss; fwd-status=404; stored; ttl=5"
    );
    assert_eq!(nope["max_age_s"], 5);
    assert!(nope.get("etag").is_none(), "a 404 has no ETag: {nope}");
    tokio::time::advance(Duration::from_secs(2)).await;
    let body = batch(&d, "AAPL,NOPE").await;
    let (aapl, nope) = (&body["AAPL"], &body["NOPE"]);
    assert_eq!(aapl["cache"], "HIT", "{body}");
    assert_eq!(aapl["cache_status"], "prewarm; hit; ttl=28");
    assert_eq!(aapl["max_age_s"], 28);
    assert_eq!(aapl["etag"], etag.as_str(), "the entry's ETag is kept");
    assert_eq!(nope["cache"], "HIT", "{body}");
    assert_eq!(nope["cache_status"], "prewarm; hit; ttl=3");
    assert_eq!(nope["max_age_s"], 3);
    assert_same_as_single(&d, aapl, "AAPL").await;
    assert_same_as_single(&d, nope, "NOPE").await;
    // Stale within stale-while-revalidate: answered at once, max-age 0.
    support::put_aged(&d, "OLD", b"{\"old\":true}", 40.0, 30.0).await;
    let body = batch(&d, "OLD").await;
    let old = &body["OLD"];
    assert_eq!(old["cache"], "STALE", "{body}");
    assert_eq!(old["cache_status"], "prewarm; hit; fwd=stale; ttl=-10");
    assert_eq!(old["max_age_s"], 0);
    assert!(old.get("etag").is_none(), "stored without one: {old}");
    assert_eq!(old["data"]["old"], true, "existing fields unchanged");
    d.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_batch_item_has_the_error_cache_status_and_no_max_age() {
    let sim = support::sim(|_| {}).await;
    let d = daemon(sim.addr(), false).await;
    let body = batch(&d, "bad%20key").await;
    let bad = &body["bad key"];
    assert_eq!(bad["error"]["code"], "invalid_key", "{body}");
    assert_eq!(bad["cache_status"], "prewarm; fwd=miss; detail=invalid_key");
    assert!(bad.get("max_age_s").is_none() && bad.get("cache").is_none());
    let single = single(&d, "bad%20key").await;
    assert_eq!(header(&single, "cache-status"), bad["cache_status"]);
    d.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn items_fetched_through_the_batch_endpoint_have_no_etag() {
    let sim = support::sim(|_| {}).await;
    let d = daemon(sim.addr(), true).await;
    let body = batch(&d, "AAPL,MSFT").await;
    for key in ["AAPL", "MSFT"] {
        let item = &body[key];
        assert_eq!(item["cache"], "MISS", "{body}");
        assert_eq!(item["max_age_s"], 30, "{body}");
        assert!(item.get("etag").is_none(), "no ETag per item: {item}");
    }
    d.shutdown().await.unwrap();
}

#[test]
fn the_batch_entry_schema_documents_the_cache_facts() {
    let doc: Value = serde_json::from_str(prewarm_server::openapi::json()).unwrap();
    let entry = &doc["components"]["schemas"]["BatchEntry"];
    for field in [
        "cache",
        "age_s",
        "cache_status",
        "max_age_s",
        "etag",
        "data",
        "error",
    ] {
        assert!(entry["properties"][field].is_object(), "BatchEntry.{field}");
    }
    let required = entry["required"].as_array().expect("required fields");
    assert_eq!(required, &[Value::from("cache_status")]);
}
