//! The start-up cycle on loopback: a daemon stops (snapshot saved) and a
//! new one starts on the same state dir, against a real upstream-sim; it
//! warms before any client request, and with Redis it fetches only what
//! the store did not keep.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, TestCfg, get, header, http, sim_stats};

/// Keys requested by the first process: each a few times, so they are
/// tracked and popular.
const KEYS: [&str; 8] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOG", "NFLX",
];

fn config(sim: std::net::SocketAddr, state: &std::path::Path, startup: &str) -> TestCfg {
    let mut cfg = TestCfg::new(sim);
    cfg.state_dir = state.to_path_buf();
    cfg.extra = format!(
        "\n[warming]\noutside_sessions = \"run\"\nstartup = \"{startup}\"\nstartup_deadline_s = 20\n"
    );
    cfg
}

/// The first process: traffic on [`KEYS`], then a graceful stop.
async fn first_process(cfg: &TestCfg) {
    let mut d = cfg.start().await;
    d.start_driver().expect("driver starts");
    let client = http();
    for _ in 0..4 {
        for k in KEYS {
            let r = get(&client, format!("http://{}/v1/quote/{k}", d.proxy_addr)).await;
            assert_eq!(r.status(), 200);
        }
    }
    d.shutdown().await.expect("stops, snapshot saved");
}

/// `/warming/status`'s `startup` once `/readyz` answers 200 and the cycle
/// is done (the driver's own progress, polled; at most 20 s).
async fn startup_when_done(d: &prewarm_server::serve::Running) -> Value {
    let client = http();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = get(&client, format!("http://{}/readyz", d.admin_addr)).await;
        let ready_status = ready.status();
        if ready_status == 503 {
            // Held readiness is an error like any other, coded `starting`.
            let body: Value = ready.json().await.expect("a 503 /readyz is JSON");
            assert_eq!(body["error"]["code"], "starting", "{body}");
        }
        let status: Value = get(&client, format!("http://{}/warming/status", d.admin_addr))
            .await
            .json()
            .await
            .expect("status JSON");
        let s = status["startup"].clone();
        if ready_status == 200 && s["state"] == "done" {
            return s;
        }
        assert!(Instant::now() < deadline, "start-up not done: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_daemon_warms_before_the_first_client_request() {
    let sim = support::sim(|_| {}).await;
    let state = tempfile::tempdir().unwrap();
    let cfg = config(sim.addr(), state.path(), "before_ready");
    first_process(&cfg).await;
    let before = sim_stats(sim.addr()).await.requests;

    let mut d = cfg.start().await;
    d.start_driver().expect("driver starts");
    let s = startup_when_done(&d).await;
    // No client has asked anything of this process yet.
    let warmed = sim_stats(sim.addr()).await.requests - before;
    let planned = s["planned"].as_u64().unwrap();
    assert!(planned >= KEYS.len() as u64, "{s}");
    assert_eq!(s["done"].as_u64(), Some(planned), "{s}");
    assert_eq!(s["handed_over"].as_u64(), Some(KEYS.len() as u64), "{s}");
    assert!(warmed >= planned, "{warmed} upstream calls for {s}");
    assert_eq!(s["mode"], "before_ready");
    assert_eq!(s["holding_readiness"], false);
    // The first requests hit.
    let client = http();
    for k in KEYS {
        let r = get(&client, format!("http://{}/v1/quote/{k}", d.proxy_addr)).await;
        assert_eq!(header(&r, "x-cache"), "HIT", "{k}");
    }
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_startup_off_nothing_is_fetched_before_the_first_request() {
    let sim = support::sim(|_| {}).await;
    let state = tempfile::tempdir().unwrap();
    first_process(&config(sim.addr(), state.path(), "off")).await;
    let before = sim_stats(sim.addr()).await.requests;
    let mut d = config(sim.addr(), state.path(), "off").start().await;
    d.start_driver().expect("driver starts");
    let view = d.driver().unwrap().sync().await.unwrap();
    assert_eq!(
        view.startup.state,
        prewarm_server::driver::startup::StartupState::Off
    );
    assert_eq!(sim_stats(sim.addr()).await.requests, before);
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_only_what_expired_since_is_fetched_at_start_up() {
    let Some(redis) = support::redis() else {
        return;
    };
    let sim = support::sim(|_| {}).await;
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(sim.addr(), state.path(), "after_ready");
    cfg.store = redis.url();
    first_process(&cfg).await;
    let before = sim_stats(sim.addr()).await.requests;

    let mut d = cfg.start().await;
    d.start_driver().expect("driver starts");
    let s = startup_when_done(&d).await;
    // Every entry is still fresh in Redis (TTL 30 s): kept, not fetched.
    assert_eq!(s["kept"].as_u64(), Some(KEYS.len() as u64), "{s}");
    assert_eq!(s["planned"].as_u64(), Some(0), "{s}");
    assert_eq!(sim_stats(sim.addr()).await.requests, before);
    d.shutdown().await.unwrap();
}
