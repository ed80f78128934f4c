//! A Redis outage mid-traffic: a real redis-server is killed and started
//! again while clients keep reading. Answers keep coming from the upstream
//! and the in-process fallback (no 5xx for keys the upstream serves),
//! without waiting on the dead connection for each request; `/readyz` and
//! the `store` object of `/warming/stats` say `degraded`, then `ready` and
//! `connected` once Redis is back. A Redis that is down at start does not
//! stop the daemon: it starts degraded and connects when Redis appears.

use std::time::{Duration, Instant};

use prewarm_server::serve::Running;
use serde_json::Value;

use crate::support::{self, TestCfg, get, http};

const KEYS: [&str; 8] = [
    "AAPL", "MSFT", "NVDA", "AMD", "TSLA", "META", "AMZN", "GOOG",
];

fn outage_cfg(upstream: std::net::SocketAddr, redis_url: String, dir: &std::path::Path) -> TestCfg {
    let mut c = TestCfg::new(upstream);
    c.store = redis_url;
    c.state_dir = dir.to_path_buf();
    c.store_extra = "timeout_ms = 200\nbackoff_base_ms = 100\nbackoff_max_ms = 400\n".into();
    c
}

/// One round of reads over every key; each must be a 200. Returns the
/// slowest answer.
async fn round(c: &reqwest::Client, d: &Running) -> Duration {
    let mut slowest = Duration::ZERO;
    for key in KEYS {
        let started = Instant::now();
        let r = get(c, format!("http://{}/v1/quote/{key}", d.proxy_addr)).await;
        assert_eq!(r.status(), 200, "{key}: {:?}", r.text().await);
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

async fn readyz(d: &Running) -> (u16, String) {
    let r = get(&http(), format!("http://{}/readyz", d.admin_addr)).await;
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn store_health(d: &Running) -> String {
    let v: Value = get(&http(), format!("http://{}/warming/stats", d.admin_addr))
        .await
        .json()
        .await
        .expect("stats JSON");
    v["store"]["health"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Reads rounds until `/readyz` says `want` (bounded); every answer a 200.
async fn traffic_until_readyz(c: &reqwest::Client, d: &Running, want: &str) {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        round(c, d).await;
        let (status, body) = readyz(d).await;
        assert_eq!(status, 200, "{body}");
        if body.starts_with(want) {
            return;
        }
        assert!(Instant::now() < until, "readyz never said {want}: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_mid_traffic_degrades_then_recovers_without_failing_reads() {
    let Some(mut redis) = support::redis() else {
        return;
    };
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let mut d = outage_cfg(sim.addr(), redis.url(), dir.path())
        .start()
        .await;
    d.start_driver().expect("driver starts");
    let c = http();
    round(&c, &d).await;
    assert_eq!(readyz(&d).await, (200, "ready\n".into()));
    assert_eq!(store_health(&d).await, "connected");

    redis.stop();
    traffic_until_readyz(&c, &d, "degraded").await;
    assert_eq!(store_health(&d).await, "degraded");
    // During the back-off no request waits on Redis.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        slowest = slowest.max(round(&c, &d).await);
    }
    assert!(
        slowest < Duration::from_millis(1000),
        "a read took {slowest:?} during the outage"
    );

    redis.restart();
    traffic_until_readyz(&c, &d, "ready").await;
    assert_eq!(store_health(&d).await, "connected");
    // Entries go to Redis again.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        round(&c, &d).await;
        let n: Vec<String> = redis::cmd("KEYS")
            .arg("prewarm:quote:*")
            .query_async(&mut conn)
            .await
            .unwrap();
        if !n.is_empty() {
            break;
        }
        assert!(Instant::now() < until, "nothing was written to Redis again");
    }
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_down_at_start_starts_degraded_and_connects_when_it_appears() {
    let Some(mut redis) = support::redis() else {
        return;
    };
    redis.stop();
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let d = outage_cfg(sim.addr(), redis.url(), dir.path())
        .start()
        .await;
    let c = http();
    traffic_until_readyz(&c, &d, "degraded").await;
    redis.restart();
    traffic_until_readyz(&c, &d, "ready").await;
    d.shutdown().await.unwrap();
}
