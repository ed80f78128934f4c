//! The daemon on a Redis store, and the sidecar write-through.

use serde_json::Value;

use crate::support::{self, TestCfg, get, header, http};

#[tokio::test]
async fn daemon_on_redis_store_reads_through_and_ages_exactly() {
    let Some(redis) = support::redis() else {
        return;
    };
    let sim = support::sim(|_| {}).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.store = redis.url();
    let d = cfg.start().await;
    let c = http();
    let url = format!("http://{}/v1/quote/AAPL", d.proxy_addr);
    assert_eq!(header(&get(&c, url.clone()).await, "x-cache"), "MISS");
    assert_eq!(header(&get(&c, url.clone()).await, "x-cache"), "HIT");
    assert_eq!(sim.stats().requests, 1);

    // Age from the fetch time stored in Redis.
    let store = d.service.store();
    let mut entry = store.get("quote", "AAPL").await.unwrap().unwrap();
    entry.fetched_at_s -= 7.0;
    store.put("quote", "AAPL", entry, 30.0).await.unwrap();
    let r = get(&c, url).await;
    assert_eq!(header(&r, "x-cache"), "HIT");
    let age: u64 = header(&r, "age").parse().unwrap();
    assert!((7..=8).contains(&age), "Age {age}");

    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg("prewarm:quote:AAPL")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(exists);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn sidecar_writes_fetched_values_into_the_app_redis() {
    let Some(app_redis) = support::redis() else {
        return;
    };
    let sim = support::sim(|_| {}).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.extra = format!(
        "[datasets.quote.sidecar]\nredis = \"{}\"\nkey_template = \"quote:{{key}}\"\nttl_s = 20\n",
        app_redis.url()
    );
    let d = cfg.start().await;
    d.service.warm("quote", "TSLA", "popular").await.unwrap();
    let r = get(&http(), format!("http://{}/v1/quote/AMZN", d.proxy_addr)).await;
    assert_eq!(r.status(), 200);

    let client = redis::Client::open(app_redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // The write happens right after the flight completes; allow it a moment.
    let mut tsla: Option<String> = None;
    for _ in 0..100 {
        tsla = redis::cmd("GET")
            .arg("quote:TSLA")
            .query_async(&mut conn)
            .await
            .unwrap();
        if tsla.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let body: Value = serde_json::from_str(&tsla.expect("warmed value written")).unwrap();
    assert_eq!(body["symbol"], "TSLA");
    let pttl: i64 = redis::cmd("PTTL")
        .arg("quote:TSLA")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(pttl > 18_000 && pttl <= 20_000, "PTTL {pttl}");
    d.shutdown().await.unwrap();
}
