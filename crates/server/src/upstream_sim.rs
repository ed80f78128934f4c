//! `prewarm upstream-sim`: a simulated market-data API on a real socket.
//!
//! Routes: `GET /v1/quote/{key}` (one quote), `GET /v1/quotes?symbols=A,B`
//! (`{"quotes":[...]}`), `GET /stats` (counters, so tests count upstream
//! calls). Above its rate limit it answers 429 with `Retry-After`
//! (a token bucket: `rate_limit_per_min`, burst `burst`), in seconds, as
//! an HTTP-date, or a fixed text ([`RetryAfterForm`]). Prices are
//! deterministic in (key, time); every quote has a sequence number.
//! Every 200 carries a strong `ETag`, a hash of its body
//! ([`etag_of`]); request validators (`If-None-Match`) are not honoured.
//!
//! Fault knobs (for tests and demos): a fixed delay (`latency_ms`), a
//! share of requests answered `error_status` (`error_rate`), the rate
//! limit, and refusing connections (each is closed as soon as it is
//! accepted, before any request is read).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock, unix_now_s};

/// How a 429's `Retry-After` is written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RetryAfterForm {
    /// Delta-seconds until the next token (at least 1).
    #[default]
    Seconds,
    /// An HTTP-date: the simulator's clock plus the wait, rounded up.
    HttpDate,
    /// This text, whatever the wait (to send invalid values).
    Fixed(String),
}

/// Settings of the simulator (the `upstream-sim` flags).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// `--listen ADDR` (use port 0 for a free port).
    pub listen: SocketAddr,
    /// `--latency-ms N`: delay before each answer.
    pub latency_ms: u64,
    /// `--error-rate F`: fraction of requests answered 500.
    pub error_rate: f64,
    /// `--rate-limit PER_MIN`: calls per minute; `None` is unlimited.
    pub rate_limit_per_min: Option<u32>,
    /// Token-bucket burst (default: the per-minute rate).
    pub burst: Option<u32>,
    /// Keys answered 404 (and left out of batch answers).
    pub unknown_keys: Vec<String>,
    /// `--error-status N`: the status of injected errors (default 500).
    pub error_status: u16,
    /// How a 429's `Retry-After` is written.
    pub retry_after: RetryAfterForm,
    /// `--refuse-connections`: close every connection as it is accepted.
    pub refuse_connections: bool,
    /// The clock HTTP-dates are written from.
    pub clock: Arc<dyn Clock>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            latency_ms: 20,
            error_rate: 0.0,
            rate_limit_per_min: None,
            burst: None,
            unknown_keys: Vec::new(),
            error_status: 500,
            retry_after: RetryAfterForm::Seconds,
            refuse_connections: false,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Counters served on `/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Every request to a `/v1` route.
    pub requests: u64,
    /// Single-quote requests.
    pub quote_requests: u64,
    /// Batch requests.
    pub batch_requests: u64,
    /// Requests answered 200.
    pub served: u64,
    /// Requests answered 429.
    pub rate_limited: u64,
    /// Requests answered `error_status` (injected errors).
    pub errors: u64,
    /// Requests answered 404.
    pub not_found: u64,
    /// Most requests in progress at once.
    pub max_in_flight: u64,
    /// Connections closed as they were accepted (refusing).
    pub refused: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    quote_requests: AtomicU64,
    batch_requests: AtomicU64,
    served: AtomicU64,
    rate_limited: AtomicU64,
    errors: AtomicU64,
    not_found: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    refused: AtomicU64,
    seq: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> SimStats {
        let l = |a: &AtomicU64| a.load(Ordering::SeqCst);
        SimStats {
            requests: l(&self.requests),
            quote_requests: l(&self.quote_requests),
            batch_requests: l(&self.batch_requests),
            served: l(&self.served),
            rate_limited: l(&self.rate_limited),
            errors: l(&self.errors),
            not_found: l(&self.not_found),
            max_in_flight: l(&self.max_in_flight),
            refused: l(&self.refused),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    burst: f64,
    per_s: f64,
    last: tokio::time::Instant,
}

impl Bucket {
    /// Takes a token, or returns seconds until one is available.
    fn take(&mut self) -> Result<(), f64> {
        let now = tokio::time::Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.per_s).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - self.tokens) / self.per_s)
        }
    }
}

#[derive(Debug)]
struct Sim {
    counters: Counters,
    bucket: Option<Mutex<Bucket>>,
    latency_ms: AtomicU64,
    error_rate_bits: AtomicU64,
    error_status: StatusCode,
    unknown_keys: Vec<String>,
    retry_after: RetryAfterForm,
    refusing: Arc<AtomicBool>,
    clock: Arc<dyn Clock>,
}

/// A running simulator.
#[derive(Debug)]
pub struct SimHandle {
    sim: Arc<Sim>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    join: JoinHandle<std::io::Result<()>>,
}

impl SimHandle {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Current counters.
    pub fn stats(&self) -> SimStats {
        self.sim.counters.snapshot()
    }

    /// Changes the injected error rate.
    pub fn set_error_rate(&self, rate: f64) {
        self.sim
            .error_rate_bits
            .store(rate.to_bits(), Ordering::SeqCst);
    }

    /// Changes the answer delay.
    pub fn set_latency_ms(&self, ms: u64) {
        self.sim.latency_ms.store(ms, Ordering::SeqCst);
    }

    /// Starts or stops refusing connections.
    pub fn set_refusing(&self, refusing: bool) {
        self.sim.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Stops accepting, finishes in-flight requests, and waits.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.join).await;
    }
}

fn build(cfg: &SimConfig) -> Arc<Sim> {
    let bucket = cfg.rate_limit_per_min.filter(|r| *r > 0).map(|r| {
        let burst = f64::from(cfg.burst.unwrap_or(r).max(1));
        Mutex::new(Bucket {
            tokens: burst,
            burst,
            per_s: f64::from(r) / 60.0,
            last: tokio::time::Instant::now(),
        })
    });
    Arc::new(Sim {
        counters: Counters::default(),
        bucket,
        latency_ms: AtomicU64::new(cfg.latency_ms),
        error_rate_bits: AtomicU64::new(cfg.error_rate.to_bits()),
        error_status: StatusCode::from_u16(cfg.error_status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        unknown_keys: cfg.unknown_keys.clone(),
        retry_after: cfg.retry_after.clone(),
        refusing: Arc::new(AtomicBool::new(cfg.refuse_connections)),
        clock: Arc::clone(&cfg.clock),
    })
}

/// The TCP listener, closing connections at once while refusing.
struct Refusing {
    inner: tokio::net::TcpListener,
    sim: Arc<Sim>,
}

impl axum::serve::Listener for Refusing {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
            if !self.sim.refusing.load(Ordering::SeqCst) {
                return (io, addr);
            }
            self.sim.counters.refused.fetch_add(1, Ordering::SeqCst);
            drop(io);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/v1/quote/{key}", get(quote))
        .route("/v1/quotes", get(quotes))
        .route("/stats", get(stats))
        .with_state(sim)
}

/// Binds `cfg.listen` and serves in a background task.
pub async fn spawn(cfg: SimConfig) -> std::io::Result<(SocketAddr, SimHandle)> {
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let sim = build(&cfg);
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(Arc::clone(&sim));
    let listener = Refusing {
        inner: listener,
        sim: Arc::clone(&sim),
    };
    let join = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    let handle = SimHandle {
        sim,
        addr,
        shutdown: Some(tx),
        join,
    };
    Ok((addr, handle))
}

/// Serves until `shutdown` resolves (the `prewarm upstream-sim` command).
pub async fn run(
    cfg: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "upstream-sim listening");
    let sim = build(&cfg);
    let listener = Refusing {
        inner: listener,
        sim: Arc::clone(&sim),
    };
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Price of `key` at `t_s`: a per-key base wobbling ±1 % over minutes.
pub fn price(key: &str, t_s: f64) -> f64 {
    let h = fnv1a(key);
    let base = 10.0 + (h % 99_000) as f64 / 100.0;
    let phase = (h >> 20) as f64 % std::f64::consts::TAU;
    let p = base * (1.0 + 0.01 * (t_s / 60.0 + phase).sin());
    (p * 100.0).round() / 100.0
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn quote_json(sim: &Sim, key: &str) -> serde_json::Value {
    let ts = unix_now_s();
    let seq = sim.counters.seq.fetch_add(1, Ordering::SeqCst) + 1;
    serde_json::json!({
        "symbol": key,
        "price": price(key, ts),
        "ts": ts,
        "seq": seq,
        "source": "prewarm-upstream-sim",
    })
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    let body = value.to_string();
    let etag = (status == StatusCode::OK).then(|| etag_of(&body));
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(v) = etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

/// The strong `ETag` of a body: its 64-bit FNV-1a hash, 16 hex digits in
/// quotes (`"0123456789abcdef"`).
pub fn etag_of(body: &str) -> String {
    format!("\"{:016x}\"", fnv1a(body))
}

/// Counts a request in progress for `max_in_flight`.
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn enter(c: &'a Counters) -> Self {
        let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        c.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Rate limit, latency and error injection common to both routes.
async fn gate(sim: &Sim) -> Result<(), Response> {
    // This request's own number: the error draw below must not read the
    // counter after the latency sleep, when requests in flight together
    // would all see the same number and fail or pass together.
    let n = sim.counters.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(bucket) = &sim.bucket {
        let taken = bucket.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Err(wait_s) = taken {
            sim.counters.rate_limited.fetch_add(1, Ordering::SeqCst);
            let retry = retry_after_text(sim, wait_s);
            let mut resp = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &serde_json::json!({"error": "rate limited"}),
            );
            if let Ok(v) = HeaderValue::from_str(&retry) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Err(resp);
        }
    }
    let latency = sim.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let rate = f64::from_bits(sim.error_rate_bits.load(Ordering::SeqCst));
    let draw = (fnv1a(&n.to_string()) % 10_000) as f64 / 10_000.0;
    if draw < rate {
        sim.counters.errors.fetch_add(1, Ordering::SeqCst);
        let body = serde_json::json!({"error": "simulated upstream failure"});
        return Err(json_response(sim.error_status, &body));
    }
    Ok(())
}

/// The `Retry-After` of a 429 when the next token is `wait_s` away.
fn retry_after_text(sim: &Sim, wait_s: f64) -> String {
    let wait_s = wait_s.ceil().max(1.0);
    match &sim.retry_after {
        RetryAfterForm::Seconds => format!("{}", wait_s as u64),
        RetryAfterForm::HttpDate => {
            let at_s = (sim.clock.now_s() + wait_s).ceil().max(0.0) as u64;
            httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(at_s))
        }
        RetryAfterForm::Fixed(text) => text.clone(),
    }
}

async fn quote(State(sim): State<Arc<Sim>>, Path(key): Path<String>) -> Response {
    let _in_flight = InFlight::enter(&sim.counters);
    sim.counters.quote_requests.fetch_add(1, Ordering::SeqCst);
    if let Err(resp) = gate(&sim).await {
        return resp;
    }
    if sim.unknown_keys.contains(&key) {
        sim.counters.not_found.fetch_add(1, Ordering::SeqCst);
        return json_response(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "unknown symbol"}),
        );
    }
    sim.counters.served.fetch_add(1, Ordering::SeqCst);
    json_response(StatusCode::OK, &quote_json(&sim, &key))
}

#[derive(Debug, Deserialize)]
struct Symbols {
    symbols: Option<String>,
}

async fn quotes(State(sim): State<Arc<Sim>>, Query(q): Query<Symbols>) -> Response {
    let _in_flight = InFlight::enter(&sim.counters);
    sim.counters.batch_requests.fetch_add(1, Ordering::SeqCst);
    if let Err(resp) = gate(&sim).await {
        return resp;
    }
    let symbols = q.symbols.unwrap_or_default();
    let keys: Vec<&str> = symbols.split(',').filter(|s| !s.is_empty()).collect();
    if keys.is_empty() {
        return json_response(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"error": "symbols is empty"}),
        );
    }
    let list: Vec<_> = keys
        .iter()
        .filter(|k| !sim.unknown_keys.iter().any(|u| u == *k))
        .map(|k| quote_json(&sim, k))
        .collect();
    sim.counters.served.fetch_add(1, Ordering::SeqCst);
    json_response(StatusCode::OK, &serde_json::json!({ "quotes": list }))
}

async fn stats(State(sim): State<Arc<Sim>>) -> Response {
    json_response(StatusCode::OK, &serde_json::json!(sim.counters.snapshot()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_is_deterministic_and_positive() {
        assert_eq!(price("AAPL", 1000.0), price("AAPL", 1000.0));
        assert_ne!(price("AAPL", 1000.0), price("MSFT", 1000.0));
        assert!(price("X", 0.0) > 0.0);
    }

    #[tokio::test]
    async fn answers_carry_a_strong_etag_of_their_body() {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let app = router(build(&SimConfig::default()));
        for uri in ["/v1/quote/AAPL", "/v1/quotes?symbols=AAPL,MSFT"] {
            let req = axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .unwrap();
            let resp = app.clone().oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{uri}");
            let etag = resp.headers()[header::ETAG].to_str().unwrap().to_string();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let body = std::str::from_utf8(&body).unwrap();
            assert!(!etag.starts_with("W/"), "{uri}: {etag} is weak");
            assert_eq!(etag, etag_of(body), "{uri}");
        }
        assert_ne!(etag_of("{\"seq\":1}"), etag_of("{\"seq\":2}"));
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_at_the_configured_rate() {
        let mut b = Bucket {
            tokens: 2.0,
            burst: 2.0,
            per_s: 1.0,
            last: tokio::time::Instant::now(),
        };
        assert!(b.take().is_ok());
        assert!(b.take().is_ok());
        let wait = b.take().unwrap_err();
        assert!((wait - 1.0).abs() < 1e-6);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(b.take().is_ok());
    }
}
