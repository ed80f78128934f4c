//! `POST /v1/access` steers warming, so it is not open: it needs the
//! access token, is disabled without one, and keys that fail the
//! dataset's key pattern are never tracked.

use serde_json::json;

use crate::support::{ACCESS_TOKEN, TestCfg, http, sim};

/// `POST url` with the access token and `body` as JSON.
async fn post_with_token(
    c: &reqwest::Client,
    url: &str,
    body: &impl serde::Serialize,
) -> reqwest::Response {
    c.post(url)
        .bearer_auth(ACCESS_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_access_feed_needs_its_token_and_never_tracks_junk_keys() {
    let upstream = sim(|_| {}).await;
    let mut d = TestCfg::new(upstream.addr()).start().await;
    let mut events = d.take_events().unwrap();
    let url = format!("http://{}/v1/access", d.proxy_addr);
    let c = http();
    let items = json!([{"dataset": "quote", "key": "AAPL"}]);
    let r = c.post(&url).json(&items).send().await.unwrap();
    assert_eq!(r.status(), 401, "no token");
    let r = c
        .post(&url)
        .bearer_auth("wrong")
        .json(&items)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "wrong token");
    assert!(events.accesses.try_recv().is_err(), "nothing tracked");
    // Junk keys are refused whole, and tracked never.
    let junk: Vec<_> = (0..100)
        .map(|i| json!({"dataset": "quote", "key": format!("junk key {i}!")}))
        .collect();
    let r = post_with_token(&c, &url, &junk).await;
    assert_eq!(r.status(), 400);
    assert!(events.accesses.try_recv().is_err(), "no junk key tracked");
    let r = post_with_token(&c, &url, &items).await;
    assert_eq!(r.status(), 202);
    assert_eq!(&*events.accesses.recv().await.unwrap().key, "AAPL");
    d.shutdown().await.unwrap();

    // Without a configured token the route is off.
    let mut cfg = TestCfg::new(upstream.addr());
    cfg.server_extra = String::new();
    let mut config = cfg.config(&|_| None);
    config.server.access_token = None;
    let d = prewarm_server::serve::start(config).await.unwrap();
    let url = format!("http://{}/v1/access", d.proxy_addr);
    let r = post_with_token(&c, &url, &items).await;
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "disabled");
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_access_feed_is_rate_limited_per_item_with_retry_after() {
    let upstream = sim(|_| {}).await;
    let mut cfg = TestCfg::new(upstream.addr());
    // 3 items a minute: one every 20 s, a bucket of 3.
    cfg.server_extra = "access_rate_limit_per_min = 3\n".into();
    let mut d = cfg.start().await;
    let mut events = d.take_events().unwrap();
    let url = format!("http://{}/v1/access", d.proxy_addr);
    let c = http();
    let post = |n: usize| {
        let items: Vec<_> = (0..n)
            .map(|_| json!({"dataset": "quote", "key": "AAPL"}))
            .collect();
        c.post(&url).bearer_auth(ACCESS_TOKEN).json(&items).send()
    };
    let r = post(4).await.unwrap();
    assert_eq!(r.status(), 400, "larger than the bucket");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_items");
    assert_eq!(post(2).await.unwrap().status(), 202);
    let r = post(2).await.unwrap();
    assert_eq!(r.status(), 429, "a batch counts its items");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (19..=20).contains(&retry),
        "one item short at 3/min: {retry}"
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(post(1).await.unwrap().status(), 202, "the last token");
    let mut tracked = 0;
    while events.accesses.try_recv().is_ok() {
        tracked += 1;
    }
    assert_eq!(tracked, 3, "refused batches are not tracked");
    d.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_sent_with_accesses_make_the_sector_strategy_warm_co_grouped_keys() {
    let upstream = sim(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = TestCfg::new(upstream.addr());
    cfg.state_dir = dir.path().to_path_buf();
    cfg.extra = "\n[admin]\ntoken = \"admin-token\"\n".into();
    let mut d = cfg.start().await;
    d.start_driver().expect("driver starts");
    let url = format!("http://{}/v1/access", d.proxy_addr);
    let c = http();
    // Too many groups, or a name too long, refuse the batch naming the field.
    let five: Vec<String> = (0..5).map(|i| format!("g{i}")).collect();
    let bad = json!([{"dataset": "quote", "key": "AAPL", "groups": five}]);
    let r = post_with_token(&c, &url, &bad).await;
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["errors"][0]["field"], "groups", "{body}");
    let long = "x".repeat(65);
    let bad = json!([{"dataset": "quote", "key": "AAPL", "groups": ["Tech", long]}]);
    let body: serde_json::Value = post_with_token(&c, &url, &bad).await.json().await.unwrap();
    assert_eq!(body["error"]["errors"][0]["field"], "groups[1]", "{body}");
    // The app reports what it served, with each key's sector.
    let items: Vec<_> = [
        ("AAPL", "Tech"),
        ("MSFT", "Tech"),
        ("NVDA", "Tech"),
        ("XOM", "Energy"),
    ]
    .iter()
    .map(|(key, sector)| json!({"dataset": "quote", "key": key, "groups": [sector, "watchlist-1"]}))
    .collect();
    let r = post_with_token(&c, &url, &items).await;
    assert_eq!(r.status(), 202);
    d.driver().unwrap().sync().await.unwrap();
    let admin = format!("http://{}", d.admin_addr);
    let r = c
        .post(format!("{admin}/warming/run?strategy=sector&group=Tech"))
        .bearer_auth("admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: serde_json::Value = r.json().await.unwrap();
    // The cycle picks the group's members: warmed now, or found fresh or
    // in flight (the engine may have warmed them since the accesses).
    assert_eq!(sector_keys(&report), ["AAPL", "MSFT", "NVDA"], "{report}");
    // Every key also joined the watchlist.
    let r = c
        .post(format!(
            "{admin}/warming/run?strategy=sector&group=watchlist-1"
        ))
        .bearer_auth("admin-token")
        .send()
        .await
        .unwrap();
    let report: serde_json::Value = r.json().await.unwrap();
    let in_list =
        report["warmed"].as_array().unwrap().len() + report["skipped"].as_array().unwrap().len();
    assert_eq!(in_list, 4, "{report}");
    d.shutdown().await.unwrap();
}

/// The keys a sector cycle's report names (warmed or skipped), sorted,
/// each charged to the sector strategy.
fn sector_keys(report: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = ["warmed", "skipped"]
        .iter()
        .flat_map(|part| report[part].as_array().expect("key lists").iter())
        .inspect(|k| assert_eq!(k["strategy"], "sector", "{k}"))
        .filter_map(|k| k["key"].as_str().map(str::to_string))
        .collect();
    keys.sort_unstable();
    keys
}
