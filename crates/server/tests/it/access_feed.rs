//! `POST /v1/access` steers warming, so it is not open: it needs the
//! access token, is disabled without one, and keys that fail the
//! dataset's key pattern are never tracked.

use serde_json::json;

use crate::support::{ACCESS_TOKEN, TestCfg, http, sim};

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
    let r = c
        .post(&url)
        .bearer_auth(ACCESS_TOKEN)
        .json(&junk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(events.accesses.try_recv().is_err(), "no junk key tracked");
    let r = c
        .post(&url)
        .bearer_auth(ACCESS_TOKEN)
        .json(&items)
        .send()
        .await
        .unwrap();
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
    let r = c
        .post(&url)
        .bearer_auth(ACCESS_TOKEN)
        .json(&items)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "disabled");
    d.shutdown().await.unwrap();
}
