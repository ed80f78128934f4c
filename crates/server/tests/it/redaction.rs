//! API keys never appear in logs, error strings or Debug output.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing_subscriber::fmt::MakeWriter;

use crate::support::{self, TestCfg, get, http};

const SECRET: &str = "sk_live_9f8e7d6c5b4a";

/// Log output captured by [`capture_logs`].
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    /// Everything logged so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn env(name: &str) -> Option<String> {
    (name == "API_KEY").then(|| SECRET.to_string())
}

fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Captures every log line (TRACE and up) of this thread until the guard
/// drops. Tests run on a current-thread runtime: every task runs on this
/// thread, under this subscriber.
///
/// tracing caches whether a log line is wanted once per line, for the
/// whole process, and while at most one subscriber is registered it asks
/// only the thread that reaches the line first: a test on another thread,
/// with no subscriber, would mark the line unwanted and this capture would
/// miss it. The [`Anchor`] stays registered for the life of the process,
/// so every line is asked again of each thread's own subscriber; the
/// rebuild afterwards revives lines marked unwanted before.
pub(crate) fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    static ANCHOR: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    ANCHOR.get_or_init(|| tracing::Dispatch::new(Anchor));
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    (logs, guard)
}

/// A subscriber that records nothing but keeps every log line's interest
/// at "sometimes" (decided per event by the thread's own subscriber).
struct Anchor;

impl tracing::Subscriber for Anchor {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Runs a daemon whose quote URL is `url`, makes `requests`, and returns
/// (logs, response bodies, Debug of the config).
async fn exercise(cfg: TestCfg, requests: &[&str]) -> (String, String, String) {
    let (logs, _guard) = capture_logs();
    let config = cfg.config(&env);
    let debug = format!("{config:?}");
    let d = prewarm_server::serve::start(config).await.unwrap();
    let c = http();
    let mut bodies = String::new();
    for key in requests {
        let r = get(&c, format!("http://{}/v1/quote/{key}", d.proxy_addr)).await;
        bodies.push_str(&r.text().await.unwrap());
    }
    d.shutdown().await.unwrap();
    (logs.text(), bodies, debug)
}

#[tokio::test]
async fn query_key_is_redacted_from_transport_errors_and_logs() {
    let dead = closed_port();
    let mut cfg = TestCfg::new(dead);
    cfg.max_retries = 1;
    cfg.url = Some(format!(
        "http://{dead}/v1/quote/{{key}}?apiKey=${{API_KEY}}&region=us"
    ));
    let (logs, bodies, debug) = exercise(cfg, &["AAPL"]).await;
    let body: Value = serde_json::from_str(&bodies).unwrap();
    assert_eq!(body["error"]["code"], "upstream_error", "{bodies}");
    for text in [&logs, &bodies, &debug] {
        assert!(!text.contains(SECRET), "secret leaked:\n{text}");
    }
    assert!(
        logs.contains("upstream fetch failed"),
        "the failure was logged:\n{logs}"
    );
    assert!(debug.contains("apiKey=REDACTED"), "{debug}");
    assert!(
        logs.contains("apiKey=REDACTED"),
        "the URL is in the log, redacted:\n{logs}"
    );
}

#[tokio::test]
async fn path_key_is_redacted_too() {
    let dead = closed_port();
    let mut cfg = TestCfg::new(dead);
    cfg.url = Some(format!("http://{dead}/${{API_KEY}}/quote/{{key}}"));
    let (logs, bodies, debug) = exercise(cfg, &["AAPL"]).await;
    for text in [&logs, &bodies, &debug] {
        assert!(!text.contains(SECRET), "secret leaked:\n{text}");
    }
}

#[tokio::test]
async fn rate_limit_warning_shows_the_url_without_the_key() {
    let sim = support::sim(|c| {
        c.rate_limit_per_min = Some(1);
    })
    .await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.request_timeout_s = 0.5;
    cfg.url = Some(format!(
        "http://{}/v1/quote/{{key}}?apiKey=${{API_KEY}}",
        sim.addr()
    ));
    let (logs, bodies, _) = exercise(cfg, &["AAPL", "MSFT"]).await;
    assert_eq!(sim.stats().rate_limited, 1);
    assert!(
        logs.contains("apiKey=REDACTED"),
        "the URL is logged, redacted:\n{logs}"
    );
    assert!(!logs.contains(SECRET) && !bodies.contains(SECRET));
}

#[tokio::test]
async fn error_bodies_say_what_failed_without_the_upstream_url() {
    // A secret written into the URL's path (not from the environment).
    let dead = closed_port();
    let mut cfg = TestCfg::new(dead);
    cfg.url = Some(format!("http://{dead}/{SECRET}/quote/{{key}}"));
    let (logs, bodies, _) = exercise(cfg, &["AAPL"]).await;
    let body: Value = serde_json::from_str(&bodies).unwrap();
    assert_eq!(body["error"]["code"], "upstream_error");
    assert_eq!(body["error"]["message"], "upstream could not be reached");
    for leak in [SECRET, &dead.to_string(), "http"] {
        assert!(!bodies.contains(leak), "{leak} in the body: {bodies}");
    }
    assert!(logs.contains("upstream fetch failed"), "details are logged");

    // An upstream 500 whose body talks: the client hears the status only.
    let sim = support::sim(|c| c.error_rate = 1.0).await;
    let d = TestCfg::new(sim.addr()).start().await;
    let c = http();
    let one = get(&c, format!("http://{}/v1/quote/AAPL", d.proxy_addr)).await;
    let one: Value = one.json().await.unwrap();
    assert_eq!(one["error"]["message"], "upstream answered HTTP 500");
    let many = get(&c, format!("http://{}/v1/quote?keys=MSFT", d.proxy_addr)).await;
    let many: Value = many.json().await.unwrap();
    assert_eq!(
        many["MSFT"]["error"]["message"],
        "upstream answered HTTP 500"
    );
    for text in [one.to_string(), many.to_string()] {
        assert!(!text.contains("simulated"), "upstream body leaked: {text}");
        assert!(!text.contains(&sim.addr().to_string()), "{text}");
    }
    d.shutdown().await.unwrap();
}

/// Request headers with a secret from the environment reach the upstream,
/// and the secret shows nowhere: logs, error bodies, config Debug,
/// `/warming/status`.
#[tokio::test]
async fn dataset_headers_reach_the_upstream_and_their_secret_never_shows() {
    let (logs, _guard) = capture_logs();
    let rec = crate::recording::spawn().await;
    let mut cfg = TestCfg::new(rec.addr);
    cfg.url = Some(rec.url());
    cfg.extra =
        "headers = { Authorization = \"Bearer ${API_KEY}\", \"X-API-KEY\" = \"${API_KEY}\" }"
            .into();
    let config = cfg.config(&env);
    let debug = format!("{config:?}");
    let d = prewarm_server::serve::start(config).await.unwrap();
    let c = http();
    let mut bodies = String::new();
    for key in ["AAPL", "NOPE", "bad key"] {
        let r = get(&c, format!("http://{}/v1/quote/{key}", d.proxy_addr)).await;
        bodies.push_str(&r.text().await.unwrap());
    }
    let status = get(&c, format!("http://{}/warming/status", d.admin_addr)).await;
    bodies.push_str(&status.text().await.unwrap());
    d.shutdown().await.unwrap();
    let seen = rec.seen();
    assert_eq!(seen.len(), 2, "AAPL and NOPE went upstream");
    for s in &seen {
        assert_eq!(s.headers["authorization"], format!("Bearer {SECRET}"));
        assert_eq!(s.headers["x-api-key"], SECRET);
    }
    assert!(
        debug.contains("authorization") && debug.contains("REDACTED"),
        "{debug}"
    );
    for text in [&logs.text(), &bodies, &debug] {
        assert!(!text.contains(SECRET), "secret leaked:\n{text}");
    }
}
