//! Warming cycles through the library API (`DriverClient::warm_*`, the
//! seed's calls) against the upstream-sim over real HTTP: the budget they
//! spend, what they skip, failed fetches, predictions from client
//! sessions, refusal when warming is off, and shutdown with orders queued.

use std::sync::Arc;
use std::time::Duration;

use prewarm_server::clock::SystemClock;
use prewarm_server::driver::{SkipReason, WarmReport};
use prewarm_server::serve::Running;

use crate::driver::{cfg, read, start};
use crate::support::{self, http};

fn warmed(r: &WarmReport) -> Vec<&str> {
    r.warmed.iter().map(|k| k.key.as_str()).collect()
}

/// A daemon (TTL 1 s, engine strategies off) that has served `reads`
/// (key, times) and waited for every entry to go stale.
async fn stale_daemon(
    sim: &prewarm_server::upstream_sim::SimHandle,
    dir: &std::path::Path,
    warming: &str,
    reads: &[(&str, usize)],
) -> Running {
    let c = cfg(
        sim.addr(),
        dir,
        1.0,
        &format!("strategies = \"none\"\n{warming}"),
    );
    let d = start(&c, Arc::new(SystemClock)).await;
    let h = http();
    for (key, times) in reads {
        for _ in 0..*times {
            read(&h, &d, key).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(1100)).await; // all stale
    d.driver().unwrap().sync().await.unwrap();
    d
}

#[tokio::test]
async fn warm_popular_spends_the_budget_on_the_best_keys_and_skips_the_rest() {
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let reads = [("AAPL", 3), ("MSFT", 2), ("NVDA", 1)];
    // The cost cap is lifted: the test is about the token budget alone (the
    // cap may count a key at risk when a fetch lands later than planned).
    let warming = "rate_limit_per_min = 2\nmax_cost_ratio = 1000";
    let d = stale_daemon(&sim, dir.path(), warming, &reads).await;
    let r = d.driver().unwrap().warm_popular(10).await.unwrap();
    assert_eq!(r.strategies, ["popular"]);
    assert_eq!(warmed(&r), ["AAPL", "MSFT"], "{r:?}");
    assert_eq!(r.skipped.len(), 1, "{r:?}");
    assert_eq!(r.skipped[0].key, "NVDA");
    assert_eq!(r.skipped[0].reason, SkipReason::NoBudget);
    assert!(r.failed.is_empty());
    // Warmed means fresh: both read as hits without an upstream call.
    let calls = sim.stats().quote_requests;
    assert_eq!(read(&http(), &d, "AAPL").await.0, "HIT");
    assert_eq!(read(&http(), &d, "MSFT").await.0, "HIT");
    assert_eq!(sim.stats().quote_requests, calls);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn failed_cycle_fetches_are_reported_per_key_and_can_be_retried() {
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let reads = [("AAPL", 2), ("MSFT", 1)];
    let d = stale_daemon(&sim, dir.path(), "", &reads).await;
    sim.set_error_rate(1.0);
    let r = d.driver().unwrap().warm_popular(10).await.unwrap();
    assert!(r.warmed.is_empty(), "{r:?}");
    let mut failed: Vec<&str> = r.failed.iter().map(|f| f.key.as_str()).collect();
    failed.sort();
    assert_eq!(failed, ["AAPL", "MSFT"]);
    assert!(r.failed.iter().all(|f| !f.error.is_empty()));
    // The failures ended the engine's orders: nothing is left in flight.
    sim.set_error_rate(0.0);
    let r = d.driver().unwrap().warm_popular(10).await.unwrap();
    assert_eq!(r.warmed.len(), 2, "{r:?}");
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn warm_predictive_fetches_what_a_client_opens_next() {
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(sim.addr(), dir.path(), 1.0, "strategies = \"none\"");
    let d = start(&c, Arc::new(SystemClock)).await;
    let h = http();
    for _ in 0..5 {
        for key in ["NVDA", "AMD"] {
            let url = format!("http://{}/v1/quote/{key}", d.proxy_addr);
            let r = h.get(url).header("x-client-id", "desk-1").send().await;
            assert_eq!(r.unwrap().status(), 200);
        }
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    d.driver().unwrap().sync().await.unwrap();
    let r = d
        .driver()
        .unwrap()
        .warm_predictive(&["NVDA"])
        .await
        .unwrap();
    assert_eq!(r.strategies, ["predictive"]);
    assert_eq!(warmed(&r), ["AMD"], "{r:?}");
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cycle_is_refused_while_warming_is_disabled() {
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let d = stale_daemon(&sim, dir.path(), "enabled = false", &[("AAPL", 1)]).await;
    let r = d.driver().unwrap().warm_popular(10).await.unwrap();
    assert_eq!(r.refused.as_deref(), Some("warming disabled"));
    assert_eq!(r.ordered, 0);
    assert_eq!(sim.stats().quote_requests, 1, "only the demand fetch");
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_answers_a_cycle_with_its_queued_fetches_failed() {
    let sim = support::sim(|s| s.latency_ms = 300).await;
    let dir = tempfile::tempdir().unwrap();
    let reads = [("A", 1), ("B", 1), ("C", 1), ("D", 1)];
    let d = stale_daemon(&sim, dir.path(), "max_concurrent = 1", &reads).await;
    let client = d.driver().unwrap().clone();
    let cycle = tokio::spawn(async move { client.warm_popular(10).await });
    // Once the first fetch is in flight, the other three wait for its slot.
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while d.driver().unwrap().view().cycles.queued_fetches < 3 {
        assert!(
            tokio::time::Instant::now() < until,
            "the cycle never queued"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    d.shutdown().await.unwrap();
    let r = cycle.await.unwrap().expect("the cycle is answered");
    assert_eq!(r.warmed.len() + r.failed.len(), 4, "{r:?}");
    let stopping = r
        .failed
        .iter()
        .filter(|f| f.error.contains("stopping"))
        .count();
    assert_eq!(stopping, 3, "{r:?}");
}
