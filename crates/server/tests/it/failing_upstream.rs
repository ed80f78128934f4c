//! An upstream that fails (5xx, refused connections), on tokio's paused
//! time: failed fetches are remembered per key, a stale entry is not
//! retried for, and the host's circuit breaker opens, probes and closes.
//! Upstream calls are counted by the upstream-sim.

use std::time::Duration;

use prewarm_server::clock::TokioClock;
use prewarm_server::serve::Running;
use prewarm_server::service::{CacheStatus, ReadError, WarmError};
use prewarm_server::upstream::FetchError;
use prewarm_server::upstream_sim::SimHandle;
use serde_json::Value;
use tokio::time::sleep;

use crate::support::{self, TestCfg, header, http};

/// A daemon in front of a sim answering every request 500, with
/// `upstream` lines added to `[upstream]`.
async fn failing(max_retries: u32, upstream: &str) -> (SimHandle, Running) {
    let sim = support::sim(|c| c.error_rate = 1.0).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.max_retries = max_retries;
    cfg.upstream_extra = upstream.into();
    let d = cfg.start_paused(&TokioClock::default()).await;
    (sim, d)
}

#[tokio::test(start_paused = true)]
async fn stale_key_against_a_failing_upstream_costs_one_call_not_sixty() {
    // Three attempts a fetch (two retries), a remembered failure lasts 2 s.
    let (sim, d) = failing(2, "breaker_failures = 100\n").await;
    let svc = d.service.clone();
    support::put_aged(&d, "STALE", b"{\"seq\":0}", 40.0, 30.0).await;
    for _ in 0..20 {
        let served = svc.read("quote", "STALE", None).await.unwrap();
        assert_eq!(served.status, CacheStatus::Stale);
        sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        sim.stats().requests,
        1,
        "one refresh, not retried, remembered"
    );
    // The back-off over, the next read refreshes again (in the background).
    sleep(Duration::from_secs(2)).await;
    assert_eq!(
        svc.read("quote", "STALE", None).await.unwrap().status,
        CacheStatus::Stale
    );
    sleep(Duration::from_millis(10)).await;
    assert_eq!(sim.stats().requests, 2);

    // Without a stale entry: retried once per back-off, the error remembered.
    for _ in 0..5 {
        let e = svc.read("quote", "COLD", None).await.unwrap_err();
        assert!(
            matches!(e, ReadError::Fetch(FetchError::Status { status: 500, .. })),
            "{e:?}"
        );
    }
    assert_eq!(
        sim.stats().requests,
        2 + 3,
        "one fetch with its two retries"
    );
    // Warming skips a key whose fetch failed recently.
    let w = svc.warm("quote", "COLD", "popular").await;
    assert!(
        matches!(
            w,
            Err(WarmError::Fetch(FetchError::Status { status: 500, .. }))
        ),
        "{w:?}"
    );
    assert_eq!(sim.stats().requests, 5);
    d.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn failing_upstream_opens_the_breaker_and_one_probe_closes_it() {
    let (sim, d) = failing(0, "breaker_failures = 3\nbreaker_open_s = 10\n").await;
    let c = http();
    let url = |k: &str| format!("http://{}/v1/quote/{k}", d.proxy_addr);
    for k in ["A", "B", "C"] {
        assert_eq!(support::get(&c, url(k)).await.status(), 502);
    }
    assert_eq!(sim.stats().requests, 3);
    // Open: 503 at once with Retry-After, stale served, warming held.
    let r = support::get(&c, url("D")).await;
    assert_eq!(r.status(), 503);
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_unavailable");
    support::put_aged(&d, "S", b"{\"seq\":0}", 40.0, 30.0).await;
    assert_eq!(
        header(&support::get(&c, url("S")).await, "x-cache"),
        "STALE"
    );
    let w = d.service.warm("quote", "W", "popular").await;
    assert!(matches!(w, Err(WarmError::Paused { .. })), "{w:?}");
    assert!(d.service.upstream().paused_until_s() > d.service.clock().now_s());
    assert_eq!(sim.stats().requests, 3, "no call while open");

    // Half-open after 10 s: one probe among concurrent reads; it fails,
    // the breaker opens again.
    sleep(Duration::from_secs(10)).await;
    let reads = futures::future::join_all(["E", "F", "G", "H"].map(|k| support::get(&c, url(k))));
    let statuses: Vec<u16> = reads.await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 502).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 503).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(sim.stats().requests, 4, "one probe per open period");

    // The upstream recovers: the next probe closes the breaker.
    sim.set_error_rate(0.0);
    sleep(Duration::from_secs(10)).await;
    assert_eq!(support::get(&c, url("I")).await.status(), 200);
    assert_eq!(support::get(&c, url("J")).await.status(), 200);
    assert_eq!(sim.stats().requests, 6);
    d.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn refused_connections_open_the_breaker_too() {
    let sim = support::sim(|c| c.refuse_connections = true).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.upstream_extra = "breaker_failures = 2\n".into();
    let d = cfg.start_paused(&TokioClock::default()).await;
    let svc = d.service.clone();
    for k in ["A", "B"] {
        let e = svc.read("quote", k, None).await.unwrap_err();
        assert!(
            matches!(e, ReadError::Fetch(FetchError::Transport(_))),
            "{e:?}"
        );
    }
    let e = svc.read("quote", "C", None).await.unwrap_err();
    assert!(
        matches!(e, ReadError::Fetch(FetchError::Unavailable { .. })),
        "{e:?}"
    );
    assert_eq!(sim.stats().refused, 2);
    d.shutdown().await.unwrap();
}

/// Regression: reads the open breaker answered 503 made no call, but the
/// cost cap's no-warming shadow counted one for each.
#[tokio::test(start_paused = true)]
async fn reads_the_open_breaker_refuses_are_no_calls_without_warming_either() {
    let sim = support::sim(|c| c.error_rate = 1.0).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.max_retries = 0;
    cfg.upstream_extra = "breaker_failures = 3\nbreaker_open_s = 60\n".into();
    cfg.extra = "[warming]\nstrategies = \"none\"\n".into();
    let mut d = cfg.start_paused(&TokioClock::default()).await;
    d.start_driver().expect("driver starts");
    let c = http();
    let url = |k: &str| format!("http://{}/v1/quote/{k}", d.proxy_addr);
    for k in ["A", "B", "C"] {
        assert_eq!(support::get(&c, url(k)).await.status(), 502);
    }
    for i in 0..20 {
        assert_eq!(support::get(&c, url(&format!("K{i}"))).await.status(), 503);
    }
    assert_eq!(sim.stats().requests, 3);
    d.driver().unwrap().sync().await.unwrap();
    let stats = support::admin_json(&d, "/warming/stats").await;
    let quote = &stats["datasets"]["quote"];
    assert_eq!(quote["since_start"]["demand_only_api_calls"], 3, "{stats}");
    assert_eq!(quote["price"]["at_risk"], 0, "{stats}");
    d.shutdown().await.unwrap();
}
