//! The proxy over HTTP: read-through, headers, key pattern, batch reads,
//! the access feed, admin endpoints, graceful shutdown.

use prewarm_server::events::FetchOrigin;
use serde_json::{Value, json};

use crate::support::{self, TestCfg, get, header, http};

#[tokio::test]
async fn miss_then_hit_reports_accesses_and_one_fetch() {
    let sim = support::sim(|_| {}).await;
    let mut d = TestCfg::new(sim.addr()).start().await;
    let mut events = d.take_events().unwrap();
    let c = http();
    let url = format!("http://{}/v1/quote/AAPL", d.proxy_addr);

    let first = get(&c, url.clone()).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-cache"), "MISS");
    assert_eq!(header(&first, "age"), "0");
    assert_eq!(header(&first, "content-type"), "application/json");
    let body1: Value = first.json().await.unwrap();
    assert_eq!(body1["symbol"], "AAPL");

    let second = c
        .get(&url)
        .header("X-Client-Id", "c7")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&second, "x-cache"), "HIT");
    let body2: Value = second.json().await.unwrap();
    assert_eq!(body1["seq"], body2["seq"], "a hit serves the stored body");
    assert_eq!(sim.stats().quote_requests, 1);

    let a1 = events.accesses.recv().await.unwrap();
    let a2 = events.accesses.recv().await.unwrap();
    assert_eq!(
        (a1.key.as_ref(), a1.hit, a1.client.clone()),
        ("AAPL", false, None)
    );
    assert_eq!((a2.hit, a2.client.as_deref()), (true, Some("c7")));
    let f = events.fetches.recv().await.unwrap();
    assert_eq!(
        (f.origin, f.ok, f.key.as_ref()),
        (FetchOrigin::Demand, true, "AAPL")
    );
    assert!(events.fetches.try_recv().is_err(), "a hit makes no fetch");
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn age_comes_from_the_stored_fetch_time() {
    let sim = support::sim(|_| {}).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.ttl_s = 120.0;
    let d = cfg.start().await;
    support::put_aged(&d, "MSFT", b"{\"symbol\":\"MSFT\",\"seq\":-1}", 42.2, 120.0).await;
    let resp = get(&http(), format!("http://{}/v1/quote/MSFT", d.proxy_addr)).await;
    assert_eq!(header(&resp, "x-cache"), "HIT");
    let age: u64 = header(&resp, "age").parse().unwrap();
    assert!((42..=43).contains(&age), "Age {age}");
    assert_eq!(sim.stats().requests, 0);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn entry_past_its_ttl_is_fetched_again() {
    let sim = support::sim(|_| {}).await;
    let mut cfg = TestCfg::new(sim.addr()); // ttl 30 s
    // No stale-while-revalidate: a stale read waits for the refresh.
    cfg.extra = "stale_while_revalidate_s = 0\n".into();
    let d = cfg.start().await;
    support::put_aged(&d, "IBM", b"{\"seq\":-1}", 30.5, 30.0).await;
    let resp = get(&http(), format!("http://{}/v1/quote/IBM", d.proxy_addr)).await;
    assert_eq!(header(&resp, "x-cache"), "MISS");
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["seq"].as_u64().unwrap() >= 1,
        "fresh body from upstream"
    );
    assert_eq!(sim.stats().quote_requests, 1);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn key_outside_the_pattern_is_400_json_and_no_access() {
    let sim = support::sim(|_| {}).await;
    let mut d = TestCfg::new(sim.addr()).start().await;
    let mut events = d.take_events().unwrap();
    let c = http();
    for bad in ["aapl", "TOOLONGTICKERNAME1", "A%2FB", "1AB"] {
        let resp = get(&c, format!("http://{}/v1/quote/{bad}", d.proxy_addr)).await;
        assert_eq!(resp.status(), 400, "{bad}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_key", "{bad}");
    }
    let resp = get(&c, format!("http://{}/v1/nope/AAPL", d.proxy_addr)).await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_dataset");
    assert_eq!(sim.stats().requests, 0);
    assert!(events.accesses.try_recv().is_err());
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn batch_read_reports_errors_per_key() {
    let sim = support::sim(|c| c.unknown_keys = vec!["ZZZZ".into()]).await;
    let d = TestCfg::new(sim.addr()).start().await;
    let c = http();
    let url = format!(
        "http://{}/v1/quote?keys=AAPL,MSFT,ZZZZ,bad!,AAPL",
        d.proxy_addr
    );
    let resp = get(&c, url).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 4, "{body}");
    assert_eq!(body["AAPL"]["cache"], "MISS");
    assert_eq!(body["AAPL"]["data"]["symbol"], "AAPL");
    assert_eq!(body["MSFT"]["data"]["symbol"], "MSFT");
    assert_eq!(body["ZZZZ"]["error"]["code"], "upstream_not_found");
    assert_eq!(body["bad!"]["error"]["code"], "invalid_key");
    assert_eq!(
        sim.stats().quote_requests,
        3,
        "duplicates read once, invalid never"
    );

    let again = get(
        &c,
        format!("http://{}/v1/quote?keys=AAPL,MSFT", d.proxy_addr),
    )
    .await;
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["AAPL"]["cache"], "HIT");
    assert_eq!(body["MSFT"]["cache"], "HIT");
    assert_eq!(sim.stats().quote_requests, 3);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn batch_post_uses_the_batch_endpoint() {
    let sim = support::sim(|c| c.unknown_keys = vec!["ZZZZ".into()]).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.batch = true;
    let d = cfg.start().await;
    let c = http();
    let resp = c
        .post(format!("http://{}/v1/quote", d.proxy_addr))
        .json(&json!({"keys": ["AAPL", "MSFT", "GOOG", "ZZZZ"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    for k in ["AAPL", "MSFT", "GOOG"] {
        assert_eq!(body[k]["data"]["symbol"], k, "{body}");
    }
    assert_eq!(body["ZZZZ"]["error"]["code"], "upstream_not_found");
    let stats = sim.stats();
    assert_eq!((stats.batch_requests, stats.quote_requests), (1, 0));

    let one = get(&c, format!("http://{}/v1/quote/GOOG", d.proxy_addr)).await;
    assert_eq!(
        header(&one, "x-cache"),
        "HIT",
        "batch results are stored per key"
    );
    let bad = c
        .post(format!("http://{}/v1/quote", d.proxy_addr))
        .body("{\"key\":[]}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn access_feed_validates_every_item_and_forwards() {
    let sim = support::sim(|_| {}).await;
    let mut d = TestCfg::new(sim.addr()).start().await;
    let mut events = d.take_events().unwrap();
    let c = http();
    let url = format!("http://{}/v1/access", d.proxy_addr);
    let good = json!([
        {"dataset": "quote", "key": "AAPL", "client": "c1", "ts": 1772461800.5, "hit": true},
        {"dataset": "quote", "key": "MSFT"}
    ]);
    let resp = c
        .post(&url)
        .bearer_auth(crate::support::ACCESS_TOKEN)
        .json(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["accepted"], 2);
    let a = events.accesses.recv().await.unwrap();
    assert_eq!(
        (a.key.as_ref(), a.client.as_deref(), a.at_s, a.hit),
        ("AAPL", Some("c1"), 1772461800.5, true)
    );
    let b = events.accesses.recv().await.unwrap();
    assert!(!b.hit && b.client.is_none() && b.at_s > 1.7e9);

    let bad = json!([
        {"dataset": "quote", "key": "AAPL"},
        {"dataset": "quote", "key": "lower"},
        {"dataset": "quote", "key": "IBM", "ts": "yesterday"},
        {"dataset": "nope", "key": "IBM"},
        {"dataset": "quote", "key": "IBM", "hits": true}
    ]);
    let resp = c
        .post(&url)
        .bearer_auth(crate::support::ACCESS_TOKEN)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    let errs: Vec<(u64, String)> = body["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected =
        [(1, "key"), (2, "ts"), (3, "dataset"), (4, "hits")].map(|(i, f)| (i, f.to_string()));
    assert_eq!(errs, expected);
    assert!(
        events.accesses.try_recv().is_err(),
        "a rejected batch records nothing"
    );
    assert_eq!(sim.stats().requests, 0, "the feed never fetches");
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn admin_answers_health_and_readiness() {
    let sim = support::sim(|_| {}).await;
    let d = TestCfg::new(sim.addr()).start().await;
    let c = http();
    let h = get(&c, format!("http://{}/healthz", d.admin_addr)).await;
    assert_eq!(h.status(), 200);
    let r = get(&c, format!("http://{}/readyz", d.admin_addr)).await;
    assert_eq!(r.status(), 200);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    let sim = support::sim(|c| c.latency_ms = 300).await;
    let d = TestCfg::new(sim.addr()).start().await;
    let url = format!("http://{}/v1/quote/SLOW", d.proxy_addr);
    let addr = d.proxy_addr;
    let in_flight = tokio::spawn(async move { http().get(url).send().await.map(|r| r.status()) });
    while sim.stats().requests == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    d.shutdown().await.unwrap();
    assert_eq!(in_flight.await.unwrap().unwrap(), 200);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn no_upstream_configured_starts_the_builtin_sim() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nstate_dir = \"{}\"\n",
        dir.path().join("state").display()
    );
    let cfg = prewarm_server::config::RawConfig::from_toml(&toml, "t")
        .unwrap()
        .validate(&|_| None)
        .unwrap();
    assert!(cfg.builtin_upstream);
    let d = prewarm_server::serve::start(cfg).await.unwrap();
    assert!(d.builtin_upstream_addr().is_some());
    assert!(dir.path().join("state").is_dir(), "state dir created");
    let c = http();
    let resp = get(
        &c,
        format!("http://{}/v1/quote?keys=AAPL,MSFT", d.proxy_addr),
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["MSFT"]["data"]["symbol"], "MSFT", "{body}");
    let one = get(&c, format!("http://{}/v1/quote/MSFT", d.proxy_addr)).await;
    assert_eq!(header(&one, "x-cache"), "HIT");
    d.shutdown().await.unwrap();
}

/// `GET target` sent as written (no client-side normalization):
/// `(status, body)`.
async fn raw_get(addr: std::net::SocketAddr, target: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn dot_segment_keys_are_refused_whatever_the_key_pattern() {
    let sim = support::sim(|_| {}).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.extra = "key_pattern = \".+\"\n".into();
    let d = cfg.start().await;
    for target in [
        "/v1/quote/..",
        "/v1/quote/.",
        "/v1/quote/%2E%2E",
        "/v1/quote/%2e",
        "/v1/quote/.%2E",
    ] {
        let (status, body) = raw_get(d.proxy_addr, target).await;
        assert_eq!(status, 400, "{target}");
        assert_eq!(body["error"]["code"], "invalid_key", "{target}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("never keys"), "{target}: {message}");
    }
    let c = http();
    let batch: Value = get(&c, format!("http://{}/v1/quote?keys=..,A", d.proxy_addr))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(batch[".."]["error"]["code"], "invalid_key");
    assert_eq!(batch["A"]["cache"], "MISS");
    let access = c
        .post(format!("http://{}/v1/access", d.proxy_addr))
        .bearer_auth(crate::support::ACCESS_TOKEN)
        .json(&json!([{"dataset": "quote", "key": ".."}]))
        .send()
        .await
        .unwrap();
    assert_eq!(access.status(), 400);
    // `%2F` stays inside the one segment `{key}` fills upstream.
    let (status, body) = raw_get(d.proxy_addr, "/v1/quote/A%2FB").await;
    assert_eq!((status, body["symbol"].as_str()), (200, Some("A/B")));
    assert_eq!(
        sim.stats().quote_requests,
        2,
        "only A and A/B reached upstream"
    );
    d.shutdown().await.unwrap();
}
