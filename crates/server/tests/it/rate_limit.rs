//! 429 handling against an upstream-sim with a real rate limit: pauses,
//! Retry-After in both forms, the warming rate.

use std::sync::Arc;
use std::time::Duration;

use prewarm_server::clock::{Clock, TokioClock};
use prewarm_server::serve::Running;
use prewarm_server::service::{ReadError, WarmError};
use prewarm_server::upstream::FetchError;
use prewarm_server::upstream_sim::{RetryAfterForm, SimHandle};
use serde_json::Value;
use tokio::time::{Instant, sleep};

use crate::support::{self, TestCfg, get, header, http};

#[tokio::test(start_paused = true)]
async fn rate_limited_upstream_serves_stale_and_pauses_warming() {
    let sim = support::sim(|c| c.rate_limit_per_min = Some(5)).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.request_timeout_s = 2.0;
    let d = cfg.start_paused(&TokioClock::default()).await;
    let c = http();
    for k in ["A", "B", "C", "D", "E"] {
        let r = get(&c, format!("http://{}/v1/quote/{k}", d.proxy_addr)).await;
        assert_eq!(
            (r.status().as_u16(), header(&r, "x-cache")),
            (200, "MISS".into())
        );
    }
    let now = d.service.clock().now_s();
    support::put_aged(&d, "F", b"{\"symbol\":\"F\",\"old\":true}", 100.0, 30.0).await;

    // The client gets the stale entry at once; its refresh meets the limit.
    let r = get(&c, format!("http://{}/v1/quote/F", d.proxy_addr)).await;
    assert_eq!(
        (r.status().as_u16(), header(&r, "x-cache")),
        (200, "STALE".into())
    );
    let age: u64 = header(&r, "age").parse().unwrap();
    assert!(age >= 100);
    sleep(Duration::from_millis(10)).await;
    assert_eq!(sim.stats().rate_limited, 1);

    // Retry-After (12 s at 5/min) pauses warming: no upstream call.
    let upstream = d.service.upstream();
    assert!(
        upstream.paused_until_s() > now + 5.0,
        "paused until {}",
        upstream.paused_until_s()
    );
    let before = sim.stats().requests;
    let w = d.service.warm("quote", "G", "popular").await;
    assert!(matches!(w, Err(WarmError::Paused { .. })), "{w:?}");
    // While paused a stale entry is served without asking upstream.
    let r = get(&c, format!("http://{}/v1/quote/F", d.proxy_addr)).await;
    assert_eq!(header(&r, "x-cache"), "STALE");
    // No stale entry and a pause longer than the request timeout: 503 with
    // Retry-After, still without an upstream call.
    let r = get(&c, format!("http://{}/v1/quote/H", d.proxy_addr)).await;
    assert_eq!(r.status(), 503);
    assert!(header(&r, "retry-after").parse::<u64>().unwrap() >= 1);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_rate_limited");
    assert_eq!(
        sim.stats().requests,
        before,
        "nothing called upstream while paused"
    );
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demand_miss_waits_out_a_short_retry_after() {
    // 60/min with burst 1: the second call within a second gets 429 and
    // Retry-After: 1; the client request waits and is then served.
    let sim = support::sim(|c| {
        c.rate_limit_per_min = Some(60);
        c.burst = Some(1);
    })
    .await;
    let d = TestCfg::new(sim.addr()).start().await; // request timeout 5 s
    let c = http();
    let a = get(&c, format!("http://{}/v1/quote/A", d.proxy_addr)).await;
    assert_eq!(a.status(), 200);
    let b = get(&c, format!("http://{}/v1/quote/B", d.proxy_addr)).await;
    assert_eq!(
        (b.status().as_u16(), header(&b, "x-cache")),
        (200, "MISS".into())
    );
    let stats = sim.stats();
    assert!(stats.rate_limited >= 1, "{stats:?}");
    assert_eq!(stats.served, 2);
    d.shutdown().await.unwrap();
}

/// A daemon on paused time in front of a sim allowing one call a minute
/// whose 429s carry `retry_after`; `upstream` lines go to `[upstream]`.
async fn limited(
    clock: &TokioClock,
    retry_after: RetryAfterForm,
    upstream: &str,
) -> (SimHandle, Running) {
    let clock = *clock;
    let sim = support::sim(|c| {
        c.rate_limit_per_min = Some(1);
        c.burst = Some(1);
        c.retry_after = retry_after;
        c.clock = Arc::new(clock);
    })
    .await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.upstream_extra = upstream.into();
    let d = cfg.start_paused(&clock).await;
    (sim, d)
}

/// Seconds the upstream is paused for from now.
fn paused_for_s(d: &Running) -> f64 {
    d.service.upstream().paused_until_s() - d.service.clock().now_s()
}

#[tokio::test(start_paused = true)]
async fn retry_after_http_date_pauses_until_that_date_then_one_probe_goes() {
    let clock = TokioClock::default();
    let date = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + Duration::from_secs(clock.now_s().ceil() as u64 + 120),
    );
    let (sim, d) = limited(&clock, RetryAfterForm::Fixed(date), "").await;
    let svc = d.service.clone();
    svc.read("quote", "A", None).await.unwrap();
    let e = svc.read("quote", "B", None).await.unwrap_err();
    assert!(
        matches!(e, ReadError::Fetch(FetchError::RateLimited { .. })),
        "{e:?}"
    );
    let paused = paused_for_s(&d);
    assert!(
        (119.0..=121.0).contains(&paused),
        "paused {paused} s, not 1 s"
    );
    sleep(Duration::from_secs(100)).await;
    assert!(svc.read("quote", "C", None).await.is_err());
    assert_eq!(sim.stats().requests, 2, "nothing called during the pause");
    sleep(Duration::from_secs_f64(paused_for_s(&d))).await;
    assert!(svc.read("quote", "D", None).await.is_ok(), "the probe");
    assert_eq!(sim.stats().requests, 3);

    // The sim's own HTTP-date form: the wait to its next token (60 s).
    let (_sim, d) = limited(&clock, RetryAfterForm::HttpDate, "").await;
    d.service.read("quote", "A", None).await.unwrap();
    assert!(d.service.read("quote", "B", None).await.is_err());
    let paused = paused_for_s(&d);
    assert!((58.0..=61.0).contains(&paused), "paused {paused} s");
}

#[tokio::test(start_paused = true)]
async fn retry_after_that_is_not_digits_is_ignored_and_a_huge_one_is_capped() {
    let clock = TokioClock::default();
    for bad in ["1e9", "-1", "1.5"] {
        let (_sim, d) = limited(&clock, RetryAfterForm::Fixed(bad.into()), "").await;
        d.service.read("quote", "A", None).await.unwrap();
        assert!(d.service.read("quote", "B", None).await.is_err());
        let paused = paused_for_s(&d);
        assert!((0.5..=1.0).contains(&paused), "{bad}: paused {paused} s");
    }
    let huge = RetryAfterForm::Fixed("99999999999".into());
    let (sim, d) = limited(&clock, huge, "retry_after_max_s = 30\n").await;
    let svc = d.service.clone();
    svc.read("quote", "A", None).await.unwrap();
    assert!(svc.read("quote", "B", None).await.is_err());
    let paused = paused_for_s(&d);
    assert!((29.0..=30.0).contains(&paused), "capped: paused {paused} s");
    // 20 s of pause left, more than a client waits: refused, no call.
    sleep(Duration::from_secs(10)).await;
    assert!(svc.read("quote", "C", None).await.is_err());
    assert_eq!(sim.stats().requests, 2);
    // 1 s left: the read waits it out and probes (the sim still limits:
    // 429 again, paused again for the cap).
    sleep(Duration::from_secs(19)).await;
    let started = Instant::now();
    assert!(svc.read("quote", "D", None).await.is_err());
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(sim.stats().requests, 3);
    assert!(paused_for_s(&d) > 29.0);
}

#[tokio::test(start_paused = true)]
async fn warming_backs_off_and_adapts_to_the_upstream_rate_limit() {
    let clock = TokioClock::default();
    let sim = support::sim(|c| {
        c.rate_limit_per_min = Some(30);
        c.burst = Some(5);
    })
    .await;
    let d = TestCfg::new(sim.addr()).start_paused(&clock).await;
    let svc = d.service.clone();
    // The driver's loop: warm while the upstream does not hold warming
    // back, at most 8 calls in flight, for five minutes.
    let end = Instant::now() + Duration::from_secs(300);
    let mut calls = tokio::task::JoinSet::new();
    let mut n = 0u32;
    while Instant::now() < end {
        let held_s = svc.upstream().paused_until_s() - clock.now_s();
        if held_s > 0.0 {
            sleep(Duration::from_secs_f64(held_s)).await;
        } else if calls.len() >= 8 {
            calls.join_next().await;
        } else {
            n += 1;
            let svc = svc.clone();
            calls.spawn(async move { svc.warm("quote", &format!("K{n}"), "popular").await });
            tokio::task::yield_now().await;
        }
    }
    calls.abort_all();
    let stats = sim.stats();
    let share = stats.rate_limited as f64 / stats.requests as f64;
    eprintln!("{stats:?} share {share:.3}");
    assert!(
        share < 0.1,
        "429s were {share:.2} of warming calls: {stats:?}"
    );
    assert!(
        stats.served >= 60,
        "warming still used the limit: {stats:?}"
    );
    assert!(stats.served <= 5 + 150, "never above the limit: {stats:?}");
    d.shutdown().await.unwrap();
}
