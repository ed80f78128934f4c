//! 429 handling against an upstream-sim with a real rate limit.

use prewarm_server::service::WarmError;
use serde_json::Value;

use crate::support::{self, TestCfg, get, header, http};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_upstream_serves_stale_and_pauses_warming() {
    let sim = support::sim(|c| c.rate_limit_per_min = Some(5)).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.request_timeout_s = 2.0;
    let d = cfg.start().await;
    let c = http();
    for k in ["A", "B", "C", "D", "E"] {
        let r = get(&c, format!("http://{}/v1/quote/{k}", d.proxy_addr)).await;
        assert_eq!(
            (r.status().as_u16(), header(&r, "x-cache")),
            (200, "MISS".into())
        );
    }
    let now = d.service.clock().now_s();
    support::put_aged(&d, "F", b"{\"symbol\":\"F\",\"old\":true}", 100.0, 30.0).await;

    // Over the limit: upstream says 429, the client still gets the stale entry.
    let r = get(&c, format!("http://{}/v1/quote/F", d.proxy_addr)).await;
    assert_eq!(
        (r.status().as_u16(), header(&r, "x-cache")),
        (200, "STALE".into())
    );
    let age: u64 = header(&r, "age").parse().unwrap();
    assert!(age >= 100);
    assert_eq!(sim.stats().rate_limited, 1);

    // Retry-After (12 s at 5/min) pauses warming: no upstream call.
    let upstream = d.service.upstream();
    assert!(
        upstream.paused_until_s() > now + 5.0,
        "paused until {}",
        upstream.paused_until_s()
    );
    let before = sim.stats().requests;
    let w = d.service.warm("quote", "G", "popular").await;
    assert!(matches!(w, Err(WarmError::Paused { .. })), "{w:?}");
    // While paused a stale entry is served without asking upstream.
    let r = get(&c, format!("http://{}/v1/quote/F", d.proxy_addr)).await;
    assert_eq!(header(&r, "x-cache"), "STALE");
    // No stale entry and a pause longer than the request timeout: 503 with
    // Retry-After, still without an upstream call.
    let r = get(&c, format!("http://{}/v1/quote/H", d.proxy_addr)).await;
    assert_eq!(r.status(), 503);
    assert!(header(&r, "retry-after").parse::<u64>().unwrap() >= 1);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_rate_limited");
    assert_eq!(
        sim.stats().requests,
        before,
        "nothing called upstream while paused"
    );
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demand_miss_waits_out_a_short_retry_after() {
    // 60/min with burst 1: the second call within a second gets 429 and
    // Retry-After: 1; the client request waits and is then served.
    let sim = support::sim(|c| {
        c.rate_limit_per_min = Some(60);
        c.burst = Some(1);
    })
    .await;
    let d = TestCfg::new(sim.addr()).start().await; // request timeout 5 s
    let c = http();
    let a = get(&c, format!("http://{}/v1/quote/A", d.proxy_addr)).await;
    assert_eq!(a.status(), 200);
    let b = get(&c, format!("http://{}/v1/quote/B", d.proxy_addr)).await;
    assert_eq!(
        (b.status().as_u16(), header(&b, "x-cache")),
        (200, "MISS".into())
    );
    let stats = sim.stats();
    assert!(stats.rate_limited >= 1, "{stats:?}");
    assert_eq!(stats.served, 2);
    d.shutdown().await.unwrap();
}
