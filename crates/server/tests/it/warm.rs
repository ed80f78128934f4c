//! Warming: no access recorded, a warming FetchEvent, joins flights,
//! bounded by max_concurrent.

use std::time::Duration;

use futures::future::join_all;
use prewarm_core::strategy::StrategyId;
use prewarm_server::events::FetchOrigin;
use prewarm_server::service::WarmOutcome;

use crate::support::{self, TestCfg, header, http};

#[tokio::test]
async fn warming_fetches_without_recording_an_access() {
    let sim = support::sim(|_| {}).await;
    let mut d = TestCfg::new(sim.addr()).start().await;
    let mut events = d.take_events().unwrap();
    let out = d.service.warm("quote", "NVDA", "popular").await.unwrap();
    assert!(matches!(out, WarmOutcome::Fetched { .. }), "{out:?}");
    let f = events.fetches.recv().await.unwrap();
    assert_eq!((f.key.as_ref(), f.ok), ("NVDA", true));
    assert_eq!(f.origin, FetchOrigin::Warm(StrategyId::Popular));
    assert!(
        events.accesses.try_recv().is_err(),
        "warming is not an access"
    );

    let r = support::get(&http(), format!("http://{}/v1/quote/NVDA", d.proxy_addr)).await;
    assert_eq!(header(&r, "x-cache"), "HIT", "a warmed key hits");
    assert!(events.accesses.recv().await.unwrap().hit);
    // warming a fresh key refreshes it (refresh-ahead): a second call
    d.service.warm("quote", "NVDA", "refresh").await.unwrap();
    assert_eq!(sim.stats().requests, 2);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn warming_joins_a_demand_fetch_in_flight() {
    let sim = support::sim(|c| c.latency_ms = 300).await;
    let d = TestCfg::new(sim.addr()).start().await;
    let url = format!("http://{}/v1/quote/AMD", d.proxy_addr);
    let demand = tokio::spawn(async move { http().get(url).send().await.unwrap().status() });
    while sim.stats().requests == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let out = d.service.warm("quote", "AMD", "trending").await.unwrap();
    assert!(matches!(out, WarmOutcome::Joined { .. }), "{out:?}");
    assert_eq!(demand.await.unwrap(), 200);
    assert_eq!(sim.stats().requests, 1);
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_respects_max_concurrent() {
    let sim = support::sim(|c| c.latency_ms = 150).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.max_concurrent = 2;
    let d = cfg.start().await;
    let keys = ["A", "B", "C", "D", "E", "F"];
    let results = join_all(keys.iter().map(|k| d.service.warm("quote", k, "popular"))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let stats = sim.stats();
    assert_eq!(stats.requests, 6);
    assert_eq!(stats.max_in_flight, 2, "{stats:?}");
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn warming_rejects_bad_keys_without_calling_upstream() {
    let sim = support::sim(|_| {}).await;
    let d = TestCfg::new(sim.addr()).start().await;
    assert!(d.service.warm("quote", "bad key", "popular").await.is_err());
    assert!(d.service.warm("nope", "AAPL", "popular").await.is_err());
    assert_eq!(sim.stats().requests, 0);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn warming_charged_to_an_unknown_strategy_name_is_refused() {
    let sim = support::sim(|_| {}).await;
    let d = TestCfg::new(sim.addr()).start().await;
    let w = d.service.warm("quote", "AAPL", "bogus").await;
    assert!(
        matches!(
            w,
            Err(prewarm_server::service::WarmError::UnknownStrategy(_))
        ),
        "{w:?}"
    );
    let typed = d.service.warm("quote", "AAPL", StrategyId::Sector).await;
    assert!(
        matches!(typed, Ok(WarmOutcome::Fetched { .. })),
        "{typed:?}"
    );
    assert_eq!(sim.stats().requests, 1, "only the typed call fetched");
    d.shutdown().await.unwrap();
}
