//! The dashboard in a real headless chromium: the daemon runs in-process
//! against the built-in upstream-sim, traffic flows through the proxy,
//! then the dumped DOM must show charts with data and a screenshot is
//! saved to `artifacts/dashboard.png` (workspace root).
//!
//! Without chromium the test prints a notice and passes, unless
//! `PREWARM_REQUIRE_SERVICES=1`, then it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use prewarm_server::config::RawConfig;
use prewarm_server::serve;
use regex::Regex;

use crate::support::{get, http};

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run_chromium(bin: &Path, profile: &Path, extra: &[String], url: &str) -> std::process::Output {
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=8000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url);
    cmd.output().expect("chromium runs")
}

/// The value of `attr` on the element with `data-testid="id"`.
fn attr_of(dom: &str, testid: &str, attr: &str) -> Option<f64> {
    let tag = Regex::new(&format!(r#"<[^>]*data-testid="{testid}"[^>]*>"#)).ok()?;
    let m = tag.find(dom)?.as_str();
    let value = Regex::new(&format!(r#"{attr}="([0-9.eE+-]+)""#)).ok()?;
    value.captures(m)?.get(1)?.as_str().parse().ok()
}

/// Requests a few keys through `d`'s proxy for `how_long`.
async fn traffic(client: &reqwest::Client, d: &serve::Running, how_long: Duration) {
    let keys = [
        "AAPL", "MSFT", "NVDA", "AMZN", "AAPL", "MSFT", "AAPL", "TSLA",
    ];
    let until = Instant::now() + how_long;
    while Instant::now() < until {
        for k in keys {
            let r = get(client, format!("http://{}/v1/quote/{k}", d.proxy_addr)).await;
            assert_eq!(r.status(), 200);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_live_charts_in_headless_chromium() {
    let Some(bin) = chromium() else {
        if std::env::var("PREWARM_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("chromium is required (PREWARM_REQUIRE_SERVICES=1) but not found");
        }
        eprintln!("notice: chromium not found; skipping the dashboard browser test");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A short TTL turns entries over during the traffic, so the model has
    // labelled examples (and the price steps) for the panels to show.
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n\
         [datasets.quote]\nttl_s = 1\n",
        dir.path().join("state").display()
    );
    let cfg = RawConfig::from_toml(&toml, "dashboard.toml")
        .unwrap()
        .validate(&|_| None)
        .unwrap();
    assert!(
        cfg.builtin_upstream,
        "runs against the built-in upstream-sim"
    );
    let mut d = serve::start(cfg.clone()).await.expect("daemon starts");
    d.start_driver().expect("driver starts");
    let client = http();
    traffic(&client, &d, Duration::from_secs(3)).await;
    // A restart on the same state dir: the start-up cycle warms what the
    // first process learned, and the dashboard shows its progress.
    d.shutdown().await.expect("snapshot saved");
    let mut d = serve::start(cfg).await.expect("daemon restarts");
    d.start_driver().expect("driver starts");
    traffic(&client, &d, Duration::from_secs(1)).await;
    d.driver().unwrap().sync().await.unwrap();

    // The server keeps the history the charts draw: buckets with requests.
    let stats: serde_json::Value = get(&client, format!("http://{}/warming/stats", d.admin_addr))
        .await
        .json()
        .await
        .unwrap();
    let history = &stats["datasets"]["quote"]["history"]["points"];
    let buckets_with_requests = history
        .as_array()
        .expect("history points")
        .iter()
        .filter(|p| p["requests"].as_u64().unwrap_or(0) > 0)
        .count();
    let requests: u64 = history
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(
        requests,
        stats["datasets"]["quote"]["since_start"]["requests"]
            .as_u64()
            .unwrap(),
        "the last hour's buckets hold every request of a daemon younger than an hour"
    );

    let patterns: serde_json::Value = get(
        &client,
        format!("http://{}/warming/patterns?limit=10", d.admin_addr),
    )
    .await
    .json()
    .await
    .unwrap();
    let an_empty_list = ["popular", "trending", "upcoming"].iter().any(|l| {
        patterns["datasets"][0][l]
            .as_array()
            .is_some_and(|a| a.is_empty())
    });

    let url = format!("http://{}/", d.admin_addr);
    let profile = dir.path().join("profile");
    let (b, p, u) = (bin.clone(), profile.clone(), url.clone());
    let out = tokio::task::spawn_blocking(move || run_chromium(&b, &p, &["--dump-dom".into()], &u))
        .await
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Per-strategy bars appear once a strategy has warmed (may not happen
    // in a few seconds outside market hours); the chart must still render.
    assert!(attr_of(&dom, "chart-efficiency", "data-points").is_some());
    for chart in ["chart-hit-rate", "chart-api-calls"] {
        let points = attr_of(&dom, chart, "data-points").unwrap_or(0.0);
        assert!(points > 0.0, "{chart} has no data points in:\n{dom}");
    }
    let max = attr_of(&dom, "chart-hit-rate", "data-max").unwrap_or(0.0);
    assert!(max > 0.0, "hit-rate chart max is {max}");
    assert!(attr_of(&dom, "chart-api-calls", "data-max").unwrap_or(0.0) > 0.0);
    assert!(
        attr_of(&dom, "patterns", "data-rows").unwrap_or(0.0) > 0.0,
        "patterns table is empty"
    );
    assert!(!dom.contains(">?</b>"), "session shown");
    // A page opened now draws the server's history at its first poll: one
    // point per bucket with requests, on a time axis in exchange time.
    assert_eq!(
        attr_of(&dom, "chart-hit-rate", "data-points"),
        Some(buckets_with_requests as f64),
        "hit-rate points are the server's buckets"
    );
    let tick = Regex::new(r"<text[^>]*>[0-2][0-9]:[0-5][0-9]</text>").unwrap();
    assert!(tick.is_match(&dom), "time-axis labels (HH:MM) in:\n{dom}");
    let hover = Regex::new(
        r"<title>[0-2][0-9]:[0-5][0-9]:[0-5][0-9] ET \([0-2][0-9]:[0-5][0-9]:[0-5][0-9] UTC\)",
    )
    .unwrap();
    assert!(
        hover.is_match(&dom),
        "points show ET and UTC on hover in:\n{dom}"
    );
    let updated =
        Regex::new(r#"data-testid="updated"[^>]*>updated [0-2][0-9]:[0-5][0-9]:[0-5][0-9] ET<"#)
            .unwrap();
    assert!(
        updated.is_match(&dom),
        "one time zone in the header in:\n{dom}"
    );
    if an_empty_list {
        assert!(
            dom.contains(r#"<span class="none">none</span>"#),
            "an empty list says none in:\n{dom}"
        );
    }
    assert_eq!(
        attr_of(&dom, "main", "data-overlaps"),
        Some(0.0),
        "no chart label overlaps another (measured by the browser's layout)"
    );
    let planned = attr_of(&dom, "startup", "data-planned").expect("start-up shown");
    let done = attr_of(&dom, "startup", "data-done").expect("start-up done count");
    assert!(
        planned > 0.0 && done > 0.0,
        "start-up cycle {done} of {planned} in:\n{dom}"
    );
    let state = Regex::new(r#"data-testid="startup"[^>]*>done \(after_ready\): "#).unwrap();
    assert!(state.is_match(&dom), "start-up state shown in:\n{dom}");
    // The price panel plots the history from /warming/stats, and the
    // calibration panel the model's figures from /warming/patterns.
    let price_points = attr_of(&dom, "chart-price", "data-points").unwrap_or(0.0);
    assert!(price_points > 0.0, "price chart has no points in:\n{dom}");
    let now = Regex::new(r#"data-testid="price-now">quote ([0-9.]+) \(λ ([0-9.]+)\)<"#).unwrap();
    assert!(now.is_match(&dom), "current price shown in:\n{dom}");
    let rows = attr_of(&dom, "calibration", "data-rows").expect("calibration table");
    let examples = attr_of(&dom, "calibration", "data-examples").expect("trained examples");
    assert!(
        rows > 0.0 && examples >= rows,
        "calibration has {rows} rows of {examples} examples in:\n{dom}"
    );

    let artifacts = workspace_root().join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let png = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&png);
    let shot = vec![
        format!("--screenshot={}", png.display()),
        "--window-size=1280,900".to_string(),
        "--hide-scrollbars".to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || run_chromium(&bin, &profile, &shot, &url))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
    d.shutdown().await.unwrap();
}
