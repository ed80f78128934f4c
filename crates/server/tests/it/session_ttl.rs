//! TTL by market session in the daemon, on tokio's paused time: an entry
//! fetched while the market is closed stays fresh, under
//! `closed = "until_open"`, until the next pre-market open.

use std::time::Duration;

use prewarm_server::clock::TokioClock;
use prewarm_server::service::CacheStatus;

use crate::support::{self, TestCfg};

/// Friday 2026-03-06 20:30 EST (closed), and Monday 2026-03-09 04:00 EDT.
const FRIDAY_EVENING_S: f64 = 1_772_847_000.0;
const MONDAY_OPEN_S: f64 = 1_773_043_200.0;

#[tokio::test(start_paused = true)]
async fn an_entry_fetched_while_closed_is_a_hit_later_in_the_closed_session() {
    let sim = support::sim(|_| {}).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.extra = "[datasets.quote.ttl_by_session]\nregular_s = 15\nclosed = \"until_open\"\n\
                 [warming]\nenabled = false\n"
        .into();
    let clock = TokioClock::starting_at(FRIDAY_EVENING_S);
    let d = cfg.start_paused(&clock).await;
    let svc = d.service.clone();
    let first = svc.read("quote", "AAPL", None).await.unwrap();
    assert_eq!(first.status, CacheStatus::Miss);
    // Saturday night, 30 hours later: still the Friday evening quote.
    tokio::time::advance(Duration::from_secs(30 * 3600)).await;
    let later = svc.read("quote", "AAPL", None).await.unwrap();
    assert_eq!(later.status, CacheStatus::Hit, "fresh until Monday's open");
    assert_eq!(later.entry.fetched_at_s, first.entry.fetched_at_s);
    assert_eq!(sim.stats().requests, 1);
    // Monday 04:00 EDT (after the DST change): pre-market opens, the
    // entry has expired.
    let to_open_s = MONDAY_OPEN_S - clock_now(&d);
    tokio::time::advance(Duration::from_secs_f64(to_open_s)).await;
    let open = svc.read("quote", "AAPL", None).await.unwrap();
    assert_ne!(open.status, CacheStatus::Hit, "expired at the open");
    // Answered stale while it is refreshed in the background.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sim.stats().requests, 2);
    d.shutdown().await.unwrap();
}

fn clock_now(d: &prewarm_server::serve::Running) -> f64 {
    d.service.clock().now_s()
}

/// `/warming/status` of a daemon whose dataset section ends with `extra`:
/// the `quote` dataset's entry.
async fn quote_status(extra: &str) -> serde_json::Value {
    let sim = support::sim(|_| {}).await;
    let mut cfg = TestCfg::new(sim.addr());
    let dir = tempfile::tempdir().unwrap();
    cfg.state_dir = dir.path().to_path_buf();
    cfg.extra = extra.into();
    let mut d = cfg.start().await;
    d.start_driver().expect("driver starts");
    d.driver().unwrap().sync().await.unwrap();
    let url = format!("http://{}/warming/status", d.admin_addr);
    let status: serde_json::Value = support::get(&support::http(), url)
        .await
        .json()
        .await
        .unwrap();
    d.shutdown().await.unwrap();
    status["datasets"]["quote"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_status_shows_each_sessions_ttl() {
    let quote =
        quote_status("[datasets.quote.ttl_by_session]\nregular_s = 15\nclosed = \"until_open\"\n")
            .await;
    assert_eq!(quote["ttl_s"], 30.0, "{quote}");
    let by_session = &quote["ttl_by_session"];
    assert_eq!(by_session["regular"], 15.0, "{quote}");
    assert_eq!(by_session["closed"], "until_open", "{quote}");
    assert_eq!(
        by_session["pre_market"], 30.0,
        "a session left out keeps ttl_s"
    );
    assert_eq!(by_session["after_hours"], 30.0, "{quote}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_status_shows_no_session_ttls_when_none_is_set() {
    let quote = quote_status("").await;
    assert_eq!(quote["ttl_s"], 30.0, "{quote}");
    assert!(quote["ttl_by_session"].is_null(), "{quote}");
}

#[tokio::test]
async fn the_start_up_log_shows_each_datasets_session_ttls() {
    let (logs, _guard) = crate::redaction::capture_logs();
    let sim = support::sim(|_| {}).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.batch = true;
    cfg.extra = "[datasets.quote.ttl_by_session]\nregular_s = 15\nclosed = \"until_open\"\n".into();
    let d = cfg.start().await;
    d.shutdown().await.unwrap();
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("dataset=quote") && l.contains("ttl_s="))
        .unwrap_or_else(|| panic!("no dataset line in:\n{text}"));
    assert!(
        line.contains("ttl_by_session=pre=30,regular=15,after=30,closed=until_open"),
        "{line}"
    );
    assert!(
        line.contains("/v1/quotes?") && line.contains("(up to 100 keys)"),
        "{line}"
    );
}
