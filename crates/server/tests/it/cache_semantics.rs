//! Cache semantics against a real local upstream: negative caching,
//! `Cache-Status`, `Cache-Control`, `ETag` and `If-None-Match`, a client's
//! `no-cache`, key aliases and case.

use std::time::Duration;

use prewarm_server::clock::TokioClock;
use prewarm_server::serve::Running;
use prewarm_server::service::WarmError;
use serde_json::Value;

use crate::recording::{self, Recording};
use crate::support::{self, TestCfg, header, http};

async fn daemon(rec: &Recording, extra: &str) -> Running {
    let mut cfg = TestCfg::new(rec.addr);
    cfg.url = Some(rec.url());
    cfg.extra = extra.into();
    cfg.start_paused(&TokioClock::default()).await
}

async fn get_with(d: &Running, key: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = http().get(format!("http://{}/v1/quote/{key}", d.proxy_addr));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("the proxy answers")
}

async fn tick(s: f64) {
    tokio::time::sleep(Duration::from_secs_f64(s)).await;
}

#[tokio::test(start_paused = true)]
async fn an_upstream_404_is_answered_from_a_negative_entry_until_negative_ttl_s() {
    let rec = recording::spawn().await;
    let d = daemon(&rec, "negative_ttl_s = 5").await;
    let r = get_with(&d, "NOPE", &[]).await;
    assert_eq!(
        (r.status().as_u16(), header(&r, "x-cache")),
        (404, "MISS".into())
    );
    assert_eq!(
        header(&r, "cache-status"),
        "prewarm; fwd=miss; fwd-status=404; stored; ttl=5"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_not_found");
    tick(2.0).await;
    let r = get_with(&d, "NOPE", &[]).await;
    assert_eq!(
        (r.status().as_u16(), header(&r, "x-cache")),
        (404, "HIT".into())
    );
    assert_eq!(header(&r, "cache-status"), "prewarm; hit; ttl=3");
    assert_eq!(header(&r, "cache-control"), "max-age=3");
    // The batch read answers it the same way, without a call.
    let r = http()
        .get(format!("http://{}/v1/quote?keys=NOPE", d.proxy_addr))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["NOPE"]["cache"], "HIT", "{body}");
    assert_eq!(body["NOPE"]["error"]["status"], 404, "{body}");
    // Warming never refreshes a negative entry.
    let w = d.service.warm("quote", "NOPE", "popular").await;
    assert!(matches!(w, Err(WarmError::Negative)), "{w:?}");
    assert_eq!(rec.calls_for("NOPE"), 1, "one call while the entry lasts");
    tick(3.5).await;
    let r = get_with(&d, "NOPE", &[]).await;
    assert_eq!(
        (r.status().as_u16(), header(&r, "x-cache")),
        (404, "MISS".into())
    );
    assert_eq!(rec.calls_for("NOPE"), 2, "asked again past negative_ttl_s");
    d.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn negative_ttl_s_zero_keeps_no_negative_entry() {
    let rec = recording::spawn().await;
    let d = daemon(&rec, "negative_ttl_s = 0").await;
    for _ in 0..2 {
        let r = get_with(&d, "NOPE", &[]).await;
        assert_eq!(r.status(), 404);
        assert_eq!(header(&r, "x-cache"), "", "an error, not a cached answer");
        assert_eq!(
            header(&r, "cache-status"),
            "prewarm; fwd=miss; detail=upstream_not_found"
        );
    }
    assert!(
        d.service
            .store()
            .get("quote", "NOPE")
            .await
            .unwrap()
            .is_none()
    );
    d.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn cache_status_cache_control_and_etag_follow_the_entry() {
    let rec = recording::spawn().await;
    let d = daemon(&rec, "").await;
    let r = get_with(&d, "AAPL", &[]).await;
    assert_eq!(header(&r, "x-cache"), "MISS");
    assert_eq!(
        header(&r, "cache-status"),
        "prewarm; fwd=miss; fwd-status=200; stored; ttl=30"
    );
    assert_eq!(header(&r, "cache-control"), "max-age=30");
    assert_eq!(header(&r, "etag"), "\"AAPL-v1\"");
    tick(10.0).await;
    // A matching If-None-Match: 304, no body, the same headers.
    let r = get_with(&d, "AAPL", &[("if-none-match", "\"x\", W/\"AAPL-v1\"")]).await;
    assert_eq!(r.status(), 304);
    assert_eq!(header(&r, "x-cache"), "HIT");
    assert_eq!(header(&r, "cache-status"), "prewarm; hit; ttl=20");
    assert_eq!(header(&r, "cache-control"), "max-age=20");
    assert_eq!(header(&r, "etag"), "\"AAPL-v1\"");
    assert!(r.bytes().await.unwrap().is_empty());
    let r = get_with(&d, "AAPL", &[("if-none-match", "\"AAPL-v0\"")]).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("\"version\":1"));
    assert_eq!(rec.calls_for("AAPL"), 1);
    // Stale within stale-while-revalidate: a hit that forwarded.
    support::put_aged(&d, "OLD", b"{\"old\":true}", 40.0, 30.0).await;
    let r = get_with(&d, "OLD", &[]).await;
    assert_eq!(header(&r, "x-cache"), "STALE");
    assert_eq!(
        header(&r, "cache-status"),
        "prewarm; hit; fwd=stale; ttl=-10"
    );
    assert_eq!(header(&r, "cache-control"), "max-age=0");
    d.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn no_cache_forces_one_coalesced_fetch_of_a_fresh_entry() {
    let rec = recording::spawn().await;
    let d = daemon(&rec, "").await;
    assert_eq!(get_with(&d, "MSFT", &[]).await.status(), 200);
    let r = get_with(&d, "MSFT", &[]).await;
    assert_eq!(header(&r, "x-cache"), "HIT");
    rec.set_delay_ms(500);
    let reads = (0..5).map(|_| get_with(&d, "MSFT", &[("cache-control", "no-cache")]));
    let answers = futures::future::join_all(reads).await;
    let mut statuses = Vec::new();
    for r in answers {
        assert_eq!(
            (r.status().as_u16(), header(&r, "x-cache")),
            (200, "MISS".into())
        );
        assert_eq!(header(&r, "etag"), "\"MSFT-v2\"");
        statuses.push(header(&r, "cache-status"));
    }
    assert_eq!(rec.calls_for("MSFT"), 2, "five no-cache reads, one fetch");
    let led = "prewarm; fwd=request; fwd-status=200; stored; ttl=30";
    let joined = "prewarm; fwd=request; fwd-status=200; collapsed; ttl=30";
    assert_eq!(
        statuses.iter().filter(|s| *s == led).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| *s == joined).count(),
        4,
        "{statuses:?}"
    );
    d.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn aliases_and_upper_casing_reach_one_canonical_key() {
    let rec = recording::spawn().await;
    let d = daemon(
        &rec,
        "uppercase_keys = true\naliases = { \"BRK-B\" = \"BRK.B\" }",
    )
    .await;
    let r = get_with(&d, "brk-b", &[]).await;
    assert_eq!(
        (r.status().as_u16(), header(&r, "x-cache")),
        (200, "MISS".into())
    );
    for spelling in ["BRK.B", "BRK-B", "brk.b"] {
        let r = get_with(&d, spelling, &[]).await;
        assert_eq!(header(&r, "x-cache"), "HIT", "{spelling}");
    }
    let r = http()
        .get(format!(
            "http://{}/v1/quote?keys=brk-b,Brk.B,aapl",
            d.proxy_addr
        ))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["brk-b"]["cache"], "HIT", "{body}");
    assert_eq!(body["Brk.B"]["cache"], "HIT", "{body}");
    assert_eq!(body["aapl"]["cache"], "MISS", "{body}");
    let keys: Vec<String> = rec.seen().into_iter().map(|s| s.key).collect();
    assert_eq!(
        keys,
        ["BRK.B", "AAPL"],
        "the upstream sees canonical keys only"
    );
    assert!(
        d.service
            .store()
            .get("quote", "BRK.B")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        d.service
            .store()
            .get("quote", "brk-b")
            .await
            .unwrap()
            .is_none()
    );
    // A refused key's 400 names the pattern.
    let r = get_with(&d, "a_b", &[]).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("does not match the key pattern `^[A-Z][A-Z0-9.-]{0,14}$`"),
        "{message}"
    );
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_etag_is_kept_by_the_redis_store() {
    let Some(redis) = support::redis() else {
        return;
    };
    let rec = recording::spawn().await;
    let mut cfg = TestCfg::new(rec.addr);
    cfg.url = Some(rec.url());
    cfg.store = redis.url();
    let d = cfg.start().await;
    assert_eq!(get_with(&d, "NVDA", &[]).await.status(), 200);
    let entry = d
        .service
        .store()
        .get("quote", "NVDA")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.etag.as_deref(), Some("\"NVDA-v1\""));
    let r = get_with(&d, "NVDA", &[("if-none-match", "\"NVDA-v1\"")]).await;
    assert_eq!(
        (r.status().as_u16(), header(&r, "x-cache")),
        (304, "HIT".into())
    );
    d.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn no_cache_on_a_negative_entry_fetches_again() {
    let rec = recording::spawn().await;
    let d = daemon(&rec, "negative_ttl_s = 60").await;
    assert_eq!(get_with(&d, "NOPE", &[]).await.status(), 404);
    tick(1.0).await;
    let r = get_with(&d, "NOPE", &[]).await;
    assert_eq!(header(&r, "x-cache"), "HIT", "the negative entry answers");
    assert_eq!(rec.calls_for("NOPE"), 1);
    let r = get_with(&d, "NOPE", &[("cache-control", "no-cache")]).await;
    assert_eq!(
        (r.status().as_u16(), header(&r, "x-cache")),
        (404, "MISS".into())
    );
    assert_eq!(rec.calls_for("NOPE"), 2, "no-cache asked the upstream");
    d.shutdown().await.unwrap();
}

/// `no-cache` reads are misses and calls a cache without warming makes
/// too: the cost ratio stays 1 (regression: the shadow counted no call
/// for them, so each raised the ratio and held warming back).
#[tokio::test(start_paused = true)]
async fn no_cache_reads_are_calls_the_no_warming_shadow_makes_too() {
    let rec = recording::spawn().await;
    let mut d = daemon(&rec, "").await;
    d.start_driver().expect("driver starts");
    assert_eq!(get_with(&d, "MSFT", &[]).await.status(), 200);
    for _ in 0..3 {
        let r = get_with(&d, "MSFT", &[("cache-control", "no-cache")]).await;
        assert_eq!(header(&r, "x-cache"), "MISS");
    }
    assert_eq!(rec.calls_for("MSFT"), 4);
    d.driver().unwrap().sync().await.unwrap();
    let stats = support::admin_json(&d, "/warming/stats").await;
    let p = &stats["datasets"]["quote"]["since_start"];
    assert_eq!(
        (p["requests"].as_u64(), p["hits"].as_u64()),
        (Some(4), Some(0)),
        "{p}"
    );
    assert_eq!(p["api_calls"]["total"], 4, "{p}");
    assert_eq!(p["demand_only_api_calls"], 4, "{p}");
    assert_eq!(p["cost_ratio"], 1.0, "{p}");
    d.shutdown().await.unwrap();
}
