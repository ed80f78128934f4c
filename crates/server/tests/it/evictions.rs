//! Memory-store evictions reach the engine: filled past a tiny
//! `memory_limit_mb` through the proxy, the driver's engine counts exactly
//! the entries the store still holds, and a read of an evicted key is a
//! miss for both.

use prewarm_server::serve::{self, Running};

use crate::support::{TestCfg, get, header, http, sim};

const KEYS: usize = 8_000; // ~200 weighed bytes each: ~1.5 MiB into 1 MiB

async fn engine_and_store(d: &Running) -> (prewarm_server::driver::DatasetView, u64) {
    // `len` runs moka's pending evictions, which queue their events.
    let held = d.service.store().len().await.unwrap();
    let view = d.driver().unwrap().sync().await.unwrap();
    (view.datasets["quote"].clone(), held)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_entries_are_no_longer_cached_for_the_engine() {
    let upstream = sim(|_| {}).await;
    let state = tempfile::tempdir().unwrap();
    let mut c = TestCfg::new(upstream.addr());
    c.state_dir = state.path().to_path_buf();
    c.batch = true;
    // No warming: only the requests below store entries.
    c.extra = "[warming]\nenabled = false\n".into();
    let mut config = c.config(&|_| None);
    config.store.memory_limit_mb = 1;
    let mut d = serve::start(config).await.expect("daemon starts");
    d.start_driver().expect("driver starts");

    let client = http();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("K{i:05}")).collect();
    for chunk in keys.chunks(1_000) {
        let url = format!("http://{}/v1/quote?keys={}", d.proxy_addr, chunk.join(","));
        assert_eq!(get(&client, url).await.status(), 200);
    }
    let (ds, held) = engine_and_store(&d).await;
    assert!(
        held < KEYS as u64 * 3 / 4,
        "the cap dropped entries: {held} held"
    );
    assert!(ds.evictions.cached > 0, "{:?}", ds.evictions);
    assert_eq!(
        ds.cached_entries as u64, held,
        "the engine counts as cached exactly what the store holds"
    );
    let status = d.driver().unwrap().view();
    assert_eq!(status.events.dropped_evictions, 0);
    assert!(status.events.evictions >= ds.evictions.cached);

    // Read an evicted key: a miss at the proxy, and for the engine.
    let mut evicted = None;
    for k in &keys {
        if d.service.store().get("quote", k).await.unwrap().is_none() {
            evicted = Some(k.clone());
            break;
        }
    }
    let evicted = evicted.expect("some key was evicted");
    let before = ds.total.clone();
    let r = get(
        &client,
        format!("http://{}/v1/quote/{evicted}", d.proxy_addr),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-cache"), "MISS");
    let (ds, held) = engine_and_store(&d).await;
    assert_eq!(ds.total.requests, before.requests + 1);
    assert_eq!(
        ds.total.hits, before.hits,
        "the engine counted the miss as a miss"
    );
    assert_eq!(ds.cached_entries as u64, held);
    d.shutdown().await.unwrap();
}
