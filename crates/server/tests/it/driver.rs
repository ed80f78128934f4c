//! The engine driver end to end: warming hits over real HTTP against the
//! upstream-sim, restart with restored state, corrupt snapshots, shutdown
//! through the `run` future, the outside-session pause, the /warming API.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prewarm_server::clock::{Clock, SystemClock, TokioClock};
use prewarm_server::driver::gate::GateState;
use prewarm_server::serve::{self, Running};
use serde_json::Value;

use crate::support::{self, TestCfg, get, header, http};

/// Saturday 2024-06-15 12:00 New York: the market is closed.
const SATURDAY_NOON_S: f64 = 1_718_467_200.0;
/// Tuesday 2024-06-18 10:00 New York: regular session.
const TUESDAY_10_S: f64 = 1_718_719_200.0;

/// The admin token of these tests' daemons.
const ADMIN_TOKEN: &str = "driver-test-token";

pub fn cfg(sim: SocketAddr, state: &Path, ttl_s: f64, warming: &str) -> TestCfg {
    let mut c = TestCfg::new(sim);
    c.ttl_s = ttl_s;
    c.state_dir = state.to_path_buf();
    c.extra = format!("[warming]\n{warming}\n");
    c
}

pub async fn start(c: &TestCfg, clock: Arc<dyn Clock>) -> Running {
    let mut config = c.config(&|_| None);
    config.admin.token = Some(prewarm_server::config::AdminToken::new(ADMIN_TOKEN));
    let mut d = serve::start_with_clock(config, clock)
        .await
        .expect("daemon starts");
    d.start_driver().expect("driver starts");
    d
}

/// GETs quote/`key`; returns (X-Cache, the sim's sequence number).
pub async fn read(c: &reqwest::Client, d: &Running, key: &str) -> (String, u64) {
    let r = get(c, format!("http://{}/v1/quote/{key}", d.proxy_addr)).await;
    assert_eq!(r.status(), 200);
    let cache = header(&r, "x-cache");
    let body: Value = r.json().await.expect("JSON quote");
    (cache, body["seq"].as_u64().expect("seq"))
}

pub async fn admin_json(d: &Running, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = http()
        .request(method, format!("http://{}{path}", d.admin_addr))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("admin answers");
    let status = r.status().as_u16();
    (status, r.json().await.expect("admin JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_key_hits_an_entry_only_the_warmer_fetched() {
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let warming = "max_cost_ratio = 1000\nrefresh_fraction = 0.5\noutside_sessions = \"run\"\nstrategies = \"refresh,time\"";
    let d = start(
        &cfg(sim.addr(), dir.path(), 1.0, warming),
        Arc::new(SystemClock),
    )
    .await;
    let driver = d.driver().unwrap().clone();
    let c = http();
    let mut miss_seqs = Vec::new();
    let mut warm_hit = None;
    // Every 0.6 s with a 1 s TTL: without warming every other read misses.
    for _ in 0..12 {
        let (cache, seq) = read(&c, &d, "AAPL").await;
        match cache.as_str() {
            "MISS" => miss_seqs.push(seq),
            "HIT" if !miss_seqs.contains(&seq) => {
                warm_hit = Some(seq);
                break;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert!(
        warm_hit.is_some(),
        "no HIT on a warmer-fetched entry; misses {miss_seqs:?}"
    );
    let (result, _) = d.shutdown_with_report().await;
    result.unwrap();
    let view = driver.view();
    let q = &view.datasets["quote"];
    assert!(q.total.warm_fetches >= 1, "{:?}", q.total);
    let credited: u64 = q.total.strategies.values().map(|s| s.hits).sum();
    assert!(
        credited >= 1,
        "the engine credits a strategy: {:?}",
        q.total
    );
    let stats = support::sim_stats(sim.addr()).await;
    assert_eq!(
        stats.quote_requests,
        q.total.demand_fetches + q.warm_outcomes.fetched,
        "upstream calls = demand fetches + warming fetches ({:?}, {:?})",
        q.total,
        q.warm_outcomes
    );
}

#[tokio::test]
async fn restart_restores_the_learned_popular_list() {
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(sim.addr(), dir.path(), 30.0, "");
    let d = start(&c, Arc::new(SystemClock)).await;
    let h = http();
    for key in ["AAPL", "MSFT", "AAPL", "NVDA", "AAPL", "MSFT"] {
        read(&h, &d, key).await;
    }
    d.driver().unwrap().sync().await.unwrap();
    let price_before = d.driver().unwrap().view().datasets["quote"].price.clone();
    assert!(!price_before.history.is_empty(), "the price stepped");
    let patterns_before = d.driver().unwrap().patterns(None, 1, None).await.unwrap();
    let trained_before = patterns_before[0].model.trained_examples;
    let (result, report) = d.shutdown_with_report().await;
    result.unwrap();
    let path = dir.path().join("quote.snapshot");
    assert!(path.exists(), "shutdown saved {}", path.display());
    assert_eq!(report.saved.len(), 1);
    assert!(report.saved[0].error.is_none(), "{:?}", report.saved);

    let d2 = start(&c, Arc::new(SystemClock)).await;
    let driver = d2.driver().unwrap();
    let view = driver.view();
    assert_eq!(view.datasets["quote"].snapshot.restore, "restored");
    assert_eq!(
        view.datasets["quote"].total.requests, 0,
        "no new traffic yet"
    );
    let p = driver
        .patterns(Some("quote".into()), 10, None)
        .await
        .unwrap();
    let keys: Vec<&str> = p[0].popular.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys.first(), Some(&"AAPL"), "{keys:?}");
    assert_eq!(keys.len(), 3);
    let (status, body) =
        admin_json(&d2, reqwest::Method::GET, "/warming/patterns?dataset=quote").await;
    assert_eq!(status, 200);
    assert_eq!(body["datasets"][0]["popular"][0]["key"], "AAPL");
    // The model section came back too: the account the price reads and
    // its history (keys at risk are not kept: they end with the cache).
    let price = &view.datasets["quote"].price;
    assert_eq!(price.cost_ratio_recent, price_before.cost_ratio_recent);
    assert!(price.threshold <= price_before.threshold);
    assert!(
        price_before
            .history
            .iter()
            .all(|p| price.history.contains(p)),
        "{:?} kept in {:?}",
        price_before.history,
        price.history
    );
    // Windows may close between that look and the save at shutdown.
    assert!(p[0].model.trained_examples >= trained_before);
    assert_eq!(
        body["datasets"][0]["model"]["trained_examples"],
        p[0].model.trained_examples
    );
    d2.shutdown().await.unwrap();
}

#[tokio::test]
async fn corrupt_snapshot_is_moved_aside_and_the_daemon_starts_cold() {
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quote.snapshot");
    std::fs::write(&path, b"not a snapshot at all").unwrap();
    let d = start(
        &cfg(sim.addr(), dir.path(), 30.0, ""),
        Arc::new(SystemClock),
    )
    .await;
    let aside = dir.path().join("quote.snapshot.corrupt-1");
    assert_eq!(std::fs::read(&aside).unwrap(), b"not a snapshot at all");
    assert!(!path.exists(), "the corrupt file is not left in place");
    let view = d.driver().unwrap().view();
    let snap = &view.datasets["quote"].snapshot;
    assert_eq!(snap.restore, "corrupt");
    let err = snap.last_error.clone().unwrap_or_default();
    assert!(
        err.contains("quote.snapshot") && err.contains("corrupt-1"),
        "{err}"
    );
    let (cache, _) = read(&http(), &d, "AAPL").await;
    assert_eq!(cache, "MISS", "the daemon serves");
    d.shutdown().await.unwrap();
    assert!(path.exists(), "a fresh snapshot is written at shutdown");
    assert!(aside.exists(), "the quarantined copy is kept");
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_future_of_run_saves_the_snapshot() {
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = cfg(sim.addr(), dir.path(), 30.0, "").config(&|_| None);
    let listen = free_addr();
    config.server.listen = listen;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(serve::run(config, async move {
        let _ = stopped.await;
    }));
    let h = http();
    let url = format!("http://{listen}/v1/quote/AAPL");
    let mut served = 0;
    for _ in 0..200 {
        if let Ok(r) = h.get(&url).send().await
            && r.status() == 200
        {
            served += 1;
            if served == 3 {
                break;
            }
            continue;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(served, 3, "the daemon served");
    stop.send(()).unwrap();
    daemon
        .await
        .unwrap()
        .expect("run returns Ok after the signal");
    let bytes = std::fs::read(dir.path().join("quote.snapshot")).expect("snapshot saved");
    let mut keys = prewarm_core::keys::KeyTable::default();
    let tracker = prewarm_core::tracker::Tracker::restore(&bytes, Default::default(), &mut keys)
        .expect("the saved snapshot restores");
    let popular = tracker.popular(SystemClock.now_s(), 5);
    assert_eq!(popular.len(), 1);
    assert_eq!(keys.name(popular[0].key), "AAPL");
}

/// Reads AAPL every 0.6 s (1 s TTL, refresh at half the TTL, cadence on)
/// up to `reads` times, stopping once a warming fetch happened. Returns
/// the quote dataset's view and the upstream calls made.
async fn periodic_reads(clock_s: f64, reads: usize) -> (prewarm_server::driver::DatasetView, u64) {
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let warming = "max_cost_ratio = 1000\nrefresh_fraction = 0.5\noutside_sessions = \"pause\"\nstrategies = \"refresh,time\"";
    let c = cfg(sim.addr(), dir.path(), 1.0, warming);
    let d = start(&c, Arc::new(TokioClock::starting_at(clock_s))).await;
    let driver = d.driver().unwrap().clone();
    let h = http();
    let mut view = driver.sync().await.unwrap();
    for _ in 0..reads {
        read(&h, &d, "AAPL").await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        view = driver.sync().await.unwrap();
        if view.datasets["quote"].total.warm_fetches > 0 {
            break;
        }
    }
    d.shutdown().await.unwrap();
    let calls = sim.stats().quote_requests;
    (view.datasets["quote"].clone(), calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_session_pause_issues_no_warming_fetch() {
    let (weekend, weekend_calls) = periodic_reads(SATURDAY_NOON_S, 5).await;
    assert_eq!(weekend.gate, GateState::Paused);
    assert_eq!(weekend.total.warm_fetches, 0, "{:?}", weekend.total);
    assert_eq!(
        weekend_calls, weekend.total.demand_fetches,
        "only demand fetches reached upstream"
    );
    // The same traffic during the regular session warms.
    let (tuesday, tuesday_calls) = periodic_reads(TUESDAY_10_S, 10).await;
    assert_eq!(tuesday.gate, GateState::Open);
    assert!(tuesday.total.warm_fetches >= 1, "{tuesday:?}");
    assert!(tuesday_calls > tuesday.total.demand_fetches);
}

async fn cycle_warms_stale_keys_then_reads_hit(store: &str) {
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    // The engine's own strategies are off: only the cycle warms, on the
    // engine's budget.
    let mut c = cfg(
        sim.addr(),
        dir.path(),
        1.0,
        "rate_limit_per_min = 100\nstrategies = \"none\"",
    );
    c.store = store.to_string();
    let d = start(&c, Arc::new(SystemClock)).await;
    let h = http();
    for key in ["AAPL", "MSFT", "NVDA"] {
        assert_eq!(read(&h, &d, key).await.0, "MISS");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await; // all stale
    d.driver().unwrap().sync().await.unwrap();
    // The default cycle runs only the strategies a dataset enables: none.
    let (status, body) = admin_json(&d, reqwest::Method::POST, "/warming/run").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ordered"], 0, "{body}");
    // An explicit popular cycle runs; it answers once the fetches are back.
    let (status, body) =
        admin_json(&d, reqwest::Method::POST, "/warming/run?strategy=popular").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["strategies"], serde_json::json!(["popular"]), "{body}");
    assert_eq!(body["warmed"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(body["failed"].as_array().unwrap().len(), 0, "{body}");
    assert!(body["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(sim.stats().quote_requests, 6, "the fetches were made");
    let (cache, _) = read(&h, &d, "MSFT").await;
    assert_eq!(cache, "HIT", "the cycle warmed MSFT");
    let view = d.driver().unwrap().sync().await.unwrap();
    let q = &view.datasets["quote"];
    assert_eq!(q.total.cycle_warm_fetches, 3, "{:?}", q.total);
    assert_eq!(q.total.warm_fetches, 3, "cycle fetches are warming fetches");
    assert_eq!(q.total.api_calls, 6);
    assert_eq!(view.cycles.completed, 2, "{:?}", view.cycles);
    assert_eq!(view.cycles.last.unwrap().warmed, 3);
    let (status, body) = admin_json(&d, reqwest::Method::GET, "/warming/stats").await;
    assert_eq!(status, 200);
    assert_eq!(body["datasets"]["quote"]["total"]["cycle_warm_fetches"], 3);
    let (status, body) = admin_json(&d, reqwest::Method::POST, "/warming/save").await;
    assert_eq!(status, 200, "{body}");
    assert!(dir.path().join("quote.snapshot").exists());
    let (status, body) = admin_json(&d, reqwest::Method::GET, "/warming/status").await;
    assert_eq!(status, 200);
    let jobs: Vec<&str> = body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["kind"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["pre_market", "snapshot", "cleanup"]);
    assert!(body["jobs"][0]["next_run_s"].as_f64().unwrap() > view.at_s);
    d.shutdown().await.unwrap();
    assert_eq!(sim.stats().quote_requests, 6, "3 demand + 3 cycle fetches");
}

#[tokio::test]
async fn manual_cycle_warms_stale_keys_and_the_api_reports_it() {
    cycle_warms_stale_keys_then_reads_hit("memory").await;
}

#[tokio::test]
async fn manual_cycle_warms_into_redis() {
    let Some(redis) = support::redis() else {
        return;
    };
    cycle_warms_stale_keys_then_reads_hit(&redis.url()).await;
}

#[tokio::test]
async fn old_sidecar_timestamps_are_learned_not_dropped() {
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let d = start(
        &cfg(sim.addr(), dir.path(), 30.0, ""),
        Arc::new(SystemClock),
    )
    .await;
    read(&http(), &d, "AAPL").await;
    let now_s = SystemClock.now_s();
    // Reported late by an application: one hour old, then from the future.
    let items = serde_json::json!([
        {"dataset": "quote", "key": "MSFT", "ts": now_s - 3600.0, "client": "app"},
        {"dataset": "quote", "key": "MSFT", "ts": now_s + 3600.0, "hit": true},
    ]);
    let r = http()
        .post(format!("http://{}/v1/access", d.proxy_addr))
        .bearer_auth(support::ACCESS_TOKEN)
        .json(&items)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let view = d.driver().unwrap().sync().await.unwrap();
    let q = &view.datasets["quote"];
    assert_eq!(q.total.requests, 3, "{:?}", q.total);
    assert_eq!(q.tracker.total_accesses, 3);
    assert_eq!(view.events.accesses, 3);
    assert!(
        view.at_s < now_s + 60.0,
        "a future ts does not move the driver's clock"
    );
    d.shutdown().await.unwrap();
}
