//! Every error of the proxy is JSON `{"error":{"code","message"}}`, even
//! those axum answers before a handler runs (413, a path that is not
//! UTF-8), and an over-long key is not echoed back whole.

use serde_json::Value;

use crate::support::{TestCfg, http, sim};

async fn json_error(resp: reqwest::Response) -> (u16, Value, usize) {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = resp.text().await.expect("body");
    assert!(ct.starts_with("application/json"), "{status} {ct}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(v["error"]["code"].is_string(), "{text}");
    assert!(v["error"]["message"].is_string(), "{text}");
    (status, v, text.len())
}

#[tokio::test]
async fn payload_too_large_and_invalid_utf8_errors_are_json_and_long_keys_are_shortened() {
    let upstream = sim(|_| {}).await;
    let d = TestCfg::new(upstream.addr()).start().await;
    let c = http();
    let base = format!("http://{}", d.proxy_addr);

    let big = vec![b' '; 3 * 1024 * 1024];
    let r = c
        .post(format!("{base}/v1/quote"))
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, v, _) = json_error(r).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );

    let r = c
        .get(format!("{base}/v1/quote/%FF%FE"))
        .send()
        .await
        .unwrap();
    let (status, _, _) = json_error(r).await;
    assert_eq!(status, 400);

    let long = "A".repeat(5000);
    let r = c
        .get(format!("{base}/v1/quote/{long}"))
        .send()
        .await
        .unwrap();
    let (status, v, len) = json_error(r).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_key"))
    );
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains('…') && message.contains("5000 bytes"),
        "{message}"
    );
    assert!(len < 400, "the error is {len} bytes");
    d.shutdown().await.unwrap();
}
