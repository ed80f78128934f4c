//! One conformance suite, run for every store backend.

use std::sync::Arc;

use bytes::Bytes;
use prewarm_server::clock::{Clock, SystemClock};
use prewarm_server::store::{Entry, MemoryStore, RedisAuth, RedisStore, RedisTarget, Store};

use crate::support;

const GRACE_S: f64 = 60.0;

fn entry(body: &str, fetched_at_s: f64) -> Entry {
    Entry {
        body: Bytes::from(body.to_string()),
        fetched_at_s,
        content_type: Some("application/json".into()),
        ..Default::default()
    }
}

/// The behaviour every `Store` must have (retention = ttl + 60 s grace).
async fn conformance<S: Store + ?Sized>(store: &S, clock: &dyn Clock) {
    let now = clock.now_s();
    // missing
    assert_eq!(store.get("quote", "NONE").await.unwrap(), None);
    // round trip, exact fetch time and content type
    let e = entry(r#"{"p":1}"#, now - 0.123_456);
    store.put("quote", "AAPL", e.clone(), 10.0).await.unwrap();
    assert_eq!(store.get("quote", "AAPL").await.unwrap(), Some(e.clone()));
    // overwrite replaces
    let e2 = entry(r#"{"p":2}"#, now);
    store.put("quote", "AAPL", e2.clone(), 10.0).await.unwrap();
    assert_eq!(store.get("quote", "AAPL").await.unwrap(), Some(e2.clone()));
    // datasets are separate namespaces
    assert_eq!(store.get("bars_1d", "AAPL").await.unwrap(), None);
    // keys with dots, dashes and colons
    for k in ["BRK.B", "BF-B", "X:Y"] {
        store.put("quote", k, entry(k, now), 10.0).await.unwrap();
        assert_eq!(
            store.get("quote", k).await.unwrap().unwrap().body,
            Bytes::from(k)
        );
    }
    // stale but within grace is kept (for STALE serving)
    let stale = entry("stale", now - 30.0);
    store
        .put("quote", "STALE", stale.clone(), 10.0)
        .await
        .unwrap();
    assert_eq!(store.get("quote", "STALE").await.unwrap(), Some(stale));
    // past ttl + grace is not kept
    store
        .put("quote", "GONE", entry("old", now - 10_000.0), 10.0)
        .await
        .unwrap();
    assert_eq!(store.get("quote", "GONE").await.unwrap(), None);
    // an expired put removes an older live value
    store
        .put("quote", "AAPL", entry("old", now - 10_000.0), 10.0)
        .await
        .unwrap();
    assert_eq!(store.get("quote", "AAPL").await.unwrap(), None);
    // no content type round-trips as None
    let bare = Entry {
        content_type: None,
        ..entry("bare", now)
    };
    store
        .put("quote", "BARE", bare.clone(), 10.0)
        .await
        .unwrap();
    assert_eq!(store.get("quote", "BARE").await.unwrap(), Some(bare));
    // len and bytes: BRK.B, BF-B, X:Y, STALE, BARE
    assert_eq!(store.len().await.unwrap(), 5);
    assert!(store.approx_bytes().await.unwrap() >= 5 + 4 + 3 + 5 + 4);
    // remove
    assert!(store.remove("quote", "BARE").await.unwrap());
    assert!(!store.remove("quote", "BARE").await.unwrap());
    assert_eq!(store.get("quote", "BARE").await.unwrap(), None);
    assert_eq!(store.len().await.unwrap(), 4);
    // remove_dataset drops one dataset's entries and counts them
    store
        .put("bars_1d", "AAPL", entry("bar", now), 10.0)
        .await
        .unwrap();
    store
        .put("quote_x", "AAPL", entry("x", now), 10.0)
        .await
        .unwrap();
    assert_eq!(store.remove_dataset("quote").await.unwrap(), 4);
    assert_eq!(store.get("quote", "STALE").await.unwrap(), None);
    assert_eq!(store.len().await.unwrap(), 2, "other datasets keep theirs");
    assert!(store.get("bars_1d", "AAPL").await.unwrap().is_some());
    assert!(store.get("quote_x", "AAPL").await.unwrap().is_some());
    assert_eq!(store.remove_dataset("quote").await.unwrap(), 0);
    assert_eq!(store.remove_dataset("bars_1d").await.unwrap(), 1);
    assert_eq!(store.remove_dataset("quote_x").await.unwrap(), 1);
    assert!(store.is_empty().await.unwrap());
}

/// Entries expire in real time too (short TTL: the one real wait here).
async fn expires_in_time<S: Store + ?Sized>(store: &S, clock: &dyn Clock) {
    let now = clock.now_s();
    // retention left: 0.3 s
    store
        .put("quote", "SHORT", entry("s", now - GRACE_S), 0.3)
        .await
        .unwrap();
    assert!(store.get("quote", "SHORT").await.unwrap().is_some());
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    assert_eq!(store.get("quote", "SHORT").await.unwrap(), None);
}

#[tokio::test]
async fn memory_store_conforms() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = MemoryStore::new(16, GRACE_S, clock.clone());
    conformance(&store, clock.as_ref()).await;
    expires_in_time(&store, clock.as_ref()).await;
}

/// A real redis-server (None when absent and not required) and a store on it.
async fn redis_store() -> Option<(support::RedisGuard, RedisStore, Arc<dyn Clock>)> {
    let redis = support::redis()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = RedisStore::connect(&redis.url(), GRACE_S, clock.clone())
        .await
        .unwrap();
    Some((redis, store, clock))
}

#[tokio::test]
async fn redis_store_conforms() {
    let Some((_redis, store, clock)) = redis_store().await else {
        return;
    };
    conformance(&store, clock.as_ref()).await;
    expires_in_time(&store, clock.as_ref()).await;
}

/// Redis over TLS (`rediss://`) with a self-signed certificate trusted
/// through `store.redis_ca_file`: the same suite.
#[tokio::test]
async fn redis_tls_store_conforms() {
    let Some((redis, ca_pem)) = support::redis_tls() else {
        return;
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let auth = RedisAuth {
        ca_pem: Some(ca_pem),
        ..RedisAuth::default()
    };
    let store = RedisStore::connect_to(RedisTarget::new(url.clone(), auth), GRACE_S, clock.clone())
        .await
        .expect("TLS connection with the CA");
    conformance(&store, clock.as_ref()).await;
    expires_in_time(&store, clock.as_ref()).await;
    // Without the CA the self-signed certificate is refused, clearly.
    let err = RedisStore::connect(&url, GRACE_S, clock.clone())
        .await
        .expect_err("untrusted certificate")
        .to_string();
    assert!(err.contains(&format!("Redis at {url}")), "{err}");
}

#[tokio::test]
async fn redis_store_uses_prefixed_keys_with_ttl() {
    let Some((redis, store, clock)) = redis_store().await else {
        return;
    };
    store
        .put("quote", "AAPL", entry("{}", clock.now_s()), 10.0)
        .await
        .unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg("prewarm:quote:AAPL")
        .query_async(&mut conn)
        .await
        .unwrap();
    // ttl 10 s + grace 60 s
    assert!(pttl > 68_000 && pttl <= 70_000, "PTTL {pttl}");
}

#[tokio::test]
async fn memory_store_stays_under_its_byte_cap() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = MemoryStore::new(1, GRACE_S, clock.clone());
    let body = "x".repeat(10 * 1024);
    let now = clock.now_s();
    // 2,000 × 10 KiB ≈ 20 MiB into a 1 MiB store
    for i in 0..2_000 {
        store
            .put("quote", &format!("K{i}"), entry(&body, now), 600.0)
            .await
            .unwrap();
    }
    store.sync().await;
    let bytes = store.approx_bytes().await.unwrap();
    assert!(
        bytes <= store.limit_bytes(),
        "{bytes} > {}",
        store.limit_bytes()
    );
    let n = store.len().await.unwrap();
    assert!(n > 0 && n < 2_000, "kept {n} entries");
    assert!(
        bytes > store.limit_bytes() / 2,
        "the cap is used, not emptied: {bytes}"
    );
}
