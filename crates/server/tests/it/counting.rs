//! Every counter of the same thing agrees: upstream calls as the upstream
//! saw them, as `prewarm_upstream_calls_total` counts them, and as
//! `/warming/stats` reports them; warming fetches per strategy in the
//! stats, in `prewarm_warm_fetches_total` and in the warm outcomes; and
//! efficiency from the same figures; warming fetches are used, wasted or
//! pending, and add up. Checked after warming cycles (`POST /warming/run`)
//! and after the engine's own warming.
//!
//! The dataset has its own name so that the process-wide Prometheus
//! recorder, shared by every test of this binary, holds only its series.

use std::sync::Arc;
use std::time::Duration;

use prewarm_server::serve::{self, Running};
use prewarm_server::upstream_sim::SimHandle;
use serde_json::Value;

use crate::support::{self, SteppedClock, TestCfg, http, metric_sum};

const DATASET: &str = "tally";
const TOKEN: &str = "counting-test-token";
const KEYS: [&str; 5] = ["AAPL", "MSFT", "NVDA", "AMD", "TSLA"];
const TTL_S: f64 = 60.0;

async fn start(sim: &SimHandle, dir: &std::path::Path, clock: Arc<SteppedClock>) -> Running {
    start_as(DATASET, false, sim, dir, clock).await
}

/// The daemon on dataset `dataset`, warming through the batch endpoint
/// when `batch`.
async fn start_as(
    dataset: &str,
    batch: bool,
    sim: &SimHandle,
    dir: &std::path::Path,
    clock: Arc<SteppedClock>,
) -> Running {
    let mut c = TestCfg::new(sim.addr());
    c.ttl_s = TTL_S;
    c.batch = batch;
    c.state_dir = dir.to_path_buf();
    c.extra = "[warming]\nstrategies = \"popular\"\nmax_cost_ratio = 1000\n\
               rate_limit_per_min = 1000\noutside_sessions = \"run\"\n"
        .into();
    let toml = c
        .toml()
        .replace("[datasets.quote]", &format!("[datasets.{dataset}]"));
    let mut config = prewarm_server::config::RawConfig::from_toml(&toml, "counting.toml")
        .expect("parses")
        .validate(&|_| None)
        .expect("validates");
    config.admin.token = Some(prewarm_server::config::AdminToken::new(TOKEN));
    let mut d = serve::start_with_clock(config, clock)
        .await
        .expect("daemon starts");
    d.start_driver().expect("driver starts");
    d
}

async fn admin(d: &Running, method: reqwest::Method, path: &str) -> reqwest::Response {
    http()
        .request(method, format!("http://{}{path}", d.admin_addr))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin answers")
}

/// `/warming/stats` and the `/metrics` page, read now.
async fn stats_and_metrics(d: &Running) -> (Value, String) {
    let stats = admin(d, reqwest::Method::GET, "/warming/stats")
        .await
        .json()
        .await
        .expect("stats JSON");
    let page = admin(d, reqwest::Method::GET, "/metrics")
        .await
        .text()
        .await
        .expect("metrics text");
    (stats, page)
}

/// Waits until no warming fetch or cycle is in flight (bounded).
async fn settle(d: &Running) {
    let driver = d.driver().expect("driver");
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = driver.sync().await.expect("driver runs");
        if v.warms_in_flight == 0 && v.cycles.in_progress == 0 && v.cycles.queued_fetches == 0 {
            let again = driver.sync().await.expect("driver runs");
            if again.warms_in_flight == 0 {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < until, "warming never settled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every counter of upstream calls and warming fetches, read after
/// warming settled; asserts they agree and returns the stats' totals.
async fn assert_counters_agree(d: &Running, sim: &SimHandle) -> Value {
    settle(d).await;
    let stats: Value = admin(d, reqwest::Method::GET, "/warming/stats")
        .await
        .json()
        .await
        .expect("stats JSON");
    let page = admin(d, reqwest::Method::GET, "/metrics")
        .await
        .text()
        .await
        .expect("metrics text");
    let ds = &stats["datasets"][DATASET];
    let total = &ds["since_start"];
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("a count: {v}"));
    let upstream_seen = sim.stats().quote_requests;
    let calls = |kind: &str| {
        metric_sum(
            &page,
            "prewarm_upstream_calls_total",
            &[("dataset", DATASET), ("kind", kind)],
        ) as u64
    };
    let warming = n(&total["api_calls"]["warming"]);
    let demand = n(&total["api_calls"]["demand"]);
    assert_eq!(n(&total["api_calls"]["total"]), upstream_seen, "{ds}");
    assert_eq!(demand + warming, upstream_seen, "{total}");
    assert_eq!(calls("demand"), demand, "demand calls: metrics vs stats");
    assert_eq!(calls("warm"), warming, "warm calls: metrics vs stats");
    assert_eq!(n(&total["warmed"]), warming, "{total}");
    assert_eq!(n(&ds["total"]["warm_fetches"]), warming, "{ds}");
    assert_eq!(n(&ds["warm_outcomes"]["fetched"]), warming, "{ds}");
    assert_eq!(
        n(&total["used"]) + n(&total["wasted"]) + n(&total["pending"]),
        warming,
        "{total}"
    );
    let strategies = total["strategies"].as_object().expect("per strategy");
    let per_strategy: u64 = strategies.values().map(|s| n(&s["warmed"])).sum();
    assert_eq!(per_strategy, warming, "{total}");
    for (name, s) in strategies {
        let exported = metric_sum(
            &page,
            "prewarm_warm_fetches_total",
            &[("dataset", DATASET), ("strategy", name)],
        ) as u64;
        assert_eq!(exported, n(&s["warmed"]), "{name}: metrics vs stats");
        assert_eq!(
            n(&s["engine_warmed"]) + n(&s["cycle_warmed"]),
            n(&s["warmed"]),
            "{name}: {s}"
        );
        assert_eq!(
            n(&s["used"]) + n(&s["wasted"]) + n(&s["pending"]),
            n(&s["warmed"]),
            "{name}: {s}"
        );
        let used = n(&s["used"]) as f64;
        let efficiency = s["efficiency"].as_f64().expect("efficiency");
        assert!(
            (efficiency - used / n(&s["warmed"]).max(1) as f64).abs() < 1e-9,
            "{name}: {s}"
        );
    }
    total.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cycle_warming_is_counted_once_by_every_counter() {
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(SteppedClock::default());
    let d = start(&sim, dir.path(), clock.clone()).await;
    let h = http();
    for key in KEYS {
        for _ in 0..2 {
            let url = format!("http://{}/v1/{DATASET}/{key}", d.proxy_addr);
            assert_eq!(support::get(&h, url).await.status(), 200);
        }
    }
    // The engine's own warming: popular keeps its keys fresh at expiry.
    clock.advance_s(TTL_S - 1.0);
    settle(&d).await;
    let before = assert_counters_agree(&d, &sim).await;
    let engine_warmed = before["warmed"].as_u64().unwrap();
    assert!(engine_warmed > 0, "the engine warmed nothing: {before}");

    // Three cycles of five keys, each after every entry went stale.
    let (mut cycle_warmed, mut last_cycle) = (0, 0);
    for _ in 0..3 {
        cycle_warmed += last_cycle;
        clock.advance_s(3.0 * TTL_S);
        let r = admin(
            &d,
            reqwest::Method::POST,
            &format!("/warming/run?strategy=popular&limit=5&dataset={DATASET}"),
        )
        .await;
        assert_eq!(r.status(), 200);
        let report: Value = r.json().await.unwrap();
        last_cycle = report["warmed"].as_array().expect("warmed").len() as u64;
    }
    let after = assert_counters_agree(&d, &sim).await;
    let count = |v: &Value, k: &str| v[k].as_u64().unwrap();
    // The first two cycles' entries expired unread: wasted. The last
    // cycle's are fresh and unread: pending, not wasted.
    assert!(
        count(&after, "wasted") >= count(&before, "wasted") + cycle_warmed,
        "{before}\n{after}"
    );
    assert!(count(&after, "pending") >= last_cycle, "{after}");
    cycle_warmed += last_cycle;
    let popular = &after["strategies"]["popular"];
    assert_eq!(
        popular["cycle_warmed"].as_u64(),
        Some(cycle_warmed),
        "{after}"
    );
    assert!(cycle_warmed > 0, "{after}");
    d.shutdown().await.unwrap();
}

/// Batched warming: keys of one warming call go out in one upstream batch
/// call. Every counter of calls counts that call once (the upstream's,
/// `prewarm_upstream_calls_total`, the stats' API calls, the cost
/// account), and the keys it fetched are counted as warming fetches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_warming_call_counts_once_against_every_counter_of_calls() {
    const BATCHED: &str = "tallybatch";
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(SteppedClock::default());
    let d = start_as(BATCHED, true, &sim, dir.path(), clock.clone()).await;
    let h = http();
    let keys: Vec<String> = (0..30).map(|i| format!("K{i:02}")).collect();
    for key in &keys {
        for _ in 0..2 {
            let url = format!("http://{}/v1/{BATCHED}/{key}", d.proxy_addr);
            assert_eq!(support::get(&h, url).await.status(), 200);
        }
    }
    // A warming call of one key goes through `url`, of several through
    // `batch_url`: the upstream's calls are both kinds of request.
    let upstream_calls =
        |s: &prewarm_server::upstream_sim::SimStats| s.quote_requests + s.batch_requests;
    // A cycle of all 30 keys once every entry went stale: batch calls
    // (the engine's own warming may refresh some first, in batch calls
    // too: the counts below hold whichever warmed them).
    clock.advance_s(3.0 * TTL_S);
    settle(&d).await;
    let r = admin(
        &d,
        reqwest::Method::POST,
        &format!("/warming/run?strategy=popular&limit=30&dataset={BATCHED}"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert!(
        report["failed"].as_array().is_some_and(Vec::is_empty),
        "{report}"
    );
    settle(&d).await;
    let (stats, page) = stats_and_metrics(&d).await;
    let seen = sim.stats();
    let ds = &stats["datasets"][BATCHED];
    let total = &ds["since_start"];
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("a count: {v}"));
    let warm_calls = n(&total["api_calls"]["warming"]);
    let demand_calls = n(&total["api_calls"]["demand"]);
    assert_eq!(demand_calls, 30, "one demand call per key: {total}");
    let warmed = n(&total["warmed"]);
    assert!(warmed >= 30, "every key warmed at least once: {total}");
    assert!(seen.batch_requests >= 1, "{seen:?}");
    assert_eq!(n(&total["api_calls"]["total"]), upstream_calls(&seen));
    assert_eq!(warm_calls + demand_calls, upstream_calls(&seen), "{total}");
    assert!(warm_calls < warmed, "keys in fewer calls: {total}");
    let metric = metric_sum(
        &page,
        "prewarm_upstream_calls_total",
        &[("dataset", BATCHED), ("kind", "warm")],
    ) as u64;
    assert_eq!(metric, warm_calls, "warm calls: metrics vs stats");
    assert_eq!(n(&ds["warm_outcomes"]["fetched"]), warmed, "{ds}");
    // The cost account counts calls: demand plus the batch calls.
    let ratio = total["cost_ratio"].as_f64().expect("cost ratio");
    let shadow = n(&total["demand_only_api_calls"]);
    let expected = (demand_calls + warm_calls) as f64 / shadow as f64;
    assert!((ratio - expected).abs() < 1e-9, "{total}");

    // The engine's own warming: the keys, read again, come due together
    // and are refreshed in batch calls.
    for key in &keys {
        let url = format!("http://{}/v1/{BATCHED}/{key}", d.proxy_addr);
        assert_eq!(support::get(&h, url).await.status(), 200);
    }
    clock.advance_s(TTL_S - 1.0);
    settle(&d).await;
    let after = sim.stats();
    assert!(after.batch_requests > seen.batch_requests, "{after:?}");
    let (stats, _) = stats_and_metrics(&d).await;
    let total = &stats["datasets"][BATCHED]["since_start"];
    let warm_calls = n(&total["api_calls"]["warming"]);
    assert_eq!(n(&total["api_calls"]["total"]), upstream_calls(&after));
    assert_eq!(warm_calls + demand_calls, upstream_calls(&after), "{total}");
    assert!(n(&total["warmed"]) > warm_calls, "{total}");
    d.shutdown().await.unwrap();
}

/// A client's batch read of several missing keys is one upstream call:
/// `/warming/stats` counts it once, as the upstream and
/// `prewarm_upstream_calls_total` do (regression: it counted one demand
/// call per key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_batch_read_counts_one_demand_call_per_upstream_call() {
    const DATASET_B: &str = "tallyreads";
    let sim = support::sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(SteppedClock::default());
    let d = start_as(DATASET_B, true, &sim, dir.path(), clock).await;
    let keys: Vec<String> = (0..25).map(|i| format!("R{i:02}")).collect();
    let url = format!(
        "http://{}/v1/{DATASET_B}?keys={}",
        d.proxy_addr,
        keys.join(",")
    );
    assert_eq!(support::get(&http(), url).await.status(), 200);
    settle(&d).await;
    let (stats, page) = stats_and_metrics(&d).await;
    let seen = sim.stats();
    let ds = &stats["datasets"][DATASET_B];
    let calls = &ds["since_start"]["api_calls"];
    let demand = metric_sum(
        &page,
        "prewarm_upstream_calls_total",
        &[("dataset", DATASET_B), ("kind", "demand")],
    ) as u64;
    assert_eq!(seen.batch_requests, 1, "{seen:?}");
    assert_eq!(calls["demand"].as_u64(), Some(demand), "{calls}");
    assert_eq!(demand, seen.batch_requests + seen.quote_requests);
    assert_eq!(ds["total"]["demand_fetches"], 25, "keys are still keys");
    d.shutdown().await.unwrap();
}

/// Client misses racing the engine's batched warming of the same keys:
/// each key's demand fetch holds its warming, and every counter of calls
/// still agrees with the upstream's own count, per kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_and_batched_warming_agree_on_every_count_of_calls() {
    const RACED: &str = "tallyraced";
    let sim = support::sim(|c| c.latency_ms = 20).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(SteppedClock::default());
    let d = start_as(RACED, true, &sim, dir.path(), clock.clone()).await;
    let h = http();
    let keys: Vec<String> = (0..30).map(|i| format!("C{i:02}")).collect();
    let read_all = |rounds: usize| {
        let reads = keys.iter().flat_map(|key| {
            let url = format!("http://{}/v1/{RACED}/{key}", d.proxy_addr);
            let h = h.clone();
            (0..rounds).map(move |_| {
                let (h, url) = (h.clone(), url.clone());
                async move { support::get(&h, url).await.status() }
            })
        });
        futures::future::join_all(reads)
    };
    for status in read_all(2).await {
        assert_eq!(status, 200);
    }
    for _ in 0..3 {
        // Every entry expires while warming comes due: the reads miss as
        // the engine orders its batch calls.
        clock.advance_s(TTL_S + 1.0);
        for status in read_all(3).await {
            assert_eq!(status, 200);
        }
        settle(&d).await;
    }
    let (stats, page) = stats_and_metrics(&d).await;
    let seen = sim.stats();
    let total = &stats["datasets"][RACED]["since_start"];
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("a count: {v}"));
    let metric = |kind: &str| {
        metric_sum(
            &page,
            "prewarm_upstream_calls_total",
            &[("dataset", RACED), ("kind", kind)],
        ) as u64
    };
    let (demand, warming) = (
        n(&total["api_calls"]["demand"]),
        n(&total["api_calls"]["warming"]),
    );
    assert_eq!(
        metric("demand"),
        demand,
        "demand calls: metrics vs stats: {total}"
    );
    assert_eq!(
        metric("warm"),
        warming,
        "warm calls: metrics vs stats: {total}"
    );
    assert_eq!(
        demand + warming,
        seen.quote_requests + seen.batch_requests,
        "stats vs upstream: {total} {seen:?}"
    );
    assert_eq!(n(&total["api_calls"]["total"]), demand + warming, "{total}");
    assert!(warming > 0, "warming raced the reads: {total}");
    d.shutdown().await.unwrap();
}
