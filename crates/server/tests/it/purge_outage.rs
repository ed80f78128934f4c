//! Purging while Redis is down: the purge cannot reach Redis, so it
//! answers 503 `store_error` with `Retry-After` instead of a success that
//! would let the entries come back; once Redis answers again a purge
//! counts each key once, though Redis and the in-process fallback (filled
//! during the outage) both held it.

use std::time::{Duration, Instant};

use prewarm_server::serve::Running;
use serde_json::Value;

use crate::admin::TOKEN;
use crate::support::{self, TestCfg, get, header, http};

const KEYS: [&str; 8] = [
    "AAPL", "MSFT", "NVDA", "AMD", "TSLA", "META", "AMZN", "GOOG",
];

/// One read of every key (each a 200); their `X-Cache` values.
async fn round(d: &Running) -> Vec<String> {
    let mut seen = Vec::new();
    for key in KEYS {
        let r = get(&http(), format!("http://{}/v1/quote/{key}", d.proxy_addr)).await;
        assert_eq!(r.status(), 200, "{key}");
        seen.push(header(&r, "x-cache"));
    }
    seen
}

/// Reads until `/readyz` starts with `want` (bounded).
async fn reads_until_readyz(d: &Running, want: &str) {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        round(d).await;
        let body = get(&http(), format!("http://{}/readyz", d.admin_addr))
            .await
            .text()
            .await
            .unwrap_or_default();
        if body.starts_with(want) {
            return;
        }
        assert!(Instant::now() < until, "readyz never said {want}: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `DELETE path` with the admin token: status, `Retry-After`, JSON body.
async fn purge(d: &Running, path: &str) -> (u16, Option<String>, Value) {
    let r = http()
        .delete(format!("http://{}{path}", d.admin_addr))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_during_a_redis_outage_is_refused_and_counts_each_key_once_after() {
    let Some(mut redis) = support::redis() else {
        return;
    };
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let universe = dir.path().join("universe.csv");
    std::fs::write(&universe, "AAPL,Tech\nMSFT,Tech\n").unwrap();
    let mut c = TestCfg::new(sim.addr());
    c.store = redis.url();
    c.state_dir = dir.path().join("state");
    c.store_extra = "timeout_ms = 200\nbackoff_base_ms = 100\nbackoff_max_ms = 400\n".into();
    c.extra = format!(
        "universe = {:?}\n\n[admin]\ntoken = \"{TOKEN}\"\n\n[warming]\nstrategies = \"none\"\n",
        universe.display().to_string()
    );
    let mut d = c.start().await;
    d.start_driver().expect("driver starts");
    round(&d).await;

    // Redis down: the fallback fills; no purge may claim success.
    redis.stop();
    reads_until_readyz(&d, "degraded").await;
    for path in [
        "/cache/quote/AAPL",
        "/cache/quote?group=Tech",
        "/cache/quote",
    ] {
        let (status, retry, body) = purge(&d, path).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(body["error"]["code"], "store_error", "{path}: {body}");
        let retry_s: u64 = retry.expect("Retry-After").parse().expect("whole seconds");
        assert!(retry_s >= 1, "{path}: Retry-After {retry_s}");
    }

    // The fallback fills again, Redis comes back (empty) and is filled:
    // both hold every key, and a purge counts each once.
    round(&d).await;
    redis.restart();
    reads_until_readyz(&d, "ready").await;
    let until = Instant::now() + Duration::from_secs(5);
    while round(&d).await.iter().any(|h| h != "HIT") {
        assert!(Instant::now() < until, "Redis never held every key");
    }
    let (status, _, body) = purge(&d, "/cache/quote").await;
    assert_eq!(
        (status, body["purged"].as_u64()),
        (200, Some(KEYS.len() as u64)),
        "{body}"
    );
    assert!(
        round(&d).await.iter().all(|h| h == "MISS"),
        "purged everywhere"
    );
    d.shutdown().await.unwrap();
}
