//! Request coalescing and every waiter outcome, over real HTTP.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use prewarm_server::service::ReadError;
use prewarm_server::upstream::FetchError;
use serde_json::Value;

use crate::hooked_store::HookedStore;
use crate::support::{self, TestCfg, header, http, sim_stats};

async fn concurrent_gets(url: &str, n: usize) -> Vec<(u16, String, Value)> {
    let c = http();
    join_all((0..n).map(|_| {
        let (c, url) = (c.clone(), url.to_string());
        async move {
            let r = c.get(&url).send().await.expect("proxy answers");
            let (status, cache) = (r.status().as_u16(), header(&r, "x-cache"));
            (
                status,
                cache,
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_misses_make_one_upstream_call() {
    let sim = support::sim(|c| c.latency_ms = 300).await;
    let d = TestCfg::new(sim.addr()).start().await;
    let results = concurrent_gets(&format!("http://{}/v1/quote/AAPL", d.proxy_addr), 100).await;
    let seq = &results[0].2["seq"];
    for (status, cache, body) in &results {
        assert_eq!(*status, 200);
        assert!(cache == "MISS" || cache == "HIT", "{cache}");
        assert_eq!(&body["seq"], seq, "everyone got the one fetched value");
    }
    assert!(
        results.iter().filter(|r| r.1 == "MISS").count() >= 50,
        "most waited on the flight"
    );
    let stats = sim_stats(sim.addr()).await;
    assert_eq!(stats.requests, 1, "{stats:?}");
    assert_eq!(d.service.in_flight(), 0);
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_error_reaches_every_waiter() {
    let sim = support::sim(|c| {
        c.latency_ms = 200;
        c.error_rate = 1.0;
    })
    .await;
    let d = TestCfg::new(sim.addr()).start().await; // max_retries 0
    let results = concurrent_gets(&format!("http://{}/v1/quote/AAPL", d.proxy_addr), 20).await;
    for (status, _, body) in &results {
        assert_eq!(*status, 502);
        assert_eq!(body["error"]["code"], "upstream_error");
        assert!(body["error"]["message"].as_str().unwrap().contains("500"));
    }
    assert_eq!(sim_stats(sim.addr()).await.requests, 1);
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_error_is_retried_with_backoff() {
    let sim = support::sim(|c| c.error_rate = 1.0).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.max_retries = 2;
    let d = cfg.start().await;
    let r = support::get(&http(), format!("http://{}/v1/quote/AAPL", d.proxy_addr)).await;
    assert_eq!(r.status(), 502);
    assert_eq!(sim.stats().requests, 3, "one call and two retries");
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_reaches_every_waiter_and_stale_is_served_instead() {
    let sim = support::sim(|c| c.latency_ms = 3_000).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.request_timeout_s = 0.3;
    let d = cfg.start().await;
    let started = std::time::Instant::now();
    let results = concurrent_gets(&format!("http://{}/v1/quote/AAPL", d.proxy_addr), 10).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waiters gave up at the request timeout"
    );
    for (status, _, body) in &results {
        assert_eq!(*status, 504);
        assert_eq!(body["error"]["code"], "upstream_timeout");
    }
    assert_eq!(sim.stats().requests, 1);

    support::put_aged(&d, "MSFT", b"{\"stale\":true}", 100.0, 30.0).await;
    let results = concurrent_gets(&format!("http://{}/v1/quote/MSFT", d.proxy_addr), 5).await;
    for (status, cache, body) in &results {
        assert_eq!((*status, cache.as_str()), (200, "STALE"));
        assert_eq!(body["stale"], true);
    }
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_leader_does_not_strand_waiters() {
    let sim = support::sim(|c| c.latency_ms = 500).await;
    let d = TestCfg::new(sim.addr()).start().await;
    let url = format!("http://{}/v1/quote/AAPL", d.proxy_addr);
    // The leader's client gives up after 100 ms: its connection closes and
    // axum drops its handler.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let leader = tokio::spawn({
        let url = url.clone();
        async move { impatient.get(url).send().await.is_err() }
    });
    while sim.stats().requests == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let early = tokio::spawn({
        let url = url.clone();
        async move { concurrent_gets(&url, 5).await }
    });
    assert!(leader.await.unwrap(), "the leader's client timed out");
    let late = concurrent_gets(&url, 5).await;
    for (status, cache, body) in early.await.unwrap().iter().chain(&late) {
        assert_eq!((*status, cache.as_str()), (200, "MISS"));
        assert_eq!(body["symbol"], "AAPL");
    }
    assert_eq!(sim.stats().requests, 1);
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_loader_gives_waiters_an_error_not_a_hang() {
    let sim = support::sim(|c| c.latency_ms = 100).await;
    // Fault injection into the real load path: storing `BOOM` panics.
    let mut store = HookedStore::new(8, 60.0);
    store.on_put = Box::new(|key| {
        assert_ne!(key, "BOOM", "injected loader panic");
        true
    });
    let store = Arc::new(store);
    let (svc, _events) = support::service_with_store(&TestCfg::new(sim.addr()), store);
    let reads = join_all((0..10).map(|_| {
        let svc = svc.clone();
        async move { svc.read("quote", "BOOM", None).await }
    }));
    let results = tokio::time::timeout(Duration::from_secs(3), reads)
        .await
        .expect("no waiter hangs");
    for r in results {
        assert_eq!(r.unwrap_err(), ReadError::Fetch(FetchError::Abandoned));
    }
    assert_eq!(sim.stats().requests, 1);
    assert_eq!(svc.in_flight(), 0, "the flight ended");
    let ok = svc.read("quote", "AAPL", None).await.unwrap();
    assert!(!ok.entry.body.is_empty(), "other keys still load");
}
