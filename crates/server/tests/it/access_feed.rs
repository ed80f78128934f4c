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
