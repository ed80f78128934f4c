//! A slow or hanging upstream, on tokio's paused time (the daemon's clock,
//! its timeouts and the upstream-sim's delay all move with `tokio::time`):
//! flights outlive their clients, stale answers respect the grace when
//! they are sent, stale-while-revalidate answers at once.

use std::time::Duration;

use prewarm_server::clock::TokioClock;
use prewarm_server::serve::Running;
use prewarm_server::service::{CacheStatus, ReadError, WarmOutcome};
use prewarm_server::upstream::FetchError;
use prewarm_server::upstream_sim::SimHandle;
use serde_json::Value;
use tokio::time::{Instant, sleep};

use crate::support::{self, TestCfg, header, http};

/// `(status, X-Cache, Age, seq)` of a proxied read of quote/`key`.
async fn read(d: &Running, key: &str) -> (u16, String, u64, Option<u64>) {
    let r = support::get(&http(), format!("http://{}/v1/quote/{key}", d.proxy_addr)).await;
    let (status, cache) = (r.status().as_u16(), header(&r, "x-cache"));
    let age = header(&r, "age").parse().unwrap_or(u64::MAX);
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, cache, age, body["seq"].as_u64())
}

/// A daemon with request timeout 2 s in front of an upstream taking 3 s
/// (upstream timeout 5 s, no retries).
async fn slow(extra: &str) -> (SimHandle, Running) {
    let sim = support::sim(|c| c.latency_ms = 3_000).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.request_timeout_s = 2.0;
    cfg.extra = extra.into();
    let d = cfg.start_paused(&TokioClock::default()).await;
    (sim, d)
}

#[tokio::test(start_paused = true)]
async fn fetch_outlives_the_client_who_started_it_and_the_next_read_is_fresh() {
    let (sim, d) = slow("stale_while_revalidate_s = 0\n").await;
    let svc = d.service.clone();
    // A cold key: the client gives up at 2 s, the flight lands at 3 s.
    let t0 = Instant::now();
    let first = svc.read("quote", "COLD", None).await;
    assert_eq!(first.unwrap_err(), ReadError::Timeout);
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
    // A read at 2 s joins the same flight and gets its value at 3 s.
    let second = svc.read("quote", "COLD", None).await.unwrap();
    assert_eq!(second.status, CacheStatus::Miss);
    assert_eq!(t0.elapsed(), Duration::from_secs(3));
    assert_eq!(
        svc.read("quote", "COLD", None).await.unwrap().status,
        CacheStatus::Hit
    );
    assert_eq!(sim.stats().requests, 1, "one flight, one call");

    // A cached key past its TTL: STALE while the refresh runs, then fresh.
    support::put_aged(&d, "CACHED", b"{\"seq\":0}", 31.0, 30.0).await;
    let (status, cache, age, seq) = read(&d, "CACHED").await;
    assert_eq!(
        (status, cache.as_str(), age, seq),
        (200, "STALE", 33, Some(0))
    );
    let (_, cache, age, seq) = read(&d, "CACHED").await;
    assert_eq!((cache.as_str(), age), ("MISS", 0), "joined the flight");
    let (_, hit, _, again) = read(&d, "CACHED").await;
    assert_eq!((hit.as_str(), again), ("HIT", seq));
    assert_eq!(sim.stats().requests, 2);

    // Warming alike: it waits for its flight past the request timeout.
    let w = svc.warm("quote", "WARMED", "popular").await;
    assert!(matches!(w, Ok(WarmOutcome::Fetched { .. })), "{w:?}");
    assert_eq!(
        svc.read("quote", "WARMED", None).await.unwrap().status,
        CacheStatus::Hit
    );
    assert_eq!(sim.stats().requests, 3);
    d.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn reads_during_a_slow_upstream_cost_one_call_per_flight() {
    let (sim, d) = slow("").await;
    let svc = d.service.clone();
    let reads: Vec<_> = (0..6)
        .map(|i| {
            let svc = svc.clone();
            tokio::spawn(async move {
                sleep(Duration::from_millis(400 * i)).await;
                svc.read("quote", "AAPL", None).await
            })
        })
        .collect();
    let mut timeouts = 0;
    for r in reads {
        match r.await.unwrap() {
            Err(ReadError::Timeout) => timeouts += 1,
            Ok(s) => assert_eq!(s.status, CacheStatus::Miss),
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(timeouts, 3, "reads at 0, 0.4 and 0.8 s gave up before 3 s");
    assert_eq!(sim.stats().requests, 1);
    assert_eq!(
        svc.read("quote", "AAPL", None).await.unwrap().status,
        CacheStatus::Hit
    );
    assert_eq!(sim.stats().requests, 1);
    d.shutdown().await.unwrap();
}

/// ttl 2 s, grace 1 s, an upstream that hangs (60 s; its timeout 5 s),
/// request timeout 10 s.
async fn hanging(extra: &str) -> (SimHandle, Running) {
    let sim = support::sim(|c| c.latency_ms = 60_000).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.ttl_s = 2.0;
    cfg.stale_grace_s = 1.0;
    cfg.request_timeout_s = 10.0;
    cfg.extra = extra.into();
    let d = cfg.start_paused(&TokioClock::default()).await;
    (sim, d)
}

#[tokio::test(start_paused = true)]
async fn stale_grace_is_checked_when_the_answer_is_sent_not_when_the_request_arrives() {
    // Waiting for the refresh: the wait is capped at the grace left.
    let (_sim, d) = hanging("stale_while_revalidate_s = 0\n").await;
    support::put_aged(&d, "A", b"{\"seq\":0}", 2.5, 2.0).await;
    let t0 = Instant::now();
    let (status, cache, age, _) = read(&d, "A").await;
    assert_eq!(
        (status, cache.as_str(), age),
        (200, "STALE", 3),
        "at the grace's end"
    );
    assert_eq!(t0.elapsed(), Duration::from_millis(500));
    // Past the grace there is nothing stale to serve: the upstream's
    // timeout (5 s) ends the read, never a STALE with Age 12.
    let (status, cache, ..) = read(&d, "A").await;
    assert_eq!((status, cache.as_str()), (504, ""));
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(5),
        "the first read's flight"
    );
    d.shutdown().await.unwrap();

    // Stale-while-revalidate (the default, the whole grace): at once.
    let (_sim, d) = hanging("").await;
    support::put_aged(&d, "A", b"{\"seq\":0}", 2.5, 2.0).await;
    let t0 = Instant::now();
    let (status, cache, age, _) = read(&d, "A").await;
    assert_eq!((status, cache.as_str(), age), (200, "STALE", 2));
    assert_eq!(t0.elapsed(), Duration::ZERO);
    d.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn stale_entry_is_answered_at_once_and_refreshed_once_in_the_background() {
    let (sim, d) = slow("").await;
    support::put_aged(&d, "MSFT", b"{\"seq\":0}", 40.0, 30.0).await;
    let t0 = Instant::now();
    let reads = futures::future::join_all((0..10).map(|_| read(&d, "MSFT"))).await;
    for (status, cache, age, seq) in &reads {
        assert_eq!(
            (*status, cache.as_str(), *age, *seq),
            (200, "STALE", 40, Some(0))
        );
    }
    assert_eq!(t0.elapsed(), Duration::ZERO, "not held behind the upstream");
    sleep(Duration::from_secs(3)).await;
    let (_, cache, age, seq) = read(&d, "MSFT").await;
    assert_eq!((cache.as_str(), age), ("HIT", 0));
    assert!(seq.unwrap() >= 1, "the refreshed value");
    assert_eq!(sim.stats().requests, 1, "one coalesced refresh");
    assert_eq!(d.service.in_flight(), 0);
    d.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_flight_that_times_out_reaches_its_readers_as_a_timeout() {
    // The upstream hangs past its own timeout: the flight ends at 5 s.
    let (sim, d) = hanging("").await;
    let r = d.service.read("quote", "HANG", None).await;
    assert_eq!(r.unwrap_err(), ReadError::Fetch(FetchError::Timeout));
    assert_eq!(sim.stats().requests, 1);
    d.shutdown().await.unwrap();
}
