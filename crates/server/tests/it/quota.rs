//! The upstream quota (`upstream.rate_limit_per_min`) against a real local
//! upstream on tokio's paused time: demand and warming together never
//! exceed it in any 60 s window, demand goes first, and demand beyond it
//! gets a stale answer, a short queue, then 503 with `Retry-After`.

use std::time::Duration;

use prewarm_server::clock::TokioClock;
use prewarm_server::serve::Running;
use serde_json::Value;
use tokio::time::Instant;

use crate::recording::{self, Recording};
use crate::support::{self, TestCfg, header, http};

async fn read(d: &Running, key: &str) -> reqwest::Response {
    http()
        .get(format!("http://{}/v1/quote/{key}", d.proxy_addr))
        .send()
        .await
        .expect("the proxy answers")
}

/// The most upstream calls in any 60 s window, and the calls in each
/// whole minute since `start`.
fn per_minute(rec: &Recording, start: Instant) -> (usize, Vec<usize>) {
    let times: Vec<Duration> = rec.seen().iter().map(|s| s.at - start).collect();
    let window = Duration::from_secs(60);
    let max_window = (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t - times[i] < window)
                .count()
        })
        .max()
        .unwrap_or(0);
    let minutes = times.last().map_or(0, |t| t.as_secs() / 60 + 1);
    let per_minute = (0..minutes)
        .map(|m| times.iter().filter(|t| t.as_secs() / 60 == m).count())
        .collect();
    (max_window, per_minute)
}

#[tokio::test(start_paused = true)]
async fn demand_and_warming_together_stay_within_the_upstream_quota() {
    const QUOTA: usize = 60;
    let rec = recording::spawn().await;
    let mut cfg = TestCfg::new(rec.addr);
    cfg.url = Some(rec.url());
    cfg.ttl_s = 5.0;
    cfg.upstream_extra = format!("rate_limit_per_min = {QUOTA}\ndemand_reserve_per_min = 20\n");
    // Warming asks far more than the quota: the popular keys every TTL.
    cfg.extra = "[warming]\nstrategies = \"popular\"\nmax_cost_ratio = 1000\n\
                 rate_limit_per_min = 1000\noutside_sessions = \"run\"\n"
        .into();
    let mut d = cfg.start_paused(&TokioClock::default()).await;
    d.start_driver().expect("driver starts");
    let start = Instant::now();
    let (mut misses, mut answers) = (0, 0);
    // 15 demand reads a minute over 10 keys, for 4 minutes, while warming
    // keeps them fresh.
    for i in 0..60 {
        let r = read(&d, &format!("K{}", i % 10)).await;
        assert_eq!(
            r.status(),
            200,
            "demand is never refused: {}",
            header(&r, "cache-status")
        );
        answers += 1;
        misses += usize::from(header(&r, "x-cache") == "MISS");
        tokio::time::sleep_until(start + Duration::from_secs(4 * (i + 1))).await;
    }
    let warming = rec.calls() - misses;
    // Then a minute of demand alone beyond the quota: 120 cold keys.
    let (mut refused, mut cold_misses) = (0, 0);
    for i in 0..120 {
        let r = read(&d, &format!("N{i}")).await;
        match r.status().as_u16() {
            200 => cold_misses += 1,
            503 => refused += 1,
            other => panic!("unexpected {other}"),
        }
        tokio::time::sleep_until(start + Duration::from_millis(240_000 + 500 * (i + 1))).await;
    }
    let (max_window, minutes) = per_minute(&rec, start);
    eprintln!(
        "quota {QUOTA}/min: busiest 60 s window {max_window} calls; per minute {minutes:?}; \
         minutes 1-4: {answers} demand reads, {misses} demand calls, {warming} warming calls; \
         minute 5: 120 cold reads, {cold_misses} fetched, {refused} refused 503"
    );
    assert!(max_window <= QUOTA, "{max_window} calls in one window");
    assert!(warming > 0, "warming used what demand left");
    assert!(
        minutes.iter().take(4).skip(1).all(|m| *m >= QUOTA - 20),
        "warming filled the quota up to the reserve: {minutes:?}"
    );
    assert!(
        refused > 0 && cold_misses > 0,
        "{cold_misses} fetched, {refused} refused"
    );
    d.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn demand_beyond_the_quota_is_answered_stale_or_queued_then_503_with_retry_after() {
    let rec = recording::spawn().await;
    let mut cfg = TestCfg::new(rec.addr);
    cfg.url = Some(rec.url());
    cfg.upstream_extra = "rate_limit_per_min = 5\nquota_queue_s = 2\n".into();
    let d = cfg.start_paused(&TokioClock::default()).await;
    let start = Instant::now();
    for k in ["A", "B", "C", "D", "E"] {
        assert_eq!(header(&read(&d, k).await, "x-cache"), "MISS");
    }
    // A stale entry is answered at once, without a call.
    support::put_aged(&d, "OLD", b"{\"old\":true}", 100.0, 30.0).await;
    let r = read(&d, "OLD").await;
    assert_eq!(
        (r.status().as_u16(), header(&r, "x-cache")),
        (200, "STALE".into())
    );
    assert_eq!(
        header(&r, "cache-status"),
        "prewarm; hit; ttl=-70; detail=upstream-held"
    );
    // No entry and no call frees within quota_queue_s: 503 at once, with
    // Retry-After when the oldest call leaves the window.
    let asked = Instant::now();
    let r = read(&d, "F").await;
    let waited = asked.elapsed();
    assert_eq!(r.status(), 503);
    assert!(waited < Duration::from_millis(100), "{waited:?}");
    let retry_after: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((55..=60).contains(&retry_after), "{retry_after}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_quota_exhausted");
    assert_eq!(rec.calls(), 5);
    // A second before the first call leaves the window, a read queues for it.
    tokio::time::sleep_until(start + Duration::from_secs(59)).await;
    let asked = Instant::now();
    let r = read(&d, "G").await;
    assert_eq!(
        (r.status().as_u16(), header(&r, "x-cache")),
        (200, "MISS".into())
    );
    let waited = asked.elapsed();
    assert!(waited >= Duration::from_millis(900), "queued: {waited:?}");
    assert_eq!(rec.calls(), 6);
    d.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_quota_that_holds_warming_shows_as_quota_not_a_pause_without_an_end() {
    let rec = recording::spawn().await;
    let mut cfg = TestCfg::new(rec.addr);
    cfg.url = Some(rec.url());
    // Demand keeps the whole quota: warming never has a call.
    cfg.upstream_extra = "rate_limit_per_min = 10\ndemand_reserve_per_min = 10\n".into();
    let mut d = cfg.start_paused(&TokioClock::default()).await;
    d.start_driver().expect("driver starts");
    assert_eq!(read(&d, "AAPL").await.status(), 200);
    d.driver().unwrap().sync().await.unwrap();
    let status = support::admin_json(&d, "/warming/status").await;
    assert_eq!(status["upstream"]["health"], "quota", "{status}");
    d.shutdown().await.unwrap();
}

/// A daemon with its driver, an upstream quota of 5 calls a minute (a
/// 1 s queue) and no warming, before a recording upstream.
async fn quota_of_five_without_warming() -> (Recording, Running) {
    let rec = recording::spawn().await;
    let mut cfg = TestCfg::new(rec.addr);
    cfg.url = Some(rec.url());
    cfg.upstream_extra = "rate_limit_per_min = 5\nquota_queue_s = 1\n".into();
    cfg.extra = "[warming]\nstrategies = \"none\"\n".into();
    let mut d = cfg.start_paused(&TokioClock::default()).await;
    d.start_driver().expect("driver starts");
    (rec, d)
}

/// `/warming/stats` once the driver has applied every event sent.
async fn synced_stats(d: &Running) -> Value {
    d.driver().unwrap().sync().await.unwrap();
    support::admin_json(d, "/warming/stats").await
}

/// Reads the quota refused before any call count no API call: the
/// stats' demand calls are the upstream's calls (regression: each 503
/// `upstream_quota_exhausted` counted as a demand call).
#[tokio::test(start_paused = true)]
async fn reads_the_quota_refused_count_no_api_call() {
    let (rec, d) = quota_of_five_without_warming().await;
    let mut refused = 0;
    for k in ["A", "B", "C", "D", "E", "F", "G", "H"] {
        refused += usize::from(read(&d, k).await.status() == 503);
    }
    assert_eq!((rec.calls(), refused), (5, 3));
    let stats = synced_stats(&d).await;
    let calls = &stats["datasets"]["quote"]["since_start"]["api_calls"];
    assert_eq!(calls["demand"], 5, "{stats}");
    assert_eq!(calls["total"], 5, "{stats}");
    // Regression: the cost cap's no-warming shadow counted the refused
    // reads as calls, so warming could later spend what was never made.
    let since_start = &stats["datasets"]["quote"]["since_start"];
    assert_eq!(since_start["demand_only_api_calls"], 5, "{stats}");
    d.shutdown().await.unwrap();
}

/// Regression: a read answered stale because the quota was spent made no
/// call, but the cost cap's no-warming shadow counted one for it.
#[tokio::test(start_paused = true)]
async fn stale_answers_while_the_quota_is_spent_are_no_calls_without_warming_either() {
    let (rec, d) = quota_of_five_without_warming().await;
    for k in ["A", "B", "C", "D", "E"] {
        assert_eq!(header(&read(&d, k).await, "x-cache"), "MISS");
    }
    for i in 0..10 {
        let key = format!("OLD{i}");
        support::put_aged(&d, &key, b"{\"old\":true}", 100.0, 30.0).await;
        assert_eq!(header(&read(&d, &key).await, "x-cache"), "STALE");
    }
    assert_eq!(rec.calls(), 5);
    let stats = synced_stats(&d).await;
    let quote = &stats["datasets"]["quote"];
    assert_eq!(quote["since_start"]["demand_only_api_calls"], 5, "{stats}");
    assert_eq!(quote["price"]["at_risk"], 0, "{stats}");
    d.shutdown().await.unwrap();
}
